"""Fuzz cases: ``MLP.kernel`` and ``MLP.kernel(diagonal=True)`` (inputs, sizes, deep networks)."""

from functools import partial

from harness import Case, ok, raises

KERNELS = partial(Case, "kernels")
DIAGONAL = partial(Case, "diagonal")

OVERFLOW = ("x1", "depth", "W_std", "b_std")
MEMORY = "MemoryError|ValueError"
RELU = "m = MLP(3, 'relu', W_std=2**0.5, b_std=0.1)\n"

# Closed-form activations whose deep kernels of (near-)duplicate rows must stay finite, symmetric
# and within Cauchy-Schwarz: the off-diagonal must never exceed the diagonal (issue 15).
DEEP_ACTIVATIONS = {
    "relu": "'relu', W_std=2**0.5", "leaky_relu": "A.LeakyRelu(0.1), W_std=1.4", "abs": "'abs'",
    "erf": "'erf', W_std=1.5", "gelu": "'gelu', W_std=1.5", "sign": "'sign'", "identity": "'identity'",
    "sin": "'sin', W_std=1.5", "cos": "'cos'", "rbf": "'rbf'", "gabor": "'gabor', W_std=2.0",
    "sigmoid_like": "'sigmoid_like', W_std=2.0", "gaussian": "'gaussian'", "monomial_1": "A.Monomial(1)",
    "rectified_monomial_2": "A.RectifiedMonomial(2), W_std=0.6",
}
NEAR_DUPLICATES = "v = np.random.default_rng(3).standard_normal((1, 8))\nx = np.vstack([v, v, v + 1e-9, -v])"


def deep_duplicates(name: str, args: str, dtype: str) -> Case:
    code = (f"{NEAR_DUPLICATES}.astype(np.{dtype})\nk = MLP(100, {args}, b_std=0.05).kernel(x)\n"
            "assert k.nngp.dtype == x.dtype\n[cauchy_schwarz(k.nngp, 1e-4), cauchy_schwarz(k.ntk, 1e-4)]")
    # refusing with an overflow error is fine (float32 reaches its limits sooner); NaN, inf or an
    # off-diagonal above the diagonal is not
    return KERNELS(f"depth_100_near_duplicates_{name}_{dtype}", code, (ok(), raises("ValueError", *OVERFLOW)))


CASES = [
    KERNELS("relu", RELU + "m.kernel(X)", ok()),
    KERNELS("relu_cross", RELU + "m.kernel(X2, X)", ok()),
    KERNELS("get_nngp", RELU + "m.kernel(X, get='nngp')", ok()),
    KERNELS("get_tuple", RELU + "m.kernel(X, get=('ntk',))", ok()),
    KERNELS("get_list", RELU + "m.kernel(X, get=['ntk', 'nngp'])", ok()),
    KERNELS("get_unknown", RELU + "m.kernel(X, get='ntkgp')", raises("ValueError", "get")),
    KERNELS("get_empty", RELU + "m.kernel(X, get=())", raises("TypeError|ValueError", "get")),
    KERNELS("get_none", RELU + "m.kernel(X, get=None)", raises("TypeError|ValueError", "get")),
    KERNELS("float32", RELU + "k = m.kernel(X.astype(np.float32))\nassert k.ntk.dtype == np.float32\nk", ok()),
    KERNELS("float16", RELU + "m.kernel(X.astype(np.float16))", ok()),
    KERNELS("int", RELU + "m.kernel(np.arange(12).reshape(4, 3))", ok()),
    KERNELS("bool", RELU + "m.kernel(X > 0)", ok()),
    KERNELS("list", RELU + "m.kernel(X.tolist())", ok()),
    KERNELS("fortran", RELU + "m.kernel(np.asfortranarray(X))", ok()),
    KERNELS("negative_strides", RELU + "a = m.kernel(X[::-1, ::-1], get='ntk')\n"
            "b = m.kernel(np.ascontiguousarray(X[::-1, ::-1]), get='ntk')\nassert np.array_equal(a, b)\na", ok()),
    KERNELS("column_strided", RELU + "m.kernel(np.hstack([X, X])[:, ::2])", ok()),
    KERNELS("mixed_dtypes", RELU + "m.kernel(X.astype(np.float32), X2)", ok()),
    KERNELS("x1_none", RELU + "m.kernel(None)", raises("TypeError|ValueError", "x1")),
    KERNELS("x1_1d", RELU + "m.kernel(X[0])", raises("ValueError", "x1")),
    KERNELS("x1_3d", RELU + "m.kernel(X[None])", raises("ValueError", "x1")),
    KERNELS("x1_scalar", RELU + "m.kernel(1.0)", raises("ValueError", "x1")),
    KERNELS("x1_no_rows", RELU + "m.kernel(np.ones((0, 3)))", raises("ValueError", "x1")),
    KERNELS("x1_no_columns", RELU + "m.kernel(np.ones((3, 0)))", raises("ValueError", "x1")),
    KERNELS("x1_complex", RELU + "m.kernel(X + 1j)", raises("TypeError|ValueError", "x1")),
    KERNELS("x1_strings", RELU + "m.kernel(np.array([['a', 'b']]))", raises("TypeError|ValueError", "x1")),
    KERNELS("x1_object", RELU + "m.kernel(np.array([[1, None]], dtype=object))", raises("TypeError|ValueError", "x1")),
    KERNELS("x1_ragged_list", RELU + "m.kernel([[1.0, 2.0], [3.0]])", raises("TypeError|ValueError", "x1")),
    KERNELS("x2_features", RELU + "m.kernel(X, X2[:, :2])", raises("ValueError", "x2")),
    KERNELS("x1_nan", RELU + "x = X.copy(); x[2, 1] = np.nan\nm.kernel(x)", raises("ValueError", "x1")),
    KERNELS("x2_inf", RELU + "x = X2.copy(); x[0, 0] = -np.inf\nm.kernel(X, x)", raises("ValueError", "x2")),
    KERNELS("x1_nan_float32", RELU + "x = X.astype(np.float32); x[0, 0] = np.nan\nm.kernel(x)",
            raises("ValueError", "x1")),
    KERNELS("x1_scaled_1e160", RELU + "m.kernel(X * 1e160)", (ok(), raises("ValueError", "x1"))),
    KERNELS("x1_scaled_1e200", RELU + "m.kernel(X * 1e200)", raises("ValueError", "x1")),
    KERNELS("x1_float32_max", RELU + "m.kernel(np.full((2, 3), np.finfo(np.float32).max, np.float32))",
            (ok(), raises("ValueError", "x1"))),
    KERNELS("x1_scaled_1e-200", RELU + "m.kernel(X * 1e-200)", ok()),
    KERNELS("x1_subnormal", RELU + "m.kernel(np.full((3, 3), 5e-324))", ok()),
    KERNELS("x1_zeros", RELU + "m.kernel(np.zeros((3, 3)))", ok()),
    KERNELS("x1_zeros_no_bias", "MLP(3, 'relu').kernel(np.zeros((3, 3)))", ok()),
    KERNELS("x1_one_row", RELU + "m.kernel(X[:1])", ok()),
    KERNELS("x1_wide_1e7_features", RELU + "m.kernel(huge((2, 10**7), 0.5))", ok()),
    # sizes: nothing is allocated by the test (broadcast views), the library must refuse early
    KERNELS("x1_200000_rows", RELU + "m.kernel(huge((200_000, 3)))", raises(MEMORY, "x1"), timeout=20),
    KERNELS("x1_1e9_rows", RELU + "m.kernel(huge((10**9, 2)))", raises(MEMORY, "x1"), timeout=20),
    KERNELS("x1_x2_1e6_rows", RELU + "m.kernel(huge((10**6, 3)), huge((10**6, 3)))", raises(MEMORY, "x1", "x2"),
            timeout=20),
    KERNELS("x2_1e6_rows_small_x1", RELU + "m.kernel(X[:2], huge((10**6, 3)))", ok()),
    KERNELS("ntk_only_200000_rows", RELU + "m.kernel(huge((200_000, 3)), get='ntk')", raises(MEMORY, "x1"),
            timeout=20),
    # deep networks, duplicates, float32 (issue 15: overflow off the diagonal, NaN, indefinite kernels)
    KERNELS("issue_rbf_depth_100_duplicates",
            "v = np.random.default_rng(3).standard_normal((1, 8))\n"
            "cauchy_schwarz(ntkfast.MLP(100, 'rbf', W_std=1.0, b_std=0.05).kernel(np.vstack([v, v])).nngp)", ok()),
    KERNELS("issue_erf_float32_depth_100",
            "x = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)\n"
            "k = MLP(100, 'erf', W_std=1.5, b_std=0.1).kernel(x)\n"
            "[cauchy_schwarz(k.nngp, 1e-4), cauchy_schwarz(k.ntk, 1e-4)]",
            ok()),
    KERNELS("issue_relu_float32_depth_100",
            "x = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)\n"
            "k = MLP(100, 'relu', W_std=2**0.5, b_std=0.1).kernel(x)\n"
            "[cauchy_schwarz(k.nngp, 1e-4), cauchy_schwarz(k.ntk, 1e-4)]", ok()),
    KERNELS("relu_depth_100_psd",
            NEAR_DUPLICATES + "\nk = MLP(100, 'relu', W_std=2**0.5, b_std=0.05).kernel(x, get='ntk')\n"
            "w = np.linalg.eigvalsh(k)\nassert w[0] >= -1e-10 * w[-1], f'indefinite: {w}'\nk", ok()),
    KERNELS("issue_sign_zero_row",
            "x = np.vstack([np.random.default_rng(1).standard_normal((3, 5)), np.zeros((1, 5))])\n"
            "k = MLP(2, 'sign', W_std=1.3).kernel(x).nngp\n"
            "assert np.allclose(k[-1, :3], 0) and np.allclose(k[:3, -1], 0), f'Sign of a zero row: {k[-1]}'\nk", ok()),
    KERNELS("sign_zero_row_finite_network_agrees",
            "x = np.vstack([np.random.default_rng(1).standard_normal((3, 5)), np.zeros((1, 5))])\n"
            "m = MLP(2, 'sign', W_std=1.3)\n"
            "mc = ntkfast.monte_carlo_kernel(m, x, width=256, n_samples=4, get=('nngp',))\n"
            "k = m.kernel(x, get='nngp')\nassert abs(k[-1, 0] - mc.nngp[-1, 0]) < 0.2, (k[-1], mc.nngp[-1])\nk", ok()),
    *[deep_duplicates(name, args, dtype)
      for name, args in DEEP_ACTIVATIONS.items() for dtype in ("float64", "float32")],
    # diagonal=True
    DIAGONAL("relu", RELU + "d = m.kernel(X, diagonal=True)\nk = m.kernel(X)\n"
             "assert np.allclose(d.ntk, np.diag(k.ntk)) and np.allclose(d.nngp, np.diag(k.nngp))\nd", ok()),
    DIAGONAL("float32", RELU + "m.kernel(X.astype(np.float32), diagonal=True, get='ntk')", ok()),
    DIAGONAL("with_x2", RELU + "m.kernel(X, X, diagonal=True)", raises("ValueError|TypeError", "diagonal", "x2")),
    DIAGONAL("flag_str", RELU + "m.kernel(X, diagonal='no')", raises("TypeError|ValueError", "diagonal")),
    DIAGONAL("x1_nan", RELU + "x = X.copy(); x[1, 1] = np.nan\nm.kernel(x, diagonal=True)", raises("ValueError", "x1")),
    DIAGONAL("x1_1d", RELU + "m.kernel(X[0], diagonal=True)", raises("ValueError", "x1")),
    DIAGONAL("x1_4e9_rows", RELU + "m.kernel(huge((4 * 10**9, 1)), diagonal=True, get='ntk')", raises(MEMORY, "x1"),
             timeout=20),
    DIAGONAL("tanh_4e9_rows", "MLP(2, 'tanh').kernel(huge((4 * 10**9, 1)), diagonal=True, get='ntk')",
             raises(MEMORY, "x1"), timeout=20),
    DIAGONAL("rbf_depth_100", "MLP(100, 'rbf', b_std=0.05).kernel(X, diagonal=True)", ok()),
    DIAGONAL("exp_overflow", "MLP(3, 'exp', W_std=5.0).kernel(X, diagonal=True)", raises("ValueError", *OVERFLOW)),
    DIAGONAL("sign_zero_row", "MLP(2, 'sign').kernel(np.zeros((2, 3)), diagonal=True)", ok()),
]
