"""Symmetric linear algebra in the Rust core (LAPACK through the system OpenBLAS, GIL released)."""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["eigh", "eigvalsh", "cholesky", "cho_solve", "matmul"]


def _matrix(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: must be a 2-D matrix, got shape {arr.shape}")
    return np.asarray(arr, dtype=np.float64)


DRIVERS = ("syevd", "syevr", "syev")


def eigh(a, *, driver: str = "syevd") -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (the columns of ``v``) of a symmetric matrix.

    ``driver``: LAPACK's divide and conquer ``"syevd"`` (default, fastest), ``"syevr"``, or the
    QR iteration ``"syev"`` (what ndarray-linalg's ``eigh`` calls; several times slower).
    Computed in float64; raises ValueError for non-square, non-finite or non-symmetric input.
    """
    if not isinstance(driver, str):
        raise TypeError(f"driver: must be one of {', '.join(map(repr, DRIVERS))}, got {driver!r}")
    if driver not in DRIVERS:
        raise ValueError(f"driver: must be one of {', '.join(map(repr, DRIVERS))}, got {driver!r}")
    return _core.eigh(_matrix(a, "a"), driver)


def eigvalsh(a) -> np.ndarray:
    """Eigenvalues (ascending) of a symmetric matrix, without eigenvectors (faster)."""
    return _core.eigvalsh(_matrix(a, "a"))


def cholesky(a) -> np.ndarray:
    """Lower Cholesky factor ``L`` with ``a = L @ L.T``.

    Raises ValueError when ``a`` is not positive definite (a singular kernel: add diag_reg).
    """
    return _core.cholesky(_matrix(a, "a"))


def cho_solve(c, b) -> np.ndarray:
    """Solve ``a x = b`` given ``c = cholesky(a)``; ``b`` of shape (n,) or (n, k).

    ``c`` must be what ``cholesky`` returns: square, finite, lower-triangular (an upper factor, or
    anything above the diagonal, would silently give a wrong answer) with a positive diagonal.
    """
    factor = _matrix(c, "c")
    _check_factor(factor)
    return _cho_solve(factor, b)


def _cho_solve(factor: np.ndarray, b) -> np.ndarray:
    """``cho_solve`` for a factor known to come from ``cholesky`` (ntkfast.predict's own)."""
    b = np.asarray(b)
    vector = b.ndim == 1
    x = _core.cho_solve(factor, _matrix(b[:, None] if vector else b, "b"))
    return x[:, 0] if vector else x


def _check_factor(factor: np.ndarray, block: int = 256) -> None:
    """ValueError naming ``c`` unless ``factor`` is square, finite, lower-triangular with a positive
    diagonal. Reads the upper triangle in row blocks: no n x n temporary."""
    n = factor.shape[0]
    if factor.ndim != 2 or factor.shape[1] != n:
        raise ValueError(f"c: must be a square lower-triangular Cholesky factor, got shape {factor.shape}")
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = factor[start:stop]
        if not np.isfinite(rows).all():
            raise ValueError("c: contains NaN or infinity (not a Cholesky factor)")
        # the strict upper triangle of these rows: the diagonal block's, and everything right of it
        if np.count_nonzero(np.triu(rows[:, start:stop], 1)) or np.count_nonzero(rows[:, stop:]):
            i, j = np.argwhere(np.triu(rows, start + 1))[0]
            raise ValueError(f"c: must be lower-triangular, as cholesky(a) returns (scipy's cho_factor may return "
                             f"an upper factor); c[{start + i}, {j}] = {rows[i, j]:.3g} is above the diagonal")
    diagonal = np.diagonal(factor)
    if not np.all(diagonal > 0):
        i = int(np.argmax(~(diagonal > 0)))
        raise ValueError(f"c: a Cholesky factor has a positive diagonal; c[{i}, {i}] = {diagonal[i]:.3g}")


def matmul(a, b) -> np.ndarray:
    """``a @ b`` in float64 by the core's multithreaded GEMM (any strides; transposes are free).

    Used by ``ntkfast.predict`` for its large products, so that their speed does not depend on
    the BLAS NumPy happens to be built with."""
    return _core.matmul(_matrix(a, "a"), _matrix(b, "b"))
