"""What gradient-flow training and Bayesian inference do with an NNGP or NTK.

Under gradient flow on the MSE loss ``0.5 * mean((f - y)**2)`` (learning rate 1, so that time is
normalised by ``N = y_train.size``) a network in the kernel regime evolves as

    f_t(x_train) = y + exp(-K t / N) (f_0 - y),
    f_t(x)       = f_0(x) + K(x, x_train) K^-1 (I - exp(-K t / N)) (y - f_0(x_train)),

converging along each eigenvector of K at the rate of its eigenvalue. This module follows
neural-tangents' ``predict`` module (same names, arguments and numbers): ``gradient_descent_mse``
and ``gp_inference`` on precomputed kernels, ``gradient_descent_mse_ensemble`` (and
``MLP.predict``) for the mean and covariance of an infinite ensemble of infinitely wide networks.

The convention L = 1/2 sum (f - y)^2 (no 1/N) of Du et al. 2019 and Arora et al. 2019 ("On exact
computation with an infinitely wide neural net"; "Fine-grained analysis of optimization and
generalization for overparameterized two-layer neural networks") is the same flow with
t_sum = t / N.
One eigendecomposition serves every time; ``t=None`` (or ``inf``) is computed by a Cholesky
solve instead. Eigendecompositions and factorisations run in the Rust core (LAPACK).
"""

from __future__ import annotations

import collections
import numbers
import warnings
from typing import NamedTuple, Optional

import numpy as np

from . import linalg
from .linalg import matmul as _mm

__all__ = [
    "Gaussian",
    "GradientFlow",
    "TrainingCurves",
    "gradient_descent_mse",
    "gp_inference",
    "gradient_descent_mse_ensemble",
    "training_curves",
    "max_learning_rate",
    "prediction_weights",
]


class Gaussian(NamedTuple):
    """Mean and covariance of the predictions (``covariance`` is an alias of ``cov``)."""

    mean: np.ndarray
    cov: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        return self.cov


# ---------------------------------------------------------------------------------------------
# argument checks


def _targets(y, name: str = "y_train") -> tuple[np.ndarray, bool]:
    """``y`` as float64 of shape (n, k), and whether it was 1-D."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name}: must be a non-empty array of shape (n,) or (n, n_outputs), got {arr.shape}")
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinity")
    return (arr[:, None], True) if arr.ndim == 1 else (arr, False)


def _real_matrix(k, name: str, expected: str, shape_ok) -> np.ndarray:
    """``k`` as a finite float64 matrix whose shape satisfies ``shape_ok``."""
    arr = np.asarray(k)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or not shape_ok(arr.shape):
        raise ValueError(f"{name}: must be {expected}, got shape {arr.shape}")
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


def _square(k, name: str, n: Optional[int] = None) -> np.ndarray:
    expected = "a square matrix" if n is None else f"a ({n}, {n}) matrix"
    return _real_matrix(k, name, expected, lambda s: s[0] == s[1] and (n is None or s[0] == n))


def _rectangular(k, name: str, n_train: int) -> np.ndarray:
    return _real_matrix(k, name, f"of shape (n_test, {n_train})", lambda s: s[1] == n_train)


def _diag_reg(diag_reg, diag_reg_absolute_scale) -> float:
    if isinstance(diag_reg, bool) or not isinstance(diag_reg, numbers.Real) or not np.isfinite(diag_reg) or diag_reg < 0:
        raise ValueError(f"diag_reg: must be a finite number >= 0, got {diag_reg!r}")
    if not isinstance(diag_reg_absolute_scale, (bool, np.bool_)):
        raise TypeError(f"diag_reg_absolute_scale: must be True or False, got {diag_reg_absolute_scale!r}")
    return float(diag_reg)


def _regularized(k: np.ndarray, diag_reg: float, absolute: bool) -> np.ndarray:
    """k + diag_reg * I, with diag_reg relative to the mean diagonal unless ``absolute``."""
    if diag_reg == 0.0:
        return k
    scale = diag_reg if absolute else diag_reg * np.trace(k) / k.shape[0]
    out = k.copy()
    out[np.diag_indices_from(out)] += scale
    return out


def _times(t, learning_rate: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """Times as a flat float64 array (scaled by the learning rate) and their shape."""
    arr = np.asarray(t)
    if arr.dtype.kind not in "fiu":  # not bool: t=True is a mistake, not the time 1
        raise TypeError(f"t: must be None, a number or an array of numbers, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError("t: times must be >= 0 (inf allowed), without NaN")
    return arr.reshape(-1) * learning_rate, arr.shape


def _learning_rate(learning_rate) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) or not (
            np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate: must be a finite number > 0, got {learning_rate!r}")
    return float(learning_rate)


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: must be True or False, got {value!r}")
    return bool(value)


def _nonnegative(value, name: str, below: Optional[float] = None) -> float:
    """A finite real number >= 0 (and < ``below``), else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0 or (
            below is not None and value >= below):
        bound = ">= 0" if below is None else f"in [0, {below})"
        raise ValueError(f"{name}: must be a finite number {bound}, got {value!r}")
    return float(value)


def _cholesky(k: np.ndarray, what: str) -> np.ndarray:
    """The Cholesky factor of ``k``, whose failure names the user's argument (``what``, e.g.
    "k_train_train" or "x_train: the training NTK") rather than the core's ``a``.

    A factorisation that succeeds with a pivot at round-off level (a duplicated input whose kernel
    row differs from the original's in the last bit) is refused too: solving with it amplifies
    round-off by ~1e16 and returns a silently wrong prediction. The threshold, pivot^2 <= n eps
    max(diag), is the one under which ``GradientFlow`` calls an eigenvalue singular."""
    prefix = f"{what} " if ":" in what else f"{what}: "
    try:
        factor = linalg.cholesky(k)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(prefix + (message[3:] if message.startswith("a: ") else message)) from None
    pivots = np.diagonal(factor) ** 2
    scale = float(np.max(np.diagonal(k)))
    row = int(np.argmin(pivots))
    if pivots[row] <= k.shape[0] * np.finfo(np.float64).eps * scale:
        raise ValueError(
            f"{prefix}is singular to working precision: row {row} is a linear combination of the rows before "
            f"it up to round-off (Cholesky pivot {pivots[row]:.3g}, largest diagonal entry {scale:.3g}; duplicate "
            "or near-duplicate inputs?): add a diagonal regulariser (diag_reg > 0, e.g. 1e-6)")
    return factor


def _named_linalg_error(exc: Exception, what: str) -> Exception:
    """The core's linear-algebra error (about its argument ``a``) as one about ``what`` (the user's
    argument, e.g. "k_train_train"), of the same type."""
    prefix = f"{what} " if ":" in what else f"{what}: "
    message = str(exc)
    return type(exc)(prefix + (message[3:] if message.startswith("a: ") else message))


def _eigh(k: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``linalg.eigh(k)``, whose failure (a non-symmetric matrix) names ``what``, not ``a``."""
    try:
        return linalg.eigh(k)
    except ValueError as exc:
        raise _named_linalg_error(exc, what) from None


def _is_infinite(t) -> bool:
    """t=None or a scalar inf: the converged solution, by Cholesky."""
    return t is None or (np.ndim(t) == 0 and isinstance(t, numbers.Real) and np.isinf(t) and t > 0)


# ---------------------------------------------------------------------------------------------
# the eigenbasis of a (regularised) kernel: one decomposition for every t


class _Eigenbasis:
    def __init__(self, k: np.ndarray, normalization: float, name: str, regularized: bool,
                 what: Optional[str] = None):
        # ``what`` names the user's argument in errors (default ``name``, used in the warning)
        self.values, self.vectors = _eigh(k, name if what is None else what)
        self.normalization = normalization
        top = max(self.values[-1], 0.0)
        if not regularized and self.values[0] <= k.shape[0] * np.finfo(float).eps * top:
            warnings.warn(
                f"{name} is singular to working precision (smallest eigenvalue {self.values[0]:.3e}, largest "
                f"{top:.3e}): directions with eigenvalue <= 0 are treated as untrainable; pass diag_reg > 0 "
                "(e.g. 1e-6) to regularise instead", RuntimeWarning, stacklevel=4)
        # Negative eigenvalues are round-off of a PSD kernel: clipped at 0 in the exponent.
        self.clipped = np.maximum(self.values, 0.0)

    def _rate(self, t: np.ndarray) -> np.ndarray:
        """max(lambda, 0) t / N, shape (T, n); 0 * inf = 0 (a zero eigenvalue never moves)."""
        with np.errstate(invalid="ignore"):
            rate = self.clipped[None, :] * t[:, None] / self.normalization
        return np.nan_to_num(rate, nan=0.0, posinf=np.inf)

    def decay(self, t: np.ndarray) -> np.ndarray:
        """exp(-max(lambda, 0) t / N): what is left of the residual along each eigenvector."""
        return np.exp(-self._rate(t))

    def growth(self, t: np.ndarray) -> np.ndarray:
        """1 - exp(-max(lambda, 0) t / N): how much of the target has been fitted."""
        return -np.expm1(-self._rate(t))

    def gain(self, t: np.ndarray) -> np.ndarray:
        """growth / lambda, the eigenvalues of K^-1 (I - exp(-K t / N)), shape (T, n).

        As neural-tangents: 0 for lambda < 0. For lambda = 0 exactly (where neural-tangents
        gives 0/0 = NaN) the limit t / N, or 0 at t = inf (the pseudo-inverse)."""
        lam = self.values[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(lam > 0, self.growth(t) / np.where(lam > 0, lam, 1.0), 0.0)
        at_zero = np.where(np.isinf(t), 0.0, t / self.normalization)[:, None]
        return np.where(lam == 0, at_zero, out)

    def to_basis(self, a: np.ndarray) -> np.ndarray:
        return self.vectors.T @ a

    def from_basis(self, a: np.ndarray) -> np.ndarray:
        return self.vectors @ a


class GradientFlow:
    """Gradient flow on the MSE loss with a fixed kernel ``k_train_train``.

    ``f_t = y + exp(-K t) (f_0 - y)`` (Jacot et al. 2018; Lee et al. 2019) with neural-tangents'
    time normalisation (t / y_train.size). The (regularised) kernel is eigendecomposed once; every
    method takes ``t`` as a number or an array of any shape, which leads the shape of the result.

    Attributes:
        eigenvalues, eigenvectors: of the regularised kernel (ascending; columns).
        timescales: N / eigenvalue, the time over which each eigen-direction of the residual
            shrinks by e (inf for eigenvalues <= 0).
    """

    def __init__(self, k_train_train, y_train, *, diag_reg: float = 0.0, diag_reg_absolute_scale: bool = False,
                 learning_rate: float = 1.0):
        self._y, self._y_is_1d = _targets(y_train)
        self._k = _square(k_train_train, "k_train_train", self._y.shape[0])
        reg = _diag_reg(diag_reg, diag_reg_absolute_scale)
        self.learning_rate = _learning_rate(learning_rate)
        self._basis = _Eigenbasis(_regularized(self._k, reg, diag_reg_absolute_scale), float(self._y.size),
                                  "k_train_train", regularized=reg > 0)
        self.eigenvalues, self.eigenvectors = self._basis.values, self._basis.vectors

    @property
    def timescales(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.where(self.eigenvalues > 0, self._basis.normalization / self.eigenvalues, np.inf)

    def _shape(self, values: np.ndarray, t_shape: tuple[int, ...]) -> np.ndarray:
        values = values.reshape(t_shape + values.shape[1:])
        return values[..., 0] if self._y_is_1d else values

    def _initial(self, f0, name: str, n: int) -> np.ndarray:
        return _broadcast(f0, (n, self._y.shape[1]), name, self._y_is_1d)

    def residual(self, t, fx_train_0=0.0) -> np.ndarray:
        """Coefficients of the training residual f_t - y along each eigenvector, shape (..., n, k):
        the convergence along the kernel's principal components of Jacot et al. 2018 (Sec. 5),
        c_i(t) = exp(-lambda_i t / N) c_i(0)."""
        t_flat, t_shape = _times(t, self.learning_rate)
        c0 = self._basis.to_basis(self._initial(fx_train_0, "fx_train_0", self._y.shape[0]) - self._y)
        values = self._basis.decay(t_flat)[:, :, None] * c0[None]
        return values.reshape(t_shape + values.shape[1:])

    def train(self, t, fx_train_0=0.0) -> np.ndarray:
        """Outputs on the training inputs at time[s] t."""
        t_flat, t_shape = _times(t, self.learning_rate)
        f0 = self._initial(fx_train_0, "fx_train_0", self._y.shape[0])
        c0 = self._basis.to_basis(f0 - self._y)
        residual = np.einsum("ji,ti,ik->tjk", self.eigenvectors, self._basis.decay(t_flat), c0, optimize=True)
        return self._shape(self._y[None] + residual, t_shape)

    def test(self, t, k_test_train, fx_train_0=0.0, fx_test_0=0.0) -> np.ndarray:
        """Outputs on test inputs (given their kernel with the training inputs) at time[s] t."""
        t_flat, t_shape = _times(t, self.learning_rate)
        k_td = _rectangular(k_test_train, "k_test_train", self._y.shape[0])
        f0 = self._initial(fx_train_0, "fx_train_0", self._y.shape[0])
        ft0 = self._initial(fx_test_0, "fx_test_0", k_td.shape[0])
        c0 = self._basis.to_basis(self._y - f0)
        change = np.einsum("li,ti,ik->tlk", _mm(k_td, self.eigenvectors), self._basis.gain(t_flat), c0, optimize=True)
        return self._shape(ft0[None] + change, t_shape)


# ---------------------------------------------------------------------------------------------
# neural-tangents' API on precomputed kernels


def gradient_descent_mse(k_train_train, y_train, learning_rate: float = 1.0, diag_reg: float = 0.0,
                         diag_reg_absolute_scale: bool = False):
    """Outputs of a model trained by gradient flow on MSE with a fixed kernel (neural-tangents'
    ``predict.gradient_descent_mse``).

    Returns ``predict_fn(t=None, fx_train_0=0., fx_test_0=None, k_test_train=None)`` giving
    ``fx_train_t``, or ``(fx_train_t, fx_test_t)`` when ``fx_test_0`` is given (``fx_train_0=None``
    skips the training outputs). ``t=None`` (or ``inf``) is the converged solution by a Cholesky
    solve; finite times (any array shape, leading the result) share one eigendecomposition.
    """
    y, y_is_1d = _targets(y_train)
    k = _square(k_train_train, "k_train_train", y.shape[0])
    reg = _diag_reg(diag_reg, diag_reg_absolute_scale)
    lr = _learning_rate(learning_rate)
    cache: dict = {}

    def flow() -> GradientFlow:
        if "flow" not in cache:
            cache["flow"] = GradientFlow(k, y_train, diag_reg=reg, diag_reg_absolute_scale=diag_reg_absolute_scale,
                                         learning_rate=lr)
        return cache["flow"]

    def factor() -> np.ndarray:
        if "chol" not in cache:
            cache["chol"] = _cholesky(_regularized(k, reg, diag_reg_absolute_scale), "k_train_train")
        return cache["chol"]

    def predict_fn(t=None, fx_train_0=0.0, fx_test_0=None, k_test_train=None):
        if fx_train_0 is None and fx_test_0 is None:
            raise ValueError("fx_train_0, fx_test_0: both are None, so nothing would be predicted")
        if fx_test_0 is not None and k_test_train is None:
            raise ValueError("k_test_train: required to predict on the test set (fx_test_0 is given)")
        if _is_infinite(t):
            out_train = out_test = None
            f0 = 0.0
            if fx_train_0 is not None:
                f0 = _broadcast(fx_train_0, y.shape, "fx_train_0", y_is_1d)  # checked even where unused
                out_train = y[:, 0] if y_is_1d else y.copy()
            if fx_test_0 is not None:
                k_td = _rectangular(k_test_train, "k_test_train", y.shape[0])
                ft0 = _broadcast(fx_test_0, (k_td.shape[0], y.shape[1]), "fx_test_0", y_is_1d)
                test = ft0 + k_td @ linalg._cho_solve(factor(), y - f0)
                out_test = test[:, 0] if y_is_1d else test
        else:
            f = flow()
            out_train = None if fx_train_0 is None else f.train(t, fx_train_0)
            out_test = None
            if fx_test_0 is not None:
                out_test = f.test(t, k_test_train, 0.0 if fx_train_0 is None else fx_train_0, fx_test_0)
        if out_train is not None and out_test is not None:
            return out_train, out_test
        return out_test if out_train is None else out_train

    return predict_fn


def _broadcast(f0, shape, name: str, y_is_1d: bool) -> np.ndarray:
    f0 = np.asarray(f0)
    if f0.dtype.kind not in "fiu":
        raise TypeError(f"{name}: must be a number or an array of real numbers, got dtype {f0.dtype}")
    f0 = np.asarray(f0, dtype=np.float64)
    if not np.all(np.isfinite(f0)):
        raise ValueError(f"{name}: contains NaN or infinity")
    if f0.ndim == 1 and y_is_1d:
        f0 = f0[:, None]
    try:
        return np.broadcast_to(f0, shape)
    except ValueError:
        raise ValueError(f"{name}: must be a number or have shape {shape}, got {f0.shape}") from None


def _kernel_part(k, g: str, name: str):
    """``k`` itself if an array, else its ``g`` attribute (a Kernel or a namedtuple)."""
    if k is None:
        return None
    if isinstance(k, np.ndarray) or not hasattr(k, g):
        return k
    part = getattr(k, g)
    if part is None:
        raise ValueError(f"{name}: has no {g!r} kernel (compute it with get=('nngp', 'ntk'))")
    return part


def _results(get, out: dict):
    if isinstance(get, str):
        return out[get]
    return collections.namedtuple("Gaussians", list(out))(**out)


def _parse_get(get, allowed=("nngp", "ntk")) -> tuple[str, ...]:
    names = (get,) if isinstance(get, str) else tuple(get) if isinstance(get, (tuple, list)) else None
    if not names or any(g not in allowed for g in names):
        raise ValueError(f"get: must be one of {allowed} or a tuple of them, got {get!r}")
    return names


def gp_inference(k_train_train, y_train, diag_reg: float = 0.0, diag_reg_absolute_scale: bool = False):
    """The NNGP / NTK / NTKGP posteriors (neural-tangents' ``predict.gp_inference``).

    ``k_train_train`` is an array or a ``Kernel`` with ``.nngp`` / ``.ntk``. Returns
    ``predict_fn(get=None, k_test_train=None, k_test_test=None)``: the posterior mean on the test
    set (``y_train`` on the training set when ``k_test_train`` is None), or a ``Gaussian`` with
    the covariance when ``k_test_test`` is given. ``get`` is "nngp", "ntk", "ntkgp" or a tuple
    (default ("nngp", "ntk")). The "ntk" covariance needs both kernels in ``k_train_train`` and
    ``k_test_train``, and the NNGP in ``k_test_test``; "ntkgp" uses the NTK throughout.
    """
    y, y_is_1d = _targets(y_train)
    reg = _diag_reg(diag_reg, diag_reg_absolute_scale)
    factors: dict = {}

    def train_kernel(g: str) -> np.ndarray:
        return _square(_kernel_part(k_train_train, g, "k_train_train"), "k_train_train", y.shape[0])

    def solve(g: str, b: np.ndarray) -> np.ndarray:
        if g not in factors:
            factors[g] = _cholesky(_regularized(train_kernel(g), reg, diag_reg_absolute_scale), "k_train_train")
        return linalg._cho_solve(factors[g], b)

    def predict_fn(get=None, k_test_train=None, k_test_test=None):
        names = _parse_get(("nngp", "ntk") if get is None else get, ("nngp", "ntk", "ntkgp"))
        out = {}
        for g in names:
            k = "ntk" if g == "ntkgp" else g
            if k_test_train is None:
                mean = y.copy()
            else:
                k_td = _rectangular(_kernel_part(k_test_train, k, "k_test_train"), "k_test_train", y.shape[0])
                mean = k_td @ solve(k, y)
            mean = mean[:, 0] if y_is_1d else mean
            if k_test_test is None:
                out[g] = mean
                continue
            if k_test_train is None:
                out[g] = Gaussian(mean, np.zeros((y.shape[0], y.shape[0])))
                continue
            g_init = "ntk" if g == "ntkgp" else "nngp"
            k_tt = _square(_kernel_part(k_test_test, g_init, "k_test_test"), "k_test_test", k_td.shape[0])
            init_td = _rectangular(_kernel_part(k_test_train, g_init, "k_test_train"), "k_test_train", y.shape[0])
            if g in ("nngp", "ntkgp"):
                cov = k_tt - _mm(k_td, solve(k, init_td.T))
            else:
                cov = _ntk_covariance(solve("ntk", k_td.T), train_kernel("nngp"), init_td, k_tt)
            out[g] = Gaussian(mean, cov)
        return _results(get if get is not None else ("nngp", "ntk"), out)

    return predict_fn


def _ntk_covariance(a: np.ndarray, nngp_dd: np.ndarray, nngp_td: np.ndarray, nngp_tt: np.ndarray) -> np.ndarray:
    """nngp_tt + A^T nngp_dd A - S - S^T with S = A^T nngp_dt, A = Theta^-1 (I - e^{-Theta t}) Theta_dt."""
    s = _mm(a.T, nngp_td.T)
    return nngp_tt + _mm(a.T, _mm(nngp_dd, a)) - s - s.T


def _rows(x) -> Optional[int]:
    """The number of rows of an array-like input, or None if it has none (checked elsewhere)."""
    try:
        shape = np.shape(x)
    except ValueError:  # ragged nested lists
        return None
    return shape[0] if len(shape) > 0 else None


def prediction_weights(k_train_train, y_train, t=None, *, diag_reg: float = 0.0,
                       diag_reg_absolute_scale: bool = False) -> np.ndarray:
    """alpha with mean prediction ``k_test_train @ alpha`` of the ensemble at time ``t`` (a number
    or None/inf): alpha = K_r^-1 (I - exp(-K_r t / N)) y, by Cholesky for t = inf. Shape of y."""
    y, y_is_1d = _targets(y_train)
    k = _square(k_train_train, "k_train_train", y.shape[0])
    reg = _diag_reg(diag_reg, diag_reg_absolute_scale)
    if _is_infinite(t):
        alpha = linalg._cho_solve(_cholesky(_regularized(k, reg, diag_reg_absolute_scale), "k_train_train"), y)
    else:
        t_flat, t_shape = _times(t, 1.0)
        if t_shape != ():
            raise ValueError(f"t: must be a single time here, got shape {t_shape}")
        basis = _Eigenbasis(_regularized(k, reg, diag_reg_absolute_scale), float(y.size), "k_train_train",
                            regularized=reg > 0)
        alpha = basis.from_basis(basis.gain(t_flat)[0][:, None] * basis.to_basis(y))
    return alpha[:, 0] if y_is_1d else alpha


class TrainingCurves(NamedTuple):
    """Losses 0.5 * mean((f_t - y)^2) (and accuracies) along gradient flow at times ``t``.

    Accuracies are given for targets with several columns (one-hot or +-1 coded classes): the
    fraction of rows where the largest output is at the largest target. Test fields are None
    without test data.
    """

    t: np.ndarray
    train_loss: np.ndarray
    test_loss: Optional[np.ndarray]
    train_accuracy: Optional[np.ndarray]
    test_accuracy: Optional[np.ndarray]


def _accuracy(f: np.ndarray, y: np.ndarray) -> Optional[np.ndarray]:
    if y.ndim != 2 or y.shape[1] < 2:
        return None
    return np.mean(np.argmax(f, axis=-1) == np.argmax(y, axis=-1)[None], axis=-1)


def training_curves(k_train_train, y_train, t, *, k_test_train=None, y_test=None, diag_reg: float = 0.0,
                    diag_reg_absolute_scale: bool = False, learning_rate: float = 1.0, fx_train_0=0.0,
                    fx_test_0=0.0) -> TrainingCurves:
    """Train (and test) loss and accuracy over the times ``t`` (1-D), from one eigendecomposition.

    The train loss needs no matrix product per time: ||f_t - y||^2 = sum_i exp(-2 lambda_i t/N) |c_i|^2
    in the eigenbasis."""
    times, shape = _times(t, 1.0)
    if len(shape) != 1:
        raise ValueError(f"t: must be a 1-D array of times, got shape {shape}")
    if k_test_train is not None:
        if y_test is None:
            raise ValueError("y_test: required with k_test_train")
        yt, _ = _targets(y_test, "y_test")
        if yt.shape[0] != _rows(k_test_train):
            raise ValueError(f"y_test: must have one row per row of k_test_train ({_rows(k_test_train)}), got "
                             f"shape {np.shape(y_test)}")
    flow = GradientFlow(k_train_train, y_train, diag_reg=diag_reg, diag_reg_absolute_scale=diag_reg_absolute_scale,
                        learning_rate=learning_rate)
    residual = flow.residual(times, fx_train_0)  # (T, n, k)
    y, _ = _targets(y_train)
    train_loss = 0.5 * np.sum(residual**2, axis=(1, 2)) / y.size
    train_f = flow.train(times, fx_train_0) if y.shape[1] > 1 else None
    test_loss = test_accuracy = None
    if k_test_train is not None:
        f_test = flow.test(times, k_test_train, fx_train_0, fx_test_0).reshape((times.size,) + yt.shape)
        test_loss = 0.5 * np.mean((f_test - yt[None]) ** 2, axis=(1, 2))
        test_accuracy = _accuracy(f_test, yt)
    return TrainingCurves(times, train_loss, test_loss, None if train_f is None else _accuracy(train_f, y),
                          test_accuracy)


def max_learning_rate(ntk_train_train, y_train_size: Optional[int] = None, momentum: float = 0.0,
                      eps: float = 1e-12) -> float:
    """The largest stable learning rate of (momentum) gradient descent on 0.5 * mean((f - y)^2)
    for a network with this NTK: 2 (1 + momentum) N / (lambda_max + eps), N = y_train_size
    (default: the number of rows of the kernel), as neural-tangents' ``max_learning_rate``.
    ``momentum`` is in [0, 1) and ``eps`` >= 0 guards against a zero kernel."""
    k = _square(ntk_train_train, "ntk_train_train")
    if y_train_size is None:
        factor = k.shape[0]
    elif isinstance(y_train_size, bool) or not isinstance(y_train_size, numbers.Integral) or y_train_size <= 0:
        raise ValueError(f"y_train_size: must be a positive integer (y_train.size), got {y_train_size!r}")
    else:
        factor = int(y_train_size)
    momentum = _nonnegative(momentum, "momentum", below=1.0)
    eps = _nonnegative(eps, "eps")
    try:
        top = linalg.eigvalsh(k)[-1]
    except ValueError as exc:  # not symmetric: about the user's argument, not the core's ``a``
        raise _named_linalg_error(exc, "ntk_train_train") from None
    if not top + eps > 0:
        raise ValueError(f"ntk_train_train: its largest eigenvalue is {top:.3g}, so no learning rate is limited by "
                         "it (an NTK is positive semi-definite and nonzero); pass eps > 0 to bound the result")
    return float(2 * (1 + momentum) * factor / (top + eps))


# The ensemble predictions from a kernel function or a model live in ``ensemble.py``; they are
# part of this module's API (neural-tangents' ``predict.gradient_descent_mse_ensemble``).
from .ensemble import gradient_descent_mse_ensemble, predict_with  # noqa: E402,F401
