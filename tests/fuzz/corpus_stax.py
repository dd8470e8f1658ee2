"""Fuzz cases: ``ntkfast.stax`` (layer arguments, compositions, infinite-width kernels of layer trees)
and ``ntkfast.composed`` (``init_fn``/``apply_fn`` and finite ``ComposedNetwork``s of layer trees).

What the library promises here (README "Migrating from neural-tangents" and "Failing loudly",
``stax.py``, issue 15): a bad layer argument is a ValueError/TypeError naming it (``out_dim``,
``W_std``, ``b_std``, ``eps``, ``num``, ``deg``); a bad composition is a ValueError
(NotImplementedError where neural-tangents raises that) starting ``layers:`` and naming the layer's
position (``serial[2] > parallel[0]``); kernels are finite or refused (an overflow or a 0/0
normalisation is a ValueError naming the inputs or the layers, never NaN or inf); huge requests are
refused before allocating (MemoryError/ValueError naming the argument); a user's activation that
misbehaves is named (``fn``); diverging training raises naming ``learning_rate``; Ctrl-C interrupts
long calls promptly. The harness has no expected-failure marker: cases that find a bug fail.
"""

from functools import partial

import scenarios
# Diverging training must raise (or warn and stay finite) naming the learning rate: never NaN.
from corpus_finite import DIVERGES, DIVERGING
from harness import Case, ok, raises

S = partial(Case, "stax")
COMPOSED = partial(Case, "composed")

MEMORY = "MemoryError|ValueError"
# What an overflowing (or 0/0) kernel's ValueError may name: the inputs, the layers, or the
# arguments that scale them.
OVERFLOW = ("x1", "x2", "layers", "W_std", "b_std", "eps")
ARG = "TypeError|ValueError"

IMPORT = "from ntkfast import stax\n"
DENSE = "stax.Dense(8, W_std=1.5, b_std=0.1)"
NET = IMPORT + f"net = stax.serial({DENSE}, stax.Relu(), {DENSE}, stax.Erf(), stax.Dense(1, W_std=1.5, b_std=0.1))\n"
RESNET = IMPORT + (
    "block = stax.serial(stax.FanOut(2), stax.parallel(stax.serial(stax.LayerNorm(), stax.Relu(), "
    f"{DENSE}), stax.Identity()), stax.FanInSum())\n"
    f"net = stax.serial({DENSE}, block, block, stax.Relu(), stax.Dense(1, W_std=1.5))\n")
# a finite network with branches, a LayerNorm and a GELU (2 outputs)
FINITE = IMPORT + (
    "spec = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.FanOut(2), "
    "stax.parallel(stax.serial(stax.LayerNorm(), stax.Relu(), stax.Dense(16, W_std=1.5)), stax.Identity()), "
    "stax.FanInSum(), stax.Gelu(), stax.Dense(2, W_std=1.5, b_std=0.1))\n"
    "cnet = spec.init(3, seed=0)\n")
# a finite CNN of 6x6x2 images (strided, pooled, LayerNorm over positions; 2 outputs)
CNN = IMPORT + (
    "spec = stax.serial(stax.Conv(4, (3, 3), padding='SAME', W_std=1.5, b_std=0.1), stax.Relu(), "
    "stax.Conv(4, (2, 2), strides=(2, 2), padding='CIRCULAR'), stax.LayerNorm(axis=(1, 2, 3)), stax.Erf(), "
    "stax.AvgPool((2, 2), padding='SAME'), stax.Flatten(), stax.Dense(2, W_std=1.5))\n"
    "imgs = np.random.default_rng(0).standard_normal((4, 6, 6, 2))\n"
    "cnn = spec.init((6, 6, 2), seed=0)\n")
CHECKED = "k = {call}\n[cauchy_schwarz(k.nngp, {rtol}), cauchy_schwarz(k.ntk, {rtol})]"

# A user activation that behaves on the constructor's probe (7 points) and misbehaves later.
MISBEHAVES = "def fn(x):\n    if x.size > 7:\n        {action}\n    return np.tanh(x)\n"
NUMERICAL = "stax.serial(stax.Dense(4, W_std=1.5, b_std=0.1), stax.ElementwiseNumerical(fn, deg=16), stax.Dense(1))"
FN = ("fn", "activation")
# The same for a user derivative (``df``; the core calls it ``dfn``, "the derivative" of the activation).
DF_MISBEHAVES = "def df(x):\n    if x.size > 7:\n        {action}\n    return 1 - np.tanh(x) ** 2\n"
DF_NUMERICAL = ("stax.serial(stax.Dense(4, W_std=1.5, b_std=0.1), stax.ElementwiseNumerical(np.tanh, deg=16, df=df), "
                "stax.Dense(1))")
DF = ("df", "dfn", "derivative")


def deep(pair: str, repeat: int) -> str:
    return f"stax.serial(*[{pair}] * {repeat})"


def misbehaving(name: str, action: str, expect, call: str = "kernel(X)", area=S) -> Case:
    return area(name, IMPORT + MISBEHAVES.format(action=action) + f"{NUMERICAL}.{call}", expect)


def df_misbehaving(name: str, action: str, expect, call: str) -> Case:
    return COMPOSED(name, IMPORT + DF_MISBEHAVES.format(action=action) + f"{DF_NUMERICAL}.{call}", expect)


def ctrl_c(area, name: str, setup: str, call: str, seconds: float) -> Case:
    """SIGINT one second into ``call`` must raise KeyboardInterrupt within the harness's limit
    (``scenarios``' Ctrl-C pattern: the call runs in a grandchild, the latency is the result)."""
    child = scenarios.INTERRUPTED.format(setup="from ntkfast import stax\n" + setup, call=call)
    code = scenarios.LATENCY.format(child=child, delay=scenarios.SIGNAL_AFTER_S, limit=scenarios.CTRL_C_LIMIT_S)
    return area(name, code, ok(), timeout=30 + 6 * seconds, threads=None)


STAX_CASES = [
    S("resnet_kernel", RESNET + CHECKED.format(call="net.kernel(X, X)", rtol=1e-9), ok()),
    S("triple_unpacks", NET + "init_fn, apply_fn, kernel_fn = net\n"
      "k = kernel_fn(X, None, 'ntk')\nassert np.array_equal(k, net.kernel(X, get='ntk'))\nk", ok()),
    # -- Dense arguments
    S("dense_out_dim_zero", IMPORT + "stax.Dense(0)", raises("ValueError", "out_dim")),
    S("dense_out_dim_negative", IMPORT + "stax.Dense(-4)", raises("ValueError", "out_dim")),
    S("dense_out_dim_nan", IMPORT + "stax.Dense(float('nan'))", raises(ARG, "out_dim")),
    S("dense_out_dim_bool", IMPORT + "stax.Dense(True)", raises(ARG, "out_dim")),
    S("dense_out_dim_str", IMPORT + "stax.Dense('4')", raises(ARG, "out_dim")),
    S("dense_out_dim_10_30", IMPORT + "stax.Dense(10**30)", raises(ARG + "|OverflowError|MemoryError", "out_dim")),
    # out_dim only enters the kernel as the next layer's fan-in ("standard"): 10**12 is just a number
    S("dense_out_dim_1e12_standard_kernel",
      IMPORT + "net = stax.serial(stax.Dense(10**12, parameterization='standard'), stax.Relu(), "
      "stax.Dense(1, parameterization='standard'))\n" + CHECKED.format(call="net.kernel(X)", rtol=1e-9), ok()),
    S("dense_W_std_zero", IMPORT + "stax.Dense(4, W_std=0.0)", raises("ValueError", "W_std")),
    S("dense_W_std_negative", IMPORT + "stax.Dense(4, W_std=-1.5)", raises("ValueError", "W_std")),
    S("dense_W_std_nan", IMPORT + "stax.Dense(4, W_std=float('nan'))", raises("ValueError", "W_std")),
    S("dense_W_std_inf", IMPORT + "stax.Dense(4, W_std=float('inf'))", raises("ValueError", "W_std")),
    S("dense_W_std_bool", IMPORT + "stax.Dense(4, W_std=True)", raises(ARG, "W_std")),
    S("dense_W_std_str", IMPORT + "stax.Dense(4, W_std='1.5')", raises(ARG, "W_std")),
    S("dense_W_std_1e200_kernel", IMPORT + "stax.serial(stax.Dense(4, W_std=1e200), stax.Relu(), "
      "stax.Dense(1, W_std=1e200)).kernel(X)", raises("ValueError", *OVERFLOW)),
    S("dense_b_std_negative", IMPORT + "stax.Dense(4, b_std=-0.1)", raises("ValueError", "b_std")),
    S("dense_b_std_nan", IMPORT + "stax.Dense(4, b_std=float('nan'))", raises("ValueError", "b_std")),
    S("dense_b_std_inf", IMPORT + "stax.Dense(4, b_std=float('-inf'))", raises("ValueError", "b_std")),
    S("dense_b_std_bool", IMPORT + "stax.Dense(4, b_std=False)", raises(ARG, "b_std")),
    S("dense_b_std_str", IMPORT + "stax.Dense(4, b_std='0')", raises(ARG, "b_std")),
    S("dense_parameterization_unknown", IMPORT + "stax.Dense(4, parameterization='mup')",
      raises("ValueError", "parameterization")),
    # -- LayerNorm and FanOut arguments
    S("layernorm_eps_negative", IMPORT + "stax.LayerNorm(eps=-1e-12)", raises("ValueError", "eps")),
    S("layernorm_eps_nan", IMPORT + "stax.LayerNorm(eps=float('nan'))", raises("ValueError", "eps")),
    S("layernorm_eps_inf", IMPORT + "stax.LayerNorm(eps=float('inf'))", raises("ValueError", "eps")),
    S("layernorm_eps_str", IMPORT + "stax.LayerNorm(eps='0')", raises(ARG, "eps")),
    S("layernorm_eps_bool", IMPORT + "stax.LayerNorm(eps=True)", raises(ARG, "eps")),
    S("layernorm_eps_1e300_kernel", IMPORT + "stax.serial(stax.Dense(4), stax.LayerNorm(eps=1e300), stax.Relu(), "
      "stax.Dense(1)).kernel(X)", ok()),
    S("fanout_zero", IMPORT + "stax.FanOut(0)", raises("ValueError", "num")),
    S("fanout_negative", IMPORT + "stax.FanOut(-2)", raises("ValueError", "num")),
    S("fanout_bool", IMPORT + "stax.FanOut(True)", raises(ARG, "num")),
    S("fanout_nan", IMPORT + "stax.FanOut(float('nan'))", raises(ARG, "num")),
    S("fanout_10_30", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(10**30), stax.FanInSum()).kernel(X)",
      raises(MEMORY + "|OverflowError", "num")),
    # 10**9 branches: the compiled program would need 10**9 steps; refuse, naming num, before allocating it
    # (a 2 GiB cap: an allocation failure while compiling aborts within a second rather than after 25 s)
    S("fanout_1e9_fanin_sum", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(10**9), stax.FanInSum()).kernel(X)",
      raises(MEMORY, "num", "layers"), timeout=20, mem_gib=2),
    # 10**7 registers per kernel entry: the memory is num's doing, not x1's (6 rows)
    S("fanout_1e7_fanin_sum", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(10**7), stax.FanInSum()).kernel(X)",
      (ok(), raises(MEMORY, "num", "layers")), timeout=30),
    S("element_numerical_deg_zero", IMPORT + "stax.ElementwiseNumerical(np.tanh, deg=0)", raises("ValueError", "deg")),
    S("element_numerical_deg_bool", IMPORT + "stax.ElementwiseNumerical(np.tanh, deg=True)", raises(ARG, "deg")),
    S("leaky_relu_alpha_nan", IMPORT + "stax.LeakyRelu(float('nan'))", raises("ValueError", "alpha")),
    S("monomial_degree_huge", IMPORT + "stax.Monomial(10**6)", raises("ValueError", "degree")),
    # a flag given as a string: 'no' must not silently mean True
    S("gelu_approximate_str", IMPORT + "stax.Gelu(approximate='no')", raises(ARG, "approximate")),
    # the argument is df here (activations.Numerical calls it dfn)
    S("element_numerical_df_not_callable", IMPORT + "stax.ElementwiseNumerical(np.tanh, deg=8, df=3)",
      raises(ARG, "df")),
    # -- compositions
    S("serial_empty", IMPORT + "stax.serial()", raises("ValueError", "layers")),
    S("serial_string_layer", IMPORT + "stax.serial(stax.Dense(4), 'relu')", raises(ARG, "serial[1]")),
    S("serial_of_triples", IMPORT + "stax.serial(tuple(stax.Dense(4)), tuple(stax.Relu()), stax.Dense(1)).kernel(X)",
      ok()),
    S("activation_on_inputs", IMPORT + "stax.serial(stax.Relu(), stax.Dense(1)).kernel(X)",
      raises("ValueError", "serial[0]")),
    S("activation_after_activation", IMPORT + "stax.serial(stax.Dense(4), stax.Relu(), stax.Gelu(), "
      "stax.Dense(1)).kernel(X)", raises("ValueError", "serial[2]")),
    S("activation_after_prod", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(2), stax.FanInProd(), stax.Erf(), "
      "stax.Dense(1)).kernel(X)", raises("ValueError", "serial[3]")),
    S("layernorm_after_activation", IMPORT + "stax.serial(stax.Dense(4), stax.Relu(), stax.LayerNorm(), "
      "stax.Dense(1)).kernel(X)", raises("NotImplementedError|ValueError", "serial[2]")),
    S("faninsum_non_gaussian", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Relu(), "
      "stax.Identity()), stax.FanInSum(), stax.Dense(1)).kernel(X)",
      raises("NotImplementedError|ValueError", "serial[3]")),
    S("fanin_widths_differ", IMPORT + "stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(4), stax.Dense(5)), "
      "stax.FanInSum(), stax.Dense(1)).kernel(X)", raises("ValueError", "serial[2]")),
    S("branch_count_mismatch", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Dense(4), "
      "stax.Dense(4), stax.Dense(4)), stax.FanInSum()).kernel(X)", raises("ValueError", "serial[2]")),
    # caught when the inner serial is built: named within it
    S("nested_branch_count_mismatch", IMPORT + "inner = stax.serial(stax.FanOut(3), stax.parallel(stax.Dense(4), "
      "stax.Dense(4)), stax.FanInSum())\nstax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(inner, "
      "stax.Dense(4)), stax.FanInSum()).kernel(X)", raises("ValueError", "serial[1]")),
    # caught by the core: named by its full path
    S("nested_fanin_widths_differ", IMPORT + "inner = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(4), "
      "stax.Dense(5)), stax.FanInSum())\nstax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(inner, "
      "stax.Dense(5)), stax.FanInSum()).kernel(X)", raises("ValueError", "serial[2] > parallel[0] > serial[2]")),
    S("ends_in_fanout", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(3)).kernel(X)",
      raises("ValueError", "layers")),
    S("ends_in_parallel", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Dense(1), "
      "stax.Dense(1))).kernel_fn(X)", raises("ValueError", "layers")),
    # -- wide, deep, nested
    # independent branches: the kernel of the sum is the sum of 200 equal kernels
    S("fanout_200_parallel_faninsum",
      IMPORT + "d = stax.Dense(4, W_std=1.5, b_std=0.1)\n"
      "wide = stax.serial(stax.FanOut(200), stax.parallel(*[d] * 200), stax.FanInSum(), stax.Relu(), stax.Dense(1))\n"
      "one = stax.serial(stax.Dense(4, W_std=1.5 * 200**0.5, b_std=0.1 * 200**0.5), stax.Relu(), stax.Dense(1))\n"
      "a, b = wide.kernel(X), one.kernel(X)\n"
      "assert np.allclose(a.nngp, b.nngp, rtol=1e-10) and np.allclose(a.ntk, b.ntk, rtol=1e-10), "
      "np.abs(a.ntk - b.ntk).max()\na", ok()),
    # products of many branches: an overflowing product is refused, an underflowing one stays finite
    S("faninprod_400_overflow", IMPORT + "stax.serial(stax.Dense(4, W_std=10.0), stax.FanOut(400), "
      "stax.FanInProd()).kernel(X)", raises("ValueError", *OVERFLOW)),
    S("faninprod_400_overflow_diagonal", IMPORT + "stax.serial(stax.Dense(4, W_std=10.0), stax.FanOut(400), "
      "stax.FanInProd()).kernel(X, diagonal=True)", raises("ValueError", *OVERFLOW)),
    S("faninprod_400_underflow_then_relu",
      IMPORT + "net = stax.serial(stax.Dense(4, W_std=0.1), stax.FanOut(400), stax.FanInProd(), stax.Dense(4), "
      "stax.Relu(), stax.Dense(1))\n" + CHECKED.format(call="net.kernel(X)", rtol=1e-9),
      (ok(), raises("ValueError", *OVERFLOW))),
    S("depth_5000_relu", IMPORT + "net = " + deep("stax.Dense(8, W_std=2**0.5, b_std=0.1), stax.Relu()", 2500) + "\n"
      + CHECKED.format(call="net.kernel(X)", rtol=1e-6), ok(), timeout=60),
    S("depth_5000_relu_diagonal", IMPORT + "net = " + deep("stax.Dense(8, W_std=2**0.5, b_std=0.1), stax.Relu()", 2500)
      + "\nd = net.kernel(X, diagonal=True)\nk = net.kernel(X)\n"
      "assert np.allclose(d.ntk, np.diag(k.ntk), rtol=1e-8), 'diagonal differs'\nd", ok(), timeout=60),
    S("depth_5000_relu_float32", IMPORT + "x = X.astype(np.float32)\n"
      "net = " + deep("stax.Dense(8, W_std=2**0.5, b_std=0.1), stax.Relu()", 2500) + "\n"
      "k = net.kernel(x)\nassert k.ntk.dtype == np.float32, k.ntk.dtype\n"
      "[cauchy_schwarz(k.nngp, 1e-4), cauchy_schwarz(k.ntk, 1e-4)]", ok(), timeout=60),
    S("depth_4000_erf_float32", IMPORT + "x = X.astype(np.float32)\n"
      "net = " + deep("stax.Dense(8, W_std=1.5, b_std=0.1), stax.Erf()", 2000) + "\n"
      "k = net.kernel(x)\nassert k.ntk.dtype == np.float32, k.ntk.dtype\n"
      "[cauchy_schwarz(k.nngp, 1e-4), cauchy_schwarz(k.ntk, 1e-4)]",
      (ok(), raises("ValueError", *OVERFLOW)), timeout=60),
    S("depth_3000_layernorm_residual_float32",
      IMPORT + "block = stax.serial(stax.FanOut(2), stax.parallel(stax.serial(stax.LayerNorm(), stax.Relu(), "
      "stax.Dense(8, W_std=1.5)), stax.Identity()), stax.FanInSum())\n"
      "net = stax.serial(stax.Dense(8), *[block] * 1000, stax.LayerNorm(), stax.Dense(1))\n"
      "k = net.kernel(X.astype(np.float32))\nassert k.ntk.dtype == np.float32\n"
      "[cauchy_schwarz(k.nngp, 1e-4), cauchy_schwarz(k.ntk, 1e-4)]", (ok(), raises("ValueError", *OVERFLOW)),
      timeout=60),
    # a serial nested inside a serial 3000 times: works, or a clear error naming the layers
    S("nested_serial_3000", IMPORT + "net = stax.Dense(4, b_std=0.1)\nfor _ in range(3000):\n"
      "    net = stax.serial(net, stax.Relu(), stax.Dense(4, W_std=2**0.5, b_std=0.1))\nnet.kernel(X)",
      (ok(), raises("ValueError|RecursionError|NotImplementedError", "layers"))),
    # the same with Python's recursion limit raised: a stack overflow in the core is a crash
    S("nested_serial_20000_recursion_limit",
      IMPORT + "sys.setrecursionlimit(10**6)\nnet = stax.Dense(4, b_std=0.1)\nfor _ in range(20000):\n"
      "    net = stax.serial(net, stax.Identity())\nnet = stax.serial(net, stax.Relu(), stax.Dense(1))\nnet.kernel(X)",
      (ok(), raises("ValueError|RecursionError|NotImplementedError|MemoryError", "layers")), timeout=60),
    S("nested_parallel_depth_100",
      IMPORT + "net = stax.Dense(4, W_std=1.5, b_std=0.1)\nfor _ in range(100):\n"
      "    net = stax.serial(stax.FanOut(2), stax.parallel(stax.serial(net, stax.Relu(), stax.Dense(4)), "
      "stax.Dense(4)), stax.FanInSum())\nnet = stax.serial(net, stax.Relu(), stax.Dense(1))\n"
      + CHECKED.format(call="net.kernel(X)", rtol=1e-8), ok()),
    # -- LayerNorm with eps = 0 on zero inputs: 0/0 must be refused naming x1, not returned as NaN
    S("layernorm_eps0_zero_inputs", IMPORT + "stax.serial(stax.Dense(4), stax.LayerNorm(eps=0.0), "
      "stax.Dense(1)).kernel(np.zeros((3, 3)))", raises("ValueError", "x1")),
    S("layernorm_eps0_one_zero_row", IMPORT + "x = X.copy(); x[2] = 0\nstax.serial(stax.Dense(4), "
      "stax.LayerNorm(eps=0.0), stax.Relu(), stax.Dense(1)).kernel(x)", raises("ValueError", "x1")),
    S("layernorm_eps0_zero_x2", IMPORT + "stax.serial(stax.Dense(4), stax.LayerNorm(eps=0.0), "
      "stax.Dense(1)).kernel(X, np.zeros((2, 3)))", raises("ValueError", "x2")),
    S("layernorm_eps0_zero_diagonal", IMPORT + "stax.serial(stax.Dense(4), stax.LayerNorm(eps=0.0), "
      "stax.Dense(1)).kernel(np.zeros((3, 3)), diagonal=True)", raises("ValueError", "x1")),
    S("layernorm_eps0_subnormal_inputs", IMPORT + "stax.serial(stax.Dense(4), stax.LayerNorm(eps=0.0), "
      "stax.Dense(1)).kernel(np.full((3, 3), 1e-300))", (ok(), raises("ValueError", "x1"))),
    S("layernorm_eps0_bias_zero_inputs", IMPORT + "stax.serial(stax.Dense(4, b_std=0.5), stax.LayerNorm(eps=0.0), "
      "stax.Relu(), stax.Dense(1)).kernel(np.zeros((3, 3)))", ok()),
    # -- activations on inputs far from the unit Gaussian
    S("erf_inputs_1e150", NET + "net.kernel(X * 1e150)", (ok(), raises("ValueError", "x1"))),
    S("exp_overflow", IMPORT + "stax.serial(stax.Dense(4, W_std=30.0), stax.Exp(), stax.Dense(1)).kernel(X)",
      raises("ValueError", *OVERFLOW)),
    S("sign_zero_rows", IMPORT + "stax.serial(stax.Dense(4), stax.Sign(), stax.Dense(1)).kernel(np.zeros((3, 3)))",
      ok()),
    S("gaussian_duplicates_depth_200",
      IMPORT + "v = rng.standard_normal((1, 3)); x = np.vstack([v, v, v + 1e-12])\n"
      "net = " + deep("stax.Dense(8, W_std=1.2, b_std=0.05), stax.Gaussian()", 100) + "\n"
      + CHECKED.format(call="net.kernel(x)", rtol=1e-6), ok()),
    S("every_activation_kernel", IMPORT + "acts = [stax.Relu(), stax.LeakyRelu(0.1), stax.ABRelu(-0.3, 1.2), "
      "stax.Abs(), stax.Erf(), stax.Sigmoid_like(), stax.Gelu(), stax.Sign(), stax.Sin(), stax.Cos(), stax.Rbf(), "
      "stax.Gabor(), stax.Exp(), stax.Gaussian(), stax.Monomial(2), stax.RectifiedMonomial(2), stax.Tanh(), "
      "stax.Softplus(), stax.Silu(), stax.Swish(), stax.Elu(), stax.Selu(), stax.Sigmoid(), stax.GeluTanh()]\n"
      "[cauchy_schwarz(stax.serial(stax.Dense(4, b_std=0.1), a, stax.Dense(1)).kernel(X, get='ntk'), 1e-6) "
      "for a in acts]", ok(), timeout=60),
    # -- kernel_fn's get, x1 and x2
    S("kernel_fn_get_none_is_kernel", NET + "k = net.kernel_fn(X, X2)\n"
      "assert k.nngp.shape == (6, 4) and k.ntk.shape == (6, 4)\nk", ok()),
    S("kernel_fn_get_tuple_order", NET + "ntk, nngp = net.kernel_fn(X, None, ('ntk', 'nngp'))\n"
      "assert np.array_equal(ntk, net.kernel(X, get='ntk'))\n(ntk, nngp)", ok()),
    S("kernel_fn_get_unknown", NET + "net.kernel_fn(X, None, 'cov1')", raises("ValueError", "get")),
    S("kernel_fn_get_empty", NET + "net.kernel_fn(X, None, ())", raises(ARG, "get")),
    S("kernel_fn_unknown_kwarg", NET + "net.kernel_fn(X, None, 'ntk', channel_axis=1)",
      raises("TypeError", "channel_axis", "kernel_fn")),
    S("x1_nan", NET + "x = X.copy(); x[3, 1] = np.nan\nnet.kernel(x)", raises("ValueError", "x1")),
    S("x2_inf", NET + "x = X2.copy(); x[0, 2] = np.inf\nnet.kernel_fn(X, x, 'ntk')", raises("ValueError", "x2")),
    S("x1_nan_diagonal", NET + "x = X.copy(); x[0, 0] = np.nan\nnet.kernel(x, diagonal=True)",
      raises("ValueError", "x1")),
    S("x1_empty", NET + "net.kernel(np.ones((0, 3)))", raises("ValueError", "x1")),
    S("x1_1d", NET + "net.kernel(X[0])", raises("ValueError", "x1")),
    S("x1_3d", NET + "net.kernel(X[None])", raises("ValueError", "x1")),
    S("x1_object", NET + "net.kernel(np.array([[1.0, None, 2.0]], dtype=object))", raises(ARG, "x1")),
    S("x1_float32_x2_float64", NET + "k = net.kernel(X.astype(np.float32), X2)\nassert k.ntk.dtype == np.float64\nk",
      ok()),
    S("x2_features", NET + "net.kernel(X, X2[:, :2])", raises("ValueError", "x2")),
    S("x1_scaled_1e200", NET + "net.kernel(X * 1e200)", raises("ValueError", "x1")),
    # sizes: broadcast views, nothing allocated by the case; refuse before allocating
    S("x1_1e6_rows", NET + "net.kernel(huge((10**6, 3)))", raises(MEMORY, "x1"), timeout=20),
    S("x1_x2_1e6_rows_ntk", RESNET + "net.kernel(huge((10**6, 3)), huge((10**6, 3)), get='ntk')",
      raises(MEMORY, "x1", "x2"), timeout=20),
    S("diagonal_4e9_rows", NET + "net.kernel(huge((4 * 10**9, 1)), diagonal=True)", raises(MEMORY, "x1"), timeout=20),
    S("fanout_2000_x1_100000_rows", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(2000), stax.FanInSum(), "
      "stax.Relu(), stax.Dense(1)).kernel(huge((100_000, 3)))", raises(MEMORY, "x1"), timeout=20),
    S("x2_1e6_rows_small_x1", NET + "net.kernel(X[:2], huge((10**6, 3)), get='nngp')", ok(), timeout=30),
    # -- ElementwiseNumerical with a Python function that misbehaves inside the core
    misbehaving("numerical_fn_raises", "raise ZeroDivisionError('boom')",
                (raises("ZeroDivisionError"), raises(ARG, *FN))),
    misbehaving("numerical_fn_nan", "return np.full_like(x, np.nan)", raises("ValueError", *FN)),
    misbehaving("numerical_fn_wrong_shape", "return x[:3]", raises("ValueError", *FN)),
    misbehaving("numerical_fn_keyboard_interrupt", "raise KeyboardInterrupt", raises("KeyboardInterrupt")),
    misbehaving("numerical_fn_nan_diagonal", "return np.full_like(x, np.nan)", raises("ValueError", *FN),
                call="kernel(X, diagonal=True)"),
    S("numerical_python_1e6_rows", IMPORT + "calls = []\ndef fn(x):\n    calls.append(x.size)\n    return np.tanh(x)\n"
      "stax.serial(stax.Dense(4), stax.ElementwiseNumerical(fn, deg=16), stax.Dense(1)).kernel(huge((10**6, 3)))",
      raises(MEMORY, "x1"), timeout=20),
    # -- predict
    S("predict", RESNET + "p = net.predict(X, Y, X2, t=np.array([0.0, 1.0, np.inf]))\n"
      "q = net.predict(X, Y, X2)\nassert np.allclose(p[-1], q, rtol=1e-6, atol=1e-8), 'predict(t=inf) differs'\np",
      ok()),
    S("predict_y_nan", RESNET + "t = Y.copy(); t[2, 0] = np.nan\nnet.predict(X, t, X2)",
      raises("ValueError", "y_train")),
    S("predict_duplicate_rows_no_bias", IMPORT + "net = stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(1))\n"
      "net.predict(np.vstack([X, X]), np.vstack([Y, Y + 1]), X2)", (ok(), raises("ValueError", "x_train", "diag_reg"))),
    # -- pickling and copies of layers
    S("pickle_resnet", RESNET + "import pickle\np = pickle.loads(pickle.dumps(net))\n"
      "assert np.array_equal(p.kernel(X).ntk, net.kernel(X).ntk)\np.kernel(X)", ok()),
    S("pickle_numerical_builtin", IMPORT + "import pickle\nnet = stax.serial(stax.Dense(4), "
      "stax.ElementwiseNumerical(np.tanh, deg=16), stax.Dense(1))\n"
      "p = pickle.loads(pickle.dumps(net))\nassert np.array_equal(p.kernel(X).ntk, net.kernel(X).ntk)\np.kernel(X)",
      ok()),
    S("pickle_numerical_lambda", IMPORT + "import pickle\n"
      "pickle.dumps(stax.serial(stax.Dense(4), stax.ElementwiseNumerical(lambda x: np.tanh(x), deg=16)))",
      raises("PicklingError|AttributeError|TypeError")),
    S("pickle_depth_5000", IMPORT + "import pickle\nnet = " + deep("stax.Dense(8, W_std=2**0.5), stax.Relu()", 2500)
      + "\np = pickle.loads(pickle.dumps(net))\nassert np.array_equal(p.kernel(X[:2]).ntk, net.kernel(X[:2]).ntk)\n"
      "p.kernel(X[:2])", ok(), timeout=60),
    # -- Ctrl-C inside a long kernel of a layer tree (the core polls for it)
    ctrl_c(S, "ctrl_c_depth_2000_kernel",
           "x = rng.standard_normal((2000, 10)); "
           "m = stax.serial(*[stax.Dense(8, W_std=2**0.5, b_std=0.1), stax.Relu()] * 2000, stax.Dense(1))",
           "m.kernel(x)", 4),
]

LIN = FINITE + "lin = cnet.linearize()\n"

COMPOSED_CASES = [
    COMPOSED("apply_ntk_nngp", FINITE + "(cnet.apply(X), cnet.ntk(X, X2), cnet.ntk(X, trace=False), cnet.nngp(X))",
             ok()),
    COMPOSED("init_fn_apply_fn", FINITE + "init_fn, apply_fn, _ = spec\nshape, params = init_fn(1, (-1, 3))\n"
             "assert shape == (-1, 2), shape\napply_fn(params, X)", ok()),
    COMPOSED("init_in_dim_zero", FINITE + "spec.init(0)", raises("ValueError", "in_dim")),
    COMPOSED("init_in_dim_float", FINITE + "spec.init(3.0)", raises(ARG, "in_dim")),
    COMPOSED("init_in_dim_bool", FINITE + "spec.init(True)", raises(ARG, "in_dim")),
    # W would be 10**12 x 16 floats (128 TB): refuse naming the argument, before NumPy tries
    COMPOSED("init_in_dim_1e12", FINITE + "spec.init(10**12)", raises(MEMORY, "in_dim"), timeout=20),
    COMPOSED("init_out_dim_1e12", IMPORT + "stax.serial(stax.Dense(10**12), stax.Relu(), stax.Dense(1)).init(3)",
             raises(MEMORY, "out_dim", "width"), timeout=20),
    COMPOSED("init_width_1e6_squared", IMPORT + "stax.serial(stax.Dense(10**6), stax.Relu(), stax.Dense(10**6), "
             "stax.Relu(), stax.Dense(1)).init(3)", raises(MEMORY, "out_dim", "width"), timeout=20),
    COMPOSED("init_fn_input_shape_negative", FINITE + "spec.init_fn(0, (-1, -3))", raises("ValueError", "input_shape")),
    COMPOSED("init_fn_input_shape_list", FINITE + "spec.init_fn(0, [(-1, 3), (-1, 3)])",
             raises("ValueError", "input_shape")),
    COMPOSED("init_fn_key_str", FINITE + "spec.init_fn('0', (-1, 3))", raises(ARG, "key")),
    COMPOSED("init_fn_key_prng_words", FINITE + "spec.init_fn(np.array([0, 42], dtype=np.uint32), (-1, 3))[1]", ok()),
    COMPOSED("init_seed_str", FINITE + "spec.init(3, seed='a')", raises(ARG, "key", "seed")),
    COMPOSED("init_several_outputs", IMPORT + "stax.serial(stax.Dense(4), stax.FanOut(2)).init(3)",
             raises("ValueError", "layer", "layers")),
    COMPOSED("init_no_dense_in_dim", IMPORT + "stax.serial(stax.Identity(), stax.LayerNorm()).init(3).apply(X)", ok()),
    # -- apply_fn with wrong parameters
    COMPOSED("apply_fn_params_none", FINITE + "spec.apply_fn(None, X)", raises(ARG, "params")),
    COMPOSED("apply_fn_params_flat", FINITE + "_, params = spec.init_fn(0, (-1, 3))\n"
             "flat = [p for p in params if p != ()]\nspec.apply_fn(flat, X)", raises(ARG, "params")),
    COMPOSED("apply_fn_params_extra_nesting", FINITE + "_, params = spec.init_fn(0, (-1, 3))\n"
             "spec.apply_fn((params,), X)", raises(ARG, "params")),
    COMPOSED("apply_fn_params_swapped_branches", FINITE + "_, params = spec.init_fn(0, (-1, 3))\n"
             "p = list(params); p[2] = p[2][::-1]\nspec.apply_fn(tuple(p), X)", raises(ARG, "params", "params[2]")),
    COMPOSED("apply_fn_W_nan", FINITE + "_, params = spec.init_fn(0, (-1, 3))\n"
             "params[0][0][0, 0] = np.nan\nspec.apply_fn(params, X)", raises("ValueError", "params", "params[0][0]")),
    COMPOSED("apply_fn_W_wrong_shape", FINITE + "_, params = spec.init_fn(0, (-1, 3))\n"
             "p = list(params); p[0] = (params[0][0][:, :5], params[0][1])\nspec.apply_fn(tuple(p), X)",
             raises("ValueError", "params", "params[0][0]")),
    COMPOSED("apply_fn_W_strings", FINITE + "_, params = spec.init_fn(0, (-1, 3))\n"
             "p = list(params); p[0] = (params[0][0].astype(str), params[0][1])\nspec.apply_fn(tuple(p), X)",
             raises(ARG, "params", "params[0][0]")),
    COMPOSED("apply_fn_bias_without_b_std", IMPORT + "net = stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(1))\n"
             "_, params = net.init_fn(0, (-1, 3))\np = list(params); p[0] = (params[0][0], np.zeros((1, 4)))\n"
             "net.apply_fn(tuple(p), X)", raises("ValueError", "params", "params[0][1]")),
    COMPOSED("apply_fn_x_features", FINITE + "_, params = spec.init_fn(0, (-1, 3))\nspec.apply_fn(params, X[:, :2])",
             raises("ValueError", "x")),
    COMPOSED("apply_fn_parallel_inputs", IMPORT + "net = stax.parallel(stax.Dense(2), stax.Dense(3))\n"
             "_, params = net.init_fn(0, [(-1, 3), (-1, 4)])\nnet.apply_fn(params, [X, np.ones((6, 4))])", ok()),
    COMPOSED("apply_fn_parallel_one_input", IMPORT + "net = stax.parallel(stax.Dense(2), stax.Dense(3))\n"
             "_, params = net.init_fn(0, [(-1, 3), (-1, 3)])\nnet.apply_fn(params, X)", raises("ValueError", "x")),
    COMPOSED("apply_fn_parallel_row_counts", IMPORT + "net = stax.parallel(stax.Dense(2), stax.Dense(3))\n"
             "_, params = net.init_fn(0, [(-1, 3), (-1, 3)])\nnet.apply_fn(params, [X, X2])",
             raises("ValueError", "x")),
    COMPOSED("apply_fn_unknown_kwarg", FINITE + "_, params = spec.init_fn(0, (-1, 3))\n"
             "spec.apply_fn(params, X, training=True)", raises("TypeError", "training", "apply_fn")),
    # -- inputs of a ComposedNetwork
    COMPOSED("apply_x_nan", FINITE + "x = X.copy(); x[1, 1] = np.nan\ncnet.apply(x)", raises("ValueError", "x")),
    COMPOSED("ntk_x2_features", FINITE + "cnet.ntk(X, X2[:, :2])", raises("ValueError", "x2")),
    COMPOSED("apply_scaled_1e300", FINITE + "cnet.apply(X * 1e300)", (ok(), raises("ValueError", "x"))),
    COMPOSED("ntk_scaled_1e200", FINITE + "cnet.ntk(X * 1e200)", (ok(), raises("ValueError", "x1"))),
    COMPOSED("layernorm_eps0_zero_inputs_apply", IMPORT + "net = stax.serial(stax.LayerNorm(eps=0.0), "
             "stax.Dense(1)).init(3)\nnet.apply(np.zeros((3, 3)))", raises("ValueError", "x")),
    COMPOSED("layernorm_eps0_zero_inputs_ntk", IMPORT + "net = stax.serial(stax.Dense(4), stax.LayerNorm(eps=0.0), "
             "stax.Dense(1)).init(3)\nnet.ntk(np.zeros((3, 3)))", raises("ValueError", "x1")),
    COMPOSED("faninprod_300_overflow_apply", IMPORT + "net = stax.serial(stax.Dense(4, W_std=30.0), stax.FanOut(300), "
             "stax.FanInProd()).init(3)\nnet.apply(X)", raises("ValueError", "x")),
    COMPOSED("faninprod_300_overflow_ntk", IMPORT + "net = stax.serial(stax.Dense(4, W_std=30.0), stax.FanOut(300), "
             "stax.FanInProd()).init(3)\nnet.ntk(X)", raises("ValueError", "x1")),
    COMPOSED("apply_1e7_rows", FINITE + "cnet.apply(huge((10**7, 3)))", (ok(), raises(MEMORY, "x")), timeout=60),
    COMPOSED("ntk_200000_rows", FINITE + "cnet.ntk(huge((200_000, 3)))", raises(MEMORY, "x1"), timeout=20),
    COMPOSED("nngp_200000_rows", FINITE + "cnet.nngp(huge((200_000, 3)))", raises(MEMORY, "x1"), timeout=20),
    COMPOSED("depth_2000_ntk", IMPORT + "net = " + deep("stax.Dense(8, W_std=2**0.5, b_std=0.1), stax.Relu()", 1000)
             + ".init(3)\nnet.ntk(X)", (ok(), raises("ValueError", "x1")), timeout=60),
    COMPOSED("nested_residual_depth_100_train",
             IMPORT + "net = stax.Dense(4, W_std=1.5, b_std=0.1)\nfor _ in range(100):\n"
             "    net = stax.serial(stax.FanOut(2), stax.parallel(stax.serial(net, stax.Relu(), stax.Dense(4)), "
             "stax.Dense(4)), stax.FanInSum())\ncnet = stax.serial(net, stax.Relu(), stax.Dense(2)).init(3)\n"
             "h = cnet.train(X, Y, learning_rate=0.05, steps=2)\n(h, cnet.ntk(X))", ok(), timeout=60),
    # finite networks need no Gaussian inputs: an activation first is fine there (not in the kernel)
    COMPOSED("activation_first_apply", IMPORT + "spec = stax.serial(stax.Relu(), stax.Dense(2), stax.Erf())\n"
             "(spec.init(3).apply(X), spec.init(3).ntk(X))", ok()),
    # -- user activations in finite networks
    misbehaving("numerical_fn_nan_apply", "return np.full_like(x, np.nan)", raises("ValueError", *FN),
                call="init(3).apply(X)", area=COMPOSED),
    misbehaving("numerical_fn_wrong_shape_ntk", "return x[:1]", raises("ValueError", *FN), call="init(3).ntk(X)",
                area=COMPOSED),
    misbehaving("numerical_fn_keyboard_interrupt_apply", "raise KeyboardInterrupt", raises("KeyboardInterrupt"),
                call="init(3).apply(X)", area=COMPOSED),
    # a NaN derivative is the user's df, not an overflow of x1 nor a learning rate that is too large
    df_misbehaving("numerical_df_nan_ntk", "return np.full_like(x, np.nan)", raises("ValueError", *DF),
                   call="init(3).ntk(X)"),
    df_misbehaving("numerical_df_nan_train", "return np.full_like(x, np.nan)", raises("ValueError", *DF),
                   call="init(3).train(X, y[:, None], learning_rate=0.1, steps=2)"),
    df_misbehaving("numerical_df_wrong_shape_ntk", "return x[:1]", raises("ValueError", *DF), call="init(3).ntk(X)"),
    # -- training
    COMPOSED("train", FINITE + "h = cnet.train(X, Y, learning_rate=0.1, steps=5, x_test=X2, y_test=Y[:4])\n"
             "(h, cnet.apply(X))", ok()),
    COMPOSED("train_lr_1e8", FINITE + DIVERGING.format(model="cnet", targets="Y", lr="1e8", steps=20,
                                                        outputs="cnet.params, cnet.apply(X), cnet.ntk(X)"), DIVERGES),
    COMPOSED("train_lr_1e300", FINITE + DIVERGING.format(model="cnet", targets="Y", lr="1e300", steps=3,
                                                          outputs="cnet.params, cnet.apply(X)"), DIVERGES),
    COMPOSED("train_faninprod_lr_1e4", IMPORT + "cnet = stax.serial(stax.Dense(8, W_std=1.5), stax.FanOut(4), "
             "stax.FanInProd(), stax.Dense(2)).init(3)\n" + DIVERGING.format(
                 model="cnet", targets="Y", lr="1e4", steps=50, outputs="cnet.params, cnet.apply(X)"), DIVERGES),
    COMPOSED("linearized_lr_1e8", LIN + DIVERGING.format(model="lin", targets="Y", lr="1e8", steps=20,
                                                          outputs="lin.delta, lin.apply(X)"), DIVERGES),
    COMPOSED("train_lr_nan", FINITE + "cnet.train(X, Y, learning_rate=float('nan'), steps=2)",
             raises("ValueError", "learning_rate")),
    COMPOSED("train_y_nan", FINITE + "t = Y.copy(); t[0, 1] = np.nan\ncnet.train(X, t, learning_rate=0.1, steps=2)",
             raises("ValueError", "y")),
    # -- finite CNNs
    COMPOSED("cnn_apply_ntk_nngp_train", CNN + "h = cnn.train(imgs, Y[:4], learning_rate=0.1, steps=3)\n"
             "(cnn.apply(imgs), cnn.ntk(imgs, imgs[:2]), cnn.ntk(imgs, trace=False), cnn.nngp(imgs), h)", ok()),
    COMPOSED("cnn_linearized_min_norm", CNN + "lin = cnn.linearize()\nlin.train(imgs, Y[:4], learning_rate=0.1, "
             "steps=2)\n(lin.apply(imgs), cnn.min_norm_solution(imgs[:2], Y[:2]).norm)", ok()),
    COMPOSED("cnn_validity_scaled", CNN.replace("spec.init((6, 6, 2), seed=0)", "spec.init((6, 6, 2), seed=0, "
             "output_scale=3.0, centered=True)") + "cnn.validity(imgs[:2], Y[:2], iterations=5)", ok()),
    COMPOSED("cnn_init_int_in_dim", CNN + "spec.init(36)", raises("ValueError", "in_dim")),
    COMPOSED("cnn_init_zero_height", CNN + "spec.init((0, 6, 2))", raises(ARG, "in_dim")),
    COMPOSED("cnn_init_window_too_large", IMPORT + "stax.serial(stax.Conv(2, (5, 5)), stax.Flatten(), "
             "stax.Dense(1)).init((3, 3, 1))", raises("ValueError", "input_shape", "in_dim")),
    COMPOSED("cnn_from_params_without_shape", CNN + "type(cnn).from_params(spec, cnn.params)",
             raises("ValueError", "in_dim")),
    COMPOSED("cnn_images_wrong_shape", CNN + "cnn.ntk(imgs[:, :5])", raises("ValueError", "x1")),
    COMPOSED("cnn_images_flat", CNN + "cnn.apply(imgs.reshape(4, -1))", raises("ValueError", "x")),
    COMPOSED("cnn_images_nan", CNN + "x = imgs.copy(); x[1, 2, 3, 0] = np.nan\ncnn.ntk(imgs, x)",
             raises("ValueError", "x2")),
    COMPOSED("cnn_images_scaled_1e200", CNN + "cnn.ntk(imgs * 1e200)", (ok(), raises("ValueError", "x1"))),
    COMPOSED("cnn_apply_1e6_images", CNN + "cnn.apply(huge((10**6, 6, 6, 2)))", (ok(), raises(MEMORY, "x")),
             timeout=60),
    COMPOSED("cnn_ntk_100000_images", CNN + "cnn.ntk(huge((100_000, 6, 6, 2)))", raises(MEMORY, "x1"), timeout=20),
    COMPOSED("cnn_wide_windows_memory", IMPORT + "net = stax.serial(stax.Conv(8, (9, 9), padding='SAME'), "
             "stax.GlobalAvgPool(), stax.Dense(1)).init((64, 64, 512))\nnet.apply(huge((300, 64, 64, 512)))",
             raises(MEMORY, "x"), timeout=30),
    COMPOSED("cnn_train_lr_1e8", CNN + DIVERGING.format(model="cnn", targets="Y[:4]", lr="1e8", steps=20,
                                                         outputs="cnn.params, cnn.apply(imgs)").replace("X", "imgs"),
             DIVERGES),
    COMPOSED("cnn_monte_carlo", CNN + "import ntkfast\nntkfast.monte_carlo_kernel(spec, imgs, n_samples=3)", ok()),
    COMPOSED("cnn_monte_carlo_width", CNN + "import ntkfast\nntkfast.monte_carlo_kernel(spec, imgs, width=8, "
             "n_samples=3)", raises("ValueError", "width")),
    COMPOSED("cnn_pickle", CNN + "import pickle\np = pickle.loads(pickle.dumps(cnn))\n"
             "assert np.array_equal(p.ntk(imgs), cnn.ntk(imgs))\np.params", ok()),
    # -- pickling and copies of networks
    COMPOSED("pickle_network", FINITE + "import pickle\np = pickle.loads(pickle.dumps(cnet))\n"
             "assert np.array_equal(p.apply(X), cnet.apply(X)) and np.array_equal(p.ntk(X), cnet.ntk(X))\np.params",
             ok()),
    COMPOSED("copy_is_independent", FINITE + "import copy\nc = copy.deepcopy(cnet)\nbefore = cnet.apply(X)\n"
             "c.train(X, Y, learning_rate=0.1, steps=3)\n"
             "assert np.array_equal(before, cnet.apply(X)), 'training the copy changed the original'\n"
             "assert not np.array_equal(before, c.apply(X)), 'the copy did not train'\nbefore", ok()),
    COMPOSED("pickle_linearized_trained", LIN + "import pickle\nlin.train(X, Y, learning_rate=0.1, steps=3)\n"
             "p = pickle.loads(pickle.dumps(lin))\nassert np.array_equal(p.apply(X), lin.apply(X))\np.apply(X)", ok()),
    # -- Ctrl-C inside training finite CNNs and ensembles of networks trained in threads
    ctrl_c(COMPOSED, "ctrl_c_cnn_train", "net = stax.serial(stax.Conv(64, (3, 3), padding='SAME'), stax.Relu(), "
           "stax.Conv(64, (3, 3), padding='SAME'), stax.Relu(), stax.Flatten(), stax.Dense(1)).init((28, 28, 1))\n"
           "x = np.random.default_rng(0).standard_normal((100, 28, 28, 1))\n",
           "net.train(x, np.ones(100), learning_rate=0.01, steps=1000)", seconds=20),
    ctrl_c(COMPOSED, "ctrl_c_monte_carlo_predict", "import ntkfast\nmlp = ntkfast.MLP(2, 'erf')\n"
           "x = np.random.default_rng(0).standard_normal((500, 50))\n",
           "ntkfast.monte_carlo_predict(mlp, x, np.sin(x[:, :1]), x[:5], width=2048, n_networks=16, t=100.0, "
           "learning_rate=0.1)", seconds=20),
    # -- Ctrl-C inside a long empirical NTK: NumPy products of ~0.05 s each between Python steps
    ctrl_c(COMPOSED, "ctrl_c_empirical_ntk_depth_80",
           "x = rng.standard_normal((2000, 64)); "
           "net = stax.serial(*[stax.Dense(256), stax.Relu()] * 40, stax.Dense(1)).init(64)", "net.ntk(x)", 5),
]

CASES = STAX_CASES + COMPOSED_CASES
