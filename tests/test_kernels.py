"""Analytic kernels against an independent NumPy reference, closed forms and structural properties."""


import itertools

import numpy as np
import pytest

import ntkfast
from ntkfast import activations as A

from reference import (dual_abrelu, dual_erf, dual_gelu, dual_identity, dual_monomial, dual_rectified,
                       dual_rectified_any, dual_sign, quadrature_dual, reference_kernels, weighted_quadrature_dual)

ACTIVATIONS = {
    "relu": (A.Relu(), dual_abrelu(0.0, 1.0)),
    "leaky_relu": (A.LeakyRelu(0.2), dual_abrelu(0.2, 1.0)),
    "abs": (A.Abs(), dual_abrelu(-1.0, 1.0)),
    "abrelu": (A.ABRelu(0.7, -1.3), dual_abrelu(0.7, -1.3)),
    "erf": (A.Erf(), dual_erf(1.0, 1.0, 0.0)),
    "erf_affine": (A.Erf(1.4, 0.6, -0.3), dual_erf(1.4, 0.6, -0.3)),
    "sigmoid_like": (A.SigmoidLike(), dual_erf(0.5, 1 / 2.4020563531719796, 0.5)),
    "gelu": (A.Gelu(), dual_gelu),
    "sign": (A.Sign(), dual_sign),
    "identity": (A.Identity(), dual_identity),
    "sin": (A.Sin(1.2, 0.7, 0.3), quadrature_dual(lambda x: 1.2 * np.sin(0.7 * x + 0.3),
                                                  lambda x: 0.84 * np.cos(0.7 * x + 0.3))),
    "cos": (A.Cos(), quadrature_dual(np.cos, lambda x: -np.sin(x))),
    "rbf": (A.Rbf(0.6), quadrature_dual(lambda x: np.sqrt(2) * np.sin(np.sqrt(1.2) * x + np.pi / 4),
                                        lambda x: np.sqrt(2.4) * np.cos(np.sqrt(1.2) * x + np.pi / 4))),
    # exp(-x^2) sin(x) and its derivative exp(-x^2) (cos(x) - 2 x sin(x)), by a rule for the
    # Gaussian narrowed by exp(-x^2) (32 points agree with a plain 320-point rule to 3e-15)
    "gabor": (A.Gabor(), weighted_quadrature_dual(np.sin, lambda x: np.cos(x) - 2 * x * np.sin(x), 1.0, degree=32)),
    "exp": (A.Exp(0.7, 0.4), quadrature_dual(lambda x: 0.7 * np.exp(0.4 * x), lambda x: 0.28 * np.exp(0.4 * x))),
    # 1.1 exp(-0.8 x^2) and its derivative -1.76 x exp(-0.8 x^2), the same way
    "gaussian": (A.Gaussian(1.1, -0.8), weighted_quadrature_dual(lambda x: 1.1 + 0 * x, lambda x: -1.76 * x, 0.8,
                                                                 degree=32)),
    "monomial3": (A.Monomial(3), quadrature_dual(lambda x: x**3, lambda x: 3 * x**2)),
    "rectified_monomial2": (A.RectifiedMonomial(2), dual_rectified(2)),
    "rectified_monomial0": (A.RectifiedMonomial(0), dual_rectified(0)),
}


def inputs(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d))


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("depth", [0, 1, 3])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("b_std", [None, 0.0, 0.4])
def test_matches_numpy_reference(name, depth, parameterization, b_std):
    activation, dual = ACTIVATIONS[name]
    x1, x2 = inputs(6, 5, 0), inputs(4, 5, 1)
    # measured: 1.5e-13 for GELU (its 96-point reference), at most 7e-15 for the others
    tol = 1e-12
    for readout in [{}, {"readout_W_std": 0.7, "readout_b_std": None}]:
        mlp = ntkfast.MLP(depth, activation, W_std=1.3, b_std=b_std, parameterization=parameterization,
                          width=32, **readout)
        ref_kw = dict(W_std=1.3, b_std=b_std, parameterization=parameterization, width=32,
                      readout_W_std=readout.get("readout_W_std"),
                      readout_b_std=readout.get("readout_b_std", "same"))
        for a, b in [(x1, x2), (x1, None)]:
            k = mlp.kernel(a, b)
            want_nngp, want_ntk = reference_kernels(a, b, depth, dual, **ref_kw)
            assert rel_err(k.nngp, want_nngp) < tol, (name, depth, parameterization, b_std, readout)
            assert rel_err(k.ntk, want_ntk) < tol, (name, depth, parameterization, b_std, readout)
        diag = mlp.kernel(x1, diagonal=True)
        full = mlp.kernel(x1)
        np.testing.assert_allclose(diag.nngp, np.diag(full.nngp), rtol=1e-14, atol=0)
        np.testing.assert_allclose(diag.ntk, np.diag(full.ntk), rtol=1e-14, atol=0)


def unit_variance_inputs(n, d, seed, norm=1.0):
    """Rows with x.x / d = norm^2: every input has the same pre-activation variance."""
    x = inputs(n, d, seed)
    return norm * np.sqrt(d) * x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("family, degree", [("monomial", k) for k in range(6)]
                         + [("rectified_monomial", k) for k in range(11)])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_monomials_of_every_degree_through_the_recursion(family, degree, parameterization):
    """Monomial(0-5) and RectifiedMonomial(0-10) at depths 1-3 against closed forms in
    tests/reference.py (Hermite expansion; Cho & Saul's J_n), to 1e-12 of sqrt(k(x, x) k(x', x')).
    W_std and the inputs' norms keep the pre-activation variances at 1 (1.06 for x2) through the
    layers (x^10 of x^10 would overflow otherwise)."""
    from math import prod

    moment = prod(range(2 * degree - 1, 0, -2))  # E[z^(2n)] = (2n - 1)!!, half of it for (z)_+^n
    activation, dual = ((A.Monomial(degree), dual_monomial(degree)) if family == "monomial" else
                        (A.RectifiedMonomial(degree), dual_rectified_any(degree)))
    if family == "rectified_monomial":
        moment = moment / 2
    # W_std^2 moment + b_std^2 = 1 and inputs with x.x / d = moment: variance 1 at every layer
    x1 = unit_variance_inputs(6, 5, 20, norm=np.sqrt(moment))
    x2 = unit_variance_inputs(4, 5, 21, norm=1.03 * np.sqrt(moment))
    for depth, b_std in itertools.product((1, 2, 3), (None, 0.2)):
        W_std = float(np.sqrt((1 - (b_std or 0.0) ** 2) / moment))
        assert (x1 * x1).sum(1) / 5 * W_std**2 + (b_std or 0.0) ** 2 == pytest.approx(1.0)
        mlp = ntkfast.MLP(depth, activation, W_std=W_std, b_std=b_std, parameterization=parameterization, width=7)
        kw = dict(W_std=W_std, b_std=b_std, parameterization=parameterization, width=7)
        d1 = [np.diag(k) for k in reference_kernels(x1, None, depth, dual, **kw)]
        d2 = [np.diag(k) for k in reference_kernels(x2, None, depth, dual, **kw)]
        for a, b, (da, db) in ((x1, x2, (d1, d2)), (x1, None, (d1, d1))):
            got = mlp.kernel(a, b)
            want = reference_kernels(a, b, depth, dual, **kw)
            for kind, g, w in zip(("nngp", "ntk"), (got.nngp, got.ntk), want):
                scale = np.sqrt(np.outer(da[kind == "ntk"], db[kind == "ntk"]))
                err = np.max(np.abs(g - w) / scale)
                assert err <= 1e-12, (family, degree, depth, b_std, kind, err)


def arccos_relu(q12, q11, q22):
    """E[relu(u) relu(v)] and E[relu'(u) relu'(v)] (Cho & Saul's arc-cosine kernels)."""
    r = np.sqrt(q11 * q22)
    theta = np.arccos(np.clip(q12 / r, -1, 1))
    return r * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi), (np.pi - theta) / (2 * np.pi)


@pytest.mark.parametrize("with_bias", [False, True])
def test_one_hidden_layer_closed_form(with_bias):
    """The one-hidden-layer NTK (Du et al. 2019; Arora et al. 2019) K_inf(x, x') = E[s(U)s(V)] + s_a^2 (x.x' + 1) E[s'(U)s'(V)] of
    f(x) = 1/sqrt(m) sum_r a_r s(w_r.x + b_r), a ~ N(0, s_a^2), w ~ N(0, s_w^2/d I), b ~ N(0, s_b^2).

    Training w and b directly is the "standard" parameterization of the hidden layer, and the
    1/sqrt(m) readout is "standard" with fan_in 1, so the formula is MLP(1, standard, width=1)."""
    s_w, s_b, s_a = 1.7, (0.6 if with_bias else None), 0.9
    x, xp = inputs(5, 3, 2), inputs(4, 3, 3)
    d = x.shape[1]
    b2 = s_b**2 if with_bias else 0.0
    var_u = s_w**2 * (x * x).sum(1) / d + b2
    var_v = s_w**2 * (xp * xp).sum(1) / d + b2
    cov = s_w**2 * x @ xp.T / d + b2
    e_ss, e_dd = arccos_relu(cov, var_u[:, None], var_v[None, :])
    k_inf = e_ss + s_a**2 * (x @ xp.T + (1.0 if with_bias else 0.0)) * e_dd
    mlp = ntkfast.MLP(1, "relu", W_std=s_w, b_std=s_b, parameterization="standard", width=1,
                      readout_W_std=s_a, readout_b_std=None)
    np.testing.assert_allclose(mlp.kernel(x, xp, get="ntk"), k_inf, rtol=1e-13)
    np.testing.assert_allclose(mlp.kernel(x, xp, get="nngp"), s_a**2 * e_ss, rtol=1e-13)


def test_ntk_parameterization_one_layer_closed_form():
    """ReLU, one hidden layer, NTK parameterization: Theta = Sigma_2 + W^2 Sigma_1 Sigma-dot."""
    W, b = 2**0.5, 0.3
    x = inputs(6, 4, 4)
    q = W**2 * x @ x.T / 4 + b**2
    diag = np.diag(q)
    e_ss, e_dd = arccos_relu(q, diag[:, None], diag[None, :])
    np.fill_diagonal(e_ss, diag / 2)
    np.fill_diagonal(e_dd, 0.5)
    nngp = W**2 * e_ss + b**2
    ntk = nngp + W**2 * q * e_dd
    k = ntkfast.MLP(1, "relu", W_std=W, b_std=b).kernel(x)
    np.testing.assert_allclose(k.nngp, nngp, rtol=1e-13)
    np.testing.assert_allclose(k.ntk, ntk, rtol=1e-13)


def test_standard_parameterization_width_dependence():
    """The NNGP ignores width; each hidden layer adds fan_in * Sigma-hat to the NTK, so for one
    hidden layer Theta(m) - Theta(m') = (m - m') * Sigma-hat_1, i.e. (m - m') NNGP / W_r^2."""
    x = inputs(7, 3, 5)
    k = {m: ntkfast.MLP(1, "erf", W_std=1.1, b_std=0.2, parameterization="standard", width=m,
                        readout_b_std=None).kernel(x) for m in (8, 100)}
    np.testing.assert_allclose(k[8].nngp, k[100].nngp, rtol=1e-15)
    np.testing.assert_allclose(k[100].ntk - k[8].ntk, 92 * k[8].nngp / 1.1**2, rtol=1e-12)


def test_ntk_parameterization_ignores_width():
    x = inputs(5, 3, 6)
    a = ntkfast.MLP(2, "gelu", W_std=1.2, b_std=0.1, width=3).kernel(x)
    b = ntkfast.MLP(2, "gelu", W_std=1.2, b_std=0.1).kernel(x)
    np.testing.assert_array_equal(a.ntk, b.ntk)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_symmetric_and_positive_semidefinite(name):
    activation, _ = ACTIVATIONS[name]
    x = inputs(300, 7, 7)  # several tiles, so mirroring across tiles is exercised
    k = ntkfast.MLP(3, activation, W_std=1.5, b_std=0.2).kernel(x)
    for mat in (k.nngp, k.ntk):
        np.testing.assert_array_equal(mat, mat.T)
        eig = np.linalg.eigvalsh(mat)
        assert eig.min() >= -1e-10 * max(eig.max(), 1e-300)


def test_large_inputs_use_many_tiles_and_match_reference():
    """Tiles of 256: check a rectangular kernel spanning several tiles in both directions."""
    x1, x2 = inputs(530, 9, 8), inputs(300, 9, 9)
    mlp = ntkfast.MLP(2, "relu", W_std=1.4, b_std=0.1)
    k = mlp.kernel(x1, x2)
    want = reference_kernels(x1, x2, 2, dual_abrelu(0.0, 1.0), W_std=1.4, b_std=0.1)
    assert rel_err(k.nngp, want[0]) < 1e-12
    assert rel_err(k.ntk, want[1]) < 1e-12
    # the symmetric path equals the general one on the same inputs
    sym = mlp.kernel(x1)
    gen = mlp.kernel(x1, x1.copy())
    assert rel_err(sym.ntk, gen.ntk) < 1e-13


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_degenerate_inputs_give_finite_exact_values(name):
    activation, _ = ACTIVATIONS[name]
    rng = np.random.default_rng(10)
    base = rng.standard_normal(6)
    x = np.stack([
        base,
        base,  # identical
        -base,  # antipodal
        np.zeros(6),  # zero
        base * 3.0,  # parallel, other norm
        base + 1e-9 * rng.standard_normal(6),  # nearly parallel
        base * 1e-150,  # tiny
    ])
    depth = 2 if name == "exp" else 4  # exp's variance grows like a tower of exponentials
    for b_std in (None, 0.1):
        mlp = ntkfast.MLP(depth, activation, W_std=1.4, b_std=b_std)
        k = mlp.kernel(x)
        diag = mlp.kernel(x, diagonal=True)
        for mat, dg in ((k.nngp, diag.nngp), (k.ntk, diag.ntk)):
            assert np.all(np.isfinite(mat))
            # identical inputs: the off-diagonal entry equals the exact diagonal value
            assert mat[0, 1] == pytest.approx(dg[0], rel=1e-13, abs=1e-300)
            assert mat[1, 1] == dg[1]
            # nearly parallel: close to the identical-input value
            assert mat[0, 5] == pytest.approx(dg[0], rel=1e-6, abs=1e-12)
        cross = mlp.kernel(x, x[::-1].copy())
        assert np.all(np.isfinite(cross.nngp)) and np.all(np.isfinite(cross.ntk))


def test_antipodal_relu_without_bias_closed_form():
    """For x' = -x the ReLU pre-activations are u and -u: E[relu(u) relu(-u)] = 0 and
    E[relu'(u) relu'(-u)] = 0, so both kernels vanish after one hidden layer (no bias)."""
    x = np.array([[0.3, -1.2, 0.5]])
    mlp = ntkfast.MLP(1, "relu", W_std=1.7)
    k, scale = mlp.kernel(x, -x), mlp.kernel(x, diagonal=True)
    assert abs(k.nngp[0, 0]) <= 1e-15 * scale.nngp[0]
    assert abs(k.ntk[0, 0]) <= 1e-15 * scale.ntk[0]


@pytest.mark.parametrize("name", ["relu", "erf", "gelu", "abs", "sign"])
def test_depth_100_is_finite(name):
    activation, _ = ACTIVATIONS[name]
    x = inputs(20, 5, 11)
    k = ntkfast.MLP(100, activation, W_std=2**0.5 if name in ("relu",) else 1.0, b_std=0.05).kernel(x)
    assert np.all(np.isfinite(k.nngp)) and np.all(np.isfinite(k.ntk))
    assert np.all(np.diag(k.ntk) > 0)


PRICE = ["relu", "leaky_relu", "abs", "abrelu", "erf", "erf_affine", "sigmoid_like", "gelu", "identity", "sin", "cos",
         "rbf", "gabor", "exp", "gaussian", "monomial3", "rectified_monomial2"]


@pytest.mark.parametrize("name", PRICE)
def test_derivative_kernel_is_the_derivative_of_the_nngp_map(name):
    """Price's theorem: Sigma-dot = d Sigma-hat / d q12 at fixed variances. Rotating x2 around x1
    changes only q12; with depth 1, W_std=1 and no biases, NNGP = Sigma-hat(q12) and
    NTK - NNGP = q12 Sigma-dot(q12)."""
    activation, _ = ACTIVATIONS[name]
    mlp = ntkfast.MLP(1, activation, W_std=1.0, b_std=None)
    a, b = 1.1, 0.8
    x1 = np.array([[a, 0.0]])
    for gamma in (0.4, 1.3, 2.5):
        h = 1e-5
        x2 = b * np.array([[np.cos(g), np.sin(g)] for g in (gamma - h, gamma, gamma + h)])
        k = mlp.kernel(x1, x2)
        q12 = a * b * np.cos(gamma) / 2
        dot = (k.ntk[0, 1] - k.nngp[0, 1]) / q12
        dq12 = -a * b * np.sin(gamma) / 2
        fd = (k.nngp[0, 2] - k.nngp[0, 0]) / (2 * h) / dq12
        assert dot == pytest.approx(fd, rel=1e-6, abs=1e-8), (name, gamma)
