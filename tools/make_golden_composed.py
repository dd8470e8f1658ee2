"""Write neural-tangents' numbers for composed finite networks to tests/golden/composed.npz.

tests/test_composed.py rebuilds every network below from ``ntkfast.stax`` (the same source string,
evaluated with ``stax`` bound to ntkfast's module), loads the parameters neural-tangents drew and
checks ``apply_fn``, the empirical NTK (traced and full, symmetric and cross) and the empirical NNGP
against the stored numbers, without JAX. Run it in neural-tangents' own environment (0.6.5, jax
0.4.23; see tools/make_golden.py):

    JAX_ENABLE_X64=1 ~/nt-venv/bin/python tools/make_golden_composed.py [--out PATH]

It takes under a minute and writes ~50 kB. Everything is float64. Inputs come from NumPy's
Generator and parameters from ``init_fn`` with fixed PRNG keys, so the file is deterministic.

Layout: ``meta`` (JSON) lists the networks (name, source, input width, number of parameter
arrays); for network ``name``: ``name/p{i}`` the parameter arrays in the order of a depth-first
walk of the nested params (``None`` biases skipped: the layer tree says where they are),
``name/x1``, ``name/x2``, ``name/apply`` (apply_fn on x1), ``name/ntk_full_11``,
``name/ntk_trace_11``, ``name/ntk_full_12``, ``name/ntk_trace_12`` (``empirical_ntk_fn`` with
``trace_axes=()`` and the default ``(-1,)``, on (x1, x1) and (x1, x2)), ``name/nngp_12``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

os.environ["JAX_ENABLE_X64"] = "1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

# name: (source, input width or image shape). `T` is the array module (jax.numpy here, NumPy in the test).
NETWORKS = {
    "residual": ("stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Relu(), stax.FanOut(2), "
                 "stax.parallel(stax.serial(stax.Dense(16, W_std=1.3, b_std=0.05), stax.Erf()), stax.Identity()), "
                 "stax.FanInSum(), stax.Dense(3, W_std=1.2, b_std=0.2))", 5),
    "layernorm": ("stax.serial(stax.Dense(12, W_std=1.4, b_std=0.3), stax.LayerNorm(), stax.Gelu(), "
                  "stax.Dense(12, W_std=1.1), stax.LayerNorm(eps=1e-3), stax.Relu(), stax.Dense(2, b_std=0.1))", 4),
    "fanin_prod": ("stax.serial(stax.Dense(10, W_std=1.2, b_std=0.1), stax.FanOut(2), "
                   "stax.parallel(stax.serial(stax.Dense(10), stax.Erf()), "
                   "stax.serial(stax.Dense(10, b_std=0.5), stax.Sin(1.0, 1.3, 0.2))), stax.FanInProd(), "
                   "stax.Dense(2, W_std=0.9, b_std=0.1))", 3),
    "mixed": ("stax.serial(stax.Dense(12, W_std=1.5, b_std=0.05), stax.Relu(), stax.Dense(12, W_std=1.3, b_std=0.1), "
              "stax.Erf(), stax.Dense(12, W_std=1.4), stax.Gelu(approximate=True), stax.Dense(12), stax.Gelu(), "
              "stax.Dense(12, W_std=1.2, b_std=0.1), stax.LeakyRelu(0.1), stax.Dense(12), stax.Sigmoid_like(), "
              "stax.Dense(12, W_std=1.1), stax.ElementwiseNumerical(T.tanh, 64, lambda x: 1 - T.tanh(x) ** 2), "
              "stax.Dense(12), stax.Rbf(0.6), stax.Dense(12), stax.Monomial(2), "
              "stax.Dense(1, W_std=1.1, b_std=0.2))", 6),
    "standard": ("stax.serial(stax.Dense(20, W_std=1.5, b_std=0.1, parameterization='standard'), stax.Relu(), "
                 "stax.Dense(7, W_std=1.2, b_std=0.2, parameterization='standard'), stax.Erf(), "
                 "stax.Dense(13, W_std=1.1, parameterization='standard'), stax.Gelu(), "
                 "stax.Dense(2, W_std=1.3, b_std=0.05, parameterization='standard'))", 4),
    "nested": ("stax.serial(stax.Dense(8, W_std=1.3, b_std=0.2), stax.FanOut(3), stax.parallel("
               "stax.serial(stax.LayerNorm(), stax.Abs(), stax.Dense(8, W_std=1.2)), "
               "stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(8, b_std=0.1), stax.Identity()), "
               "stax.FanInSum(), stax.Erf(1.3, 0.7, -0.2)), "
               "stax.Identity()), stax.FanInSum(), stax.FanOut(2), stax.parallel(stax.Identity(), "
               "stax.serial(stax.Dense(8, W_std=0.8), stax.Cos())), stax.FanInProd(), stax.LayerNorm(), "
               "stax.Dense(2, W_std=1.1, b_std=0.3, parameterization='standard'))", 5),
    # convolutional networks: the input "width" is the images' shape (NHWC / NWC without n)
    "cnn_gap": ("stax.serial(stax.Conv(6, (3, 3), padding='SAME', W_std=1.4, b_std=0.1), stax.Relu(), "
                "stax.Conv(5, (2, 2), strides=(2, 2), padding='VALID', W_std=1.2), stax.Erf(), stax.GlobalAvgPool(), "
                "stax.Dense(3, W_std=1.1, b_std=0.2))", (6, 6, 2)),
    "cnn_circular_flatten": ("stax.serial(stax.Conv(4, (3, 2), padding='CIRCULAR', b_std=0.2), stax.Gelu(), "
                             "stax.AvgPool((2, 2), strides=(2, 2), padding='SAME'), stax.Flatten(), "
                             "stax.Dense(2, W_std=1.3))", (5, 4, 3)),
    "cnn_residual_layernorm": ("stax.serial(stax.Conv(4, (3, 3), padding='SAME'), stax.LayerNorm(axis=(1, 2, 3)), "
                               "stax.Relu(), stax.FanOut(2), stax.parallel(stax.serial(stax.Conv(4, (3, 3), "
                               "padding='SAME', b_std=0.1), stax.Relu()), stax.Identity()), stax.FanInSum(), "
                               "stax.AvgPool((2, 2)), stax.Flatten(), stax.Dense(2, b_std=0.1))", (4, 4, 1)),
    "cnn_1d_standard": ("stax.serial(stax.Conv(5, (3,), strides=(2,), padding='SAME', b_std=0.3, "
                        "parameterization='standard'), stax.Relu(), stax.Dense(4, parameterization='standard'), "
                        "stax.Erf(), stax.Flatten(), stax.Dense(2, b_std=0.1, parameterization='standard'))", (7, 2)),
}


def leaves(params):
    """The arrays of nested params, depth first (None skipped)."""
    if params is None:
        return []
    if isinstance(params, (tuple, list)):
        return [leaf for p in params for leaf in leaves(p)]
    return [np.asarray(params, dtype=np.float64)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parents[1] / "tests" / "golden" / "composed.npz")
    args = parser.parse_args()
    rng = np.random.default_rng(20240611)
    data, meta = {}, []
    for index, (name, (source, d)) in enumerate(NETWORKS.items()):
        init_fn, apply_fn, _ = eval(source, {"stax": stax, "T": jnp})  # noqa: S307 - our own strings
        shape = tuple(d) if isinstance(d, tuple) else (d,)
        x1, x2 = rng.standard_normal((5,) + shape), rng.standard_normal((3,) + shape)
        _, params = init_fn(jax.random.PRNGKey(index + 1), x1.shape)
        arrays = leaves(params)
        for i, a in enumerate(arrays):
            data[f"{name}/p{i}"] = a
        data[f"{name}/x1"], data[f"{name}/x2"] = x1, x2
        data[f"{name}/apply"] = np.asarray(apply_fn(params, x1))
        full = nt.empirical_ntk_fn(apply_fn, trace_axes=())
        traced = nt.empirical_ntk_fn(apply_fn)
        data[f"{name}/ntk_full_11"] = np.asarray(full(x1, None, params))
        data[f"{name}/ntk_trace_11"] = np.asarray(traced(x1, None, params))
        data[f"{name}/ntk_full_12"] = np.asarray(full(x1, x2, params))
        data[f"{name}/ntk_trace_12"] = np.asarray(traced(x1, x2, params))
        data[f"{name}/nngp_12"] = np.asarray(nt.empirical_nngp_fn(apply_fn)(x1, x2, params))
        meta.append({"name": name, "source": source, "in_dim": d, "arrays": len(arrays)})
        print(f"{name}: {len(arrays)} parameter arrays, outputs {data[f'{name}/apply'].shape}")
    data["meta"] = np.array(json.dumps({"neural_tangents": nt.__version__, "jax": jax.__version__,
                                        "networks": meta}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.1f} kB)")


if __name__ == "__main__":
    main()
