"""Finite networks of any ``ntkfast.stax`` layer tree: outputs, empirical kernels and training.

``apply(layer, params, x)`` is ``apply_fn`` of ``ntkfast.stax`` (neural-tangents' parameters and
numbers); ``ComposedNetwork`` (``layer.init(in_dim)``, or ``layer.init((height, width, channels))`` for
networks of images) has the API of ``ntkfast.Network``. The passes are NumPy (float64, BLAS matrix
products; ``composed_ops``). The empirical NTK (Jacot et al. 2018) is built without materialising
the Jacobian: one backward pass of the stacked cotangents of all outputs over the rows of x1 and
x2, each Dense or Conv layer adding its share from its inputs and cotangents (``empirical``).
"""

from __future__ import annotations

import functools
import threading
from typing import Optional

import numpy as np

from . import composed_ops as ops
from . import empirical, finite, lazy, linalg, stax, training, validity
from ._arrays import renamed_error
from .composed_inputs import _images, _in_shape, _inputs

__all__ = ["apply", "ComposedNetwork", "LinearizedComposedNetwork"]


def apply(layer, params, x):
    """The outputs of the network ``layer`` with parameters ``params`` (neural-tangents' layout, e.g.
    from its ``init_fn``; JAX arrays work) on ``x``: an (n, features) array, or a list of them for
    a layer of several inputs. float32 inputs give float32 outputs (computed in float64)."""
    if not isinstance(layer, stax.Layer):
        raise TypeError(f"layer: must be an ntkfast.stax layer, got {type(layer).__name__}")
    p = ops.check_params(layer, params)
    if isinstance(x, (list, tuple)) and layer.n_in != 1:
        converted = [_inputs(xi, f"x[{i}]") for i, xi in enumerate(x)]
        if layer.n_in is not None and len(converted) != layer.n_in:
            raise ValueError(f"x: the network takes {layer.n_in} inputs, got {len(converted)}")
        if any(a.shape[0] != converted[0][0].shape[0] for a, _ in converted):
            raise ValueError(f"x: the inputs must have one row count, got {[a.shape[0] for a, _ in converted]}")
        values, single = [a for a, _ in converted], all(d == np.float32 for _, d in converted)
    else:
        if layer.n_in not in (1, None):
            raise ValueError(f"x: the network takes {layer.n_in} inputs: pass a list of {layer.n_in} arrays")
        if np.ndim(x) > 2 and ops.takes_images(layer):
            values, dtype = _images(x, "x")
        else:
            values, dtype = _inputs(x, "x")
        single = dtype == np.float32
    out, _ = ops.forward(layer, p, values, grad=False)
    cast = (lambda a: a.astype(np.float32)) if single else (lambda a: a)
    return [cast(o) for o in out] if isinstance(out, list) else cast(out)


def _quiet(method):
    """``method`` without NumPy's overflow warnings: its results are checked (``_overflow``, the loss)."""
    @functools.wraps(method)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return method(*args, **kwargs)
    return quiet


def _overflow(value: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(value).all():
        raise ValueError(f"{name}: the network's values overflow float64 on {name}: rescale the inputs, or check "
                         "the parameters")
    return value


def _norm(layer, params, minus=None) -> float:
    """||params|| (or ||params - minus||) over every W and b."""
    total = 0.0
    others = ops.weighted_params(layer, minus) if minus is not None else None
    for _, pair in ops.weighted_params(layer, params):
        other = next(others)[1] if others is not None else (None, None)
        for a, o in zip(pair, other):
            if a is not None:
                d = a if o is None else a - o
                total += float(np.vdot(d, d))
    return float(np.sqrt(total))


def _zeros(p):
    return np.zeros_like(p[0]), None if p[1] is None else np.zeros_like(p[1])


def _restore(layer, params, in_dim, scale=None, initial=None):
    new = ComposedNetwork(layer, params, in_dim, **(scale or {}))
    if initial is not None:  # a centered network's initial parameters
        new._params0 = ops.check_params(layer, initial, copy=True)
    return new


def _public(layer, params):
    """Copies of a parameter tree in neural-tangents' layout."""
    return ops.map_weighted(layer, params, lambda node, p: ops.public(node, (
        p[0].copy(), None if p[1] is None else p[1].copy())))


class ComposedNetwork(lazy.Scaled):
    """A finite network of an ``ntkfast.stax`` layer tree (``layer.init(in_dim)`` or
    ``ComposedNetwork.from_params(layer, params)``): the API of ``ntkfast.Network``.

    Parameters are neural-tangents' (``init_fn``'s nested tuples; "ntk" parameterization: W, b ~
    N(0, 1) stored unscaled). Networks pickle (by their layer and parameters) and copy; reads may
    run from several threads while a training step replaces the parameters.
    """

    def __init__(self, layer, params, in_dim=None, *, output_scale: float = 1.0, centered: bool = False,
                 _copy: bool = True):
        if not isinstance(layer, stax.Layer):
            raise TypeError(f"layer: must be an ntkfast.stax layer, got {type(layer).__name__}")
        if layer.n_in not in (1, None) or layer.n_out != 1:
            raise ValueError(f"layer: the network takes {layer.n_in} inputs and returns {layer.n_out} outputs; a "
                             "ComposedNetwork takes one input and returns one (end branches with FanInSum())")
        self.layer = layer
        self._params = ops.check_params(layer, params, copy=_copy)
        self._lock = threading.Lock()
        fan_in = ops.first_fan_in(layer, self._params)
        if in_dim is None and (fan_in is None or ops.takes_images(layer)):
            raise ValueError("in_dim: the input's shape is not known from params (the network has no Dense layer, or "
                             "takes images): pass in_dim (for images, their shape (height, width, channels))")
        self._in_shape = _in_shape(layer, fan_in if in_dim is None else in_dim)
        self._images = len(self._in_shape) > 1
        out, cache = ops.forward(layer, self._params, np.zeros((0,) + self._in_shape))  # checks every width
        if out.ndim != 2:
            raise ValueError(f"layer: the network's outputs keep positions (shape {out.shape[1:]} per image); end "
                             "it with Flatten() or GlobalAvgPool() and a Dense readout")
        self._out_dim = out.shape[1]
        self._row_floats, self._widest = ops.cache_floats(cache)
        self._scale = lazy.Scale(output_scale, centered, self._initial)
        # centered: the outputs at these (initial) parameters are subtracted, always (training
        # replaces the parameter arrays, never writes into them, so they can be shared)
        self._params0 = self._params if self._scale.centered else None

    def _initial(self, x: np.ndarray) -> np.ndarray:
        return ops.forward(self.layer, self._params0, x, grad=False)[0]

    @classmethod
    def initialize(cls, layer, in_dim, seed=0, *, output_scale: float = 1.0,
                   centered: bool = False) -> "ComposedNetwork":
        """A network of ``layer`` with inputs of ``in_dim`` features (images: ``in_dim`` their
        shape, (height, width, channels) or (width, channels)), its parameters from
        ``layer.init_fn(seed, (-1, *in_shape))`` (``seed``: an integer, a NumPy Generator or a JAX
        PRNGKey); ``output_scale`` and ``centered`` as in ``MLP.init``."""
        if not isinstance(layer, stax.Layer):
            raise TypeError(f"layer: must be an ntkfast.stax layer, got {type(layer).__name__}")
        in_shape = _in_shape(layer, in_dim)
        try:
            _, params = layer.init_fn(seed, (-1,) + in_shape)
        except MemoryError as exc:  # a W too large because of the input width: in_dim here
            raise renamed_error(exc, {"input_shape": "in_dim"}) from None
        return cls(layer, params, in_shape if len(in_shape) > 1 else in_shape[0], output_scale=output_scale,
                   centered=centered, _copy=False)  # fresh arrays: no copy

    @classmethod
    def from_params(cls, layer, params, in_dim=None, *, output_scale: float = 1.0,
                    centered: bool = False) -> "ComposedNetwork":
        """A network of ``layer`` with given parameters (neural-tangents' layout and scaling; the raw
        output of its ``init_fn`` works too). ``in_dim``: needed for networks of images (their
        shape) or without a Dense layer; ``output_scale`` and ``centered`` as in ``MLP.init``."""
        return cls(layer, params, in_dim, output_scale=output_scale, centered=centered)

    @property
    def params(self):
        """Copies of the parameters, in neural-tangents' layout (Dense b of shape (1, out_dim), Conv
        b (1, 1, 1, out_chan))."""
        return _public(self.layer, self._params)

    @property
    def in_dim(self):
        """The inputs' width, or for networks of images their shape (height, width, channels)."""
        return self._in_shape if self._images else self._in_shape[0]

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def __repr__(self) -> str:
        return f"ComposedNetwork({self.layer!r}, in_dim={self.in_dim}, out_dim={self.out_dim}{self._scale_repr()})"

    def _x(self, x, name: str) -> np.ndarray:
        if self._images:
            return _images(x, name, self._in_shape)[0]
        return _inputs(x, name, self._in_shape[0])[0]

    def _forward_check(self, n: int, what: str, extra: float = 0.0) -> None:
        ops.check_memory(8.0 * n * (self._row_floats + 2 * self._widest) + extra, what)

    def apply(self, x) -> np.ndarray:
        """Outputs f(x), (n, out_dim)."""
        return self._apply_checked(self._x(x, "x"))

    @_quiet
    def _raw_apply(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        """The unscaled outputs fbar(x)."""
        self._forward_check(x.shape[0], f"{name}: the forward pass")
        return _overflow(ops.forward(self.layer, self._params, x, grad=False, inputs=name)[0], name)

    @_quiet
    def _apply_checked(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        return _overflow(self._scale.outputs(self._raw_apply(x, name), x), name)

    def ntk(self, x1, x2=None, *, trace: bool = True) -> np.ndarray:
        """Empirical NTK <df_k(x1_i)/dtheta, df_l(x2_j)/dtheta>: averaged over outputs k = l,
        (n1, n2), or the full (n1, n2, out_dim, out_dim) with ``trace=False``."""
        if not isinstance(trace, (bool, np.bool_)):
            raise TypeError(f"trace: must be True or False, got {trace!r}")
        a = self._x(x1, "x1")
        b = None if x2 is None else self._x(x2, "x2")
        return _overflow(self._scale.kernel(self._ntk(a, b, bool(trace))), "x1" if b is None else "x1, x2")

    @_quiet
    def _ntk(self, a: np.ndarray, b: Optional[np.ndarray], trace: bool) -> np.ndarray:
        k, n1 = self._out_dim, a.shape[0]
        x = a if b is None else np.concatenate([a, b])
        n2 = n1 if b is None else b.shape[0]
        out_size = n1 * n2 * (1 if trace else k * k)
        names = "x1" if b is None else "x1, x2"
        self._forward_check(x.shape[0], f"{names}: the empirical NTK",
                            8.0 * (3 * out_size + 3 * k * x.shape[0] * self._widest))
        _, cache = ops.forward(self.layer, self._params, x, inputs=names)
        theta = np.zeros((n1, n2) if trace else (n1, n2, k, k))

        def visit(layer, p, h, g):
            if not layer.trainable:  # a frozen layer's parameters have no share
                return

            def check(nbytes):
                ops.check_memory(nbytes, f"{names}: the empirical NTK of {layer!r}")

            w_scale, b_scale = ops.scales(layer, p[0])
            second = (None, None) if b is None else (h[n1:], g[:, n1:])
            theta[...] += empirical.layer_ntk(h[:n1], g[:, :n1], *second, w_scale, None if p[1] is None else b_scale,
                                              trace, check=check)

        unit = np.broadcast_to(np.eye(k)[:, None, :], (k, x.shape[0], k))  # output k's cotangents: e_k per row
        ops.backward(self.layer, self._params, cache, unit, visit, need=False, inputs=names)
        if trace:
            theta /= k
        return theta

    def nngp(self, x1, x2=None) -> np.ndarray:
        """Empirical NNGP f(x1) f(x2)^T / out_dim."""
        a = self._x(x1, "x1")
        b = None if x2 is None else self._x(x2, "x2")
        n2 = a.shape[0] if b is None else b.shape[0]
        ops.check_memory(8.0 * a.shape[0] * n2,
                         f"{'x1' if b is None else 'x1, x2'}: the empirical NNGP of {a.shape[0]} x {n2} entries")
        f1 = self._apply_checked(a, "x1")
        f2 = f1 if b is None else self._apply_checked(b, "x2")
        out = f1 @ f2.T
        out /= self._out_dim
        return out

    def _vjp(self, params, cache, g: np.ndarray):
        """J^T g as a parameter tree: g (n, out_dim) the cotangents of the outputs."""
        grads = {}

        def visit(layer, p, h, gg):
            if not layer.trainable:  # frozen: zero gradients (filled in below)
                return
            w_scale, b_scale = ops.scales(layer, p[0])
            gw = h.reshape(-1, h.shape[-1]).T @ gg[0].reshape(-1, gg.shape[-1])
            gw *= w_scale
            grads[id(p)] = (layer.unmatrix(gw) if isinstance(layer, stax.Conv) else gw,
                            None if p[1] is None else b_scale * gg[0].sum(axis=(0, 1)))

        ops.backward(self.layer, params, cache, g[None], visit, need=False)
        return ops.map_weighted(self.layer, params, lambda _, p: grads[id(p)] if id(p) in grads else _zeros(p))

    def copy(self) -> "ComposedNetwork":
        """An independent copy (training it leaves this network unchanged)."""
        new = ComposedNetwork(self.layer, self._params, self.in_dim, **self._scale.state())
        new._params0 = self._params0  # (parameter arrays are never written into: shared)
        return new

    __copy__ = copy

    def __deepcopy__(self, memo) -> "ComposedNetwork":
        return self.copy()

    def __reduce__(self):
        initial = None if self._params0 is None else _public(self.layer, self._params0)
        return (_restore, (self.layer, self.params, self.in_dim, self._scale.state(), initial))

    def train(self, x, y, *, learning_rate: float, steps: int, x_test=None, y_test=None,
              record_every: Optional[int] = None, track_kernel: bool = False) -> training.TrainingHistory:
        """Full-batch gradient descent on 0.5 * mean((f(x) - y)^2), in place (as ``Network.train``):
        the gradient J^T (f - y) / (n out_dim) by reverse mode; ``track_kernel=True`` records the
        drift of the empirical NTK on ``x``. A step that would make a parameter non-finite raises
        ValueError and leaves the network at its last finite parameters."""
        x, y, xt, yt = _training_data(self, x, y, x_test, y_test)
        start = self._params
        kernel_fn = (lambda: self._ntk(x, None, True)) if track_kernel else None
        engine = self._scale.engine(self._raw_apply, self._step, x)
        f0, cache0 = ops.forward(self.layer, start, x)

        @_quiet
        def gap() -> float:  # the expansion at the start, at the current parameters: one forward-mode pass
            delta = ops.combine(self.layer, self._params, start, lambda now, then: now - then)
            linear = f0 + ops.tangent(self.layer, start, delta, cache0, None)
            return float(np.max(np.abs(engine.apply(x) - self._scale.outputs(linear, x, engine.initial))))

        return training._train(engine, x, y, learning_rate, steps, xt, yt, record_every, kernel_fn,
                             _norm(self.layer, start) or 1.0, lambda: _norm(self.layer, self._params, start), gap)

    @_quiet
    def _step(self, x, y, learning_rate: float) -> float:
        with self._lock:
            self._forward_check(x.shape[0], "x: a training step", 8.0 * 2 * sum(
                p[0].size for _, p in ops.weighted_params(self.layer, self._params)))
            out, cache = ops.forward(self.layer, self._params, x)
            residual = out - y
            loss = _loss(residual, learning_rate)
            grads = self._vjp(self._params, cache, residual / residual.size)
            self._params = _descend(self.layer, self._params, grads, learning_rate, loss)
            return loss

    def linearize(self) -> "LinearizedComposedNetwork":
        """The first-order Taylor expansion at the current parameters (Lee et al. 2019): call it
        before ``train`` to linearise around the initialisation."""
        return LinearizedComposedNetwork(self)

    @_quiet
    def min_norm_solution(self, x, y) -> finite.MinNormSolution:
        """The minimum-norm parameter change delta = J^+ (y - f(x)) of the linearised least-squares
        problem (as ``Network.min_norm_solution``; ``delta`` is a parameter tree)."""
        x = self._x(x, "x")
        y = _finite(finite._targets(y, x.shape[0], self._out_dim), "y")
        n, k = y.shape
        out, cache = ops.forward(self.layer, self._params, x)
        residual = (y - self._scale.outputs(out, x)).reshape(-1)
        theta = self._scale.kernel(self._ntk(x, None, False)).transpose(0, 2, 1, 3).reshape(n * k, n * k)
        theta = (theta + theta.T) / 2
        try:
            factor = linalg.cholesky(theta)
        except ValueError as exc:
            raise ValueError(finite._singular_ntk_message(x, k, exc)) from None
        coefficients = linalg.cho_solve(factor, residual)
        delta = self._vjp(self._params, cache, self._scale.alpha * coefficients.reshape(n, k))  # J = alpha Jbar
        delta = ops.map_weighted(self.layer, delta, ops.public)
        sigma_min = float(np.sqrt(max(linalg.eigvalsh(theta)[0], 0.0)))
        norm = float(np.sqrt(max(residual @ coefficients, 0.0)))
        r = float(np.linalg.norm(residual))
        return finite.MinNormSolution(delta, norm, r / sigma_min if sigma_min > 0 else np.inf, r, sigma_min)

    @_quiet
    def validity(self, x, y, *, iterations: int = 30, seed=0) -> "validity.Validity":
        """As ``Network.validity``: how far the linearisation at the current parameters can be
        trusted on (x, y) (``ntkfast.validity``)."""
        x = self._x(x, "x")
        y = _finite(finite._targets(y, x.shape[0], self._out_dim), "y")
        solution = self.min_norm_solution(x, y)
        change = ops.check_params(self.layer, solution.delta)
        moved = ops.combine(self.layer, self._params, change, lambda p, d: p + d)
        pairs0 = [p for _, p in ops.weighted_params(self.layer, self._params)]
        alpha = self._scale.alpha

        def tree(v):
            pairs = iter(validity.unflatten(v, pairs0))
            return ops.map_weighted(self.layer, self._params, lambda _, p: next(pairs))

        def at(params):
            f, cache = ops.forward(self.layer, params, x)
            jvp = lambda v: alpha * ops.tangent(self.layer, params, tree(v), cache, None)  # noqa: E731
            vjp = lambda u: alpha * validity.flatten(  # noqa: E731
                [p for _, p in ops.weighted_params(self.layer, self._vjp(params, cache, u))])
            return jvp, vjp, f

        jvp0, vjp0, _ = at(self._params)
        jvp1, vjp1, f1 = at(moved)
        return validity.estimate(solution, jvp0, vjp0, jvp1, vjp1, self._scale.outputs(f1, x), y,
                                 validity.flatten(pairs0).size, iterations, seed)


def _training_data(net, x, y, x_test, y_test):
    x = net._x(x, "x")
    y = _finite(finite._targets(y, x.shape[0], net.out_dim), "y")
    xt = None if x_test is None else net._x(x_test, "x_test")
    yt = None if xt is None else _finite(finite._targets(y_test, xt.shape[0], net.out_dim, "y_test"), "y_test")
    return x, y, xt, yt


def _finite(arr: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


def _loss(residual: np.ndarray, learning_rate: float) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        loss = 0.5 * float(np.mean(residual * residual))
    if not np.isfinite(loss):
        raise _diverged(loss, learning_rate)
    return loss


def _diverged(loss: float, learning_rate: float) -> ValueError:
    return ValueError(f"learning_rate: training diverged (loss {loss:.3e}; the step would make parameters "
                      f"non-finite) at learning_rate = {learning_rate}; the parameters are kept as they were before "
                      "this step. Gradient descent on this loss is stable below "
                      "ntkfast.predict.max_learning_rate(ntk_train_train, y_train.size)")


def _descend(layer, params, grads, learning_rate: float, loss: float):
    """params - learning_rate * grads, or the diverged error if an entry would not be finite."""
    def step(p, g):
        with np.errstate(over="ignore", invalid="ignore"):
            new = p - learning_rate * g
        if not np.isfinite(new).all():
            raise _diverged(loss, learning_rate)
        return new

    return ops.combine(layer, params, grads, step)


def _restore_linearized(layer, params, in_dim, delta, scale=None, initial=None):
    new = LinearizedComposedNetwork(_restore(layer, params, in_dim, scale, initial))
    new._delta = ops.check_params(layer, delta, copy=True)
    return new


class LinearizedComposedNetwork:
    """f_lin(x) = f(x; theta_0) + J(x; theta_0) (theta - theta_0), trained like the network (its
    kernel never drifts). Pickles and copies as ``ComposedNetwork`` does."""

    def __init__(self, network: ComposedNetwork):
        self.layer = network.layer
        self._base = network.copy()
        self._delta = ops.map_weighted(self.layer, self._base._params, lambda _, p: _zeros(p))
        self._lock = threading.Lock()
        self._cached = (None, None, None)  # (x, f_0(x), forward cache) of the last training inputs

    def __repr__(self) -> str:
        return f"LinearizedComposedNetwork({self.layer!r}, in_dim={self.in_dim}, out_dim={self.out_dim})"

    @property
    def in_dim(self):
        return self._base.in_dim

    @property
    def out_dim(self) -> int:
        return self._base.out_dim

    @property
    def delta(self):
        """theta - theta_0 as a parameter tree (neural-tangents' layout)."""
        return _public(self.layer, self._delta)

    def copy(self) -> "LinearizedComposedNetwork":
        """An independent copy (training it leaves this one unchanged)."""
        return _restore_linearized(*self.__reduce__()[1])

    __copy__ = copy

    def __deepcopy__(self, memo) -> "LinearizedComposedNetwork":
        return self.copy()

    def __reduce__(self):
        base = self._base.__reduce__()[1]  # (layer, params, in_dim, scale, initial)
        return (_restore_linearized, base[:3] + (self.delta,) + base[3:])

    @_quiet
    def _outputs(self, x, delta, keep: bool = False):
        cached_x, f0, cache = self._cached
        if cached_x is not x:
            self._base._forward_check(x.shape[0], "x: the linearised network")
            f0, cache = ops.forward(self.layer, self._base._params, x)
            if keep:
                self._cached = (x, f0, cache)
        return _overflow(f0 + ops.tangent(self.layer, self._base._params, delta, cache, None), "x"), cache

    @_quiet
    def _raw_apply(self, x: np.ndarray) -> np.ndarray:
        return self._outputs(x, self._delta)[0]

    @_quiet
    def _apply_checked(self, x: np.ndarray) -> np.ndarray:
        return _overflow(self._base._scale.outputs(self._raw_apply(x), x), "x")

    def apply(self, x) -> np.ndarray:
        return self._apply_checked(self._base._x(x, "x"))

    def train(self, x, y, *, learning_rate: float, steps: int, x_test=None, y_test=None,
              record_every: Optional[int] = None) -> training.TrainingHistory:
        """Full-batch gradient descent on the linearised model (as ``LinearizedNetwork.train``)."""
        x, y, xt, yt = _training_data(self._base, x, y, x_test, y_test)
        try:
            engine = self._base._scale.engine(self._raw_apply, self._step, x)
            return training._train(engine, x, y, learning_rate, steps, xt, yt, record_every, None,
                                 _norm(self.layer, self._base._params) or 1.0, lambda: _norm(self.layer, self._delta))
        finally:
            self._cached = (None, None, None)

    @_quiet
    def _step(self, x, y, learning_rate: float) -> float:
        with self._lock:
            out, cache = self._outputs(x, self._delta, keep=True)
            residual = out - y
            loss = _loss(residual, learning_rate)
            grads = self._base._vjp(self._base._params, cache, residual / residual.size)
            self._delta = _descend(self.layer, self._delta, grads, learning_rate, loss)
            return loss

