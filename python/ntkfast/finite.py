"""Finite-width networks: sampling, outputs, empirical kernels and training (Monte Carlo kernels:
``monte_carlo``; the output scale: ``lazy``).

A network of width m has a random NTK that concentrates around the analytic one at rate
O(1/sqrt(m)), and in the lazy regime gradient descent on it follows kernel gradient flow. The
parameters live in the Rust core (float64); forward and backward passes, the empirical NTK
(structured: a sum over layers of Hadamard products of Gram matrices, no Jacobians) and training
steps run there with the GIL released.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from typing import Optional

import numpy as np

from . import _core, lazy, linalg, validity
from ._arrays import as_inputs, as_rng
from .models import MAX_WIDTH, check_mlp
from .training import MAX_STEPS, TrainingHistory, _learning_rate, _loss, _steps, _train  # noqa: F401 (API)

__all__ = ["Network", "LinearizedNetwork", "TrainingHistory", "MinNormSolution", "MonteCarloKernel",
           "init_params", "monte_carlo_kernel"]


def _positive_int(value, name: str, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be a positive integer, got {value!r}")
    if value < 1 or (maximum is not None and value > maximum):
        bound = "a positive integer" if maximum is None else f"an integer from 1 to {maximum:_}"
        shown = f"{value}" if abs(value) < 10**20 else f"{float(value):.3g}"
        raise ValueError(f"{name}: must be {bound}, got {shown}")
    return int(value)


def init_params(mlp, in_dim: int, width: int, out_dim: int = 1, seed=0) -> list:
    """Parameters of ``mlp`` drawn by NumPy's Generator from ``seed``, in neural-tangents' layout:
    a (W, b) pair per Dense layer, W of shape (fan_in, fan_out), b of shape (fan_out,) or None.
    "ntk": W, b ~ N(0, 1) (scaled in the forward pass); "standard": W ~ N(0, W_std^2/fan_in),
    b ~ N(0, b_std^2).

    ``seed``: a non-negative integer (or a sequence of them), None, a ``SeedSequence`` or a
    ``Generator`` (drawn from as is)."""
    mlp = check_mlp(mlp)
    in_dim, width, out_dim = (_positive_int(v, n, MAX_WIDTH) for v, n in ((in_dim, "in_dim"), (width, "width"),
                                                                          (out_dim, "out_dim")))
    rng = as_rng(seed)
    dims = [in_dim] + [width] * mlp.depth + [out_dim]
    count = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(dims[:-1], dims[1:]))
    too_big = MemoryError(f"width: a network with in_dim={in_dim}, width={width}, depth={mlp.depth}, "
                          f"out_dim={out_dim} has {count:.3g} parameters ({8 * count / 2**30:.3g} GiB in float64), "
                          "more than can be allocated")
    if 8 * count >= 2**62:  # beyond any address space: NumPy would fail with a message naming nothing
        raise too_big
    params = []
    try:
        for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            hidden = layer < mlp.depth
            w_std = mlp.W_std if hidden else mlp.readout_W_std
            b_std = mlp.b_std if hidden else mlp.readout_b_std
            w = rng.standard_normal((fan_in, fan_out))
            b = None if b_std is None else rng.standard_normal(fan_out)
            if mlp.parameterization == "standard":
                w *= w_std / np.sqrt(fan_in)
                b = None if b is None else b * b_std
            params.append((w, b))
    except MemoryError:
        raise too_big from None
    return params


def _as_params(params) -> list:
    """(W, b) pairs as float64 arrays; accepts neural-tangents' raw ``init_fn`` output (empty
    tuples for activation layers, b of shape (1, fan_out), JAX arrays). Complex, non-numeric or
    non-finite entries are refused (a complex W would otherwise silently lose its imaginary part)."""
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params: must be a list of (W, b) pairs, got {type(params).__name__}")

    def real(value, what: str) -> np.ndarray:
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"params: {what} must hold real numbers, got dtype {arr.dtype}")
        return _finite_float64(arr, what)

    out = []
    for index, layer in enumerate(params):
        if isinstance(layer, (tuple, list)) and len(layer) == 0:
            continue  # an activation layer of stax.serial
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            length = f" of length {len(layer)}" if hasattr(layer, "__len__") else ""
            raise TypeError(f"params: every Dense layer must be a pair (W, b or None); params[{index}] is "
                            f"{type(layer).__name__}{length}")
        w, b = layer
        w = real(w, f"params[{index}]'s W")
        if w.ndim != 2:
            raise ValueError(f"params: params[{index}]'s W must be 2-D (fan_in, fan_out), got shape {w.shape}")
        if b is not None:
            b = real(b, f"params[{index}]'s b")
            if b.size != w.shape[1] or b.ndim not in (1, 2):
                raise ValueError(f"params: params[{index}]'s b must have {w.shape[1]} entries, got shape {b.shape}")
            b = np.ascontiguousarray(b.reshape(-1))
        out.append((np.ascontiguousarray(w), b))
    return out


def _memory_allowance() -> Optional[int]:
    """The most one array may take, in bytes, as the core counts it: physical memory, or the
    address-space limit (``ulimit -v``) if lower; None if neither is known."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    return min(limits) if limits else None


def _finite_float64(arr: np.ndarray, what: str, block: int = 1 << 20) -> np.ndarray:
    """``arr`` (real numbers) as a C-contiguous float64 array whose entries are all finite, else a
    ValueError naming ``what``; a MemoryError naming it if the copy cannot fit, before any of it
    is allocated (a broadcast view of 10^10 entries asks for 80 GB). Checked in blocks: no
    full-size temporary besides the copy (``np.isfinite(arr)`` would allocate a bool per entry)."""
    nbytes = arr.size * 8
    allowance = _memory_allowance()
    too_big = MemoryError(f"params: {what} has shape {arr.shape}: {nbytes / 2**30:.3g} GiB in float64, more than "
                          + ("can be allocated" if allowance is None
                             else f"this process can use ({allowance / 2**30:.3g} GiB)"))
    if allowance is not None and nbytes > allowance:
        raise too_big
    if arr.dtype == np.float64 and arr.flags.c_contiguous:
        out = arr
    else:
        try:
            out = np.empty(arr.shape, dtype=np.float64)
        except MemoryError:
            raise too_big from None
        np.copyto(out, arr, casting="unsafe")
    flat = out.reshape(-1)
    for start in range(0, flat.size, block):
        if not np.isfinite(flat[start:start + block]).all():
            raise ValueError(f"params: {what} contains NaN or infinity")
    return out


def _singular_ntk_message(x: np.ndarray, out_dim: int, exc: Exception) -> str:
    """Why ``min_norm_solution`` has no unique answer: the empirical NTK on ``x`` is singular."""
    n = x.shape[0]
    detail = str(exc)
    detail = detail[3:] if detail.startswith("a: ") else detail
    detail = detail.split("; ")[0]  # drop the core's advice (diag_reg: this method takes none)
    if "positive definite" not in detail:  # not a singular kernel (e.g. one that overflowed)
        return f"x: the empirical NTK on x ({n * out_dim} x {n * out_dim}) cannot be factorised: {detail}"
    _, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    duplicates = [i for i in range(n) if first[inverse[i]] != i]
    if duplicates:
        i = duplicates[0]
        cause = (f"{len(duplicates)} row(s) of x repeat earlier ones (row {i} equals row {first[inverse[i]]}); "
                 "remove duplicate rows")
    else:
        cause = ("the network's gradients at these inputs are linearly dependent (near-duplicate rows, or more "
                 "targets than parameters can fit independently); remove dependent rows")
    phrase = "is not positive definite"
    state = (f"{phrase}, i.e. singular{detail[len(phrase):]}" if detail.startswith(phrase)
             else f"is singular ({detail})")
    return (f"x: the empirical NTK on x ({n * out_dim} x {n * out_dim}) {state}: the minimum-norm solution is "
            f"not unique, or no parameter change fits y exactly; {cause}")


def _float_inputs(x, name: str) -> np.ndarray:
    return np.asarray(as_inputs(x, name), dtype=np.float64)


def _targets(y, n: int, out_dim: int, name: str = "y") -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim == 1 and out_dim == 1:
        arr = arr[:, None]
    if arr.shape != (n, out_dim):
        raise ValueError(f"{name}: must have shape ({n}, {out_dim}), got {np.shape(y)}")
    return arr


@dataclasses.dataclass
class MinNormSolution:
    """The minimum-norm parameter change that makes the linearised network fit the targets:
    delta = J^+ (y - f_0), with ||delta|| = sqrt(r^T Theta^-1 r) <= ||r|| / sigma_min(J)."""

    delta: list
    norm: float
    bound: float
    residual_norm: float
    sigma_min: float


def _restore_network(mlp, params, scale=None, initial=None):
    new = Network(mlp, params, **(scale or {}))
    if initial is not None:  # a centered network's initial parameters
        new._core0 = _core.Network(mlp._spec, _as_params(initial))
    return new


def _restore_linearized(mlp, params, delta, scale=None, initial=None):
    new = LinearizedNetwork.__new__(LinearizedNetwork)
    base = _restore_network(mlp, params, scale, initial)
    new.mlp, new._core, new._scale = mlp, base._core.linearize(delta), base._scale
    return new


class Network(lazy.Scaled):
    """A finite-width network of an ``MLP`` spec (``MLP.init`` or ``Network.from_params``).

    Networks pickle (by their spec and parameters, e.g. for joblib or Dask); ``copy.copy`` and
    ``copy.deepcopy`` give independent networks (the parameters are always copied). One network
    may be used from several Python threads: reads run concurrently, a training step waits for
    them.
    """

    def __init__(self, mlp, params, *, output_scale: float = 1.0, centered: bool = False):
        self.mlp = check_mlp(mlp)
        self._core = _core.Network(mlp._spec, _as_params(params))
        self._scale = lazy.Scale(output_scale, centered, self._initial)
        # centered: the outputs at these (initial) parameters are subtracted, always
        self._core0 = self._core.copy() if self._scale.centered else None

    def _initial(self, x: np.ndarray) -> np.ndarray:
        return self._core0.apply(x)

    @classmethod
    def from_params(cls, mlp, params, *, output_scale: float = 1.0, centered: bool = False) -> "Network":
        """A network with given parameters: (W, b) per Dense layer in neural-tangents' layout and
        scaling (the raw output of its ``init_fn`` works too); ``output_scale`` and ``centered``
        as in ``MLP.init``."""
        return cls(mlp, params, output_scale=output_scale, centered=centered)

    @property
    def params(self) -> list:
        """Copies of the (W, b) pairs."""
        return [tuple(layer) for layer in self._core.params()]

    @property
    def in_dim(self) -> int:
        return self._core.in_dim

    @property
    def out_dim(self) -> int:
        return self._core.out_dim

    def __repr__(self) -> str:
        widths = [w.shape[1] for w, _ in self._core.params()[:-1]]
        return (f"Network({self.mlp!r}, in_dim={self.in_dim}, widths={widths}, out_dim={self.out_dim}"
                f"{self._scale_repr()})")

    def apply(self, x) -> np.ndarray:
        """Outputs f(x), (n, out_dim): output_scale * (fbar(x) - fbar_0(x)) if centered, else
        output_scale * fbar(x) (fbar: the network's last Dense layer)."""
        x = _float_inputs(x, "x")
        return self._scale.outputs(self._core.apply(x), x)

    def ntk(self, x1, x2=None, *, trace: bool = True) -> np.ndarray:
        """Empirical NTK <df_k(x1_i)/dtheta, df_l(x2_j)/dtheta>: averaged over outputs k = l,
        (n1, n2), or the full (n1, n2, out_dim, out_dim) with ``trace=False``."""
        if not isinstance(trace, (bool, np.bool_)):
            raise TypeError(f"trace: must be True or False, got {trace!r}")
        a = _float_inputs(x1, "x1")
        return self._scale.kernel(self._core.ntk(a, None if x2 is None else _float_inputs(x2, "x2"), trace))

    def nngp(self, x1, x2=None) -> np.ndarray:
        """Empirical NNGP f(x1) f(x2)^T / out_dim."""
        a = _float_inputs(x1, "x1")
        b = None if x2 is None else _float_inputs(x2, "x2")
        if not self._scale.centered:
            return self._scale.kernel(self._core.nngp(a, b))
        f1 = self.apply(a)
        f2 = f1 if b is None else self.apply(b)
        return f1 @ f2.T / self.out_dim

    def copy(self) -> "Network":
        """An independent copy (training it leaves this network unchanged)."""
        new = Network.__new__(Network)
        new.mlp, new._core = self.mlp, self._core.copy()
        new._core0 = None if self._core0 is None else self._core0.copy()
        new._scale = lazy.Scale(self._scale.alpha, self._scale.centered, new._initial)
        return new

    __copy__ = copy

    def __deepcopy__(self, memo) -> "Network":
        return self.copy()

    def __reduce__(self):
        initial = None if self._core0 is None else [tuple(layer) for layer in self._core0.params()]
        return (_restore_network, (self.mlp, self.params, self._scale.state(), initial))

    def train(self, x, y, *, learning_rate: float, steps: int, x_test=None, y_test=None,
              record_every: Optional[int] = None, track_kernel: bool = False) -> TrainingHistory:
        """Full-batch gradient descent on 0.5 * mean((f(x) - y)^2), in place.

        Gradients are analytic (reverse mode in the core). With a small learning rate this is
        gradient flow for time ``learning_rate * steps``, comparable with ``ntkfast.predict``.
        Losses and the parameter change are recorded every ``record_every`` steps (default: about
        50 records). ``track_kernel=True`` also records how far the empirical NTK on ``x`` drifts:
        one empirical NTK of ``x`` per record, which can cost far more than the training itself.

        A step that would make a parameter non-finite (a learning rate above the stable range,
        ``ntkfast.predict.max_learning_rate``) raises ValueError and leaves the network at its
        last finite parameters. With ``output_scale`` alpha the empirical NTK is alpha^2 times the
        unscaled one: ``learning_rate = eta / alpha**2`` keeps one function-space time across alpha.
        """
        x = _float_inputs(x, "x")
        y = _targets(y, x.shape[0], self.out_dim)
        xt = None if x_test is None else _float_inputs(x_test, "x_test")
        yt = None if xt is None else _targets(y_test, xt.shape[0], self.out_dim, "y_test")
        start = self._core.copy()
        kernel_fn = (lambda: self._core.ntk(x, None, True)) if track_kernel else None
        engine = self._scale.engine(self._core.apply, self._core.train_step, x)

        initial_params = start.params()

        def gap() -> float:  # the expansion at the start, at the current parameters: one forward-mode pass
            delta = [tuple(None if a is None else a - b for a, b in zip(now, then))
                     for now, then in zip(self._core.params(), initial_params)]
            linear = start.linearize(delta)
            return float(np.max(np.abs(engine.apply(x) - self._scale.outputs(linear.apply(x), x, engine.initial))))

        return _train(engine, x, y, learning_rate, steps, xt, yt, record_every, kernel_fn, start.norm(),
                      lambda: self._core.distance(start), gap)

    def linearize(self) -> "LinearizedNetwork":
        """The first-order Taylor expansion of the network at its current parameters (theta_0 =
        the parameters now: call it before ``train`` to linearise around the initialisation)."""
        return LinearizedNetwork(self)

    def min_norm_solution(self, x, y) -> MinNormSolution:
        """The minimum-norm solution of the linearised least-squares problem (Lee et al. 2019) at the
        current parameters: delta = J^+ (y - f(x)), its norm, and the bound ||r|| / sigma_min(J)."""
        x = _float_inputs(x, "x")
        y = _targets(y, x.shape[0], self.out_dim)
        n, k = y.shape
        residual = (y - self.apply(x)).reshape(-1)
        theta = self._scale.kernel(self._core.ntk(x, None, False)).transpose(0, 2, 1, 3).reshape(n * k, n * k)
        theta = (theta + theta.T) / 2
        try:
            factor = linalg.cholesky(theta)
        except ValueError as exc:  # the core's "a: is not positive definite ... add diag_reg" (no diag_reg here)
            raise ValueError(_singular_ntk_message(x, k, exc)) from None
        coefficients = linalg.cho_solve(factor, residual)
        delta = self._core.vjp(x, self._scale.alpha * coefficients.reshape(n, k))  # J = output_scale * Jbar
        sigma_min = float(np.sqrt(max(linalg.eigvalsh(theta)[0], 0.0)))
        norm = float(np.sqrt(max(residual @ coefficients, 0.0)))
        r = float(np.linalg.norm(residual))
        return MinNormSolution([tuple(layer) for layer in delta], norm, r / sigma_min if sigma_min > 0 else np.inf,
                               r, sigma_min)


    def validity(self, x, y, *, iterations: int = 30, seed=0) -> "validity.Validity":
        """How far the linearisation at the current parameters can be trusted on (x, y):
        sigma_min of the Jacobian, the minimum-norm change and its bound ||y - f|| / sigma, the
        Jacobian's Lipschitz constant beta over that change (``iterations`` of power iteration from
        ``seed``), beta / sigma^2, and the predicted gap beta ||dtheta||^2 / 2 next to the measured
        ||f(theta + dtheta) - y|| (``ntkfast.validity``)."""
        x = _float_inputs(x, "x")
        y = _targets(y, x.shape[0], self.out_dim)
        solution = self.min_norm_solution(x, y)
        params0 = [tuple(layer) for layer in self._core.params()]
        moved = _core.Network(self.mlp._spec, _as_params([
            (w + dw, None if b is None else b + db) for (w, b), (dw, db) in zip(params0, solution.delta)]))
        alpha = self._scale.alpha

        def jvp(core):
            base = core.apply(x)
            return lambda v: alpha * (core.linearize(validity.unflatten(v, params0)).apply(x) - base)

        def vjp(core):
            return lambda u: alpha * validity.flatten(core.vjp(x, u))

        return validity.estimate(solution, jvp(self._core), vjp(self._core), jvp(moved), vjp(moved),
                                 self._scale.outputs(moved.apply(x), x), y, validity.flatten(params0).size,
                                 iterations, seed)


class LinearizedNetwork:
    """f_lin(x) = f(x; theta_0) + J(x; theta_0) (theta - theta_0), trained like the network.

    Pickles, copies and threads as ``Network`` does."""

    def __init__(self, network: Network):
        self.mlp = network.mlp
        self._core = network._core.linearize()
        self._scale = network.copy()._scale  # (centered: the network's initial outputs, kept)

    @property
    def out_dim(self) -> int:
        return self._core.base().out_dim

    def copy(self) -> "LinearizedNetwork":
        """An independent copy (training it leaves this one unchanged)."""
        new = LinearizedNetwork.__new__(LinearizedNetwork)
        new.mlp, new._core, new._scale = self.mlp, self._core.copy(), self._scale  # (the scale is immutable)
        return new

    __copy__ = copy

    def __deepcopy__(self, memo) -> "LinearizedNetwork":
        return self.copy()

    def __reduce__(self):
        base = [tuple(layer) for layer in self._core.base().params()]
        initial = self._scale.initial.__self__ if self._scale.centered else None  # the network it came from
        params0 = None if initial is None else [tuple(layer) for layer in initial._core0.params()]
        return (_restore_linearized, (self.mlp, base, self.delta, self._scale.state(), params0))

    def apply(self, x) -> np.ndarray:
        x = _float_inputs(x, "x")
        return self._scale.outputs(self._core.apply(x), x)

    @property
    def delta(self) -> list:
        """theta - theta_0 as (W, b) pairs."""
        return [tuple(layer) for layer in self._core.delta()]

    def train(self, x, y, *, learning_rate: float, steps: int, x_test=None, y_test=None,
              record_every: Optional[int] = None) -> TrainingHistory:
        """Full-batch gradient descent on the linearised model (its kernel never drifts)."""
        x = _float_inputs(x, "x")
        y = _targets(y, x.shape[0], self.out_dim)
        xt = None if x_test is None else _float_inputs(x_test, "x_test")
        yt = None if xt is None else _targets(y_test, xt.shape[0], self.out_dim, "y_test")
        engine = self._scale.engine(self._core.apply, self._core.train_step, x)
        return _train(engine, x, y, learning_rate, steps, xt, yt, record_every, None, self._core.base_norm(),
                      self._core.delta_norm)


from .monte_carlo import MonteCarloKernel, monte_carlo_kernel  # noqa: E402, F401 (its home before)
