"""The output scale alpha and centering of finite networks (lazy training: Chizat, Oyallon & Bach
2018, "On lazy training"; Lee et al. 2019).

Expected numbers are computed independently of the code under test:

* outputs and empirical NTKs of scaled / centered ``Network``s against the plain-NumPy network
  of tests/finite_numpy.py (its NTK from its own backward pass);
* one training step of a scaled, centered composed network against -eta J^T (f - y) / N with J =
  alpha times the central-difference Jacobian of ``apply``; ``Network`` (the Rust core) against
  the composed network on the same parameters, step by step;
* the linearised scaled network against the closed-form recursion of gradient descent on a linear
  model with the scaled kernel alpha^2 Theta;
* the lazy-training law: at one function-space time (learning rate eta / alpha^2) the parameters
  move 1/alpha as far (within 30% between alpha = 1 and 8, as the theory's O(1/alpha) says; the
  minimum-norm solution's norm exactly 1/alpha as far), while the outputs follow one trajectory.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import ntkfast
from ntkfast import stax
from ntkfast.composed import ComposedNetwork
from finite_numpy import NumpyMLP
from ntkfast.composed import apply
from test_composed import _gd_on_linear_model, _jacobian, _leaves, _rel, _with_vector


def _relu(z):
    return np.maximum(z, 0.0)


def _drelu(z):
    return (z > 0).astype(float)


MLP = ntkfast.MLP(2, "relu", W_std=1.5, b_std=0.1)
CHAIN = stax.serial(stax.Dense(32, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(32, W_std=1.5, b_std=0.1),
                    stax.Relu(), stax.Dense(1, W_std=1.5, b_std=0.1))


def _x(n, key):
    return np.random.default_rng(key).standard_normal((n, 3))


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("alpha", [0.5, 3.0])
def test_scaled_outputs_and_kernels_against_numpy(alpha, centered):
    ref = NumpyMLP(2, 32, 3, _relu, _drelu, 1.5, 0.1, rng=np.random.default_rng(4))
    x, x2 = _x(5, 1), _x(4, 2)
    f0 = ref.forward(x)[0][:, None]
    for net in (ntkfast.Network.from_params(MLP, ref.params, output_scale=alpha, centered=centered),
                ComposedNetwork.from_params(CHAIN, [(w, b) for w, b in ref.params][:1] + [()] + ref.params[1:2] + [()]
                                            + ref.params[2:], output_scale=alpha, centered=centered)):
        assert net.output_scale == alpha and net.centered is centered
        want = np.zeros_like(f0) if centered else alpha * f0
        assert np.abs(net.apply(x) - want).max() < 1e-12 * max(1.0, np.abs(want).max())
        assert _rel(net.ntk(x, x2), alpha**2 * ref.ntk(x, x2)) < 1e-12
        # after training, centered outputs are alpha (f_theta - f_theta0), both from NumPy
        net.train(x, np.sin(x[:, :1]), learning_rate=0.05 / alpha**2, steps=3)
        moved = NumpyMLP(2, 32, 3, _relu, _drelu, 1.5, 0.1, rng=np.random.default_rng(4))
        moved.params = [tuple(p) for p in (net.params if isinstance(net, ntkfast.Network)
                                           else [net.params[0], net.params[2], net.params[4]])]
        moved.params = [(w, None if b is None else np.reshape(b, -1)) for w, b in moved.params]
        f1 = moved.forward(x2)[0][:, None]
        want = alpha * (f1 - ref.forward(x2)[0][:, None]) if centered else alpha * f1
        assert _rel(net.apply(x2), want) < 1e-12
        assert _rel(net.nngp(x, x2), net.apply(x) @ net.apply(x2).T) < 1e-14


def test_one_step_is_gradient_descent_on_the_scaled_loss():
    layer = stax.serial(stax.Dense(5, W_std=1.3, b_std=0.2), stax.Erf(), stax.Dense(2, W_std=1.1, b_std=0.1))
    alpha, lr = 4.0, 0.02
    net = layer.init(3, seed=5, output_scale=alpha, centered=True)
    x, y = _x(4, 6), np.random.default_rng(7).standard_normal((4, 2))
    before = net.params
    jac = alpha * _jacobian(layer, before, x)  # the scaled network's Jacobian
    f = net.apply(x)
    assert np.abs(f).max() == 0  # centered: zero at the initial parameters
    history = net.train(x, y, learning_rate=lr, steps=1)
    assert history.train_loss[0] == pytest.approx(0.5 * np.mean((f - y) ** 2), rel=1e-14)
    theta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(before)])
    after = np.concatenate([leaf.reshape(-1) for leaf in _leaves(net.params)])
    assert _rel(after - theta, -lr * np.einsum("ikp,ik->p", jac, f - y) / y.size) < 1e-8  # measured: 2e-10
    assert history.train_loss[1] == pytest.approx(0.5 * np.mean((net.apply(x) - y) ** 2), rel=1e-13)


def test_core_network_trains_as_the_composed_one():
    """The Rust core's Network and the NumPy composed network, same parameters, alpha = 3, centered."""
    ref = NumpyMLP(2, 32, 3, _relu, _drelu, 1.5, 0.1, rng=np.random.default_rng(8))
    core = ntkfast.Network.from_params(MLP, ref.params, output_scale=3.0, centered=True)
    chain = ComposedNetwork.from_params(CHAIN, (ref.params[0], (), ref.params[1], (), ref.params[2]),
                                        output_scale=3.0, centered=True)
    x, xt = _x(6, 9), _x(3, 10)
    y, yt = np.sin(x[:, :1]), np.cos(xt[:, :1])
    h1 = core.train(x, y, learning_rate=0.1 / 9, steps=15, x_test=xt, y_test=yt)
    h2 = chain.train(x, y, learning_rate=0.1 / 9, steps=15, x_test=xt, y_test=yt)
    for field in ("train_loss", "test_loss", "param_change"):
        assert np.allclose(getattr(h1, field), getattr(h2, field), rtol=1e-12, atol=0), field
    assert _rel(core.apply(xt), chain.apply(xt)) < 1e-12
    a, b = core.min_norm_solution(x, y), chain.min_norm_solution(x, y)
    assert a.norm == pytest.approx(b.norm, rel=1e-10) and a.sigma_min == pytest.approx(b.sigma_min, rel=1e-10)


@pytest.mark.parametrize("kind", ["core", "composed"])
def test_linearized_scaled_network_is_gradient_descent_on_the_linear_model(kind):
    alpha = 5.0
    net = MLP.init(3, width=32, seed=11, output_scale=alpha, centered=True) if kind == "core" else \
        CHAIN.init(3, seed=11, output_scale=alpha, centered=True)
    x, xt = _x(6, 12), _x(3, 13)
    y = np.sin(x[:, :1])
    theta, theta_test = net.ntk(x), net.ntk(xt, x)  # alpha^2 times the unscaled kernels
    lr = y.size / np.linalg.eigvalsh(theta)[-1]
    lin = net.linearize()
    lin.train(x, y, learning_rate=lr, steps=25)
    f, ft = _gd_on_linear_model(theta, theta_test, net.apply(x), net.apply(xt), y, lr, 25)
    assert _rel(lin.apply(x), f) < 1e-11 and _rel(lin.apply(xt), ft) < 1e-11  # measured: ~1e-15
    for other in (pickle.loads(pickle.dumps(lin)), copy.copy(lin)):
        assert _rel(other.apply(xt), lin.apply(xt)) == 0


@pytest.mark.parametrize("kind", ["core", "composed"])
def test_parameters_and_linearization_gap_fall_like_one_over_alpha(kind):
    """Lazy training: learning rate eta / alpha^2 (eta half the largest stable rate of the unscaled
    network) for 100 steps, one gradient-flow time; from alpha = 1 to 8 the parameters move 8x
    less and the gap to the linearisation (alpha beta ||dtheta||^2 ~ 1/alpha) and beta / sigma^2 fall
    8x too, within 30% (measured 8.01x, 6.83x and 7.81x for erf; ReLU's kinks make its gap fall
    faster, 14.7x), while the
    outputs reach the same values; the minimum-norm solution's norm is exactly 1/alpha as large."""
    x = _x(8, 14)
    y = np.sin(x.sum(1, keepdims=True))
    moved, gaps, outputs, norms, ratios = {}, {}, {}, {}, {}
    for alpha in (1.0, 8.0):
        if kind == "core":
            net = ntkfast.MLP(2, "erf", W_std=1.5, b_std=0.1).init(3, width=256, seed=0, output_scale=alpha,
                                                                    centered=True)
        else:
            wide = stax.serial(stax.Dense(256, W_std=1.5, b_std=0.1), stax.Erf(),
                               stax.Dense(256, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(1, W_std=1.5, b_std=0.1))
            net = wide.init(3, seed=0, output_scale=alpha, centered=True)
        eta = y.size / np.linalg.eigvalsh(net.ntk(x) / alpha**2)[-1]
        norms[alpha] = net.min_norm_solution(x, y).norm
        ratios[alpha] = net.validity(x, y).beta_over_sigma2
        history = net.train(x, y, learning_rate=eta / alpha**2, steps=100, record_every=50)
        moved[alpha], gaps[alpha] = history.param_change[-1], history.linearization_gap[-1]
        outputs[alpha] = net.apply(x)
        assert history.linearization_gap[0] == 0 < history.linearization_gap[-1]
    for what, ratio in (("param_change", moved[1.0] / moved[8.0]), ("linearization_gap", gaps[1.0] / gaps[8.0]),
                        ("beta / sigma^2", ratios[1.0] / ratios[8.0])):
        assert 8 / 1.3 < ratio < 8 * 1.3, (what, ratio)
    assert norms[1.0] / norms[8.0] == pytest.approx(8.0, rel=1e-9)
    assert np.abs(outputs[1.0] - outputs[8.0]).max() < 0.02 * np.abs(outputs[8.0]).max()  # measured: 0.3%


def test_linearization_gap_is_the_distance_to_the_taylor_expansion():
    """g(theta_t) = f(theta_0) + alpha Jbar(theta_0) (theta_t - theta_0), Jbar by central differences."""
    layer = stax.serial(stax.Dense(6, W_std=1.4, b_std=0.2), stax.Gelu(), stax.Dense(2, W_std=1.2, b_std=0.1))
    alpha = 2.0
    for net in (layer.init(3, seed=3, output_scale=alpha), ntkfast.Network.from_params(
            ntkfast.MLP(1, "gelu", W_std=1.4, b_std=0.2, readout_W_std=1.2, readout_b_std=0.1),
            [p for p in layer.init(3, seed=3).params if p != ()], output_scale=alpha)):
        x, y = _x(5, 16), np.random.default_rng(17).standard_normal((5, 2))
        before = [p for p in (net.params if isinstance(net, ComposedNetwork) else net.params)]
        tree = tuple(before) if isinstance(net, ComposedNetwork) else (before[0], (), before[1])
        jac = alpha * _jacobian(layer, tree, x)
        f0 = net.apply(x)
        history = net.train(x, y, learning_rate=0.3, steps=10, record_every=10)
        after = net.params if isinstance(net, ComposedNetwork) else (net.params[0], (), net.params[1])
        delta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(after)]) - \
            np.concatenate([leaf.reshape(-1) for leaf in _leaves(tree)])
        want = np.abs(net.apply(x) - (f0 + jac @ delta)).max()
        assert history.linearization_gap[-1] == pytest.approx(want, rel=1e-5)  # measured: 1e-8


@pytest.mark.parametrize("alpha", [1.0, 4.0])
def test_validity_against_finite_differences(alpha):
    """sigma_min(J0), beta = ||J(theta0 + dtheta) - J(theta0)||_2 / ||dtheta|| and the gap
    ||f(theta0 + dtheta) - y||, with J by central differences and dtheta the minimum-norm change;
    the Rust core's network and the composed one on the same parameters agree."""
    layer = stax.serial(stax.Dense(6, W_std=1.4, b_std=0.2), stax.Gelu(), stax.Dense(2, W_std=1.2, b_std=0.1))
    x, y = _x(3, 18), np.random.default_rng(19).standard_normal((3, 2))
    net = layer.init(3, seed=3, output_scale=alpha)
    got = net.validity(x, y, iterations=200)
    theta0, delta = (np.concatenate([leaf.reshape(-1) for leaf in _leaves(tree)])
                     for tree in (net.params, net.min_norm_solution(x, y).delta))
    moved = _with_vector(net.params, theta0 + delta)
    j0, j1 = (alpha * _jacobian(layer, params, x).reshape(y.size, -1) for params in (net.params, moved))
    beta = np.linalg.norm(j1 - j0, 2) / np.linalg.norm(delta)
    sigma = np.linalg.svd(j0, compute_uv=False)[-1]
    assert got.beta == pytest.approx(beta, rel=1e-6) and got.sigma_min == pytest.approx(sigma, rel=1e-6)
    assert got.delta_norm == pytest.approx(np.linalg.norm(delta), rel=1e-10) and got.delta_norm <= got.bound
    assert got.measured_gap == pytest.approx(np.linalg.norm(alpha * apply(layer, moved, x) - y), rel=1e-10)
    assert got.predicted_gap == pytest.approx(got.beta * got.delta_norm**2 / 2, rel=1e-12)
    assert got.beta_over_sigma2 == pytest.approx(got.beta / got.sigma_min**2, rel=1e-12)
    mlp = ntkfast.MLP(1, "gelu", W_std=1.4, b_std=0.2, readout_W_std=1.2, readout_b_std=0.1)
    core = ntkfast.Network.from_params(mlp, [net.params[0], net.params[2]], output_scale=alpha).validity(
        x, y, iterations=200)
    for field in ("sigma_min", "delta_norm", "beta", "measured_gap"):
        assert getattr(core, field) == pytest.approx(getattr(got, field), rel=1e-8), field


def test_copies_and_pickles_keep_the_scale_and_the_initial_outputs():
    x, y = _x(5, 15), np.sin(_x(5, 15)[:, :1])
    for net in (MLP.init(3, width=16, seed=1, output_scale=2.0, centered=True),
                CHAIN.init(3, seed=1, output_scale=2.0, centered=True)):
        net.train(x, y, learning_rate=0.05, steps=3)
        for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), net.copy()):
            assert other.output_scale == 2.0 and other.centered
            assert _rel(other.apply(x), net.apply(x)) == 0
        assert "output_scale=2.0" in repr(net)


def test_bad_scale_arguments_are_named():
    with pytest.raises(ValueError, match="output_scale: must be finite and nonzero"):
        MLP.init(3, width=4, output_scale=0.0)
    with pytest.raises(ValueError, match="output_scale"):
        CHAIN.init(3, output_scale=float("nan"))
    with pytest.raises(TypeError, match="output_scale: must be a real number"):
        MLP.init(3, width=4, output_scale="2")
    with pytest.raises(TypeError, match="centered: must be True or False"):
        CHAIN.init(3, centered="yes")
    net = MLP.init(3, width=16, seed=0, output_scale=10.0)
    with pytest.raises(ValueError, match=r"learning_rate: training diverged .*at learning_rate = 1e\+300"):
        net.train(_x(4, 1) * 1e3, np.ones(4), learning_rate=1e300, steps=3)
    huge = MLP.init(3, width=16, seed=0, output_scale=1e150)
    with pytest.raises(ValueError, match=r"learning_rate: learning_rate \* output_scale\^2 = .* overflows"):
        huge.train(_x(4, 1), np.ones(4), learning_rate=1e10, steps=3)


def test_trained_ensembles_approach_the_predicted_gaussian():
    """``monte_carlo_predict``: 128 networks trained by gradient descent to t = 3 against
    ``MLP.predict(t=3, compute_cov=True)``: at width 256 the mean is within 4 standard errors and
    the covariance within 25% (the Monte Carlo floor with 128 draws is ~12%; measured 1.9 and
    21%); at width 4 the covariance is further off (measured 40%)."""
    mlp = ntkfast.MLP(2, "erf", W_std=1.5, b_std=0.1)
    rng = np.random.default_rng(0)
    x, xt = rng.standard_normal((10, 3)), rng.standard_normal((4, 3))
    y = np.sin(x.sum(1))
    exact = mlp.predict(x, y, xt, t=3.0, compute_cov=True)
    errors = {}
    for width in (4, 256):
        ensemble = ntkfast.monte_carlo_predict(mlp, x, y, xt, width=width, n_networks=128, t=3.0, learning_rate=0.1,
                                               seed=1)
        assert ensemble.outputs.shape == (128, 4, 1) and ensemble.cov.shape == (4, 4)
        stderr = ensemble.outputs[:, :, 0].std(0, ddof=1) / np.sqrt(128)
        errors[width] = (np.abs(ensemble.mean[:, 0] - exact.mean) / stderr).max(), \
            np.linalg.norm(ensemble.cov - exact.cov) / np.linalg.norm(exact.cov)
    assert errors[256][0] < 4 and errors[256][1] < 0.25, errors
    assert errors[4][1] > errors[256][1], errors
    with pytest.raises(ValueError, match="t: must be a finite time"):
        ntkfast.monte_carlo_predict(mlp, x, y, xt, width=4, n_networks=2, t=-1.0, learning_rate=0.1)
    with pytest.raises(ValueError, match="y_train: must have shape"):
        ntkfast.monte_carlo_predict(mlp, x, y[:3], xt, width=4, n_networks=2, t=1.0, learning_rate=0.1)
