"""Fuzz cases: quadrature activations (``Numerical`` with a Python function, built-in names)."""

from functools import partial

from harness import Case, ok, raises, warns

N = partial(Case, "numerical")

MEMORY = "MemoryError|ValueError"
OVERFLOW = ("x1", "depth", "W_std", "b_std")
BUILTINS = ("tanh", "softplus", "silu", "swish", "elu", "selu", "sigmoid", "gelu_tanh")
# What a message about the user's activation function may name: the Numerical argument, or the
# MLP argument it was passed as ("activation: the function ...").
FN = ("fn", "activation")
DFN = ("dfn", "activation")
# A function that behaves on the constructor's 7-point probe and misbehaves on the real call.
MISBEHAVES = "def fn(x):\n    if x.size > 7:\n        {action}\n    return np.tanh(x)\n"


def misbehaving(name: str, action: str, expect, call: str = "MLP(2, A.Numerical(fn)).kernel(X)") -> Case:
    return N(name, MISBEHAVES.format(action=action) + call, expect)


CASES = [
    *[N(f"builtin_{name}", f"cauchy_schwarz(MLP(3, {name!r}, W_std=1.5, b_std=0.1).kernel(X, get='ntk'))", ok())
      for name in BUILTINS],
    N("tanh_float32", "MLP(3, 'tanh', W_std=1.5).kernel(X.astype(np.float32))", ok()),
    N("tanh_depth_50", "cauchy_schwarz(MLP(50, 'tanh', W_std=1.5, b_std=0.1).kernel(X, get='ntk'))", ok(), timeout=60),
    N("tanh_near_duplicates_depth_20",
      "v = rng.standard_normal((1, 8))\nx = np.vstack([v, v, v + 1e-9])\n"
      "k = MLP(20, 'tanh', W_std=1.5, b_std=0.05).kernel(x)\n[cauchy_schwarz(k.nngp), cauchy_schwarz(k.ntk)]", ok()),
    N("tanh_W_std_1e3", "MLP(2, 'tanh', W_std=1e3).kernel(X)", ok()),
    N("softplus_W_std_1e3", "MLP(2, 'softplus', W_std=1e3).kernel(X)", (ok(), raises("ValueError", *OVERFLOW))),
    N("tanh_diagonal", "MLP(3, 'tanh').kernel(X, diagonal=True)", ok()),
    N("python_sin_matches_closed_form",
      "a = MLP(3, A.Numerical(np.sin), W_std=1.2).kernel(X, get='nngp')\n"
      "b = MLP(3, 'sin', W_std=1.2).kernel(X, get='nngp')\n"
      "assert np.allclose(a, b, rtol=1e-8, atol=1e-10), np.abs(a - b).max()\na", ok()),
    N("python_abs_kink", "MLP(2, A.Numerical(np.abs)).kernel(X)",
      (ok(), warns("RuntimeWarning", "fn", "kink", "kinks"))),
    N("python_sign_discontinuous", "MLP(2, A.Numerical(np.sign)).kernel(X, get='nngp')", ok()),
    N("python_in_place_fn",
      "a = MLP(2, A.Numerical(lambda x: np.tanh(x, out=x))).kernel(X, get='nngp')\n"
      "b = MLP(2, A.Numerical(np.tanh)).kernel(X, get='nngp')\n"
      "assert np.allclose(a, b, rtol=1e-12), 'fn wrote into its input'\na",
      ok()),
    N("python_readonly_output", "MLP(2, A.Numerical(lambda x: np.broadcast_to(np.float64(1.0), x.shape))).kernel(X)",
      ok()),
    N("python_float32_output", "MLP(2, A.Numerical(lambda x: np.tanh(x).astype(np.float32))).kernel(X)", ok()),
    N("python_int_output", "MLP(2, A.Numerical(lambda x: (x > 0).astype(int)), b_std=0.1).kernel(X, get='nngp')", ok()),
    # sizes: refuse before building per-input tables (issue 15: 65 s and 11 GB before failing)
    N("issue_tanh_1e6_rows", "MLP(2, 'tanh').kernel(huge((10**6, 10)))", raises(MEMORY, "x1"), timeout=15),
    N("tanh_100000_rows_depth_3", "MLP(3, 'tanh').kernel(huge((100_000, 10)))", raises(MEMORY, "x1"), timeout=15),
    N("tanh_200000_rows_ntk_only", "MLP(3, 'tanh').kernel(huge((200_000, 10)), get='ntk')", raises(MEMORY, "x1"),
      timeout=15),
    N("python_tanh_1e6_rows", "calls = []\ndef fn(x):\n    calls.append(x.size)\n    return np.tanh(x)\n"
      "MLP(2, A.Numerical(fn)).kernel(huge((10**6, 10)))", raises(MEMORY, "x1"), timeout=15),
    N("tanh_1e9_rows", "MLP(2, 'tanh').kernel(huge((10**9, 2)))", raises(MEMORY, "x1"), timeout=20),
    # the constructor
    N("issue_math_tanh", "A.Numerical(math.tanh)", raises("TypeError|ValueError", "fn")),
    N("fn_unknown_name", "A.Numerical('tanhh')", raises("ValueError", "fn")),
    N("fn_not_callable", "A.Numerical(3)", raises("TypeError|ValueError", "fn")),
    N("fn_none", "A.Numerical(None)", raises("TypeError|ValueError", "fn")),
    N("fn_shape", "A.Numerical(lambda x: x[:3])", raises("ValueError", "fn")),
    N("fn_scalar", "A.Numerical(lambda x: 1.0)", raises("ValueError|TypeError", "fn")),
    N("fn_raises_at_probe", "A.Numerical(lambda x: 1 / 0)",
      (raises("ZeroDivisionError"), raises("ValueError|TypeError", "fn"))),
    N("dfn_not_callable", "A.Numerical(np.tanh, dfn=3)", raises("TypeError|ValueError", "dfn")),
    N("dfn_with_builtin", "A.Numerical('tanh', dfn=np.cosh)", raises("ValueError|TypeError", "dfn")),
    N("degree_small", "A.Numerical(np.tanh, degree=4)", raises("ValueError", "degree")),
    N("degree_large", "A.Numerical(np.tanh, degree=4096)", raises("ValueError", "degree")),
    N("degree_bool", "A.Numerical(np.tanh, degree=True)", raises("TypeError|ValueError", "degree")),
    N("degree_float", "A.Numerical(np.tanh, degree=64.0)", raises("TypeError|ValueError", "degree")),
    # a function that misbehaves inside the core's call
    misbehaving("fn_keyboard_interrupt", "raise KeyboardInterrupt", raises("KeyboardInterrupt")),
    misbehaving("fn_system_exit", "raise SystemExit(3)", raises("SystemExit")),
    misbehaving("fn_zero_division", "1 / 0", (raises("ZeroDivisionError"), raises("ValueError|TypeError", *FN))),
    misbehaving("fn_nan", "return np.full_like(x, np.nan)", raises("ValueError", *FN)),
    misbehaving("fn_inf", "return np.exp(200 * x)", raises("ValueError", *FN, *OVERFLOW)),
    misbehaving("fn_wrong_shape", "return x[:1]", raises("ValueError", *FN)),
    misbehaving("fn_2d_output", "return np.tanh(x)[None]", (ok(), raises("ValueError", *FN))),
    misbehaving("fn_complex", "return x + 1j", raises("TypeError|ValueError", *FN)),
    misbehaving("fn_returns_none", "return None", raises("TypeError|ValueError", *FN)),
    misbehaving("fn_strings", "return np.array(['a'] * x.size)", raises("TypeError|ValueError", *FN)),
    misbehaving("dfn_keyboard_interrupt", "raise KeyboardInterrupt", raises("KeyboardInterrupt"),
                call="MLP(2, A.Numerical(np.tanh, dfn=fn)).kernel(X)"),
    misbehaving("dfn_nan", "return np.full_like(x, np.nan)", raises("ValueError", *DFN),
                call="MLP(2, A.Numerical(np.tanh, dfn=fn)).kernel(X)"),
    misbehaving("diagonal_fn_keyboard_interrupt", "raise KeyboardInterrupt", raises("KeyboardInterrupt"),
                call="MLP(2, A.Numerical(fn)).kernel(X, diagonal=True)"),
    misbehaving("network_fn_keyboard_interrupt", "raise KeyboardInterrupt", raises("KeyboardInterrupt"),
                call="MLP(2, A.Numerical(fn)).init(3, width=8).apply(X)"),
    misbehaving("network_fn_nan", "return np.full_like(x, np.nan)", raises("ValueError", *FN),
                call="MLP(2, A.Numerical(fn)).init(3, width=8).apply(X)"),
    misbehaving("network_fn_wrong_shape", "return x[:1]", raises("ValueError", *FN),
                call="MLP(2, A.Numerical(fn)).init(3, width=8).ntk(X)"),
]
