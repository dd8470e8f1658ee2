"""Fuzz cases: finite-width networks (``MLP.init``, ``Network``), training, Monte Carlo kernels."""

from functools import partial

from harness import Case, ok, raises, warns

F = partial(Case, "finite")
T = partial(Case, "train")

MEMORY = "MemoryError|ValueError"
SPEC = "m = MLP(2, 'relu', W_std=1.5, b_std=0.1)\n"
NET = SPEC + "net = m.init(3, width=8, out_dim=2, seed=0)\n"
# a tiny network whose per-row cost is tiny (width 2) and one whose per-row memory is 8 KB (width 1024)
NARROW = "net = MLP(1, 'relu').init(1, width=2)\n"
WIDE = "net = MLP(1, 'relu').init(1, width=1024)\n"
ROWS_1E7 = "huge((10**7, 1))"
ROWS_200K = "huge((200_000, 1))"
# Diverging training must raise, or warn and keep the last finite state, naming the learning rate;
# never leave NaN parameters or an inf loss silently. Training that stays finite is fine too.
DIVERGES = (raises("ValueError|ArithmeticError|FloatingPointError|RuntimeError", "learning_rate"), ok())
DIVERGING = """
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    history = {model}.train(X, {targets}, learning_rate={lr}, steps={steps})
warned = any("learning_rate" in str(w.message) for w in caught)
assert warned or np.all(np.isfinite(history.train_loss)), f"the loss reached {{history.train_loss.max()}} silently"
({outputs})
"""


def diverging(name: str, setup: str, lr: str, model: str = "net", targets: str = "Y", steps: int = 20,
              outputs: str = "net.params, net.apply(X), net.ntk(X)") -> Case:
    code = setup + DIVERGING.format(model=model, targets=targets, lr=lr, steps=steps, outputs=outputs)
    return Case("train", name, code, DIVERGES)


PAIR = "[(np.ones((3, 4)), np.zeros(4)), (np.ones((4, 1)), np.zeros(1))]"

SCALED = SPEC + "net = m.init(3, width=8, out_dim=2, seed=0, output_scale={alpha}, centered={centered})\n"

CASES = [
    F("init_apply", NET + "net.apply(X)", ok()),
    diverging("scaled_lr_1e8", SCALED.format(alpha=10.0, centered=True), "1e8"),
    # the output scale (lazy training): finite or named
    F("scaled_centered_everything", SCALED.format(alpha=8.0, centered=True) + "h = net.train(X, Y, learning_rate=1e-3, "
      "steps=3)\nlin = net.linearize()\n(net.apply(X), net.ntk(X, X2), net.nngp(X), net.min_norm_solution(X[:2], "
      "Y[:2]).norm, lin.apply(X2), h)", ok()),
    F("frozen_readout", "m = MLP(2, 'relu', W_std=1.5, b_std=0.1, train_readout=False)\n"
      "net = m.init(3, width=8, out_dim=2, seed=0)\nh = net.train(X, Y, learning_rate=0.1, steps=3)\n"
      "(m.kernel(X, X2), net.ntk(X, trace=False), net.linearize().apply(X), h, net.validity(X[:2], Y[:2]))", ok()),
    F("frozen_everything", "from ntkfast import stax\nspec = stax.serial(stax.Dense(4, trainable=False), stax.Relu(), "
      "stax.Dense(2, trainable=False))\nnet = spec.init(3)\n(spec.kernel(X), net.ntk(X), "
      "net.train(X, Y, learning_rate=0.1, steps=2))", ok()),
    F("frozen_everything_min_norm", "from ntkfast import stax\nspec = stax.serial(stax.Dense(4, trainable=False), "
      "stax.Relu(), stax.Dense(2, trainable=False))\nspec.init(3).min_norm_solution(X[:2], Y[:2])",
      raises("ValueError", "x")),
    F("monte_carlo_predict", SPEC + "import ntkfast\nntkfast.monte_carlo_predict(m, X, Y[:, :1], X2, width=8, "
      "n_networks=3, t=1.0, learning_rate=0.1)", ok()),
    F("monte_carlo_predict_t_nan", SPEC + "import ntkfast\nntkfast.monte_carlo_predict(m, X, Y, X2, width=8, "
      "n_networks=3, t=float('nan'), learning_rate=0.1)", raises("ValueError", "t")),
    F("monte_carlo_predict_networks_zero", SPEC + "import ntkfast\nntkfast.monte_carlo_predict(m, X, Y, X2, "
      "width=8, n_networks=0, t=1.0, learning_rate=0.1)", raises("ValueError", "n_networks")),
    F("monte_carlo_predict_lr_1e8", SPEC + "import ntkfast\nntkfast.monte_carlo_predict(m, X, Y, X2, width=8, "
      "n_networks=2, t=1e9, learning_rate=1e8)", raises("ValueError", "learning_rate")),
    F("validity", SCALED.format(alpha=2.0, centered=True) + "net.validity(X[:3], Y[:3])", ok()),
    F("validity_iterations_zero", NET + "net.validity(X[:3], Y[:3], iterations=0)", raises("ValueError", "iterations")),
    F("validity_y_shape", NET + "net.validity(X[:3], Y[:2])", raises("ValueError", "y")),
    F("validity_duplicate_inputs", NET + "net.validity(np.vstack([X[:2], X[:2]]), Y[:4])",
      (ok(), raises("ValueError", "x"))),
    F("scaled_1e300_apply", SCALED.format(alpha=1e300, centered=False) + "net.apply(X)",
      (ok(), raises("ValueError", "output_scale"))),
    F("scaled_1e200_ntk", SCALED.format(alpha=1e200, centered=True) + "net.ntk(X)", raises("ValueError", "output_scale")),
    F("scaled_zero", SCALED.format(alpha=0.0, centered=False), raises("ValueError", "output_scale")),
    F("scaled_inf", SCALED.format(alpha="float('inf')", centered=False), raises("ValueError", "output_scale")),
    F("scaled_str", SCALED.format(alpha="'2'", centered=False), raises("TypeError", "output_scale")),
    F("centered_str", SCALED.format(alpha=1.0, centered="'yes'"), raises("TypeError", "centered")),
    F("scaled_composed_cnn", "from ntkfast import stax\nnet = stax.serial(stax.Conv(3, (2, 2)), stax.Relu(), "
      "stax.Flatten(), stax.Dense(1)).init((3, 3, 1), output_scale=4.0, centered=True)\n"
      "imgs = np.random.default_rng(0).standard_normal((3, 3, 3, 1))\n"
      "(net.train(imgs, np.ones(3), learning_rate=0.01, steps=2), net.ntk(imgs), net.apply(imgs))", ok()),
    F("ntk", NET + "(net.ntk(X), net.ntk(X, X2), net.ntk(X2, X, trace=False))", ok()),
    F("nngp", NET + "(net.nngp(X), net.nngp(X, X2))", ok()),
    F("params_repr", NET + "(net.params, repr(net), net.in_dim, net.out_dim)", ok()),
    F("standard", "MLP(2, 'erf', parameterization='standard', width=8).init(3, width=8).ntk(X)", ok()),
    F("depth_0", "MLP(0, 'relu', b_std=0.1).init(3, width=8).ntk(X)", ok()),
    F("every_alias_apply", "[MLP(2, name, b_std=0.1).init(3, width=4).ntk(X) for name in sorted(A.ALIASES)]", ok(),
      timeout=60),
    F("in_dim_zero", SPEC + "m.init(0, width=8)", raises("ValueError", "in_dim")),
    F("in_dim_float", SPEC + "m.init(2.5, width=8)", raises("TypeError|ValueError", "in_dim")),
    F("width_zero", SPEC + "m.init(3, width=0)", raises("ValueError", "width")),
    F("width_1e30", SPEC + "m.init(3, width=10**30)",
      raises("ValueError|OverflowError|TypeError|MemoryError", "width")),
    F("width_1e6_in_dim_1e6", SPEC + "m.init(10**6, width=10**6)", raises(MEMORY, "width", "in_dim")),
    F("out_dim_zero", SPEC + "m.init(3, width=8, out_dim=0)", raises("ValueError", "out_dim")),
    F("seed_negative", SPEC + "m.init(3, width=8, seed=-1)", raises("ValueError", "seed")),
    F("seed_str", SPEC + "m.init(3, width=8, seed='a')", raises("TypeError|ValueError", "seed")),
    F("seed_float", SPEC + "m.init(3, width=8, seed=1.5)", raises("TypeError|ValueError", "seed")),
    F("seed_none", SPEC + "m.init(3, width=8, seed=None).apply(X)", ok()),
    F("seed_generator", SPEC + "m.init(3, width=8, seed=np.random.default_rng(1)).apply(X)", ok()),
    F("seed_2_200", SPEC + "m.init(3, width=8, seed=2**200).apply(X)", ok()),
    F("standard_width_differs", "m = MLP(2, 'relu', parameterization='standard', width=8)\nm.init(3, width=16).ntk(X)",
      (ok(), raises("ValueError", "width"))),
    # from_params
    F("from_params", "m = MLP(1, 'relu', b_std=0.1)\nNetwork.from_params(m, " + PAIR + ").apply(X)", ok()),
    F("from_params_nt_layout", "m = MLP(1, 'relu', b_std=0.1)\n"
      "Network.from_params(m, [(np.ones((3, 4)), np.zeros((1, 4))), (), (np.ones((4, 1)), np.zeros((1, 1)))]).apply(X)",
      ok()),
    F("from_params_lists", "m = MLP(1, 'relu', b_std=0.1)\n"
      "Network.from_params(m, [([[1.0] * 4] * 3, [0.0] * 4), ([[1.0]] * 4, [0.0])]).apply(X)", ok()),
    F("from_params_mlp_none", "Network.from_params(None, " + PAIR + ")", raises("TypeError|ValueError", "mlp")),
    F("from_params_mlp_string", "Network.from_params('relu', " + PAIR + ")", raises("TypeError|ValueError", "mlp")),
    F("from_params_none", "Network.from_params(MLP(1, 'relu'), None)", raises("TypeError|ValueError", "params")),
    F("from_params_empty", "Network.from_params(MLP(1, 'relu'), [])", raises("ValueError|TypeError", "params")),
    F("from_params_layer_count", "Network.from_params(MLP(3, 'relu', b_std=0.1), " + PAIR + ")",
      raises("ValueError", "params")),
    F("from_params_shapes", "Network.from_params(MLP(1, 'relu', b_std=0.1), "
      "[(np.ones((3, 4)), np.zeros(4)), (np.ones((5, 1)), np.zeros(1))])", raises("ValueError", "params")),
    F("from_params_complex_W", "Network.from_params(MLP(1, 'relu', b_std=0.1), "
      "[(np.ones((3, 4)) * (1 + 1j), np.zeros(4)), (np.ones((4, 1)), np.zeros(1))])",
      raises("TypeError|ValueError", "params", "W")),
    F("from_params_nan_W", "w = np.ones((3, 4)); w[0, 0] = np.nan\n"
      "Network.from_params(MLP(1, 'relu', b_std=0.1), [(w, np.zeros(4)), (np.ones((4, 1)), np.zeros(1))])",
      raises("ValueError", "params", "W")),
    F("from_params_inf_b", "Network.from_params(MLP(1, 'relu', b_std=0.1), "
      "[(np.ones((3, 4)), np.full(4, np.inf)), (np.ones((4, 1)), np.zeros(1))])", raises("ValueError", "params", "b")),
    F("from_params_b_size", "Network.from_params(MLP(1, 'relu', b_std=0.1), "
      "[(np.ones((3, 4)), np.zeros(5)), (np.ones((4, 1)), np.zeros(1))])", raises("ValueError", "params", "b")),
    F("from_params_W_3d", "Network.from_params(MLP(1, 'relu'), [(np.ones((3, 4, 1)), None), (np.ones((4, 1)), None)])",
      raises("ValueError", "params", "W")),
    F("from_params_strings",
      "Network.from_params(MLP(1, 'relu'), [(np.array([['a']]), None), (np.ones((1, 1)), None)])",
      raises("TypeError|ValueError", "params", "W")),
    F("from_params_huge_W", "Network.from_params(MLP(1, 'relu'), [(huge((100_000, 100_000)), None), "
      "(np.ones((100_000, 1)), None)])", raises(MEMORY, "params", "W"), timeout=20),
    # apply / ntk / nngp inputs
    F("apply_features", NET + "net.apply(X[:, :2])", raises("ValueError", "x")),
    F("apply_nan", NET + "x = X.copy(); x[0, 0] = np.nan\nnet.apply(x)", raises("ValueError", "x")),
    F("apply_1d", NET + "net.apply(X[0])", raises("ValueError", "x")),
    F("apply_none", NET + "net.apply(None)", raises("TypeError|ValueError", "x")),
    F("apply_complex", NET + "net.apply(X * 1j)", raises("TypeError|ValueError", "x")),
    F("apply_float32", NET + "net.apply(X.astype(np.float32))", ok()),
    F("apply_scaled_1e160", NET + "net.apply(X * 1e160)", (ok(), raises("ValueError", "x"))),
    F("apply_scaled_1e300", NET + "net.apply(X * 1e300)", (ok(), raises("ValueError", "x"))),
    F("apply_1e7_rows_narrow", NARROW + f"net.apply({ROWS_1E7})", ok(), timeout=60),
    # per-row memory of 80 GB in all: refuse early, or work through the rows in chunks
    F("apply_1e7_rows_wide", WIDE + f"net.apply({ROWS_1E7})", (ok(), raises(MEMORY, "x")), timeout=60),
    F("ntk_trace_str", NET + "net.ntk(X, trace='no')", raises("TypeError|ValueError", "trace")),
    F("ntk_trace_none", NET + "net.ntk(X, trace=None)", raises("TypeError|ValueError", "trace")),
    F("ntk_x2_features", NET + "net.ntk(X, X2[:, :2])", raises("ValueError", "x2")),
    F("ntk_x1_nan", NET + "x = X.copy(); x[1, 1] = np.nan\nnet.ntk(x)", raises("ValueError", "x1")),
    F("ntk_scaled_1e160", NET + "net.ntk(X * 1e160)", raises("ValueError", "x1")),
    F("nngp_scaled_1e160", NET + "net.nngp(X * 1e160)", raises("ValueError", "x1")),
    F("ntk_untraced_scaled_1e160", NET + "net.ntk(X * 1e160, trace=False)", raises("ValueError", "x1")),
    F("issue_ntk_200000_rows", "MLP(1, 'relu').init(1, width=2).ntk(" + ROWS_200K + ")", raises(MEMORY, "x1"),
      timeout=20),
    F("ntk_200000_rows_x2", NARROW + f"net.ntk({ROWS_200K}, {ROWS_200K})", raises(MEMORY, "x1", "x2"), timeout=20),
    F("ntk_untraced_200000_rows", NARROW + f"net.ntk({ROWS_200K}, trace=False)", raises(MEMORY, "x1"), timeout=20),
    F("nngp_200000_rows", NARROW + f"net.nngp({ROWS_200K})", raises(MEMORY, "x1"), timeout=20),
    F("nngp_200000_rows_x2", NARROW + f"net.nngp({ROWS_200K}, {ROWS_200K})", raises(MEMORY, "x1", "x2"), timeout=20),
    F("ntk_3e6_rows_wide_small_x2", WIDE + "net.ntk(huge((3 * 10**6, 1)), X[:2, :1])", (ok(), raises(MEMORY, "x1")),
      timeout=60),
    F("min_norm_solution", NET + "net.min_norm_solution(X, Y)", ok()),
    F("min_norm_solution_duplicates", NET + "net.min_norm_solution(np.vstack([X, X]), np.vstack([Y, Y]))",
      raises("ValueError", "x")),
    F("min_norm_solution_y_shape", NET + "net.min_norm_solution(X, Y[:, :1])", raises("ValueError", "y")),
    # Monte Carlo
    F("monte_carlo", SPEC + "ntkfast.monte_carlo_kernel(m, X, X2, width=16, n_samples=4)", ok()),
    F("monte_carlo_get_string_is_array",
      SPEC + "r = ntkfast.monte_carlo_kernel(m, X, width=16, n_samples=4, get='ntk')\n"
      "assert isinstance(r, np.ndarray), f'get=\"ntk\" returned {type(r).__name__}, mlp.kernel returns the array'\nr",
                         ok()),
    F("monte_carlo_one_sample", SPEC + "ntkfast.monte_carlo_kernel(m, X, width=16, n_samples=1)", ok()),
    F("monte_carlo_n_samples_zero", SPEC + "ntkfast.monte_carlo_kernel(m, X, width=16, n_samples=0)",
      raises("ValueError", "n_samples")),
    F("monte_carlo_n_samples_float", SPEC + "ntkfast.monte_carlo_kernel(m, X, width=16, n_samples=2.5)",
      raises("TypeError|ValueError", "n_samples")),
    F("monte_carlo_width_zero", SPEC + "ntkfast.monte_carlo_kernel(m, X, width=0, n_samples=2)",
      raises("ValueError", "width")),
    F("monte_carlo_width_1e30", SPEC + "ntkfast.monte_carlo_kernel(m, X, width=10**30, n_samples=2)",
      raises("ValueError|OverflowError|TypeError|MemoryError", "width")),
    F("monte_carlo_get_unknown", SPEC + "ntkfast.monte_carlo_kernel(m, X, width=4, n_samples=2, get='cov')",
      raises("ValueError", "get")),
    F("monte_carlo_x1_nan", SPEC + "ntkfast.monte_carlo_kernel(m, np.full((2, 3), np.nan), width=4, n_samples=2)",
      raises("ValueError", "x1")),
    F("monte_carlo_x2_features", SPEC + "ntkfast.monte_carlo_kernel(m, X, X2[:, :2], width=4, n_samples=2)",
      raises("ValueError", "x2")),
    F("monte_carlo_200000_rows", SPEC + "ntkfast.monte_carlo_kernel(m, huge((200_000, 3)), width=4, n_samples=2)",
      raises(MEMORY, "x1"), timeout=20),
    F("monte_carlo_scaled_1e160", SPEC + "ntkfast.monte_carlo_kernel(m, X * 1e160, width=4, n_samples=2)",
      raises("ValueError", "x1")),
    # train
    T("train", NET + "net.train(X, Y, learning_rate=0.5, steps=5, x_test=X2, y_test=Y[:4])", ok()),
    T("train_1d_targets", "net = MLP(2, 'erf').init(3, width=8)\nnet.train(X, y, learning_rate=0.5, steps=3)", ok()),
    T("train_steps_zero", NET + "net.train(X, Y, learning_rate=0.5, steps=0)", ok()),
    T("train_steps_numpy", NET + "net.train(X, Y, learning_rate=0.5, steps=np.int64(2))", ok()),
    T("train_steps_float", NET + "net.train(X, Y, learning_rate=0.5, steps=1.5)",
      raises("TypeError|ValueError", "steps")),
    T("train_steps_str", NET + "net.train(X, Y, learning_rate=0.5, steps='3')",
      raises("TypeError|ValueError", "steps")),
    T("train_steps_bool", NET + "net.train(X, Y, learning_rate=0.5, steps=True)",
      raises("TypeError|ValueError", "steps")),
    T("train_steps_none", NET + "net.train(X, Y, learning_rate=0.5, steps=None)",
      raises("TypeError|ValueError", "steps")),
    T("train_steps_negative", NET + "net.train(X, Y, learning_rate=0.5, steps=-1)", raises("ValueError", "steps")),
    T("train_steps_1e12", NET + "net.train(X, Y, learning_rate=0.5, steps=10**12)", raises(MEMORY, "steps"),
      timeout=20),
    T("train_lr_bool", NET + "net.train(X, Y, learning_rate=True, steps=2)",
      raises("TypeError|ValueError", "learning_rate")),
    T("train_lr_zero", NET + "net.train(X, Y, learning_rate=0.0, steps=2)", raises("ValueError", "learning_rate")),
    T("train_lr_nan", NET + "net.train(X, Y, learning_rate=float('nan'), steps=2)",
      raises("ValueError", "learning_rate")),
    T("train_lr_inf", NET + "net.train(X, Y, learning_rate=float('inf'), steps=2)",
      raises("ValueError", "learning_rate")),
    T("train_lr_str", NET + "net.train(X, Y, learning_rate='0.1', steps=2)",
      raises("TypeError|ValueError", "learning_rate")),
    T("train_lr_none", NET + "net.train(X, Y, learning_rate=None, steps=2)",
      raises("TypeError|ValueError", "learning_rate")),
    diverging("issue_train_diverges_lr_1e8", NET, "1e8"),
    diverging("train_diverges_erf_lr_1e8", "net = MLP(2, 'erf', W_std=1.5, b_std=0.1).init(3, width=8, out_dim=2)\n",
              "1e8"),
    diverging("train_diverges_tanh_lr_100", "net = MLP(2, 'tanh', W_std=1.5).init(3, width=8, out_dim=2)\n", "100.0",
              steps=200),
    diverging("train_diverges_huge_targets", NET, "0.5", targets="Y * 1e300", steps=10),
    diverging("linearized_diverges_lr_1e8", NET + "lin = net.linearize()\n", "1e8", model="lin",
              outputs="lin.delta, lin.apply(X)"),
    T("train_y_shape", NET + "net.train(X, Y[:, :1], learning_rate=0.5, steps=2)", raises("ValueError", "y")),
    T("train_y_nan", NET + "t = Y.copy(); t[0, 0] = np.nan\nnet.train(X, t, learning_rate=0.5, steps=2)",
      raises("ValueError", "y")),
    T("train_x_nan", NET + "x = X.copy(); x[0, 0] = np.nan\nnet.train(x, Y, learning_rate=0.5, steps=2)",
      raises("ValueError", "x")),
    T("train_x_test_without_y_test", NET + "net.train(X, Y, learning_rate=0.5, steps=2, x_test=X2)",
      raises("TypeError|ValueError", "y_test")),
    T("train_y_test_shape", NET + "net.train(X, Y, learning_rate=0.5, steps=2, x_test=X2, y_test=Y)",
      raises("ValueError", "y_test")),
    T("train_x_test_nan", NET + "net.train(X, Y, learning_rate=0.5, steps=2, x_test=X2 * np.nan, y_test=Y[:4])",
      raises("ValueError", "x_test")),
    T("train_record_every_zero", NET + "net.train(X, Y, learning_rate=0.5, steps=2, record_every=0)",
      raises("ValueError", "record_every")),
    T("train_record_every_float", NET + "net.train(X, Y, learning_rate=0.5, steps=2, record_every=0.5)",
      raises("TypeError|ValueError", "record_every")),
    T("train_3e6_rows_wide", WIDE + "net.train(huge((3 * 10**6, 1)), huge((3 * 10**6, 1)), learning_rate=0.1, "
      "steps=1)", (ok(), raises(MEMORY, "x")), timeout=60),
    T("copy_is_independent", NET + "c = net.copy()\nbefore = net.apply(X)\nc.train(X, Y, learning_rate=0.5, steps=3)\n"
      "assert np.array_equal(before, net.apply(X)), 'training the copy changed the original'\nbefore", ok()),
    T("linearize", NET + "lin = net.linearize()\nh = lin.train(X, Y, learning_rate=0.5, steps=3)\n"
      "(h, lin.apply(X2), lin.delta)",
      ok()),
    T("linearize_after_train", NET + "net.train(X, Y, learning_rate=0.5, steps=3)\nnet.linearize().apply(X)", ok()),
    T("linearized_apply_1e7_rows_wide", WIDE + f"net.linearize().apply({ROWS_1E7})", (ok(), raises(MEMORY, "x")),
      timeout=60),
    T("linearized_steps_float", NET + "net.linearize().train(X, Y, learning_rate=0.5, steps=2.5)",
      raises("TypeError|ValueError", "steps")),
]
