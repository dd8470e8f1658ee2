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


def eigh(a, *, driver: str = "syevd") -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (the columns of ``v``) of a symmetric matrix.

    ``driver``: LAPACK's divide and conquer ``"syevd"`` (default, fastest), ``"syevr"``, or the
    QR iteration ``"syev"`` (what ndarray-linalg's ``eigh`` calls; several times slower).
    Computed in float64; raises ValueError for non-square, non-finite or non-symmetric input.
    """
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
    """Solve ``a x = b`` given ``c = cholesky(a)``; ``b`` of shape (n,) or (n, k)."""
    b = np.asarray(b)
    vector = b.ndim == 1
    x = _core.cho_solve(_matrix(c, "c"), _matrix(b[:, None] if vector else b, "b"))
    return x[:, 0] if vector else x


def matmul(a, b) -> np.ndarray:
    """``a @ b`` in float64 by the core's multithreaded GEMM (any strides; transposes are free).

    Used by ``ntkfast.predict`` for its large products, so that their speed does not depend on
    the BLAS NumPy happens to be built with."""
    return _core.matmul(_matrix(a, "a"), _matrix(b, "b"))
