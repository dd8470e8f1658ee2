"""Preconditioned conjugate gradients for a symmetric positive-definite operator and several
right-hand sides: one CG per column (Hestenes and Stiefel 1952), all columns sharing each
operator product, since a product's cost is computing the kernel entries, not the columns.

A column stops changing once its relative residual ||b - A x|| / ||b|| is below ``tol``; the
solve stops when every column has."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .report import Convergence, Progress


def conjugate_gradients(matmat: Callable[[np.ndarray], np.ndarray], b: np.ndarray, *,
                        precondition: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                        tol: float = 1e-6, maxiter: int = 1000, label: str = "cg",
                        progress: bool = False, hint: str = "") -> tuple[np.ndarray, Convergence]:
    """x with A x = b for every column of b (n, k), A = ``matmat`` symmetric positive definite,
    ``precondition(r)`` an approximation of A^-1 r (symmetric positive definite)."""
    b = np.asarray(b, dtype=np.float64)
    one = b.ndim == 1
    b = b.reshape(b.shape[0], -1)
    x = np.zeros_like(b)
    norms = np.linalg.norm(b, axis=0)
    active = norms > 0  # a zero right-hand side has the solution 0
    scale = np.where(active, norms, 1.0)
    r = b.copy()
    z = precondition(r) if precondition is not None else r
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    monitor = Progress(label, progress)
    residual = float(np.max(np.linalg.norm(r, axis=0) / scale)) if active.any() else 0.0
    iterations = products = 0
    while residual > tol and iterations < maxiter:
        q = matmat(p)
        products += 1
        iterations += 1
        curvature = np.einsum("ij,ij->j", p, q)
        if np.any(active & ~(curvature > 0)):
            raise np.linalg.LinAlgError(
                f"{label}: the system is not positive definite (p^T A p = {curvature[active].min():.3e} at "
                f"iteration {iterations}): the kernel is singular to working precision; pass diag_reg > 0")
        alpha = np.where(active, rz / np.where(active, curvature, 1.0), 0.0)
        x += alpha * p
        r -= alpha * q
        column = np.linalg.norm(r, axis=0) / scale
        active &= column > tol
        residual = float(np.max(column))
        monitor.step(iterations, residual)
        if not active.any():
            break
        z = precondition(r) if precondition is not None else r
        rz_new = np.einsum("ij,ij->j", r, z)
        beta = np.where(active, rz_new / np.where(rz != 0, rz, 1.0), 0.0)
        p = z + beta * p
        rz = rz_new
    result = monitor.finish("cg", iterations, residual, tol, products, hint)
    return (x[:, 0] if one else x), result
