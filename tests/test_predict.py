"""Gradient-flow and GP predictions against direct matrix-function evaluation (scipy.linalg.expm)."""

import warnings

import numpy as np
import pytest
from scipy.linalg import expm

import ntkfast
from ntkfast import linalg, predict


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x, xt = rng.standard_normal((14, 5)), rng.standard_normal((6, 5))
    y = rng.standard_normal((14, 3))
    mlp = ntkfast.MLP(2, "erf", W_std=1.5, b_std=0.2)
    return dict(x=x, xt=xt, y=y, mlp=mlp, k=mlp.kernel(x), kt=mlp.kernel(xt, x), ktt=mlp.kernel(xt))


def test_gradient_flow_matches_the_matrix_exponential(problem):
    k, kt, y = problem["k"].ntk, problem["kt"].ntk, problem["y"]
    n = y.size
    rng = np.random.default_rng(1)
    f0, ft0 = rng.standard_normal(y.shape), rng.standard_normal((6, 3))
    flow = predict.GradientFlow(k, y)
    for t in (0.0, 0.3, 7.0, 250.0):
        e = expm(-k * t / n)
        np.testing.assert_allclose(flow.train(t, f0), y + e @ (f0 - y), rtol=1e-9, atol=1e-10)
        want = ft0 + kt @ np.linalg.solve(k, (np.eye(14) - e) @ (y - f0))
        np.testing.assert_allclose(flow.test(t, kt, f0, ft0), want, rtol=1e-8, atol=1e-9)
    # one call for an array of times: the leading axes
    times = np.array([[0.3, 7.0], [1.0, 2.0]])
    assert flow.train(times, f0).shape == (2, 2, 14, 3)
    np.testing.assert_allclose(flow.train(times, f0)[0, 1], flow.train(7.0, f0))


def test_residual_decays_along_each_eigenvector(problem):
    """The residual's coefficients in the flow's eigenbasis, against expm applied to f0 - y."""
    k, y = problem["k"].ntk, problem["y"]
    n = y.size
    f0 = np.random.default_rng(2).standard_normal(y.shape)
    flow = predict.GradientFlow(k, y)
    v, lam = flow.eigenvectors, flow.eigenvalues
    scale = np.abs(k).max()
    # the basis is an orthonormal eigenbasis of k, eigenvalues ascending (checked against k itself)
    np.testing.assert_allclose(v.T @ v, np.eye(14), atol=1e-13)
    np.testing.assert_allclose(k @ v, v * lam, atol=1e-12 * scale)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(k), rtol=1e-10, atol=1e-13 * scale)
    for t in (0.0, 3.0, 40.0, 400.0):
        want = v.T @ (expm(-k * t / n) @ (f0 - y))
        np.testing.assert_allclose(flow.residual(t, f0), want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(flow.residual(0.0), -v.T @ y, atol=1e-12)
    np.testing.assert_allclose(flow.residual([1.0, 2.0], f0)[1], flow.residual(2.0, f0), rtol=1e-14)
    # each direction shrinks by e over its timescale N / eigenvalue; larger eigenvalues converge faster
    np.testing.assert_allclose(flow.timescales, n / np.linalg.eigvalsh(k), rtol=1e-10)
    assert np.all(np.diff(flow.timescales) <= 0)


def test_time_scaling_identities(problem):
    k, kt, y = problem["k"].ntk, problem["kt"].ntk, problem["y"]
    f = predict.gradient_descent_mse(k, y)
    # scaling the kernel by c is scaling time by c
    g = predict.gradient_descent_mse(3.0 * k, y)
    np.testing.assert_allclose(g(2.0, 0.0, 0.0, 3.0 * kt)[1], f(6.0, 0.0, 0.0, kt)[1], rtol=1e-10)
    # the learning rate multiplies time
    h = predict.gradient_descent_mse(k, y, learning_rate=0.5)
    np.testing.assert_allclose(h(8.0), f(4.0), rtol=1e-12)
    # time is normalised by y.size: the first output of a doubled target set at 2t equals t
    doubled = predict.gradient_descent_mse(k, np.concatenate([y, y], axis=1))
    np.testing.assert_allclose(doubled(10.0, 0.0, 0.0, kt)[1][:, :3], f(5.0, 0.0, 0.0, kt)[1], rtol=1e-10)


def test_infinite_time_is_the_cholesky_solution(problem):
    m, x, xt, y = problem["mlp"], problem["x"], problem["xt"], problem["y"]
    k, kt = problem["k"], problem["kt"]
    for get in ("nngp", "ntk"):
        converged = m.predict(x, y, xt, t=None, get=get)
        np.testing.assert_allclose(converged, kt[get] @ np.linalg.solve(k[get], y), rtol=1e-8)
        np.testing.assert_allclose(m.predict(x, y, xt, t=np.inf, get=get), converged, rtol=1e-12)
        eig_inf = m.predict(x, y, xt, t=np.array([np.inf]), get=get)[0]
        np.testing.assert_allclose(eig_inf, converged, rtol=1e-6)
        np.testing.assert_allclose(m.predict(x, y, xt, t=1e9, get=get), converged, rtol=1e-6)
        np.testing.assert_array_equal(m.predict(x, y, None, t=None, get=get), y)


def test_zero_time_is_the_prior(problem):
    m, x, xt, y, ktt = problem["mlp"], problem["x"], problem["xt"], problem["y"], problem["ktt"]
    for get in ("nngp", "ntk"):
        g = m.predict(x, y, xt, t=0.0, get=get, compute_cov=True)
        np.testing.assert_array_equal(g.mean, np.zeros((6, 3)))
        np.testing.assert_allclose(g.cov, ktt.nngp, rtol=1e-12)
    f = predict.gradient_descent_mse(problem["k"].ntk, y)
    f0, ft0 = np.ones_like(y), np.full((6, 3), 2.0)
    tr, te = f(0.0, f0, ft0, problem["kt"].ntk)
    np.testing.assert_allclose(tr, f0)
    np.testing.assert_allclose(te, ft0)


def reference_covariance(get, t, k, kt, ktt, n):
    """neural-tangents' ensemble covariance, by matrix functions (expm, solve)."""
    if get == "nngp":
        a = k.nngp
        gain = np.linalg.solve(a, np.eye(len(a)) - expm(-2 * a * t / n)) if np.isfinite(t) else np.linalg.inv(a)
        return ktt.nngp - kt.nngp @ gain @ kt.nngp.T
    th = k.ntk
    gain = np.linalg.solve(th, np.eye(len(th)) - expm(-th * t / n)) if np.isfinite(t) else np.linalg.inv(th)
    p = kt.ntk @ gain
    cross = p @ kt.nngp.T
    return ktt.nngp + p @ k.nngp @ p.T - cross - cross.T


@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("t", [0.5, 5.0, 50.0, np.inf])
def test_ensemble_covariance_matches_matrix_functions(problem, get, t):
    m, x, xt, y = problem["mlp"], problem["x"], problem["xt"], problem["y"]
    g = m.predict(x, y, xt, t=t, get=get, compute_cov=True)
    want = reference_covariance(get, t, problem["k"], problem["kt"], problem["ktt"], y.size)
    np.testing.assert_allclose(g.cov, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())
    np.testing.assert_allclose(g.cov, g.cov.T, atol=1e-12 * np.abs(g.cov).max())
    assert np.linalg.eigvalsh(g.cov).min() > -1e-8 * np.abs(g.cov).max()
    assert g.covariance is g.cov


def test_training_set_covariance(problem):
    m, x, y, k = problem["mlp"], problem["x"], problem["y"], problem["k"]
    n = y.size
    g = m.predict(x, y, None, t=3.0, get="ntk", compute_cov=True)
    e = expm(-k.ntk * 3.0 / n)
    np.testing.assert_allclose(g.cov, e @ k.nngp @ e, rtol=1e-8, atol=1e-12)
    g = m.predict(x, y, None, t=3.0, get="nngp", compute_cov=True)
    np.testing.assert_allclose(g.cov, k.nngp @ expm(-2 * k.nngp * 3.0 / n), rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(m.predict(x, y, None, t=None, compute_cov=True).cov, np.zeros((14, 14)))


def test_several_times_share_one_decomposition_and_stack(problem):
    m, x, xt, y = problem["mlp"], problem["x"], problem["xt"], problem["y"]
    times = np.array([0.5, 5.0, 50.0])
    g = m.predict(x, y, xt, t=times, compute_cov=True)
    assert g.mean.shape == (3, 6, 3) and g.cov.shape == (3, 6, 6)
    for i, t in enumerate(times):
        single = m.predict(x, y, xt, t=t, compute_cov=True)
        np.testing.assert_allclose(g.mean[i], single.mean, rtol=1e-12)
        np.testing.assert_allclose(g.cov[i], single.cov, rtol=1e-12)
    both = m.predict(x, y, xt, t=5.0, get=("nngp", "ntk"))
    assert both._fields == ("nngp", "ntk")
    np.testing.assert_allclose(both.ntk, m.predict(x, y, xt, t=5.0, get="ntk"))


def test_one_dimensional_targets(problem):
    m, x, xt, y = problem["mlp"], problem["x"], problem["xt"], problem["y"]
    full = m.predict(x, y, xt, t=[1.0, 2.0])
    single = m.predict(x, y[:, 0], xt, t=[1.0, 2.0])
    # the normalisation N = y.size differs (14 vs 42): t=2 for 1-D is t=6 for 3 columns
    assert single.shape == (2, 6)
    np.testing.assert_allclose(single[1], m.predict(x, y, xt, t=6.0)[:, 0], rtol=1e-10)
    assert full.shape == (2, 6, 3)


@pytest.mark.parametrize("diag_reg, absolute", [(1e-4, False), (0.0, False), (0.05, True)])
def test_gp_inference_posteriors(problem, diag_reg, absolute):
    """neural-tangents' three posteriors, by plain NumPy solves: NNGP, the t = inf ensemble of NTK
    networks (NNGP-weighted covariance) and the GP with the NTK as its covariance (NTKGP)."""
    k, kt, ktt, y = problem["k"], problem["kt"], problem["ktt"], problem["y"]
    fn = predict.gp_inference(k, y, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)

    def reg(a):
        return a + (diag_reg if absolute else diag_reg * np.trace(a) / len(a)) * np.eye(len(a))

    out = fn(("nngp", "ntk", "ntkgp"), kt, ktt)
    assert out._fields == ("nngp", "ntk", "ntkgp")
    # NNGP: the Bayesian posterior
    np.testing.assert_allclose(out.nngp.mean, kt.nngp @ np.linalg.solve(reg(k.nngp), y), rtol=1e-8)
    np.testing.assert_allclose(out.nngp.cov, ktt.nngp - kt.nngp @ np.linalg.solve(reg(k.nngp), kt.nngp.T),
                               rtol=1e-7, atol=1e-10)
    # NTK: mean Theta_tx Theta^-1 y; cov K_tt + A^T K A - K_tx A - A^T K_xt with A = Theta^-1 Theta_xt
    # (the NNGP K unregularised, as neural-tangents)
    a = np.linalg.solve(reg(k.ntk), kt.ntk.T)
    ntk_mean = kt.ntk @ np.linalg.solve(reg(k.ntk), y)
    np.testing.assert_allclose(out.ntk.mean, ntk_mean, rtol=1e-8)
    cross = kt.nngp @ a
    np.testing.assert_allclose(out.ntk.cov, ktt.nngp + a.T @ k.nngp @ a - cross - cross.T, rtol=1e-7,
                               atol=1e-10 * np.abs(ktt.nngp).max())
    # NTKGP: the NTK as a GP covariance
    np.testing.assert_allclose(out.ntkgp.mean, ntk_mean, rtol=1e-8)
    np.testing.assert_allclose(out.ntkgp.cov, ktt.ntk - kt.ntk @ a, rtol=1e-7, atol=1e-10 * np.abs(ktt.ntk).max())
    # arrays instead of Kernels: "ntkgp" needs only the NTK
    ntkgp = predict.gp_inference(k.ntk, y, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)(
        "ntkgp", kt.ntk, ktt.ntk)
    np.testing.assert_allclose(ntkgp.cov, out.ntkgp.cov, rtol=1e-12, atol=1e-14)
    # means only without k_test_test; the training targets without k_test_train
    np.testing.assert_allclose(fn("ntk", kt), ntk_mean, rtol=1e-8)
    np.testing.assert_array_equal(fn("ntk"), y)
    default = fn(None, kt)
    assert default._fields == ("nngp", "ntk")


def regularized(a, diag_reg, absolute):
    return a + (diag_reg if absolute else diag_reg * np.trace(a) / len(a)) * np.eye(len(a))


@pytest.mark.parametrize("diag_reg, absolute", [(1e-3, False), (0.2, False), (1e-2, True), (0.5, True)])
@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_finite_time_with_diag_reg_matches_the_matrix_exponential(problem, diag_reg, absolute, get):
    """mean(t) = K_tx K_r^-1 (I - exp(-K_r t / N)) y with K_r = K + diag_reg (times the mean diagonal
    unless absolute) I; the covariances are those of reference_covariance with K_r in the flow."""
    m, x, xt, y = problem["mlp"], problem["x"], problem["xt"], problem["y"]
    k, kt, ktt = problem["k"], problem["kt"], problem["ktt"]
    n = y.size
    kr = regularized(k[get], diag_reg, absolute)
    times = np.array([0.5, 20.0, 300.0])
    g = m.predict(x, y, xt, t=times, get=get, compute_cov=True, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)
    for i, t in enumerate(times):
        e = expm(-kr * t / n)
        np.testing.assert_allclose(g.mean[i], kt[get] @ np.linalg.solve(kr, (np.eye(14) - e) @ y), rtol=1e-8,
                                   atol=1e-12)
        if get == "nngp":
            want = ktt.nngp - kt.nngp @ np.linalg.solve(kr, np.eye(14) - e @ e) @ kt.nngp.T
        else:
            p = kt.ntk @ np.linalg.solve(kr, np.eye(14) - e)
            cross = p @ kt.nngp.T
            want = ktt.nngp + p @ k.nngp @ p.T - cross - cross.T
        np.testing.assert_allclose(g.cov[i], want, rtol=1e-6, atol=1e-9 * np.abs(want).max())
    # on the training set: y + exp(-K_r t / N)(f_0 - y) with f_0 = 0
    train = m.predict(x, y, None, t=20.0, get=get, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)
    np.testing.assert_allclose(train, y - expm(-kr * 20.0 / n) @ y, rtol=1e-8, atol=1e-12)
    # converged: the regularised solve
    converged = m.predict(x, y, xt, t=None, get=get, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)
    np.testing.assert_allclose(converged, kt[get] @ np.linalg.solve(kr, y), rtol=1e-9)
    # the same on precomputed kernels, with initial outputs
    f0, ft0 = np.full(y.shape, 0.3), np.full((6, 3), -0.2)
    fn = predict.gradient_descent_mse(k[get], y, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)
    train_t, test_t = fn(20.0, f0, ft0, kt[get])
    e = expm(-kr * 20.0 / n)
    np.testing.assert_allclose(train_t, y + e @ (f0 - y), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(test_t, ft0 + kt[get] @ np.linalg.solve(kr, (np.eye(14) - e) @ (y - f0)), rtol=1e-8,
                               atol=1e-12)
    # the scale is honoured: absolute and relative regularisers differ (the mean diagonal is not 1)
    other = m.predict(x, y, xt, t=20.0, get=get, diag_reg=diag_reg, diag_reg_absolute_scale=not absolute)
    assert np.max(np.abs(other - g.mean[1])) > 1e-6 * np.max(np.abs(other))


@pytest.mark.parametrize("diag_reg", [0.0, 1e-3])
def test_converged_prediction_with_initial_outputs(problem, diag_reg):
    """t=None (Cholesky) with fx_train_0: the training outputs reach y exactly, the test outputs
    move by K_tx K_r^-1 (y - f_0), the t -> inf limit of the matrix-exponential formula."""
    k, kt, y = problem["k"].ntk, problem["kt"].ntk, problem["y"]
    kr = regularized(k, diag_reg, False)
    rng = np.random.default_rng(12)
    f0, ft0 = rng.standard_normal(y.shape), rng.standard_normal((6, 3))
    fn = predict.gradient_descent_mse(k, y, diag_reg=diag_reg)
    train, test = fn(None, f0, ft0, kt)
    np.testing.assert_array_equal(train, y)
    want = ft0 + kt @ np.linalg.solve(kr, y - f0)
    np.testing.assert_allclose(test, want, rtol=1e-9)
    # the expm formula at a time where every mode has converged (the slowest has decayed to < 1e-20)
    t_late = 50 * y.size / np.linalg.eigvalsh(kr)[0]
    e = expm(-kr * t_late / y.size)
    assert np.abs(e).max() < 1e-20
    np.testing.assert_allclose(test, ft0 + kt @ np.linalg.solve(kr, (np.eye(14) - e) @ (y - f0)), rtol=1e-8)
    np.testing.assert_allclose(fn(np.inf, f0, ft0, kt)[1], want, rtol=1e-6)  # inf: through the eigenbasis
    # only the test outputs (fx_train_0=None counts as f_0 = 0), or only the training outputs
    np.testing.assert_allclose(fn(None, None, ft0, kt), ft0 + kt @ np.linalg.solve(kr, y), rtol=1e-9)
    np.testing.assert_array_equal(fn(None, f0), y)
    # a scalar initial output broadcasts
    np.testing.assert_allclose(fn(None, 0.5, 0.25, kt)[1], 0.25 + kt @ np.linalg.solve(kr, y - 0.5), rtol=1e-9)


def test_float32_inputs_predict_in_float64(problem):
    """float32 inputs, targets and kernels: predictions are computed in float64 from the float32
    values (the same numbers as their float64 copies, not float32 accuracy)."""
    m, x, xt, y = problem["mlp"], problem["x"], problem["xt"], problem["y"]
    x32, xt32, y32 = x.astype(np.float32), xt.astype(np.float32), y.astype(np.float32)
    x64, xt64, y64 = (a.astype(np.float64) for a in (x32, xt32, y32))
    for t in (None, 5.0, [1.0, 10.0]):
        for get in ("nngp", "ntk"):
            got = m.predict(x32, y32, xt32, t=t, get=get, compute_cov=True)
            want = m.predict(x64, y64, xt64, t=t, get=get, compute_cov=True)
            assert got.mean.dtype == np.float64 and got.cov.dtype == np.float64
            np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(got.cov, want.cov, rtol=1e-12, atol=1e-14)
    # float32 kernels (as float32 inputs give) in the precomputed-kernel API
    k32, kt32 = m.kernel(x32, get="ntk"), m.kernel(xt32, x32, get="ntk")
    assert k32.dtype == np.float32
    for t in (None, 5.0):
        got = predict.gradient_descent_mse(k32, y32)(t, 0.0, 0.0, kt32)[1]
        want = predict.gradient_descent_mse(k32.astype(np.float64), y64)(t, 0.0, 0.0, kt32.astype(np.float64))[1]
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    got = predict.gp_inference(k32, y32, diag_reg=1e-4)("ntkgp", kt32, m.kernel(xt32, get="ntk"))
    assert got.mean.dtype == np.float64
    np.testing.assert_allclose(got.mean, kt32.astype(np.float64) @ np.linalg.solve(
        regularized(k32.astype(np.float64), 1e-4, False), y64), rtol=1e-9)


def test_training_curves(problem):
    k, kt, y = problem["k"].ntk, problem["kt"].ntk, problem["y"]
    onehot = np.eye(3)[np.argmax(y, axis=1)]
    yt = np.eye(3)[np.random.default_rng(3).integers(0, 3, 6)]
    times = np.geomspace(1e-2, 1e4, 30)
    curves = predict.training_curves(k, onehot, times, k_test_train=kt, y_test=yt)
    flow = predict.GradientFlow(k, onehot)
    want = [0.5 * np.mean((flow.train(t) - onehot) ** 2) for t in times]
    # (the reference subtracts nearly equal numbers once converged: compare to the initial scale)
    np.testing.assert_allclose(curves.train_loss, want, rtol=1e-8, atol=1e-12 * want[0])
    want_test = [0.5 * np.mean((flow.test(t, kt) - yt) ** 2) for t in times]
    np.testing.assert_allclose(curves.test_loss, want_test, rtol=1e-8)
    assert np.all(np.diff(curves.train_loss) <= 1e-15)
    assert curves.train_accuracy[-1] == 1.0 and 0 <= curves.test_accuracy.min() <= curves.test_accuracy.max() <= 1
    scalar = predict.training_curves(k, y[:, 0], times)
    assert scalar.train_accuracy is None and scalar.test_loss is None


def test_max_learning_rate(problem):
    k = problem["k"].ntk
    lam = np.linalg.eigvalsh(k)[-1]
    assert predict.max_learning_rate(k, 42) == pytest.approx(2 * 42 / lam, rel=1e-12)
    assert predict.max_learning_rate(k) == pytest.approx(2 * 14 / lam, rel=1e-12)
    assert predict.max_learning_rate(k, 42, momentum=0.9) == pytest.approx(2 * 1.9 * 42 / lam, rel=1e-12)


def test_singular_kernels_are_reported_not_nan():
    x = np.repeat(np.random.default_rng(4).standard_normal((5, 3)), 2, axis=0)  # duplicated inputs
    y = np.random.default_rng(5).standard_normal((10, 1))
    m = ntkfast.MLP(1, "relu", b_std=0.1)
    with pytest.raises(ValueError, match="diag_reg"):
        m.predict(x, y, x[:2], t=None)
    with pytest.warns(RuntimeWarning, match="diag_reg"):
        out = m.predict(x, y, x[:2], t=10.0)
    assert np.all(np.isfinite(out))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(np.isfinite(m.predict(x, y, x[:2], t=None, diag_reg=1e-6)))
        assert np.all(np.isfinite(m.predict(x, y, x[:2], t=10.0, diag_reg=1e-6)))


def integral_of_exp(k, tau):
    """int_0^tau exp(-k s) ds, from the exponential of the block matrix [[-k, I], [0, 0]] (Van Loan)."""
    n = len(k)
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n], block[:n, n:] = -k, np.eye(n)
    return expm(tau * block)[:n, n:]


def test_zero_eigenvalue_gives_the_limit_not_nan():
    """A training kernel with an exactly zero eigenvalue (an input whose kernel row is 0): along
    it the residual never decays, and the test outputs grow linearly, (1 - exp(-lambda t/N))/lambda
    -> t/N. The expected values solve the ODE d f_test/dt = -k_test_train (f_train - y) / N
    independently (the matrix exponential of a block matrix)."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((3, 3))
    k = np.zeros((4, 4))
    k[1:, 1:] = a @ a.T + np.eye(3)
    y = rng.standard_normal((4, 2))
    n = y.size
    f0, ft0 = rng.standard_normal((4, 2)), rng.standard_normal((5, 2))
    kt = rng.standard_normal((5, 4))
    with pytest.warns(RuntimeWarning, match="singular"):
        flow = predict.GradientFlow(k, y)
    assert flow.eigenvalues[0] == 0.0  # the lambda == 0 branch is reached
    for t in (0.5, 2.0, 30.0):
        np.testing.assert_allclose(flow.test(t, kt, f0, ft0), ft0 + kt @ integral_of_exp(k, t / n) @ (y - f0),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(flow.train(t, f0), y + expm(-k * t / n) @ (f0 - y), rtol=1e-10, atol=1e-12)
        # the zero mode (the first input) keeps its initial output
        np.testing.assert_allclose(flow.train(t, f0)[0], f0[0], rtol=1e-14, atol=1e-15)
    # t = inf: the pseudo-inverse (the zero mode is never fitted)
    np.testing.assert_allclose(flow.test(np.inf, kt, f0, ft0), ft0 + kt @ np.linalg.pinv(k) @ (y - f0), rtol=1e-10)
    with pytest.warns(RuntimeWarning, match="singular"):
        fn = predict.gradient_descent_mse(k, y)
        train, test = fn(2.0, f0, ft0, kt)
    np.testing.assert_allclose(test, ft0 + kt @ integral_of_exp(k, 2.0 / n) @ (y - f0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("driver", ["syevd", "syevr", "syev"])
def test_eigh_drivers(driver):
    a = np.random.default_rng(7).standard_normal((50, 50))
    a = a @ a.T
    w, v = ntkfast.eigh(a, driver=driver)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(a), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(v @ np.diag(w) @ v.T, a, atol=1e-10)
    np.testing.assert_allclose(v.T @ v, np.eye(50), atol=1e-12)
    np.testing.assert_allclose(ntkfast.eigvalsh(a), w, rtol=1e-10, atol=1e-10)


def test_cholesky_and_solves():
    a = np.random.default_rng(8).standard_normal((300, 300))
    a = a @ a.T + 300 * np.eye(300)
    c = linalg.cholesky(a)
    np.testing.assert_allclose(c @ c.T, a, rtol=1e-12, atol=1e-9)
    assert np.all(np.triu(c, 1) == 0)
    b = np.random.default_rng(9).standard_normal((300, 70))
    np.testing.assert_allclose(a @ linalg.cho_solve(c, b), b, atol=1e-9)
    np.testing.assert_allclose(a @ linalg.cho_solve(c, b[:, 0]), b[:, 0], atol=1e-9)
    # the forward error bound of a dot product of n terms: n eps sum |b_k a_k| (entries with
    # cancellation are small against their terms; a relative tolerance alone fails on some CPUs)
    bound = 300 * np.finfo(float).eps * (np.abs(b.T) @ np.abs(a))
    assert np.all(np.abs(linalg.matmul(b.T, a) - b.T @ a) <= bound)


@pytest.mark.parametrize("bad, exc, match", [
    (np.ones((3, 4)), ValueError, "a: must be a non-empty square"),
    (np.array([[1.0, 2.0], [0.0, 1.0]]), ValueError, "a: must be symmetric"),
    (np.array([[np.nan, 0.0], [0.0, 1.0]]), ValueError, "a: contains NaN"),
    (np.ones(3), ValueError, "a: must be a 2-D"),
    (np.array([["a"]]), TypeError, "a: must hold real numbers"),
])
def test_linalg_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        ntkfast.eigh(bad)
    with pytest.raises(exc, match=match):
        linalg.cholesky(bad)


def test_cholesky_of_an_indefinite_matrix_suggests_diag_reg():
    with pytest.raises(ValueError, match=r"not positive definite.*diag_reg"):
        linalg.cholesky(np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_predict_bad_input(problem):
    m, x, xt, y = problem["mlp"], problem["x"], problem["xt"], problem["y"]
    with pytest.raises(ValueError, match="y_train"):
        m.predict(x, y[:5], xt)
    with pytest.raises(ValueError, match="t:"):
        m.predict(x, y, xt, t=-1.0)
    with pytest.raises(ValueError, match="t:"):
        m.predict(x, y, xt, t=[1.0, np.nan])
    with pytest.raises(ValueError, match="diag_reg"):
        m.predict(x, y, xt, diag_reg=-1.0)
    with pytest.raises(ValueError, match="get"):
        m.predict(x, y, xt, get="ntkk")
    with pytest.raises(ValueError, match="y_train"):
        m.predict(x, np.full_like(y, np.nan), xt)
    with pytest.raises(TypeError, match="y_train"):
        m.predict(x, y.astype(str), xt)
    with pytest.raises(ValueError, match="fx_train_0, fx_test_0"):
        predict.gradient_descent_mse(problem["k"].ntk, y)(1.0, None, None)
    with pytest.raises(ValueError, match="k_test_train"):
        predict.gradient_descent_mse(problem["k"].ntk, y)(1.0, 0.0, 0.0)
