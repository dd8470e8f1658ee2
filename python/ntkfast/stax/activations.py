"""The activation layers under neural-tangents' names (``Relu()``, ``Erf(a, b, c)``, ...), and
ntkfast's built-in numerical activations as layers (``Tanh()``, ``Softplus()``, ...)."""

from __future__ import annotations

import numbers

from .. import activations as _act
from .._arrays import renamed_error
from .layers import Elementwise, _flag


def Relu(do_stabilize: bool = False) -> Elementwise:
    """(``do_stabilize``, neural-tangents' safeguard for its angle formula, has nothing to do here:
    ntkfast's angle is stable.)"""
    return Elementwise(_act.Relu(), name="Relu()")


def LeakyRelu(alpha: float, do_stabilize: bool = False) -> Elementwise:
    return Elementwise(_act.LeakyRelu(alpha), name=f"LeakyRelu({alpha!r})")


def ABRelu(a: float, b: float, do_stabilize: bool = False) -> Elementwise:
    return Elementwise(_act.ABRelu(a, b), name=f"ABRelu({a!r}, {b!r})")


def Abs(do_stabilize: bool = False) -> Elementwise:
    return Elementwise(_act.Abs(), name="Abs()")


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Elementwise:
    return Elementwise(_act.Erf(a, b, c), name=f"Erf({a!r}, {b!r}, {c!r})")


def Sigmoid_like() -> Elementwise:
    return Elementwise(_act.SigmoidLike(), name="Sigmoid_like()")


def Gelu(approximate: bool = False) -> Elementwise:
    """The GELU x Phi(x); its kernels are exact. ``approximate=True`` (as in neural-tangents) only
    changes finite networks' ``apply_fn`` to the tanh approximation."""
    approximate = _flag(approximate, "approximate")
    return Elementwise(_act.Gelu(), name=f"Gelu(approximate={approximate})", approximate=approximate)


def Sign() -> Elementwise:
    return Elementwise(_act.Sign(), name="Sign()")


def Sin(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Elementwise:
    return Elementwise(_act.Sin(a, b, c), name=f"Sin({a!r}, {b!r}, {c!r})")


def Cos(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Elementwise:
    return Elementwise(_act.Cos(a, b, c), name=f"Cos({a!r}, {b!r}, {c!r})")


def Rbf(gamma: float = 1.0) -> Elementwise:
    return Elementwise(_act.Rbf(gamma), name=f"Rbf({gamma!r})")


def Gabor() -> Elementwise:
    return Elementwise(_act.Gabor(), name="Gabor()")


def Exp(a: float = 1.0, b: float = 1.0) -> Elementwise:
    return Elementwise(_act.Exp(a, b), name=f"Exp({a!r}, {b!r})")


def Gaussian(a: float = 1.0, b: float = -1.0) -> Elementwise:
    return Elementwise(_act.Gaussian(a, b), name=f"Gaussian({a!r}, {b!r})")


def Monomial(degree: int) -> Elementwise:
    return Elementwise(_act.Monomial(degree), name=f"Monomial({degree!r})")


def RectifiedMonomial(degree: int) -> Elementwise:
    return Elementwise(_act.RectifiedMonomial(degree), name=f"RectifiedMonomial({degree!r})")


def ElementwiseNumerical(fn, deg: int, df=None) -> Elementwise:
    """Any activation by Gauss-Hermite quadrature; ``deg`` is a floor: the degree adapts upwards
    until the series converges (see ``ntkfast.activations.Numerical``)."""
    if isinstance(deg, bool) or not isinstance(deg, numbers.Integral) or not 1 <= deg <= 2048:
        raise ValueError(f"deg: must be an integer from 1 to 2048, got {deg!r}")
    name = getattr(fn, "__name__", repr(fn))
    try:
        activation = _act.Numerical(fn, df, max(int(deg), 8))
    except (TypeError, ValueError) as exc:  # named as activations.Numerical's arguments: dfn, degree
        raise renamed_error(exc, {"dfn": "df", "degree": "deg", "fn": "fn"}) from None
    layer = Elementwise(activation, name=f"ElementwiseNumerical({name}, deg={deg})")
    layer._dfn_name = "df"  # what the finite networks' errors call the derivative
    return layer


def _numerical(builtin: str, label: str):
    def layer() -> Elementwise:
        return Elementwise(_act.Numerical(builtin), name=f"{label}()")

    layer.__name__ = label
    layer.__doc__ = f"The {builtin} activation (ntkfast's built-in numerical activation ``{builtin!r}``)."
    return layer


Tanh = _numerical("tanh", "Tanh")
Softplus = _numerical("softplus", "Softplus")
Silu = _numerical("silu", "Silu")
Swish = _numerical("swish", "Swish")
Elu = _numerical("elu", "Elu")
Selu = _numerical("selu", "Selu")
Sigmoid = _numerical("sigmoid", "Sigmoid")
GeluTanh = _numerical("gelu_tanh", "GeluTanh")
