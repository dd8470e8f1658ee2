"""The layers of ``ntkfast.stax`` as values: the ``Layer`` base (the neural-tangents triple, and
ntkfast's ``kernel``, ``predict``, ``init``), Dense, LayerNorm, Identity, the branch layers and
combinators, the activation layer ``Elementwise``, and the walks over a layer tree."""


from __future__ import annotations

import numbers
import sys
from typing import Optional

import numpy as np

from .. import _core
from .. import activations as _act
from .._methods import KernelMethods
from ..models import _real



def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: must be True or False, got {value!r}")
    return bool(value)


def _count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def as_seed(key):
    """An integer seed (or Generator) from ``key``: an int, a NumPy Generator / SeedSequence, or a JAX
    PRNGKey (its uint32 words become the seed: migrated scripts run, the draws differ from JAX's)."""
    if isinstance(key, (np.random.Generator, np.random.SeedSequence)) or key is None:
        return key
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return int(key)
    try:
        words = np.asarray(key)
    except Exception:  # noqa: BLE001 - anything not array-like is named below
        words = None
    if words is not None and words.dtype.kind in "ui" and words.size > 0:
        return [int(w) for w in words.reshape(-1).astype(np.uint64)]
    raise TypeError(f"key: must be an integer seed, a NumPy Generator or a JAX PRNGKey, got {type(key).__name__}")


class Layer(KernelMethods):
    """A layer or a composition of layers: a value.

    Unpacks as ``init_fn, apply_fn, kernel_fn = layer`` (neural-tangents' triple). ``n_in`` is the
    number of inputs it takes (``None``: any number, for ``FanInSum``/``FanInProd``), ``n_out`` the
    number it returns.
    """

    n_in: Optional[int] = 1
    n_out: int = 1

    # -- the triple -------------------------------------------------------------------------------
    def __iter__(self):
        return iter((self.init_fn, self.apply_fn, self.kernel_fn))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index):
        return (self.init_fn, self.apply_fn, self.kernel_fn)[index]

    def init_fn(self, key, input_shape):
        """``(output_shape, params)``: parameters in neural-tangents' layout (nested tuples; a Dense
        layer's ``(W, b)`` with W of shape (fan_in, out_dim), b of shape (1, out_dim) or None)."""
        rng = np.random.default_rng(as_seed(key))
        shape = _shape(input_shape, self.n_in)
        try:
            return _init_params(self, rng, shape)
        except _WeightsTooLarge as exc:
            raise exc.named() from None
        except RecursionError as exc:
            raise nesting_error(self, exc) from None

    def apply_fn(self, params, inputs, **kwargs):
        """The finite network's outputs on ``inputs`` (NumPy in, NumPy out), with neural-tangents'
        own parameters (converted to NumPy) or those of ``init_fn``."""
        from .. import composed

        _no_kwargs(kwargs, "apply_fn", allowed=("rng", "mask"))
        return composed.apply(self, params, inputs)

    def kernel_fn(self, x1, x2=None, get=None, **kwargs):
        """Infinite-width kernels: ``get=None`` gives a ``Kernel`` with ``.nngp`` and ``.ntk``; a string
        that array; a tuple a ``Kernel`` unpacking in its order. float32 inputs give float32."""
        _no_kwargs(kwargs, "kernel_fn", allowed=())
        if get is None:
            return self.kernel(x1, x2, get=("nngp", "ntk"))
        return self.kernel(x1, x2, get=get)

    # -- ntkfast's methods ------------------------------------------------------------------------
    def _compiled(self):
        spec = getattr(self, "_spec", None)
        if spec is None:
            if self.n_in not in (1, None) or self.n_out != 1:
                raise ValueError(f"layers: the network takes {self.n_in} inputs and returns {self.n_out} "
                                 "outputs; a kernel needs one input and one output (end the branches with "
                                 "FanInSum() or FanInProd())")
            try:
                spec = _core.Model(self._tree())
            except RecursionError as exc:
                raise nesting_error(self, exc) from None
            object.__setattr__(self, "_spec", spec)
        return spec

    def _core_model(self):
        return self._compiled()

    def init(self, in_dim, *, seed=0, output_scale: float = 1.0, centered: bool = False):
        """A finite-width ``ComposedNetwork`` of this spec, its weights drawn from ``seed``;
        ``in_dim``: the input width, or the images' shape (height, width, channels);
        ``output_scale`` and ``centered`` as in ``MLP.init``."""
        from .. import composed

        return composed.ComposedNetwork.initialize(self, in_dim, seed, output_scale=output_scale, centered=centered)

    def __reduce__(self):
        return (type(self)._rebuild, (self._state(),))

    @classmethod
    def _rebuild(cls, state):
        new = cls.__new__(cls)
        new.__dict__.update(state)
        return new

    def _state(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_spec"}


def _no_kwargs(kwargs: dict, where: str, allowed) -> None:
    unknown = sorted(k for k in kwargs if k not in allowed)
    if unknown:
        raise TypeError(f"{where}: unsupported keyword argument(s) {', '.join(unknown)}")


def _shape(input_shape, n_in):
    """``input_shape`` as a tuple (or a list of tuples for layers of several inputs)."""
    if n_in == 1:
        if isinstance(input_shape, list):
            raise ValueError(f"input_shape: this layer takes one input, got a list of {len(input_shape)} shapes")
        return _one_shape(input_shape, "input_shape")
    if not isinstance(input_shape, (list, tuple)) or not all(isinstance(s, (list, tuple)) for s in input_shape):
        raise ValueError(f"input_shape: this layer takes several inputs: pass a list of shapes, got {input_shape!r}")
    return [_one_shape(s, f"input_shape[{i}]") for i, s in enumerate(input_shape)]


def _one_shape(shape, where: str) -> tuple:
    """One input's shape, (batch, ..., features): integers, the features positive, the other
    dimensions -1 (any) or >= 0. ``where``: ``input_shape`` or ``input_shape[i]``."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{where}: must be a shape such as (-1, in_dim), got {shape!r}") from None
    if not dims:
        raise ValueError(f"{where}: must be a shape such as (-1, in_dim), got {shape!r}")
    if any(isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral) for d in dims):
        raise TypeError(f"{where}: must be a shape of integers such as (-1, in_dim), got {shape!r}")
    if dims[-1] < 1:
        raise ValueError(f"{where}: the feature dimension (the last) must be a positive integer, got {dims[-1]} "
                         f"in {shape!r}")
    if any(d < -1 for d in dims[:-1]):
        raise ValueError(f"{where}: the batch dimension must be -1 (any) or >= 0, got {shape!r}")
    return tuple(int(d) for d in dims)


def nesting_depth(layer) -> int:
    """How many serial/parallel levels the tree of ``layer`` nests (0 for a single layer)."""
    return _fold(layer, lambda _: 0, lambda _, children: 1 + max(children))


def nesting_error(layer, exc: RecursionError) -> BaseException:
    """The error for a RecursionError raised while walking the tree of ``layer``: a ValueError
    naming ``layers`` if the tree nests deep enough to be the cause, else ``exc`` itself (a
    RecursionError of a user's function in a shallow network is the user's)."""
    try:
        depth = nesting_depth(layer)
    except Exception:  # noqa: BLE001 - e.g. a cycle: keep the original error
        return exc
    limit = sys.getrecursionlimit()
    if depth < max(limit // 10, 20):
        return exc
    return ValueError(f"layers: the network is nested {depth} levels deep (serial/parallel inside serial/parallel), "
                      f"beyond what Python's recursion limit (sys.getrecursionlimit() = {limit}) lets this walk "
                      "of the layer tree reach; flatten the serial/parallel nesting (serial(serial(a, b), c) is "
                      "serial(a, b, c))")


def run_nested(walk):
    """The value of ``walk``, a generator written as a recursive pass over a layer tree, run
    without Python recursion (trees may nest deeper than Python's recursion limit): where the
    recursive version would call itself on a child, ``walk`` yields that call's generator and
    receives its value; it returns its own value. An exception raised by a call propagates."""
    stack, value = [walk], None
    while True:
        try:
            call = stack[-1].send(value)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value
            value = done.value
        else:
            stack.append(call)
            value = None


def _init_params(layer, rng, shape):
    """``layer._init(rng, shape)`` of any tree, without recursion; a MemoryError before drawing
    weights that would outgrow the memory."""
    shape, params, _ = run_nested(_init_walk(layer, rng, shape, [0.0], True))
    return shape, params


def _init_walk(layer, rng, shape, drawn: list, raw: bool):
    """A ``run_nested`` walk of ``_init_params``: (output shape, params, whether the output is
    still the network's input width, ``raw``, i.e. no Dense layer on the way). ``drawn``: [bytes
    of the weights drawn so far]."""
    if isinstance(layer, Serial):
        params = []
        for child in layer.layers:
            shape, p, raw = yield _init_walk(child, rng, shape, drawn, raw)
            params.append(p)
        return shape, tuple(params), raw
    if isinstance(layer, Parallel):
        layer._check_shapes(shape)
        shapes, params, raws = [], [], []
        for child, s in zip(layer.layers, shape):
            out_shape, p, r = yield _init_walk(child, rng, s, drawn, raw)
            shapes.append(out_shape)
            params.append(p)
            raws.append(r)
        return shapes, tuple(params), all(raws)
    if isinstance(layer, Dense):
        drawn[0] += _check_weights(layer, shape[-1], drawn[0], raw)
        raw = False
    return layer._init(rng, shape) + (raw,)


def _fold(root, leaf, node, every: bool = False):
    """``node(layer, [results of its children])`` for serial/parallel layers, ``leaf(layer)`` for
    the others, over the tree of ``root``, without recursion (trees may nest deeper than Python's
    recursion limit). A layer used several times is visited once. ``every``: a dict of the
    results of every layer of the tree, by ``id``, rather than root's."""
    done, active = {}, set()
    stack = [root]
    while stack:
        layer = stack[-1]
        key = id(layer)
        if key in done:
            stack.pop()
            continue
        if not isinstance(layer, _Combinator):
            done[key] = leaf(layer)
            stack.pop()
            continue
        todo = [child for child in layer.layers if id(child) not in done]
        if todo:
            if key in active:
                raise ValueError(f"layers: {type(layer).__name__.lower()} contains itself")
            active.add(key)
            stack.extend(reversed(todo))
            continue
        stack.pop()
        active.discard(key)
        done[key] = node(layer, [done[id(child)] for child in layer.layers])
    return done if every else done[id(root)]


class _WeightsTooLarge(MemoryError):
    """A Dense layer's W would not fit; ``Layer.init_fn`` names the argument responsible."""

    def __init__(self, layer, fan_in: int, nbytes: float, allowance: float, before: float = 0.0,
                 raw: bool = False):
        self.layer, self.fan_in, self.nbytes, self.allowance, self.before = layer, fan_in, nbytes, allowance, before
        self.raw = raw  # the fan-in is the network's input width
        super().__init__(self._message("out_dim"))

    def _message(self, name: str) -> str:
        d = self.layer
        gib = 2.0**30
        also = (f" (besides the {self.before / gib:.3g} GiB of the layers drawn before it)"
                if self.nbytes <= self.allowance else "")
        return (f"{name}: {d!r} on {self.fan_in} input features needs a weight matrix W of shape "
                f"({self.fan_in}, {d.out_dim}): {self.nbytes / gib:.3g} GiB in float64{also}, more than this "
                f"process can use ({self.allowance / gib:.3g} GiB); the parameters were not drawn")

    def named(self) -> MemoryError:
        """The error naming ``input_shape`` if W is large because of the network's input width (the
        fan-in, at least out_dim), else ``out_dim``."""
        name = "input_shape" if self.raw and self.fan_in >= self.layer.out_dim else "out_dim"
        return MemoryError(self._message(name))


# -- layers ---------------------------------------------------------------------------------------

class Dense(Layer):
    """``Dense(out_dim, W_std=1., b_std=None, parameterization='ntk', trainable=True)``:
    neural-tangents' Dense; ``trainable=False`` (an extension) freezes it: its parameters keep
    their initial values in training and add nothing to the NTK, analytic or empirical."""

    def __init__(self, out_dim: int, W_std: float = 1.0, b_std: Optional[float] = None, batch_axis: int = 0,
                 channel_axis: int = -1, parameterization: str = "ntk", s=(1, 1), *, trainable: bool = True):
        self.out_dim = _count(out_dim, "out_dim")
        self.trainable = _flag(trainable, "trainable")
        self.W_std = _real(W_std, "W_std")
        self.b_std = _real(b_std, "b_std", allow_none=True)
        if not isinstance(parameterization, str):
            raise TypeError(f"parameterization: must be 'ntk' or 'standard', got {type(parameterization).__name__}")
        self.parameterization = parameterization.lower()
        if self.parameterization not in ("ntk", "standard"):
            raise ValueError(f"parameterization: must be 'ntk' or 'standard', got {parameterization!r}")
        if (batch_axis, channel_axis) not in ((0, -1), (0, 1)):
            raise NotImplementedError("batch_axis, channel_axis: fully-connected inputs are (batch, features): "
                                      f"only batch_axis=0, channel_axis=-1 are supported, got {batch_axis}, "
                                      f"{channel_axis}")
        if tuple(s) != (1, 1):
            raise NotImplementedError(f"s: only s=(1, 1) is supported, got {s!r}")
        _core.check_layer(self._tree())  # the core validates the values (W_std > 0, b_std >= 0)

    def _tree(self):
        return ("dense", self.out_dim, self.W_std, self.b_std, self.parameterization, self.trainable)

    def _init(self, rng, shape):
        fan_in = shape[-1]
        w = rng.standard_normal((fan_in, self.out_dim))
        b = None if self.b_std is None else rng.standard_normal((1, self.out_dim))
        if self.parameterization == "standard":
            w *= self.W_std / np.sqrt(fan_in)
            b = None if b is None else b * self.b_std
        return shape[:-1] + (self.out_dim,), (w, b)

    def __repr__(self) -> str:
        extra = "" if self.parameterization == "ntk" else f", parameterization={self.parameterization!r}"
        extra += "" if self.trainable else ", trainable=False"
        return f"Dense({self.out_dim}, W_std={self.W_std!r}, b_std={self.b_std!r}{extra})"


def _check_weights(dense: Dense, fan_in: int, before: float = 0.0, raw: bool = False) -> float:
    """The bytes of a W (and b), or a MemoryError before drawing them if they cannot fit in this
    process's memory (with ``before`` bytes of other weights)."""
    from ..finite import _memory_allowance

    nbytes = 8.0 * (float(fan_in) + 1.0) * float(dense.out_dim)
    allowance = _memory_allowance()
    if allowance is not None and before + nbytes > allowance:
        raise _WeightsTooLarge(dense, fan_in, nbytes, allowance, before, raw)
    return nbytes


class _Stateless(Layer):
    """A layer without parameters that keeps the shape of its input."""

    def _init(self, rng, shape):
        return shape, ()


class Identity(_Stateless):
    """``Identity()``: passes its input through."""

    def _tree(self):
        return ("identity",)

    def __repr__(self) -> str:
        return "Identity()"


class LayerNorm(_Stateless):
    """``LayerNorm(axis=-1, eps=1e-12)``: (x - mean) / sqrt(var + eps) over the features; in the
    kernel, division by sqrt((k(x1, x1) + eps)(k(x2, x2) + eps)). Needs Gaussian inputs.

    On images (NHWC / NWC), ``axis`` holds the channel axis and optionally spatial ones, as in
    neural-tangents: ``-1`` normalises each position over its channels, ``(-3, -2, -1)`` (or
    ``(1, 2, 3)``, counted in NHWC) each image over all its positions and channels; the kernel is
    divided by the inputs' variances averaged over those positions."""

    def __init__(self, axis=-1, eps: float = 1e-12, batch_axis: int = 0, channel_axis: int = -1):
        given = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
        if any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in given):
            raise TypeError(f"axis: must be an integer or a tuple of integers, got {axis!r}")
        if batch_axis != 0 or channel_axis not in (-1, 1, 3):
            raise NotImplementedError(f"batch_axis, channel_axis: only (0, -1) are supported, got {batch_axis}, "
                                      f"{channel_axis}")
        # negative axes; positive ones count in NHWC, except a lone 1: the features of (n, d) inputs
        axes = {-1} if given == (1,) else {int(a) - 4 if a > 0 else int(a) for a in given}
        if 0 in given or -4 in axes:
            raise NotImplementedError(f"axis: normalising over the batch axis is not supported, got {axis!r}")
        if -1 not in axes:
            raise ValueError(f"axis: must hold the channel axis (-1): normalising over channels is needed for "
                             f"an infinite-width limit, got {axis!r}")
        if not axes <= {-1, -2, -3}:
            raise ValueError(f"axis: must be among -1 (channels), -2 (width), -3 (height), got {axis!r}")
        self.axes = tuple(sorted(axes))
        self.axis = self.axes[0] if len(self.axes) == 1 else self.axes
        self.eps = _real(eps, "eps")
        _core.check_layer(self._tree())  # the core validates eps

    def _tree(self):
        return ("layernorm", self.eps, (-3 in self.axes, -2 in self.axes))

    def __repr__(self) -> str:
        extra = "" if self.axes == (-1,) else f"axis={self.axis!r}, "
        return f"LayerNorm({extra}eps={self.eps!r})"


class FanOut(Layer):
    """``FanOut(num)``: ``num`` copies of its input, for branches."""

    def __init__(self, num: int):
        self.num = _count(num, "num")
        self.n_out = self.num

    def _tree(self):
        return ("fanout", self.num)

    def _init(self, rng, shape):
        return [shape] * self.num, ()

    def __repr__(self) -> str:
        return f"FanOut({self.num})"


class _FanIn(Layer):
    n_in = None

    def _init(self, rng, shapes):
        if not isinstance(shapes, list):  # one input: passed through
            return tuple(shapes), ()
        if any(s[-1] != shapes[0][-1] for s in shapes):
            raise ValueError(f"input_shape: {self!r} needs inputs of one shape, got {shapes}")
        return shapes[0], ()


class FanInSum(_FanIn):
    """``FanInSum()``: the sum of its inputs (their kernels add: independent Gaussian branches)."""

    def _tree(self):
        return ("faninsum",)

    def __repr__(self) -> str:
        return "FanInSum()"


class FanInProd(_FanIn):
    """``FanInProd()``: the elementwise product of its inputs (kernels multiply; the NTK by the
    product rule)."""

    def _tree(self):
        return ("faninprod",)

    def __repr__(self) -> str:
        return "FanInProd()"


class Elementwise(_Stateless):
    """An activation layer: phi applied to every feature.

    ``Elementwise(fn, nngp_fn=None, d_nngp_fn=None)`` is neural-tangents' signature: ``fn`` a NumPy
    function; its kernels come from ntkfast's adaptive quadrature of ``fn`` (``nngp_fn`` and
    ``d_nngp_fn``, neural-tangents' closed forms, are accepted and not needed). ``fn`` may also be
    an ``ntkfast.activations`` object or alias (``Elementwise("relu")``): its closed form.
    """

    _dfn_name = "dfn"  # the derivative's argument name, for errors (ElementwiseNumerical's is df)

    def __init__(self, fn=None, nngp_fn=None, d_nngp_fn=None, *, name: Optional[str] = None,
                 approximate: bool = False):
        if fn is None:
            raise NotImplementedError("fn: ntkfast computes an Elementwise layer's kernels from fn itself (by "
                                      "quadrature); pass fn")
        for arg, value in (("nngp_fn", nngp_fn), ("d_nngp_fn", d_nngp_fn)):
            if value is not None and not callable(value):
                raise TypeError(f"{arg}: must be callable or None, got {type(value).__name__}")
        if isinstance(fn, (_act.Activation, str)):
            self.activation = _act.get(fn)
        else:
            self.activation = _act.Numerical(fn)
        self.name = name or (repr(self.activation) if isinstance(fn, (_act.Activation, str)) else
                             f"Elementwise({getattr(fn, '__name__', repr(fn))})")
        self.approximate = _flag(approximate, "approximate")

    def _tree(self):
        core_name, params = self.activation._core_spec()
        function = getattr(self.activation, "_core_function", lambda: None)()
        return ("activation", core_name, [float(p) for p in params], function, self.name)

    def __repr__(self) -> str:
        return self.name


class _Combinator(Layer):
    _kind = ""

    def __init__(self, layers, kind: str):
        self.layers = tuple(_as_layer(layer, f"{kind}[{i}]") for i, layer in enumerate(layers))
        if not self.layers:
            raise ValueError(f"layers: {kind}() needs at least one layer")

    def _tree(self):
        # without recursion: the core takes trees nested up to its own limit, deeper than Python's
        return _fold(self, lambda layer: layer._tree(), lambda layer, children: (layer._kind, children))

    def __repr__(self) -> str:
        parts, stack = [], [self]  # without recursion, as _tree
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, _Combinator):
                stack.append(")")
                for i in range(len(item.layers) - 1, -1, -1):
                    stack.append(item.layers[i])
                    if i:
                        stack.append(", ")
                parts.append(f"{type(item).__name__.lower()}(")
            else:
                parts.append(repr(item))
        return "".join(parts)


class Serial(_Combinator):
    """``serial(*layers)``: the layers one after another."""

    _kind = "serial"

    def __init__(self, layers):
        super().__init__(layers, "serial")
        self.n_in, self.n_out = self.layers[0].n_in, self.layers[-1].n_out
        width = self.layers[0].n_out
        for i, layer in enumerate(self.layers[1:], 1):
            if layer.n_in is not None and layer.n_in != width:
                raise ValueError(f"layers: serial[{i}] {layer!r} takes {layer.n_in} input(s) but serial[{i - 1}] "
                                 f"returns {width}")
            width = layer.n_out
        if self.n_in is None:
            self.n_in = 1  # (a leading FanIn of one input)

    def _init(self, rng, shape):
        return _init_params(self, rng, shape)


class Parallel(_Combinator):
    """``parallel(*layers)``: layer i applied to input i."""

    _kind = "parallel"

    def __init__(self, layers):
        super().__init__(layers, "parallel")
        for i, layer in enumerate(self.layers):
            if layer.n_in not in (1, None) or layer.n_out != 1:
                raise ValueError(f"layers: parallel[{i}] {layer!r} must take one input and return one output")
        self.n_in = self.n_out = len(self.layers)

    def _check_shapes(self, shapes) -> None:
        if not isinstance(shapes, list) or len(shapes) != len(self.layers):
            raise ValueError(f"input_shape: parallel of {len(self.layers)} branches needs a list of as many shapes, "
                             f"got {shapes!r}")

    def _init(self, rng, shapes):
        return _init_params(self, rng, shapes)


def _as_layer(layer, where: str) -> Layer:
    """A ``Layer`` from a layer, or from an (init_fn, apply_fn, kernel_fn) triple unpacked from one."""
    if isinstance(layer, Layer):
        return layer
    if isinstance(layer, tuple) and len(layer) == 3:
        owner = getattr(layer[2], "__self__", None)
        if isinstance(owner, Layer):
            return owner
    raise TypeError(f"layers: {where} must be an ntkfast.stax layer, got {type(layer).__name__} (neural-tangents' "
                    "own layers cannot be mixed in: import them from ntkfast.stax)")


def serial(*layers) -> Serial:
    """The layers one after another (neural-tangents' ``stax.serial``)."""
    return Serial(layers)


def parallel(*layers) -> Parallel:
    """Layer i on input i (neural-tangents' ``stax.parallel``)."""
    return Parallel(layers)
