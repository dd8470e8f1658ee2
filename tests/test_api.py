"""The Python API: return types, dtypes, memory layouts, activations, the Kernel object, threads."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ntkfast
from ntkfast import activations as A


@pytest.fixture
def mlp():
    return ntkfast.MLP(3, "relu", W_std=2**0.5, b_std=0.1)


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((9, 6))


def test_get_string_returns_an_array_and_tuple_a_kernel(mlp, x):
    ntk = mlp.kernel(x, get="ntk")
    assert isinstance(ntk, np.ndarray) and ntk.shape == (9, 9)
    k = mlp.kernel(x)
    assert isinstance(k, ntkfast.Kernel)
    nngp, ntk2 = k
    np.testing.assert_array_equal(ntk2, ntk)
    np.testing.assert_array_equal(nngp, mlp.kernel(x, get="nngp"))
    first, second = mlp.kernel(x, get=("ntk", "nngp"))
    np.testing.assert_array_equal(first, ntk)
    only = mlp.kernel(x, get=("ntk",))
    assert len(only) == 1 and only.nngp is None and only["ntk"] is only.ntk
    assert "Kernel(nngp=<array (9, 9) float64>" in repr(k)


def test_rectangular_kernel_and_diagonal(mlp, x):
    x2 = x[:4] * 2.0
    k = mlp.kernel(x, x2)
    assert k.nngp.shape == (9, 4)
    d = mlp.kernel(x, diagonal=True)
    assert d.nngp.shape == (9,) and d.ntk.shape == (9,)
    np.testing.assert_allclose(d.ntk, np.diag(mlp.kernel(x, get="ntk")), rtol=1e-14)
    assert mlp.kernel(x, diagonal=True, get="nngp").shape == (9,)


def test_float32_in_float32_out_and_accurate(mlp):
    x = np.random.default_rng(1).standard_normal((300, 50))
    k64 = mlp.kernel(x)
    k32 = mlp.kernel(x.astype(np.float32))
    assert k32.nngp.dtype == np.float32 and k32.ntk.dtype == np.float32
    # measured: 2.7e-7 (NNGP) and 3.4e-7 (NTK) elementwise, i.e. a few float32 roundings (eps 1.2e-7)
    for a, b in ((k32.nngp, k64.nngp), (k32.ntk, k64.ntk)):
        assert np.max(np.abs(a - b) / np.abs(b)) < 1e-6
    d32 = mlp.kernel(x.astype(np.float32), diagonal=True)
    assert d32.ntk.dtype == np.float32
    np.testing.assert_allclose(d32.ntk, np.diag(k64.ntk), rtol=4e-7)  # measured 7.6e-8


@pytest.mark.parametrize("activation", ["erf", "gelu", "abs", "sigmoid_like", "sign"])
def test_float32_accuracy_other_activations(activation):
    x = np.random.default_rng(2).standard_normal((200, 20))
    m = ntkfast.MLP(4, activation, W_std=1.3, b_std=0.2)
    k64, k32 = m.kernel(x), m.kernel(x.astype(np.float32))
    # measured: at most 2.4e-7 of the largest entry (erf's NNGP)
    for a, b in ((k32.nngp, k64.nngp), (k32.ntk, k64.ntk)):
        assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(b))


def test_other_dtypes_and_lists_are_converted(mlp, x):
    ints = np.arange(12).reshape(4, 3) - 5
    want = mlp.kernel(ints.astype(np.float64))
    for variant in (ints, ints.astype(np.int8), ints.tolist(), ints.astype(np.uint8) * 0 + 1):
        k = mlp.kernel(variant)
        assert k.ntk.dtype == np.float64
    np.testing.assert_array_equal(mlp.kernel(ints).ntk, want.ntk)
    np.testing.assert_array_equal(mlp.kernel(ints.tolist()).ntk, want.ntk)
    assert mlp.kernel(ints.astype(np.float16)).ntk.dtype == np.float32
    # mixed precision promotes to float64
    k = mlp.kernel(x.astype(np.float32), x)
    assert k.ntk.dtype == np.float64


def test_memory_layouts_give_identical_results(mlp):
    big = np.random.default_rng(3).standard_normal((40, 30))
    view = big[::3, ::2]  # non-contiguous in both axes
    contiguous = np.ascontiguousarray(view)
    fortran = np.asfortranarray(view)
    want = mlp.kernel(contiguous)
    for variant in (view, fortran):
        k = mlp.kernel(variant)
        np.testing.assert_allclose(k.ntk, want.ntk, rtol=1e-14)
        np.testing.assert_allclose(k.nngp, want.nngp, rtol=1e-14)
    np.testing.assert_allclose(mlp.kernel(view, fortran).ntk, want.ntk, rtol=1e-14)
    # negative strides: the numbers of a contiguous copy of the view (up to the order of the sums)
    scale = np.abs(want.ntk).max()
    for negative in (contiguous[::-1], contiguous[:, ::-1], contiguous[::-1, ::-1], big[::-3, ::-2]):
        assert any(s < 0 for s in negative.strides)
        copy = np.ascontiguousarray(negative)
        for a, b in ((negative, None), (negative, view), (view, negative)):
            got = mlp.kernel(a, b)
            ref = mlp.kernel(copy if a is negative else a, copy if b is negative else b)
            np.testing.assert_allclose(got.nngp, ref.nngp, rtol=0, atol=1e-14 * scale)
            np.testing.assert_allclose(got.ntk, ref.ntk, rtol=0, atol=1e-14 * scale)
    # reversed rows permute the kernel; reversed features leave it unchanged (x1.x2 / d sums them)
    np.testing.assert_allclose(mlp.kernel(contiguous[::-1]).ntk, want.ntk[::-1, ::-1], rtol=0, atol=1e-14 * scale)
    np.testing.assert_allclose(mlp.kernel(contiguous[:, ::-1]).ntk, want.ntk, rtol=0, atol=1e-14 * scale)
    np.testing.assert_allclose(mlp.kernel(contiguous[::-1], contiguous).ntk, want.ntk[::-1], rtol=0,
                               atol=1e-14 * scale)


def test_activation_aliases_and_objects_agree(x):
    pairs = [("relu", A.Relu()), ("abs", A.Abs()), ("erf", A.Erf()), ("sigmoid_like", A.SigmoidLike()),
             ("gelu", A.Gelu()), ("sign", A.Sign()), ("identity", A.Identity()), ("ReLU", A.ABRelu(0, 1)),
             (A.LeakyRelu(0.0), A.Relu()), ("sin", A.Sin()), ("cos", A.Sin(c=np.pi / 2)), ("rbf", A.Rbf()),
             ("gabor", A.Gabor()), ("exp", A.Exp()), ("gaussian", A.Gaussian()), (A.RectifiedMonomial(1), A.Relu())]
    for alias, obj in pairs:
        a = ntkfast.MLP(2, alias, b_std=0.1).kernel(x, get="ntk")
        b = ntkfast.MLP(2, obj, b_std=0.1).kernel(x, get="ntk")
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert A.LeakyRelu(0.1) == A.ABRelu(0.1, 1.0)
    assert repr(A.Erf(1.5, 2.0, 0.0)) == "Erf(a=1.5, b=2.0, c=0.0)"
    assert repr(A.LeakyRelu(0.3)) == "LeakyRelu(alpha=0.3)"
    assert repr(A.Relu()) == "Relu()"
    assert repr(A.RectifiedMonomial(3)) == "RectifiedMonomial(degree=3)"
    assert repr(A.Rbf(0.5)) == "Rbf(gamma=0.5)"
    with pytest.raises(ValueError, match="degree"):
        A.Monomial(6)
    with pytest.raises(TypeError, match="degree"):
        A.RectifiedMonomial(1.5)
    with pytest.raises(ValueError, match="gamma"):
        A.Rbf(0.0)


def test_readout_defaults_follow_hidden_layers(x):
    default = ntkfast.MLP(2, "erf", W_std=1.3, b_std=0.4).kernel(x)
    explicit = ntkfast.MLP(2, "erf", W_std=1.3, b_std=0.4, readout_W_std=1.3, readout_b_std=0.4).kernel(x)
    no_readout_bias = ntkfast.MLP(2, "erf", W_std=1.3, b_std=0.4, readout_b_std=None).kernel(x)
    np.testing.assert_array_equal(default.ntk, explicit.ntk)
    # the readout bias adds b_std^2 to both kernels
    np.testing.assert_allclose(default.nngp - no_readout_bias.nngp, 0.16, rtol=1e-12)
    np.testing.assert_allclose(default.ntk - no_readout_bias.ntk, 0.16, rtol=1e-12)


def test_b_std_zero_differs_from_none_only_in_standard(x):
    for param, differs in (("ntk", False), ("standard", True)):
        zero = ntkfast.MLP(2, "relu", b_std=0.0, parameterization=param, width=16).kernel(x)
        none = ntkfast.MLP(2, "relu", b_std=None, parameterization=param, width=16).kernel(x)
        np.testing.assert_array_equal(zero.nngp, none.nngp)
        assert (not np.array_equal(zero.ntk, none.ntk)) == differs


def test_mlp_repr_and_attributes():
    m = ntkfast.MLP(2, "erf", W_std=1.5, b_std=0.1, parameterization="Standard", width=64, readout_b_std=None)
    assert m.parameterization == "standard" and m.readout_W_std == 1.5 and m.readout_b_std is None
    assert repr(m) == ("MLP(2, Erf(a=1.0, b=1.0, c=0.0), W_std=1.5, b_std=0.1, parameterization='standard', "
                       "width=64, readout_b_std=None)")


@pytest.mark.parametrize("mlp", [
    ntkfast.MLP(3, "relu", W_std=2**0.5, b_std=0.1),
    ntkfast.MLP(2, A.Erf(1.3, 0.7, -0.2), W_std=1.1, b_std=None, readout_W_std=0.8, readout_b_std=0.5),
    ntkfast.MLP(2, A.RectifiedMonomial(3), W_std=0.9, b_std=0.0, parameterization="standard", width=17,
                readout_b_std=None),
    ntkfast.MLP(2, "tanh", W_std=1.2, b_std=0.2),
    ntkfast.MLP(1, A.Numerical(np.sin, np.cos, degree=64), W_std=1.2),
], ids=["relu", "erf_readout", "rectified_standard", "tanh", "numerical"])
def test_mlp_pickles_and_copies_to_the_same_kernels(mlp):
    import copy
    import pickle

    x = np.random.default_rng(12).standard_normal((7, 3))
    want = mlp.kernel(x)
    for other in (pickle.loads(pickle.dumps(mlp)), copy.deepcopy(mlp), copy.copy(mlp)):
        assert repr(other) == repr(mlp) and other.activation == mlp.activation
        got = other.kernel(x)
        np.testing.assert_array_equal(got.nngp, want.nngp)
        np.testing.assert_array_equal(got.ntk, want.ntk)
        np.testing.assert_array_equal(other.kernel(x, x[:2] * 2, get="ntk"), mlp.kernel(x, x[:2] * 2, get="ntk"))


def _ticks_during(call, attempts=50):
    """How often another Python thread ran while ``call()`` ran in this one.

    The interpreter is told never to preempt a thread (a switch interval of 1000 s), and the
    other thread gives the GIL up for 0.2 ms after every tick: it can tick during ``call()`` only
    if ``call`` releases the GIL, and this thread gets it back as soon as it asks. No wall-clock
    threshold: the call is repeated (up to ``attempts`` times) until a tick is seen, so a fast
    machine only needs more repetitions."""
    counter = [0]
    done = threading.Event()

    def ticker():
        while not done.is_set():
            counter[0] += 1
            time.sleep(0.0002)

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=ticker)
    sys.setswitchinterval(1000.0)
    try:
        thread.start()
        time.sleep(0.01)  # let it start ticking
        for _ in range(attempts):
            before = counter[0]
            call()
            during = counter[0] - before
            if during > 0:
                return during
        return 0
    finally:
        done.set()
        sys.setswitchinterval(interval)
        thread.join()


def test_long_calls_release_the_gil():
    """A Python thread keeps running while the core computes (kernels, linear algebra, finite nets)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 300))
    m = ntkfast.MLP(10, "gelu", W_std=1.2, b_std=0.1)
    a = rng.standard_normal((400, 400))
    a = a @ a.T
    net = ntkfast.MLP(2, "relu").init(300, width=512, seed=0)
    # the control: a call that holds the GIL (pure Python) lets the other thread tick zero times
    assert _ticks_during(lambda: sum(i * i for i in range(300_000)), attempts=3) == 0
    assert _ticks_during(lambda: m.kernel(x)) > 0
    assert _ticks_during(lambda: ntkfast.eigh(a)) > 0
    assert _ticks_during(lambda: net.ntk(x[:500])) > 0


@pytest.mark.parametrize("level", ["baseline", "avx2"])
def test_every_simd_level_computes_the_same_kernels(level):
    """NTKFAST_SIMD caps the dispatch level: each code path agrees with the best one."""
    script = (
        "import sys, numpy as np, ntkfast\n"
        "x = np.random.default_rng(5).standard_normal((300, 7))\n"
        "out = []\n"
        "for act in ['relu', 'erf', 'gelu', 'sign', 'abs']:\n"
        "    k = ntkfast.MLP(3, act, W_std=1.4, b_std=0.1).kernel(x)\n"
        "    out += [k.nngp, k.ntk, ntkfast.MLP(3, act).kernel(x.astype(np.float32)).ntk]\n"
        "np.savez(sys.argv[1], *out)\n"
        "print(ntkfast.simd_level())\n"
    )
    import os
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in (("best", {}), ("capped", {"NTKFAST_SIMD": level})):
            path = os.path.join(tmp, f"{name}.npz")
            proc = subprocess.run([sys.executable, "-c", script, path], env={**os.environ, **env},
                                  capture_output=True, text=True, check=True)
            with np.load(path) as data:
                results[name] = (proc.stdout.strip(), [data[k] for k in sorted(data.files, key=lambda s: int(s.split("_")[1]))])
    assert results["capped"][0] in (level, "baseline")
    for best, capped in zip(results["best"][1], results["capped"][1]):
        tol = 1e-5 if best.dtype == np.float32 else 1e-13
        assert np.max(np.abs(best - capped)) <= tol * np.max(np.abs(best))


def test_version_and_runtime_info():
    assert ntkfast.__version__ == "0.1.0"
    assert ntkfast.num_threads() >= 1
    assert ntkfast.simd_level() in ("avx512", "avx2", "baseline")
