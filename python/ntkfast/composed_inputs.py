"""The inputs of finite networks of ``ntkfast.stax`` layer trees: vectors (n, features) or
images (n, height, width, channels) / (n, width, channels), as float64, checked and named."""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import composed_ops as ops
from . import finite, stax
from ._arrays import as_inputs


def _inputs(x, name: str, in_dim: Optional[int] = None) -> np.ndarray:
    arr = as_inputs(x, name)
    dtype = arr.dtype
    arr = np.asarray(arr, dtype=np.float64)
    if in_dim is not None and arr.shape[1] != in_dim:
        raise ValueError(f"{name}: has {arr.shape[1]} features, the network takes {in_dim}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr, dtype


def _images(x, name: str, in_shape: Optional[tuple] = None):
    """(images as float64 in the network's layout, NHWC or NWC; the caller's dtype)."""
    from .images import as_images

    one_d = np.ndim(x) == 3
    arr = as_images(x, name)
    dtype = arr.dtype
    arr = np.asarray(arr[:, 0] if one_d else arr, dtype=np.float64)
    if in_shape is not None and arr.shape[1:] != in_shape:
        raise ValueError(f"{name}: images of shape {arr.shape[1:]}, the network takes {in_shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr, dtype


def _in_shape(layer, in_dim) -> tuple:
    """The inputs' shape without the batch axis: (in_dim,) for vectors, (height, width, channels)
    or (width, channels) for networks of images (``in_dim`` then a tuple)."""
    if not ops.takes_images(layer):
        return (finite._positive_int(in_dim, "in_dim"),)
    shape = tuple(in_dim) if isinstance(in_dim, (tuple, list)) else None
    if shape is None or len(shape) not in (2, 3):
        raise ValueError(f"in_dim: this network has convolutions, pooling or Flatten: pass its images' shape, "
                         f"(height, width, channels) or (width, channels) in 1-D, got {in_dim!r}")
    return tuple(finite._positive_int(v, "in_dim") for v in shape)


def sampling_inputs(layer, x1, x2):
    """(x1, x2 or None, in_dim) for sampling networks of ``layer`` on them (images or vectors)."""
    if not isinstance(layer, stax.Layer):
        raise TypeError(f"layer: must be an ntkfast.stax layer, got {type(layer).__name__}")
    convert = _images if ops.takes_images(layer) else _inputs
    a = convert(x1, "x1")[0]
    in_dim = a.shape[1:] if a.ndim > 2 else a.shape[1]
    return a, None if x2 is None else convert(x2, "x2", in_dim)[0], in_dim
