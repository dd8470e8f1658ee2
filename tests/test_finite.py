"""Finite-width networks: outputs and empirical kernels against independent NumPy code and finite
differences, convergence to the analytic kernels with width, and lazy training."""

import numpy as np
import pytest
from scipy.special import erf

import ntkfast
from ntkfast import predict

from finite_numpy import ACTIVATIONS, DERIVATIVE_BY_DIFFERENCES, NumpyMLP


def numpy_twin(net, name, parameterization, W_std, b_std, depth):
    """The tests' own NumPy network with the same parameters."""
    twin = NumpyMLP.__new__(NumpyMLP)
    twin.phi, twin.dphi = ACTIVATIONS[name][1:]
    twin.depth, twin.parameterization = depth, parameterization
    twin.stds = [(W_std, b_std)] * (depth + 1)
    twin.params = [(w.copy(), None if b is None else b.copy()) for w, b in net.params]
    return twin


def perturbed(net, index, eps):
    params = [(w.copy(), None if b is None else b.copy()) for w, b in net.params]
    flat = [a for pair in params for a in pair if a is not None]
    total = 0
    for arr in flat:
        if index < total + arr.size:
            arr.reshape(-1)[index - total] += eps
            break
        total += arr.size
    return ntkfast.Network.from_params(net.mlp, params)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("name", ["erf", "relu"])
def test_empirical_ntk_is_the_finite_difference_jacobian_product(parameterization, name):
    mlp = ntkfast.MLP(2, name, W_std=1.3, b_std=0.4, parameterization=parameterization, width=4)
    net = mlp.init(3, width=4, out_dim=2, seed=1)
    x = np.random.default_rng(2).standard_normal((5, 3))
    n_params = sum(w.size + (0 if b is None else b.size) for w, b in net.params)
    eps = 1e-6
    jac = np.stack([(perturbed(net, p, eps).apply(x) - perturbed(net, p, -eps).apply(x)) / (2 * eps)
                    for p in range(n_params)], axis=-1)  # (n, out, P)
    want = np.einsum("ikp,jlp->ijkl", jac, jac)
    np.testing.assert_allclose(net.ntk(x, trace=False), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(net.ntk(x), np.einsum("ijkk->ij", want) / 2, rtol=1e-6, atol=1e-8)
    x2 = x[:3] * 1.7
    # a rectangular kernel is the off-diagonal block of the symmetric one
    np.testing.assert_allclose(net.ntk(x, x2), net.ntk(np.concatenate([x, x2]))[:5, 5:], rtol=1e-10, atol=1e-12)


# a grid of pre-activations that avoids the kinks at 0 (ReLU, Sign, step, ELU, SELU)
GRID = np.linspace(-3.0, 3.0, 41) + 0.0123


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_phi_and_its_derivative_are_their_definitions(name):
    """A one-unit network with unit weights shows the activation itself: f(x) = phi(x), and its
    NTK is x x' phi'(x) phi'(x') + phi(x) phi(x') (standard parameterization, no biases). One
    gradient step moves the hidden weight by -lr mean((f - y) phi'(x) x): phi' with its sign."""
    spec, phi, dphi = ACTIVATIONS[name]
    mlp = ntkfast.MLP(1, spec, W_std=1.0, b_std=None, parameterization="standard", width=1)
    net = ntkfast.Network.from_params(mlp, [(np.ones((1, 1)), None), (np.ones((1, 1)), None)])
    x = GRID[:, None]
    f = phi(GRID)
    scale = np.max(np.abs(f))
    np.testing.assert_allclose(net.apply(x)[:, 0], f, rtol=1e-14, atol=1e-15 * scale)
    rtol = 1e-8 if name in DERIVATIVE_BY_DIFFERENCES else 1e-13
    want = np.outer(GRID * dphi(GRID), GRID * dphi(GRID)) + np.outer(f, f)
    np.testing.assert_allclose(net.ntk(x), want, rtol=rtol, atol=1e-14 * np.max(np.abs(want)))
    y = np.cos(3 * GRID)[:, None]
    residual = f - y[:, 0]
    net.train(x, y, learning_rate=0.1, steps=1)
    (w0, _), (w1, _) = net.params
    grad_w0, grad_w1 = np.mean(residual * dphi(GRID) * GRID), np.mean(residual * f)
    assert w0[0, 0] == pytest.approx(1 - 0.1 * grad_w0, rel=rtol, abs=1e-15)
    assert w1[0, 0] == pytest.approx(1 - 0.1 * grad_w1, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_outputs_and_kernels_match_an_independent_numpy_network(parameterization, name):
    """Every activation: outputs, empirical NTK and NNGP of a depth-2 network against
    tests/finite_numpy.py's forward and backward passes with the same parameters."""
    W_std = 0.9 if "monomial" in name else 1.4  # keep x^10 of x^10 moderate
    mlp = ntkfast.MLP(2, ACTIVATIONS[name][0], W_std=W_std, b_std=0.3, parameterization=parameterization, width=16)
    net = mlp.init(5, width=16, out_dim=1, seed=3)
    twin = numpy_twin(net, name, parameterization, W_std, 0.3, 2)
    x, x2 = np.random.default_rng(4).standard_normal((6, 5)), np.random.default_rng(5).standard_normal((3, 5))
    want = twin.forward(x)[0]
    np.testing.assert_allclose(net.apply(x)[:, 0], want, rtol=1e-12, atol=1e-13 * np.max(np.abs(want)))
    want = twin.ntk(x, x2)
    rtol = 1e-8 if name in DERIVATIVE_BY_DIFFERENCES else 1e-11
    np.testing.assert_allclose(net.ntk(x, x2), want, rtol=rtol, atol=1e-13 * np.max(np.abs(want)))
    np.testing.assert_allclose(net.ntk(x), twin.ntk(x, x), rtol=rtol, atol=1e-13 * np.max(np.abs(want)))
    f, f2 = net.apply(x), net.apply(x2)
    np.testing.assert_allclose(net.nngp(x, x2), f @ f2.T, rtol=1e-12)


def test_initialisation_layout_scaling_and_seeds():
    mlp = ntkfast.MLP(2, "relu", W_std=2.0, b_std=0.5)
    p = mlp.init(30, width=400, out_dim=3, seed=7).params
    assert [w.shape for w, _ in p] == [(30, 400), (400, 400), (400, 3)]
    assert [b.shape for _, b in p] == [(400,), (400,), (3,)]
    assert abs(np.std(p[1][0]) - 1.0) < 0.01 and abs(np.mean(p[1][0])) < 0.01  # unscaled N(0, 1)
    std = ntkfast.MLP(2, "relu", W_std=2.0, b_std=0.5, parameterization="standard", width=400)
    q = std.init(30, width=400, out_dim=3, seed=7).params
    assert abs(np.std(q[1][0]) - 2.0 / np.sqrt(400)) < 0.002 and abs(np.std(q[1][1]) - 0.5) < 0.05
    np.testing.assert_array_equal(mlp.init(30, width=400, seed=7).params[0][0], p[0][0])
    assert not np.array_equal(mlp.init(30, width=400, seed=8).params[0][0], p[0][0])
    assert ntkfast.MLP(1, "relu", readout_b_std=None, b_std=0.1).init(4, width=8).params[-1][1] is None


def test_from_params_accepts_neural_tangents_layout():
    """stax.serial's init_fn: () for activation layers, biases of shape (1, fan_out)."""
    mlp = ntkfast.MLP(1, "erf", W_std=1.2, b_std=0.2)
    net = mlp.init(4, width=6, out_dim=2, seed=0)
    (w0, b0), (w1, b1) = net.params
    raw = [(w0, b0[None, :]), (), (w1, b1[None, :])]
    twin = ntkfast.Network.from_params(mlp, raw)
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(twin.apply(x), net.apply(x))


def analytic_ntk_error(mlp, x, width, n_samples, seed=0):
    exact = mlp.kernel(x, get="ntk")
    mc = ntkfast.monte_carlo_kernel(mlp, x, width=width, n_samples=n_samples, seed=seed)
    return np.linalg.norm(mc.ntk - exact) / np.linalg.norm(exact), mc


def test_monte_carlo_kernel_within_3_percent_at_width_1024():
    x = np.random.default_rng(6).standard_normal((8, 5))
    mlp = ntkfast.MLP(2, "relu", W_std=2**0.5, b_std=0.1)
    err, mc = analytic_ntk_error(mlp, x, 1024, 32)
    assert err < 0.03, err
    assert mc.ntk_stderr.shape == (8, 8) and np.all(mc.ntk_stderr > 0)
    # the analytic kernel lies within a few standard errors of the mean, entrywise
    assert np.mean(np.abs(mc.ntk - mlp.kernel(x, get="ntk")) < 4 * mc.ntk_stderr + 1e-3) > 0.9
    # a sampled NNGP f(x) f(x')^T does not concentrate with width (each output is one Gaussian
    # sample), only with the number of outputs and networks averaged
    nngp = ntkfast.monte_carlo_kernel(mlp, x, width=256, n_samples=16, out_dim=64, get="nngp")  # a string: the array
    exact_nngp = mlp.kernel(x, get="nngp")
    assert nngp.shape == (8, 8) and np.linalg.norm(nngp - exact_nngp) / np.linalg.norm(exact_nngp) < 0.15


def test_monte_carlo_error_shrinks_like_one_over_sqrt_width():
    x = np.random.default_rng(7).standard_normal((6, 4))
    mlp = ntkfast.MLP(2, "erf", W_std=1.5, b_std=0.2)
    errors = [np.mean([analytic_ntk_error(mlp, x, m, 4, seed)[0] for seed in range(4)]) for m in (64, 1024)]
    # sqrt(1024 / 64) = 4
    assert errors[1] < errors[0] / 2.5, errors


def training_deviations(mlp, x, y, xt, width, seed, lr=0.5, steps=30):
    """Max deviations (relative to the initial residual) after gradient descent for time lr * steps:
    network vs analytic kernel gradient flow (train, test), network vs its linearisation (test)."""
    net = mlp.init(x.shape[1], width=width, seed=seed)
    f0, ft0 = net.apply(x), net.apply(xt)
    lin = net.linearize()
    hist = net.train(x, y, learning_rate=lr, steps=steps, x_test=xt, y_test=np.zeros((len(xt), 1)), record_every=10, track_kernel=True)
    lin_hist = lin.train(x, y, learning_rate=lr, steps=steps)
    flow = predict.GradientFlow(mlp.kernel(x, get="ntk"), y)
    t = lr * steps
    scale = np.max(np.abs(y - f0))
    deviations = (np.max(np.abs(net.apply(x) - flow.train(t, f0))) / scale,
                  np.max(np.abs(net.apply(xt) - flow.test(t, mlp.kernel(xt, x, get="ntk"), f0, ft0))) / scale,
                  np.max(np.abs(net.apply(xt) - lin.apply(xt))) / scale)
    return np.array(deviations), net, lin, hist, lin_hist


def test_wide_network_training_follows_kernel_gradient_flow():
    rng = np.random.default_rng(8)
    x, xt = rng.standard_normal((12, 4)), rng.standard_normal((5, 4))
    y = np.sin(x @ rng.standard_normal((4, 1)))
    mlp = ntkfast.MLP(2, "erf", W_std=1.5, b_std=0.2)
    narrow = np.mean([training_deviations(mlp, x, y, xt, 64, seed)[0] for seed in range(3)], axis=0)
    wide = np.mean([training_deviations(mlp, x, y, xt, 1024, seed)[0] for seed in range(3)], axis=0)
    assert np.all(wide < 0.05), wide
    assert wide[1] < narrow[1] / 3 and wide[2] < narrow[2] / 5, (narrow, wide)

    _, net, lin, hist, lin_hist = training_deviations(mlp, x, y, xt, 1024, 0)
    # the linearised model trained by gradient descent is exactly (I - lr Theta0 / N)^s in function space
    theta0 = mlp.init(4, width=1024, seed=0).ntk(x)
    f0 = mlp.init(4, width=1024, seed=0).apply(x)
    w, v = np.linalg.eigh(theta0)
    want_lin = y + v @ np.diag((1 - 0.5 * w / y.size) ** 30) @ v.T @ (f0 - y)
    np.testing.assert_allclose(lin.apply(x), want_lin, rtol=1e-8, atol=1e-10)
    assert hist.train_loss[-1] < 0.05 * hist.train_loss[0]
    assert hist.param_change[-1] < 0.01 and hist.kernel_drift[-1] < 0.02
    assert list(hist.step) == [0, 10, 20, 30] and np.allclose(hist.time, 0.5 * hist.step)
    assert hist.test_loss.shape == (4,) and lin_hist.kernel_drift is None
    np.testing.assert_allclose(lin_hist.train_loss[-1], 0.5 * np.mean((lin.apply(x) - y) ** 2))


def test_narrow_networks_move_their_kernel_more():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((10, 3))
    y = rng.standard_normal((10, 1))
    mlp = ntkfast.MLP(2, "relu", W_std=2**0.5, b_std=0.1)
    # the drift is computed where recorded: only at steps 0 and 200 (record_every), not 51 times;
    # it shrinks like 1/sqrt(width): measured 0.49-1.19 at width 32, 0.035-0.051 at 1024 (seeds 1-3)
    drift = {m: mlp.init(3, width=m, seed=1).train(x, y, learning_rate=1.0, steps=200, record_every=200,
                                                     track_kernel=True).kernel_drift
             for m in (32, 1024)}
    assert drift[32][0] == 0 and drift[1024][0] == 0 and len(drift[32]) == 2
    assert drift[1024][-1] < drift[32][-1] / 3, drift


def test_min_norm_solution_fits_and_obeys_the_bound():
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    net = ntkfast.MLP(1, "erf", b_std=0.3).init(3, width=64, out_dim=2, seed=2)
    sol = net.min_norm_solution(x, y)
    flat = np.concatenate([a.reshape(-1) for pair in sol.delta for a in pair if a is not None])
    assert sol.norm == pytest.approx(np.linalg.norm(flat), rel=1e-8)
    assert sol.norm <= sol.bound * (1 + 1e-12)
    # J delta = y - f0: a directional finite difference along delta
    eps = 1e-6
    shifted = [[(w + s * eps * dw, None if b is None else b + s * eps * db) for (w, b), (dw, db) in
                zip(net.params, sol.delta)] for s in (1, -1)]
    jvp = (ntkfast.Network.from_params(net.mlp, shifted[0]).apply(x)
           - ntkfast.Network.from_params(net.mlp, shifted[1]).apply(x)) / (2 * eps)
    np.testing.assert_allclose(jvp, y - net.apply(x), rtol=1e-5, atol=1e-6)


def test_finite_network_bad_input():
    mlp = ntkfast.MLP(2, "relu", b_std=0.1)
    net = mlp.init(3, width=8, seed=0)
    with pytest.raises(ValueError, match="x: must have shape"):
        net.apply(np.ones((2, 4)))
    with pytest.raises(ValueError, match="x1"):
        net.ntk(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="params"):
        ntkfast.Network.from_params(mlp, net.params[:2])
    with pytest.raises(ValueError, match="params"):
        ntkfast.Network.from_params(mlp, [(w, None) for w, _ in net.params])
    with pytest.raises(ValueError, match="params"):
        bad = net.params
        bad[1] = (np.ones((5, 8)), bad[1][1])
        ntkfast.Network.from_params(mlp, bad)
    with pytest.raises(ValueError, match="params"):
        ntkfast.Network.from_params(mlp, [(np.full_like(w, np.nan), b) for w, b in net.params])
    with pytest.raises(ValueError, match="width"):
        mlp.init(3, width=0)
    with pytest.raises(TypeError, match="width"):
        mlp.init(3, width=2.5)
    with pytest.raises(ValueError, match="learning_rate"):
        net.train(np.ones((2, 3)), np.ones((2, 1)), learning_rate=-1.0, steps=3)
    with pytest.raises(ValueError, match="y: must have shape"):
        net.train(np.ones((2, 3)), np.ones((3, 1)), learning_rate=0.1, steps=3)
    with pytest.raises(ValueError, match="get"):
        ntkfast.monte_carlo_kernel(mlp, np.ones((2, 3)), width=4, n_samples=2, get="ntkk")
