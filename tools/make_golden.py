"""Write neural-tangents' reference numbers to tests/golden/neural_tangents.npz.

tests/test_golden.py checks ntkfast against this file on every run, without JAX. The file holds
what neural-tangents 0.6.5 computes for

* infinite-width kernels (``stax.serial`` of Dense + activation layers, ``kernel_fn``): every
  closed-form activation x depths x parameterizations x b_std (None, 0, 0.3) x readouts, cross
  and symmetric kernels (with ``Kernel.cov1``, the exact diagonal NNGP);
* predictions: ``gradient_descent_mse_ensemble`` (several times, nngp/ntk, covariances, training
  and test sets, relative and absolute ``diag_reg``, a learning rate), ``gradient_descent_mse`` on
  a precomputed kernel with initial outputs, ``gp_inference`` (nngp, ntk, ntkgp) and
  ``max_learning_rate``, together with the kernels they were computed from;
* finite networks built from its own ``init_fn`` parameters (stored): ``apply_fn`` outputs,
  ``empirical_ntk_fn`` (traced and not, symmetric and cross) and ``empirical_nngp_fn``, for every
  activation ntkfast supports in finite networks.

neural-tangents is not a dependency of ntkfast: run this in its own environment (neural-tangents
0.6.5, jax/jaxlib 0.4.23, numpy 1.26, scipy 1.12, tensorflow 2.15.1 on Python 3.11):

    python3 -m venv ~/nt-venv && ~/nt-venv/bin/pip install -r neural-tangents-requirements.txt
    ~/nt-venv/bin/python tools/make_golden.py [--out PATH]

It takes 15-25 minutes on 2 cores (kernel_fn runs op by op, and neural-tangents differentiates
Cho & Saul's formula by nested autodiff for each RectifiedMonomial degree) and writes ~1.4 MB.

The configurations are those of tests/test_neural_tangents.py (the live comparison, which runs
when neural-tangents is importable). Everything is float64 (JAX_ENABLE_X64). The file is
deterministic: inputs come from NumPy generators with fixed seeds, parameters from fixed PRNG keys.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import time
import warnings

os.environ["JAX_ENABLE_X64"] = "1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

# name: (stax layer, ntkfast.activations class, arguments, depths, input scale)
CLOSED_FORMS = {
    "relu": ("Relu", "Relu", (), (1, 2, 5), 1.0),
    "leaky_relu": ("LeakyRelu", "LeakyRelu", (0.1,), (1, 2, 5), 1.0),
    "abs": ("Abs", "Abs", (), (1, 2, 5), 1.0),
    "abrelu": ("ABRelu", "ABRelu", (-0.4, 1.6), (1, 2, 5), 1.0),
    "erf": ("Erf", "Erf", (), (1, 2, 5), 1.0),
    "erf_affine": ("Erf", "Erf", (1.3, 0.7, -0.2), (1, 2, 5), 1.0),
    "sigmoid_like": ("Sigmoid_like", "SigmoidLike", (), (1, 2, 5), 1.0),
    "gelu": ("Gelu", "Gelu", (), (1, 2, 5), 1.0),
    "sign": ("Sign", "Sign", (), (1, 2, 5), 1.0),
    "identity": ("Identity", "Identity", (), (1, 2, 5), 1.0),
    "sin": ("Sin", "Sin", (1.2, 0.7, 0.3), (1, 2, 5), 1.0),
    "cos": ("Cos", "Cos", (0.9, 1.1, -0.2), (1, 2, 5), 1.0),
    "rbf": ("Rbf", "Rbf", (0.6,), (1, 2, 5), 1.0),
    "gabor": ("Gabor", "Gabor", (), (1, 2, 5), 1.0),
    # exp, gaussian, x^5: inputs at half scale keep the moments moderate
    "exp": ("Exp", "Exp", (0.7, 0.4), (1, 2, 5), 0.5),
    "gaussian": ("Gaussian", "Gaussian", (1.1, -0.8), (1, 2, 5), 0.5),
    # x^3 and x^4 overflow float64 at depth 5 (ntkfast raises; neural-tangents returns inf or huge numbers)
    **{f"monomial{k}": ("Monomial", "Monomial", (k,), (1, 2, 5) if k < 3 else (1, 2, 3) if k < 5 else (1, 2),
                        0.5 if k == 5 else 1.0) for k in range(6)},
    # neural-tangents' RectifiedMonomial is NaN on the diagonal (arccos(1) in its autodiff), so
    # beyond depth 1 everything is NaN: depth 1 only
    **{f"rectified_monomial{k}": ("RectifiedMonomial", "RectifiedMonomial", (k,), (1,), 1.0) for k in range(6)},
}
PARAMETERIZATIONS = ("ntk", "standard")
B_STDS = (None, 0.0, 0.3)
READOUTS = (None, (0.8, None), (1.1, 0.5))  # None: the hidden layers' (W_std, b_std)
W_STD, WIDTH = 1.3, 64
N1, N2, DIM = 6, 4, 5

# activations of finite networks by a JAX function (ntkfast evaluates them natively)
JAX_FUNCTIONS = {
    "tanh": lambda z: jax.numpy.tanh(z),
    "softplus": jax.nn.softplus,
    "silu": jax.nn.silu,
    "sigmoid": jax.nn.sigmoid,
    "gelu_tanh": lambda z: jax.nn.gelu(z, approximate=True),
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
}


def as_np(a):
    return np.asarray(a, dtype=np.float64)


def serial(act, depth, W_std, b_std, parameterization, width, readout_W_std, readout_b_std, out_dim=2):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=W_std, b_std=b_std, parameterization=parameterization), act]
    layers += [stax.Dense(out_dim, W_std=readout_W_std, b_std=readout_b_std, parameterization=parameterization)]
    return stax.serial(*layers)


def kernel_inputs(depth):
    rng = np.random.default_rng(100 + depth)
    return rng.standard_normal((N1, DIM)), 1.5 * rng.standard_normal((N2, DIM))


def make_kernels(out, meta):
    """Per activation, arrays stacked over its configurations (listed in meta in the same order)."""
    for depth in sorted({d for *_, depths, _ in CLOSED_FORMS.values() for d in depths}):
        out[f"kernels/x1_depth{depth}"], out[f"kernels/x2_depth{depth}"] = kernel_inputs(depth)
    meta["kernels"] = {"W_std": W_STD, "width": WIDTH, "activations": {}, "order": list(CLOSED_FORMS)}
    for name, (nt_name, ours, args, depths, scale) in CLOSED_FORMS.items():
        print(name, end=" ", flush=True)
        configs, arrays = [], {k: [] for k in ("nngp_cross", "ntk_cross", "nngp_sym", "ntk_sym", "cov1")}
        for depth, parameterization, b_std, readout in itertools.product(depths, PARAMETERIZATIONS, B_STDS, READOUTS):
            r_W, r_b = (W_STD, b_std) if readout is None else readout
            kernel_fn = serial(getattr(stax, nt_name)(*args), depth, W_STD, b_std, parameterization, WIDTH, r_W, r_b)[2]
            x1, x2 = kernel_inputs(depth)
            x1, x2 = scale * x1, scale * x2
            cross = kernel_fn(x1, x2, ("nngp", "ntk"))
            sym = kernel_fn(x1, None)  # a Kernel: cov1 is its exact diagonal NNGP
            arrays["nngp_cross"].append(as_np(cross[0]))
            arrays["ntk_cross"].append(as_np(cross[1]))
            arrays["nngp_sym"].append(as_np(sym.nngp))
            arrays["ntk_sym"].append(as_np(sym.ntk))
            arrays["cov1"].append(as_np(sym.cov1))
            configs.append({"depth": depth, "parameterization": parameterization, "b_std": b_std,
                            "readout_W_std": r_W, "readout_b_std": r_b})
        for key, values in arrays.items():
            out[f"kernels/{name}/{key}"] = np.stack(values)
        meta["kernels"]["activations"][name] = {"stax": nt_name, "ntkfast": ours, "args": list(args),
                                                "input_scale": scale, "configs": configs}


# ---------------------------------------------------------------------------------------------
# predictions

PREDICT_MODELS = {
    # name: MLP arguments (ntkfast spelling) for both libraries
    "relu2": dict(depth=2, activation=("Relu", "Relu", ()), W_std=1.4, b_std=0.1, parameterization="ntk",
                  width=64, readout_W_std=1.4, readout_b_std=0.1),
    "erf3_standard": dict(depth=3, activation=("Erf", "Erf", ()), W_std=1.3, b_std=0.2,
                          parameterization="standard", width=32, readout_W_std=0.9, readout_b_std=None),
}
REGULARIZERS = ((0.0, False), (1e-3, False), (1e-2, True))  # (diag_reg, diag_reg_absolute_scale)
TIMES = (0.0, 0.5, 5.0, 50.0, None)  # None: converged


def model_kernel_fn(spec):
    nt_name, _, args = spec["activation"]
    return serial(getattr(stax, nt_name)(*args), spec["depth"], spec["W_std"], spec["b_std"],
                  spec["parameterization"], spec["width"], spec["readout_W_std"], spec["readout_b_std"])[2]


def make_predictions(out, meta):
    rng = np.random.default_rng(11)
    x, xt, y = rng.standard_normal((20, 6)), rng.standard_normal((7, 6)), rng.standard_normal((20, 3))
    fx0, fxt0 = 0.3 * rng.standard_normal((20, 3)), 0.3 * rng.standard_normal((7, 3))
    out["predict/x_train"], out["predict/x_test"], out["predict/y_train"] = x, xt, y
    out["predict/fx_train_0"], out["predict/fx_test_0"] = fx0, fxt0
    meta["predict"] = {"models": {}, "regularizers": REGULARIZERS, "times": TIMES, "learning_rates": (1.0, 0.5)}
    for model, spec in PREDICT_MODELS.items():
        meta["predict"]["models"][model] = spec
        kernel_fn = model_kernel_fn(spec)
        k_dd, k_td, k_tt = kernel_fn(x, None), kernel_fn(xt, x), kernel_fn(xt, None)
        for tag, k in (("train_train", k_dd), ("test_train", k_td), ("test_test", k_tt)):
            out[f"predict/{model}/{tag}/nngp"], out[f"predict/{model}/{tag}/ntk"] = as_np(k.nngp), as_np(k.ntk)
        for (r, (diag_reg, absolute)), lr in itertools.product(enumerate(REGULARIZERS), (1.0, 0.5)):
            ensemble = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x, y, learning_rate=lr, diag_reg=diag_reg,
                                                                diag_reg_absolute_scale=absolute)
            for get, (where, x_test) in itertools.product(("nngp", "ntk"), (("test", xt), ("train", None))):
                gs = [ensemble(t, x_test, get, compute_cov=True) for t in TIMES]
                key = f"predict/{model}/ensemble/reg{r}/lr{lr}/{get}/{where}"  # stacked over TIMES
                out[key + "/mean"] = np.stack([as_np(g.mean) for g in gs])
                out[key + "/cov"] = np.stack([as_np(g.covariance) for g in gs])
            # on precomputed kernels: gradient_descent_mse with initial outputs
            fn = nt.predict.gradient_descent_mse(k_dd.ntk, y, learning_rate=lr, diag_reg=diag_reg,
                                                 diag_reg_absolute_scale=absolute)
            times = np.array([0.0, 1.0, 10.0, 100.0])
            train, test = fn(times, fx0, fxt0, k_td.ntk)
            key = f"predict/{model}/gd_mse/reg{r}/lr{lr}"
            out[key + "/train"], out[key + "/test"] = as_np(train), as_np(test)
            train, test = fn(None, fx0, fxt0, k_td.ntk)
            out[key + "/train_inf"], out[key + "/test_inf"] = as_np(train), as_np(test)
        for r, (diag_reg, absolute) in enumerate(REGULARIZERS):
            fn = nt.predict.gp_inference(k_dd, y, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)
            for get in ("nngp", "ntk", "ntkgp"):
                g = fn(get, k_td, k_tt)
                key = f"predict/{model}/gp_inference/reg{r}/{get}"
                out[key + "/mean"], out[key + "/cov"] = as_np(g.mean), as_np(g.covariance)
        for momentum, size in ((0.0, None), (0.0, 60), (0.9, 60)):
            out[f"predict/{model}/max_learning_rate/m{momentum}/n{size}"] = np.array(
                float(nt.predict.max_learning_rate(k_dd.ntk, y_train_size=size, momentum=momentum)))


# ---------------------------------------------------------------------------------------------
# finite networks

FINITE_VARIANTS = {
    # name: (parameterization, b_std, out_dim)
    "ntk_nobias": ("ntk", None, 1),
    "ntk_bias": ("ntk", 0.3, 3),
    "standard_nobias": ("standard", None, 1),
    "standard_bias": ("standard", 0.3, 3),
}
FINITE_WIDTH, FINITE_DEPTH, FINITE_W_STD, FINITE_READOUT_W_STD = 8, 2, 1.3, 0.9


def finite_activations():
    acts = {}
    for name, (nt_name, ours, args, _, scale) in CLOSED_FORMS.items():
        acts[name] = (getattr(stax, nt_name)(*args), {"ntkfast": ours, "args": list(args), "input_scale": scale})
    for name, fn in JAX_FUNCTIONS.items():
        acts[name] = (stax.ElementwiseNumerical(fn, deg=8), {"ntkfast": "Numerical", "args": [name],
                                                            "input_scale": 1.0})
    return acts


def make_finite(out, meta):
    rng = np.random.default_rng(12)
    x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    out["finite/x1"], out["finite/x2"] = x1, x2
    acts = finite_activations()
    meta["finite"] = {"order": list(acts), "width": FINITE_WIDTH, "depth": FINITE_DEPTH, "W_std": FINITE_W_STD,
                      "readout_W_std": FINITE_READOUT_W_STD, "variants": FINITE_VARIANTS,
                      "activations": {name: info for name, (_, info) in acts.items()}}
    for variant, (parameterization, b_std, out_dim) in FINITE_VARIANTS.items():
        arrays: dict = {}
        for a, (name, (layer, info)) in enumerate(acts.items()):
            init_fn, apply_fn, _ = serial(layer, FINITE_DEPTH, FINITE_W_STD, b_std, parameterization, FINITE_WIDTH,
                                          FINITE_READOUT_W_STD, b_std, out_dim)
            key = jax.random.PRNGKey(1000 * a + list(FINITE_VARIANTS).index(variant))
            _, params = init_fn(key, x1.shape)
            dense = [p for p in params if len(p) > 0]
            s = info["input_scale"]
            results = {"apply1": apply_fn(params, s * x1), "apply2": apply_fn(params, s * x2),
                       "nngp12": nt.empirical_nngp_fn(apply_fn)(s * x1, s * x2, params)}
            for trace in (True, False):
                fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,) if trace else (), vmap_axes=0)
                results[f"ntk11_trace{int(trace)}"] = fn(s * x1, None, params)
                results[f"ntk12_trace{int(trace)}"] = fn(s * x1, s * x2, params)
            for l, (w, b) in enumerate(dense):
                results[f"W{l}"] = w
                if b is not None:
                    results[f"b{l}"] = np.reshape(b, -1)
            for k, v in results.items():
                arrays.setdefault(k, []).append(as_np(v))
        for k, values in arrays.items():
            out[f"finite/{variant}/{k}"] = np.stack(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "neural_tangents.npz"
    parser.add_argument("--out", type=pathlib.Path, default=default)
    args = parser.parse_args()
    out: dict = {}
    meta = {"neural_tangents": nt.__version__, "jax": jax.__version__, "numpy": np.__version__,
            "generator": "tools/make_golden.py"}
    warnings.simplefilter("ignore")  # ElementwiseNumerical warns about its degree (unused: only its fn is)
    for step in (make_kernels, make_predictions, make_finite):
        start = time.perf_counter()
        step(out, meta)
        print(f"{step.__name__}: {time.perf_counter() - start:.1f} s", flush=True)
    for key, value in out.items():
        assert value.dtype == np.float64, key
    out["meta"] = np.array(json.dumps(meta, sort_keys=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"{args.out}: {len(out)} arrays, {sum(v.size for v in out.values())} numbers, "
          f"{args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
