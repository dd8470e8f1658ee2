"""Write neural-tangents' kernels of convolutional networks to tests/golden/conv.npz.

tests/test_conv.py checks ``ntkfast.stax``'s Conv / AvgPool / GlobalAvgPool / Flatten against this
file on every run, without JAX. Each configuration is a source string evaluated here with ``stax`` =
``neural_tangents.stax`` and in the test with ``stax`` = ``ntkfast.stax``: the same text builds the
same network in both libraries. They cover padding VALID / SAME / CIRCULAR, strides, 1-D and 2-D
images, one and several channels, pooling (AvgPool with and without normalize_edges,
GlobalAvgPool), Flatten without pooling (neural-tangents' "diagonal spatial" kernels), outputs that
keep positions, residual blocks, both parameterizations and several activations.

For each configuration the file holds images x1 (4 of them) and x2 (3), drawn from a NumPy
generator with a fixed state per configuration, and neural-tangents' ``kernel_fn(x1, x2)`` and
``kernel_fn(x1, None)`` (nngp and ntk), all float64. Run it in neural-tangents' own environment
(neural-tangents 0.6.5, jax/jaxlib 0.4.23, numpy 1.26, Python 3.11):

    ~/nt-venv/bin/python tools/make_golden_conv.py [--out PATH]
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

STD = "'standard'"


def conv(chan, filt, pad="VALID", strides=None, W_std=1.5, b_std=0.1, param=None) -> str:
    extra = "" if strides is None else f", strides={strides!r}"
    extra += "" if param is None else f", parameterization={param}"
    return f"stax.Conv({chan}, {filt!r}, padding={pad!r}, W_std={W_std!r}, b_std={b_std!r}{extra})"


def dense(width, W_std=1.2, b_std=0.05, param=None) -> str:
    extra = "" if param is None else f", parameterization={param}"
    return f"stax.Dense({width}, W_std={W_std!r}, b_std={b_std!r}{extra})"


def serial(*layers: str) -> str:
    return "stax.serial(" + ", ".join(layers) + ")"


RELU, ERF, GELU = "stax.Relu()", "stax.Erf()", "stax.Gelu()"
GAP, FLAT = "stax.GlobalAvgPool()", "stax.Flatten()"

# name: (source, image shape of one input (without the batch axis))
CONFIGS: dict[str, tuple[str, tuple]] = {
    "same_relu_gap": (serial(conv(4, (3, 3), "SAME"), RELU, conv(4, (3, 3), "SAME"), RELU, GAP, dense(1)), (6, 5, 2)),
    "valid_relu_gap": (serial(conv(4, (3, 2), "VALID"), RELU, conv(4, (2, 2)), RELU, GAP, dense(1)), (6, 5, 1)),
    "circular_erf_gap": (serial(conv(4, (3, 3), "CIRCULAR", W_std=1.3, b_std=0.2), ERF,
                                conv(4, (2, 3), "CIRCULAR"), ERF, GAP, dense(1)), (5, 6, 2)),
    "same_relu_flatten": (serial(conv(4, (3, 3), "SAME"), RELU, conv(4, (3, 3), "SAME"), RELU, FLAT, dense(1)),
                          (6, 5, 1)),
    "valid_gelu_flatten": (serial(conv(4, (2, 3)), GELU, conv(4, (3, 2), "VALID", b_std=None), GELU, FLAT,
                                  dense(1)), (6, 6, 3)),
    "circular_flatten": (serial(conv(4, (3, 3), "CIRCULAR"), RELU, FLAT, dense(8), RELU, dense(1)), (5, 5, 2)),
    "strided_same": (serial(conv(4, (3, 3), "SAME", strides=(2, 2)), RELU, conv(4, (2, 2), "SAME", strides=(1, 2)),
                            RELU, GAP, dense(1)), (7, 6, 2)),
    "strided_valid_flatten": (serial(conv(4, (3, 2), "VALID", strides=(2, 1)), RELU, FLAT, dense(1)), (7, 6, 1)),
    "strided_circular": (serial(conv(4, (3, 3), "CIRCULAR", strides=(2, 2)), ERF, GAP, dense(1)), (6, 5, 1)),
    "avgpool_valid": (serial(conv(4, (2, 2), "SAME"), RELU, "stax.AvgPool((2, 2))", conv(4, (2, 2)), RELU, GAP,
                             dense(1)), (6, 6, 1)),
    "avgpool_strided_flatten": (serial(conv(4, (3, 3), "SAME"), RELU, "stax.AvgPool((2, 2), strides=(2, 2))", FLAT,
                                       dense(1)), (6, 6, 2)),
    "avgpool_same": (serial(conv(4, (2, 2), "SAME"), ERF, "stax.AvgPool((3, 3), padding='SAME')", FLAT, dense(1)),
                     (5, 5, 1)),
    "avgpool_same_normalized": (serial(conv(4, (2, 2), "SAME"), ERF,
                                       "stax.AvgPool((3, 2), padding='SAME', normalize_edges=True)", FLAT, dense(1)),
                                (5, 4, 1)),
    "avgpool_circular": (serial(conv(4, (2, 2), "SAME"), RELU, "stax.AvgPool((3, 3), strides=(2, 2), "
                                "padding='CIRCULAR')", GAP, dense(1)), (5, 6, 1)),
    "one_d_same_gap": (serial(conv(4, (3,), "SAME"), RELU, conv(4, (3,), "SAME"), RELU, GAP, dense(1)), (9, 2)),
    "one_d_valid_flatten": (serial(conv(4, (3,)), ERF, conv(4, (2,), "VALID", strides=(2,)), ERF, FLAT, dense(1)),
                            (9, 1)),
    "one_d_circular_pool": (serial(conv(4, (3,), "CIRCULAR"), RELU, "stax.AvgPool((2,))", GAP, dense(1)), (8, 3)),
    "standard_gap": (serial(conv(7, (3, 3), "SAME", param=STD), RELU, conv(5, (2, 2), "SAME", param=STD), RELU, GAP,
                            dense(1, param=STD)), (5, 5, 3)),
    "standard_flatten_no_bias": (serial(conv(6, (2, 2), "VALID", b_std=None, param=STD), RELU, FLAT,
                                        dense(9, b_std=None, param=STD), RELU, dense(1, param=STD)), (5, 4, 2)),
    "standard_bias_zero": (serial(conv(3, (3, 3), "SAME", b_std=0.0, param=STD), ERF, GAP,
                                  dense(1, b_std=0.0, param=STD)), (4, 4, 2)),
    "dense_per_position": (serial(conv(4, (2, 2), "SAME"), RELU, dense(6), RELU, GAP, dense(1)), (4, 5, 2)),
    "residual": (serial(conv(4, (3, 3), "SAME"),
                        "stax.FanOut(2)", "stax.parallel(" + serial(RELU, conv(4, (3, 3), "SAME")) + ", stax.Identity())",
                        "stax.FanInSum()", RELU, GAP, dense(1)), (5, 5, 1)),
    "spatial_output": (serial(conv(4, (3, 3), "SAME"), RELU, conv(4, (2, 2), "VALID")), (4, 4, 1)),
    "spatial_output_one_d": (serial(conv(4, (3,), "SAME"), ERF, conv(4, (2,), "CIRCULAR")), (6, 2)),
    "layernorm_channels": (serial(conv(4, (3, 3), "SAME"), "stax.LayerNorm()", RELU, conv(4, (2, 2), "SAME"), RELU,
                                  GAP, dense(1)), (5, 5, 2)),
    "layernorm_all_axes": (serial(conv(4, (3, 3), "SAME", b_std=0.3), "stax.LayerNorm(axis=(1, 2, 3), eps=0.1)", ERF,
                                  FLAT, dense(1)), (5, 4, 1)),
    "layernorm_height_channels": (serial(conv(4, (2, 2), "VALID"), "stax.LayerNorm(axis=(-3, -1))", RELU, GAP,
                                         dense(1)), (5, 6, 2)),
    "layernorm_one_d": (serial(conv(4, (3,), "SAME"), "stax.LayerNorm(axis=(-2, -1))", GELU, GAP, dense(1)), (7, 2)),
    "layernorm_after_pooling": (serial(conv(4, (3, 3), "SAME"), RELU, GAP, dense(8), "stax.LayerNorm()", RELU,
                                       dense(1)), (4, 4, 1)),
    "deep_relu_gap": (serial(*[f"{conv(4, (3, 3), 'SAME', W_std=1.4, b_std=0.1)}, {RELU}" for _ in range(5)], GAP,
                             dense(1)), (5, 5, 1)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent.parent / "tests/golden/conv.npz"))
    args = parser.parse_args()
    import jax
    import jax.numpy as jnp  # noqa: F401 - for the sources
    import neural_tangents as nt
    from neural_tangents import stax

    arrays, meta = {}, {"neural_tangents": nt.__version__, "jax": jax.__version__, "generator": "tools/make_golden_conv.py",
                        "configs": {}}
    for i, (name, (source, shape)) in enumerate(CONFIGS.items()):
        rng = np.random.default_rng(1000 + i)
        x1, x2 = rng.standard_normal((4,) + shape), rng.standard_normal((3,) + shape)
        _, _, kernel_fn = eval(source)
        cross = kernel_fn(x1, x2, ("nngp", "ntk"))
        same = kernel_fn(x1, None, ("nngp", "ntk"))
        for key, value in (("x1", x1), ("x2", x2), ("nngp", cross.nngp), ("ntk", cross.ntk),
                           ("nngp_same", same.nngp), ("ntk_same", same.ntk)):
            arrays[f"{name}/{key}"] = np.asarray(value, dtype=np.float64)
        meta["configs"][name] = source
        print(name, np.shape(cross.nngp))
    np.savez_compressed(args.out, meta=json.dumps(meta), **arrays)


if __name__ == "__main__":
    main()
