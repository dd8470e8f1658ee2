"""One layer's share of the empirical NTK (Jacot et al. 2018) of a finite network, without the
network's Jacobian.

A Dense or Conv layer computes, at each output position p of input i,
z_ip = w_scale h_ip W + b_scale b, with h_ip its input features there (a Conv's patch). If
Delta_kip are the cotangents of z_ip backpropagated from output k, the layer's parameters add
to Theta_kl(x1_i, x2_j)

    sum_{p, q} (w_scale^2 h1_ip . h2_jq + b_scale^2) (Delta1_kip . Delta2_ljq).

Two ways to sum, equal up to rounding; ``layer_ntk`` takes the cheaper:

* ``"pairs"``: Gram matrices over (input, position) pairs of the inputs and of the cotangents,
  multiplied elementwise and summed over positions: n1 n2 P^2 (F + k C) operations, n1 n2 P^2
  floats (times k^2 for the full per-output kernel) — the only way for Dense on vectors (P = 1);
* ``"jacobians"``: each input's parameter gradient J_ki = sum_p h_ip (x) Delta_kip (F x C) and
  Theta = J1 J2^T: (n1 + n2) k P F C + n1 n2 k F C operations, (n1 + n2) k F C floats — cheaper
  when positions are many and channels few (a first convolution on large images).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def strategy(n1: int, n2: int, k: int, positions: int, fan_in: int, out_dim: int, trace: bool) -> str:
    """The cheaper way to sum, by operation count."""
    if positions == 1:
        return "pairs"
    pairs = n1 * n2 * positions**2 * (fan_in + k * out_dim) * (1 if trace else k)
    jacobians = (n1 + n2) * k * positions * fan_in * out_dim + n1 * n2 * k * fan_in * out_dim * (1 if trace else k)
    return "pairs" if pairs <= jacobians else "jacobians"


def transient_bytes(how: str, n1: int, n2: int, k: int, positions: int, fan_in: int, out_dim: int,
                    trace: bool) -> float:
    """The bytes ``layer_ntk`` allocates beyond its inputs and output, for ``how``."""
    if how == "pairs":
        return 8.0 * n1 * n2 * positions**2 * (2 + (0 if trace else 2 * k * k))
    return 8.0 * (n1 + n2) * k * fan_in * out_dim * 2


def layer_ntk(h1: np.ndarray, g1: np.ndarray, h2: Optional[np.ndarray], g2: Optional[np.ndarray], w_scale: float,
              b_scale: Optional[float], trace: bool, how: Optional[str] = None,
              check: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """The layer's share: (n1, n2) summed over outputs k = l if ``trace``, else (n1, n2, k, k).

    h: (n, P, F) inputs per position; g: (k, n, P, C) cotangents; h2 = g2 = None for x2 = x1;
    ``b_scale`` None: no bias. ``how``: "pairs" or "jacobians" (default: the cheaper, or the
    other if the cheaper fails ``check``); ``check(nbytes)`` is called before allocating and may
    raise MemoryError.
    """
    k, n1, positions, out_dim = g1.shape
    same = h2 is None
    h2, g2 = (h1, g1) if same else (h2, g2)
    n2, fan_in = h2.shape[0], h1.shape[2]
    if how is None:  # the cheaper way, or the other if the cheaper does not fit
        how = strategy(n1, n2, k, positions, fan_in, out_dim, trace)
        other = "jacobians" if how == "pairs" else "pairs"
        if check is not None and positions > 1:
            try:
                check(transient_bytes(how, n1, n2, k, positions, fan_in, out_dim, trace))
            except MemoryError:
                how = other
    if check is not None:
        check(transient_bytes(how, n1, n2, k, positions, fan_in, out_dim, trace))
    if how == "pairs":
        return _by_pairs(h1, g1, h2, g2, w_scale, b_scale, trace)
    return _by_jacobians(h1, g1, h2, g2, same, w_scale, b_scale, trace)


def _by_pairs(h1, g1, h2, g2, w_scale, b_scale, trace):
    k, n1, positions, out_dim = g1.shape
    n2 = h2.shape[0]
    inputs = h1.reshape(n1 * positions, -1) @ h2.reshape(n2 * positions, -1).T
    inputs *= w_scale**2
    if b_scale is not None:
        inputs += b_scale**2
    if trace:  # sum_k Delta1_k . Delta2_k: one product of the cotangents stacked over outputs
        cot = (g1.transpose(1, 2, 0, 3).reshape(n1 * positions, k * out_dim)
               @ g2.transpose(1, 2, 0, 3).reshape(n2 * positions, k * out_dim).T)
        cot *= inputs
        return cot.reshape(n1, positions, n2, positions).sum(axis=(1, 3))
    cot = g1.reshape(k * n1 * positions, out_dim) @ g2.reshape(k * n2 * positions, out_dim).T
    cot = cot.reshape(k, n1, positions, k, n2, positions)
    cot *= inputs.reshape(1, n1, positions, 1, n2, positions)
    return cot.sum(axis=(2, 5)).transpose(1, 3, 0, 2)


def _by_jacobians(h1, g1, h2, g2, same, w_scale, b_scale, trace):
    k, n1 = g1.shape[:2]
    n2 = h2.shape[0]

    def gradients(h, g):  # (n, k, F * C + C): the weights' then the bias's gradient per input and output
        jw = (np.swapaxes(h, 1, 2)[None] @ g) * w_scale  # (k, n, F, C)
        parts = [jw.reshape(k, h.shape[0], -1)]
        if b_scale is not None:
            parts.append(g.sum(axis=2) * b_scale)
        return np.concatenate(parts, axis=2).transpose(1, 0, 2)

    j1 = gradients(h1, g1)
    j2 = j1 if same else gradients(h2, g2)
    if trace:
        return j1.reshape(n1, -1) @ j2.reshape(n2, -1).T
    full = j1.reshape(n1 * k, -1) @ j2.reshape(n2 * k, -1).T
    return full.reshape(n1, k, n2, k).transpose(0, 2, 1, 3)
