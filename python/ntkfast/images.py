"""Kernels of networks of images (``ntkfast.stax.Conv``, pooling, ``Flatten``): inputs of shape
(n, height, width, channels), or (n, width, channels) for 1-D convolutions, as neural-tangents
takes them (NHWC / NWC). The core receives one flattened image per row and the images' shape.

A network that ends in ``Flatten()`` or ``GlobalAvgPool()`` has an (n1, n2) kernel; one that keeps
positions returns neural-tangents' layout, (n1, n2, height, height, width, width) for 2-D images
and (n1, n2, width, width) for 1-D ones: the covariance of every pair of positions.
"""

from __future__ import annotations

import numpy as np


def as_images(x, name: str) -> np.ndarray:
    """``x`` as a float32/float64 array of shape (n, height, width, channels) (1-D images get
    height 1)."""
    if x is None:
        raise TypeError(f"{name}: expected images of shape (n, height, width, channels), got None")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{name}: could not be converted to an array of images: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"{name}: this network has convolutions, pooling or Flatten: pass images of shape "
                         f"(n, height, width, channels), or (n, width, channels) in 1-D; got shape {np.shape(x)}")
    if 0 in arr.shape:
        raise ValueError(f"{name}: must be non-empty, got shape {np.shape(x)}")
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def image_pair(x1, x2):
    """Both inputs as images of one shape and dtype, and whether they are 1-D."""
    one_d = np.ndim(x1) == 3
    a = as_images(x1, "x1")
    if x2 is None:
        return a, None, one_d
    b = as_images(x2, "x2")
    if b.shape[1:] != a.shape[1:]:
        raise ValueError(f"x2: images of shape {b.shape[1:]} do not match x1's {a.shape[1:]}")
    if a.dtype != b.dtype:
        common = np.result_type(a.dtype, b.dtype)
        a, b = a.astype(common, copy=False), b.astype(common, copy=False)
    return a, b, one_d


def kernel(core, x1, x2, want: dict, diagonal: bool):
    """(nngp, ntk) of the network ``core`` (a ``_core.Model``) on images, None where not wanted."""
    a, b, one_d = image_pair(x1, x2)
    model = core.with_image(*a.shape[1:])
    rows = lambda images: None if images is None else images.reshape(images.shape[0], -1)  # noqa: E731
    if diagonal:
        return model.kernel_diagonal(rows(a), **want)
    nngp, ntk = model.kernel(rows(a), rows(b), **want)
    positions = model.image_output()
    if positions is None:
        return nngp, ntk
    n1, n2 = a.shape[0], a.shape[0] if b is None else b.shape[0]
    h, w = positions

    def layout(k):
        if k is None:
            return None
        # (x1's h, w, x2's h, w) per pair -> neural-tangents' (h, h, w, w)
        k = k.reshape(n1, n2, h, w, h, w).transpose(0, 1, 2, 4, 3, 5)
        return np.ascontiguousarray(k[:, :, 0, 0] if one_d else k)

    return layout(nngp), layout(ntk)


class FlatImages:
    """A model of images seen as one flattened image per row, for the predictions' kernel calls:
    ``_kernel_float64`` restores the images' shape."""

    def __init__(self, model, shape):
        self.model, self.shape = model, tuple(shape)

    def _core_model(self):
        return self.model._core_model().with_image(*self.shape)

    def _kernel_float64(self, x1, x2=None, *, get=("nngp", "ntk")):
        images = lambda x: None if x is None else np.asarray(x, dtype=np.float64).reshape((-1,) + self.shape)  # noqa: E731
        return self.model.kernel(images(x1), images(x2), get=get)
