"""Write neural-tangents' kernels of composed networks to tests/golden/stax.npz.

tests/test_stax.py checks ``ntkfast.stax`` against this file on every run, without JAX. Each
configuration is a source string such as

    "stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.5, b_std=0.1))"

evaluated here with ``stax`` = ``neural_tangents.stax`` (and ``jnp`` = ``jax.numpy``), and in the
test with ``stax`` = ``ntkfast.stax`` (and ``jnp`` = ``numpy``): the same text must build the same
network in both libraries, which is the point of ``ntkfast.stax``. The configurations cover
residual blocks (FanOut + parallel(..., Identity()) + FanInSum), nested residual blocks, FanOut(3),
parallel branches, LayerNorm (several eps), FanInProd of Dense and of activation branches, mixed
activations, mixed widths in the standard parameterization (b_std None / 0.0 / > 0), mixed
parameterizations and deep stacks (depth 8-20).

For each configuration the file holds the inputs x1 (7 x 5) and x2 (4 x 5), drawn from a NumPy
generator with a fixed starting state per configuration, and neural-tangents' ``kernel_fn(x1, x2)``
and ``kernel_fn(x1, None)`` (nngp, ntk, and ``cov1``, its exact diagonal NNGP of x1). A
configuration neural-tangents refuses is stored as an expected error: the exception type and
message, and the name of the layer at fault (``offender``), which ntkfast's message must contain.

neural-tangents is not a dependency of ntkfast: run this in its own environment (see
tools/make_golden.py; neural-tangents 0.6.5, jax/jaxlib 0.4.23, numpy 1.26, Python 3.11):

    JAX_ENABLE_X64=1 ~/nt-venv/bin/python tools/make_golden_stax.py [--out PATH]

It takes about a minute and writes ~0.2 MB. Everything is float64.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
import warnings

os.environ["JAX_ENABLE_X64"] = "1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

N1, N2, DIM = 7, 4, 5


def _serial(*layers: str) -> str:
    return "stax.serial(" + ", ".join(layers) + ")"


def _dense(width, W_std=1.0, b_std=None, parameterization=None) -> str:
    extra = "" if parameterization is None else f", parameterization={parameterization!r}"
    return f"stax.Dense({width}, W_std={W_std!r}, b_std={b_std!r}{extra})"


def _residual(branch: str) -> str:
    """x + branch(x): FanOut(2), parallel(branch, Identity()), FanInSum()."""
    return f"stax.FanOut(2), stax.parallel({branch}, stax.Identity()), stax.FanInSum()"


def _deep(depth, width, W_std, b_std, act, parameterization=None) -> str:
    hidden = [f"{_dense(width, W_std, b_std, parameterization)}, {act}" for _ in range(depth)]
    return _serial(*hidden, _dense(1, W_std, b_std, parameterization))


def _deep_mixed(acts, widths, W_std, b_std, parameterization=None) -> str:
    hidden = [f"{_dense(w, W_std, b_std, parameterization)}, {a}" for a, w in zip(acts, widths)]
    return _serial(*hidden, _dense(1, W_std, b_std, parameterization))


STD = "standard"

# name: (source, input scale); the input scale keeps the moments of Exp / Gaussian / Monomial moderate
CONFIGS: dict[str, tuple[str, float]] = {
    # -- plain stacks, activations mixed per layer --------------------------------------------
    "mlp_relu": (_serial(_dense(64, 1.5, 0.1), "stax.Relu()", _dense(1, 1.5, 0.1)), 1.0),
    "mixed_relu_erf_gelu": (_serial(_dense(16, 1.3, 0.2), "stax.Relu()", _dense(16, 1.1, 0.1), "stax.Erf()",
                                    _dense(16, 1.2), "stax.Gelu()", _dense(1, 0.9, 0.05)), 1.0),
    "mixed_sin_abrelu_leaky_abs": (_serial(_dense(8, 1.4, 0.3), "stax.Sin(1.2, 0.7, 0.3)", _dense(8, 1.2, 0.1),
                                           "stax.ABRelu(-0.4, 1.6)", _dense(8, 1.0), "stax.LeakyRelu(0.1)",
                                           _dense(8, 1.3, 0.2), "stax.Abs()", _dense(1, 1.1, 0.1)), 1.0),
    "mixed_sigmoid_rbf_gabor": (_serial(_dense(8, 1.5, 0.2), "stax.Sigmoid_like()", _dense(8, 2.0, 0.1),
                                        "stax.Rbf(0.6)", _dense(8, 1.3), "stax.Gabor()", _dense(1, 1.2, 0.3)), 1.0),
    "mixed_exp_gaussian_monomial": (_serial(_dense(8, 1.0, 0.1), "stax.Exp(0.7, 0.4)", _dense(8, 0.9, 0.2),
                                            "stax.Gaussian(1.1, -0.8)", _dense(8, 1.1), "stax.Monomial(2)",
                                            _dense(1, 1.0, 0.1)), 0.5),
    "mixed_cos_monomial_erf": (_serial(_dense(8, 1.0, 0.2), "stax.Cos(0.9, 1.1, -0.2)", _dense(8, 1.2),
                                       "stax.Monomial(3)", _dense(8, 0.8, 0.1), "stax.Erf(1.3, 0.7, -0.2)",
                                       _dense(1, 1.0)), 0.7),
    "mixed_sign_relu": (_serial(_dense(8, 1.2, 0.2), "stax.Sign()", _dense(8, 1.5, 0.1), "stax.Relu()",
                                _dense(1, 1.0, 0.1)), 1.0),
    "mixed_erf_sign_last": (_serial(_dense(8, 1.2, 0.2), "stax.Erf()", _dense(8, 1.5, 0.1), "stax.Sign()",
                                    _dense(1, 1.0, 0.1)), 1.0),
    "mixed_gelu_monomial1_gaussian_default": (_serial(_dense(8, 1.1, 0.1), "stax.Gelu()", _dense(8, 1.3),
                                                      "stax.Monomial(1)", _dense(8, 0.9, 0.2), "stax.Gaussian()",
                                                      _dense(1, 1.0)), 0.7),
    "mixed_exp_default_sin_default": (_serial(_dense(8, 0.8, 0.1), "stax.Exp()", _dense(8, 0.6), "stax.Sin()",
                                              _dense(1, 1.0, 0.2)), 0.5),
    # neural-tangents' RectifiedMonomial is NaN where the angle is 0 (the diagonal), so it is the last activation
    "rectified_monomial2_last": (_serial(_dense(8, 1.3, 0.2), "stax.Erf()", _dense(8, 1.4, 0.1),
                                         "stax.RectifiedMonomial(2)", _dense(1, 1.0, 0.1)), 1.0),
    "rectified_monomial0_last": (_serial(_dense(8, 1.3), "stax.Relu()", _dense(8, 1.4, 0.1),
                                         "stax.RectifiedMonomial(0)", _dense(1, 1.0, 0.1)), 1.0),
    "rectified_monomial3_last": (_serial(_dense(8, 1.0, 0.1), "stax.Gelu()", _dense(8, 1.1),
                                         "stax.RectifiedMonomial(3)", _dense(1, 1.0)), 1.0),
    "activation_last_no_readout": (_serial(_dense(8, 1.3, 0.2), "stax.Relu()", _dense(8, 1.1), "stax.Erf()"), 1.0),
    "dense_only": (_serial(_dense(8, 1.3, 0.2), _dense(8, 0.7), _dense(1, 1.1, 0.5)), 1.0),
    "identity_layers": (_serial(_dense(8, 1.3, 0.2), "stax.Identity()", "stax.Relu()", "stax.Identity()",
                                _dense(1, 1.1, 0.5), "stax.Identity()"), 1.0),
    # -- residual blocks ------------------------------------------------------------------------
    "residual_relu": (_serial(_dense(32, 1.0, 0.1),
                              _residual(_serial("stax.Relu()", _dense(32, 1.2, 0.1))),
                              "stax.Relu()", _dense(1, 1.0, 0.1)), 1.0),
    "residual_two_blocks_erf": (_serial(_dense(16, 1.1, 0.2),
                                        _residual(_serial("stax.Erf()", _dense(16, 0.9, 0.1))),
                                        _residual(_serial("stax.Erf()", _dense(16, 1.3))),
                                        "stax.Erf()", _dense(1, 1.0, 0.1)), 1.0),
    "residual_two_layer_branch": (_serial(_dense(16, 1.4, 0.1),
                                          _residual(_serial("stax.Relu()", _dense(16, 1.2, 0.1), "stax.Gelu()",
                                                            _dense(16, 0.8))),
                                          "stax.Relu()", _dense(1, 1.0)), 1.0),
    "residual_pre_layernorm": (_serial(_dense(16, 1.2, 0.1),
                                       _residual(_serial("stax.LayerNorm()", "stax.Relu()", _dense(16, 1.3, 0.2))),
                                       _residual(_serial("stax.LayerNorm(eps=0.01)", "stax.Gelu()",
                                                         _dense(16, 1.1, 0.1))),
                                       "stax.LayerNorm(eps=1e-6)", "stax.Relu()", _dense(1, 1.0, 0.1)), 1.0),
    "residual_post_layernorm": (_serial(_dense(16, 1.2, 0.1),
                                        _residual(_serial("stax.Erf()", _dense(16, 1.3, 0.2))), "stax.LayerNorm()",
                                        _residual(_serial("stax.Relu()", _dense(16, 1.1, 0.1))),
                                        "stax.LayerNorm(eps=0.1)", _dense(1, 1.0, 0.1)), 1.0),
    "residual_nested": (_serial(_dense(16, 1.1, 0.1),
                                _residual(_serial(_residual(_serial("stax.Relu()", _dense(16, 1.3, 0.1))),
                                                  "stax.Erf()", _dense(16, 0.9, 0.2))),
                                "stax.Relu()", _dense(1, 1.0, 0.1)), 1.0),
    "residual_nested_three_levels": (_serial(_dense(8, 1.0, 0.1),
                                             _residual(_serial(
                                                 _residual(_serial(
                                                     _residual(_serial("stax.Gelu()", _dense(8, 1.2))),
                                                     "stax.Relu()", _dense(8, 1.1, 0.1))),
                                                 "stax.LayerNorm(eps=0.001)", "stax.Erf()", _dense(8, 0.8, 0.2))),
                                             "stax.Abs()", _dense(1, 1.0)), 1.0),
    "residual_fanout3_sum": (_serial(_dense(16, 1.2, 0.1), "stax.FanOut(3)",
                                     "stax.parallel(" + _serial("stax.Relu()", _dense(16, 1.3, 0.1)) + ", "
                                     + _serial("stax.Erf()", _dense(16, 0.8)) + ", stax.Identity())",
                                     "stax.FanInSum()", "stax.Gelu()", _dense(1, 1.0, 0.1)), 1.0),
    "parallel_three_dense_branches": (_serial("stax.FanOut(3)",
                                              "stax.parallel(" + _dense(8, 1.1) + ", " + _dense(8, 0.7, 0.2) + ", "
                                              + _serial(_dense(8, 1.3, 0.1), "stax.Relu()", _dense(8, 1.2)) + ")",
                                              "stax.FanInSum()", "stax.Relu()", _dense(1, 1.0, 0.1)), 1.0),
    "parallel_two_dense_sum_on_inputs": (_serial("stax.FanOut(2)",
                                                 "stax.parallel(" + _dense(8, 1.4, 0.3) + ", " + _dense(8, 0.6) + ")",
                                                 "stax.FanInSum()", "stax.Erf()", _dense(1, 1.0)), 1.0),
    "parallel_activation_branches_sum": (_serial(_dense(8, 1.3, 0.2), "stax.FanOut(2)",
                                                 "stax.parallel(" + _serial("stax.Relu()", _dense(8, 1.1)) + ", "
                                                 + _serial("stax.Sin(1.0, 1.5, 0.2)", _dense(8, 0.9, 0.1)) + ")",
                                                 "stax.FanInSum()", "stax.Relu()", _dense(1, 1.0)), 1.0),
    "residual_deep_8_blocks": (_serial(_dense(16, 1.0, 0.1),
                                       *[_residual(_serial("stax.Relu()", _dense(16, 0.5, 0.05))) for _ in range(8)],
                                       "stax.Relu()", _dense(1, 1.0, 0.1)), 1.0),
    # -- LayerNorm ------------------------------------------------------------------------------
    "layernorm_relu": (_serial(_dense(16, 1.5, 0.1), "stax.LayerNorm()", "stax.Relu()", _dense(1, 1.0, 0.1)), 1.0),
    "layernorm_eps_mixed": (_serial(_dense(16, 1.5, 0.2), "stax.LayerNorm(eps=0.1)", "stax.Erf()",
                                    _dense(16, 1.2), "stax.LayerNorm(eps=1e-5)", "stax.Gelu()",
                                    _dense(16, 0.9, 0.3), "stax.LayerNorm(eps=1.0)", "stax.Sin(1.0, 1.2, 0.1)",
                                    _dense(1, 1.0)), 1.0),
    "layernorm_axis_keyword": (_serial(_dense(8, 1.2), "stax.LayerNorm(axis=-1, eps=0.001)", "stax.Abs()",
                                       _dense(1, 1.0, 0.2)), 1.0),
    "layernorm_last": (_serial(_dense(8, 1.3, 0.2), "stax.Relu()", _dense(1, 1.0, 0.1), "stax.LayerNorm(eps=0.5)"),
                       1.0),
    "layernorm_twice": (_serial(_dense(8, 1.3, 0.2), "stax.LayerNorm()", "stax.LayerNorm(eps=0.2)", "stax.Erf()",
                                _dense(1, 1.0)), 1.0),
    "layernorm_no_bias_small_inputs": (_serial(_dense(8, 0.3), "stax.LayerNorm(eps=0.01)", "stax.Relu()",
                                               _dense(1, 1.0)), 0.2),
    # -- FanInProd ------------------------------------------------------------------------------
    "prod_dense_branches": (_serial("stax.FanOut(2)",
                                    "stax.parallel(" + _dense(16, 1.2, 0.1) + ", " + _dense(16, 0.8, 0.3) + ")",
                                    "stax.FanInProd()", _dense(1, 1.0, 0.1)), 1.0),
    "prod_activation_branches": (_serial(_dense(16, 1.3, 0.1), "stax.FanOut(2)",
                                         "stax.parallel(" + _serial(_dense(16, 1.1, 0.2), "stax.Relu()") + ", "
                                         + _serial(_dense(16, 0.9), "stax.Erf()") + ")",
                                         "stax.FanInProd()", _dense(16, 1.2, 0.1), "stax.Gelu()",
                                         _dense(1, 1.0)), 1.0),
    "prod_three_branches": (_serial(_dense(8, 1.1, 0.2), "stax.Relu()", "stax.FanOut(3)",
                                    "stax.parallel(" + _dense(8, 1.1, 0.2) + ", " + _dense(8, 0.9) + ", "
                                    + _serial(_dense(8, 1.2, 0.1), "stax.Erf()") + ")",
                                    "stax.FanInProd()", _dense(8, 1.0, 0.1), "stax.Relu()", _dense(1, 1.0)), 1.0),
    "prod_then_layernorm_path": (_serial("stax.FanOut(2)",
                                         "stax.parallel(" + _serial(_dense(8, 1.3), "stax.LayerNorm()") + ", "
                                         + _serial(_dense(8, 1.0, 0.4), "stax.Abs()") + ")",
                                         "stax.FanInProd()", _dense(8, 1.1, 0.1), "stax.LayerNorm(eps=0.05)",
                                         "stax.Erf()", _dense(1, 1.0)), 1.0),
    "prod_inside_residual": (_serial(_dense(8, 1.0, 0.1),
                                     _residual(_serial("stax.FanOut(2)",
                                                       "stax.parallel(" + _dense(8, 1.1) + ", "
                                                       + _serial("stax.Relu()", _dense(8, 0.9, 0.2)) + ")",
                                                       "stax.FanInProd()", _dense(8, 0.7, 0.1))),
                                     "stax.Relu()", _dense(1, 1.0)), 1.0),
    "prod_of_inputs": (_serial("stax.FanOut(2)", "stax.FanInProd()", _dense(8, 1.2, 0.1), "stax.Relu()",
                               _dense(1, 1.0)), 1.0),
    "prod_dense_and_input": (_serial("stax.FanOut(2)", "stax.parallel(" + _dense(5, 1.2, 0.3) + ", stax.Identity())",
                                     "stax.FanInProd()", _dense(8, 1.0, 0.1), "stax.Erf()", _dense(1, 1.0)), 1.0),
    "prod_last": (_serial(_dense(8, 1.2, 0.1), "stax.FanOut(2)",
                          "stax.parallel(" + _dense(1, 1.1, 0.2) + ", " + _serial("stax.Erf()", _dense(1, 0.9)) + ")",
                          "stax.FanInProd()"), 1.0),
    # -- standard parameterization: widths (fan-ins) enter the NTK -------------------------------
    "standard_mixed_widths_bias": (_serial(_dense(32, 1.3, 0.1, STD), "stax.Relu()", _dense(7, 1.1, 0.2, STD),
                                           "stax.Erf()", _dense(100, 0.9, 0.05, STD), "stax.Gelu()",
                                           _dense(1, 1.0, 0.1, STD)), 1.0),
    "standard_mixed_widths_no_bias": (_serial(_dense(32, 1.3, None, STD), "stax.Relu()", _dense(7, 1.1, None, STD),
                                              "stax.Erf()", _dense(100, 0.9, None, STD), "stax.Gelu()",
                                              _dense(1, 1.0, None, STD)), 1.0),
    "standard_mixed_widths_zero_bias": (_serial(_dense(32, 1.3, 0.0, STD), "stax.Relu()", _dense(7, 1.1, 0.0, STD),
                                                "stax.Erf()", _dense(100, 0.9, 0.0, STD), "stax.Gelu()",
                                                _dense(1, 1.0, 0.0, STD)), 1.0),
    "standard_bias_mixed_none_zero": (_serial(_dense(12, 1.3, None, STD), "stax.Abs()", _dense(3, 1.1, 0.0, STD),
                                              "stax.Relu()", _dense(20, 0.9, 0.3, STD), "stax.Relu()",
                                              _dense(1, 1.0, None, STD)), 1.0),
    "standard_residual": (_serial(_dense(24, 1.2, 0.1, STD),
                                  _residual(_serial("stax.Relu()", _dense(24, 1.1, 0.1, STD))),
                                  _residual(_serial("stax.Erf()", _dense(24, 0.9, None, STD))),
                                  "stax.Relu()", _dense(1, 1.0, 0.0, STD)), 1.0),
    "standard_layernorm": (_serial(_dense(10, 1.2, 0.1, STD), "stax.LayerNorm(eps=0.01)", "stax.Relu()",
                                   _dense(30, 1.1, None, STD), "stax.LayerNorm()", "stax.Erf()",
                                   _dense(1, 1.0, 0.2, STD)), 1.0),
    "standard_prod": (_serial(_dense(6, 1.2, 0.1, STD), "stax.FanOut(2)",
                              "stax.parallel(" + _serial(_dense(9, 1.1, 0.2, STD), "stax.Relu()") + ", "
                              + _dense(9, 0.8, None, STD) + ")",
                              "stax.FanInProd()", _dense(4, 1.0, 0.1, STD), "stax.Erf()",
                              _dense(1, 1.0, None, STD)), 1.0),
    "standard_parallel_widths_on_inputs": (_serial("stax.FanOut(2)",
                                                   "stax.parallel(" + _dense(11, 1.4, 0.3, STD) + ", "
                                                   + _serial(_dense(3, 1.2, None, STD), "stax.Relu()",
                                                             _dense(11, 0.6, 0.0, STD)) + ")",
                                                   "stax.FanInSum()", "stax.Relu()", _dense(1, 1.0, 0.1, STD)), 1.0),
    "mixed_parameterizations": (_serial(_dense(16, 1.3, 0.1), "stax.Relu()", _dense(5, 1.1, 0.2, STD), "stax.Erf()",
                                        _dense(40, 0.9, None), "stax.Relu()", _dense(1, 1.0, 0.0, STD)), 1.0),
    # -- deep stacks ----------------------------------------------------------------------------
    "deep8_erf": (_deep(8, 16, 1.3, 0.2, "stax.Erf()"), 1.0),
    "deep12_relu_standard": (_deep(12, 24, 1.4, 0.1, "stax.Relu()", STD), 1.0),
    "deep20_relu": (_deep(20, 32, 1.4, 0.1, "stax.Relu()"), 1.0),
    "deep16_gelu_no_bias": (_deep(16, 8, 1.2, None, "stax.Gelu()"), 1.0),
    "deep10_mixed_activations": (_deep_mixed(["stax.Relu()", "stax.Erf()", "stax.Gelu()", "stax.Abs()",
                                              "stax.LeakyRelu(0.2)", "stax.Sin(1.0, 1.0, 0.5)", "stax.ABRelu(0.3, 1.2)",
                                              "stax.Sigmoid_like()", "stax.Rbf(0.5)", "stax.Relu()"],
                                             [16, 8, 32, 4, 16, 8, 16, 12, 16, 8], 1.3, 0.1), 1.0),
    "deep10_mixed_standard_widths": (_deep_mixed(["stax.Relu()", "stax.Erf()"] * 5,
                                                 [4, 40, 9, 17, 3, 64, 5, 12, 30, 2], 1.3, 0.1, STD), 1.0),
    "deep10_layernorm_gelu": (_serial(*[f"{_dense(8, 1.3, 0.1)}, stax.LayerNorm(eps=0.001), stax.Gelu()"
                                        for _ in range(10)], _dense(1, 1.0)), 1.0),
    "deep8_residual_layernorm": (_serial(_dense(16, 1.0, 0.1),
                                         *[_residual(_serial("stax.LayerNorm()", "stax.Erf()", _dense(16, 0.7, 0.1)))
                                           for _ in range(8)],
                                         "stax.LayerNorm()", _dense(1, 1.0)), 1.0),
    # -- numerical activation (Gauss-Hermite quadrature on both sides) --------------------------
    # inputs at a smaller scale: at pre-activation variances ~7 neural-tangents' 200-point rule is off by ~3e-8
    "numerical_tanh": (_serial(_dense(8, 1.2, 0.1), "stax.ElementwiseNumerical(jnp.tanh, deg=200)", _dense(1, 1.0)),
                       0.6),
    "numerical_tanh_relu": (_serial(_dense(8, 1.0, 0.1), "stax.Relu()", _dense(8, 1.1),
                                    "stax.ElementwiseNumerical(jnp.tanh, deg=200)", _dense(1, 1.0, 0.1)), 0.6),
}

# name: (source, offender): configurations neural-tangents refuses; ``offender`` names the layer at fault
ERRORS: dict[str, tuple[str, str]] = {
    "activation_on_inputs": (_serial("stax.Relu()", _dense(1, 1.0)), "Relu"),
    "activation_after_activation": (_serial(_dense(8, 1.3), "stax.Relu()", "stax.Erf()", _dense(1, 1.0)), "Erf"),
    "activation_after_identity_after_activation": (_serial(_dense(8, 1.3), "stax.Gelu()", "stax.Identity()",
                                                           "stax.Relu()", _dense(1, 1.0)), "Relu"),
    "activation_after_faninprod": (_serial(_dense(8, 1.3), "stax.FanOut(2)",
                                           "stax.parallel(" + _dense(8, 1.0) + ", " + _dense(8, 1.1) + ")",
                                           "stax.FanInProd()", "stax.Relu()", _dense(1, 1.0)), "Relu"),
    "activation_after_faninprod_of_inputs": (_serial("stax.FanOut(2)", "stax.FanInProd()", "stax.Erf()",
                                                     _dense(1, 1.0)), "Erf"),
    "activation_on_inputs_in_branch": (_serial("stax.FanOut(2)",
                                               "stax.parallel(" + _dense(5, 1.0) + ", "
                                               + _serial("stax.Relu()", _dense(5, 1.0)) + ")",
                                               "stax.FanInSum()", _dense(1, 1.0)), "Relu"),
    "faninsum_non_gaussian_branches": (_serial(_dense(8, 1.3), "stax.Relu()", "stax.FanOut(2)",
                                               "stax.parallel(" + _serial(_dense(8, 1.0), "stax.Relu()")
                                               + ", stax.Identity())", "stax.FanInSum()", _dense(1, 1.0)),
                                       "FanInSum"),
    "faninsum_residual_identity_non_gaussian": (_serial(_dense(8, 1.3), "stax.Relu()",
                                                        _residual(_serial(_dense(8, 1.0), "stax.Relu()",
                                                                          _dense(8, 1.0))), _dense(1, 1.0)),
                                                "FanInSum"),
    "faninsum_of_inputs": (_serial("stax.FanOut(2)", "stax.parallel(stax.Identity(), stax.Identity())",
                                   "stax.FanInSum()", _dense(1, 1.0)), "FanInSum"),
    "faninsum_dense_and_inputs": (_serial("stax.FanOut(2)", "stax.parallel(" + _dense(5, 1.0) + ", stax.Identity())",
                                          "stax.FanInSum()", _dense(1, 1.0)), "FanInSum"),
    "faninsum_of_products": (_serial("stax.FanOut(2)",
                                     "stax.parallel(" + _serial("stax.FanOut(2)", "stax.parallel("
                                                                + _dense(8, 1.0) + ", " + _dense(8, 1.0) + ")",
                                                                "stax.FanInProd()") + ", " + _dense(8, 1.0) + ")",
                                     "stax.FanInSum()", _dense(1, 1.0)), "FanInSum"),
    "faninsum_width_mismatch": (_serial("stax.FanOut(2)", "stax.parallel(" + _dense(8, 1.0) + ", "
                                        + _dense(16, 1.0) + ")", "stax.FanInSum()", _dense(1, 1.0)), "FanInSum"),
    "faninprod_width_mismatch": (_serial("stax.FanOut(2)", "stax.parallel(" + _dense(8, 1.0) + ", "
                                         + _dense(16, 1.0) + ")", "stax.FanInProd()", _dense(1, 1.0)), "FanInProd"),
    "layernorm_after_activation": (_serial(_dense(8, 1.3), "stax.Relu()", "stax.LayerNorm()", _dense(1, 1.0)),
                                   "LayerNorm"),
    "layernorm_on_inputs": (_serial("stax.LayerNorm()", _dense(1, 1.0)), "LayerNorm"),
    "layernorm_after_faninprod": (_serial(_dense(8, 1.3), "stax.FanOut(2)",
                                          "stax.parallel(" + _dense(8, 1.0) + ", " + _dense(8, 1.1) + ")",
                                          "stax.FanInProd()", "stax.LayerNorm()", _dense(1, 1.0)), "LayerNorm"),
}


def inputs(index: int, scale: float):
    rng = np.random.default_rng(2024 + index)
    return scale * rng.standard_normal((N1, DIM)), scale * 1.3 * rng.standard_normal((N2, DIM))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "stax.npz"
    parser.add_argument("--out", type=pathlib.Path, default=default)
    parser.add_argument("--only", nargs="*", help="names of configurations to compute (a check; writes nothing)")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    names = {"stax": stax, "jnp": jnp}
    warnings.simplefilter("ignore")  # ElementwiseNumerical warns about its accuracy
    out: dict = {}
    meta = {"neural_tangents": nt.__version__, "jax": jax.__version__, "numpy": np.__version__,
            "generator": "tools/make_golden_stax.py", "configs": [], "errors": []}
    all_names = list(CONFIGS) + list(ERRORS)
    assert len(set(all_names)) == len(all_names)
    for index, (name, (source, scale)) in enumerate(CONFIGS.items()):
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        x1, x2 = inputs(index, scale)
        kernel_fn = eval(source, names)[2]  # noqa: S307 - our own source strings
        cross = kernel_fn(x1, x2)
        sym = kernel_fn(x1, None)
        arrays = {"x1": x1, "x2": x2, "nngp_cross": cross.nngp, "ntk_cross": cross.ntk, "nngp_sym": sym.nngp,
                  "ntk_sym": sym.ntk, "cov1": sym.cov1}
        for key, value in arrays.items():
            value = np.asarray(value, dtype=np.float64)
            if key.startswith("ntk") and value.shape == ():  # no Dense anywhere: neural-tangents' scalar 0
                value = np.broadcast_to(value, arrays["nngp" + key[3:]].shape).copy()
            out[f"{name}/{key}"] = value
        finite = {k: bool(np.all(np.isfinite(out[f"{name}/{k}"]))) for k in arrays}
        meta["configs"].append({"name": name, "source": source, "input_scale": scale, "finite": finite})
        print(f"{name}: {time.perf_counter() - start:.1f} s"
              + ("" if all(finite.values()) else f"  non-finite: {[k for k, v in finite.items() if not v]}"),
              flush=True)
    for index, (name, (source, offender)) in enumerate(ERRORS.items()):
        if args.only and name not in args.only:
            continue
        x1, x2 = inputs(1000 + index, 1.0)
        try:
            kernel_fn = eval(source, names)[2]  # noqa: S307
            kernel_fn(x1, x2)
        except Exception as exc:  # noqa: BLE001 - its type is what is recorded
            meta["errors"].append({"name": name, "source": source, "offender": offender,
                                   "error": type(exc).__name__, "message": str(exc)})
            print(f"{name}: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
        else:
            raise SystemExit(f"{name}: neural-tangents computed it; move it to CONFIGS")
    if args.only:
        return
    for key, value in out.items():
        assert value.dtype == np.float64, key
    out["meta"] = np.array(json.dumps(meta, sort_keys=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"{args.out}: {len(meta['configs'])} configurations, {len(meta['errors'])} expected errors, "
          f"{args.out.stat().st_size / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
