"""A plain-NumPy reference of the infinite-width MLP kernels, written independently of the core.

The dual activations come from their textbook derivations rather than from the core's formulas:
ABReLU from the order-1 arc-cosine kernel of Cho & Saul and Gaussian orthant probabilities, Erf
from Williams' arcsine kernel and det(I + 2 b^2 Sigma) for the derivative, Sign from the
arcsine law, GELU by 2-D Gauss-Hermite quadrature of its definition. The layer recursion is the
straightforward full-matrix one (no tiling, no fusion).
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import erf, ndtr


def _theta(q12, q11, q22):
    """Angle between the pre-activations; pi/2 for a zero variance (neural-tangents' convention)."""
    r = np.sqrt(q11 * q22)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.clip(q12 / r, -1.0, 1.0)
    theta = np.arccos(c)
    # cos = +-1 up to rounding: exactly (anti)parallel
    theta = np.where(np.abs(c - 1) <= 1e-15, 0.0, theta)
    theta = np.where(np.abs(c + 1) <= 1e-15, np.pi, theta)
    return np.where(r > 0, theta, np.pi / 2)


def dual_abrelu(a, b):
    def dual(q12, q11, q22):
        theta = _theta(q12, q11, q22)
        r = np.sqrt(q11 * q22)
        same_sign = r / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))  # E[relu(u) relu(v)]
        opposite = r / (2 * np.pi) * (np.sin(theta) - theta * np.cos(theta))  # E[relu(u) relu(-v)]
        nngp = (a * a + b * b) * same_sign - 2 * a * b * opposite
        # P(u>0, v>0) = P(u<0, v<0) = (pi - theta)/(2 pi); P(u>0, v<0) = theta/(2 pi)
        dot = (a * a + b * b) * (np.pi - theta) / (2 * np.pi) + 2 * a * b * theta / (2 * np.pi)
        return nngp, dot

    return dual


def dual_erf(a, b, c):
    def dual(q12, q11, q22):
        p11, p22 = 1 + 2 * b * b * q11, 1 + 2 * b * b * q22
        nngp = a * a * 2 / np.pi * np.arcsin(2 * b * b * q12 / np.sqrt(p11 * p22)) + c * c
        dot = 4 * a * a * b * b / np.pi / np.sqrt(p11 * p22 - 4 * b**4 * q12**2)
        return nngp, dot

    return dual


def dual_sign(q12, q11, q22):
    theta = _theta(q12, q11, q22)
    return 1 - 2 * theta / np.pi, np.zeros_like(theta)


def dual_identity(q12, q11, q22):
    return q12 + 0 * (q11 * q22), np.ones_like(q12 * q11 * q22)


def quadrature_dual(phi, dphi, degree=96):
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] by a tensor Gauss-Hermite rule."""
    nodes, weights = hermegauss(degree)
    weights = weights / np.sqrt(2 * np.pi)

    def dual(q12, q11, q22):
        q12, q11, q22 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (q12, q11, q22)))
        s1, s2 = np.sqrt(q11), np.sqrt(q22)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where(s1 * s2 > 0, q12 / (s1 * s2), 0.0)
        rho = np.clip(rho, -1, 1)
        c = np.sqrt(1 - rho**2)
        u = s1[..., None, None] * nodes[:, None]
        v = s2[..., None, None] * (rho[..., None, None] * nodes[:, None] + c[..., None, None] * nodes[None, :])
        w = weights[:, None] * weights[None, :]
        return (w * phi(u) * phi(v)).sum(axis=(-2, -1)), (w * dphi(u) * dphi(v)).sum(axis=(-2, -1))

    return dual


dual_gelu = quadrature_dual(lambda x: x * ndtr(x), lambda x: ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi))


def dual_rectified(n):
    """Cho & Saul's arc-cosine kernels J_0, J_1, J_2 (their paper's closed forms), r^n J_n / (2 pi);
    the derivative kernel is n^2 r^(n-1) J_(n-1) / (2 pi)."""
    forms = [lambda t: np.pi - t,
             lambda t: np.sin(t) + (np.pi - t) * np.cos(t),
             lambda t: 3 * np.sin(t) * np.cos(t) + (np.pi - t) * (1 + 2 * np.cos(t) ** 2)]

    def dual(q12, q11, q22):
        theta = _theta(q12, q11, q22)
        r = np.sqrt(q11 * q22)
        nngp = r**n * forms[n](theta) / (2 * np.pi)
        dot = n * n * r ** (n - 1) * forms[n - 1](theta) / (2 * np.pi) if n > 0 else np.zeros_like(theta)
        return nngp, dot

    return dual


def erf_fn(a, b, c):
    return lambda x: a * erf(b * x) + c


def reference_kernels(x1, x2, depth, dual, W_std=1.0, b_std=None, parameterization="ntk", width=None,
                      readout_W_std=None, readout_b_std="same"):
    """(nngp, ntk) of the MLP by the full-matrix recursion, in float64."""
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = x1 if x2 is None else np.asarray(x2, dtype=np.float64)
    readout_W_std = W_std if readout_W_std is None else readout_W_std
    readout_b_std = b_std if readout_b_std == "same" else readout_b_std
    d = x1.shape[1]
    sig_hat = x1 @ x2.T / d
    diag1, diag2 = (x1 * x1).sum(1) / d, (x2 * x2).sum(1) / d
    theta_hat = np.zeros_like(sig_hat)
    for layer in range(depth + 1):
        w, bias = (W_std, b_std) if layer < depth else (readout_W_std, readout_b_std)
        b2 = 0.0 if bias is None else bias**2
        if parameterization == "ntk":
            theta = w**2 * sig_hat + b2 + w**2 * theta_hat
        else:
            fan_in = d if layer == 0 else width
            theta = fan_in * sig_hat + w**2 * theta_hat + (0.0 if bias is None else 1.0)
        sig = w**2 * sig_hat + b2
        v1, v2 = w**2 * diag1 + b2, w**2 * diag2 + b2
        if layer == depth:
            return sig, theta
        sig_hat, dot = dual(sig, v1[:, None], v2[None, :])
        theta_hat = theta * dot
        diag1, diag2 = dual(v1, v1, v1)[0], dual(v2, v2, v2)[0]
