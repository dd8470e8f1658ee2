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
from . import _windows
from .layers import Layer, _count, _flag

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
    if padding == "VALID" and window > length:
        raise ValueError(f"input_shape: {layer!r}'s window {window} is larger than its input's {length} positions")
    return _windows.out_length(length, window, stride, padding)


class Conv(Layer):
    """``Conv(out_chan, filter_shape, strides=None, padding='VALID', W_std=1., b_std=None,
    dimension_numbers=None, parameterization='ntk')``: neural-tangents' convolution, 1-D or 2-D,
    padding 'VALID', 'SAME' or 'CIRCULAR' (periodic)."""

    def __init__(self, out_chan: int, filter_shape, strides=None, padding: str = "VALID", W_std: float = 1.0,
                 b_std: Optional[float] = None, dimension_numbers=None, parameterization: str = "ntk", s=(1, 1), *,
                 trainable: bool = True):
        self.out_chan = _count(out_chan, "out_chan")
        self.trainable = _flag(trainable, "trainable")
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
                self.b_std, self.parameterization, self.trainable)

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

    def fan_in(self, in_chan: int) -> int:
        return in_chan * int(np.prod(self.filter_shape))

    def w_scale(self, w: np.ndarray) -> float:
        """The factor of the window sums: W_std / sqrt(fan_in) ("ntk"), 1 ("standard")."""
        return self.W_std / np.sqrt(self.fan_in(w.shape[-2])) if self.parameterization == "ntk" else 1.0

    def matrix(self, w: np.ndarray) -> np.ndarray:
        """W as a (fan_in, out_chan) matrix, rows in the order of ``patches``' features."""
        return w.reshape(-1, self.out_chan)

    def unmatrix(self, m: np.ndarray) -> np.ndarray:
        """The inverse of ``matrix``: a (fan_in, out_chan) array in W's HWIO layout."""
        return m.reshape(self.filter_shape + (-1, self.out_chan))

    def patch_floats(self, shape: tuple) -> int:
        """Floats per input of ``patches`` for inputs of ``shape`` (*spatial, channels)."""
        outs = [_windows.out_length(n, k, s, self.padding) for n, k, s in zip(shape[:-1], self.filter_shape,
                                                                               self.strides)]
        return int(np.prod(outs)) * self.fan_in(shape[-1])

    def patches(self, x: np.ndarray) -> np.ndarray:
        """(n, *out, fan_in): each output position's window of ``x`` (n, *spatial, channels), by
        filter offset then channel (HWIO's order)."""
        return _windows.patches(_windows.pad(x, self.filter_shape, self.strides, self.padding), self.filter_shape,
                                self.strides)

    def forward(self, params, x: np.ndarray) -> np.ndarray:
        """The finite layer on x (n, *spatial, channels)."""
        w, b = params
        if x.ndim != 2 + self.ndim or w.shape != self.filter_shape + (x.shape[-1], self.out_chan):
            raise ValueError(f"x, params: {self!r} with W of shape {np.shape(w)} gets inputs of shape {x.shape}")
        matrix = self.matrix(w)
        outs = tuple(_windows.out_length(n, k, st, self.padding) for n, k, st in zip(x.shape[1:-1], self.filter_shape,
                                                                                      self.strides))
        if min(outs) < 1:
            raise ValueError(f"x: {self!r}'s window is larger than its input's positions, {x.shape[1:-1]}")
        z = np.empty((x.shape[0],) + outs + (self.out_chan,))
        # a block of images at a time: the patches stay small, and Ctrl-C is seen between blocks
        for block in _windows.blocks(x.shape[0], self.patch_floats(x.shape[1:])):
            z[block] = _windows.features_times(self.patches(x[block]), matrix)
        scale = self.w_scale(w)
        if scale != 1.0:
            z *= scale
        if b is not None:
            z += (self.b_std if self.parameterization == "ntk" else 1.0) * np.asarray(b).reshape(-1)
        return z

    def backward(self, w: np.ndarray, g: np.ndarray, lengths: tuple) -> np.ndarray:
        """The cotangents of the input (*batch, *lengths, in_chan) from those of the output ``g``
        (*batch, *out, out_chan): the transposed convolution."""
        batch = g.shape[:g.ndim - 1 - self.ndim]
        padded = _windows.padded_lengths(lengths, self.filter_shape, self.strides, self.padding)
        flat = g.reshape((-1,) + g.shape[len(batch):])  # the batch axes as one
        back = np.empty((flat.shape[0],) + tuple(lengths) + (w.shape[-2],))
        matrix_t = self.matrix(w).T
        for block in _windows.blocks(flat.shape[0], int(np.prod(g.shape[len(batch):-1])) * matrix_t.shape[1]):
            per_window = _windows.features_times(flat[block], matrix_t)  # (b, *out, filter * in_chan)
            padded_back = _windows.unpatch(per_window, per_window.shape[:1] + padded + (w.shape[-2],),
                                           self.filter_shape, self.strides)
            back[block] = _windows.unpad(padded_back, lengths, self.filter_shape, self.strides, self.padding)
        back = back.reshape(batch + back.shape[1:])
        scale = self.w_scale(w)
        if scale != 1.0:
            back *= scale
        return back

    def __repr__(self) -> str:
        extra = "" if self.parameterization == "ntk" else f", parameterization={self.parameterization!r}"
        extra += "" if self.trainable else ", trainable=False"
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

    def _counts(self, lengths: tuple) -> np.ndarray:
        """What each window sum is divided by: an array broadcasting against (*out, channels)."""
        if self.normalize_edges and self.padding == "SAME":
            ones = _windows.pad(np.ones(lengths + (1,)), self.window_shape, self.strides, self.padding)
            return _windows.window_sums(ones, self.window_shape, self.strides)
        return np.array(float(np.prod(self.window_shape)))

    def forward(self, params, x: np.ndarray) -> np.ndarray:
        del params
        if x.ndim != 2 + self.ndim:
            raise ValueError(f"x: {self!r} gets inputs of shape {x.shape}")
        padded = _windows.pad(x, self.window_shape, self.strides, self.padding)
        return _windows.window_sums(padded, self.window_shape, self.strides) / self._counts(x.shape[1:-1])

    def backward(self, g: np.ndarray, lengths: tuple) -> np.ndarray:
        """The cotangents of the input (*batch, *lengths, channels) from the output's ``g``."""
        per_entry = g / self._counts(lengths)
        batch = g.shape[:g.ndim - 1 - self.ndim]
        padded = _windows.padded_lengths(lengths, self.window_shape, self.strides, self.padding)
        back = _windows.unwindow_sums(per_entry, batch + padded + g.shape[-1:], self.window_shape, self.strides)
        return _windows.unpad(back, lengths, self.window_shape, self.strides, self.padding)

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

    @staticmethod
    def backward(g: np.ndarray, lengths: tuple) -> np.ndarray:
        """Each position gets 1 / positions of the output's cotangent, g (*batch, channels)."""
        spread = g / float(np.prod(lengths))
        return np.broadcast_to(spread[(Ellipsis,) + (None,) * len(lengths) + (slice(None),)],
                               g.shape[:-1] + tuple(lengths) + g.shape[-1:])

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
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))

    @staticmethod
    def backward(g: np.ndarray, lengths: tuple, channels: int) -> np.ndarray:
        return g.reshape(g.shape[:-1] + tuple(lengths) + (channels,))

    def __repr__(self) -> str:
        return "Flatten()"


SPATIAL = (Conv, AvgPool, GlobalAvgPool, Flatten)
