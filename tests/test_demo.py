"""The main job (`ntkfast demo --quick`) and the scikit-learn integration."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import ntkfast  # noqa: E402
from ntkfast import predict  # noqa: E402
from ntkfast.sklearn import NTKClassifier, NTKKernel, NTKRegressor  # noqa: E402

from reference import dual_abrelu, dual_erf, reference_kernels  # noqa: E402


def test_demo_quick_writes_its_report_and_figures(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "ntkfast", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=True)
    assert "converged NTK regression: test accuracy" in proc.stdout
    for name in ("report.md", "circle.png", "dynamics.png", "spectrum.png", "lazy.png"):
        assert (out / name).stat().st_size > 1000, name
    report = (out / "report.md").read_text()
    assert "| NTK regression (t = inf) |" in report and "![circle](circle.png)" in report
    assert "## 4. Lazy training" in report and "![lazy](lazy.png)" in report
    assert "Trained ensembles against the theory's Gaussian" in report
    # the lazy-training slopes against alpha: each near the theory's -1 (measured -0.97 to -1.01)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("lazy training"))
    slopes = [float(part.split()[-1]) for part in line.split("alpha ", 1)[1].split(" (theory")[0].split(", ")]
    assert len(slopes) == 4 and all(-1.2 < s < -0.8 for s in slopes), line
    assert "| CNTK-GAP regression (t = inf" in report and "CNTK-GAP regression on the 8x8 images" in proc.stdout
    # a progress bar line for every long step
    assert proc.stderr.count("[##############################]") == 3


def test_demo_experiments_show_convergence():
    from ntkfast import demo

    mlp = ntkfast.MLP(3, "relu", W_std=2**0.5, b_std=0.1)
    circle = demo.circle_convergence(mlp, [16, 1024], n_samples=4, n_points=30)
    assert np.mean(circle.errors[1024]) < np.mean(circle.errors[16]) / 3
    digits = demo.digits_dynamics(ntkfast.MLP(1, "relu", W_std=2**0.5, b_std=0.1), 150, 100, [512], steps=40, n_records=4)
    assert digits.ntk_accuracy > 0.85 and digits.nngp_accuracy > 0.85
    run = digits.runs[0]
    # the network follows the analytic NTK flow started from its own initial outputs
    last = np.argmin(np.abs(digits.times - run.time[-1]))
    assert abs(run.train_loss[-1] - run.predicted_train_loss[last]) < 0.25 * run.predicted_train_loss[last]
    assert np.all(np.diff(digits.curves.train_loss) <= 1e-12)


def test_plot_functions_return_figures(tmp_path):
    from ntkfast import demo, plot

    mlp = ntkfast.MLP(2, "relu", W_std=2**0.5)
    fig = plot.circle_convergence(demo.circle_convergence(mlp, [32, 64], n_samples=2, n_points=20))
    path = tmp_path / "c.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000


def test_estimators_pass_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    for estimator in (NTKRegressor(), NTKClassifier(), NTKRegressor(get="nngp", depth=1, activation="erf")):
        results = check_estimator(estimator, on_fail=None)
        failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
        assert not failed, failed


def test_regressor_is_the_ensemble_prediction():
    rng = np.random.default_rng(0)
    x, y, xt = rng.standard_normal((30, 4)), rng.standard_normal((30, 2)), rng.standard_normal((7, 4))
    mlp = ntkfast.MLP(2, "erf", W_std=1.3, b_std=0.2)
    for t in (None, 3.0):
        est = NTKRegressor(depth=2, activation="erf", W_std=1.3, b_std=0.2, t=t, diag_reg=1e-4).fit(x, y)
        want = mlp.predict(x, y, xt, t=t, diag_reg=1e-4)
        np.testing.assert_allclose(est.predict(xt), want, rtol=1e-8, atol=1e-10)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(xt), est.predict(xt))


def test_classifier_on_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, train_size=400, test_size=300, random_state=0)
    clf = NTKClassifier(depth=2, diag_reg=1e-3).fit(x_train, y_train)
    assert clf.score(x_test, y_test) > 0.9
    assert set(clf.predict(x_test)) <= set(range(10))


def test_kernel_in_gaussian_process_and_kernel_ridge():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.kernel_ridge import KernelRidge

    rng = np.random.default_rng(1)
    x, y, xt = rng.standard_normal((40, 3)), np.sin(rng.standard_normal(40)), rng.standard_normal((5, 3))
    kernel = NTKKernel(depth=2, get="nngp")
    gp = GaussianProcessRegressor(kernel=kernel, alpha=1e-6, optimizer=None).fit(x, y)
    mean, std = gp.predict(xt, return_std=True)
    want = predict.gp_inference(kernel(x), y, diag_reg=1e-6, diag_reg_absolute_scale=True)("nngp", kernel(xt, x),
                                                                                          kernel(xt))
    np.testing.assert_allclose(mean, want.mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(std, np.sqrt(np.clip(np.diag(want.cov), 0, None)), rtol=1e-5, atol=1e-6)
    ridge = KernelRidge(kernel=NTKKernel(depth=2), alpha=1e-3).fit(x, y)
    k = ntkfast.MLP(2, "relu", W_std=2**0.5, b_std=0.1).kernel(x, get="ntk")
    np.testing.assert_allclose(ridge.dual_coef_, np.linalg.solve(k + 1e-3 * np.eye(40), y), rtol=1e-8)
    np.testing.assert_allclose(kernel.diag(xt), np.diag(kernel(xt)), rtol=1e-14)


@pytest.mark.parametrize("width", [20, 300])
def test_estimators_with_standard_parameterization_against_a_numpy_reference(width):
    """parameterization="standard" and width reach the kernel: predictions equal kernel regression
    with tests/reference.py's NTK (whose standard-parameterization NTK grows with width)."""
    from scipy.linalg import expm

    rng = np.random.default_rng(3)
    x, xt = rng.standard_normal((25, 4)), rng.standard_normal((6, 4))
    y = rng.standard_normal((25, 2))
    labels = rng.integers(0, 3, 25)
    kw = dict(W_std=1.3, b_std=0.2, parameterization="standard", width=width)
    k = reference_kernels(x, None, 2, dual_erf(1.0, 1.0, 0.0), **kw)[1]
    kt = reference_kernels(xt, x, 2, dual_erf(1.0, 1.0, 0.0), **kw)[1]
    kr = k + 1e-4 * np.trace(k) / 25 * np.eye(25)
    est = NTKRegressor(depth=2, activation="erf", diag_reg=1e-4, **kw).fit(x, y)
    np.testing.assert_allclose(est.predict(xt), kt @ np.linalg.solve(kr, y), rtol=1e-9, atol=1e-12)
    est = NTKRegressor(depth=2, activation="erf", diag_reg=1e-4, t=40.0, **kw).fit(x, y)
    e = expm(-kr * 40.0 / y.size)
    np.testing.assert_allclose(est.predict(xt), kt @ np.linalg.solve(kr, (np.eye(25) - e) @ y), rtol=1e-8,
                               atol=1e-12)
    clf = NTKClassifier(depth=2, activation="erf", diag_reg=1e-4, **kw).fit(x, labels)
    scores = kt @ np.linalg.solve(kr, np.eye(3)[labels])
    np.testing.assert_allclose(clf.decision_function(xt), scores, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(xt), np.argmax(scores, axis=1))
    # the kernel, too
    kernel = NTKKernel(depth=2, activation="relu", W_std=1.3, b_std=0.2, parameterization="standard", width=width)
    want = reference_kernels(xt, x, 2, dual_abrelu(0.0, 1.0), **kw)[1]
    np.testing.assert_allclose(kernel(xt, x), want, rtol=1e-12)


def test_ntk_kernel_eval_gradient_and_log_marginal_likelihood():
    """scikit-learn's kernel API: (K, dK/dtheta) with one slice per hyperparameter (here none), and a
    GaussianProcessRegressor that fits with its default optimizer (nothing to tune) and reports the
    Gaussian log marginal likelihood."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 3)), np.sin(rng.standard_normal(30))
    kernel = NTKKernel(depth=2, activation="erf", W_std=1.3, b_std=0.2, get="nngp")
    k, grad = kernel(x, eval_gradient=True)
    np.testing.assert_array_equal(k, kernel(x))
    assert kernel.n_dims == 0 and kernel.theta.shape == (0,)
    assert grad.shape == (30, 30, kernel.n_dims)
    with pytest.raises(ValueError, match="eval_gradient"):
        kernel(x, x, eval_gradient=True)
    alpha = 1e-4
    gp = GaussianProcessRegressor(kernel=kernel, alpha=alpha).fit(x, y)  # default optimizer
    lml, lml_grad = gp.log_marginal_likelihood(gp.kernel_.theta, eval_gradient=True)
    assert lml_grad.shape == (0,)
    want_k = reference_kernels(x, None, 2, dual_erf(1.0, 1.0, 0.0), W_std=1.3, b_std=0.2)[0] + alpha * np.eye(30)
    sign, logdet = np.linalg.slogdet(want_k)
    want = -0.5 * y @ np.linalg.solve(want_k, y) - 0.5 * logdet - 15 * np.log(2 * np.pi)
    assert sign > 0 and lml == pytest.approx(want, rel=1e-9)
    assert gp.log_marginal_likelihood_value_ == pytest.approx(want, rel=1e-9)


def test_demo_experiments_take_composed_networks():
    """The demo's experiments run on a family of composed networks (a function of the width): the
    empirical NTK of residual networks approaches the analytic one, finite networks follow the
    analytic flow."""
    from ntkfast import demo, stax

    def resnet(width, out_dim):
        block = stax.serial(stax.FanOut(2), stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(width, W_std=1.2, b_std=0.1)), stax.Identity()), stax.FanInSum())
        return stax.serial(stax.Dense(width, W_std=1.5, b_std=0.1), block, stax.Relu(),
                           stax.Dense(out_dim, W_std=1.5, b_std=0.1))

    circle = demo.circle_convergence(resnet, [16, 1024], n_samples=4, n_points=30)
    assert np.mean(circle.errors[1024]) < np.mean(circle.errors[16]) / 3
    digits = demo.digits_dynamics(resnet, 150, 100, [512], steps=30, n_records=3)
    assert digits.ntk_accuracy > 0.85
    run = digits.runs[0]
    last = np.argmin(np.abs(digits.times - run.time[-1]))
    assert abs(run.train_loss[-1] - run.predicted_train_loss[last]) < 0.25 * run.predicted_train_loss[last]
    assert 0 < run.param_change < 1
