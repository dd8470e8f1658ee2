"""Frozen layers: ``MLP(..., train_readout=False)`` and ``stax.Dense(..., trainable=False)`` /
``stax.Conv(..., trainable=False)`` (the two-layer network with fixed output weights of Du et al.
2019 and Arora et al. 2019).

Expected numbers are computed independently of the code under test:

* the analytic NTK of a frozen readout: NTK - NNGP in the "ntk" parameterization (the readout's
  own parameters contribute exactly its NNGP), and for the two-layer ReLU network the closed form
  sigma_a^2 sigma_w^2 (x.x'/d) (pi - theta) / (2 pi) (the arc-cosine kernel of order 0);
* Monte Carlo: empirical NTKs of wide random networks with the frozen layers approach it (Jacot
  et al. 2018), for a frozen readout and a frozen hidden layer, "ntk" and "standard";
* finite networks: the empirical NTK is J J^T with J the central-difference Jacobian of the
  trainable parameters only; training leaves the frozen ones at their initial values and moves
  the others by gradient descent on them.
"""

from __future__ import annotations

import numpy as np
import pytest

import ntkfast
from ntkfast import stax
from ntkfast.composed import ComposedNetwork, apply
from test_composed import _jacobian, _leaves, _rel


def _x(n, d, key):
    return np.random.default_rng(key).standard_normal((n, d))


def test_frozen_readout_ntk_is_the_ntk_minus_the_nngp():
    x, x2 = _x(5, 4, 1), _x(3, 4, 2)
    for kwargs in (dict(W_std=1.5, b_std=0.1), dict(W_std=1.3, b_std=None, readout_W_std=0.9, readout_b_std=0.2)):
        full = ntkfast.MLP(3, "erf", **kwargs).kernel(x, x2)
        frozen = ntkfast.MLP(3, "erf", train_readout=False, **kwargs).kernel(x, x2)
        assert _rel(frozen.nngp, full.nngp) == 0
        assert _rel(frozen.ntk, full.ntk - full.nngp) < 1e-13
    layer = stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.2, b_std=0.1))
    frozen = stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Relu(),
                         stax.Dense(1, W_std=1.2, b_std=0.1, trainable=False))
    k, kf = layer.kernel(x, x2), frozen.kernel(x, x2)
    assert _rel(kf.ntk, k.ntk - k.nngp) < 1e-13 and "trainable=False" in repr(frozen)
    images = np.random.default_rng(3).standard_normal((3, 5, 5, 1))
    conv = stax.serial(stax.Conv(4, (3, 3), padding="SAME", W_std=1.4), stax.Relu(), stax.Flatten(),
                       stax.Dense(1, W_std=1.1, b_std=0.2))
    conv_frozen = stax.serial(stax.Conv(4, (3, 3), padding="SAME", W_std=1.4), stax.Relu(), stax.Flatten(),
                              stax.Dense(1, W_std=1.1, b_std=0.2, trainable=False))
    k, kf = conv.kernel(images), conv_frozen.kernel(images)
    assert _rel(kf.ntk, k.ntk - k.nngp) < 1e-13
    # a frozen first convolution: only the readout trains, so the NTK is the NNGP
    only_readout = stax.serial(stax.Conv(4, (3, 3), padding="SAME", W_std=1.4, trainable=False), stax.Relu(),
                               stax.Flatten(), stax.Dense(1, W_std=1.1, b_std=0.2))
    assert _rel(only_readout.kernel(images).ntk, k.nngp) < 1e-13


def test_two_layer_relu_with_fixed_output_weights_has_the_arc_cosine_ntk():
    sigma_w, sigma_a = 1.4, 0.8
    mlp = ntkfast.MLP(1, "relu", W_std=sigma_w, b_std=None, readout_W_std=sigma_a, readout_b_std=None,
                      train_readout=False)
    x, x2 = _x(4, 3, 4), _x(5, 3, 5)
    dots = x @ x2.T
    cos = dots / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(x2, axis=1))
    theta = np.arccos(np.clip(cos, -1, 1))
    want = sigma_a**2 * sigma_w**2 * dots / 3 * (np.pi - theta) / (2 * np.pi)
    assert _rel(mlp.kernel(x, x2, get="ntk"), want) < 1e-13


def _mc_ntk(make, x, draws=12):
    samples = np.array([make(i).ntk(x) for i in range(draws)])
    return samples.mean(0), samples.std(0, ddof=1) / np.sqrt(draws)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_monte_carlo_frozen_networks_approach_the_analytic_ntk(parameterization):
    """12 networks of width 1024: within 10% (Frobenius) and 6 standard errors (measured: 0.8-2.6%,
    at most 3.5 standard errors)."""
    x = _x(5, 4, 6)
    std = dict(parameterization=parameterization)
    mlp = ntkfast.MLP(2, "relu", W_std=1.5, b_std=0.1, train_readout=False, width=1024, **std)
    mean, stderr = _mc_ntk(lambda i: mlp.init(4, width=1024, seed=100 + i), x)
    exact = mlp.kernel(x, get="ntk")
    assert np.linalg.norm(mean - exact) / np.linalg.norm(exact) < 0.1
    assert (np.abs(mean - exact) / stderr).max() < 6
    middle = stax.serial(stax.Dense(1024, W_std=1.5, b_std=0.1, **std), stax.Relu(),
                         stax.Dense(1024, W_std=1.5, b_std=0.1, trainable=False, **std), stax.Erf(),
                         stax.Dense(1, W_std=1.2, b_std=0.1, **std))
    mean, stderr = _mc_ntk(lambda i: middle.init(4, seed=200 + i), x)
    exact = middle.kernel(x, get="ntk")
    assert np.linalg.norm(mean - exact) / np.linalg.norm(exact) < 0.1
    assert (np.abs(mean - exact) / stderr).max() < 6


def _trainable_jacobian(layer, params, x, frozen):
    """The central-difference Jacobian (n, k, p) over the parameters of the layers not in ``frozen``
    (indices into the serial's children)."""
    full = _jacobian(layer, params, x)
    keep = np.concatenate([np.full(sum(np.size(a) for a in _leaves(p)), i not in frozen)
                           for i, p in enumerate(params)])
    return full[..., keep]


def test_finite_frozen_networks_ntk_and_training():
    layer = stax.serial(stax.Dense(6, W_std=1.4, b_std=0.2), stax.Gelu(), stax.Dense(5, W_std=1.2, trainable=False),
                        stax.Erf(), stax.Dense(2, W_std=1.1, b_std=0.1, trainable=False))
    net = layer.init(3, seed=4)
    x, x2 = _x(4, 3, 7), _x(3, 3, 8)
    j1, j2 = (_trainable_jacobian(layer, net.params, a, frozen={2, 4}) for a in (x, x2))
    full = np.einsum("ikp,jlp->ijkl", j1, j2)
    assert _rel(net.ntk(x, x2, trace=False), full) < 1e-8  # measured: 3e-10
    assert _rel(net.ntk(x, x2), np.einsum("ijkk->ij", full) / 2) < 1e-8
    # one step moves the trainable parameters by -lr J^T (f - y) / N, the frozen ones not at all
    y = np.random.default_rng(9).standard_normal((4, 2))
    before, f = net.params, net.apply(x)
    net.train(x, y, learning_rate=0.2, steps=1)
    moved = np.concatenate([leaf.reshape(-1) for leaf in _leaves(net.params[0])]) - \
        np.concatenate([leaf.reshape(-1) for leaf in _leaves(before[0])])
    assert _rel(moved, -0.2 * np.einsum("ikp,ik->p", j1, f - y)[:moved.size] / y.size) < 1e-8
    for i in (2, 4):
        assert all(np.array_equal(a, b) for a, b in zip(net.params[i], before[i]))
    # the Rust core's network with a frozen readout: the same numbers as the composed one
    chain = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Relu(),
                        stax.Dense(1, W_std=1.2, b_std=0.1, trainable=False))
    composed = chain.init(3, seed=5)
    core = ntkfast.Network.from_params(ntkfast.MLP(1, "relu", W_std=1.5, b_std=0.1, readout_W_std=1.2,
                                                   train_readout=False), [composed.params[0], composed.params[2]])
    assert _rel(core.ntk(x, x2), composed.ntk(x, x2)) < 1e-13
    readout = core.params[1][0].copy()
    h1 = core.train(x, np.sin(x[:, :1]), learning_rate=0.3, steps=5)
    h2 = composed.train(x, np.sin(x[:, :1]), learning_rate=0.3, steps=5)
    assert np.allclose(h1.train_loss, h2.train_loss, rtol=1e-12, atol=0)
    assert np.array_equal(core.params[1][0], readout) and _rel(core.apply(x2), composed.apply(x2)) < 1e-12
    assert core.min_norm_solution(x[:3], np.ones(3)).delta[1][0].any() == False  # noqa: E712 - the readout stays


def test_trainable_must_be_a_flag():
    with pytest.raises(TypeError, match="trainable: must be True or False"):
        stax.Dense(3, trainable="no")
    with pytest.raises(TypeError, match="train_readout: must be True or False"):
        ntkfast.MLP(1, "relu", train_readout=0)
    assert not apply(stax.Dense(2, trainable=False), (np.ones((3, 2)), None), np.ones((1, 3))).size == 0
    assert isinstance(ComposedNetwork.from_params(stax.Dense(2, trainable=False), (np.ones((3, 2)), None)).ntk(
        np.ones((2, 3))), np.ndarray)
