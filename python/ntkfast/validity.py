"""When the NTK describes training: the validity radius of the linearisation (Lee et al. 2019;
Chizat, Oyallon & Bach 2018, "On lazy training").

The linearised model g(theta) = f(theta0) + J0 (theta - theta0) stays within beta ||dtheta||^2 / 2
of the network while the Jacobian is beta-Lipschitz, and the minimum-norm parameter change that
fits the targets with g, dtheta = J0^+ (y - f(theta0)), has ||dtheta|| <= ||r|| / sigma with
sigma = sigma_min(J0) and r = y - f(theta0). So the network's own error at that change is at most
about beta ||r||^2 / (2 sigma^2): small beta / sigma^2 is the kernel regime. Scaling the output by
alpha scales J, sigma and beta by alpha, so beta / sigma^2 falls like 1 / alpha.

``estimate`` measures these for one network and data set: sigma and ||dtheta|| from the
minimum-norm solution, beta as ||J(theta0 + dtheta) - J(theta0)||_2 / ||dtheta|| (the Jacobian's
change over the step, its spectral norm by power iteration on Jacobian-vector and
vector-Jacobian products: no Jacobian is stored), and the measured gap ||f(theta0 + dtheta) - y||
(g(theta0 + dtheta) = y exactly) next to the predicted beta ||dtheta||^2 / 2.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass
class Validity:
    """How far the linearisation at theta0 can be trusted on (x, y); norms are Euclidean over all
    outputs and parameters."""

    sigma_min: float  # sigma_min(J0): the square root of the least eigenvalue of the empirical NTK
    delta_norm: float  # ||dtheta|| of the minimum-norm solution
    bound: float  # ||y - f(theta0)|| / sigma_min, which ||dtheta|| never exceeds
    beta: float  # ||J(theta0 + dtheta) - J(theta0)||_2 / ||dtheta||
    beta_over_sigma2: float  # beta / sigma_min^2: falls like 1 / output_scale
    predicted_gap: float  # beta ||dtheta||^2 / 2
    measured_gap: float  # ||f(theta0 + dtheta) - y||: the network's error where its linearisation fits


def estimate(solution, jvp0: Callable, vjp0: Callable, jvp1: Callable, vjp1: Callable, f1: np.ndarray,
             y: np.ndarray, size: int, iterations: int, seed) -> Validity:
    """``solution``: the ``MinNormSolution`` at theta0; ``jvp*``/``vjp*``: J v (a flat parameter
    vector to outputs (n, k)) and J^T u (outputs to a flat vector) at theta0 and theta0 + dtheta;
    ``f1``: the outputs at theta0 + dtheta; ``size``: the number of parameters."""
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations: must be a positive integer, got {iterations!r}")
    v = np.random.default_rng(seed).standard_normal(size)
    v /= np.linalg.norm(v)
    norm = 0.0
    for _ in range(int(iterations)):  # power iteration on D^T D, D = J(theta0 + dtheta) - J(theta0)
        d = jvp1(v) - jvp0(v)
        w = vjp1(d) - vjp0(d)
        norm = float(np.sqrt(max(float(v @ w), 0.0)))
        length = np.linalg.norm(w)
        if length == 0:
            break
        v = w / length
    delta = solution.norm
    beta = norm / delta if delta > 0 else 0.0
    sigma = solution.sigma_min
    return Validity(sigma, delta, solution.bound, beta, beta / sigma**2 if sigma > 0 else np.inf,
                    0.5 * beta * delta**2, float(np.linalg.norm(f1 - y)))


def flatten(pairs) -> np.ndarray:
    """One vector of (W, b) pairs' entries, in order."""
    return np.concatenate([a.reshape(-1) for pair in pairs for a in pair if a is not None])


def unflatten(vector: np.ndarray, like) -> list:
    """(W, b) pairs shaped as ``like``'s, from ``flatten``'s vector."""
    out, start = [], 0
    for pair in like:
        parts = []
        for a in pair:
            if a is None:
                parts.append(None)
                continue
            parts.append(vector[start:start + a.size].reshape(a.shape))
            start += a.size
        out.append(tuple(parts))
    return out
