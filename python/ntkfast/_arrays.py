"""Conversion of user inputs to the arrays the core takes (float32 or float64, 2-D)."""

from __future__ import annotations

import numpy as np


def as_inputs(x, name: str) -> np.ndarray:
    """``x`` as a 2-D float32/float64 array (other numeric dtypes and lists are converted).

    Memory order is left as it is: the core reads any strides.
    """
    if x is None:
        raise TypeError(f"{name}: expected an array of shape (n_samples, n_features), got None")
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: must be non-empty, got shape {arr.shape}")
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def as_input_pair(x1, x2, names=("x1", "x2")) -> tuple[np.ndarray, np.ndarray | None]:
    """Both inputs, converted to one common dtype (float32 only if both are float32)."""
    a = as_inputs(x1, names[0])
    if x2 is None:
        return a, None
    b = as_inputs(x2, names[1])
    if a.dtype != b.dtype:
        common = np.result_type(a.dtype, b.dtype)
        a, b = a.astype(common, copy=False), b.astype(common, copy=False)
    return a, b
