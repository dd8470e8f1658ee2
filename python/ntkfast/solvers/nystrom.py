"""Nystrom approximations of a kernel matrix from a subset of its columns (Williams and Seeger
2001), as a preconditioner for conjugate gradients on the exact system and as the approximate
kernel regression of Falkon (Rudi, Carratino, Rosasco 2017).

- ``rpcholesky``: randomly pivoted Cholesky (Chen, Epperly, Tropp, Webber 2022), in blocks of
  pivots: pivots drawn with probability proportional to the diagonal of what the approximation
  still misses, so it adapts to the kernel's spectrum. Yields the n x M factor F, K ~ F F^T.
- ``ridge_leverage_scores``: approximate ridge leverage scores from a uniform sketch (Alaoui and
  Mahoney 2015; Musco and Musco 2017), computed in row blocks: no n x M matrix is kept.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import linalg

# Rows per block when a kernel against the centres is computed in pieces (keeps K(x_block, C)
# at about 64 MB for 2000 centres).
ROW_BLOCK = 4096


def _columns(kernel: Callable, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """K(x, x[idx]) (n, len(idx)) in float64."""
    return np.asarray(kernel(x, x[idx]), dtype=np.float64)


def rpcholesky(kernel: Callable, x: np.ndarray, diagonal: np.ndarray, rank: int, rng: np.random.Generator,
               block: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(F, pivots): F (n, r) with K ~ F F^T, r <= ``rank`` (fewer if K is numerically of lower
    rank), by block randomly pivoted Cholesky. ``kernel(a, b)`` returns K(a, b)."""
    n = x.shape[0]
    rank = min(rank, n)
    factor = np.zeros((n, rank))
    residual = np.maximum(np.asarray(diagonal, dtype=np.float64).copy(), 0.0)
    # a pivot whose residual is rounding error of the largest diagonal adds nothing: K is
    # numerically of lower rank
    floor = 1e-11 * (residual.max() if n else 0.0)
    pivots: list = []
    r = 0
    while r < rank:
        residual[residual <= floor] = 0.0
        if not residual.any():
            break
        b = min(block, rank - r)
        candidates = np.flatnonzero(residual > 0)
        take = min(b, candidates.size)
        drawn = rng.choice(candidates, size=take, replace=False, p=residual[candidates] / residual[candidates].sum())
        g = _columns(kernel, x, drawn) - factor[:, :r] @ factor[drawn, :r].T  # (n, take): the residual's columns
        # pivoted Cholesky of the drawn block's own take x take residual, dropping pivots the
        # earlier ones explain; then the factor's new columns in one triangular solve,
        # g[:, accepted] L^-T (the same numbers as adding the columns one at a time)
        block_residual = g[drawn].copy()
        lower = np.zeros((take, take))
        accepted = []
        for j in range(take):
            d = block_residual[j, j]
            if not d > floor:
                continue
            col = block_residual[:, j] / np.sqrt(d)
            block_residual -= np.outer(col, col)
            lower[:, len(accepted)] = col
            accepted.append(j)
            if r + len(accepted) == rank:
                break
        if accepted:
            lower = lower[np.asarray(accepted)][:, : len(accepted)]
            new = np.linalg.solve(lower, g[:, accepted].T).T
            factor[:, r:r + len(accepted)] = new
            residual = np.maximum(residual - np.einsum("ij,ij->i", new, new), 0.0)
            residual[drawn[accepted]] = 0.0
            r += len(accepted)
            pivots.extend(drawn[accepted].tolist())
        else:
            residual[drawn] = 0.0
    return factor[:, :r], np.asarray(pivots, dtype=np.int64)


def ridge_leverage_scores(kernel: Callable, x: np.ndarray, diagonal: np.ndarray, lam: float, sketch: int,
                          rng: np.random.Generator) -> np.ndarray:
    """tau_i ~ [K (K + lam I)^-1]_ii from a uniform sketch S of ``sketch`` columns:
    (K_ii - K_iS (K_SS + lam I)^-1 K_Si) / lam, computed in blocks of rows (never n x |S|)."""
    n = x.shape[0]
    s = rng.choice(n, size=min(sketch, n), replace=False)
    k_ss = _columns(kernel, x[s], np.arange(s.size))
    factor = linalg.cholesky(k_ss + lam * np.eye(s.size))
    inverse_t = np.linalg.inv(factor).T  # (K_SS + lam)^-1 = L^-T L^-1
    scores = np.empty(n)
    for start in range(0, n, ROW_BLOCK):
        rows = slice(start, min(start + ROW_BLOCK, n))
        k_bs = np.asarray(kernel(x[rows], x[s]), dtype=np.float64)
        projected = k_bs @ inverse_t
        scores[rows] = (diagonal[rows] - np.einsum("ij,ij->i", projected, projected)) / lam
    return np.maximum(scores, 1e-12)


def select_centers(rule: str, kernel: Callable, x: np.ndarray, diagonal: np.ndarray, count: int, lam: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count`` distinct centres: "uniform" or "leverage" (ridge leverage scores)."""
    n = x.shape[0]
    count = min(count, n)
    if rule == "uniform" or count == n:
        return np.sort(rng.choice(n, size=count, replace=False))
    scores = ridge_leverage_scores(kernel, x, diagonal, lam, count, rng)
    return np.sort(rng.choice(n, size=count, replace=False, p=scores / scores.sum()))
