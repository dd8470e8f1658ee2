"""Agreement with neural-tangents 0.6.5, when it is installed (it is not a dependency).

neural-tangents needs its own environment (jax==0.4.23 jaxlib==0.4.23 numpy<2 scipy<1.13
tensorflow==2.15.1); there, `pip install . pytest` and run `pytest tests/test_neural_tangents.py`.
Without it these tests skip; tests/test_golden.py checks the same configurations on every run
against neural-tangents' numbers stored by tools/make_golden.py.

Off-diagonal entries agree to 1e-12 relative (measured: 1.1e-14 at most, tests/test_golden.py). On the diagonal of a self kernel neural-tangents
evaluates the angle formula at q12 = q11 with q12 from a matrix product and q11 from a separate
sum of squares, so its angle is sqrt(rounding) ~ 1e-8 instead of 0; ntkfast uses the exact
diagonal formulas. So diagonal NNGPs are compared with neural-tangents' own exact diagonal
(`Kernel.cov1`), and diagonal NTKs to the 1e-7 that its noise allows (not for Sign, where the
noise compounds through layers).
"""

import itertools
import warnings
import os

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
jax = pytest.importorskip("jax")
stax = pytest.importorskip("neural_tangents").stax
jax.config.update("jax_enable_x64", True)

import ntkfast  # noqa: E402
from ntkfast import activations as A  # noqa: E402

PAIRS = {
    "relu": (stax.Relu, A.Relu, ()),
    "leaky_relu": (stax.LeakyRelu, A.LeakyRelu, (0.1,)),
    "abs": (stax.Abs, A.Abs, ()),
    "abrelu": (stax.ABRelu, A.ABRelu, (-0.4, 1.6)),
    "erf": (stax.Erf, A.Erf, ()),
    "erf_affine": (stax.Erf, A.Erf, (1.3, 0.7, -0.2)),
    "sigmoid_like": (stax.Sigmoid_like, A.SigmoidLike, ()),
    "gelu": (stax.Gelu, A.Gelu, ()),
    "sign": (stax.Sign, A.Sign, ()),
    "identity": (stax.Identity, A.Identity, ()),
    "sin": (stax.Sin, A.Sin, (1.2, 0.7, 0.3)),
    "cos": (stax.Cos, A.Cos, (0.9, 1.1, -0.2)),
    "rbf": (stax.Rbf, A.Rbf, (0.6,)),
    "gabor": (stax.Gabor, A.Gabor, ()),
    "exp": (stax.Exp, A.Exp, (0.7, 0.4)),
    "gaussian": (stax.Gaussian, A.Gaussian, (1.1, -0.8)),
    "monomial2": (stax.Monomial, A.Monomial, (2,)),
    "monomial5": (stax.Monomial, A.Monomial, (5,)),
    "rectified_monomial2": (stax.RectifiedMonomial, A.RectifiedMonomial, (2,)),
}


def nt_kernel_fn(nt_act, depth, W_std, b_std, parameterization, width, readout_W_std, readout_b_std):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=W_std, b_std=b_std, parameterization=parameterization), nt_act]
    layers += [stax.Dense(2, W_std=readout_W_std, b_std=readout_b_std, parameterization=parameterization)]
    return stax.serial(*layers)[2]


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("depth", [1, 2, 5])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_agrees_with_neural_tangents(name, depth, parameterization):
    nt_layer, ours, params = PAIRS[name]
    if name == "monomial5" and depth == 5:
        pytest.skip("x^5 nested 5 times overflows float64 (ntkfast raises; neural-tangents returns inf)")
    rng = np.random.default_rng(depth)
    x1, x2 = rng.standard_normal((8, 6)), rng.standard_normal((5, 6)) * 1.5
    if name in ("exp", "monomial5", "gaussian"):  # keep the variances where the moments are moderate
        x1, x2 = 0.5 * x1, 0.5 * x2
    for b_std, readout in itertools.product([None, 0.0, 0.3], [None, (0.8, None), (1.1, 0.5)]):
        W_std = 1.3
        r_W, r_b = (W_std, b_std) if readout is None else readout
        kernel_fn = nt_kernel_fn(nt_layer(*params), depth, W_std, b_std, parameterization, 64, r_W, r_b)
        mlp = ntkfast.MLP(depth, ours(*params), W_std=W_std, b_std=b_std, parameterization=parameterization,
                          width=64, readout_W_std=r_W, readout_b_std=r_b)
        label = (name, depth, parameterization, b_std, readout)
        for a, b in [(x1, x2), (x1, None)]:
            ref = kernel_fn(a, b, ("nngp", "ntk"))
            got = mlp.kernel(a, b)
            for kind in ("nngp", "ntk"):
                r, o = np.asarray(getattr(ref, kind)), getattr(got, kind)
                if not np.all(np.isfinite(r)):  # neural-tangents' RectifiedMonomial is NaN beyond depth 1
                    assert name.startswith("rectified") and np.all(np.isfinite(o)), (label, kind)
                    continue
                off = np.ones(r.shape, bool) if b is not None else ~np.eye(len(r), dtype=bool)
                scale = max(np.max(np.abs(r)), 1e-300)
                assert np.max(np.abs(o - r)[off]) <= 1e-12 * scale, (label, kind)
        full = kernel_fn(x1, None)  # a Kernel: cov1 is neural-tangents' exact diagonal NNGP
        diag = mlp.kernel(x1, diagonal=True)
        if np.all(np.isfinite(np.asarray(full.cov1))):
            np.testing.assert_allclose(diag.nngp, np.asarray(full.cov1), rtol=1e-12, atol=1e-300, err_msg=str(label))
        if name != "sign" and np.all(np.isfinite(np.asarray(full.ntk))):
            np.testing.assert_allclose(diag.ntk, np.diag(np.asarray(full.ntk)), rtol=1e-7, err_msg=str(label))


@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("diag_reg", [0.0, 1e-3])
def test_predictions_agree_with_neural_tangents(get, diag_reg):
    nt = pytest.importorskip("neural_tangents")
    rng = np.random.default_rng(11)
    x, xt, y = rng.standard_normal((25, 6)), rng.standard_normal((7, 6)), rng.standard_normal((25, 3))
    kernel_fn = nt_kernel_fn(stax.Relu(), 2, 1.4, 0.1, "ntk", 64, 1.4, 0.1)
    ref_fn = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x, y, diag_reg=diag_reg)
    mlp = ntkfast.MLP(2, "relu", W_std=1.4, b_std=0.1)
    for t in (0.5, 5.0, 50.0, None):
        for x_test in (xt, None):
            ref = ref_fn(t, x_test, get, compute_cov=True)
            got = mlp.predict(x, y, x_test, t=t, get=get, compute_cov=True, diag_reg=diag_reg)
            for mine, theirs in ((got.mean, ref.mean), (got.cov, ref.covariance)):
                theirs = np.asarray(theirs)
                scale = max(np.max(np.abs(theirs)), 1e-12)
                assert np.max(np.abs(mine - theirs)) <= 1e-6 * scale, (get, diag_reg, t, x_test is None)


@pytest.mark.parametrize("name", ["relu", "erf", "gelu", "abrelu"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_finite_networks_from_neural_tangents_weights(name, parameterization):
    nt = pytest.importorskip("neural_tangents")
    nt_layer, ours, params = PAIRS[name]
    rng = np.random.default_rng(12)
    x1, x2 = rng.standard_normal((7, 5)), rng.standard_normal((4, 5))
    for b_std, out_dim in ((None, 1), (0.3, 3)):
        layers = []
        for _ in range(2):
            layers += [stax.Dense(16, W_std=1.3, b_std=b_std, parameterization=parameterization), nt_layer(*params)]
        layers += [stax.Dense(out_dim, W_std=0.9, b_std=b_std, parameterization=parameterization)]
        init_fn, apply_fn, _ = stax.serial(*layers)
        _, nt_params = init_fn(jax.random.PRNGKey(3), x1.shape)
        mlp = ntkfast.MLP(2, ours(*params), W_std=1.3, b_std=b_std, parameterization=parameterization, width=16,
                          readout_W_std=0.9)
        net = ntkfast.Network.from_params(mlp, nt_params)
        np.testing.assert_allclose(net.apply(x1), np.asarray(apply_fn(nt_params, x1)), rtol=1e-10, atol=1e-12)
        for trace in (True, False):
            kernel_fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,) if trace else (), vmap_axes=0,
                                            implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES)
            for b in (None, x2):
                ref = np.asarray(kernel_fn(x1, b, nt_params))
                np.testing.assert_allclose(net.ntk(x1, b, trace=trace), ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
        nngp_ref = np.asarray(nt.empirical_nngp_fn(apply_fn)(x1, x2, nt_params))
        np.testing.assert_allclose(net.nngp(x1, x2), nngp_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, nt_fn", [("tanh", "tanh"), ("softplus", "softplus"), ("silu", "silu"),
                                         ("sigmoid", "sigmoid"), ("gelu_tanh", "gelu")])
def test_numerical_activations_against_elementwise_numerical(name, nt_fn):
    """neural-tangents' ElementwiseNumerical (2-D Gauss-Hermite, deg^2 points per entry) converges
    to ntkfast's kernels as its degree grows (tanh at pre-activation variance 7: 3e-7 apart at
    deg=200, 3e-9 at 400, 3e-13 at 800); at deg=400 they agree to 1e-8."""
    fn = jax.numpy.tanh if nt_fn == "tanh" else getattr(jax.nn, nt_fn)
    if nt_fn == "gelu":  # jax.nn.gelu(approximate=True) is the tanh approximation
        fn = lambda z: jax.nn.gelu(z, approximate=True)  # noqa: E731
    rng = np.random.default_rng(11)
    x1, x2 = rng.standard_normal((5, 4)), 1.7 * rng.standard_normal((3, 4))
    layers = []
    for _ in range(2):
        layers += [stax.Dense(1, W_std=1.3, b_std=0.2), stax.ElementwiseNumerical(fn, deg=400)]
    layers += [stax.Dense(1, W_std=1.3, b_std=0.2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neural-tangents warns that its accuracy depends on deg
        theirs = stax.serial(*layers)[2](x1, x2, ("nngp", "ntk"))
    ours = ntkfast.MLP(2, name, W_std=1.3, b_std=0.2).kernel(x1, x2)
    for got, want in ((ours.nngp, theirs.nngp), (ours.ntk, theirs.ntk)):
        want = np.asarray(want)
        assert np.max(np.abs(got - want)) <= 1e-8 * np.max(np.abs(want))
