"""Activation functions of an MLP, as specs the Rust core evaluates in closed form.

Each class names a pointwise nonlinearity phi; the core computes its dual maps
Sigma-hat = E[phi(u) phi(v)] and Sigma-dot = E[phi'(u) phi'(v)] for Gaussian (u, v), with the
conventions and numbers of neural-tangents' ``stax`` layers of the same names. Wherever an
activation is accepted, a string alias works too for every activation without required
parameters: ``"relu"``, ``"abs"``, ``"erf"``, ``"sigmoid_like"``, ``"gelu"``, ``"sign"``,
``"identity"``, ``"sin"``, ``"cos"``, ``"rbf"``, ``"gabor"``, ``"exp"``, ``"gaussian"``.
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "Activation",
    "ABRelu",
    "Relu",
    "LeakyRelu",
    "Abs",
    "Erf",
    "SigmoidLike",
    "Gelu",
    "Sign",
    "Identity",
    "Sin",
    "Cos",
    "Rbf",
    "Gabor",
    "Exp",
    "Gaussian",
    "Monomial",
    "RectifiedMonomial",
    "Numerical",
    "BUILTIN_NUMERICAL",
    "ALIASES",
    "get",
]


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    return value


class Activation:
    """Base class: a nonlinearity known to the core by ``_core_name`` and its parameters.

    ``_fields`` are the constructor arguments (shown by ``repr``); ``_core_params`` the
    parameters of the core's family (``abrelu`` takes (a, b) whichever subclass built it).
    """

    _core_name: str = ""
    _fields: tuple[str, ...] = ()

    def _core_params(self) -> tuple[float, ...]:
        return ()

    def _core_spec(self) -> tuple[str, tuple[float, ...]]:
        return self._core_name, self._core_params()

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self._core_spec() == other._core_spec()

    def __hash__(self) -> int:
        return hash(self._core_spec())


class ABRelu(Activation):
    """``a * min(x, 0) + b * max(x, 0)``: the arc-cosine kernels of Cho & Saul (2009)."""

    _core_name = "abrelu"
    _fields = ("a", "b")

    def __init__(self, a: float, b: float):
        self.a = _finite(a, "a")
        self.b = _finite(b, "b")

    def _core_params(self) -> tuple[float, ...]:
        return (self.a, self.b)


class Relu(ABRelu):
    """``max(x, 0)``. Use ``W_std=sqrt(2)`` for He scaling (no factor 2 is folded in)."""

    _fields = ()

    def __init__(self) -> None:
        super().__init__(0.0, 1.0)


class LeakyRelu(ABRelu):
    """``alpha * min(x, 0) + max(x, 0)``."""

    _fields = ("alpha",)

    def __init__(self, alpha: float):
        # checked under its own name: the parent would report a bad value as ``a``
        super().__init__(_finite(alpha, "alpha"), 1.0)
        self.alpha = self.a


class Abs(ABRelu):
    """``|x|``."""

    _fields = ()

    def __init__(self) -> None:
        super().__init__(-1.0, 1.0)


class _OfAffine(Activation):
    """An activation of the family ``a * f(b * x + ...) + ...`` with parameters (a, b, c)."""

    _fields = ("a", "b", "c")

    def __init__(self, a: float = 1.0, b: float = 1.0, c: float = 0.0):
        self.a = _finite(a, "a")
        self.b = _finite(b, "b")
        self.c = _finite(c, "c")

    def _core_params(self) -> tuple[float, ...]:
        return (self.a, self.b, self.c)


class Erf(_OfAffine):
    """``a * erf(b * x) + c`` (Williams 1997)."""

    _core_name = "erf"


class SigmoidLike(Erf):
    """``0.5 * erf(x / 2.4020563531719796) + 0.5``, neural-tangents' stand-in for the logistic sigmoid."""

    _fields = ()

    def __init__(self) -> None:
        super().__init__(0.5, 1 / 2.4020563531719796, 0.5)


class Gelu(Activation):
    """The exact GELU ``x * Phi(x)`` (Tsuchida et al. 2020 closed form)."""

    _core_name = "gelu"


class Sign(Activation):
    """``sign(x)``. Its derivative vanishes almost everywhere: no NTK flows through it."""

    _core_name = "sign"


class Identity(Activation):
    """``x``: a deep linear network."""

    _core_name = "identity"


class Sin(_OfAffine):
    """``a * sin(b * x + c)``."""

    _core_name = "sin"


class Cos(Sin):
    """``a * cos(b * x + c)``, i.e. ``Sin(a, b, c + pi/2)`` (as neural-tangents defines it)."""

    def _core_params(self) -> tuple[float, ...]:
        return (self.a, self.b, self.c + math.pi / 2)


class Rbf(Activation):
    """``sqrt(2) * sin(sqrt(2 * gamma) * x + pi/4)``, whose NNGP map is the RBF kernel
    ``exp(-gamma * |u - v|^2)`` of the pre-activations."""

    _core_name = "rbf"
    _fields = ("gamma",)

    def __init__(self, gamma: float = 1.0):
        self.gamma = _finite(gamma, "gamma")
        if self.gamma <= 0:
            raise ValueError(f"gamma: must be > 0, got {gamma}")

    def _core_params(self) -> tuple[float, ...]:
        return (self.gamma,)


class Gabor(Activation):
    """``exp(-x^2) * sin(x)``."""

    _core_name = "gabor"


class Exp(Activation):
    """``a * exp(b * x)``."""

    _core_name = "exp"
    _fields = ("a", "b")

    def __init__(self, a: float = 1.0, b: float = 1.0):
        self.a = _finite(a, "a")
        self.b = _finite(b, "b")

    def _core_params(self) -> tuple[float, ...]:
        return (self.a, self.b)


class Gaussian(Exp):
    """``a * exp(b * x^2)`` (finite moments need ``b < 1 / (4 q)`` for pre-activation variance q)."""

    _core_name = "gaussian"

    def __init__(self, a: float = 1.0, b: float = -1.0):
        super().__init__(a, b)


def _degree(value, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"degree: must be an integer, got {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ValueError(f"degree: must be from 0 to {maximum}, got {value}")
    return int(value)


class Monomial(Activation):
    """``x^degree``, degree 0 to 5."""

    _core_name = "monomial"
    _fields = ("degree",)

    def __init__(self, degree: int):
        self.degree = _degree(degree, 5)

    def _core_params(self) -> tuple[float, ...]:
        return (float(self.degree),)


class RectifiedMonomial(Monomial):
    """``(x >= 0) * x^degree``, degree 0 to 10: the arc-cosine kernels of Cho & Saul (2009)
    (degree 1 is ReLU, 0 the step function)."""

    _core_name = "rectified_monomial"

    def __init__(self, degree: int):
        self.degree = _degree(degree, 10)


BUILTIN_NUMERICAL = ("tanh", "softplus", "silu", "swish", "elu", "selu", "sigmoid", "gelu_tanh")
DEFAULT_DEGREE = 128


class Numerical(Activation):
    """Any activation, by Gauss-Hermite quadrature: ``Numerical(fn, dfn=None, degree=128)``.

    ``fn`` is a vectorised callable (NumPy array in, array of the same shape out) or one of the
    names evaluated natively in the core: ``"tanh"``, ``"softplus"``, ``"silu"`` (``"swish"``),
    ``"elu"``, ``"selu"``, ``"sigmoid"``, ``"gelu_tanh"``. Python callables are called once per layer
    with all the quadrature points of all inputs, never per kernel entry.

    The core expands phi(s z) in ``7 degree / 8`` Hermite polynomials per input and layer (from a
    ``degree``-point rule) and sums the series in the correlation for each kernel entry (Mehler's
    formula); diagonal entries use the quadrature directly. ``dfn`` is phi'; without it the
    derivative kernel comes from differentiating the series, phi'(s z) = (1/s) sum_k sqrt(k + 1)
    a_(k+1) h_k(z) (equivalently, Price's theorem: Sigma-dot = d Sigma-hat / d q12).

    Finite networks (``MLP.init``) call ``fn`` (and ``dfn``) once per hidden layer on all the
    layer's pre-activations, flattened; without ``dfn`` they take phi' by central differences with
    step ``1e-5 * max(1, |x|)`` (about 1e-10 relative for smooth activations).

    The degree adapts: it doubles (up to 2048 points, 1792 terms) until, for every input and
    layer, the series captures all but 1e-10 of E[phi^2] and E[phi'^2] and these moments agree
    with those of coarser rules (which catches integrands the rule does not resolve); each kernel
    entry sums only the terms that matter at its correlation. Accuracy: 1e-10 relative or better
    for smooth activations at pre-activation variances up to about 10 (tanh), 25 (sigmoid) or 100
    (softplus, SiLU). Steeper cases, and activations with kinks, converge slowly: against nested
    adaptive integration, at depths 1-3 and pre-activation variances up to 36, ELU kernels are
    off by up to 2e-6 (NNGP) and 2.3e-3 (NTK), SELU kernels (whose phi' jumps) by up to 1.2e-4
    (NNGP) and 7e-3 (NTK), relative to sqrt(k(x, x) k(x', x')). When the estimate of the error is
    above 1e-8 at the largest degree, the kernel comes with a ``RuntimeWarning`` that gives it (of
    the right order; up to ~1.5x too small at depth 3).
    """

    _core_name = "external"
    _fields = ("fn", "degree")

    def __init__(self, fn, dfn=None, degree: int = DEFAULT_DEGREE):
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or not 8 <= degree <= 2048:
            raise ValueError(f"degree: must be an integer from 8 to 2048, got {degree!r}")
        self.degree = int(degree)
        if isinstance(fn, str):
            if fn not in BUILTIN_NUMERICAL:
                raise ValueError(f"fn: unknown built-in {fn!r}; known: {', '.join(BUILTIN_NUMERICAL)}")
            if dfn is not None:
                raise ValueError("dfn: built-in functions come with their derivative")
            self._core_name = fn
        elif not callable(fn):
            raise TypeError(f"fn: must be callable or a built-in name, got {type(fn).__name__}")
        elif dfn is not None and not callable(dfn):
            raise TypeError(f"dfn: must be callable or None, got {type(dfn).__name__}")
        else:
            for name, f in (("fn", fn), ("dfn", dfn)):
                if f is not None:
                    _probe(f, name)
        self.fn, self.dfn = fn, dfn

    def _core_params(self) -> tuple[float, ...]:
        return (float(self.degree),)

    def _core_function(self):
        # The core calls these with float64 arrays and converts the result with np.asarray(result,
        # float64), which would silently drop an imaginary part: the wrappers refuse complex results.
        if isinstance(self.fn, str):
            return None
        return (_RealValued(self.fn, "fn"), None if self.dfn is None else _RealValued(self.dfn, "dfn"))

    def __repr__(self) -> str:
        name = self.fn if isinstance(self.fn, str) else getattr(self.fn, "__name__", repr(self.fn))
        return f"Numerical({name!r}, degree={self.degree})" if isinstance(self.fn, str) else \
            f"Numerical({name}, dfn={'given' if self.dfn is not None else None}, degree={self.degree})"

    def _core_spec(self) -> tuple[str, tuple[float, ...]]:
        return self._core_name, self._core_params()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Numerical) and (self.fn, self.dfn, self.degree) == (other.fn, other.dfn,
                                                                                     other.degree)

    def __hash__(self) -> int:
        return hash((id(self.fn), id(self.dfn), self.degree))


class _RealValued:
    """``f`` as the core calls it, refusing complex results (a TypeError naming the argument,
    ``fn`` or ``dfn``) that NumPy's conversion to float64 would make real with only a warning.
    Pickles if ``f`` does (module level, holds only ``f`` and the name)."""

    __slots__ = ("f", "name")

    def __init__(self, f, name: str):
        self.f, self.name = f, name

    def __call__(self, x):
        out = self.f(x)
        if _iscomplexobj(out):
            raise TypeError(f"{self.name}: must return real numbers, but on an array of {getattr(x, 'size', '?')} "
                            f"points it returned complex values (dtype {getattr(out, 'dtype', type(out).__name__)}); "
                            "the imaginary part would be dropped silently: return the real part (np.real) if "
                            "that is what you mean")
        return out

    def __reduce__(self):
        return (_RealValued, (self.f, self.name))


def _iscomplexobj(value) -> bool:
    import numpy as np

    return np.iscomplexobj(value)


def _probe(f, name: str) -> None:
    """Calls ``f`` once on a small array, so that a scalar-only function (``math.tanh``), a wrong
    output shape or a NaN fails here, naming the argument, rather than deep inside the core."""
    import numpy as np

    probe = np.linspace(-2.0, 2.0, 7)
    hint = ("must be vectorised, accepting and returning NumPy arrays (it is called once with all quadrature "
            "points); use NumPy functions (np.tanh, not math.tanh) or wrap a scalar function in np.vectorize")
    try:
        with np.errstate(all="ignore"):  # a NaN is reported below, by name
            out = f(probe)
    except Exception as exc:  # KeyboardInterrupt and SystemExit are not Exceptions: they propagate
        raise TypeError(f"{name}: {hint}; called with an array of shape {probe.shape} it raised "
                        f"{type(exc).__name__}: {exc}") from exc
    try:
        values = np.asarray(out)
        if values.dtype.kind not in "fiub":
            raise TypeError(f"dtype {values.dtype}")
        values = values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: {hint}; it returned {type(out).__name__} values that are not real numbers "
                        f"({exc})") from None
    if values.shape != probe.shape:
        raise ValueError(f"{name}: {hint}; it returned shape {values.shape} for input shape {probe.shape}")
    if not np.all(np.isfinite(values)):
        bad = probe[~np.isfinite(values)][0]
        raise ValueError(f"{name}: must be finite on the whole real line (the kernels integrate it against a "
                         f"Gaussian), but it returned {values[~np.isfinite(values)][0]} at x = {bad}")


def _builtin(name: str):
    def make() -> Numerical:
        return Numerical(name)

    make.__name__ = name
    return make


ALIASES: dict[str, type[Activation]] = {
    "relu": Relu,
    "abs": Abs,
    "erf": Erf,
    "sigmoid_like": SigmoidLike,
    "gelu": Gelu,
    "sign": Sign,
    "identity": Identity,
    "sin": Sin,
    "cos": Cos,
    "rbf": Rbf,
    "gabor": Gabor,
    "exp": Exp,
    "gaussian": Gaussian,
    **{name: _builtin(name) for name in BUILTIN_NUMERICAL},
}


def get(activation: Activation | str) -> Activation:
    """The activation named by ``activation`` (an ``Activation`` or a string alias)."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, type) and issubclass(activation, Activation):
        raise TypeError(f"activation: pass an instance, e.g. {activation.__name__}(), not the class")
    if isinstance(activation, str):
        key = activation.strip().lower().replace("-", "_")
        if key in ALIASES:
            return ALIASES[key]()
        raise ValueError(f"activation: unknown name {activation!r}; known: {', '.join(sorted(ALIASES))}")
    raise TypeError(f"activation: must be an ntkfast.activations.Activation or a string, got {type(activation).__name__}")
