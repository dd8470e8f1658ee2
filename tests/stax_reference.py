"""A plain-NumPy reference of the infinite-width kernels of an ``ntkfast.stax`` layer tree.

Written independently of the core: it walks the Python ``Layer`` objects (``Serial``, ``Parallel``,
``FanOut``, ``FanInSum``, ``FanInProd``, ``Dense``, ``LayerNorm``, ``Identity`` and activation
layers) and carries, per branch, the full (n1, n2) NNGP and NTK matrices, the exact diagonals
k(x1_i, x1_i) and k(x2_j, x2_j), whether the branch is Gaussian (the output of an affine layer) and
its width. The rules are neural-tangents' (read from its source, release 0.6.5):

* inputs: NNGP x1 . x2 / d, NTK 0, not Gaussian, width d;
* ``Dense``, "ntk": NNGP -> W^2 NNGP + b^2, NTK -> NNGP_new + W^2 NTK; "standard": NTK -> fan_in NNGP_old
  + W^2 NTK (+ 1 with a bias, b_std=0.0 included), fan_in the width of the layer's input; Gaussian;
* activation: needs a Gaussian input (ValueError otherwise); NNGP -> E[phi(u) phi(v)], NTK -> NTK
  E[phi'(u) phi'(v)] for (u, v) Gaussian with the NNGP as covariance; not Gaussian;
* ``LayerNorm(eps)``: NNGP and NTK divided by sqrt((k11_i + eps)(k22_j + eps)); needs a Gaussian
  input (NotImplementedError otherwise, as neural-tangents);
* ``FanInSum``: sums, needs all branches Gaussian (NotImplementedError) and equal widths
  (ValueError); ``FanInProd``: products, the NTK by the product rule, not Gaussian (for two or more
  branches), equal widths; ``FanOut(n)``: n copies; ``Identity``: unchanged.

The dual activations are closed forms where there is one: ABReLU, Erf, Sign, Monomial and
RectifiedMonomial from tests/reference.py (Cho & Saul's arc-cosine kernels, Williams' arcsine
kernel, Mehler's formula); Sin/Cos/Rbf, Exp and Gaussian derived here (Gaussian characteristic
functions and Gaussian integrals); GELU by a 1-D adaptive quadrature (the other dimension in
closed form); Gabor by tests/reference.py's Gauss-Hermite rule; numerical activations (``tanh``
or a callable) by a 250-point tensor rule.

For a symmetric kernel (``x2=None``) the diagonal is set to the separately carried exact diagonal
after every layer, so that the angle between an input and itself is exactly 0.
"""

from __future__ import annotations

import functools

import numpy as np

from ntkfast import stax
from scipy.special import ndtr

from reference import (dual_abrelu, dual_erf, dual_identity, dual_monomial, dual_rectified_any, dual_sign,
                       quadrature_dual, weighted_quadrature_dual)


# -- dual activations ----------------------------------------------------------------------------

def dual_sin(a, b, c):
    """phi = a sin(b x + c): with sin A sin B = (cos(A - B) - cos(A + B)) / 2 and E cos(t . (u, v) + s)
    = cos(s) exp(-t' S t / 2) for Gaussian (u, v) of covariance S."""
    def dual(q12, q11, q22):
        minus = np.exp(-b * b * (q11 + q22 - 2 * q12) / 2)
        plus = np.exp(-b * b * (q11 + q22 + 2 * q12) / 2) * np.cos(2 * c)
        return a * a * (minus - plus) / 2, a * a * b * b * (minus + plus) / 2

    return dual


def dual_exp(a, b):
    """phi = a exp(b x): E exp(b (u + v)) = exp(b^2 Var(u + v) / 2)."""
    def dual(q12, q11, q22):
        e = np.exp(b * b * (q11 + q22 + 2 * q12) / 2)
        return a * a * e, a * a * b * b * e

    return dual


def dual_gaussian(a, b):
    """phi = a exp(b x^2): E exp(b (u^2 + v^2)) = det(I - 2 b S)^(-1/2); phi' = 2 a b x exp(b x^2) and
    E[u v exp(b (u^2 + v^2))] = det(I - 2 b S)^(-1/2) [S (I - 2 b S)^-1]_12 = q12 det^(-3/2)."""
    def dual(q12, q11, q22):
        det = (1 - 2 * b * q11) * (1 - 2 * b * q22) - 4 * b * b * q12 * q12
        return a * a / np.sqrt(det), 4 * a * a * b * b * q12 / det**1.5

    return dual


_dual_gabor = weighted_quadrature_dual(np.sin, lambda x: np.cos(x) - 2 * x * np.sin(x), 1.0, degree=48)


@functools.lru_cache(maxsize=None)  # a diagonal asks for the same (q, q, q) three times
def _gelu_entry(q12, q11, q22):
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for phi(x) = x Phi(x), phi' = Phi(x) + x phi(x): given
    u = s1 z, v is N(m, s^2) with m = (q12 / q11) u, s^2 = q22 - q12^2 / q11, and then in closed form
    (t = sqrt(1 + s^2), a = m / t): E[Phi(v)] = Phi(a), E[v Phi(v)] = m Phi(a) + s^2 phi(a) / t,
    E[v phi(v)] = m phi(a) / t^3; what is left is a 1-D integral over z, by adaptive quadrature
    on either side of the kink of Phi(s1 z) at 0 (a fixed Gauss-Hermite rule loses ~1e-12 at large
    variances)."""
    from scipy.integrate import quad

    s1 = np.sqrt(q11)
    ratio = q12 / q11 if q11 > 0 else 0.0
    s2 = max(q22 - ratio * q12, 0.0)
    t = np.sqrt(1 + s2)

    def parts(z):
        u = s1 * z
        m = ratio * u
        a = m / t
        pdf_a = np.exp(-a * a / 2) / np.sqrt(2 * np.pi)
        weight = np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
        nngp = u * ndtr(u) * (m * ndtr(a) + s2 * pdf_a / t)
        dot = (ndtr(u) + u * np.exp(-u * u / 2) / np.sqrt(2 * np.pi)) * (ndtr(a) + m * pdf_a / t**3)
        return nngp * weight, dot * weight

    out = []
    for k in range(2):
        f = lambda z: parts(z)[k]  # noqa: E731
        out.append(sum(quad(f, lo, hi, epsabs=0.0, epsrel=2e-14, limit=200)[0] for lo, hi in ((-np.inf, 0.0),
                                                                                             (0.0, np.inf))))
    return tuple(out)


_gelu_entries = np.frompyfunc(_gelu_entry, 3, 2)


def _dual_gelu(q12, q11, q22):
    nngp, dot = _gelu_entries(*(np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(q12, q11, q22)))
    return np.asarray(nngp, dtype=np.float64), np.asarray(dot, dtype=np.float64)


_TANH = (np.tanh, lambda x: 1 / np.cosh(x) ** 2)
_NUMERICAL = {"tanh": _TANH}


def dual_of(activation):
    """(E[phi(u) phi(v)], E[phi'(u) phi'(v)]) as a function of (q12, q11, q22), for an
    ``ntkfast.activations`` object."""
    name, params = activation._core_spec()
    if name == "abrelu":
        return dual_abrelu(*params)
    if name == "erf":
        return dual_erf(*params)
    if name == "sin":  # Cos(a, b, c) is Sin(a, b, c + pi/2), and so are its parameters
        return dual_sin(*params)
    if name == "rbf":  # sqrt(2) sin(sqrt(2 gamma) x + pi/4)
        return dual_sin(np.sqrt(2.0), np.sqrt(2 * params[0]), np.pi / 4)
    if name == "exp":
        return dual_exp(*params)
    if name == "gaussian":
        return dual_gaussian(*params)
    if name == "gabor":
        return _dual_gabor
    if name == "gelu":
        return _dual_gelu
    if name == "sign":
        return dual_sign
    if name == "identity":
        return dual_identity
    if name == "monomial":
        return dual_monomial(int(params[0]))
    if name == "rectified_monomial":
        return dual_rectified_any(int(params[0]))
    if name in _NUMERICAL:
        return quadrature_dual(*_NUMERICAL[name], degree=250)
    if name == "external":
        fn, dfn = activation.fn, activation.dfn
        if fn is np.tanh and dfn is None:
            fn, dfn = _TANH
        if dfn is None:
            h = 1e-5
            dfn = lambda x: (fn(x + h) - fn(x - h)) / (2 * h)  # noqa: E731
        return quadrature_dual(fn, dfn, degree=250)
    raise NotImplementedError(f"no reference dual for {activation!r}")


# -- the layer recursion -------------------------------------------------------------------------

class _Branch:
    """One branch's kernels: nngp and ntk, with the exact diagonals v1 = k(x1_i, x1_i) and
    v2 = k(x2_j, x2_j) shaped to broadcast against them: (n1, n2) matrices with v1 (n1, 1) and
    v2 (1, n2); or, for the diagonal alone, (n,) vectors of the pairs (x_i, x_i) with v1 = v2 (n,).
    ``exact_diagonal``: the pairs on the diagonal (or all of them) are pairs of an input with itself,
    whose NNGP is set to v1 exactly."""

    __slots__ = ("nngp", "ntk", "v1", "v2", "gaussian", "width", "exact_diagonal")

    def __init__(self, nngp, ntk, v1, v2, gaussian, width, exact_diagonal):
        self.nngp, self.ntk, self.v1, self.v2 = nngp, ntk, v1, v2
        self.gaussian, self.width, self.exact_diagonal = gaussian, width, exact_diagonal
        if exact_diagonal:
            self.nngp = np.array(self.nngp, dtype=np.float64)
            if self.nngp.ndim == 2:
                np.fill_diagonal(self.nngp, v1[:, 0])
            else:
                self.nngp[...] = v1

    def replace(self, **changes):
        fields = {k: getattr(self, k) for k in self.__slots__}
        fields.update(changes)
        return _Branch(**fields)


def _one(branches, layer):
    if len(branches) != 1:
        raise ValueError(f"{layer!r} takes one input, got {len(branches)}")
    return branches[0]


def _apply(layer, branches):
    if isinstance(layer, stax.Serial):
        for sub in layer.layers:
            branches = _apply(sub, branches)
        return branches
    if isinstance(layer, stax.Parallel):
        if len(branches) != len(layer.layers):
            raise ValueError(f"parallel of {len(layer.layers)} layers got {len(branches)} inputs")
        return [_one(_apply(sub, [b]), sub) for sub, b in zip(layer.layers, branches)]
    if isinstance(layer, stax.FanOut):
        return [_one(branches, layer)] * layer.num
    if isinstance(layer, (stax.FanInSum, stax.FanInProd)):
        return [_fan_in(layer, branches)]
    b = _one(branches, layer)
    if isinstance(layer, stax.Identity):
        return [b]
    if isinstance(layer, stax.Dense):
        return [_dense(layer, b)]
    if isinstance(layer, stax.LayerNorm):
        if not b.gaussian:
            raise NotImplementedError(f"{layer!r}: LayerNorm needs a Gaussian input")
        s1, s2 = np.sqrt(b.v1 + layer.eps), np.sqrt(b.v2 + layer.eps)
        return [b.replace(nngp=b.nngp / (s1 * s2), ntk=b.ntk / (s1 * s2), v1=b.v1 / (s1 * s1), v2=b.v2 / (s2 * s2))]
    if isinstance(layer, stax.Elementwise):
        if not b.gaussian:
            raise ValueError(f"{layer!r}: the input to the activation function must be Gaussian")
        dual = dual_of(layer.activation)
        with np.errstate(invalid="ignore", divide="ignore"):
            nngp, dot = dual(b.nngp, b.v1, b.v2)
            v1, v2 = dual(b.v1, b.v1, b.v1)[0], dual(b.v2, b.v2, b.v2)[0]
        return [b.replace(nngp=nngp, ntk=b.ntk * dot, v1=v1, v2=v2, gaussian=False)]
    raise NotImplementedError(f"no reference rule for {layer!r}")


def _dense(layer, b):
    w2 = layer.W_std**2
    b2 = 0.0 if layer.b_std is None else layer.b_std**2
    nngp = w2 * b.nngp + b2
    if layer.parameterization == "ntk":
        ntk = nngp + w2 * b.ntk
    else:
        ntk = b.width * b.nngp + w2 * b.ntk + (0.0 if layer.b_std is None else 1.0)
    return b.replace(nngp=nngp, ntk=ntk, v1=w2 * b.v1 + b2, v2=w2 * b.v2 + b2, gaussian=True, width=layer.out_dim)


def _fan_in(layer, branches):
    widths = {b.width for b in branches}
    if len(widths) != 1:
        raise ValueError(f"{layer!r}: all branches must have the same width, got {[b.width for b in branches]}")
    first = branches[0]
    if isinstance(layer, stax.FanInSum):
        gaussian = all(b.gaussian for b in branches)
        if not gaussian and len(branches) != 1:
            raise NotImplementedError(f"{layer!r}: FanInSum needs Gaussian branches, got "
                                      f"{[b.gaussian for b in branches]}")
        return first.replace(nngp=sum(b.nngp for b in branches), ntk=sum(b.ntk for b in branches),
                             v1=sum(b.v1 for b in branches), v2=sum(b.v2 for b in branches), gaussian=gaussian)
    nngp, ntk = 1.0, 0.0
    for b in branches:  # neural-tangents' order: ntk_prod = ntk_prod nngp + nngp_prod ntk
        ntk = ntk * b.nngp + nngp * b.ntk
        nngp = nngp * b.nngp
    v1, v2 = 1.0, 1.0
    for b in branches:
        v1, v2 = v1 * b.v1, v2 * b.v2
    return first.replace(nngp=nngp, ntk=ntk, v1=v1, v2=v2, gaussian=len(branches) == 1 and first.gaussian)


def reference_kernels(layer, x1, x2=None):
    """(nngp, ntk) of ``layer`` (an ``ntkfast.stax`` layer tree) between the rows of x1 and x2 (or x1),
    float64, full matrices."""
    x1 = np.asarray(x1, dtype=np.float64)
    symmetric = x2 is None
    x2 = x1 if symmetric else np.asarray(x2, dtype=np.float64)
    d = x1.shape[1]
    v1, v2 = (x1 * x1).sum(1)[:, None] / d, (x2 * x2).sum(1)[None, :] / d
    start = _Branch(x1 @ x2.T / d, np.zeros((len(x1), len(x2))), v1, v2, gaussian=False, width=d,
                    exact_diagonal=symmetric)
    out = _apply(layer, [start])
    if len(out) != 1:
        raise ValueError(f"the network returns {len(out)} outputs")
    return out[0].nngp, out[0].ntk


def reference_diagonal(layer, x1):
    """(nngp, ntk) of each row of x1 with itself, (n,) each: the diagonal of the symmetric kernel
    (the NNGP part is neural-tangents' ``Kernel.cov1``), at the cost of n entries."""
    x1 = np.asarray(x1, dtype=np.float64)
    d = x1.shape[1]
    v = (x1 * x1).sum(1) / d
    start = _Branch(v, np.zeros(len(x1)), v, v, gaussian=False, width=d, exact_diagonal=True)
    out = _apply(layer, [start])
    if len(out) != 1:
        raise ValueError(f"the network returns {len(out)} outputs")
    return out[0].nngp, out[0].ntk
