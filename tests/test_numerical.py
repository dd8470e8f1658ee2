"""Arbitrary activations by Gauss-Hermite quadrature (``activations.Numerical`` and the built-in names)."""

import re
import warnings

import numpy as np
import pytest
from scipy.special import erf, expit

import ntkfast
from ntkfast import activations as A

from reference import quadrature_dual, reference_kernels

SQRT_2_PI = np.sqrt(2 / np.pi)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(SQRT_2_PI * (x + 0.044715 * x**3)))


def gelu_tanh_prime(x):
    t = np.tanh(SQRT_2_PI * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * SQRT_2_PI * (1 + 3 * 0.044715 * x**2)


SMOOTH = {
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "softplus": (lambda x: np.logaddexp(0, x), expit),
    "silu": (lambda x: x * expit(x), lambda x: expit(x) * (1 + x * (1 - expit(x)))),
    "sigmoid": (expit, lambda x: expit(x) * (1 - expit(x))),
    "gelu_tanh": (gelu_tanh, gelu_tanh_prime),
}


def inputs(n, d, seed, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal((n, d))


@pytest.mark.parametrize("name", list(SMOOTH))
def test_builtins_match_an_independent_high_degree_reference(name):
    phi, dphi = SMOOTH[name]
    # unequal variances, moderate enough (q <~ 3) for the 200-point reference to be exact to ~1e-11
    x1, x2 = inputs(7, 4, 1, scale=0.7), inputs(5, 4, 2, scale=1.0)
    mlp = ntkfast.MLP(2, name, W_std=1.3, b_std=0.2)
    reference = quadrature_dual(phi, dphi, degree=200)
    for b in (x2, None):
        k = mlp.kernel(x1, b)
        want = reference_kernels(x1, b, 2, reference, W_std=1.3, b_std=0.2)
        for got, ref in zip((k.nngp, k.ntk), want):
            assert np.max(np.abs(got - ref)) <= 1e-8 * np.max(np.abs(ref)), name


def test_numerical_erf_agrees_with_the_closed_form_at_depth_3():
    x = inputs(40, 6, 3)
    exact = ntkfast.MLP(3, A.Erf(), W_std=1.3, b_std=0.2).kernel(x)
    derf = lambda z: 2 / np.sqrt(np.pi) * np.exp(-z * z)  # noqa: E731
    for act in (A.Numerical(erf, derf), A.Numerical(erf)):  # with phi', and derived from the series
        k = ntkfast.MLP(3, act, W_std=1.3, b_std=0.2).kernel(x)
        for got, ref in ((k.nngp, exact.nngp), (k.ntk, exact.ntk)):
            assert np.max(np.abs(got - ref)) <= 1e-8 * np.max(np.abs(ref))
        d = ntkfast.MLP(3, act, W_std=1.3, b_std=0.2).kernel(x, diagonal=True)
        np.testing.assert_allclose(d.ntk, np.diag(exact.ntk), rtol=1e-8)


def test_python_function_equals_the_builtin():
    x = inputs(20, 3, 4)
    native = ntkfast.MLP(2, "tanh", b_std=0.1).kernel(x)
    python = ntkfast.MLP(2, A.Numerical(np.tanh, lambda z: 1 - np.tanh(z) ** 2), b_std=0.1).kernel(x)
    np.testing.assert_allclose(python.ntk, native.ntk, rtol=1e-12)


@pytest.mark.parametrize("name", ["tanh", "elu", "selu", "silu"])
def test_near_parallel_antiparallel_and_unequal_variance_inputs_stay_finite(name):
    rng = np.random.default_rng(5)
    base = rng.standard_normal(5)
    x = np.stack([base, base * (1 + 1e-9), -base, 3 * base, 1e-3 * base, np.zeros(5), rng.standard_normal(5) * 4])
    k = ntkfast.MLP(3, name, W_std=1.5, b_std=0.1).kernel(x)
    d = ntkfast.MLP(3, name, W_std=1.5, b_std=0.1).kernel(x, diagonal=True)
    for mat, diag in ((k.nngp, d.nngp), (k.ntk, d.ntk)):
        assert np.all(np.isfinite(mat))
        # Cauchy-Schwarz holds up to the series' accuracy
        assert np.all(np.abs(mat) <= np.sqrt(np.outer(diag, diag)) * (1 + 1e-6) + 1e-12)
        # SELU's derivative jumps at 0, so its series converges slowly at correlation 1
        assert mat[0, 1] == pytest.approx(diag[0], rel=2e-3 if name == "selu" else 1e-5)


def test_kinked_activations_warn_with_an_error_estimate_that_holds():
    """ELU's phi' has a kink at 0, where Gauss-Hermite converges only algebraically: even 2048
    points leave ~1e-4 on the NTK. The kernel warns, and the estimate it gives bounds the error
    (checked against nested adaptive integration)."""
    elu = lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))  # noqa: E731
    delu = lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))  # noqa: E731
    for q, rho in ((0.5, 0.3), (2.0, 0.9)):
        x = np.sqrt(2 * q) * np.array([[1.0, 0.0], [rho, np.sqrt(1 - rho * rho)]])
        with pytest.warns(RuntimeWarning, match="did not converge") as record:
            k = ntkfast.MLP(1, "elu").kernel(x)  # one hidden layer, W_std = 1, no bias
        estimate = float(re.search(r"relative error is ([0-9.e+-]+),", str(record[0].message)).group(1))
        nngp = _gaussian_pair_mean(elu, elu, q, q, rho)
        ntk = nngp + rho * q * _gaussian_pair_mean(delu, delu, q, q, rho)
        assert abs(k.nngp[0, 1] - nngp) <= estimate * abs(nngp)
        assert abs(k.ntk[0, 1] - ntk) <= estimate * abs(ntk)
        assert estimate < 1e-3


def test_finite_networks_with_builtin_numerical_activations():
    mlp = ntkfast.MLP(1, "softplus", W_std=1.2, b_std=0.3)
    net = mlp.init(3, width=4, seed=0)
    x = inputs(3, 3, 7)
    (w0, b0), (w1, b1) = net.params
    h = np.logaddexp(0, 1.2 / np.sqrt(3) * x @ w0 + 0.3 * b0)
    np.testing.assert_allclose(net.apply(x), 1.2 / 2 * h @ w1 + 0.3 * b1, rtol=1e-12)


def test_finite_networks_with_python_activations():
    """A Python callable is evaluated once per layer on the whole batch; without dfn, phi' comes
    from central differences."""
    dtanh = lambda z: 1 - np.tanh(z) ** 2  # noqa: E731
    x = inputs(5, 3, 9)
    native = ntkfast.MLP(2, "tanh", W_std=1.4, b_std=0.2).init(3, width=6, out_dim=2, seed=1)
    for act, rtol in ((A.Numerical(np.tanh, dtanh), 1e-14), (A.Numerical(np.tanh), 1e-8)):
        net = ntkfast.MLP(2, act, W_std=1.4, b_std=0.2).init(3, width=6, out_dim=2, seed=1)
        np.testing.assert_allclose(net.apply(x), native.apply(x), rtol=1e-14)
        np.testing.assert_allclose(net.ntk(x), native.ntk(x), rtol=rtol)
    calls = []

    def counted(z):
        calls.append(z.shape)
        return np.tanh(z)

    net = ntkfast.MLP(2, A.Numerical(counted, dtanh), W_std=1.4).init(3, width=6, seed=1)
    calls.clear()  # (Numerical probes fn once when built)
    net.apply(x)
    assert calls == [(30,), (30,)]  # one call per hidden layer: all 5 x 6 pre-activations at once
    bad = ntkfast.MLP(1, A.Numerical(lambda z: np.where(z > 50, np.inf, z))).init(3, width=4, seed=0)
    with pytest.raises(ValueError, match="activation: the function is not finite"):
        bad.apply(np.full((1, 3), 100.0))


def test_numerical_bad_input():
    with pytest.raises(ValueError, match="fn: must be vectorised"):
        A.Numerical(lambda z: 1.0)
    with pytest.raises(TypeError, match="fn"):
        A.Numerical(3)
    with pytest.raises(ValueError, match="fn: unknown built-in"):
        A.Numerical("tanhh")
    with pytest.raises(ValueError, match="degree"):
        A.Numerical(np.tanh, degree=2)
    explodes = A.Numerical(lambda z: np.where(np.abs(z) > 3, np.nan, z))
    with pytest.raises(ValueError, match="activation: the function is not finite"):
        ntkfast.MLP(1, explodes).kernel(inputs(3, 2, 0))
    raises = A.Numerical(lambda z: z if z.size < 10 else 1 / 0)
    with pytest.raises(ValueError, match="activation: the function: raised"):
        ntkfast.MLP(1, raises).kernel(inputs(3, 2, 0))
    assert repr(A.Numerical("tanh")) == "Numerical('tanh', degree=128)"
    assert repr(ntkfast.activations.get("silu")) == "Numerical('silu', degree=128)"


def test_cross_kernels_of_differently_scaled_sets_match_the_joint_kernel():
    """x2 at 100x the variance of x1 needs a higher quadrature degree: both sides must share it."""
    rng = np.random.default_rng(8)
    x1, x2 = 0.3 * rng.standard_normal((4, 5)), 3 * rng.standard_normal((3, 5))
    mlp = ntkfast.MLP(2, "tanh", W_std=1.2, b_std=0.1)
    joint = mlp.kernel(np.vstack([x1, x2]))
    for a, b, block in ((x1, x2, np.s_[:4, 4:]), (x2, x1, np.s_[4:, :4])):
        k = mlp.kernel(a, b)
        np.testing.assert_allclose(k.nngp, joint.nngp[block], rtol=1e-12)
        np.testing.assert_allclose(k.ntk, joint.ntk[block], rtol=1e-12)


def _gaussian_pair_mean(f, g, q1, q2, rho):
    """E[f(u) g(v)] for centred Gaussians of variances q1, q2 and correlation rho, by nested adaptive
    quadrature (scipy's QUADPACK): independent of the Hermite machinery."""
    from scipy import integrate

    s1, s2, c = np.sqrt(q1), np.sqrt(q2), np.sqrt(1 - rho * rho)
    density = lambda t: np.exp(-t * t / 2) / np.sqrt(2 * np.pi)  # noqa: E731

    def inner(z):  # E[g(v) | u = s1 z]
        return integrate.quad(lambda w: g(s2 * (rho * z + c * w)) * density(w), -12, 12,
                              points=[-rho * z / c], limit=400, epsabs=1e-14, epsrel=1e-13)[0]

    return integrate.quad(lambda z: f(s1 * z) * inner(z) * density(z), -12, 12, points=[0],
                          limit=400, epsabs=1e-14, epsrel=1e-12)[0]


@pytest.mark.parametrize("name, q", [("tanh", 10.0), ("sigmoid", 25.0), ("softplus", 64.0)])
def test_steep_activations_at_large_variance_against_adaptive_integration(name, q):
    """Pre-activation variances of 10-96: hundreds of series terms, still 1e-8 accurate."""
    phi, dphi = SMOOTH[name]
    rho, ratio = 0.9, 1.5  # correlation, and the second input's variance relative to the first
    d = 2
    x = np.sqrt(q * d) * np.array([[1.0, 0.0], [np.sqrt(ratio) * rho, np.sqrt(ratio * (1 - rho * rho))]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no warning
        k = ntkfast.MLP(1, name).kernel(x)  # one hidden layer, W_std = 1, no bias
    nngp = _gaussian_pair_mean(phi, phi, q, ratio * q, rho)
    dot = _gaussian_pair_mean(dphi, dphi, q, ratio * q, rho)
    assert k.nngp[0, 1] == pytest.approx(nngp, rel=1e-8)
    assert k.ntk[0, 1] == pytest.approx(nngp + x[0] @ x[1] / d * dot, rel=1e-8)


def test_an_unconverged_quadrature_warns_with_its_error_estimate():
    x = np.array([[100.0, 0.0], [60.0, 80.0]])  # pre-activation variance 5000
    with pytest.warns(RuntimeWarning, match=r"did not converge .*: its estimated relative error is [0-9.]+e[+-]?[0-9]+,"):
        k = ntkfast.MLP(1, "tanh").kernel(x)
    assert np.all(np.isfinite(k.ntk))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ntkfast.MLP(1, "tanh").kernel(x / 100)


def test_non_convergence_warning_points_at_the_callers_line():
    """The quadrature warning names the user's line, through MLP.kernel, stax's kernel_fn and
    predict alike (not a line inside ntkfast)."""
    from ntkfast import stax

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 5)) * 4
    calls = [lambda: ntkfast.MLP(3, "selu", W_std=1.5, b_std=0.1).kernel(x, diagonal=True),
             lambda: stax.serial(stax.Dense(8, W_std=1.5, b_std=0.1), stax.Selu(), stax.Dense(1)).kernel_fn(x, None,
                                                                                                               "ntk")]
    for call in calls:
        with pytest.warns(RuntimeWarning, match="did not converge") as record:
            call()
        assert {w.filename for w in record} == {__file__}
