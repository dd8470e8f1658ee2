"""``MLP``: the model spec of a deep fully-connected network, and its infinite-width kernels."""

from __future__ import annotations

import numbers
import os
import sys
import warnings
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from . import _core
from . import activations as _activations
from ._methods import KernelMethods
from ._arrays import as_input_pair, as_inputs, renamed_error

__all__ = ["MLP", "Kernel"]

_KERNELS = ("nngp", "ntk")


class _Same:
    """Default of the readout scales: the same as the hidden layers'."""

    def __repr__(self) -> str:
        return "<same as hidden>"


_SAME = _Same()


class Kernel:
    """The kernels ``MLP.kernel`` computed: ``.nngp`` and ``.ntk`` (``None`` if not requested).

    Unpacks in the order of ``get``: ``nngp, ntk = mlp.kernel(x)``.
    """

    __slots__ = ("nngp", "ntk", "get")

    def __init__(self, nngp: Optional[np.ndarray], ntk: Optional[np.ndarray], get: Sequence[str]):
        self.nngp = nngp
        self.ntk = ntk
        self.get = tuple(get)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (getattr(self, name) for name in self.get)

    def __len__(self) -> int:
        return len(self.get)

    def __getitem__(self, key: Union[int, str]) -> np.ndarray:
        if isinstance(key, str):
            if key not in self.get:
                raise KeyError(key)
            return getattr(self, key)
        return getattr(self, self.get[key])

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}=<array {getattr(self, name).shape} {getattr(self, name).dtype}>" for name in self.get)
        return f"Kernel({parts})"


def _parse_get(get) -> tuple[tuple[str, ...], bool]:
    """(names, single): ``get`` as a tuple of kernel names, and whether it was one string."""
    if isinstance(get, str):
        names, single = (get,), True
    elif isinstance(get, (tuple, list)) and all(isinstance(g, str) for g in get) and len(get) > 0:
        names, single = tuple(get), False
    else:
        raise TypeError(f"get: must be 'nngp', 'ntk' or a tuple of them, got {get!r}")
    for name in names:
        if name not in _KERNELS:
            raise ValueError(f"get: unknown kernel {name!r}; choose from {_KERNELS}")
    return names, single


# Depth costs time and memory linearly (per-layer maps, per-input statistics); far beyond any
# published deep-kernel study (~10^3 layers) the kernel has long reached its fixed point.
MAX_DEPTH = 100_000
# The core holds the width in a 64-bit integer and multiplies kernels by it as a float64: beyond
# 2^53 it is no longer exact.
MAX_WIDTH = 2**53


def _integer(value, name: str, minimum: int, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum:_}"
        shown = f"{value}" if abs(value) < 10**20 else f"{float(value):.3g}"
        raise ValueError(f"{name}: must be {bound}, got {shown}")
    return int(value)


def check_mlp(mlp, name: str = "mlp") -> "MLP":
    """``mlp`` if it is an ``MLP``, else a TypeError naming the argument (for functions that take
    a spec, such as ``Network.from_params`` and ``monte_carlo_kernel``)."""
    if not isinstance(mlp, MLP):
        raise TypeError(f"{name}: must be an ntkfast.MLP (the network's spec), got {type(mlp).__name__}")
    return mlp


def _real(value, name: str, allow_none: bool = False) -> Optional[float]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "a real number or None" if allow_none else "a real number"
        raise TypeError(f"{name}: must be {kind}, got {type(value).__name__}")
    return float(value)


def _renamed(exc: Exception, names: dict) -> Exception:
    """``exc`` with the argument names in its message replaced (``x1`` -> ``x_test``, ...): a
    ValueError / TypeError wherever it names them, any other type (the core's MemoryError) when
    its message starts with them (see ``_arrays.renamed_error``)."""
    return renamed_error(exc, names)


def compiled_kernel(spec, x1, x2, get, diagonal, out=None):
    """The ``kernel`` method of a model (``MLP`` or ``ntkfast.stax`` layer) whose compiled core spec
    ``spec()`` returns: arguments checked, the kernels requested, a ``Kernel`` or one array."""
    names, single = _parse_get(get)
    want = {"nngp": "nngp" in names, "ntk": "ntk" in names}
    if not isinstance(diagonal, (bool, np.bool_)):  # diagonal="no" would be truthy
        raise TypeError(f"diagonal: must be True or False, got {diagonal!r}")
    if diagonal and x2 is not None:
        raise ValueError("diagonal: diagonal=True returns k(x1_i, x1_i) and takes x2=None")
    if out is not None and diagonal:
        raise ValueError("out: only for full kernels (diagonal=False)")
    core = spec()
    if getattr(core, "is_spatial", lambda: False)():
        if out is not None:
            raise NotImplementedError("out: writing into caller memory is not implemented yet for networks of "
                                      "images; call kernel() without out=")
        from . import images

        nngp, ntk = images.kernel(core, x1, x2, want, diagonal)
        result = Kernel(nngp, ntk, names)
        return result[names[0]] if single else result
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if out is not None:
            outs = _outputs(out, names, single)
            dtype = next(iter(outs.values())).dtype
            a, b = as_input_pair(x1, x2)
            a, b = a.astype(dtype, copy=False), None if b is None else b.astype(dtype, copy=False)
            spec().kernel_into(a, b, nngp=outs.get("nngp"), ntk=outs.get("ntk"))
            nngp, ntk = outs.get("nngp"), outs.get("ntk")
        elif diagonal:
            nngp, ntk = spec().kernel_diagonal(as_inputs(x1, "x1"), **want)
        else:
            a, b = as_input_pair(x1, x2)
            nngp, ntk = spec().kernel(a, b, **want)
    _warn_at_caller(caught)
    result = Kernel(nngp, ntk, names)
    return result[names[0]] if single else result


def _outputs(out, names: tuple, single: bool) -> dict:
    """``out`` of ``kernel(..., out=...)`` as {name: array}, checked (one dtype, float32/float64)."""
    if single:
        outs = {names[0]: out}
    elif isinstance(out, dict):
        if set(out) != set(names):
            raise ValueError(f"out: must give an array for each of {names}, got keys {sorted(out)}")
        outs = dict(out)
    elif isinstance(out, (tuple, list)) and len(out) == len(names):
        outs = dict(zip(names, out))
    else:
        raise TypeError(f"out: for get={names} pass a tuple of {len(names)} arrays in that order (or a dict by "
                        f"name), got {type(out).__name__}")
    for name, a in outs.items():
        label = "out" if single else f"out.{name}"
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{label}: must be a NumPy array (or numpy.memmap), got {type(a).__name__}")
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{label}: must have dtype float32 or float64, got {a.dtype}")
    if len({a.dtype for a in outs.values()}) > 1:
        raise TypeError("out: the arrays must share one dtype (the kernel is computed in it)")
    return outs


def _warn_at_caller(caught) -> None:
    """Re-issues the core's warnings (a numerical activation's quadrature that did not converge) at
    the user's line: the first frame outside this package, however deep the API call went."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=level)


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def kernel_float64(model, x1, x2, get):
    """``model.kernel`` in float64 whatever the input dtype: predictions solve linear systems in them."""
    a = np.asarray(as_inputs(x1, "x1"), dtype=np.float64)
    b = None if x2 is None else np.asarray(as_inputs(x2, "x2"), dtype=np.float64)
    return model.kernel(a, b, get=get)


def _rebuild_mlp(depth, activation, kwargs):
    return MLP(depth, activation, **kwargs)


class MLP(KernelMethods):
    """A fully-connected network: ``depth`` hidden (Dense, activation) pairs, then a Dense readout.

    The same spec and conventions as neural-tangents'
    ``stax.serial(*[Dense(width, W_std, b_std, parameterization=...), activation] * depth,
    Dense(out, readout_W_std, readout_b_std, parameterization=...))``.

    Args:
        depth: number of hidden layers (0 gives a linear model of the inputs).
        activation: an ``ntkfast.activations`` object (``Relu()``, ``Erf(a, b, c)``, ...) or an
            alias string (``"relu"``, ``"erf"``, ...).
        W_std: weight standard deviation of the hidden layers (> 0). He scaling for ReLU is
            ``sqrt(2)``.
        b_std: bias standard deviation (>= 0); ``None`` means no biases.
        parameterization: ``"ntk"`` (weights N(0, 1) scaled by ``W_std/sqrt(fan_in)`` in the
            forward pass) or ``"standard"`` (weights N(0, W_std^2/fan_in)); in "standard" the
            NTK depends on the hidden ``width``.
        width: hidden-layer width; required by ``"standard"``, unused by ``"ntk"`` kernels.
        readout_W_std, readout_b_std: the readout layer's scales; default to ``W_std`` and
            ``b_std``. ``readout_b_std=None`` explicitly means no readout bias.
        train_readout: ``False`` freezes the readout: it keeps its initial weights in training,
            its parameters add nothing to the NTK (analytic: NTK - NNGP in "ntk"), nor to the
            empirical NTK of finite networks (the two-layer network with fixed output weights of
            Du et al. 2019 and Arora et al. 2019).
    """

    def __init__(
        self,
        depth: int,
        activation: Union[_activations.Activation, str],
        *,
        W_std: float = 1.0,
        b_std: Optional[float] = None,
        parameterization: str = "ntk",
        width: Optional[int] = None,
        readout_W_std=_SAME,
        readout_b_std=_SAME,
        train_readout: bool = True,
    ):
        self.depth = _integer(depth, "depth", 0, MAX_DEPTH)
        self.activation = _activations.get(activation)
        self.W_std = _real(W_std, "W_std", allow_none=False)
        self.b_std = _real(b_std, "b_std", allow_none=True)
        if not isinstance(parameterization, str):
            raise TypeError(f"parameterization: must be 'ntk' or 'standard', got {type(parameterization).__name__}")
        self.parameterization = parameterization.lower()
        self.width = None if width is None else _integer(width, "width", 1, MAX_WIDTH)
        self.readout_W_std = self.W_std if readout_W_std is _SAME else _real(readout_W_std, "readout_W_std", allow_none=False)
        self.readout_b_std = self.b_std if readout_b_std is _SAME else _real(readout_b_std, "readout_b_std", allow_none=True)
        if not isinstance(train_readout, (bool, np.bool_)):
            raise TypeError(f"train_readout: must be True or False, got {train_readout!r}")
        self.train_readout = bool(train_readout)
        name, params = self.activation._core_spec()
        function = getattr(self.activation, "_core_function", lambda: None)()
        # The core validates values (W_std > 0, b_std >= 0, width given for "standard", ...).
        self._spec = _core.MlpSpec(
            self.depth,
            name,
            list(params),
            self.W_std,
            self.b_std,
            self.readout_W_std,
            self.readout_b_std,
            self.parameterization,
            self.width,
            function,
            self.train_readout,
        )
        self._model = self._spec.model()  # the serial stack of layers, for the kernels

    def __reduce__(self):
        """Pickles by its arguments (the compiled spec is rebuilt on loading)."""
        kwargs = dict(W_std=self.W_std, b_std=self.b_std, parameterization=self.parameterization, width=self.width,
                      readout_W_std=self.readout_W_std, readout_b_std=self.readout_b_std,
                      train_readout=self.train_readout)
        return (_rebuild_mlp, (self.depth, self.activation, kwargs))

    def __repr__(self) -> str:
        fields = [f"{self.depth}", repr(self.activation), f"W_std={self.W_std!r}", f"b_std={self.b_std!r}"]
        fields.append(f"parameterization={self.parameterization!r}")
        if self.width is not None:
            fields.append(f"width={self.width!r}")
        if self.readout_W_std != self.W_std:
            fields.append(f"readout_W_std={self.readout_W_std!r}")
        if self.readout_b_std != self.b_std:
            fields.append(f"readout_b_std={self.readout_b_std!r}")
        if not self.train_readout:
            fields.append("train_readout=False")
        return f"MLP({', '.join(fields)})"

    def _core_model(self):
        return self._model

    def init(self, in_dim: int, *, width: int, out_dim: int = 1, seed=0, output_scale: float = 1.0,
             centered: bool = False):
        """A finite-width ``Network`` of this spec, its weights drawn by NumPy's Generator from
        ``seed`` in neural-tangents' layout and scaling (see ``ntkfast.finite.init_params``).

        ``output_scale`` alpha and ``centered``: the network computes alpha * (fbar(x) - fbar_0(x))
        (centered: minus its outputs at these initial weights) or alpha * fbar(x); its empirical
        NTK is alpha^2 times fbar's, so ``train(learning_rate=eta / alpha**2)`` follows the same
        function-space time for every alpha while the weights move ~1/alpha as far (lazy training,
        Chizat, Oyallon & Bach 2018)."""
        from .finite import Network, init_params

        return Network(self, init_params(self, in_dim, width, out_dim, seed), output_scale=output_scale,
                       centered=centered)
