"""neural-tangents' layers for images: ``Conv``, ``AvgPool``, ``GlobalAvgPool``, ``Flatten``.

Images are NHWC (n, height, width, channels), or NWC (n, width, channels) for 1-D layers
(neural-tangents' default dimension numbers); ``Conv`` weights are HWIO (WIO in 1-D), biases
(1, 1, 1, out_chan). Kernels (the core's ``conv`` module; Novak et al. 2019, Arora et al. 2019):
a convolution averages the input covariance over equal filter offsets of both positions, then
scales it like a Dense layer; pooling averages each position over its window; ``Flatten`` keeps
the mean of same-position covariances, ``GlobalAvgPool`` the mean of all pairs of positions.
The finite layers below are NumPy (float64), with neural-tangents' scaling:
``W_std / sqrt(channels * filter size) * conv(x, W) + b_std * b`` ("ntk").
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _core
from ..models import _real
from .layers import Layer, _count

_PADDINGS = ("VALID", "SAME", "CIRCULAR")


def _sizes(value, name: str, ndim: Optional[int] = None) -> tuple:
    """A tuple of positive integers (one per spatial axis: 1 or 2 of them)."""
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name}: must be a tuple of 1 or 2 positive integers, got {value!r}") from None
    if not 1 <= len(items) <= 2 or (ndim is not None and len(items) != ndim):
        want = f"{ndim}" if ndim is not None else "1 or 2"
        raise ValueError(f"{name}: must have {want} entries (one per spatial axis), got {value!r}")
    return tuple(_count(v, name) for v in items)


def _padding(padding) -> str:
    if not isinstance(padding, str) or padding.upper() not in _PADDINGS:
        raise ValueError(f"padding: must be 'VALID', 'SAME' or 'CIRCULAR', got {padding!r}")
    return padding.upper()


def _two_d(sizes: tuple) -> tuple:
    """(height, width) sizes: a 1-D layer acts on width with height 1."""
    return sizes if len(sizes) == 2 else (1,) + sizes


def _spatial_shape(layer, shape: tuple) -> tuple:
    if len(shape) != 2 + layer.ndim:
        want = "(n, height, width, channels)" if layer.ndim == 2 else "(n, width, channels)"
        raise ValueError(f"input_shape: {layer!r} takes inputs of shape {want}, got {shape!r}")
    return shape[1:-1]


def _out_length(length: int, window: int, stride: int, padding: str, layer) -> int:
    if padding == "VALID":
        if window > length:
            raise ValueError(f"input_shape: {layer!r}'s window {window} is larger than its input's {length} positions")
        return (length - window) // stride + 1
    return -(-length // stride)


def _pad(x: np.ndarray, window: tuple, strides: tuple, padding: str) -> np.ndarray:
    """x (n, *spatial, c) padded as 'SAME' pads (zeros; 'CIRCULAR' wraps around); 'VALID' as is."""
    if padding == "VALID":
        return x
    pads = [(0, 0)]
    for length, k, s in zip(x.shape[1:-1], window, strides):
        out = -(-length // s)
        total = max((out - 1) * s + k - length, 0)
        pads.append((total // 2, total - total // 2))
    pads.append((0, 0))
    return np.pad(x, pads, mode="wrap" if padding == "CIRCULAR" else "constant")


def _windows(x: np.ndarray, window: tuple, strides: tuple) -> np.ndarray:
    """(n, *out_spatial, c, *window) views of the windows of a padded x."""
    axes = tuple(range(1, 1 + len(window)))
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=axes)
    index = (slice(None),) + tuple(slice(None, None, s) for s in strides)
    return view[index]


class Conv(Layer):
    """``Conv(out_chan, filter_shape, strides=None, padding='VALID', W_std=1., b_std=None,
    dimension_numbers=None, parameterization='ntk')``: neural-tangents' convolution, 1-D or 2-D,
    padding 'VALID', 'SAME' or 'CIRCULAR' (periodic)."""

    def __init__(self, out_chan: int, filter_shape, strides=None, padding: str = "VALID", W_std: float = 1.0,
                 b_std: Optional[float] = None, dimension_numbers=None, parameterization: str = "ntk", s=(1, 1)):
        self.out_chan = _count(out_chan, "out_chan")
        self.filter_shape = _sizes(filter_shape, "filter_shape")
        self.ndim = len(self.filter_shape)
        self.strides = (1,) * self.ndim if strides is None else _sizes(strides, "strides", self.ndim)
        self.padding = _padding(padding)
        self.W_std = _real(W_std, "W_std")
        self.b_std = _real(b_std, "b_std", allow_none=True)
        if not isinstance(parameterization, str) or parameterization.lower() not in ("ntk", "standard"):
            raise ValueError(f"parameterization: must be 'ntk' or 'standard', got {parameterization!r}")
        self.parameterization = parameterization.lower()
        default = (("NHWC", "HWIO", "NHWC") if self.ndim == 2 else ("NWC", "WIO", "NWC"))
        if dimension_numbers is not None and tuple(dimension_numbers) != default:
            raise NotImplementedError(f"dimension_numbers: only channels-last inputs {default} are supported, got "
                                      f"{dimension_numbers!r}")
        if tuple(s) != (1, 1):
            raise NotImplementedError(f"s: only s=(1, 1) is supported, got {s!r}")
        _core.check_layer(self._tree())

    def _tree(self):
        return ("conv", self.out_chan, _two_d(self.filter_shape), _two_d(self.strides), self.padding, self.W_std,
                self.b_std, self.parameterization)

    def _init(self, rng, shape):
        spatial = _spatial_shape(self, shape)
        out = tuple(_out_length(n, k, s, "SAME" if self.padding == "CIRCULAR" else self.padding, self)
                    for n, k, s in zip(spatial, self.filter_shape, self.strides))
        fan_in = shape[-1] * int(np.prod(self.filter_shape))
        w = rng.standard_normal(self.filter_shape + (shape[-1], self.out_chan))
        b = None if self.b_std is None else rng.standard_normal((1,) * (1 + self.ndim) + (self.out_chan,))
        if self.parameterization == "standard":
            w *= self.W_std / np.sqrt(fan_in)
            b = None if b is None else b * self.b_std
        return (shape[0],) + out + (self.out_chan,), (w, b)

    def forward(self, params, x: np.ndarray) -> np.ndarray:
        """The finite layer on x (n, *spatial, channels)."""
        w, b = params
        if x.ndim != 2 + self.ndim or w.shape != self.filter_shape + (x.shape[-1], self.out_chan):
            raise ValueError(f"x, params: {self!r} with W of shape {np.shape(w)} gets inputs of shape {x.shape}")
        windows = _windows(_pad(x, self.filter_shape, self.strides, self.padding), self.filter_shape, self.strides)
        # windows (n, *out, c, *filter) against W (*filter, c, out)
        k = len(self.filter_shape)
        w_axes = tuple(range(k + 1))
        x_axes = (windows.ndim - k - 1,) + tuple(range(windows.ndim - k, windows.ndim))
        z = np.tensordot(windows, np.moveaxis(w, k, 0), axes=(x_axes, w_axes))
        if self.parameterization == "ntk":
            z *= self.W_std / np.sqrt(x.shape[-1] * np.prod(self.filter_shape))
            if b is not None:
                z += self.b_std * np.asarray(b)
        elif b is not None:
            z += np.asarray(b)
        return z

    def __repr__(self) -> str:
        extra = "" if self.parameterization == "ntk" else f", parameterization={self.parameterization!r}"
        return (f"Conv({self.out_chan}, {self.filter_shape}, strides={self.strides}, padding={self.padding!r}, "
                f"W_std={self.W_std!r}, b_std={self.b_std!r}{extra})")


class AvgPool(Layer):
    """``AvgPool(window_shape, strides=None, padding='VALID', normalize_edges=False)``: each
    position averaged over its window (strides default to 1; with 'SAME' padding the window sum is
    divided by the window's size, or by the positions inside the image with ``normalize_edges``)."""

    def __init__(self, window_shape, strides=None, padding: str = "VALID", normalize_edges: bool = False,
                 batch_axis: int = 0, channel_axis: int = -1):
        self.window_shape = _sizes(window_shape, "window_shape")
        self.ndim = len(self.window_shape)
        self.strides = (1,) * self.ndim if strides is None else _sizes(strides, "strides", self.ndim)
        self.padding = _padding(padding)
        if not isinstance(normalize_edges, (bool, np.bool_)):
            raise TypeError(f"normalize_edges: must be True or False, got {normalize_edges!r}")
        self.normalize_edges = bool(normalize_edges)
        _channels_last(batch_axis, channel_axis)
        _core.check_layer(self._tree())

    def _tree(self):
        return ("avgpool", _two_d(self.window_shape), _two_d(self.strides), self.padding, self.normalize_edges)

    def _init(self, rng, shape):
        spatial = _spatial_shape(self, shape)
        out = tuple(_out_length(n, k, s, "SAME" if self.padding == "CIRCULAR" else self.padding, self)
                    for n, k, s in zip(spatial, self.window_shape, self.strides))
        return (shape[0],) + out + (shape[-1],), ()

    def forward(self, params, x: np.ndarray) -> np.ndarray:
        del params
        if x.ndim != 2 + self.ndim:
            raise ValueError(f"x: {self!r} gets inputs of shape {x.shape}")
        padded = _pad(x, self.window_shape, self.strides, self.padding)
        sums = _windows(padded, self.window_shape, self.strides).sum(axis=tuple(range(-self.ndim, 0)))
        if self.normalize_edges and self.padding == "SAME":
            ones = _pad(np.ones((1,) + x.shape[1:-1] + (1,)), self.window_shape, self.strides, self.padding)
            return sums / _windows(ones, self.window_shape, self.strides).sum(axis=tuple(range(-self.ndim, 0)))
        return sums / np.prod(self.window_shape)

    def __repr__(self) -> str:
        return f"AvgPool({self.window_shape}, strides={self.strides}, padding={self.padding!r})"


def _channels_last(batch_axis, channel_axis) -> None:
    if batch_axis != 0 or channel_axis != -1:
        raise NotImplementedError(f"batch_axis, channel_axis: only (0, -1) (NHWC / NWC inputs) are supported, got "
                                  f"{batch_axis}, {channel_axis}")


class GlobalAvgPool(Layer):
    """``GlobalAvgPool()``: the mean over all positions, (n, *spatial, c) -> (n, c)."""

    def __init__(self, batch_axis: int = 0, channel_axis: int = -1):
        _channels_last(batch_axis, channel_axis)

    def _tree(self):
        return ("globalavgpool",)

    def _init(self, rng, shape):
        if len(shape) < 3:
            raise ValueError(f"input_shape: GlobalAvgPool() takes inputs with positions, got {shape!r}")
        return (shape[0], shape[-1]), ()

    def forward(self, params, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=tuple(range(1, x.ndim - 1)))

    def __repr__(self) -> str:
        return "GlobalAvgPool()"


class Flatten(Layer):
    """``Flatten()``: positions and channels as one feature axis, (n, *spatial, c) -> (n, prod)."""

    def __init__(self, batch_axis: int = 0, batch_axis_out: int = 0):
        if batch_axis != 0 or batch_axis_out != 0:
            raise NotImplementedError(f"batch_axis, batch_axis_out: only 0 is supported, got {batch_axis}, "
                                      f"{batch_axis_out}")

    def _tree(self):
        return ("flatten",)

    def _init(self, rng, shape):
        size = int(np.prod(shape[1:]))
        return (shape[0], size), ()

    def forward(self, params, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1)

    def __repr__(self) -> str:
        return "Flatten()"


SPATIAL = (Conv, AvgPool, GlobalAvgPool, Flatten)
