"""Conversion of user inputs to the arrays the core takes (float32 or float64, 2-D)."""

from __future__ import annotations

import numpy as np


def as_inputs(x, name: str) -> np.ndarray:
    """``x`` as a 2-D float32/float64 array (other numeric dtypes and lists are converted).

    Memory order is left as it is: the core reads any strides.
    """
    if x is None:
        raise TypeError(f"{name}: expected an array of shape (n_samples, n_features), got None")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists, a failing __array__, ...
        raise type(exc)(f"{name}: could not be converted to a 2-D array of numbers (n_samples, n_features): "
                        f"{exc}") from None
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


def renamed_error(exc: BaseException, names: dict) -> BaseException:
    """``exc`` with the argument names in its message replaced by the caller's (``x1`` -> ``x_test``,
    ...), as an exception of the same type, or ``exc`` itself if there is nothing to rename.

    A ValueError or TypeError is renamed wherever it names one of ``names`` (as a whole word); any
    other type (a MemoryError of the core: "x1: this kernel of ... entries needs ...") only when
    its message starts with them ("x1: ", "x2: ", "x1, x2: "), i.e. when it is about those
    arguments. An exception whose constructor does not take one message is left as it is."""
    import re

    text = str(exc)
    names = {old: new for old, new in names.items() if old != new}
    if not names:
        return exc
    words = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
    if type(exc) not in (ValueError, TypeError) and not re.match(rf"(?:(?:{words}), )*(?:{words}): ", text):
        return exc
    message = re.sub(rf"\b({words})\b", lambda m: names[m.group(1)], text)
    if message == text:
        return exc
    try:
        return type(exc)(message)
    except Exception:  # a constructor with other arguments
        return exc


def as_rng(seed, name: str = "seed") -> np.random.Generator:
    """NumPy's Generator for ``seed``: a non-negative integer, a sequence of them, None (fresh
    entropy), a ``SeedSequence``, a ``BitGenerator`` or a ``Generator`` (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(as_seed_sequence(seed, name) if not isinstance(seed, np.random.BitGenerator)
                                 else seed)


def as_seed_sequence(seed, name: str = "seed") -> np.random.SeedSequence:
    """``seed`` (a non-negative integer, a sequence of them, None or a ``SeedSequence``) as a
    ``SeedSequence``, with errors that name the argument (NumPy's name none)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    expected = "a non-negative integer, a sequence of them, None or a numpy SeedSequence/Generator"
    if isinstance(seed, (bool, np.bool_)) or isinstance(seed, (float, str, bytes)):
        raise TypeError(f"{name}: must be {expected}, got {seed!r}")
    try:
        return np.random.SeedSequence(seed)
    except (TypeError, ValueError) as exc:
        kind = ValueError if isinstance(exc, ValueError) else TypeError
        raise kind(f"{name}: must be {expected}, got {seed!r}") from None
