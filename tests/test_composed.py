"""Finite networks of ``ntkfast.stax`` layer trees (``ntkfast.composed``).

Every expected number is computed independently of the code under test:

* ``apply``: against hand-written NumPy (residual block, LayerNorm, FanInProd, mixed activations,
  the standard parameterization, several inputs);
* the empirical NTK (traced and full, symmetric and cross) against J J^T with J the Jacobian of
  ``apply`` with respect to every parameter by central differences, for trees with LayerNorm,
  FanOut / parallel / FanInSum and FanInProd; and against the Rust core's ``ntkfast.Network`` for a
  plain chain of Dense and activation layers;
* training: one step against the finite-difference gradient of 0.5 * mean((f - y)^2); the loss
  decreases; the linearised network follows the closed-form recursion of gradient descent on a
  linear model (Lee et al. 2019) and, at a small learning rate, the network itself;
* neural-tangents: ``tests/golden/composed.npz`` (written by tools/make_golden_composed.py with
  neural-tangents 0.6.5) is checked on every run (apply 1e-12, empirical NTK 1e-10 relative;
  measured: 1.7e-15 at most), and live when neural_tangents is importable;
* Monte Carlo: empirical kernels of wide random networks approach the analytic ones (Jacot et al.
  2018), against ``MLP.kernel`` for a chain, and against ``layer.kernel`` for composed trees (these
  need the core's ``Model``).
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import pickle

import numpy as np
import pytest
from scipy.special import erf

import ntkfast
from ntkfast import _core, stax
from ntkfast.composed import ComposedNetwork, apply

GOLDEN = pathlib.Path(__file__).parent / "golden" / "composed.npz"


def _x(n, d, key=0, scale=1.0):
    return scale * np.random.default_rng(key).standard_normal((n, d))


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))


# -- NumPy references ------------------------------------------------------------------------------

def _dense(h, params, W_std=1.0, b_std=None, standard=False):
    w, b = params
    if standard:
        return h @ w + (0.0 if b is None else b)
    z = W_std / np.sqrt(h.shape[1]) * (h @ w)
    return z if b is None else z + b_std * b


def _layernorm(x, eps=1e-12):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


def _relu(z):
    return np.maximum(z, 0.0)


def _gelu(z):
    return 0.5 * z * (1 + erf(z / np.sqrt(2)))


def _gelu_tanh(z):
    return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))


def test_apply_residual_block():
    layer = stax.serial(stax.Dense(6, W_std=1.5, b_std=0.1), stax.FanOut(2),
                        stax.parallel(stax.serial(stax.Relu(), stax.Dense(6, W_std=1.2, b_std=0.3)), stax.Identity()),
                        stax.FanInSum(), stax.Dense(2, W_std=0.8))
    x = _x(5, 3)
    _, p = layer.init_fn(1, x.shape)
    z = _dense(x, p[0], 1.5, 0.1)
    h = _dense(_relu(z), p[2][0][1], 1.2, 0.3) + z
    expected = _dense(h, p[4], 0.8)
    assert _rel(apply(layer, p, x), expected) < 1e-14
    assert _rel(layer.apply_fn(p, x), expected) < 1e-14


def test_apply_layernorm():
    layer = stax.serial(stax.Dense(7, W_std=1.3, b_std=0.5), stax.LayerNorm(eps=1e-3), stax.Erf(),
                        stax.Dense(4), stax.LayerNorm(), stax.Dense(1, b_std=0.2))
    x = _x(4, 3, key=1)
    _, p = layer.init_fn(2, x.shape)
    h = erf(_layernorm(_dense(x, p[0], 1.3, 0.5), 1e-3))
    expected = _dense(_layernorm(_dense(h, p[3])), p[5], 1.0, 0.2)
    assert _rel(apply(layer, p, x), expected) < 1e-14


def test_apply_fanin_prod_and_several_inputs():
    layer = stax.serial(stax.FanOut(3), stax.parallel(stax.Dense(4, b_std=0.2), stax.serial(stax.Dense(4), stax.Sin()),
                                                      stax.Identity()),
                        stax.FanInProd(), stax.Dense(2, W_std=1.1, b_std=0.1))
    x = _x(5, 4, key=2)
    _, p = layer.init_fn(3, x.shape)
    prod = _dense(x, p[1][0], 1.0, 0.2) * np.sin(_dense(x, p[1][1][0])) * x
    assert _rel(apply(layer, p, x), _dense(prod, p[3], 1.1, 0.1)) < 1e-14
    # a layer of several inputs takes (and returns) lists
    branches = stax.parallel(stax.Dense(3, b_std=0.1), stax.Relu())
    x2 = _x(5, 3, key=3)
    _, q = branches.init_fn(4, [x.shape, x2.shape])
    out = apply(branches, q, [x, x2])
    assert isinstance(out, list) and _rel(out[0], _dense(x, q[0], 1.0, 0.1)) < 1e-14 and _rel(out[1], _relu(x2)) == 0
    assert _rel(apply(stax.FanInProd(), (), [x2, x2 + 1]), x2 * (x2 + 1)) == 0


def test_apply_mixed_activations():
    acts = [(stax.Relu(), _relu), (stax.Erf(1.3, 0.7, -0.2), lambda z: 1.3 * erf(0.7 * z) - 0.2), (stax.Gelu(), _gelu),
            (stax.Gelu(approximate=True), _gelu_tanh), (stax.LeakyRelu(0.1), lambda z: np.where(z > 0, z, 0.1 * z)),
            (stax.Sin(1.2, 0.7, 0.3), lambda z: 1.2 * np.sin(0.7 * z + 0.3)), (stax.Abs(), np.abs),
            (stax.ElementwiseNumerical(np.arctan, 32), np.arctan), (stax.Tanh(), np.tanh),
            (stax.Exp(0.5, 0.3), lambda z: 0.5 * np.exp(0.3 * z))]
    layers = [stax.Dense(6, W_std=1.4, b_std=0.1)]
    for act, _ in acts:
        layers += [act, stax.Dense(6, W_std=1.3, b_std=0.05)]
    layer = stax.serial(*layers[:-1], stax.Dense(2, b_std=0.2))
    x = _x(4, 3, key=4)
    _, p = layer.init_fn(5, x.shape)
    h = _dense(x, p[0], 1.4, 0.1)
    for i, (_, phi) in enumerate(acts):
        last = i == len(acts) - 1
        h = _dense(phi(h), p[2 * i + 2], 1.0 if last else 1.3, 0.2 if last else 0.05)
    assert _rel(apply(layer, p, x), h) < 1e-13
    # float32 in, float32 out (computed in float64)
    out32 = apply(layer, p, x.astype(np.float32))
    assert out32.dtype == np.float32 and _rel(out32, apply(layer, p, x.astype(np.float32).astype(np.float64))) < 1e-7


def test_apply_standard_parameterization_and_raw_params():
    layer = stax.serial(stax.Dense(9, W_std=1.5, b_std=0.1, parameterization="standard"), stax.Relu(),
                        stax.Dense(4, W_std=1.2, parameterization="standard"), stax.Erf(),
                        stax.Dense(3, W_std=1.1, b_std=0.3, parameterization="standard"))
    x = _x(5, 6, key=5)
    _, p = layer.init_fn(6, x.shape)
    assert np.std(p[0][0]) < 1.5 / np.sqrt(6) * 1.5  # stored scaled
    expected = _dense(erf(_dense(_relu(_dense(x, p[0], standard=True)), p[2], standard=True)), p[4], standard=True)
    assert _rel(apply(layer, p, x), expected) < 1e-14
    # neural-tangents' params may come as lists, with 1-D biases, as any array-like
    raw = [(p[0][0].tolist(), p[0][1].reshape(-1)), [], (p[2][0], None), (), (p[4][0].astype(np.float32), p[4][1])]
    assert _rel(apply(layer, raw, x), apply(layer, p, x)) < 1e-6


# -- empirical NTK against finite differences ------------------------------------------------------

def _leaves(tree):
    if tree is None:
        return []
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in _leaves(t)]
    return [np.asarray(tree, dtype=np.float64)]


def _rebuild(tree, arrays):
    if tree is None:
        return None
    if isinstance(tree, (tuple, list)):
        return tuple(_rebuild(t, arrays) for t in tree)
    return next(arrays)


def _with_vector(tree, vector):
    parts, start = [], 0
    for leaf in _leaves(tree):
        parts.append(vector[start:start + leaf.size].reshape(leaf.shape))
        start += leaf.size
    return _rebuild(tree, iter(parts))


def _jacobian(layer, params, x, eps=1e-6):
    """d f(x) / d theta by central differences: (n, out_dim, n_params)."""
    theta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(params)])
    columns = []
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += eps
        down[i] -= eps
        columns.append((apply(layer, _with_vector(params, up), x) - apply(layer, _with_vector(params, down), x))
                       / (2 * eps))
    return np.stack(columns, axis=-1)


TREES = {
    "layernorm": (stax.serial(stax.Dense(5, W_std=1.3, b_std=0.2), stax.LayerNorm(eps=1e-3), stax.Erf(),
                              stax.Dense(4, W_std=1.1), stax.LayerNorm(), stax.Gelu(),
                              stax.Dense(2, b_std=0.1)), 3),
    "residual": (stax.serial(stax.Dense(4, b_std=0.1), stax.FanOut(2),
                             stax.parallel(stax.serial(stax.Relu(), stax.Dense(4, W_std=1.2, b_std=0.3)),
                                           stax.Identity()),
                             stax.FanInSum(), stax.Tanh(), stax.Dense(3, W_std=0.9, b_std=0.2)), 3),
    "fanin_prod": (stax.serial(stax.FanOut(3),
                               stax.parallel(stax.Dense(4, b_std=0.2), stax.serial(stax.Dense(4), stax.Sin()),
                                             stax.Identity()),
                               stax.FanInProd(), stax.LayerNorm(), stax.Dense(2, W_std=1.2)), 4),
    "standard": (stax.serial(stax.Dense(6, W_std=1.4, b_std=0.1, parameterization="standard"),
                             stax.ElementwiseNumerical(np.arctan, 16), stax.FanOut(2),
                             stax.parallel(stax.Dense(3, parameterization="standard"),
                                           stax.Dense(3, b_std=0.3, parameterization="standard")),
                             stax.FanInSum(), stax.Erf(), stax.Dense(2, W_std=1.1, b_std=0.2)), 2),
}


def assert_ntk_is_jacobian_product(layer, net, x1, x2):
    """The empirical NTK (full and traced, symmetric and cross) is J J^T, J by central differences;
    the empirical NNGP is f f^T / out_dim."""
    j1, j2 = _jacobian(layer, net.params, x1), _jacobian(layer, net.params, x2)
    for a, b, ja, jb in ((x1, None, j1, j1), (x1, x2, j1, j2)):
        full = np.einsum("ikp,jlp->ijkl", ja, jb)
        assert _rel(net.ntk(a, b, trace=False), full) < 1e-8  # measured: 2.7e-10 (vectors), 1.4e-9 (images) at most
        assert _rel(net.ntk(a, b), np.einsum("ijkk->ij", full) / full.shape[2]) < 1e-8
    f1, f2 = apply(layer, net.params, x1), apply(layer, net.params, x2)
    assert _rel(net.nngp(x1, x2), f1 @ f2.T / f1.shape[1]) < 1e-14
    assert _rel(net.apply(x1), f1) == 0


@pytest.mark.parametrize("name", sorted(TREES))
def test_ntk_is_jacobian_product(name):
    layer, d = TREES[name]
    assert_ntk_is_jacobian_product(layer, layer.init(d, seed=7), _x(4, d, key=10), _x(3, d, key=11))


def test_leading_fanin_of_one_input():
    tail = stax.serial(stax.Dense(4, W_std=1.3, b_std=0.4), stax.Gelu(approximate=True), stax.Dense(1))
    layer = stax.serial(stax.FanInSum(), tail)
    _, p = tail.init_fn(0, (-1, 3))
    net = ComposedNetwork.from_params(layer, ((), p))
    x = _x(4, 3, key=14)
    assert _rel(net.apply(x), apply(tail, p, x)) == 0 and _rel(net.ntk(x, x[:2]), tail.init(3).ntk(x, x[:2])) < 1e-15


def test_chain_agrees_with_the_core_network():
    """A plain chain is both an ``MLP`` (the Rust core's Network) and a composed network."""
    mlp = ntkfast.MLP(2, "erf", W_std=1.4, b_std=0.2, readout_W_std=1.1, readout_b_std=0.3)
    layer = stax.serial(stax.Dense(16, W_std=1.4, b_std=0.2), stax.Erf(), stax.Dense(16, W_std=1.4, b_std=0.2),
                        stax.Erf(), stax.Dense(3, W_std=1.1, b_std=0.3))
    net = layer.init(5, seed=3)
    core = ntkfast.Network.from_params(mlp, net.params)
    x1, x2 = _x(6, 5, key=12), _x(4, 5, key=13)
    assert _rel(net.apply(x1), core.apply(x1)) < 1e-14  # measured: 3.2e-16 at most
    assert _rel(net.ntk(x1, x2), core.ntk(x1, x2)) < 1e-14
    assert _rel(net.ntk(x1, trace=False), core.ntk(x1, trace=False)) < 1e-14
    assert _rel(net.nngp(x1, x2), core.nngp(x1, x2)) < 1e-14
    y = np.sin(x1[:, :3])
    h1 = net.train(x1, y, learning_rate=0.5, steps=20, x_test=x2, y_test=np.cos(x2[:, :3]), track_kernel=True)
    h2 = core.train(x1, y, learning_rate=0.5, steps=20, x_test=x2, y_test=np.cos(x2[:, :3]), track_kernel=True)
    for field in ("step", "time", "train_loss", "test_loss", "param_change", "kernel_drift"):
        assert np.allclose(getattr(h1, field), getattr(h2, field), rtol=1e-13, atol=0), field  # measured 1.3e-15
    assert _rel(net.apply(x2), core.apply(x2)) < 1e-14


# -- training -------------------------------------------------------------------------------------

def assert_one_step_is_gradient_descent(layer, net, x, y, learning_rate=0.3):
    """One training step moves the parameters by -learning_rate times the finite-difference
    gradient of 0.5 * mean((f - y)^2), and the history records the losses before and after."""
    before, f0 = net.params, net.apply(x)
    jac = _jacobian(layer, before, x)
    history = net.train(x, y, learning_rate=learning_rate, steps=1)
    assert history.train_loss[0] == pytest.approx(0.5 * np.mean((f0 - y) ** 2), rel=1e-14)
    gradient = np.einsum("ikp,ik->p", jac, f0 - y) / y.size
    theta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(before)])
    after = np.concatenate([leaf.reshape(-1) for leaf in _leaves(net.params)])
    assert _rel(after - theta, -learning_rate * gradient) < 1e-8  # measured: 3.3e-10 (vectors), 4e-10 (images)
    assert history.train_loss[1] == pytest.approx(0.5 * np.mean((net.apply(x) - y) ** 2), rel=1e-14)


def test_train_step_is_gradient_descent_on_the_mean_squared_error():
    layer, d = TREES["residual"]
    assert_one_step_is_gradient_descent(layer, layer.init(d, seed=8), _x(5, d, key=20), _x(5, 3, key=21))


def test_training_decreases_the_loss():
    layer = stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.FanOut(2),
                        stax.parallel(stax.serial(stax.Relu(), stax.Dense(64, W_std=1.3)), stax.Identity()),
                        stax.FanInSum(), stax.LayerNorm(), stax.Erf(), stax.Dense(2, b_std=0.1))
    x, xt = _x(12, 3, key=22), _x(5, 3, key=23)
    y, yt = np.stack([np.sin(x.sum(1)), x[:, 0]], 1), np.stack([np.sin(xt.sum(1)), xt[:, 0]], 1)
    net = layer.init(3, seed=9)
    history = net.train(x, y, learning_rate=1.0, steps=150, x_test=xt, y_test=yt, record_every=50, track_kernel=True)
    assert history.train_loss.shape == (151,) and list(history.step) == [0, 50, 100, 150]
    assert history.train_loss[-1] < 0.05 * history.train_loss[0]
    assert np.all(np.diff(history.train_loss) < 1e-12)  # a stable learning rate: monotone
    assert history.test_loss.shape == (4,) and history.param_change[0] == 0 < history.param_change[-1]
    assert history.kernel_drift[0] == 0 < history.kernel_drift[-1] < 0.5


def _gd_on_linear_model(theta_train, theta_test, f0, ft0, y, lr, steps):
    """Gradient descent on 0.5 mean((f - y)^2) of f = f0 + J delta, in function space."""
    n, k = y.shape
    f, ft = f0.reshape(-1).copy(), ft0.reshape(-1).copy()
    for _ in range(steps):
        r = (f - y.reshape(-1)) / y.size
        f, ft = f - lr * theta_train @ r, ft - lr * theta_test @ r
    return f.reshape(n, k), ft.reshape(-1, k)


def test_linearized_network_is_gradient_descent_on_the_linear_model():
    layer, d = TREES["layernorm"]
    net = layer.init(d, seed=10)
    x, xt, y = _x(6, d, key=24), _x(4, d, key=25), _x(6, 2, key=26)
    n, k = y.shape
    theta = net.ntk(x, trace=False).transpose(0, 2, 1, 3).reshape(n * k, n * k)
    theta_test = net.ntk(xt, x, trace=False).transpose(0, 2, 1, 3).reshape(-1, n * k)
    lr = y.size / np.linalg.eigvalsh(theta)[-1]  # half the largest stable learning rate
    lin = net.linearize()
    assert _rel(lin.apply(x), net.apply(x)) == 0
    history = lin.train(x, y, learning_rate=lr, steps=40, x_test=xt, y_test=_x(4, 2, key=27))
    f, ft = _gd_on_linear_model(theta, theta_test, net.apply(x), net.apply(xt), y, lr, 40)
    assert _rel(lin.apply(x), f) < 1e-13 and _rel(lin.apply(xt), ft) < 1e-13  # measured: 8.1e-16
    assert history.kernel_drift is None and np.all(np.diff(history.train_loss) < 0)
    # the linearised outputs are f0 + J delta, J by central differences
    jac = _jacobian(layer, net.params, xt)
    delta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(lin.delta)])
    assert _rel(lin.apply(xt) - net.apply(xt), jac @ delta) < 1e-8  # measured: 1.8e-10
    assert history.param_change[-1] == pytest.approx(np.linalg.norm(delta) / np.linalg.norm(
        np.concatenate([leaf.reshape(-1) for leaf in _leaves(net.params)])), rel=1e-12)


def test_network_follows_its_linearization():
    """Lazy training (Lee et al. 2019): at a small learning rate, and for a wide network at a
    normal one, the network stays close to its linearisation."""
    layer = stax.serial(stax.Dense(256, W_std=1.5, b_std=0.1), stax.FanOut(2),
                        stax.parallel(stax.serial(stax.Relu(), stax.Dense(256, W_std=1.3, b_std=0.1)),
                                      stax.Identity()),
                        stax.FanInSum(), stax.LayerNorm(), stax.Erf(), stax.Dense(1, W_std=1.2, b_std=0.1))
    x = _x(8, 3, key=28)
    y = np.sin(x.sum(1, keepdims=True))
    # measured: outputs 1.3e-4 and 1.6e-3 of their change apart, losses 9e-7 and 8e-4
    for lr, steps, tol, loss_tol in ((1e-3, 10, 1e-3, 1e-5), (1.0, 30, 1e-2, 5e-3)):
        net = layer.init(3, seed=11)
        lin, f0 = net.linearize(), net.apply(x)
        h_net = net.train(x, y, learning_rate=lr, steps=steps)
        h_lin = lin.train(x, y, learning_rate=lr, steps=steps)
        moved = np.abs(net.apply(x) - f0).max()
        assert moved > 1e-3 and np.abs(net.apply(x) - lin.apply(x)).max() < tol * moved
        assert _rel(h_net.train_loss, h_lin.train_loss) < loss_tol


def test_min_norm_solution_fits_the_linear_model():
    layer, d = TREES["fanin_prod"]
    net = layer.init(d, seed=12)
    x, y = _x(3, d, key=29), _x(3, 2, key=30)
    solution = net.min_norm_solution(x, y)
    delta = np.concatenate([leaf.reshape(-1) for leaf in _leaves(solution.delta)])
    jac = _jacobian(layer, net.params, x).reshape(6, -1)
    assert _rel(net.apply(x).reshape(-1) + jac @ delta, y.reshape(-1)) < 1e-8  # measured: 6.8e-10
    assert solution.norm == pytest.approx(np.linalg.norm(delta), rel=1e-12)
    assert _rel(delta, np.linalg.pinv(jac) @ (y - net.apply(x)).reshape(-1)) < 1e-8  # measured: 9.3e-10


# -- the network object ---------------------------------------------------------------------------

def test_network_api_copies_and_pickles():
    layer, d = TREES["residual"]
    net = ComposedNetwork.initialize(layer, d, np.random.default_rng(0))
    assert (net.in_dim, net.out_dim) == (d, 3) and "ComposedNetwork(" in repr(net)
    assert net.params[0][1].shape == (1, 4) and net.params[1] == ()
    key = np.array([0, 42], dtype=np.uint32)  # a JAX PRNGKey's words
    assert _rel(layer.init(d, seed=key).params[0][0], ComposedNetwork.initialize(layer, d, key).params[0][0]) == 0
    x = _x(4, d, key=31)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), net.copy(), ComposedNetwork.from_params(
            layer, net.params)):
        assert _rel(other.apply(x), net.apply(x)) == 0 and other is not net
    mine = net.params
    other = ComposedNetwork.from_params(layer, mine)
    mine[0][0][:] = 0  # the network holds its own arrays
    assert _rel(other.apply(x), net.apply(x)) == 0
    twin = net.copy()
    twin.train(x, np.zeros((4, 3)), learning_rate=0.1, steps=2)
    assert _rel(twin.apply(x), net.apply(x)) > 1e-6  # independent parameters
    lin = net.linearize()
    lin.train(x, np.ones((4, 3)), learning_rate=0.1, steps=3)
    for other in (pickle.loads(pickle.dumps(lin)), copy.copy(lin)):
        assert _rel(other.apply(x), lin.apply(x)) == 0 and _rel(other.delta[0][0], lin.delta[0][0]) == 0
    assert _rel(net.apply(x), apply(layer, net.params, x)) == 0  # linearising left the network alone


def test_errors_name_the_argument():
    layer, d = TREES["residual"]
    net = layer.init(d, seed=0)
    p = net.params
    with pytest.raises(TypeError, match=r"params: params is for a serial of 6 layers .* length 5"):
        apply(layer, p[:5], _x(2, d))
    with pytest.raises(TypeError, match=r"params: params\[0\] is for Dense\(4.*pair"):
        apply(layer, (p[0][0],) + p[1:], _x(2, d))
    with pytest.raises(TypeError, match=r"params: params\[1\] is for FanOut\(2\), which has no parameters"):
        apply(layer, (p[0], p[0]) + p[2:], _x(2, d))
    with pytest.raises(ValueError, match=r"params: params\[5\]\[0\] .* must have shape \(fan_in, 3\)"):
        apply(layer, p[:5] + ((np.ones((4, 2)), None),), _x(2, d))
    with pytest.raises(ValueError, match=r"params: params\[0\]\[0\] .* NaN"):
        apply(layer, ((np.full_like(p[0][0], np.nan), p[0][1]),) + p[1:], _x(2, d))
    with pytest.raises(ValueError, match=r"x, params: params\[0\]\[0\] .* gets inputs of 5 features"):
        apply(layer, p, _x(2, 5))
    with pytest.raises(ValueError, match="x: has 5 features, the network takes 3"):
        net.apply(_x(2, 5))
    with pytest.raises(ValueError, match="x2: contains NaN"):
        net.ntk(_x(2, d), np.full((2, d), np.nan))
    with pytest.raises(ValueError, match="x1: must be 2-D"):
        net.nngp(np.ones(d))
    with pytest.raises(ValueError, match=r"y: must have shape \(2, 3\)"):
        net.train(_x(2, d), np.ones(2), learning_rate=0.1, steps=1)
    with pytest.raises(ValueError, match="y_test: contains NaN"):
        net.train(_x(2, d), np.ones((2, 3)), learning_rate=0.1, steps=1, x_test=_x(1, d), y_test=[[np.nan] * 3])
    with pytest.raises(ValueError, match="layer: the network takes 1 inputs and returns 2"):
        ComposedNetwork.initialize(stax.FanOut(2), 3)
    with pytest.raises(MemoryError, match="x1: the empirical NTK needs about .* GiB"):
        net.ntk(np.broadcast_to(np.ones(d), (10**7, d)))  # checked before anything is allocated
    with pytest.raises(TypeError, match="trace: must be True or False"):
        net.ntk(_x(2, d), trace="no")
    with pytest.raises(ValueError, match=r"learning_rate: training diverged .* \(at step 1 of 5\)"):
        net.train(_x(3, d, scale=1e3), np.ones((3, 3)), learning_rate=1e300, steps=5)
    assert all(np.isfinite(a).all() for a in _leaves(net.params))  # the last finite parameters are kept


def test_init_refuses_weights_beyond_memory_naming_the_width():
    # NumPy's own MemoryError ("Unable to allocate 116. TiB ...") named no argument
    spec = stax.serial(stax.Dense(16), stax.Relu(), stax.Dense(1))
    with pytest.raises(MemoryError, match=r"^in_dim: Dense\(16.* W of shape \(1000000000000, 16\)"):
        spec.init(10**12)
    with pytest.raises(MemoryError, match=r"^input_shape: Dense\(16"):
        spec.init_fn(0, (-1, 10**12))
    with pytest.raises(MemoryError, match=r"^out_dim: Dense\(1000000000000.* \(3, 1000000000000\)"):
        stax.serial(stax.Dense(10**12), stax.Relu(), stax.Dense(1)).init(3)
    with pytest.raises(MemoryError, match=r"^out_dim: Dense\(1000000.* \(1000000, 1000000\)"):
        stax.serial(stax.Dense(10**6), stax.Relu(), stax.Dense(10**6), stax.Relu(), stax.Dense(1)).init(3)


def test_init_counts_the_weights_of_every_layer(monkeypatch):
    monkeypatch.setattr(ntkfast.finite, "_memory_allowance", lambda: 8 * 1000)  # 1000 floats
    stax.serial(stax.Dense(20), stax.Dense(20)).init(20)  # 2 x 21 x 20 = 840 floats
    with pytest.raises(MemoryError, match=r"^out_dim: Dense\(20.*\(besides the .* of the layers drawn before it\)"):
        stax.serial(stax.Dense(20), stax.Dense(20), stax.Dense(20)).init(20)
    with pytest.raises(MemoryError, match=r"^in_dim: Dense\(4"):
        stax.serial(stax.Dense(4), stax.Relu()).init(300)


def test_init_fn_checks_input_shape():
    spec = TREES["residual"][0]
    for shape, exc in [((-1, -3), ValueError), ((-1, 0), ValueError), ((-2, 3), ValueError), ((), ValueError),
                       ((-1, 3.5), TypeError), (3, TypeError), ((-1, True), TypeError)]:
        with pytest.raises(exc, match=r"^input_shape"):
            spec.init_fn(0, shape)
    with pytest.raises(ValueError, match=r"^input_shape\[1\]: the feature dimension"):
        stax.parallel(stax.Dense(2), stax.Dense(2)).init_fn(0, [(-1, 3), (5, -1)])
    assert spec.init_fn(0, (7, np.int64(3)))[0] == (7, 3)


def test_nngp_checks_memory_before_allocating():
    net = TREES["residual"][0].init(3, seed=0)
    huge = np.broadcast_to(np.ones(3), (200_000, 3))
    with pytest.raises(MemoryError, match=r"^x1: the empirical NNGP of 200000 x 200000 entries"):
        net.nngp(huge)
    with pytest.raises(MemoryError, match=r"^x1, x2: the empirical NNGP of 200000 x 100000 entries"):
        net.nngp(huge, huge[:100_000])


def _misbehaving(value):
    def f(x):  # finite on the constructor's probe (7 points), not in the network
        return np.full_like(x, value) if x.size > 7 else np.tanh(x)
    return f


def test_user_activation_returning_nan_is_named():
    # it was blamed on the inputs ("x: the network's values overflow float64")
    fn = stax.serial(stax.Dense(4, b_std=0.1), stax.ElementwiseNumerical(_misbehaving(np.nan), deg=16), stax.Dense(1))
    net = fn.init(3)
    with pytest.raises(ValueError, match=r"^fn: the activation of ElementwiseNumerical\(f, deg=16\) returned nan at x"):
        net.apply(_x(4, 3))
    with pytest.raises(ValueError, match=r"^fn: "):
        net.ntk(_x(4, 3))  # phi' by central differences
    df = stax.serial(stax.Dense(4, b_std=0.1),
                     stax.ElementwiseNumerical(np.tanh, deg=16, df=_misbehaving(np.inf)), stax.Dense(1))
    net = df.init(3)
    net.apply(_x(4, 3))  # the derivative is not needed
    with pytest.raises(ValueError, match=r"^df: the derivative of .* returned inf at x"):
        net.ntk(_x(4, 3))
    with pytest.raises(ValueError, match=r"^df: "):  # not "learning_rate: training diverged"
        net.train(_x(4, 3), np.ones((4, 1)), learning_rate=0.1, steps=2)
    layer = stax.Elementwise(ntkfast.activations.Numerical(np.tanh, _misbehaving(np.nan)))
    with pytest.raises(ValueError, match=r"^dfn: the derivative"):  # activations.Numerical's name
        stax.serial(stax.Dense(4), layer, stax.Dense(1)).init(3).ntk(_x(4, 3))


def test_layernorm_eps0_on_equal_features_is_a_0_over_0_not_an_overflow():
    net = stax.serial(stax.LayerNorm(eps=0.0), stax.Dense(1)).init(3)
    x = _x(3, 3)
    x[1] = 2.0  # features all equal: variance 0
    with pytest.raises(ValueError, match=r"^x: LayerNorm\(eps=0.0\) divides 0 by 0 on row 1 of x .*eps > 0") as caught:
        net.apply(x)
    assert "overflow" not in str(caught.value)
    with pytest.raises(ValueError, match=r"^x1: LayerNorm\(eps=0.0\) divides 0 by 0 on row 1 of x1"):
        net.ntk(x)
    with pytest.raises(ValueError, match=r"^x1, x2: .*divides 0 by 0"):
        net.ntk(_x(2, 3), x)
    assert np.isfinite(stax.serial(stax.LayerNorm(), stax.Dense(1)).init(3).apply(x)).all()  # eps > 0


def test_deeply_nested_trees_train_like_flat_ones():
    # a serial nested 1500 times (beyond Python's recursion limit for recursive passes): the same
    # network as the flat serial of its layers, with the same draws
    pair = [stax.Relu(), stax.Dense(4, W_std=2**0.5, b_std=0.1)]
    nested = stax.Dense(4, b_std=0.1)
    for _ in range(1500):
        nested = stax.serial(nested, *pair)
    flat = stax.serial(stax.Dense(4, b_std=0.1), *pair * 1500)
    a, b = nested.init(3, seed=1), flat.init(3, seed=1)
    x, y = _x(5, 3), _x(5, 4, key=1)
    np.testing.assert_array_equal(a.apply(x), b.apply(x))
    np.testing.assert_array_equal(a.ntk(x), b.ntk(x))
    ha = a.train(x, y, learning_rate=0.05, steps=2)
    hb = b.train(x, y, learning_rate=0.05, steps=2)
    np.testing.assert_array_equal(ha.train_loss, hb.train_loss)
    la, lb = a.linearize(), b.linearize()
    la.train(x, y, learning_rate=0.05, steps=1)
    lb.train(x, y, learning_rate=0.05, steps=1)
    np.testing.assert_array_equal(la.apply(x), lb.apply(x))
    np.testing.assert_array_equal(_leaves(apply(nested, a.params, x)), _leaves(a.apply(x)))


# -- neural-tangents ------------------------------------------------------------------------------

def _golden():
    with np.load(GOLDEN) as f:
        data = dict(f)
    return data, json.loads(str(data["meta"]))["networks"]


def _shape(entry) -> tuple:
    """The inputs' shape without the batch axis: (width,), or an image's (height, width, channels)."""
    return tuple(entry["in_dim"]) if isinstance(entry["in_dim"], list) else (entry["in_dim"],)


def _golden_network(entry, data):
    layer = eval(entry["source"], {"stax": stax, "T": np})  # noqa: S307 - the file's own sources
    _, template = layer.init_fn(0, (-1,) + _shape(entry))
    arrays = [data[f"{entry['name']}/p{i}"] for i in range(entry["arrays"])]
    assert [a.shape for a in arrays] == [np.shape(a) for a in _leaves(template)]
    return layer, _rebuild(template, iter(arrays))


@pytest.mark.parametrize("index", range(10))
def test_golden_neural_tangents(index):
    data, networks = _golden()
    entry = networks[index]
    name = entry["name"]
    layer, params = _golden_network(entry, data)
    x1, x2 = data[f"{name}/x1"], data[f"{name}/x2"]
    assert _rel(layer.apply_fn(params, x1), data[f"{name}/apply"]) < 1e-12
    assert len(networks) == 10
    shape = _shape(entry)
    net = ComposedNetwork.from_params(layer, params, shape if len(shape) > 1 else None)
    for key, value in (("ntk_full_11", net.ntk(x1, trace=False)), ("ntk_trace_11", net.ntk(x1)),
                       ("ntk_full_12", net.ntk(x1, x2, trace=False)), ("ntk_trace_12", net.ntk(x1, x2)),
                       ("nngp_12", net.nngp(x1, x2))):
        assert value.shape == data[f"{name}/{key}"].shape
        assert _rel(value, data[f"{name}/{key}"]) < 1e-10, key


def test_live_neural_tangents():
    """The same networks with parameters drawn by neural-tangents now (when it is importable)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    jax = pytest.importorskip("jax")
    nt = pytest.importorskip("neural_tangents")
    jax.config.update("jax_enable_x64", True)
    data, networks = _golden()
    for index, entry in enumerate(networks):
        nt_layer = eval(entry["source"], {"stax": nt.stax, "T": jax.numpy})  # noqa: S307
        shape = _shape(entry)
        x1 = np.random.default_rng(40 + index).standard_normal((4,) + shape)
        x2 = np.random.default_rng(50 + index).standard_normal((3,) + shape)
        _, nt_params = nt_layer[0](jax.random.PRNGKey(100 + index), x1.shape)
        layer = eval(entry["source"], {"stax": stax, "T": np})  # noqa: S307
        params = _rebuild(layer.init_fn(0, x1.shape)[1], iter(_leaves(nt_params)))
        assert _rel(layer.apply_fn(params, x1), np.asarray(nt_layer[1](nt_params, x1))) < 1e-12
        expected = np.asarray(nt.empirical_ntk_fn(nt_layer[1], trace_axes=())(x1, x2, nt_params))
        net = ComposedNetwork.from_params(layer, params, shape if len(shape) > 1 else None)
        assert _rel(net.ntk(x1, x2, trace=False), expected) < 1e-10


# -- Monte Carlo: wide random networks approach the infinite-width kernels --------------------------

def _monte_carlo(layer, x, get, draws, in_dim):
    samples = np.array([getattr(layer.init(in_dim, seed=100 + i), get)(x) for i in range(draws)])
    return samples.mean(0), samples.std(0, ddof=1) / np.sqrt(draws)


def _assert_approaches(mean, stderr, exact, what):
    """Within 10% of the exact kernel (Frobenius), and no entry more than 6 standard errors off."""
    z = np.abs(mean - exact) / np.maximum(stderr, 1e-9 * np.abs(exact).max())
    assert np.linalg.norm(mean - exact) / np.linalg.norm(exact) < 0.1, what
    assert z.max() < 6, (what, z.max())


def test_monte_carlo_chain_approaches_mlp_kernel():
    mlp = ntkfast.MLP(2, "relu", W_std=1.5, b_std=0.1, readout_W_std=1.2, readout_b_std=0.2)
    x = _x(5, 4, key=60)
    exact = mlp.kernel(x)

    def chain(width, out):
        return stax.serial(stax.Dense(width, W_std=1.5, b_std=0.1), stax.Relu(),
                           stax.Dense(width, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(out, W_std=1.2, b_std=0.2))

    _assert_approaches(*_monte_carlo(chain(1024, 1), x, "ntk", 12, 4), exact.ntk, "ntk")
    _assert_approaches(*_monte_carlo(chain(1024, 1024), x, "nngp", 12, 4), exact.nngp, "nngp")


MONTE_CARLO = {
    "residual": "stax.serial(stax.Dense(WIDTH, W_std=1.5, b_std=0.1), stax.FanOut(2), stax.parallel(stax.serial("
                "stax.Relu(), stax.Dense(WIDTH, W_std=1.4, b_std=0.1)), stax.Identity()), stax.FanInSum(), "
                "stax.Relu(), stax.Dense(OUT, W_std=1.2, b_std=0.1))",
    "layernorm": "stax.serial(stax.Dense(WIDTH, W_std=1.4, b_std=0.2), stax.LayerNorm(), stax.Erf(), "
                 "stax.Dense(WIDTH, W_std=1.2, b_std=0.1), stax.LayerNorm(), stax.Relu(), "
                 "stax.Dense(OUT, W_std=1.1, b_std=0.1))",
    "fanin_prod": "stax.serial(stax.FanOut(2), stax.parallel(stax.serial(stax.Dense(WIDTH, W_std=1.3, b_std=0.2), "
                  "stax.Relu()), stax.serial(stax.Dense(WIDTH, W_std=1.1, b_std=0.3), stax.Erf())), stax.FanInProd(), "
                  "stax.Dense(OUT, W_std=1.2, b_std=0.1))",
    "standard": "stax.serial(stax.Dense(WIDTH, W_std=1.5, b_std=0.1, parameterization='standard'), stax.Relu(), "
                "stax.Dense(WIDTH, W_std=1.3, b_std=0.2, parameterization='standard'), stax.Gelu(), "
                "stax.Dense(OUT, W_std=1.2, b_std=0.1, parameterization='standard'))",
}


@pytest.mark.skipif(not hasattr(_core, "Model"), reason="layer.kernel needs the core's Model (ntkfast.stax's "
                                                        "compiled layer trees), which this build of _core lacks")
@pytest.mark.parametrize("name", sorted(MONTE_CARLO))
def test_monte_carlo_composed_approaches_layer_kernel(name):
    """Traced empirical NTK (one output) and empirical NNGP (1024 outputs) averaged over 12 networks
    of width 1024: within 10% (Frobenius) and 6 standard errors of ``layer.kernel`` (measured: 1.7-4.7% and
    at most 4.5 standard errors; against neural-tangents' kernels over other draws, at most 9% and 4.5)."""
    x = _x(6, 4, key=61)
    for get, out in (("ntk", 1), ("nngp", 1024)):
        layer = eval(MONTE_CARLO[name].replace("WIDTH", "1024").replace("OUT", str(out)), {"stax": stax})  # noqa: S307
        _assert_approaches(*_monte_carlo(layer, x, get, 12, 4), layer.kernel(x, get=get), get)
