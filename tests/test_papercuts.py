"""Regression tests for issue 15's Python-layer papercuts: every message names the user's argument,
nothing returns a silent NaN, monte_carlo_kernel follows MLP.kernel's `get` rule with a streaming
variance, the README's snippets run, and the demo/CLI say what they do."""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ntkfast
from ntkfast import activations as A
from ntkfast import linalg, predict
from ntkfast.finite import MonteCarloKernel, Network, init_params

README = Path(__file__).resolve().parents[1] / "README.md"


def data(n=6, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((n, 2))


# ---------------------------------------------------------------------------------------------
# MLP.predict names the caller's arguments, not MLP.kernel's x1 / x2


@pytest.mark.parametrize("kwargs, name", [
    (dict(x_test=np.ones((2, 4))), "x_test: has 4 features but x_train has 3"),
    (dict(x_test=np.full((2, 3), np.nan)), "x_test"),
    (dict(x_test=np.ones((2, 3, 1))), "x_test"),
    (dict(x_train=np.full((6, 3), np.inf)), "x_train"),
    (dict(x_train=np.ones((6,))), "x_train"),
    (dict(y_train=np.ones((5, 2))), "y_train: must have one row per row of x_train"),
    (dict(y_train=np.full((6, 2), np.nan)), "y_train"),
    (dict(t=np.nan), "t"),
    (dict(t=-1.0), "t"),
    (dict(diag_reg=np.nan), "diag_reg"),
    (dict(diag_reg=-1e-3), "diag_reg"),
])
def test_predict_errors_name_the_callers_argument(kwargs, name):
    x, y = data()
    args = dict(x_train=x, y_train=y, x_test=x[:2])
    args.update(kwargs)
    mlp = ntkfast.MLP(2, "relu", b_std=0.1)
    with pytest.raises(ValueError, match=f"^{re.escape(name)}") as info:
        mlp.predict(args.pop("x_train"), args.pop("y_train"), args.pop("x_test"), **args)
    assert not re.search(r"\b(x1|x2|k_train_train)\b|\ba:", str(info.value)), str(info.value)


def test_predict_type_errors_name_the_callers_argument():
    x, y = data()
    mlp = ntkfast.MLP(2, "relu")
    with pytest.raises(TypeError, match="^x_test"):
        mlp.predict(x, y, "abc")
    with pytest.raises(TypeError, match="^x_train"):
        mlp.predict(None, y, x)
    with pytest.raises(TypeError, match="^compute_cov"):
        mlp.predict(x, y, x, compute_cov="yes")
    with pytest.raises(TypeError, match="^t"):
        mlp.predict(x, y, x, t=True)


def test_a_singular_training_kernel_names_x_train_and_suggests_diag_reg():
    x, _ = data()
    x = np.vstack([x, x[:1]])  # a duplicate row: the NTK is singular
    with pytest.raises(ValueError, match=r"^x_train: the training NTK .*diag_reg"):
        ntkfast.MLP(2, "relu").predict(x, np.arange(7.0), x[:2])
    out = ntkfast.MLP(2, "relu").predict(x, np.arange(7.0), x[:2], diag_reg=1e-6)
    assert np.all(np.isfinite(out))


def test_precomputed_kernel_errors_name_the_kernel_argument():
    k = np.ones((3, 3))  # rank one
    with pytest.raises(ValueError, match="^k_train_train"):
        predict.gradient_descent_mse(k, np.arange(3.0))(None, 0.0, 0.0, np.ones((2, 3)))
    with pytest.raises(ValueError, match="^k_train_train"):
        predict.gp_inference(k, np.arange(3.0))("nngp", np.ones((2, 3)))
    with pytest.raises(ValueError, match="^y_train: must have one row per row of x_train"):
        predict.gradient_descent_mse_ensemble(ntkfast.MLP(1, "relu").kernel, np.ones((4, 2)), np.ones(3))


def test_a_cholesky_pivot_at_round_off_level_is_refused_not_solved_with():
    """Rank 2 in 3 dimensions: the factorisation may "succeed" with a last pivot of ~1e-16, and
    solving with it would return garbage."""
    a = np.random.default_rng(3).standard_normal((3, 2))
    k = a @ a.T
    for t in (None, np.inf):
        with pytest.raises(ValueError, match=r"^k_train_train: .*(singular|positive definite).*diag_reg"):
            predict.gradient_descent_mse(k, np.arange(3.0))(t, 0.0, 0.0, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^k_train_train: .*diag_reg"):
        predict.prediction_weights(k, np.arange(3.0))
    alpha = predict.prediction_weights(k, np.arange(3.0), diag_reg=1e-6)
    assert np.all(np.isfinite(alpha))


# ---------------------------------------------------------------------------------------------
# constructors name their own parameters


@pytest.mark.parametrize("make, name", [
    (lambda v: A.LeakyRelu(v), "alpha"),
    (lambda v: A.ABRelu(v, 1.0), "a"),
    (lambda v: A.ABRelu(0.0, v), "b"),
    (lambda v: A.Erf(v), "a"),
    (lambda v: A.Erf(1.0, v), "b"),
    (lambda v: A.Erf(1.0, 1.0, v), "c"),
    (lambda v: A.Sin(1.0, v), "b"),
    (lambda v: A.Cos(1.0, 1.0, v), "c"),
    (lambda v: A.Rbf(v), "gamma"),
    (lambda v: A.Exp(v), "a"),
    (lambda v: A.Gaussian(1.0, v), "b"),
])
def test_activation_parameters_are_named(make, name):
    with pytest.raises(ValueError, match=f"^{name}: must be finite, got nan"):
        make(float("nan"))
    with pytest.raises(TypeError, match=f"^{name}: must be a real number"):
        make("1")


def test_degrees_are_named():
    with pytest.raises(TypeError, match="^degree"):
        A.Monomial(1.5)
    with pytest.raises(ValueError, match="^degree"):
        A.RectifiedMonomial(11)
    with pytest.raises(ValueError, match="^degree"):
        A.Numerical(np.tanh, degree=3)


@pytest.mark.parametrize("depth", [2**63, 2**62, 10**30, ntkfast.models.MAX_DEPTH + 1])
def test_huge_depth_is_a_clear_value_error(depth):
    with pytest.raises(ValueError, match=r"^depth: must be an integer from 0 to 100_000"):
        ntkfast.MLP(depth, "relu")


@pytest.mark.parametrize("width", [10**30, 2**63, 2**53 + 1])
def test_huge_width_is_a_clear_value_error(width):
    with pytest.raises(ValueError, match="^width: must be an integer from 1 to"):
        ntkfast.MLP(2, "relu", parameterization="standard", width=width)
    with pytest.raises(ValueError, match="^width"):
        ntkfast.MLP(2, "relu").init(3, width=width)


def test_depth_and_width_at_their_bounds_are_accepted():
    assert ntkfast.MLP(ntkfast.models.MAX_DEPTH, "relu").depth == 100_000
    mlp = ntkfast.MLP(1, "relu", parameterization="standard", width=2**40)
    assert np.all(np.isfinite(mlp.kernel(np.eye(2), get="ntk")))


def test_a_network_too_large_to_allocate_is_a_memory_error_naming_width():
    with pytest.raises(MemoryError, match="^width: .* parameters"):
        ntkfast.MLP(2, "relu").init(3, width=2**40)


def test_eigh_driver_is_named_with_its_choices():
    with pytest.raises(TypeError, match=r"^driver: must be one of 'syevd', 'syevr', 'syev', got None"):
        ntkfast.eigh(np.eye(3), driver=None)
    with pytest.raises(ValueError, match="^driver: .*'syevd'"):
        ntkfast.eigh(np.eye(3), driver="dsyevd")
    for driver in linalg.DRIVERS:
        np.testing.assert_allclose(ntkfast.eigh(np.diag([2.0, 1.0]), driver=driver)[0], [1.0, 2.0])


@pytest.mark.parametrize("seed, error", [(-1, ValueError), ([1, -2], ValueError), ("a", TypeError), (1.5, TypeError),
                                         (True, TypeError)])
def test_bad_seeds_are_named(seed, error):
    mlp = ntkfast.MLP(1, "relu")
    with pytest.raises(error, match="^seed: must be a non-negative integer"):
        mlp.init(3, width=4, seed=seed)
    with pytest.raises(error, match="^seed"):
        ntkfast.monte_carlo_kernel(mlp, np.eye(3), width=4, n_samples=2, seed=seed)


def test_seeds_draw_as_numpy_does():
    mlp = ntkfast.MLP(1, "relu", b_std=0.1)
    for seed in (0, 7, [1, 2], np.random.SeedSequence(3)):
        want = init_params(mlp, 3, 4, 2, np.random.default_rng(seed))
        for (w, b), (w2, b2) in zip(init_params(mlp, 3, 4, 2, seed), want):
            np.testing.assert_array_equal(w, w2)
            np.testing.assert_array_equal(b, b2)


def test_mlp_argument_is_checked():
    with pytest.raises(TypeError, match="^mlp: must be an ntkfast.MLP"):
        ntkfast.models.check_mlp(None)
    with pytest.raises(TypeError, match="^mlp"):
        init_params("relu", 3, 4)
    with pytest.raises(TypeError, match="^mlp"):
        ntkfast.monte_carlo_kernel(None, np.eye(3), width=4, n_samples=2)


def test_from_params_names_mlp():
    params = ntkfast.MLP(1, "relu").init(3, width=4).params
    with pytest.raises(TypeError, match="^mlp"):
        Network.from_params(None, params)


def test_from_params_refuses_complex_and_non_finite_parameters():
    mlp = ntkfast.MLP(1, "relu", b_std=0.1)
    params = mlp.init(3, width=4).params
    complex_w = [(params[0][0].astype(complex) + 1j, params[0][1]), params[1]]
    with pytest.raises(TypeError, match=r"^params: params\[0\]'s W must hold real numbers, got dtype complex128"):
        Network.from_params(mlp, complex_w)
    nan_b = [params[0], (params[1][0], np.full_like(params[1][1], np.nan))]
    with pytest.raises(ValueError, match=r"^params: params\[1\]'s b contains NaN"):
        Network.from_params(mlp, nan_b)


def test_numerical_with_a_scalar_function_says_it_must_take_arrays():
    with pytest.raises(TypeError, match=r"^fn: must be vectorised, accepting and returning NumPy arrays.*"
                                        r"np\.tanh, not math\.tanh"):
        A.Numerical(math.tanh)
    with pytest.raises(TypeError, match="^dfn: must be vectorised, accepting and returning NumPy arrays"):
        A.Numerical(np.tanh, math.cos)
    with pytest.raises(ValueError, match="^fn: .*it returned shape"):
        A.Numerical(lambda z: 1.0)
    with pytest.raises(ValueError, match="^fn: must be finite on the whole real line"):
        A.Numerical(np.log)
    with pytest.raises(TypeError, match="^fn: .*not real numbers"):
        A.Numerical(lambda z: z + 1j)
    A.Numerical(np.vectorize(math.tanh))  # the suggested fix works


def test_an_interrupt_inside_the_probe_call_is_not_swallowed():
    def interrupted(z):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        A.Numerical(interrupted)


# ---------------------------------------------------------------------------------------------
# linear algebra and predictions refuse what would give a wrong answer or a NaN


def spd(n=4, seed=0):
    m = np.random.default_rng(seed).standard_normal((n, n))
    return m @ m.T + n * np.eye(n)


def test_cho_solve_accepts_a_true_factor():
    a, b = spd(), np.arange(4.0)
    np.testing.assert_allclose(linalg.cho_solve(linalg.cholesky(a), b), np.linalg.solve(a, b), rtol=1e-12)


def test_cho_solve_refuses_what_is_not_a_lower_cholesky_factor():
    c = linalg.cholesky(spd())
    b = np.ones(4)
    bad = c.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="^c: contains NaN"):
        linalg.cho_solve(bad, b)
    with pytest.raises(ValueError, match=r"^c: must be lower-triangular.*c\[0, 1\]"):
        linalg.cho_solve(c.T, b)  # the upper factor: a wrong answer if accepted
    bad = c.copy()
    bad[1, 3] = 1e-3
    with pytest.raises(ValueError, match=r"^c: must be lower-triangular.*c\[1, 3\]"):
        linalg.cho_solve(bad, b)
    bad = c.copy()
    bad[3, 3] = 0.0
    with pytest.raises(ValueError, match=r"^c: a Cholesky factor has a positive diagonal; c\[3, 3\]"):
        linalg.cho_solve(bad, b)
    with pytest.raises(ValueError, match=r"^c: a Cholesky factor has a positive diagonal; c\[0, 0\]"):
        linalg.cho_solve(-c, b)
    with pytest.raises(ValueError, match="^c: must be a square"):
        linalg.cho_solve(c[:, :3], b)


def test_the_factor_check_covers_every_row_block():
    n = 600  # more than one 256-row block
    c = linalg.cholesky(spd(n, 1))
    bad = c.copy()
    bad[520, 590] = 1.0
    with pytest.raises(ValueError, match=r"c\[520, 590\]"):
        linalg.cho_solve(bad, np.ones(n))


@pytest.mark.parametrize("kwargs, name", [
    (dict(momentum=np.nan), "momentum"), (dict(momentum=-0.1), "momentum"), (dict(momentum=1.0), "momentum"),
    (dict(eps=-1.0), "eps"), (dict(eps=np.nan), "eps"),
    (dict(y_train_size=1.5), "y_train_size"), (dict(y_train_size=0), "y_train_size"),
    (dict(y_train_size=True), "y_train_size"), (dict(y_train_size="3"), "y_train_size"),
])
def test_max_learning_rate_checks_its_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}: must be"):
        predict.max_learning_rate(spd(), **kwargs)


def test_max_learning_rate_values_and_the_zero_kernel():
    k = spd()
    top = np.linalg.eigvalsh(k)[-1]
    assert predict.max_learning_rate(k, 10, momentum=0.5, eps=0.0) == pytest.approx(2 * 1.5 * 10 / top, rel=1e-12)
    assert predict.max_learning_rate(k, np.int64(10)) == pytest.approx(2 * 10 / (top + 1e-12), rel=1e-12)
    with pytest.raises(ValueError, match="^ntk_train_train: its largest eigenvalue is 0"):
        predict.max_learning_rate(np.zeros((3, 3)), eps=0.0)


@pytest.mark.parametrize("t", [None, 2.0])
def test_gradient_descent_mse_refuses_nan_initial_outputs(t):
    k, y, k_td = spd(), np.arange(4.0), np.ones((2, 4))
    fn = predict.gradient_descent_mse(k, y)
    with pytest.raises(ValueError, match="^fx_train_0: contains NaN"):
        fn(t, np.nan)
    with pytest.raises(ValueError, match="^fx_train_0: contains NaN"):
        fn(t, np.full(4, np.nan), np.zeros(2), k_td)
    with pytest.raises(ValueError, match="^fx_test_0: contains NaN"):
        fn(t, 0.0, np.array([0.0, np.inf]), k_td)
    with pytest.raises(TypeError, match="^fx_train_0: must be a number or an array of real numbers"):
        fn(t, 1j)


def test_gradient_descent_mse_checks_times_and_scalars():
    k, y = spd(), np.arange(4.0)
    with pytest.raises(ValueError, match="^learning_rate"):
        predict.gradient_descent_mse(k, y, learning_rate=np.nan)
    with pytest.raises(ValueError, match="^diag_reg"):
        predict.gradient_descent_mse(k, y, diag_reg=-1.0)
    fn = predict.gradient_descent_mse(k, y)
    for t in (np.nan, -1.0, [1.0, -2.0]):
        with pytest.raises(ValueError, match="^t: times must be >= 0"):
            fn(t)
    with pytest.raises(TypeError, match="^t"):
        fn(True)


def test_training_curves_checks_y_test_and_t():
    k, y = spd(), np.eye(4)[:, :3]
    with pytest.raises(ValueError, match=r"^y_test: must have one row per row of k_test_train \(2\)"):
        predict.training_curves(k, y, [1.0, 2.0], k_test_train=np.ones((2, 4)), y_test=np.ones((3, 3)))
    with pytest.raises(TypeError, match="^t"):
        predict.training_curves(k, y, ["a"])
    with pytest.raises(ValueError, match="^t: must be a 1-D array"):
        predict.training_curves(k, y, 1.0)


# ---------------------------------------------------------------------------------------------
# monte_carlo_kernel: MLP.kernel's `get` rule, and a streaming variance


def test_monte_carlo_kernel_get_string_returns_the_array():
    mlp = ntkfast.MLP(1, "relu", b_std=0.1)
    x = np.random.default_rng(1).standard_normal((4, 3))
    ntk = ntkfast.monte_carlo_kernel(mlp, x, width=16, n_samples=3, get="ntk")
    both = ntkfast.monte_carlo_kernel(mlp, x, width=16, n_samples=3)
    assert isinstance(ntk, np.ndarray) and ntk.shape == (4, 4)
    assert isinstance(both, MonteCarloKernel)
    np.testing.assert_array_equal(ntk, both.ntk)
    nngp, ntk2 = both  # unpacks in the order of get, as neural-tangents' namedtuple
    np.testing.assert_array_equal(ntk2, both.ntk)
    np.testing.assert_array_equal(nngp, both.nngp)
    only = ntkfast.monte_carlo_kernel(mlp, x, width=16, n_samples=3, get=("ntk",))
    assert only.nngp is None and only.ntk_stderr.shape == (4, 4)
    (ntk3,) = only
    np.testing.assert_array_equal(ntk3, ntk)
    with pytest.raises(ValueError, match="^get"):
        ntkfast.monte_carlo_kernel(mlp, x, width=16, n_samples=3, get=5)


def test_monte_carlo_variance_is_streaming_and_free_of_cancellation():
    """A readout bias of scale 1e4 adds 1e8 to every NTK entry while the networks differ by
    O(1e-2): E[k^2] - E[k]^2 cancels to nothing there, Welford's update does not."""
    mlp = ntkfast.MLP(1, "relu", W_std=1.0, b_std=None, readout_b_std=1e4)
    x = np.random.default_rng(0).standard_normal((3, 2))
    n = 6
    mc = ntkfast.monte_carlo_kernel(mlp, x, width=8, n_samples=n, seed=3, get=("ntk",))
    samples = np.array([Network(mlp, init_params(mlp, 2, 8, 1, np.random.default_rng(child))).ntk(x)
                        for child in np.random.SeedSequence(3).spawn(n)])
    want = np.sqrt(np.var(samples, axis=0, ddof=1) / n)
    assert np.all(want > 0)
    np.testing.assert_allclose(mc.ntk, samples.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(mc.ntk_stderr, want, rtol=1e-3)
    naive = np.sqrt(np.maximum(np.mean(samples**2, axis=0) - samples.mean(axis=0) ** 2, 0) / (n - 1))
    assert np.max(np.abs(naive / want - 1)) > 0.5  # the case really defeats the old formula


def test_monte_carlo_variance_matches_numpy_on_ordinary_kernels():
    mlp = ntkfast.MLP(2, "erf", W_std=1.3, b_std=0.2)
    x = np.random.default_rng(2).standard_normal((4, 3))
    mc = ntkfast.monte_carlo_kernel(mlp, x, width=8, n_samples=5, out_dim=2, seed=9)
    nets = [Network(mlp, init_params(mlp, 3, 8, 2, np.random.default_rng(child)))
            for child in np.random.SeedSequence(9).spawn(5)]
    for name, fn in (("nngp", lambda net: net.nngp(x)), ("ntk", lambda net: net.ntk(x))):
        samples = np.array([fn(net) for net in nets])
        np.testing.assert_allclose(getattr(mc, name), samples.mean(axis=0), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(getattr(mc, name + "_stderr"), np.sqrt(np.var(samples, axis=0, ddof=1) / 5),
                                   rtol=1e-10, atol=1e-15)


def test_one_sample_has_no_standard_error():
    mc = ntkfast.monte_carlo_kernel(ntkfast.MLP(1, "relu"), np.eye(3), width=4, n_samples=1)
    assert mc.ntk_stderr is None and mc.nngp_stderr is None and np.all(np.isfinite(mc.ntk))


# ---------------------------------------------------------------------------------------------
# README


def readme_block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_scikit_learn_snippet_runs_as_written():
    pytest.importorskip("sklearn")
    namespace: dict = {}
    exec(compile(readme_block("## scikit-learn"), "README.md", "exec"), namespace)
    assert namespace["mean"].shape == namespace["std"].shape == (797,)
    assert namespace["clf"].score(namespace["x"][1000:], namespace["y"][1000:]) > 0.9


# (the private name of the source notes, spelled so that this file does not contain it)
NOTES = "se" + "eds"


def test_readme_names_papers_not_seeds():
    text = README.read_text()
    assert not re.search(rf"\b{NOTES}?'", text)
    assert f"the {NOTES}" not in text.lower()
    for paper in ("Jacot et al. 2018", "Lee et al. 2019", "Arora et al. 2019", "Du et al. 2019"):
        assert paper in text
    assert "track_kernel" in text and "record_every" in text


def test_python_docstrings_name_papers_not_seeds():
    root = Path(ntkfast.__file__).parent
    for name in ("predict.py", "demo.py", "models.py", "activations.py", "linalg.py", "plot.py", "cli.py"):
        assert not re.search(rf"\b{NOTES}'|\bthe {NOTES}\b", (root / name).read_text()), name


def test_license_file_is_apache_2():
    text = (README.parent / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


# ---------------------------------------------------------------------------------------------
# CLI and demo


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ntkfast", *args], capture_output=True, text=True, timeout=120)


def test_cli_reports_an_unknown_option_as_such():
    proc = run_cli("--bogus")
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus" in proc.stderr and "required" not in proc.stderr
    proc = run_cli("demo", "--bogus")
    assert proc.returncode == 2 and "ntkfast demo: error: unrecognized arguments: --bogus" in proc.stderr
    proc = run_cli()
    assert proc.returncode == 2 and "missing command" in proc.stderr


def test_cli_version_and_demo_help():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"ntkfast {ntkfast.__version__}"
    proc = run_cli("demo", "--help")
    assert proc.returncode == 0
    for word in ("report.md", "circle.png", "dynamics.png", "spectrum.png", "minutes", "--quick"):
        assert word in proc.stdout, word


def test_kernel_descent_is_exact_discrete_gradient_descent():
    from ntkfast.demo import KernelDescent

    rng = np.random.default_rng(4)
    m = rng.standard_normal((6, 3))
    k = m @ m.T  # rank 3: zero eigenvalues too
    y, f0 = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    k_td, ft0 = rng.standard_normal((4, 3)) @ m.T, rng.standard_normal((4, 2))
    lr = 0.7 * predict.max_learning_rate(k, y.size)
    descent = KernelDescent(k, y, lr)
    f, ft = f0.copy(), ft0.copy()
    for s in range(1, 31):
        residual = f - y
        f, ft = f - lr * k @ residual / y.size, ft - lr * k_td @ residual / y.size
        if s in (1, 7, 30):
            np.testing.assert_allclose(descent.train(np.array([s]), f0)[0], f, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(descent.test(np.array([s]), k_td, f0, ft0)[0], ft, rtol=1e-10, atol=1e-12)
    # small steps approach the continuous flow of ntkfast.predict at the same time t = lr * s
    small = KernelDescent(k, y, 1e-3)
    with pytest.warns(RuntimeWarning, match="singular"):
        flow = predict.GradientFlow(k, y)
    np.testing.assert_allclose(small.train(np.array([2000]), f0)[0], flow.train(2.0, f0), rtol=0, atol=1e-3)


def test_circle_summary_uses_medians_and_a_fitted_slope():
    from ntkfast.demo import CircleConvergence

    errors = {16: np.array([0.5, 0.5, 0.5, 40.0]), 64: np.array([0.25, 0.25, 0.25, 0.25]),
              256: np.array([0.125, 0.125, 0.125, 0.125])}
    result = CircleConvergence(np.zeros(1), np.ones(1), [16, 64, 256], {}, errors)
    np.testing.assert_allclose(result.median_errors(), [0.5, 0.25, 0.125])
    assert result.fitted_slope() == pytest.approx(-0.5)  # the outlier network does not move it
    assert CircleConvergence(np.zeros(1), np.ones(1), [16], {}, {16: errors[16]}).fitted_slope() is None


def test_demo_report_tables_are_well_formed_and_name_each_network(tmp_path):
    pytest.importorskip("sklearn")
    from ntkfast import demo

    circle_mlp, digits_mlp = ntkfast.MLP(3, "relu", W_std=2**0.5), ntkfast.MLP(1, "relu", W_std=2**0.5, b_std=0.1)
    circle = demo.circle_convergence(circle_mlp, [16, 64], n_samples=3, n_points=12)
    digits = demo.digits_dynamics(digits_mlp, 80, 40, [64], steps=12, n_records=3)
    report = Path(demo.write_report(str(tmp_path), circle, digits, None, 1.0)).read_text()
    assert f"`{circle_mlp!r}`" in report and f"`{digits_mlp!r}`" in report
    assert "median" in report and "fitted slope" in report
    rows = [line for line in report.splitlines() if line.startswith("|")]
    tables, current = [], []
    for line in report.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line.count("|") - 1)
        elif current:
            tables.append(current)
            current = []
    assert len(tables) == 2 and rows
    for cells in tables:
        assert len(set(cells)) == 1, cells  # every row has the header's number of cells
    # every curve of the dynamics is on the discrete-step grid the networks were recorded on
    assert np.all(np.isin(np.rint(digits.runs[0].time / digits.learning_rate), digits.steps))
    assert np.all(np.diff(digits.curves.train_loss) <= 1e-12)


# ---------------------------------------------------------------------------------------------
# scikit-learn


def test_ntk_kernel_gradient_has_no_hyperparameters():
    pytest.importorskip("sklearn")
    from sklearn.gaussian_process import GaussianProcessRegressor

    from ntkfast.sklearn import NTKKernel

    x = np.random.default_rng(0).standard_normal((7, 3))
    kernel = NTKKernel(depth=2, get="nngp")
    k, gradient = kernel(x, eval_gradient=True)
    assert gradient.shape == (7, 7, 0) and kernel.theta.shape == (0,) and kernel.n_dims == 0
    np.testing.assert_array_equal(k, kernel(x))
    with pytest.raises(ValueError, match="eval_gradient"):
        kernel(x, x, eval_gradient=True)
    gp = GaussianProcessRegressor(kernel=kernel, alpha=1e-4).fit(x, np.sin(x[:, 0]))  # default optimizer
    lml, grad = gp.log_marginal_likelihood(gp.kernel_.theta, eval_gradient=True)
    assert np.isfinite(lml) and grad.shape == (0,)
    with pytest.raises(ValueError, match="^get"):
        NTKKernel(get=("nngp",))(x)


def test_estimators_with_standard_parameterization():
    pytest.importorskip("sklearn")
    from ntkfast.sklearn import NTKClassifier, NTKKernel, NTKRegressor

    x, y = data(20, 3, 5)
    est = NTKRegressor(depth=2, activation="erf", parameterization="standard", width=64, diag_reg=1e-4).fit(x, y)
    mlp = ntkfast.MLP(2, "erf", W_std=2**0.5, b_std=0.1, parameterization="standard", width=64)
    np.testing.assert_allclose(est.predict(x[:5]), mlp.predict(x, y, x[:5], diag_reg=1e-4), rtol=1e-8, atol=1e-10)
    clf = NTKClassifier(parameterization="standard", width=32).fit(x, y[:, 0] > 0)
    assert clf.score(x, y[:, 0] > 0) == 1.0
    with pytest.raises(ValueError, match="^width: required"):
        NTKRegressor(parameterization="standard").fit(x, y)
    assert "width=64" in repr(NTKKernel(parameterization="standard", width=64))


# ---------------------------------------------------------------------------------------------
# fuzz-harness findings (tests/fuzz): every error names the user's argument


def _huge(shape, value=1.0):
    """A read-only broadcast view: asks for huge work without allocating it."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)


def test_ragged_inputs_name_the_argument():
    mlp = ntkfast.MLP(2, "relu")
    with pytest.raises(ValueError, match=r"^x1: could not be converted to a 2-D array of numbers.*inhomogeneous"):
        mlp.kernel([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="^x2: could not be converted"):
        mlp.kernel(np.ones((2, 2)), [[1.0, 2.0], [3.0]])
    x, y = data()
    with pytest.raises(ValueError, match="^x_test: could not be converted"):
        mlp.predict(x, y, [[1.0, 2.0, 3.0], [3.0]])
    np.testing.assert_array_equal(mlp.kernel([[1.0, 2.0], [3.0, 4.0]], get="ntk"),
                                  mlp.kernel(np.array([[1.0, 2.0], [3.0, 4.0]]), get="ntk"))


@pytest.mark.parametrize("flag", ["no", "False", 1, 0, None, 1.0])
def test_diagonal_must_be_a_bool(flag):
    x, _ = data()
    with pytest.raises(TypeError, match="^diagonal: must be True or False"):
        ntkfast.MLP(2, "relu").kernel(x, diagonal=flag)


def test_diagonal_accepts_numpy_bools():
    x, _ = data()
    mlp = ntkfast.MLP(2, "relu", b_std=0.1)
    np.testing.assert_array_equal(mlp.kernel(x, diagonal=np.bool_(True), get="ntk"), np.diag(mlp.kernel(x, get="ntk")))
    assert mlp.kernel(x, diagonal=np.bool_(False), get="ntk").shape == (6, 6)


def test_numerical_activation_refuses_complex_results_at_every_call():
    x, _ = data()

    def fn(z):  # real on the constructor's small probe, complex on the kernel's quadrature points
        return np.tanh(z) if z.size <= 7 else z + 1j

    def dfn(z):
        return 1 - np.tanh(z) ** 2 if z.size <= 7 else z + 1j

    with pytest.raises((TypeError, ValueError), match=r"\bfn: must return real numbers.*complex"):
        ntkfast.MLP(2, A.Numerical(fn)).kernel(x)
    with pytest.raises((TypeError, ValueError), match=r"\bdfn: must return real numbers.*complex"):
        ntkfast.MLP(2, A.Numerical(np.tanh, dfn)).kernel(x)
    with pytest.raises((TypeError, ValueError), match=r"\bfn: must return real numbers"):
        ntkfast.MLP(2, A.Numerical(fn)).init(3, width=8).apply(x)  # finite networks call it too
    # real-valued functions are untouched, and the spec still pickles by its arguments
    import pickle

    mlp = ntkfast.MLP(2, A.Numerical(np.tanh, lambda z: 1 - np.tanh(z) ** 2))
    k = mlp.kernel(x, get="ntk")
    np.testing.assert_allclose(k, ntkfast.MLP(2, "tanh").kernel(x, get="ntk"), rtol=1e-8)
    restored = pickle.loads(pickle.dumps(ntkfast.MLP(2, A.Numerical(np.tanh))))
    assert restored.activation.fn is np.tanh
    np.testing.assert_array_equal(restored.kernel(x, get="ntk"), ntkfast.MLP(2, A.Numerical(np.tanh)).kernel(x, get="ntk"))


def test_memory_errors_of_predict_name_the_callers_inputs():
    # The dense solvers (solver="auto" goes matrix-free past memory: tests/test_solvers.py)
    x, y = data()
    mlp = ntkfast.MLP(2, "relu", W_std=1.5, b_std=0.1)
    with pytest.raises(MemoryError, match=r"^x_train: this kernel of 1000000 x 1000000 entries"):
        mlp.predict(_huge((10**6, 3)), _huge((10**6,)), x[:2], solver="cholesky")
    with pytest.raises(MemoryError, match=r"^x_test: this kernel of 1000000 x 1000000 entries"):
        mlp.predict(x, y, _huge((10**6, 3), 0.3), compute_cov=True)
    fn = predict.gradient_descent_mse_ensemble(mlp.kernel, _huge((10**6, 3)), _huge((10**6,)), solver="cholesky")
    with pytest.raises(MemoryError, match=r"^x_train: this kernel"):
        fn(x_test=x[:2])
    fn = predict.gradient_descent_mse_ensemble(mlp.kernel, x, y)
    with pytest.raises(MemoryError, match=r"^x_test: this kernel of 1000000 x 1000000"):
        fn(x_test=_huge((10**6, 3), 0.3), get="nngp", compute_cov=True)


def test_renamed_error_keeps_the_type_and_renames_only_what_is_about_the_arguments():
    from ntkfast._arrays import renamed_error

    names = {"x1": "x_test", "x2": "x_train"}
    out = renamed_error(MemoryError("x1, x2: this kernel of 3 x 4 entries needs 1 GiB"), names)
    assert type(out) is MemoryError and str(out) == "x_test, x_train: this kernel of 3 x 4 entries needs 1 GiB"
    out = renamed_error(ValueError("x2: has 4 features but x1 has 3"), names)
    assert type(out) is ValueError and str(out) == "x_train: has 4 features but x_test has 3"
    untouched = MemoryError("out of memory near x1")  # not about the arguments
    assert renamed_error(untouched, names) is untouched
    untouched = ValueError("x1_i: unrelated")
    assert renamed_error(untouched, names) is untouched


def test_non_symmetric_kernels_name_the_kernel_argument():
    x, y = data()
    k = ntkfast.MLP(2, "relu").kernel(x, get="ntk")
    k[0, 1] += 1.0
    with pytest.raises(ValueError, match="^k_train_train: must be symmetric"):
        predict.gradient_descent_mse(k, y)(t=1.0)
    with pytest.raises(ValueError, match="^k_train_train: must be symmetric"):
        predict.prediction_weights(k, y, t=1.0)
    with pytest.raises(ValueError, match="^ntk_train_train: must be symmetric"):
        predict.max_learning_rate(k)


def test_ensemble_errors_name_x_test_and_kernel_fn():
    x, y = data()
    fn = predict.gradient_descent_mse_ensemble(ntkfast.MLP(2, "erf").kernel, x, y)
    bad = x[:4].copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="^x_test: row 1 contains NaN or infinity"):
        fn(x_test=bad)
    with pytest.raises(ValueError, match="^x_train: has 3 features but x_test has 2"):
        fn(x_test=np.ones((2, 2)))
    bad_train = x.copy()
    bad_train[2, 0] = np.nan
    with pytest.raises(ValueError, match="^x_train: row 2 contains NaN"):
        predict.gradient_descent_mse_ensemble(ntkfast.MLP(2, "erf").kernel, bad_train, y)(x_test=x)
    for kernel_fn in (None, "ntk", np.ones((6, 6))):
        with pytest.raises(TypeError, match="^kernel_fn: must be a callable"):
            predict.gradient_descent_mse_ensemble(kernel_fn, x, y)


@pytest.mark.parametrize("step", ["fit", "predict"])
def test_sklearn_errors_name_X(step):
    pytest.importorskip("sklearn")
    from ntkfast.sklearn import NTKRegressor

    x, y = data()
    if step == "fit":
        with pytest.raises(ValueError, match="^X: row 0 contains NaN or infinity"):
            NTKRegressor().fit(x * 1e200, y)
        with pytest.raises(MemoryError, match="^X: this kernel of 1000000 x 1000000 entries"):
            NTKRegressor(solver="cholesky").fit(_huge((10**6, 3)), _huge((10**6,)))
    else:
        with pytest.raises(ValueError, match="^X: row 0 contains NaN or infinity"):
            NTKRegressor().fit(x, y).predict(x[:4] * 1e200)


def test_from_params_refuses_a_huge_W_before_allocating_it():
    import time

    mlp = ntkfast.MLP(1, "relu")
    start = time.perf_counter()
    with pytest.raises(MemoryError, match=r"^params: params\[0\]'s W has shape \(1000000, 1000000\)"):
        Network.from_params(mlp, [(_huge((10**6, 10**6)), None), (np.ones((10**6, 1)), None)])
    assert time.perf_counter() - start < 5
    # the checks on ordinary parameters are unchanged
    w = np.ones((3, 4))
    w[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^params: params\[0\]'s W contains NaN or infinity"):
        Network.from_params(mlp, [(w, None), (np.ones((4, 1)), None)])
    params = init_params(mlp, 3, 4, 2, seed=1)
    net = Network.from_params(mlp, [(np.asfortranarray(w_), b) for w_, b in params])  # any memory order
    for (w0, b0), (w1, b1) in zip(params, net.params):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)
    ints = Network.from_params(ntkfast.MLP(1, "relu", b_std=0.1),
                               [(np.ones((3, 4), dtype=np.int32), np.zeros(4, dtype=np.int64)),
                                (np.asfortranarray(np.ones((4, 2), dtype=np.float32)), np.ones((1, 2)))])
    np.testing.assert_array_equal(ints.params[0][0], np.ones((3, 4)))


def test_min_norm_solution_with_duplicate_rows_names_x():
    x, y = data()
    net = ntkfast.MLP(2, "relu", W_std=1.5, b_std=0.1).init(3, width=8, out_dim=2, seed=0)
    with pytest.raises(ValueError, match=r"^x: the empirical NTK on x .*singular.*row 6 equals row 0") as info:
        net.min_norm_solution(np.vstack([x, x]), np.vstack([y, y]))
    assert "diag_reg" not in str(info.value)  # the method has no diag_reg
    solution = net.min_norm_solution(x, y)  # distinct rows: solvable as before
    assert np.isfinite(solution.norm) and solution.sigma_min > 0


def test_train_steps_and_x_test_errors_name_the_argument():
    x, y = data()
    net = ntkfast.MLP(2, "relu", W_std=1.5, b_std=0.1).init(3, width=8, out_dim=2, seed=0)
    with pytest.raises((MemoryError, ValueError), match="^steps"):
        net.train(x, y, learning_rate=0.5, steps=10**12)
    with pytest.raises(ValueError, match="^x_test"):
        net.train(x, y, learning_rate=0.5, steps=2, x_test=x[:4] * np.nan, y_test=y[:4])
