"""The passes of ``ntkfast.composed`` over a layer tree of ``ntkfast.stax``, in NumPy (float64).

* ``check_params``: neural-tangents' nested parameters as float64 arrays, the nesting checked
  against the tree (errors name ``params`` and the entry: ``params[1][0]``);
* ``forward``: outputs and what the other passes need (Dense and Conv inputs, phi', LayerNorm's
  outputs and scales, FanInProd's inputs, the input shapes of pooling and Flatten);
* ``backward``: vector-Jacobian products of a stack of cotangents (m, n, ...), calling
  ``visit(layer, p, h, g)`` at every Dense and Conv layer with its inputs as rows of features per
  position, h (n, positions, fan_in), and the cotangents g (m, n, positions, out_dim) of its
  output, from which parameter gradients and empirical NTKs follow;
* ``tangent``: the Jacobian-vector product along a parameter change (for linearised networks).

Values flowing between layers are (n, width) arrays or images (n, *spatial, channels), or lists
of them after ``FanOut`` and ``parallel``. A Dense layer is z = w_scale h W + b_scale b (per
position on images): "ntk" w_scale = W_std / sqrt(fan_in), b_scale = b_std (W, b stored
unscaled); "standard" w_scale = b_scale = 1. A Conv is the same on each window's patch of
in_chan * filter size features (``stax.convolutional``).

The passes are written recursively but as generators (``_forward`` yields ``_forward(child, ...)``
and receives its value) and run by ``stax.run_nested`` without Python recursion: trees nested
thousands of serial/parallel levels deep work (the kernels' core stops at its own limit).
"""

from __future__ import annotations

import numpy as np

from . import _core
from . import activations as _act
from .stax._windows import features_times
from .stax.convolutional import SPATIAL as _SPATIAL
from . import stax
from . import finite as _finite
from .finite import _finite_float64

_GELU_TANH = _act.Numerical("gelu_tanh")._core_spec()
WEIGHTED = (stax.Dense, stax.Conv)  # the layers with parameters (W, b)


def check_memory(nbytes: float, what: str) -> None:
    """MemoryError naming ``what`` (it starts with the argument responsible) if ``nbytes`` cannot fit."""
    allowance = _finite._memory_allowance()  # (looked up at each call: tests may replace it)
    if allowance is not None and nbytes > allowance:
        raise MemoryError(f"{what} needs about {nbytes / 2**30:.3g} GiB, more than this process can use "
                          f"({allowance / 2**30:.3g} GiB)")


def _short(layer) -> str:
    text = repr(layer)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    shape = getattr(value, "shape", None)
    return f"an array of shape {tuple(shape)}" if shape is not None else type(value).__name__


def _array(value, what: str, copy: bool) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - named below
        raise TypeError(f"params: {what} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"params: {what} must hold real numbers, got dtype {arr.dtype}")
    out = _finite_float64(arr, what)
    return out.copy() if copy and out is arr else out


def check_params(layer, params, where: str = "params", copy: bool = False):
    """``params`` as the tree passes take it: Dense -> (W, b) with W (fan_in, out_dim) and b
    (out_dim,) or None, float64 and finite; serial / parallel -> a tuple of their children's;
    every other layer -> (). ``copy``: never the caller's arrays."""
    return _walk(layer, _check_params(layer, params, where, copy))


def _check_params(layer, params, where, copy):
    if isinstance(layer, stax.Dense):
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise TypeError(f"params: {where} is for {_short(layer)} and must be a pair (W, b); got "
                            f"{_describe(params)}")
        w = _array(params[0], f"{where}[0] (W of {_short(layer)})", copy)
        if w.ndim != 2 or w.shape[1] != layer.out_dim:
            raise ValueError(f"params: {where}[0] (W of {_short(layer)}) must have shape (fan_in, {layer.out_dim}), "
                             f"got {w.shape}")
        b = params[1]
        if b is not None:
            if layer.b_std is None and layer.parameterization == "ntk":
                raise ValueError(f"params: {where}[1] must be None: {_short(layer)} has b_std=None (no bias)")
            b = _array(b, f"{where}[1] (b of {_short(layer)})", copy)
            if b.ndim not in (1, 2) or b.size != layer.out_dim or (b.ndim == 2 and b.shape[0] != 1):
                raise ValueError(f"params: {where}[1] (b of {_short(layer)}) must have shape (1, {layer.out_dim}) "
                                 f"or ({layer.out_dim},), got {b.shape}")
            b = b.reshape(-1)
        return (w, b)
    if isinstance(layer, stax.Conv):
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise TypeError(f"params: {where} is for {_short(layer)} and must be a pair (W, b); got "
                            f"{_describe(params)}")
        w = _array(params[0], f"{where}[0] (W of {_short(layer)})", copy)
        if w.shape[:-2] != layer.filter_shape or w.shape[-1] != layer.out_chan:
            raise ValueError(f"params: {where}[0] (W of {_short(layer)}) must have shape {layer.filter_shape} + "
                             f"(in_chan, {layer.out_chan}), got {w.shape}")
        if params[1] is not None and layer.b_std is None and layer.parameterization == "ntk":
            raise ValueError(f"params: {where}[1] must be None: {_short(layer)} has b_std=None (no bias)")
        b = None if params[1] is None else _array(params[1], f"{where}[1] (b of {_short(layer)})", copy)
        if b is not None and b.size != layer.out_chan:
            raise ValueError(f"params: {where}[1] (b of {_short(layer)}) must have {layer.out_chan} entries, got "
                             f"shape {b.shape}")
        return (w, None if b is None else b.reshape(-1))
    if isinstance(layer, (stax.Serial, stax.Parallel)):
        kind = "serial" if isinstance(layer, stax.Serial) else "parallel"
        n = len(layer.layers)
        if not isinstance(params, (tuple, list)) or len(params) != n:
            raise TypeError(f"params: {where} is for a {kind} of {n} layers and must be a tuple of {n} entries, got "
                            f"{_describe(params)} ({_short(layer)})")
        out = []
        for i, (child, p) in enumerate(zip(layer.layers, params)):
            out.append((yield _check_params(child, p, f"{where}[{i}]", copy)))
        return tuple(out)
    if not isinstance(layer, stax.Layer):
        raise TypeError(f"layer: must be an ntkfast.stax layer, got {type(layer).__name__}")
    if not (isinstance(params, (tuple, list)) and len(params) == 0):
        raise TypeError(f"params: {where} is for {_short(layer)}, which has no parameters: expected (), got "
                        f"{_describe(params)}")
    return ()


def scales(layer, w: np.ndarray) -> tuple[float, float]:
    """(w_scale, b_scale) of a Dense or Conv layer whose W is ``w`` (fan-in: all but W's last axis)."""
    if layer.parameterization == "ntk":
        return layer.W_std / np.sqrt(np.prod(w.shape[:-1])), (0.0 if layer.b_std is None else layer.b_std)
    return 1.0, 1.0


def public(layer, p):
    """(W, b) in neural-tangents' layout: b of shape (1, out_dim), or (1, 1, 1, out_chan) for a
    2-D Conv ((1, 1, out_chan) in 1-D)."""
    w, b = p
    if b is not None:
        b = b.reshape((1,) * (1 + layer.ndim if isinstance(layer, stax.Conv) else 1) + (-1,))
    return w, b


def weighted_params(layer, params):
    """(layer, its (W, b)) for every Dense or Conv layer of the tree, in order (without recursion)."""
    stack = [(layer, params)]
    while stack:
        node, p = stack.pop()
        if isinstance(node, WEIGHTED):
            yield node, p
        elif isinstance(node, (stax.Serial, stax.Parallel)):
            stack.extend(reversed(list(zip(node.layers, p))))


def map_weighted(layer, params, fn):
    """The tree of ``params`` with every Dense or Conv layer's (W, b) replaced by ``fn(layer, (W, b))``."""
    return _walk(layer, _map_weighted(layer, params, fn))


def _map_weighted(layer, params, fn):
    if isinstance(layer, WEIGHTED):
        return fn(layer, params)
    if isinstance(layer, (stax.Serial, stax.Parallel)):
        out = []
        for child, p in zip(layer.layers, params):
            out.append((yield _map_weighted(child, p, fn)))
        return tuple(out)
    return ()


def combine(layer, a, b, fn):
    """The parameter tree whose every W and b is ``fn(entry of a, entry of b)`` (a None bias stays
    None), for two trees ``a`` and ``b`` of ``layer``."""
    def pair(_, zipped):
        (wa, ba), (wb, bb) = zipped
        return fn(wa, wb), None if ba is None else fn(ba, bb)

    return map_weighted(layer, _walk(layer, _zip(layer, a, b)), pair)


def _zip(layer, a, b):
    if isinstance(layer, WEIGHTED):
        return (a, b)
    if isinstance(layer, (stax.Serial, stax.Parallel)):
        out = []
        for child, x, y in zip(layer.layers, a, b):
            out.append((yield _zip(child, x, y)))
        return tuple(out)
    return ()


def _walk(layer, walk):
    """The value of ``walk``, a pass over the tree of ``layer`` written as a generator that yields
    its recursive calls (``stax.run_nested``): no Python recursion, so trees nested deeper than
    the recursion limit work. A RecursionError all the same (a caller already deep in the stack)
    is a ValueError naming ``layers`` (``stax.nesting_error``) if the tree is deep."""
    try:
        return stax.run_nested(walk)
    except RecursionError as exc:
        raise stax.nesting_error(layer, exc) from None


def _real_values(out, z: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(out, dtype=np.float64)
    if arr.shape != z.shape:
        raise ValueError(f"{name}: returned shape {arr.shape} for input shape {z.shape}")
    return arr


def _finite_values(values: np.ndarray, at: np.ndarray, name: str, what: str, layer) -> np.ndarray:
    """``values`` (a user function's, at the points ``at``), or a ValueError naming the function if
    it returned NaN or infinity at a finite point (non-finite points are an overflow upstream,
    reported by the callers as such)."""
    bad = ~np.isfinite(values) & np.isfinite(at)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: {what} of {_short(layer)} returned {float(values[i])} at x = {float(at[i])!r} "
                         f"(a finite pre-activation of the finite network; {int(bad.sum())} of {bad.size} values are "
                         f"not finite): {name} must return finite values wherever it is evaluated")
    return values


def pointwise(layer, z: np.ndarray, grad: bool):
    """(phi(z), phi'(z) or None) of an activation layer."""
    act, flat = layer.activation, np.ascontiguousarray(z, dtype=np.float64).reshape(-1)
    if flat.size == 0:  # (a shape check: user functions need not take empty arrays)
        return z.copy(), (z.copy() if grad else None)
    if isinstance(act, _act.Numerical) and not isinstance(act.fn, str):
        fn, dfn = act._core_function()
        dfn_name = getattr(layer, "_dfn_name", "dfn")
        y = _finite_values(_real_values(fn(flat), flat, "fn"), flat, "fn", "the activation", layer)
        if not grad:
            return y.reshape(z.shape), None
        if dfn is not None:
            dy = _finite_values(_real_values(dfn(flat), flat, dfn_name), flat, dfn_name, "the derivative", layer)
        else:  # central differences, as the core takes them
            step = 1e-5 * np.maximum(1.0, np.abs(flat))
            above, below = flat + step, flat - step
            dy = (_finite_values(_real_values(fn(above), flat, "fn"), above, "fn", "the activation", layer)
                  - _finite_values(_real_values(fn(below), flat, "fn"), below, "fn", "the activation", layer)) \
                / (2 * step)
        return y.reshape(z.shape), dy.reshape(z.shape)
    name, params = _GELU_TANH if layer.approximate and isinstance(act, _act.Gelu) else act._core_spec()
    y, dy = _core.pointwise(name, params, flat)
    return y.reshape(z.shape), (dy.reshape(z.shape) if grad else None)


def _same_shapes(xs, layer):
    if any(x.shape != xs[0].shape for x in xs):
        raise ValueError(f"x: {_short(layer)} needs inputs of one shape, got {[x.shape for x in xs]}")


def forward(layer, params, x, grad: bool = True, where: str = "params", inputs: str = "x"):
    """(output, cache) of the layer on ``x``; ``grad=False`` skips what only the other passes need.
    ``inputs``: what errors about the values call the network's inputs (``x``, ``x1``)."""
    return _walk(layer, _forward(layer, params, x, grad, where, inputs))


def _forward(layer, params, x, grad, where, inputs):
    if isinstance(layer, stax.Dense):
        w, b = params
        if isinstance(x, list) or x.shape[-1] != w.shape[0]:
            got = f"{len(x)} inputs" if isinstance(x, list) else f"inputs of {x.shape[-1]} features"
            raise ValueError(f"x, params: {where}[0] (W of {_short(layer)}) has shape {w.shape}, for inputs of "
                             f"{w.shape[0]} features, but the layer gets {got}")
        w_scale, b_scale = scales(layer, w)
        z = features_times(x, w)
        if w_scale != 1.0:
            z *= w_scale
        if b is not None:
            z += b_scale * b
        return z, x
    if isinstance(layer, stax.Serial):
        caches = []
        for i, (child, p) in enumerate(zip(layer.layers, params)):
            x, cache = yield _forward(child, p, x, grad, f"{where}[{i}]", inputs)
            caches.append(cache)
        return x, caches
    if isinstance(layer, stax.Parallel):
        if not isinstance(x, list) or len(x) != len(layer.layers):
            got = f"{len(x)} inputs" if isinstance(x, list) else "one input"
            raise ValueError(f"x: a parallel of {len(layer.layers)} branches needs as many inputs, got {got}")
        outs, caches = [], []
        for i, (child, p, xi) in enumerate(zip(layer.layers, params, x)):
            out, cache = yield _forward(child, p, xi, grad, f"{where}[{i}]", inputs)
            outs.append(out)
            caches.append(cache)
        return outs, caches
    if isinstance(layer, stax.FanOut):
        return [x] * layer.num, None
    if isinstance(layer, (stax.FanInSum, stax.FanInProd)):
        if not isinstance(x, list):
            return x, "single"  # a leading FanIn of the network's one input
        xs = x
        _same_shapes(xs, layer)
        out = xs[0].copy()
        for xi in xs[1:]:
            if isinstance(layer, stax.FanInSum):
                out += xi
            else:
                out *= xi
        return out, (len(xs) if isinstance(layer, stax.FanInSum) else xs)
    if isinstance(x, list):
        raise ValueError(f"x: {_short(layer)} takes one input, got {len(x)} (end branches with FanInSum() or "
                         "FanInProd())")
    if isinstance(layer, stax.Identity):
        return x, None
    if isinstance(layer, stax.Conv) and not isinstance(x, list) and x.ndim == 2 + layer.ndim:
        # the forward pass gathers one block of images' windows at a time: at least one image's
        check_memory(8.0 * layer.patch_floats(x.shape[1:]), f"{inputs}: {_short(layer)}'s windows of one image")
    if isinstance(layer, _SPATIAL):  # Conv keeps its input (for its patches), the others its shape
        return layer.forward(params, x), ((x if isinstance(layer, stax.Conv) else x.shape) if grad else None)
    if isinstance(layer, stax.Elementwise):
        return pointwise(layer, x, grad)
    if isinstance(layer, stax.LayerNorm):
        axes = tuple(a for a in layer.axes if -a <= x.ndim - 1)  # (heights have no axis in 1-D images)
        centred = x - x.mean(axis=axes, keepdims=True)
        s = np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + layer.eps)
        zero = (s == 0).reshape(s.shape[0], int(np.prod(s.shape[1:]))).any(axis=1)
        if zero.any():  # 0/0: eps = 0 and features all equal (not an overflow)
            row, what = int(np.argmax(zero)), "row" if x.ndim == 2 else "image"
            at = f"{what} {row} of {inputs}" if "," not in inputs else f"a {what} of {inputs}"
            raise ValueError(f"{inputs}: {_short(layer)} divides 0 by 0 on {at} ({int(zero.sum())} of {zero.size} "
                             f"{what}s): the features of its input there are all equal (variance 0) and eps = 0 adds "
                             "nothing to the variance; use LayerNorm(eps=...) with eps > 0 (the default is 1e-12)")
        y = centred / s
        return y, ((y, s, axes) if grad else None)
    raise TypeError(f"layer: {_short(layer)} is not supported in finite networks")


def backward(layer, params, cache, g, visit, need: bool = True, inputs: str = "x"):
    """The cotangents of the layer's input from those of its output, ``g``: (m, n, width) arrays
    (a list for several outputs), each of the m rows of the stack pulled back on its own;
    ``visit(layer, p, h, g)`` is called at every Dense and Conv layer with its inputs as rows of
    features per position, h (n, positions, fan_in) (a Conv's patches), and the cotangents of its
    outputs, g (m, n, positions, out_dim) (positions: 1 for vectors). Returns None if not ``need``.
    ``inputs``: what memory errors call the network's inputs."""
    has = stax._fold(layer, lambda node: isinstance(node, WEIGHTED), lambda _, children: any(children), every=True)
    return _walk(layer, _backward(layer, params, cache, g, visit, need, has, inputs))


def _backward(layer, params, cache, g, visit, need, has, inputs):
    if isinstance(layer, WEIGHTED):
        if isinstance(layer, stax.Conv):  # the patches, and the cotangents of every patch (m per input)
            check_memory(8.0 * g.shape[0] * g.shape[1] * (layer.patch_floats(cache.shape[1:]) + cache[0].size),
                         f"{inputs}: {_short(layer)}'s windows in the backward pass")
        h = layer.patches(cache) if isinstance(layer, stax.Conv) else cache
        positions = int(np.prod(h.shape[1:-1]))
        visit(layer, params, h.reshape(h.shape[0], positions, h.shape[-1]),
              g.reshape(g.shape[:2] + (positions, g.shape[-1])))
        del h  # (the patches, freed before the transposed convolution allocates)
        if not need:
            return None
        if isinstance(layer, stax.Conv):
            return layer.backward(params[0], g, cache.shape[1:-1])
        w_scale = scales(layer, params[0])[0]
        back = features_times(g, params[0].T)
        if w_scale != 1.0:
            back *= w_scale
        return back
    if isinstance(layer, stax.Serial):
        before = [False] + [has[id(child)] for child in layer.layers[:-1]]
        before = np.logical_or.accumulate(before)  # a parameter upstream of child i
        for i in range(len(layer.layers) - 1, -1, -1):
            g = yield _backward(layer.layers[i], params[i], cache[i], g, visit, need or bool(before[i]), has, inputs)
        return g
    if isinstance(layer, stax.Parallel):
        out = []
        for child, p, c, gi in zip(layer.layers, params, cache, g):
            out.append((yield _backward(child, p, c, gi, visit, need, has, inputs)))
        return out
    if not need:
        return None
    if isinstance(cache, str):  # a FanIn of a single input
        return g
    if isinstance(layer, stax.FanOut):
        total = g[0].copy()
        for gi in g[1:]:
            total += gi
        return total
    if isinstance(layer, stax.FanInSum):
        return [g] * cache
    if isinstance(layer, stax.FanInProd):
        return [g * _product(cache, skip=i) for i in range(len(cache))]
    if isinstance(layer, stax.Identity):
        return g
    if isinstance(layer, stax.Elementwise):
        return g * cache
    if isinstance(layer, stax.LayerNorm):
        return _layer_norm_jacobian(cache, g)
    if isinstance(layer, stax.AvgPool):
        return layer.backward(g, cache[1:-1])
    if isinstance(layer, stax.GlobalAvgPool):
        return layer.backward(g, cache[1:-1])
    if isinstance(layer, stax.Flatten):
        return layer.backward(g, cache[1:-1], cache[-1])
    raise TypeError(f"layer: {_short(layer)} is not supported in finite networks")


def _layer_norm_jacobian(cache, g):
    """dy/dx applied to g: dy_i/dx_j = (delta_ij - 1/d - y_i y_j / d) / s over the normalised axes
    (eps included in s): symmetric, so the same for backward and tangent passes."""
    y, s, axes = cache
    return (g - g.mean(axis=axes, keepdims=True) - y * np.mean(g * y, axis=axes, keepdims=True)) / s


def _product(xs, skip: int):
    out = None
    for j, xj in enumerate(xs):
        if j != skip:
            out = xj.copy() if out is None else out * xj
    return out if out is not None else np.ones_like(xs[0])


def tangent(layer, params, delta, cache, dx):
    """The change of the layer's output along the parameter change ``delta`` (same tree as
    ``params``) and input change ``dx`` (None: zero), to first order: a JVP at ``cache``."""
    return _walk(layer, _tangent(layer, params, delta, cache, dx))


def _tangent(layer, params, delta, cache, dx):
    if isinstance(layer, stax.Dense):
        (w, _), (dw, db), h = params, delta, cache
        w_scale, b_scale = scales(layer, w)
        dz = features_times(h, dw) if dx is None else features_times(h, dw) + features_times(dx, w)
        if w_scale != 1.0:
            dz *= w_scale
        if db is not None:
            dz += b_scale * db
        return dz
    if isinstance(layer, stax.Conv):  # linear in (W, b) and in its input
        (w, _), h = params, cache
        dz = layer.forward(delta, h)
        if dx is not None:
            dz += layer.forward((w, None), dx)
        return dz
    if isinstance(layer, stax.Serial):
        for child, p, d, c in zip(layer.layers, params, delta, cache):
            dx = yield _tangent(child, p, d, c, dx)
        return dx
    if isinstance(layer, stax.Parallel):
        dx = [None] * len(layer.layers) if dx is None else dx
        out = []
        for child, p, d, c, di in zip(layer.layers, params, delta, cache, dx):
            out.append((yield _tangent(child, p, d, c, di)))
        return out
    if dx is None or isinstance(dx, list) and all(d is None for d in dx):
        return [None] * layer.num if isinstance(layer, stax.FanOut) else None
    if isinstance(cache, str):  # a FanIn of a single input
        return dx
    if isinstance(layer, stax.FanOut):
        return [dx] * layer.num
    if isinstance(layer, stax.FanInSum):
        return sum(d for d in dx if d is not None)
    if isinstance(layer, stax.FanInProd):
        return sum(d * _product(cache, skip=i) for i, d in enumerate(dx) if d is not None)
    if isinstance(layer, stax.Identity):
        return dx
    if isinstance(layer, stax.Elementwise):
        return dx * cache
    if isinstance(layer, stax.LayerNorm):
        return _layer_norm_jacobian(cache, dx)
    if isinstance(layer, _SPATIAL):  # pooling and Flatten: linear
        return layer.forward((), dx)
    raise TypeError(f"layer: {_short(layer)} is not supported in finite networks")


def takes_images(layer) -> bool:
    """Whether the network has convolutions, pooling or Flatten (its inputs are images)."""
    return stax._fold(layer, lambda node: isinstance(node, _SPATIAL), lambda _, children: any(children))


def first_fan_in(layer, params):
    """The input width: the fan-in of the first Dense layer (every layer upstream of it keeps the
    width), or None if the tree has none or starts with a Conv (whose images' size W does not tell)."""
    for node, (w, _) in weighted_params(layer, params):
        return w.shape[0] if isinstance(node, stax.Dense) else None
    return None


def cache_floats(cache) -> tuple[int, int]:
    """(entries per row, widest row) of the (n, ...) arrays in a forward cache (without recursion)."""
    total = widest = 0
    stack = [cache]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            row = int(np.prod(item.shape[1:]))
            total += row
            widest = max(widest, row)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return total, widest

