"""``ntkfast.stax``: neural-tangents' layer language on ntkfast's core.

Migrating is one changed import::

    from ntkfast import stax          # was: from neural_tangents import stax

    init_fn, apply_fn, kernel_fn = stax.serial(
        stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(),
        stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(),
        stax.Dense(1, W_std=1.5, b_std=0.05))
    k = kernel_fn(x1, x2, get="ntk")     # NumPy in, NumPy out

Layers are values: every layer and combinator returns a ``Layer`` that unpacks as
``(init_fn, apply_fn, kernel_fn)`` with neural-tangents' signatures, conventions and numbers, and
also has ``.kernel``, ``.predict`` and ``.init`` (a finite ``ComposedNetwork``). The whole tree is
compiled once into the core's per-tile program: consecutive Dense + activation pairs run fused,
branches (``FanOut``, ``parallel``, ``FanInSum``, ``FanInProd``) and ``LayerNorm`` are steps of it.

Conventions (neural-tangents'): ``Dense(out_dim, W_std=1., b_std=None, parameterization='ntk')``;
the input kernel is x1.x2 / d; an activation needs Gaussian inputs (a Dense, possibly followed by
``LayerNorm``, ``Identity`` or a ``FanInSum`` of Gaussian branches, before it); ``FanInSum`` adds
kernels of independent Gaussian branches, ``FanInProd`` multiplies them (product rule for the NTK);
``LayerNorm`` divides by the square roots of the diagonals (plus ``eps``). ``out_dim`` matters to
the kernels only in the "standard" parameterization, through the fan-in of the next Dense.
"""

from .activations import (ABRelu, Abs, Cos, Elu, ElementwiseNumerical, Erf, Exp, Gabor, Gaussian, Gelu, GeluTanh,
                          LeakyRelu, Monomial, Rbf, RectifiedMonomial, Relu, Selu, Sigmoid, Sigmoid_like, Sign, Silu,
                          Sin, Softplus, Swish, Tanh)
from .convolutional import AvgPool, Conv, Flatten, GlobalAvgPool
from .layers import (Dense, Elementwise, FanInProd, FanInSum, FanOut, Identity, Layer, LayerNorm, Parallel,  # noqa: F401
                     Serial, _fold, as_seed, nesting_depth, nesting_error, parallel, run_nested, serial)

__all__ = [
    "Layer", "serial", "parallel", "FanOut", "FanInSum", "FanInProd", "Identity", "Dense", "LayerNorm",
    "Relu", "LeakyRelu", "ABRelu", "Abs", "Erf", "Sigmoid_like", "Gelu", "Sign", "Sin", "Cos", "Rbf", "Gabor",
    "Exp", "Gaussian", "Monomial", "RectifiedMonomial", "ElementwiseNumerical", "Elementwise",
    "Tanh", "Softplus", "Silu", "Swish", "Elu", "Selu", "Sigmoid", "GeluTanh",
    "Conv", "AvgPool", "GlobalAvgPool", "Flatten",
]
