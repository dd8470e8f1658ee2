"""Balanced blocks of nearby inputs, for the block-diagonal part of a preconditioner.

A kernel's entries between inputs that lie close together are the largest ones a low-rank
(Nystrom) approximation misses, so the blocks gather neighbours: the inputs are split at the
median of their projection on the principal axis (found by a few power iterations), recursively,
until every block has at most ``size`` inputs. Splits are placed at multiples of ``size`` so that
blocks come out (nearly) all full. Costs O(n d log(n / size)).
"""

from __future__ import annotations

import numpy as np

# Power iterations per split: the axis need only be roughly principal for the blocks to be local.
POWER_STEPS = 8


def _principal_axis(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(x.shape[1])
    for _ in range(POWER_STEPS):
        v = x.T @ (x @ v)
        norm = np.linalg.norm(v)
        if not norm > 0:  # all inputs equal: any axis splits them
            return np.eye(x.shape[1])[0]
        v /= norm
    return v


def principal_blocks(x: np.ndarray, size: int, seed: int = 0) -> list[np.ndarray]:
    """Index arrays partitioning ``range(len(x))`` into blocks of at most ``size`` inputs, each a
    set of neighbours (by recursive principal-axis bisection of the flattened inputs)."""
    if size < 1:
        raise ValueError(f"size: must be >= 1, got {size}")
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    rng = np.random.default_rng(seed)
    blocks, stack = [], [np.arange(x.shape[0])]
    while stack:
        idx = stack.pop()
        if idx.size <= size:
            if idx.size:
                blocks.append(idx)
            continue
        centred = x[idx] - x[idx].mean(axis=0)
        projection = centred @ _principal_axis(centred, rng)
        pieces = -(-idx.size // size)
        left = (pieces // 2) * size
        order = np.argsort(projection, kind="stable")
        stack += [idx[order[left:]], idx[order[:left]]]
    return blocks
