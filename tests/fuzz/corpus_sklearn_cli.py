"""Fuzz cases: the scikit-learn estimators and kernel, and the ``ntkfast`` command line."""

from functools import partial

from harness import Case, ok, raises

S = partial(Case, "sklearn")
CLI = partial(Case, "cli")

SK = ("from ntkfast.sklearn import NTKRegressor, NTKClassifier, NTKKernel\n"
      "labels = np.array([0, 1, 2, 0, 1, 2])\n")
# runs the CLI in-process and returns (exit code, stdout, stderr)
RUN_CLI = ("import contextlib, io\nfrom ntkfast.cli import main\n"
           "def run_cli(*argv):\n"
           "    out, err = io.StringIO(), io.StringIO()\n"
           "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
           "        try:\n            code = main(list(argv))\n"
           "        except SystemExit as e:\n            code = e.code\n"
           "    return code, out.getvalue(), err.getvalue()\n")


def bad_param(name: str, kwargs: str, names: tuple, estimator: str = "NTKRegressor") -> Case:
    targets = "labels" if estimator == "NTKClassifier" else "y"
    return S(f"{estimator}_{name}", SK + f"{estimator}({kwargs}).fit(X, {targets})",
             raises("ValueError|TypeError", *names))


CASES = [
    S("regressor", SK + "NTKRegressor().fit(X, Y).predict(X2)", ok()),
    S("regressor_finite_t", SK + "NTKRegressor(t=10.0, get='nngp').fit(X, y).predict(X2)", ok()),
    S("classifier", SK + "c = NTKClassifier(depth=2).fit(X, labels)\n(c.predict(X2), c.decision_function(X2), "
      "c.score(X, labels))", ok()),
    S("classifier_one_class", SK + "NTKClassifier().fit(X, np.zeros(6)).predict(X2)",
      (ok(), raises("ValueError", "y"))),
    S("gaussian_process", SK + "from sklearn.gaussian_process import GaussianProcessRegressor\n"
      "g = GaussianProcessRegressor(kernel=NTKKernel(depth=3, get='nngp')).fit(X, y)\ng.predict(X2, return_std=True)",
      ok()),
    S("kernel_ridge", SK + "from sklearn.kernel_ridge import KernelRidge\n"
      "KernelRidge(kernel=NTKKernel(depth=2)).fit(X, y).predict(X2)", ok()),
    S("kernel_gradient", SK + "NTKKernel()(X, eval_gradient=True)", ok()),
    S("kernel_diag", SK + "k = NTKKernel()\nassert np.allclose(k.diag(X), np.diag(k(X)))\nk.diag(X)", ok()),
    S("kernel_gradient_with_Y", SK + "NTKKernel()(X, X2, eval_gradient=True)", raises("ValueError", "eval_gradient")),
    S("kernel_get_unknown", SK + "NTKKernel(get='gp')(X)", raises("ValueError|TypeError", "get")),
    S("clone_and_pickle", SK + "import pickle\nfrom sklearn.base import clone\nr = NTKRegressor().fit(X, y)\n"
      "p = pickle.loads(pickle.dumps(r))\nassert np.array_equal(p.predict(X2), r.predict(X2))\n"
      "clone(r).fit(X, y).predict(X2)", ok()),
    S("predict_unfitted", SK + "NTKRegressor().predict(X)", raises("NotFittedError")),
    S("predict_features", SK + "NTKRegressor().fit(X, y).predict(X2[:, :2])", raises("ValueError", "X")),
    S("fit_X_nan", SK + "x = X.copy(); x[0, 0] = np.nan\nNTKRegressor().fit(x, y)", raises("ValueError", "X")),
    S("fit_y_nan", SK + "t = y.copy(); t[0] = np.nan\nNTKRegressor().fit(X, t)", raises("ValueError", "y")),
    S("fit_X_scaled_1e200", SK + "NTKRegressor().fit(X * 1e200, y)", raises("ValueError", "X")),
    S("predict_X_scaled_1e200", SK + "NTKRegressor().fit(X, y).predict(X2 * 1e200)", raises("ValueError", "X")),
    S("fit_X_200000_rows", SK + "NTKRegressor(solver='cholesky').fit(huge((200_000, 3)), huge((200_000,)))",
      raises("MemoryError|ValueError", "X"), timeout=30),
    S("fit_duplicates_no_diag_reg", SK + "NTKRegressor(diag_reg=0.0).fit(np.vstack([X, X]), np.r_[y, y])",
      raises("ValueError", "diag_reg")),
    bad_param("depth_negative", "depth=-1", ("depth",)),
    bad_param("depth_float", "depth=2.5", ("depth",)),
    bad_param("activation_unknown", "activation='rellu'", ("activation",)),
    bad_param("W_std_zero", "W_std=0.0", ("W_std",)),
    bad_param("b_std_nan", "b_std=float('nan')", ("b_std",)),
    bad_param("get_unknown", "get='ntkgp'", ("get",)),
    bad_param("t_negative", "t=-1.0", ("t",)),
    bad_param("t_array", "t=[1.0, 2.0]", ("t",)),
    bad_param("diag_reg_negative", "diag_reg=-1.0", ("diag_reg",)),
    bad_param("standard_without_width", "parameterization='standard'", ("width",)),
    bad_param("width_1e30", "parameterization='standard', width=10**30", ("width",)),
    bad_param("parameterization_unknown", "parameterization='mup'", ("parameterization",)),
    bad_param("depth_negative", "depth=-1", ("depth",), estimator="NTKClassifier"),
    bad_param("get_unknown", "get='cov'", ("get",), estimator="NTKClassifier"),
    # command line
    CLI("no_arguments", RUN_CLI + "code, out, err = run_cli()\nassert code == 2 and 'usage' in err, (code, err)\ncode",
        ok()),
    CLI("bogus_option", RUN_CLI + "code, out, err = run_cli('--bogus')\n"
        "assert code == 2 and '--bogus' in err, f'exit {code}, stderr: {err!r}'\ncode", ok()),
    CLI("bogus_command", RUN_CLI + "code, out, err = run_cli('demoo')\n"
        "assert code == 2 and 'demoo' in err, f'exit {code}, stderr: {err!r}'\ncode", ok()),
    CLI("version", RUN_CLI + "code, out, err = run_cli('--version')\n"
        "assert code in (0, None) and ntkfast.__version__ in out + err, f'exit {code}: {out!r} {err!r}'\ncode", ok()),
    CLI("demo_help", RUN_CLI + "code, out, err = run_cli('demo', '--help')\n"
        "assert code == 0 and 'report.md' in out and 'minute' in out, f'demo --help says: {out!r}'\ncode", ok()),
    # a clean message and a failing exit status, or at least an exception naming the path
    CLI("demo_out_not_a_directory", RUN_CLI + "code, out, err = run_cli('demo', '--quick', '--out', '/dev/null/sub')\n"
        "assert code not in (0, None) and '/dev/null/sub' in err, f'exit {code}, stderr: {err!r}'\ncode",
        (ok(), raises("OSError|ValueError", "/dev/null/sub")), timeout=60),
    CLI("python_m_bogus", "import subprocess\n"
        "p = subprocess.run([sys.executable, '-m', 'ntkfast', '--bogus'], capture_output=True, text=True, timeout=60)\n"
        "assert p.returncode == 2 and '--bogus' in p.stderr, (p.returncode, p.stderr)\np.returncode", ok(), timeout=60),
]
