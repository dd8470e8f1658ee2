"""Finite-width networks: sampling, outputs, empirical kernels, Monte Carlo, and training.

A network of width m has a random NTK that concentrates around the analytic one at rate
O(1/sqrt(m)), and in the lazy regime gradient descent on it follows kernel gradient flow. The
parameters live in the Rust core (float64); forward and backward passes, the empirical NTK
(structured: a sum over layers of Hadamard products of Gram matrices, no Jacobians) and training
steps run there with the GIL released.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Optional

import numpy as np

from . import _core, linalg
from ._arrays import as_inputs

__all__ = ["Network", "LinearizedNetwork", "TrainingHistory", "MinNormSolution", "MonteCarloKernel",
           "init_params", "monte_carlo_kernel"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise (TypeError if not isinstance(value, numbers.Integral) or isinstance(value, bool) else ValueError)(
            f"{name}: must be a positive integer, got {value!r}")
    return int(value)


def init_params(mlp, in_dim: int, width: int, out_dim: int = 1, seed=0) -> list:
    """Parameters of ``mlp`` drawn by NumPy's Generator from ``seed``, in neural-tangents' layout:
    a (W, b) pair per Dense layer, W of shape (fan_in, fan_out), b of shape (fan_out,) or None.
    "ntk": W, b ~ N(0, 1) (scaled in the forward pass); "standard": W ~ N(0, W_std^2/fan_in),
    b ~ N(0, b_std^2)."""
    in_dim, width, out_dim = (_positive_int(v, n) for v, n in ((in_dim, "in_dim"), (width, "width"),
                                                               (out_dim, "out_dim")))
    rng = np.random.default_rng(seed)
    dims = [in_dim] + [width] * mlp.depth + [out_dim]
    params = []
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
    return params


def _as_params(params) -> list:
    """(W, b) pairs as float64 arrays; accepts neural-tangents' raw ``init_fn`` output (empty
    tuples for activation layers, b of shape (1, fan_out), JAX arrays)."""
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params: must be a list of (W, b) pairs, got {type(params).__name__}")
    out = []
    for layer in params:
        if isinstance(layer, (tuple, list)) and len(layer) == 0:
            continue  # an activation layer of stax.serial
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            raise TypeError("params: every Dense layer must be a pair (W, b or None)")
        w, b = layer
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"params: W must be 2-D (fan_in, fan_out), got shape {w.shape}")
        if b is not None:
            b = np.asarray(b, dtype=np.float64)
            if b.size != w.shape[1] or b.ndim not in (1, 2):
                raise ValueError(f"params: b must have {w.shape[1]} entries, got shape {b.shape}")
            b = np.ascontiguousarray(b.reshape(-1))
        out.append((np.ascontiguousarray(w), b))
    return out


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
class TrainingHistory:
    """What full-batch gradient descent did.

    ``step`` are the recorded steps and ``time = learning_rate * step`` the matching gradient-flow
    time (as in ``ntkfast.predict``). ``train_loss`` is 0.5 * mean((f - y)^2) at every step
    0..steps; the rest are at the recorded steps: ``test_loss``, ``param_change``
    ||theta_t - theta_0|| / ||theta_0|| and ``kernel_drift`` ||Theta_t - Theta_0||_F / ||Theta_0||_F
    (the empirical NTK on the training inputs; zero for a linearised network).
    """

    step: np.ndarray
    time: np.ndarray
    train_loss: np.ndarray
    test_loss: Optional[np.ndarray]
    param_change: np.ndarray
    kernel_drift: Optional[np.ndarray]


@dataclasses.dataclass
class MinNormSolution:
    """The minimum-norm parameter change that makes the linearised network fit the targets:
    delta = J^+ (y - f_0), with ||delta|| = sqrt(r^T Theta^-1 r) <= ||r|| / sigma_min(J)."""

    delta: list
    norm: float
    bound: float
    residual_norm: float
    sigma_min: float


def _train(core, x, y, learning_rate, steps, x_test, y_test, record_every, kernel_fn, initial_norm, change_fn):
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps: must be >= 0, got {steps}")
    if not (isinstance(learning_rate, numbers.Real) and np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate: must be a finite number > 0, got {learning_rate!r}")
    every = max(1, steps // 50) if record_every is None else _positive_int(record_every, "record_every")
    recorded = sorted(set(range(0, steps + 1, every)) | {steps})
    theta0 = kernel_fn() if kernel_fn is not None else None
    train_loss = np.empty(steps + 1)
    test_loss, change, drift = [], [], []

    def record():
        if x_test is not None:
            test_loss.append(0.5 * np.mean((core.apply(x_test) - y_test) ** 2))
        change.append(change_fn() / initial_norm)
        if theta0 is not None:
            drift.append(np.linalg.norm(kernel_fn() - theta0) / np.linalg.norm(theta0))

    for s in range(steps):
        if s in recorded:
            record()
        train_loss[s] = core.train_step(x, y, learning_rate)
    train_loss[steps] = 0.5 * np.mean((core.apply(x) - y) ** 2)
    record()
    step = np.array(recorded)
    return TrainingHistory(step, step * float(learning_rate), train_loss,
                           np.array(test_loss) if x_test is not None else None, np.array(change),
                           np.array(drift) if theta0 is not None else None)


class Network:
    """A finite-width network of an ``MLP`` spec (``MLP.init`` or ``Network.from_params``)."""

    def __init__(self, mlp, params):
        self.mlp = mlp
        self._core = _core.Network(mlp._spec, _as_params(params))

    @classmethod
    def from_params(cls, mlp, params) -> "Network":
        """A network with given parameters: (W, b) per Dense layer in neural-tangents' layout and
        scaling (the raw output of its ``init_fn`` works too)."""
        return cls(mlp, params)

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
        return f"Network({self.mlp!r}, in_dim={self.in_dim}, widths={widths}, out_dim={self.out_dim})"

    def apply(self, x) -> np.ndarray:
        """Outputs f(x), (n, out_dim)."""
        return self._core.apply(_float_inputs(x, "x"))

    def ntk(self, x1, x2=None, *, trace: bool = True) -> np.ndarray:
        """Empirical NTK <df_k(x1_i)/dtheta, df_l(x2_j)/dtheta>: averaged over outputs k = l,
        (n1, n2), or the full (n1, n2, out_dim, out_dim) with ``trace=False``."""
        a = _float_inputs(x1, "x1")
        return self._core.ntk(a, None if x2 is None else _float_inputs(x2, "x2"), trace)

    def nngp(self, x1, x2=None) -> np.ndarray:
        """Empirical NNGP f(x1) f(x2)^T / out_dim."""
        a = _float_inputs(x1, "x1")
        return self._core.nngp(a, None if x2 is None else _float_inputs(x2, "x2"))

    def copy(self) -> "Network":
        new = Network.__new__(Network)
        new.mlp, new._core = self.mlp, self._core.copy()
        return new

    def train(self, x, y, *, learning_rate: float, steps: int, x_test=None, y_test=None,
              record_every: Optional[int] = None, track_kernel: bool = True) -> TrainingHistory:
        """Full-batch gradient descent on 0.5 * mean((f(x) - y)^2), in place.

        Gradients are analytic (reverse mode in the core). With a small learning rate this is
        gradient flow for time ``learning_rate * steps``, comparable with ``ntkfast.predict``.
        ``track_kernel`` also records how far the empirical NTK on ``x`` drifts.
        """
        x = _float_inputs(x, "x")
        y = _targets(y, x.shape[0], self.out_dim)
        xt = None if x_test is None else _float_inputs(x_test, "x_test")
        yt = None if xt is None else _targets(y_test, xt.shape[0], self.out_dim, "y_test")
        start = self._core.copy()
        kernel_fn = (lambda: self._core.ntk(x, None, True)) if track_kernel else None
        return _train(self._core, x, y, learning_rate, steps, xt, yt, record_every, kernel_fn, start.norm(),
                      lambda: self._core.distance(start))

    def linearize(self) -> "LinearizedNetwork":
        """The first-order Taylor expansion of the network at its current parameters."""
        return LinearizedNetwork(self)

    def min_norm_solution(self, x, y) -> MinNormSolution:
        """The seeds' minimum-norm solution of the linearised least-squares problem at the
        current parameters: delta = J^+ (y - f(x)), its norm, and the bound ||r|| / sigma_min(J)."""
        x = _float_inputs(x, "x")
        y = _targets(y, x.shape[0], self.out_dim)
        n, k = y.shape
        residual = (y - self.apply(x)).reshape(-1)
        theta = self._core.ntk(x, None, False).transpose(0, 2, 1, 3).reshape(n * k, n * k)
        theta = (theta + theta.T) / 2
        coefficients = linalg.cho_solve(linalg.cholesky(theta), residual)
        delta = self._core.vjp(x, coefficients.reshape(n, k))
        sigma_min = float(np.sqrt(max(linalg.eigvalsh(theta)[0], 0.0)))
        norm = float(np.sqrt(max(residual @ coefficients, 0.0)))
        r = float(np.linalg.norm(residual))
        return MinNormSolution([tuple(layer) for layer in delta], norm, r / sigma_min if sigma_min > 0 else np.inf,
                               r, sigma_min)


class LinearizedNetwork:
    """f_lin(x) = f(x; theta_0) + J(x; theta_0) (theta - theta_0), trained like the network."""

    def __init__(self, network: Network):
        self.mlp = network.mlp
        self._core = network._core.linearize()
        self.out_dim = network.out_dim

    def apply(self, x) -> np.ndarray:
        return self._core.apply(_float_inputs(x, "x"))

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
        return _train(self._core, x, y, learning_rate, steps, xt, yt, record_every, None, self._core.base_norm(),
                      self._core.delta_norm)


@dataclasses.dataclass
class MonteCarloKernel:
    """Kernels averaged over ``n_samples`` sampled networks, with their standard errors."""

    nngp: Optional[np.ndarray]
    ntk: Optional[np.ndarray]
    nngp_stderr: Optional[np.ndarray]
    ntk_stderr: Optional[np.ndarray]
    n_samples: int


def monte_carlo_kernel(mlp, x1, x2=None, *, width: int, n_samples: int, out_dim: int = 1, seed=0,
                       get=("nngp", "ntk")) -> MonteCarloKernel:
    """Empirical NNGP / NTK averaged over ``n_samples`` networks of width ``width`` drawn from
    ``seed`` (neural-tangents' ``monte_carlo_kernel_fn``), with elementwise standard errors."""
    names = (get,) if isinstance(get, str) else tuple(get)
    if not names or any(g not in ("nngp", "ntk") for g in names):
        raise ValueError(f"get: must be 'nngp', 'ntk' or a tuple of them, got {get!r}")
    n_samples = _positive_int(n_samples, "n_samples")
    a = _float_inputs(x1, "x1")
    b = None if x2 is None else _float_inputs(x2, "x2")
    if b is not None and b.shape[1] != a.shape[1]:
        raise ValueError(f"x2: has {b.shape[1]} features but x1 has {a.shape[1]}")
    sums = {g: 0.0 for g in names}
    squares = {g: 0.0 for g in names}
    for child in np.random.SeedSequence(seed).spawn(n_samples):
        net = Network(mlp, init_params(mlp, a.shape[1], width, out_dim, np.random.default_rng(child)))
        for g in names:
            k = net._core.nngp(a, b) if g == "nngp" else net._core.ntk(a, b, True)
            sums[g] = sums[g] + k
            squares[g] = squares[g] + k * k
    out = {}
    for g in names:
        mean = sums[g] / n_samples
        var = np.maximum(squares[g] / n_samples - mean**2, 0.0) * n_samples / max(n_samples - 1, 1)
        out[g], out[g + "_stderr"] = mean, np.sqrt(var / n_samples)
    return MonteCarloKernel(out.get("nngp"), out.get("ntk"), out.get("nngp_stderr"), out.get("ntk_stderr"), n_samples)
