"""Sampled finite networks (plain NumPy) against the analytic infinite-width kernels.

The samples are kernels of independent networks of tests/finite_numpy.py (phi and phi' written
from their definitions there): the empirical NTK, and the NNGP sample W^2 h.h' / width + b^2
(the readout's expected f(x) f(x') given the last hidden layer). Their mean estimates the
expectation over initialisations, and its standard error comes from the samples themselves.

* One hidden layer: both samples are exactly unbiased at any width (the hidden pre-activations
  are exactly Gaussian given x, and the readout weights are independent of them), so the analytic
  kernel must lie within a few standard errors of the mean, entry by entry: a sharp test at small
  width and low cost (4096 networks of width 64: standard errors 0.1-0.6% of the kernel; a
  3% change of Rbf's gamma or a LeakyRelu slope of 0.02 instead of ReLU fails it).
* Two hidden layers: the second layer sees the first one's finite-width kernel, which biases the
  mean by O(1/width). The allowance for it is measured: with 8000 networks of width 128 the bias
  is at most 0.67/width of the largest entry for every activation here (it is ~13/width and
  ~27/width for x^2 and relu(x)^2, which are therefore checked at depth 1 only).
* Fluctuations: the spread over networks shrinks like 1/sqrt(width).
"""

import warnings

import numpy as np
import pytest

import ntkfast

from finite_numpy import ACTIVATIONS, NumpyMLP, sample_kernels

Z = 5.0  # standard errors: over ~40 entries and ~100 tests, a false alarm has probability ~1e-4


def analytic(spec, depth, width, parameterization, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ELU's quadrature warns about its ~1e-4 accuracy
        return ntkfast.MLP(depth, spec, W_std=1.4, b_std=0.3, parameterization=parameterization,
                           width=width).kernel(x)


def check_mean(samples, exact, bias, label):
    """|mean - exact| <= Z standard errors + bias * (largest entry), entrywise (plus rounding, for
    entries that do not fluctuate: sign(z)^2 = 1, z^0 = 1)."""
    mean = samples.mean(0)
    stderr = samples.std(0, ddof=1) / np.sqrt(len(samples))
    allowed = Z * stderr + (bias + 1e-12) * np.max(np.abs(exact))
    worst = np.max(np.abs(mean - exact) / allowed)
    assert worst <= 1, (label, worst, np.max(np.abs(mean - exact)) / np.max(np.abs(exact)))


def test_empirical_ntk_of_the_numpy_net_matches_finite_differences():
    """The Monte-Carlo tool itself: its backprop NTK is J J^T of a finite-difference Jacobian."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    for parameterization in ("ntk", "standard"):
        for name in ("erf", "gelu"):
            net = NumpyMLP(2, 5, 3, *ACTIVATIONS[name][1:], W_std=1.3, b_std=0.4, parameterization=parameterization,
                           rng=rng)
            np.testing.assert_allclose(net.ntk(x, x), net.ntk_by_finite_differences(x), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("b_std", [None, 0.3])
def test_batched_sampler_is_the_numpy_network(parameterization, b_std):
    """The batched sampler computes what NumpyMLP computes, network by network."""
    _, phi, dphi = ACTIVATIONS["gelu"]
    x = np.random.default_rng(1).standard_normal((5, 4))
    rng = np.random.default_rng(2)
    nets = [NumpyMLP(2, 16, 4, phi, dphi, 1.4, b_std, parameterization, rng) for _ in range(3)]
    params = [(np.stack([net.params[l][0] for net in nets]),
               None if b_std is None else np.stack([net.params[l][1][None, :] for net in nets])) for l in range(3)]
    nngp, ntk = sample_kernels(x, 2, 16, phi, dphi, 1.4, b_std, parameterization, 3, params=params, chunk=2)
    for i, net in enumerate(nets):
        np.testing.assert_allclose(ntk[i], net.ntk(x, x), rtol=1e-12)
        h = x
        for l in range(2):
            h = net.phi(net._layer(l, h))
        np.testing.assert_allclose(nngp[i], 1.4**2 * h @ h.T / 16 + (0.0 if b_std is None else 0.09), rtol=1e-12)


# heavy-tailed high powers (relu(x)^10 has E[phi^4] / E[phi^2]^2 ~ 1e13) make standard errors
# meaningless; the closed forms of every degree are checked against tests/reference.py instead
ONE_LAYER = [name for name in ACTIVATIONS if not any(name == f"{f}{k}" for f in ("monomial", "rectified_monomial")
                                                     for k in range(4, 11))]
STANDARD = ("relu", "erf", "gelu", "abs", "sin", "tanh", "monomial2", "python")


@pytest.mark.parametrize("name, parameterization", [(name, p) for name in ONE_LAYER for p in ("ntk", "standard")
                                                    if p == "ntk" or name in STANDARD])
def test_one_hidden_layer_networks_average_to_the_analytic_kernels(name, parameterization):
    spec, phi, dphi = ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4)) * np.array([[0.5], [0.8], [1.0], [1.0], [1.2], [1.5]])  # unequal norms
    exact = analytic(spec, 1, 64, parameterization, x)
    nngp, ntk = sample_kernels(x, 1, 64, phi, dphi, 1.4, 0.3, parameterization, 4096, rng, chunk=1024)
    check_mean(nngp, exact.nngp, 0.0, (name, parameterization, "nngp"))
    check_mean(ntk, exact.ntk, 0.0, (name, parameterization, "ntk"))


DEEP = ["relu", "erf", "gelu", "abs", "sin", "cos", "rbf", "gabor", "exp", "gaussian", "tanh", "softplus", "elu"]


@pytest.mark.parametrize("name, parameterization", [(name, p) for name in DEEP for p in ("ntk", "standard")
                                                    if p == "ntk" or name in ("relu", "erf", "gelu", "abs")])
def test_two_hidden_layer_networks_average_to_the_analytic_kernels(name, parameterization):
    """512 networks of width 128: standard errors ~1-3% of the kernel, bias allowance 2/width (three
    times the largest measured)."""
    spec, phi, dphi = ACTIVATIONS[name]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4))
    exact = analytic(spec, 2, 128, parameterization, x)
    nngp, ntk = sample_kernels(x, 2, 128, phi, dphi, 1.4, 0.3, parameterization, 512, rng)
    check_mean(nngp, exact.nngp, 2 / 128, (name, parameterization, "nngp"))
    check_mean(ntk, exact.ntk, 2 / 128, (name, parameterization, "ntk"))


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_fluctuations_shrink_like_one_over_sqrt_width(name):
    """The spread of the sampled NTK over networks: 16 times the width, a quarter of the standard
    deviation (measured ratios 3.6-4.5 over seeds 0-9, for either activation)."""
    _, phi, dphi = ACTIVATIONS[name]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4))
    spread = {}
    for width in (16, 256):
        _, ntk = sample_kernels(x, 2, width, phi, dphi, 1.4, 0.3, "ntk", 256, rng)
        spread[width] = np.sqrt(np.mean(ntk.var(0, ddof=1)))
    assert 3.0 < spread[16] / spread[256] < 5.3, spread
