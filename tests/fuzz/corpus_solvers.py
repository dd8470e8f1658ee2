"""Fuzz cases: matrix-free kernels and solvers (``kernel_operator``, ``kernel(..., out=)``,
``predict(..., solver="cg" | "nystrom")``).

What the library promises here (README "Large datasets" and "Failing loudly"): a bad product
vector, output array or solver argument is a ValueError/TypeError naming it (``v``, ``out``,
``tol``, ``maxiter``, ``n_centers``, ``centers``, ``solver``); combinations a solver does not
support are NotImplementedError naming the argument and the solvers that do; a singular system is
an error suggesting ``diag_reg``, never NaN; a solve that stops short warns naming ``maxiter``.
"""

from functools import partial

from harness import Case, ok, raises, warns

S = partial(Case, "solvers")
ARG = "TypeError|ValueError"

RELU = "m = MLP(2, 'relu', W_std=1.5, b_std=0.1)\n"
OP = RELU + "op = m.kernel_operator(X, get='ntk')\n"
XS = "xs = rng.standard_normal((300, 3)); ys = np.sin(xs[:, :2])\n"
DUP = "xd = np.vstack([xs, xs]); yd = np.vstack([ys, ys])\n"
# the preconditioner's diagonal blocks smaller than n (by default they hold 1000 inputs)
BLOCKS = "from ntkfast.solvers import regression\nregression.PRECONDITIONER_BLOCK = 64\n"

CASES = [
    # kernel_operator
    S("operator_matvec", OP + "op @ np.ones(6)", ok()),
    S("operator_matmat_f_order", OP + "op @ np.asfortranarray(rng.standard_normal((6, 3)))", ok()),
    S("operator_float32", RELU + "m.kernel_operator(X.astype(np.float32)) @ np.ones(6)", ok()),
    S("operator_v_nan", OP + "v = np.ones(6); v[2] = np.nan\nop @ v", raises("ValueError", "v")),
    S("operator_v_inf", OP + "op @ np.full((6, 2), np.inf)", raises("ValueError", "v")),
    S("operator_v_rows", OP + "op @ np.ones(5)", raises("ValueError", "v")),
    S("operator_v_3d", OP + "op @ np.ones((6, 2, 2))", raises("ValueError", "v")),
    S("operator_v_complex", OP + "op @ np.ones(6, dtype=complex)", raises(ARG, "v")),
    S("operator_v_strings", OP + "op @ np.array(['a'] * 6)", raises(ARG, "v")),
    S("operator_v_huge_values", OP + "op @ np.full(6, 1e300)", (ok(), raises("ValueError", "x1", "v"))),
    S("operator_get_tuple", RELU + "m.kernel_operator(X, get=('nngp', 'ntk'))", raises("ValueError", "get")),
    S("operator_diag_reg_nan", RELU + "m.kernel_operator(X, diag_reg=float('nan'))", raises(ARG, "shift", "diag_reg")),
    S("operator_x_nan", RELU + "x = X.copy(); x[0, 0] = np.nan\nm.kernel_operator(x) @ np.ones(6)",
      raises("ValueError", "x1")),
    S("operator_cross_features", RELU + "m.kernel_operator(X, X2[:, :2]) @ np.ones(4)", raises("ValueError", "x2")),
    S("operator_huge_rows", RELU + "m.kernel_operator(huge((10**7, 3), 0.3), X) @ np.ones(6)", ok(), timeout=120),
    # kernel(..., out=)
    S("out_array", RELU + "o = np.empty((6, 4))\nm.kernel(X, X2, get='ntk', out=o)", ok()),
    S("out_tuple", RELU + "m.kernel(X, X2, out=(np.empty((6, 4)), np.empty((6, 4))))", ok()),
    S("out_shape", RELU + "m.kernel(X, X2, get='ntk', out=np.empty((4, 6)))", raises("ValueError", "out")),
    S("out_dtype_int", RELU + "m.kernel(X, get='ntk', out=np.empty((6, 6), dtype=int))", raises(ARG, "out")),
    S("out_non_contiguous", RELU + "m.kernel(X, get='ntk', out=np.empty((6, 12))[:, ::2])",
      raises("ValueError", "out")),
    S("out_readonly", RELU + "o = np.empty((6, 6)); o.flags.writeable = False\nm.kernel(X, get='ntk', out=o)",
      raises("ValueError", "out")),
    S("out_list", RELU + "m.kernel(X, get='ntk', out=[[0.0] * 6] * 6)", raises(ARG, "out")),
    S("out_mixed_dtypes", RELU + "m.kernel(X, out=(np.empty((6, 6)), np.empty((6, 6), dtype=np.float32)))",
      raises(ARG, "out")),
    S("out_broadcast_view", RELU + "m.kernel(X, get='ntk', out=np.broadcast_to(np.zeros(6), (6, 6)))",
      raises("ValueError", "out")),
    S("out_overflow", RELU + "o = np.empty((6, 6))\nm.kernel(X * 1e200, get='ntk', out=o)", raises("ValueError", "x1")),
    # predict with the matrix-free solvers
    S("cg_converged", RELU + XS + "m.predict(xs, ys, X2, solver='cg', diag_reg=1e-3)", ok()),
    S("cg_times", RELU + XS + "m.predict(xs, ys, X2, t=[0.0, 1.0, np.inf], solver='cg', diag_reg=1e-3)", ok()),
    S("cg_train_times", RELU + XS + "m.predict(xs, ys, None, t=10.0, solver='cg', diag_reg=1e-3)", ok()),
    S("cg_cov", RELU + XS + "m.predict(xs, ys, X2, compute_cov=True, get=('nngp', 'ntk'), solver='cg', "
      "diag_reg=1e-3)", ok()),
    S("cg_float32", RELU + XS + "m.predict(xs.astype(np.float32), ys, X2, solver='cg', diag_reg=1e-3)", ok()),
    S("cg_singular_unregularised", RELU + XS + DUP + "m.predict(xd, yd, X2, solver='cg', n_centers=0)",
      (ok(), raises("ValueError", "diag_reg"), warns("RuntimeWarning", "maxiter", "diag_reg"))),
    S("cg_duplicates_regularised", RELU + XS + DUP + "m.predict(xd, yd, X2, solver='cg', diag_reg=1e-3)", ok()),
    S("cg_identical_rows", RELU + "m.predict(huge((500, 3), 0.5), huge((500,), 1.0), X2, solver='cg', diag_reg=1e-3)",
      ok()),
    S("cg_blocks_duplicates", RELU + XS + DUP + BLOCKS + "m.predict(xd, yd, X2, solver='cg', diag_reg=1e-3)", ok()),
    S("cg_blocks_identical_rows", RELU + BLOCKS + "m.predict(huge((500, 3), 0.5), huge((500,), 1.0), X2, solver='cg', "
      "diag_reg=1e-3)", ok()),
    S("cg_blocks_tiny_reg", RELU + XS + DUP + BLOCKS + "m.predict(xd, yd, X2, solver='cg', diag_reg=1e-15)",
      (ok(), raises("ValueError", "diag_reg"), warns("RuntimeWarning", "maxiter", "diag_reg"))),
    S("cg_blocks_zero_inputs", "m = MLP(2, 'relu', W_std=1.5, b_std=0.0)\n" + BLOCKS +
      "m.predict(np.zeros((300, 3)), np.ones(300), X2, solver='cg', diag_reg=1e-3)",
      raises("ValueError", "diag_reg")),
    S("cg_blocks_zero_inputs_absolute", "m = MLP(2, 'relu', W_std=1.5, b_std=0.0)\n" + BLOCKS +
      "m.predict(np.zeros((300, 3)), np.ones(300), X2, solver='cg', diag_reg=1e-3, diag_reg_absolute_scale=True)",
      ok()),
    S("cg_blocks_float32_extremes", RELU + BLOCKS + "x = rng.standard_normal((400, 3)).astype(np.float32) * "
      "np.float32(1e15)\nm.predict(x, np.ones(400), X2, solver='cg', diag_reg=1e-3)",
      (ok(), raises("ValueError", "x_train", "x1"))),
    S("cg_maxiter_short", RELU + XS + "m.predict(xs, ys, X2, solver='cg', diag_reg=1e-6, maxiter=1, n_centers=0)",
      warns("RuntimeWarning", "maxiter")),
    S("cg_tol_zero", RELU + XS + "m.predict(xs, ys, X2, solver='cg', tol=0.0)", raises("ValueError", "tol")),
    S("cg_tol_nan", RELU + XS + "m.predict(xs, ys, X2, solver='cg', tol=float('nan'))", raises("ValueError", "tol")),
    S("cg_tol_str", RELU + XS + "m.predict(xs, ys, X2, solver='cg', tol='1e-6')", raises(ARG, "tol")),
    S("cg_maxiter_float", RELU + XS + "m.predict(xs, ys, X2, solver='cg', maxiter=10.5)", raises(ARG, "maxiter")),
    S("cg_maxiter_bool", RELU + XS + "m.predict(xs, ys, X2, solver='cg', maxiter=True)", raises(ARG, "maxiter")),
    S("cg_n_centers_more_than_n", RELU + XS + "m.predict(xs, ys, X2, solver='cg', n_centers=10**9, diag_reg=1e-3)",
      ok()),
    S("cg_n_centers_negative", RELU + XS + "m.predict(xs, ys, X2, solver='cg', n_centers=-1)",
      raises("ValueError", "n_centers")),
    S("cg_progress_str", RELU + XS + "m.predict(xs, ys, X2, solver='cg', progress='yes')", raises(ARG, "progress")),
    S("solver_unknown", RELU + "m.predict(X, Y, X2, solver='gmres')", raises("ValueError", "solver")),
    S("solver_none", RELU + "m.predict(X, Y, X2, solver=None)", raises(ARG, "solver")),
    S("nystrom_converged", RELU + XS + "m.predict(xs, ys, X2, solver='nystrom', n_centers=50, diag_reg=1e-3)", ok()),
    S("nystrom_leverage", RELU + XS + "m.predict(xs, ys, X2, solver='nystrom', n_centers=50, centers='leverage', "
      "diag_reg=1e-3)", ok()),
    S("nystrom_unregularised", RELU + XS + "m.predict(xs, ys, X2, solver='nystrom', n_centers=50)",
      (ok(), warns("RuntimeWarning", "maxiter", "diag_reg"))),
    S("nystrom_duplicate_centres", RELU + XS + DUP + "m.predict(xd, yd, X2, solver='nystrom', n_centers=600)",
      (ok(), warns("RuntimeWarning", "maxiter", "diag_reg"))),
    S("nystrom_zero_centres", RELU + XS + "m.predict(xs, ys, X2, solver='nystrom', n_centers=0)",
      raises("ValueError", "n_centers")),
    S("nystrom_centers_unknown", RELU + XS + "m.predict(xs, ys, X2, solver='nystrom', centers='kmeans')",
      raises("ValueError", "centers")),
    S("nystrom_finite_t", RELU + XS + "m.predict(xs, ys, X2, t=1.0, solver='nystrom')",
      raises("NotImplementedError", "t")),
    S("nystrom_cov", RELU + XS + "m.predict(xs, ys, X2, compute_cov=True, solver='nystrom')",
      raises("NotImplementedError", "compute_cov")),
    S("cg_cov_finite_t", RELU + XS + "m.predict(xs, ys, X2, t=1.0, compute_cov=True, solver='cg')",
      raises("NotImplementedError", "compute_cov")),
    S("cholesky_finite_t", RELU + "m.predict(X, Y, X2, t=1.0, solver='cholesky')", raises("ValueError", "t")),
    S("cg_x_test_nan", RELU + XS + "x = X2.copy(); x[0, 0] = np.nan\nm.predict(xs, ys, x, solver='cg')",
      raises("ValueError", "x_test")),
    S("cg_y_nan", RELU + XS + "yy = ys.copy(); yy[0, 0] = np.nan\nm.predict(xs, yy, X2, solver='cg')",
      raises("ValueError", "y_train")),
    S("ensemble_cg_plain_function", "predict.gradient_descent_mse_ensemble(lambda a, b=None, get=None: None, X, Y, "
      "solver='cg')", raises("TypeError", "kernel_fn")),
    S("ensemble_cg_learning_rate", RELU + "predict.gradient_descent_mse_ensemble(m.kernel, X, Y, learning_rate=0.5, "
      "solver='cg')", raises("NotImplementedError", "learning_rate")),
]
