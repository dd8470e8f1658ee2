"""f(A) b by the Lanczos method (Lanczos 1950; for matrix functions see Saad 1992, Higham 2008,
ch. 13): m steps build an orthonormal basis Q_m of the Krylov space of A and b and the
tridiagonal T_m = Q_m^T A Q_m, and f(A) b ~ ||b|| Q_m f(T_m) e_1. Gradient flow's solution at time
t is such a function of the kernel (f(lambda) = (1 - exp(-lambda t / N)) / lambda on test points),
so predictions at finite t need no eigendecomposition of the n x n kernel.

The basis is kept and fully reorthogonalised (twice, "twice is enough"): memory n m per column,
in exchange for an approximation that does not lose accuracy to rounding. A column stops when
its coefficients f(T_m) e_1 change by less than ``tol`` relative over a step, for every time."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .report import Convergence, Progress


def _coefficients(alpha: list, beta: list, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """f(T_m) e_1 for the tridiagonal T_m (diagonal alpha, off-diagonal beta): (times, m)."""
    m = len(alpha)
    t = np.diag(alpha)
    if m > 1:
        off = np.asarray(beta[: m - 1])
        t += np.diag(off, 1) + np.diag(off, -1)
    theta, s = np.linalg.eigh(t)
    return (fn(theta) * s[0][None, :]) @ s.T  # rows: times


def lanczos_function(matmat: Callable[[np.ndarray], np.ndarray], b: np.ndarray,
                     fn: Callable[[np.ndarray], np.ndarray], *, tol: float = 1e-6, maxiter: int = 300,
                     label: str = "lanczos", progress: bool = False, hint: str = "",
                     memory_limit: float = np.inf) -> tuple[np.ndarray, Convergence]:
    """f(A) b for every column of b (n, k): shape (times, n, k), ``fn(eigenvalues)`` returning
    f at each time, shape (times, len(eigenvalues)). A symmetric; ``memory_limit`` in bytes bounds
    the kept bases (n x steps x k), checked before each step."""
    b = np.asarray(b, dtype=np.float64)
    n, k = b.shape
    norms = np.linalg.norm(b, axis=0)
    active = norms > 0
    bases = [[(b[:, j] / norms[j])] if active[j] else [] for j in range(k)]
    alphas: list = [[] for _ in range(k)]
    betas: list = [[] for _ in range(k)]
    coefs: list = [None] * k
    monitor = Progress(label, progress)
    change = np.zeros(k)
    residual, iterations, products = (0.0 if not active.any() else np.inf), 0, 0
    while active.any() and iterations < maxiter:
        if 8.0 * n * (iterations + 2) * k > memory_limit:
            break
        cols = np.flatnonzero(active)
        q = np.stack([bases[j][-1] for j in cols], axis=1)
        w = matmat(q)
        products += 1
        iterations += 1
        for c, j in enumerate(cols):
            basis = np.stack(bases[j], axis=1)
            v = w[:, c]
            alphas[j].append(float(basis[:, -1] @ v))
            for _ in range(2):  # full reorthogonalisation, twice
                v = v - basis @ (basis.T @ v)
            beta = float(np.linalg.norm(v))
            betas[j].append(beta)
            new = _coefficients(alphas[j], betas[j], fn)
            old = coefs[j]
            padded = np.zeros_like(new)
            if old is not None:
                padded[:, : old.shape[1]] = old
            size = np.max(np.linalg.norm(new, axis=1))
            change[j] = np.max(np.linalg.norm(new - padded, axis=1)) / size if size > 0 else 0.0
            coefs[j] = new
            exhausted = beta <= 1e-12 * max(abs(a) for a in alphas[j])  # an invariant subspace: exact
            if exhausted or change[j] <= tol:
                active[j] = False
                change[j] = 0.0 if exhausted else change[j]
            else:
                bases[j].append(v / beta)
        residual = float(np.max(change))
        monitor.step(iterations, residual)
    times = None
    out = None
    for j in range(k):
        if coefs[j] is None:
            continue
        basis = np.stack(bases[j][: coefs[j].shape[1]], axis=1)
        value = norms[j] * (coefs[j] @ basis.T)  # (times, n)
        if out is None:
            times = value.shape[0]
            out = np.zeros((times, n, k))
        out[:, :, j] = value
    if out is None:
        times = fn(np.zeros(1)).shape[0]
        out = np.zeros((times, n, k))
    result = monitor.finish("lanczos", iterations, residual, tol, products, hint)
    return out, result
