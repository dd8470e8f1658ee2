"""Finite convolutional networks (``ntkfast.stax.Conv``, pooling, ``Flatten``, LayerNorm over
positions): gradients, empirical NTKs, training, and their infinite-width limit.

Every expected number is computed independently of the code under test:

* the empirical NTK (traced and full, symmetric and cross) against J J^T with J the Jacobian of
  ``apply`` (its forward pass is itself checked against neural-tangents in test_conv.py) by
  central differences over every parameter, for SAME / VALID / CIRCULAR, strided, pooled,
  globally pooled, flattened, 1-D and 2-D networks, residual branches, Dense on images and
  LayerNorm over positions, in both parameterizations;
* one layer's share of it, both ways of summing, against the definition written as an einsum;
* the backward pass of each image layer against its forward pass through the adjoint identity
  <A dx, g> = <dx, A^T g>;
* training: one step against the finite-difference gradient of 0.5 * mean((f - y)^2); the
  linearised CNN against the closed-form recursion of gradient descent on a linear model (Lee et
  al. 2019); a wide CNN follows its linearisation;
* Monte Carlo: empirical NNGP and NTK of wide random CNNs approach the analytic CNN-GP / CNTK
  (Novak et al. 2019, Arora et al. 2019) of ``layer.kernel`` within their standard errors, and a
  single network's NTK approaches it as the channels grow (Jacot et al. 2018).
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import ntkfast
from ntkfast import empirical, stax
from ntkfast.composed import ComposedNetwork, apply
from test_composed import (_gd_on_linear_model, _jacobian, _leaves, _rel, assert_ntk_is_jacobian_product,
                           assert_one_step_is_gradient_descent)


def _images(n, shape, key=0):
    return np.random.default_rng(key).standard_normal((n,) + tuple(shape))


TREES = {
    "same_strided_gap": (stax.serial(stax.Conv(3, (3, 3), padding="SAME", W_std=1.3, b_std=0.2), stax.Relu(),
                                     stax.Conv(2, (2, 2), strides=(2, 2), W_std=1.1), stax.Erf(),
                                     stax.GlobalAvgPool(), stax.Dense(2, b_std=0.1)), (5, 5, 2)),
    "circular_pool_flatten": (stax.serial(stax.Conv(3, (2, 3), padding="CIRCULAR", b_std=0.1), stax.Gelu(),
                                          stax.AvgPool((2, 2), strides=(2, 1), padding="SAME", normalize_edges=True),
                                          stax.Flatten(), stax.Dense(2, W_std=1.2)), (5, 4, 1)),
    "layernorm_residual": (stax.serial(stax.Conv(3, (3, 3), padding="SAME"),
                                       stax.LayerNorm(axis=(1, 2, 3), eps=1e-3),
                                       stax.Dense(3, W_std=1.2, b_std=0.1), stax.Tanh(), stax.FanOut(2),
                                       stax.parallel(stax.Conv(3, (3, 3), padding="SAME", b_std=0.2),
                                                     stax.Identity()),
                                       stax.FanInSum(), stax.LayerNorm(), stax.AvgPool((2, 2)), stax.Flatten(),
                                       stax.Dense(2)), (4, 4, 2)),
    "one_d_standard": (stax.serial(stax.Conv(3, (3,), strides=(2,), padding="SAME", b_std=0.3,
                                             parameterization="standard"),
                                   stax.Relu(), stax.AvgPool((2,)), stax.Flatten(),
                                   stax.Dense(2, b_std=0.1, parameterization="standard")), (7, 2)),
}


@pytest.mark.parametrize("name", sorted(TREES))
def test_ntk_is_jacobian_product(name):
    layer, shape = TREES[name]
    assert_ntk_is_jacobian_product(layer, layer.init(shape, seed=3), _images(3, shape, key=1),
                                   _images(2, shape, key=2))


@pytest.mark.parametrize("trace", [True, False])
def test_layer_share_both_ways_equal_the_definition(trace):
    """sum_{p,q} (w^2 h1_ip . h2_jq + b^2) (Delta1_kip . Delta2_ljq), written out as einsums."""
    rng = np.random.default_rng(5)
    k, n1, n2, positions, fan_in, out_dim = 3, 4, 2, 6, 5, 7
    h1, h2 = rng.standard_normal((n1, positions, fan_in)), rng.standard_normal((n2, positions, fan_in))
    g1, g2 = rng.standard_normal((k, n1, positions, out_dim)), rng.standard_normal((k, n2, positions, out_dim))
    inputs = 1.3**2 * np.einsum("ipf,jqf->ipjq", h1, h2) + 0.4**2
    full = np.einsum("ipjq,kipc,ljqc->ijkl", inputs, g1, g2)
    want = np.einsum("ijkk->ij", full) if trace else full
    for how in ("pairs", "jacobians"):
        got = empirical.layer_ntk(h1, g1, h2, g2, 1.3, 0.4, trace, how)
        assert _rel(got, want) < 1e-13, how  # measured: 2e-16
        same = empirical.layer_ntk(h1, g1, None, None, 1.3, None, trace, how)
        no_bias = np.einsum("ipjq,kipc,ljqc->ijkl", 1.3**2 * np.einsum("ipf,jqf->ipjq", h1, h1), g1, g1)
        assert _rel(same, np.einsum("ijkk->ij", no_bias) if trace else no_bias) < 1e-13, how
    # the choice follows the operation counts: few channels over many positions favour Jacobians
    assert empirical.strategy(10, 10, 1, 784, 9, 16, True) == "jacobians"
    assert empirical.strategy(10, 10, 1, 4, 4608, 512, True) == "pairs"
    assert empirical.strategy(10, 10, 1, 1, 576, 64, True) == "pairs"


IMAGE_LAYERS = [
    (stax.Conv(3, (3, 3), padding="SAME"), (5, 4, 2)),
    (stax.Conv(3, (2, 3), strides=(2, 2), padding="SAME"), (5, 6, 2)),
    (stax.Conv(2, (3, 2), strides=(1, 2), padding="CIRCULAR"), (4, 5, 3)),
    (stax.Conv(2, (2, 2), strides=(2, 3), padding="VALID"), (5, 7, 1)),
    (stax.Conv(2, (3,), strides=(2,), padding="CIRCULAR"), (6, 2)),
    (stax.AvgPool((2, 3), strides=(2, 1), padding="SAME", normalize_edges=True), (5, 4, 2)),
    (stax.AvgPool((3, 2), strides=(1, 2), padding="CIRCULAR"), (4, 5, 1)),
    (stax.AvgPool((2, 2), padding="VALID"), (5, 5, 2)),
    (stax.AvgPool((3,), strides=(2,), padding="SAME"), (6, 2)),
]


@pytest.mark.parametrize("index", range(len(IMAGE_LAYERS)))
def test_backward_is_the_adjoint_of_forward(index):
    layer, shape = IMAGE_LAYERS[index]
    _, params = layer.init_fn(0, (-1,) + shape)
    dx = _images(3, shape, key=index)
    if isinstance(layer, stax.Conv):  # linear in the input without the bias
        forward = layer.forward((params[0], None), dx)
        g = np.random.default_rng(9).standard_normal((2,) + forward.shape)  # a stack of two cotangents
        back = layer.backward(params[0], g, shape[:-1])
    else:
        forward = layer.forward((), dx)
        g = np.random.default_rng(9).standard_normal((2,) + forward.shape)
        back = layer.backward(g, shape[:-1])
    assert back.shape == (2,) + dx.shape
    for m in range(2):
        assert np.vdot(forward, g[m]) == pytest.approx(np.vdot(dx, back[m]), rel=1e-12)
    flat_g = np.random.default_rng(3).standard_normal((2, 3, int(np.prod(shape))))
    assert np.vdot(stax.Flatten().forward((), dx), flat_g[0]) == pytest.approx(
        np.vdot(dx, stax.Flatten.backward(flat_g, shape[:-1], shape[-1])[0]), rel=1e-12)
    pool_g = np.random.default_rng(4).standard_normal((2, 3, shape[-1]))
    assert np.vdot(stax.GlobalAvgPool().forward((), dx), pool_g[1]) == pytest.approx(
        np.vdot(dx, stax.GlobalAvgPool.backward(pool_g, shape[:-1])[1]), rel=1e-12)


# -- training -------------------------------------------------------------------------------------

def test_train_step_is_gradient_descent_on_the_mean_squared_error():
    layer, shape = TREES["layernorm_residual"]
    assert_one_step_is_gradient_descent(layer, layer.init(shape, seed=8), _images(4, shape, key=20),
                                        np.random.default_rng(21).standard_normal((4, 2)))


@pytest.mark.parametrize("name", ["same_strided_gap", "one_d_standard"])
def test_linearized_cnn_is_gradient_descent_on_the_linear_model(name):
    layer, shape = TREES[name]
    net = layer.init(shape, seed=10)
    x, xt = _images(5, shape, key=24), _images(3, shape, key=25)
    y = np.random.default_rng(26).standard_normal((5, 2))
    n, k = y.shape
    theta = net.ntk(x, trace=False).transpose(0, 2, 1, 3).reshape(n * k, n * k)
    theta_test = net.ntk(xt, x, trace=False).transpose(0, 2, 1, 3).reshape(-1, n * k)
    lr = y.size / np.linalg.eigvalsh(theta)[-1]  # half the largest stable learning rate
    lin = net.linearize()
    history = lin.train(x, y, learning_rate=lr, steps=30)
    f, ft = _gd_on_linear_model(theta, theta_test, net.apply(x), net.apply(xt), y, lr, 30)
    assert _rel(lin.apply(x), f) < 1e-12 and _rel(lin.apply(xt), ft) < 1e-12  # measured: 1e-15
    assert np.all(np.diff(history.train_loss) < 0)
    jac = _jacobian(layer, net.params, xt)
    delta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(lin.delta)])
    assert _rel(lin.apply(xt) - net.apply(xt), jac @ delta) < 1e-8  # measured: 3e-11


def test_min_norm_solution_of_a_cnn_fits_the_linear_model():
    layer, shape = TREES["circular_pool_flatten"]
    net = layer.init(shape, seed=12)
    x, y = _images(3, shape, key=29), np.random.default_rng(30).standard_normal((3, 2))
    solution = net.min_norm_solution(x, y)
    delta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(solution.delta)])
    jac = _jacobian(layer, net.params, x).reshape(6, -1)
    assert _rel(net.apply(x).reshape(-1) + jac @ delta, y.reshape(-1)) < 1e-8
    assert solution.norm == pytest.approx(np.linalg.norm(delta), rel=1e-12)


def test_wide_cnn_trains_and_follows_its_linearization():
    """Lazy training (Lee et al. 2019) for a CNN: 128 channels, a normal learning rate."""
    layer = stax.serial(stax.Conv(128, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
                        stax.Conv(128, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
                        stax.GlobalAvgPool(), stax.Dense(1, W_std=1.2, b_std=0.1))
    x = _images(8, (4, 4, 1), key=28)
    y = np.sin(x.sum(axis=(1, 2)))
    net = layer.init((4, 4, 1), seed=11)
    lr = x.shape[0] / np.linalg.eigvalsh(net.ntk(x))[-1]  # half the largest stable learning rate
    lin, f0 = net.linearize(), net.apply(x)
    h_net = net.train(x, y, learning_rate=lr, steps=100, record_every=50, track_kernel=True)
    lin.train(x, y, learning_rate=lr, steps=100)
    assert h_net.train_loss[-1] < 0.25 * h_net.train_loss[0]  # measured: 0.12
    moved = np.abs(net.apply(x) - f0).max()
    assert moved > 0.1 and np.abs(net.apply(x) - lin.apply(x)).max() < 0.1 * moved  # measured: 2.2%
    assert 0 < h_net.kernel_drift[-1] < 0.2  # measured: 0.066


# -- Monte Carlo: the infinite-width limit --------------------------------------------------------

def _cnn(width, out, pool):
    return stax.serial(stax.Conv(width, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
                       stax.Conv(width, (3, 3), padding="SAME" if pool else "VALID", W_std=1.4, b_std=0.1),
                       stax.Relu(), stax.GlobalAvgPool() if pool else stax.Flatten(),
                       stax.Dense(out, W_std=1.2, b_std=0.1))


@pytest.mark.parametrize("pool", [True, False], ids=["gap", "flatten"])
def test_monte_carlo_cnn_kernels_approach_the_cntk(pool):
    """12 random CNNs of 512 channels: the traced empirical NTK (one output) and the empirical NNGP
    (512 outputs) within 10% (Frobenius) and 6 standard errors of the analytic kernels (measured:
    0.3-1.6%, at most 1.2 standard errors)."""
    x = _images(4, (5, 5, 2), key=40)
    for get, out in (("ntk", 1), ("nngp", 512)):
        layer = _cnn(512, out, pool)
        mc = ntkfast.monte_carlo_kernel(layer, x, n_samples=12, seed=1, get=(get,))
        mean, stderr, exact = getattr(mc, get), getattr(mc, f"{get}_stderr"), layer.kernel(x, get=get)
        assert np.linalg.norm(mean - exact) / np.linalg.norm(exact) < 0.1, get
        assert (np.abs(mean - exact) / stderr).max() < 6, get


def test_empirical_cntk_converges_as_channels_grow():
    """One network's NTK error against the CNTK falls like 1 / sqrt(channels) (Jacot et al. 2018):
    the median over 5 networks, 16 -> 256 channels (16x), falls at least 2x (measured: ~4x)."""
    x = _images(3, (4, 4, 1), key=41)
    exact = _cnn(8, 1, True).kernel(x, get="ntk")
    errors = []
    for width in (16, 256):
        layer = _cnn(width, 1, True)
        errors.append(np.median([np.linalg.norm(layer.init((4, 4, 1), seed=s).ntk(x) - exact) / np.linalg.norm(exact)
                                 for s in range(5)]))
    assert errors[1] < errors[0] / 2, errors


# -- the network object ---------------------------------------------------------------------------

def test_image_network_api_copies_pickles_and_keeps_float32():
    layer, shape = TREES["same_strided_gap"]
    net = layer.init(shape, seed=0)
    assert net.in_dim == shape and net.out_dim == 2 and net.params[0][1].shape == (1, 1, 1, 3)
    x = _images(3, shape, key=31)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), ComposedNetwork.from_params(
            layer, net.params, shape)):
        assert _rel(other.apply(x), net.apply(x)) == 0
    lin = net.linearize()
    lin.train(x, np.ones((3, 2)), learning_rate=0.1, steps=2)
    assert _rel(pickle.loads(pickle.dumps(lin)).apply(x), lin.apply(x)) == 0
    assert lin.delta[0][1].shape == (1, 1, 1, 3)
    assert apply(layer, net.params, x.astype(np.float32)).dtype == np.float32
    one_d, shape_1d = TREES["one_d_standard"]
    assert one_d.init(shape_1d).params[0][1].shape == (1, 1, 3)


def test_image_network_errors_name_the_argument():
    layer, shape = TREES["same_strided_gap"]
    with pytest.raises(ValueError, match=r"in_dim: this network has convolutions.* got 5"):
        layer.init(5)
    net = layer.init(shape, seed=0)
    with pytest.raises(ValueError, match=r"in_dim: the input's shape is not known"):
        ComposedNetwork.from_params(layer, net.params)
    with pytest.raises(ValueError, match=r"x1: images of shape \(4, 5, 2\), the network takes \(5, 5, 2\)"):
        net.ntk(_images(2, (4, 5, 2)))
    with pytest.raises(ValueError, match="x: this network has convolutions"):
        net.apply(np.ones((2, 50)))
    with pytest.raises(ValueError, match="x2: contains NaN"):
        net.ntk(_images(2, shape), np.full((1,) + shape, np.nan))
    keeps = stax.serial(stax.Conv(2, (3, 3), padding="SAME"), stax.Relu())
    with pytest.raises(ValueError, match="layer: the network's outputs keep positions"):
        keeps.init((4, 4, 1))
    with pytest.raises(ValueError, match=r"params: params\[1\] must be None: Conv"):
        apply(stax.Conv(2, (2, 2)), (np.ones((2, 2, 1, 2)), np.ones((1, 1, 1, 2))), np.ones((1, 3, 3, 1)))
    with pytest.raises(ValueError, match="width, out_dim: an ntkfast.stax network's widths"):
        ntkfast.monte_carlo_kernel(layer, _images(2, shape), width=8, n_samples=2)
    with pytest.raises(MemoryError, match="x1: the empirical NTK needs about .* GiB"):
        net.ntk(np.broadcast_to(np.ones(shape), (10**7,) + shape))  # checked before anything is allocated
