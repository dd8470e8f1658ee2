"""Sampled wide networks (plain NumPy) against the analytic infinite-width kernels."""

import numpy as np
import pytest
from scipy.special import erf, ndtr

import ntkfast

from finite_numpy import NumpyMLP

from ntkfast import activations as A


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(z / 2))


# name: (activation spec, phi, phi') with phi written here independently of the core
PHI = {
    "relu": ("relu", lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "erf": ("erf", erf, lambda z: 2 / np.sqrt(np.pi) * np.exp(-z * z)),
    "gelu": ("gelu", lambda z: z * ndtr(z), lambda z: ndtr(z) + z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)),
    "abs": ("abs", np.abs, np.sign),
    "sin": ("sin", np.sin, np.cos),
    "cos": (A.Cos(0.8, 1.3, 0.2), lambda z: 0.8 * np.cos(1.3 * z + 0.2), lambda z: -1.04 * np.sin(1.3 * z + 0.2)),
    "rbf": (A.Rbf(0.7), lambda z: np.sqrt(2) * np.sin(np.sqrt(1.4) * z + np.pi / 4),
            lambda z: np.sqrt(2.8) * np.cos(np.sqrt(1.4) * z + np.pi / 4)),
    "gabor": ("gabor", lambda z: np.exp(-z * z) * np.sin(z), lambda z: np.exp(-z * z) * (np.cos(z) - 2 * z * np.sin(z))),
    "exp": (A.Exp(0.5, 0.3), lambda z: 0.5 * np.exp(0.3 * z), lambda z: 0.15 * np.exp(0.3 * z)),
    "gaussian": (A.Gaussian(1.2, -0.5), lambda z: 1.2 * np.exp(-0.5 * z * z), lambda z: -1.2 * z * np.exp(-0.5 * z * z)),
    "monomial2": (A.Monomial(2), np.square, lambda z: 2 * z),
    "rectified_monomial2": (A.RectifiedMonomial(2), lambda z: np.maximum(z, 0) ** 2, lambda z: 2 * np.maximum(z, 0)),
    "tanh": ("tanh", np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "softplus": ("softplus", lambda z: np.logaddexp(0, z), _sigmoid),
    "elu": ("elu", lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
            lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))),
}


def test_empirical_ntk_of_the_numpy_net_matches_finite_differences():
    """The Monte-Carlo tool itself: its backprop NTK is J J^T of a finite-difference Jacobian."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    for parameterization in ("ntk", "standard"):
        for name in ("erf", "gelu"):
            net = NumpyMLP(2, 5, 3, *PHI[name][1:], W_std=1.3, b_std=0.4, parameterization=parameterization, rng=rng)
            np.testing.assert_allclose(net.ntk(x, x), net.ntk_by_finite_differences(x), rtol=1e-7, atol=1e-9)


def frobenius_error(name, parameterization, width, n_samples, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 4))
    mlp = ntkfast.MLP(2, PHI[name][0], W_std=1.4, b_std=0.3, parameterization=parameterization, width=width)
    exact = mlp.kernel(x)
    nngp = ntk = 0.0
    for _ in range(n_samples):
        net = NumpyMLP(2, width, 4, *PHI[name][1:], W_std=1.4, b_std=0.3, parameterization=parameterization, rng=rng)
        h = x
        for l in range(2):
            h = net.phi(net._layer(l, h))
        # the readout's outputs are i.i.d. given h: their mean outer product is W_r^2 h.h'/n + b_r^2
        nngp = nngp + 1.4**2 * h @ h.T / width + 0.3**2
        ntk = ntk + net.ntk(x, x)
    nngp, ntk = nngp / n_samples, ntk / n_samples
    err = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)
    return err(nngp, exact.nngp), err(ntk, exact.ntk)


@pytest.mark.parametrize("name, parameterization", [(name, p) for name in PHI for p in ("ntk", "standard")
                                                    if p == "ntk" or name in ("relu", "erf", "gelu", "abs")])
def test_wide_networks_converge_to_the_analytic_kernels(name, parameterization):
    """Kernels of sampled networks approach the analytic ones as width grows (error ~ 1/sqrt(m))."""
    narrow = np.mean([frobenius_error(name, parameterization, 32, 4, seed) for seed in range(3)], axis=0)
    wide = np.mean([frobenius_error(name, parameterization, 2048, 4, seed) for seed in range(3)], axis=0)
    # squared activations fluctuate more (their outputs have heavy tails): same 1/sqrt(m), larger constant
    assert np.all(wide < (0.15 if "monomial" in name else 0.06)), wide
    # sqrt(2048 / 32) = 8: demand at least a factor 2.5 so that seeds cannot make it flaky
    assert np.all(wide < narrow / 2.5), (narrow, wide)
