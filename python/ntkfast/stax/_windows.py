"""Windows of finite images and their adjoints, for ``Conv`` and ``AvgPool`` (NumPy, float64).

Arrays are (*batch, *spatial, channels) with one or two spatial axes right before the channels,
so the same code serves the forward pass (batch = n) and the backward pass of a stack of
cotangents (batch = m, n). Padding follows XLA's rule, as neural-tangents (through
``jax.lax``) does: 'SAME' pads ``total = max((out - 1) * stride + window - length, 0)`` positions,
``total // 2`` before and the rest after, with zeros ('CIRCULAR': wrapping around); 'VALID' none.

The adjoints are what backpropagation needs: ``unpatch`` and ``unwindow_sums`` add each window's
entries back onto the positions they were read from, ``unpad`` folds the padded positions back onto the image
(dropping zeros, adding wrapped copies to their sources).
"""

from __future__ import annotations

import numpy as np


def features_times(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``a @ m`` over a's last axis as one matrix product: NumPy's ``@`` on an (n, h, w, f) array
    would loop over n * h small products."""
    return (a.reshape(-1, a.shape[-1]) @ m).reshape(a.shape[:-1] + (m.shape[1],))


def blocks(n: int, floats_per_item: int, floats: int = 1 << 22):
    """Slices of range(n) whose items hold about ``floats`` (32 MB) together, at least one each."""
    size = max(1, floats // max(floats_per_item, 1))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def out_length(length: int, window: int, stride: int, padding: str) -> int:
    """Output positions along one axis."""
    if padding == "VALID":
        return (length - window) // stride + 1
    return -(-length // stride)


def _before_after(length: int, window: int, stride: int, padding: str) -> tuple[int, int]:
    if padding == "VALID":
        return 0, 0
    total = max((out_length(length, window, stride, padding) - 1) * stride + window - length, 0)
    return total // 2, total - total // 2


def _spatial_axes(x: np.ndarray, ndim: int) -> range:
    return range(x.ndim - 1 - ndim, x.ndim - 1)


def pad(x: np.ndarray, window: tuple, strides: tuple, padding: str) -> np.ndarray:
    """``x`` padded for windows of ``window`` at ``strides`` ('VALID': as is)."""
    if padding == "VALID":
        return x
    widths = [(0, 0)] * x.ndim
    for axis, k, s in zip(_spatial_axes(x, len(window)), window, strides):
        widths[axis] = _before_after(x.shape[axis], k, s, padding)
    return np.pad(x, widths, mode="wrap" if padding == "CIRCULAR" else "constant")


def unpad(g: np.ndarray, lengths: tuple, window: tuple, strides: tuple, padding: str) -> np.ndarray:
    """The adjoint of ``pad``: cotangents of a padded array folded back onto an image of spatial
    ``lengths``."""
    if padding == "VALID":
        return g
    for axis, length, k, s in zip(_spatial_axes(g, len(window)), lengths, window, strides):
        before, after = _before_after(length, k, s, padding)
        if padding == "SAME":  # the zeros have no source
            g = np.take(g, np.arange(before, before + length), axis=axis)
            continue
        # CIRCULAR: padded position j copies position (j - before) mod length
        fold = np.zeros((length, length + before + after))
        fold[(np.arange(length + before + after) - before) % length, np.arange(length + before + after)] = 1.0
        g = np.moveaxis(np.tensordot(fold, np.moveaxis(g, axis, 0), axes=(1, 0)), 0, axis)
    return g


def _at(offset: tuple, strides: tuple, outs: tuple) -> tuple:
    """The index of the entries every window reads at ``offset`` (*batch, *out, channels)."""
    return (Ellipsis,) + tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, strides, outs)) \
        + (slice(None),)


def _outs(padded: tuple, window: tuple, strides: tuple) -> tuple:
    return tuple((n - k) // s + 1 for n, k, s in zip(padded, window, strides))


def patches(x: np.ndarray, window: tuple, strides: tuple) -> np.ndarray:
    """(*batch, *out, prod(window) * channels): each window of an (already padded) ``x``, its
    features ordered by filter offset, then channel (the rows of an HWIO weight, flattened)."""
    outs = _outs(x.shape[x.ndim - 1 - len(window):x.ndim - 1], window, strides)
    return np.concatenate([x[_at(offset, strides, outs)] for offset in np.ndindex(*window)], axis=-1)


def unpatch(g: np.ndarray, padded_shape: tuple, window: tuple, strides: tuple) -> np.ndarray:
    """The adjoint of ``patches``: ``g`` (*batch, *out, prod(window) * channels) summed onto an
    array of ``padded_shape`` (*batch, *padded, channels) where each entry was read from."""
    channels, k = padded_shape[-1], len(window)
    outs = _outs(padded_shape[len(padded_shape) - 1 - k:-1], window, strides)
    out = np.zeros(padded_shape)
    for i, offset in enumerate(np.ndindex(*window)):
        out[_at(offset, strides, outs)] += g[..., i * channels:(i + 1) * channels]
    return out


def window_sums(x: np.ndarray, window: tuple, strides: tuple) -> np.ndarray:
    """(*batch, *out, channels): each window's sum over its positions, of an (already padded) ``x``."""
    outs = _outs(x.shape[x.ndim - 1 - len(window):x.ndim - 1], window, strides)
    total = None
    for offset in np.ndindex(*window):
        part = x[_at(offset, strides, outs)]
        total = part.copy() if total is None else total + part
    return total


def unwindow_sums(g: np.ndarray, padded_shape: tuple, window: tuple, strides: tuple) -> np.ndarray:
    """The adjoint of ``window_sums``: every position of a window gets the window's cotangent."""
    outs = _outs(padded_shape[len(padded_shape) - 1 - len(window):-1], window, strides)
    out = np.zeros(padded_shape)
    for offset in np.ndindex(*window):
        out[_at(offset, strides, outs)] += g
    return out


def padded_lengths(lengths: tuple, window: tuple, strides: tuple, padding: str) -> tuple:
    """The spatial lengths of ``pad``'s output."""
    return tuple(n + sum(_before_after(n, k, s, padding)) for n, k, s in zip(lengths, window, strides))
