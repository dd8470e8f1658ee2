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


def weighted_quadrature_dual(g, dg, a, degree=48):
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for phi(x) = exp(-a x^2) g(x), phi'(x) = exp(-a x^2) dg(x)
    (Gabor, Gaussian): the factor exp(-a (u^2 + v^2)) times the density of (u, v) ~ N(0, S) is
    det(I + 2 a S)^(-1/2) times the density of N(0, S (I + 2 a S)^-1), so a tensor Gauss-Hermite rule
    for that narrower Gaussian integrates the slowly varying g(u) g(v). (A plain rule for N(0, S)
    needs hundreds of points when exp(-a x^2) is narrow against S.)"""
    plain = quadrature_dual(g, dg, degree)

    def dual(q12, q11, q22):
        q12, q11, q22 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (q12, q11, q22)))
        det = (1 + 2 * a * q11) * (1 + 2 * a * q22) - 4 * a * a * q12 * q12
        s11 = (q11 * (1 + 2 * a * q22) - 2 * a * q12 * q12) / det
        s22 = (q22 * (1 + 2 * a * q11) - 2 * a * q12 * q12) / det
        s12 = q12 / det
        nngp, dot = plain(s12, np.maximum(s11, 0.0), np.maximum(s22, 0.0))
        return nngp / np.sqrt(det), dot / np.sqrt(det)

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


def arccos_terms(n):
    """Cho & Saul's J_n(theta) = (-1)^n sin^(2n+1) (1/sin d/dtheta)^n ((pi - theta) / sin), expanded by
    differentiating term by term: {(a, b, e): coefficient} of cos^a sin^b (pi - theta)^e (b >= 0
    after the final factor, so the sum is regular at theta = 0 and pi). Checked when written: J_n(0)
    = pi (2n - 1)!!, dJ_n/d(cos theta) = n^2 J_(n-1) (Price's theorem), J_1 and J_2 as above, and
    float64 evaluation within 7e-16 of J_n(0) of a 40-digit evaluation, for n <= 10."""
    terms = {(0, -1, 1): 1.0}
    for _ in range(n):
        new = {}
        for (a, b, e), c in terms.items():
            # d/dtheta of cos^a sin^b p^e, then / sin
            for key, v in (((a - 1, b, e), -a * c), ((a + 1, b - 2, e), b * c), ((a, b - 1, e - 1), -e * c)):
                if v != 0:
                    new[key] = new.get(key, 0.0) + v
        terms = new
    return {(a, b + 2 * n + 1, e): (-1) ** n * c for (a, b, e), c in terms.items()}


def dual_rectified_any(n):
    """RectifiedMonomial(n) = (x >= 0) x^n for any degree: E[phi(u) phi(v)] = r^n J_n(theta) / (2 pi),
    E[phi'(u) phi'(v)] = n^2 r^(n-1) J_(n-1)(theta) / (2 pi)."""
    def j(k, theta):
        c, s, p = np.cos(theta), np.sin(theta), np.pi - theta
        return sum(coef * c**a * s**b * p**e for (a, b, e), coef in arccos_terms(k).items())

    def dual(q12, q11, q22):
        theta = _theta(q12, q11, q22)
        r = np.sqrt(q11 * q22)
        nngp = r**n * j(n, theta) / (2 * np.pi)
        dot = n * n * r ** (n - 1) * j(n - 1, theta) / (2 * np.pi) if n > 0 else np.zeros_like(theta)
        return nngp, dot

    return dual


def dual_monomial(n):
    """Monomial(n) = x^n: with x^n = sum_m n! / (m! 2^m (n - 2m)!) He_(n-2m)(x) and
    E[He_j(u) He_k(v)] = delta_jk k! rho^k for unit Gaussians (Mehler), scaled to variances q11, q22:
    E[u^n v^n] = sum_m c_m^2 (n - 2m)! q12^(n-2m) (q11 q22)^m; the derivative kernel is n^2 times
    the kernel of degree n - 1."""
    from math import factorial

    def moment(k, q12, q11, q22):
        if k < 0:
            return np.zeros_like(q12 * q11 * q22)
        total = 0.0
        for m in range(k // 2 + 1):
            c = factorial(k) / (factorial(m) * 2**m * factorial(k - 2 * m))
            total = total + c * c * factorial(k - 2 * m) * q12 ** (k - 2 * m) * (q11 * q22) ** m
        return total + 0 * (q12 * q11 * q22)

    def dual(q12, q11, q22):
        return moment(n, q12, q11, q22), n * n * moment(n - 1, q12, q11, q22)

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
