"""``ntkfast.stax``: neural-tangents' layer language, checked against neural-tangents' own numbers.

* Golden configurations (tests/golden/stax.npz, written by tools/make_golden_stax.py in
  neural-tangents' environment): each network is a source string such as
  ``"stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(), ...)"``, evaluated here with
  ``stax`` = ``ntkfast.stax`` exactly as it was evaluated there with neural-tangents' ``stax``: the
  same text must give the same kernels after changing only the import. Cross kernels and the
  off-diagonal entries of symmetric ones agree to 1e-12 of the largest entry (measured: 2.5e-15
  at most, deep20_relu's NTK); diagonal NNGPs to 1e-12 of neural-tangents' exact diagonal
  (``Kernel.cov1``; measured 6.4e-16). On the diagonal of a symmetric kernel neural-tangents
  evaluates the angle formulas at an angle of ~1e-8 (rounding) instead of 0
  (tests/test_neural_tangents.py), so diagonal NTKs are compared with it to 1e-7 only (measured
  2.9e-8; not at all where a Sign layer, whose NTK diagonal it gets wrong, is involved), and to
  1e-12 with the plain-NumPy reference (tests/stax_reference.py), which is exact there (measured
  3.1e-15). Configurations with ``ElementwiseNumerical`` (quadrature on both sides; inputs at a
  scale where neural-tangents' 200-point rule is accurate) agree to 1e-10 (measured 1.5e-12).
* Configurations neural-tangents refuses raise here too, with the same exception type (ValueError,
  or NotImplementedError where neural-tangents raises that) and a message naming the layer.
* Random layer trees (Dense, activations, LayerNorm, residual blocks, FanInProd, both
  parameterizations) against the NumPy reference, to 1e-12 (measured 1.1e-15).
* ``serial(*[Dense, act] * depth, Dense)`` equals ``ntkfast.MLP`` to 1e-13, and so do predictions
  to 1e-10 (measured: both bit-identical).
* The API: the (init_fn, apply_fn, kernel_fn) triple, ``get``, dtypes, symmetry, the diagonal,
  positive semi-definiteness, pickling, and errors that name the argument or the layer.
* A live comparison with neural-tangents when it is importable (it is not a dependency).
"""

from __future__ import annotations

import copy
import json
import pathlib
import pickle

import numpy as np
import pytest

import ntkfast
from ntkfast import activations as A
from ntkfast import stax

import stax_reference

GOLDEN = pathlib.Path(__file__).parent / "golden" / "stax.npz"
with np.load(GOLDEN) as _file:
    DATA = dict(_file)
META = json.loads(str(DATA["meta"]))
CONFIGS = {c["name"]: c for c in META["configs"]}
ERRORS = {e["name"]: e for e in META["errors"]}

KERNEL_TOL = 1e-12  # relative to the largest entry
NUMERICAL_TOL = 1e-10  # ElementwiseNumerical: quadrature against quadrature
DIAG_NTK_TOL = 1e-7  # neural-tangents' diagonal NTK (its angle formula at an angle of ~1e-8)
REFERENCE_TOL = 1e-12
MLP_TOL = 1e-13

# what a source string may name: ntkfast's stax, and NumPy where neural-tangents' used jax.numpy
NAMESPACE = {"stax": stax, "jnp": np, "np": np}


def build(source: str):
    return eval(source, dict(NAMESPACE))  # noqa: S307 - the test's own source strings


def relative_error(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    finite = np.isfinite(want)
    assert got.shape == want.shape
    return float(np.max(np.abs(got[finite] - want[finite])) / max(np.max(np.abs(want[finite])), 1e-300))


# ---------------------------------------------------------------------------------------------
# neural-tangents' numbers

def test_the_file_is_neural_tangents_output():
    assert META["neural_tangents"] == "0.6.5" and META["generator"] == "tools/make_golden_stax.py"
    assert GOLDEN.stat().st_size < 2_000_000
    assert len(CONFIGS) >= 40 and len(ERRORS) >= 10
    assert all(value.dtype == np.float64 for key, value in DATA.items() if key != "meta")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_golden_kernels(name):
    config = CONFIGS[name]
    source = config["source"]
    tol = NUMERICAL_TOL if "ElementwiseNumerical" in source else KERNEL_TOL
    x1, x2 = DATA[f"{name}/x1"], DATA[f"{name}/x2"]
    layer = build(source)
    init_fn, apply_fn, kernel_fn = layer  # neural-tangents' triple
    cross = kernel_fn(x1, x2, ("nngp", "ntk"))
    sym = kernel_fn(x1, None)
    diag = layer.kernel(x1, diagonal=True)
    label = f"{name}: {source}"
    for kind in ("nngp", "ntk"):
        want = DATA[f"{name}/{kind}_cross"]
        assert np.all(np.isfinite(want)), label
        got = getattr(cross, kind)
        assert got.dtype == np.float64 and got.shape == want.shape, label
        assert relative_error(got, want) <= tol, (label, kind, relative_error(got, want))
        # symmetric: off-diagonal entries to the same tolerance (neural-tangents' RectifiedMonomial is
        # NaN on the diagonal, where its angle is 0, and nowhere else)
        want = DATA[f"{name}/{kind}_sym"]
        got = getattr(sym, kind)
        off = ~np.eye(len(want), dtype=bool)
        assert np.all(np.isfinite(want[off])), label
        assert np.all(np.isfinite(got)), label
        err = np.max(np.abs(got - want)[off]) / np.max(np.abs(want[np.isfinite(want)]))
        assert err <= tol, (label, kind, err)
        np.testing.assert_allclose(np.diag(got), getattr(diag, kind), rtol=1e-14, atol=0, err_msg=label)
    # diagonals: the NNGP against neural-tangents' exact diagonal, the NTK against the reference
    # (exact) and, loosely, against neural-tangents' noisy one
    want = DATA[f"{name}/cov1"]
    if np.all(np.isfinite(want)):
        np.testing.assert_allclose(diag.nngp, want, rtol=tol, atol=0, err_msg=label)
    else:
        assert "RectifiedMonomial" in source, label
    ref_nngp, ref_ntk = stax_reference.reference_diagonal(layer, x1)
    np.testing.assert_allclose(diag.nngp, ref_nngp, rtol=tol, atol=0, err_msg=label)
    np.testing.assert_allclose(diag.ntk, ref_ntk, rtol=tol, atol=tol * np.max(np.abs(ref_ntk)), err_msg=label)
    want = np.diag(DATA[f"{name}/ntk_sym"])
    if "Sign()" not in source and np.all(np.isfinite(want)):
        np.testing.assert_allclose(diag.ntk, want, rtol=DIAG_NTK_TOL, atol=DIAG_NTK_TOL * np.max(np.abs(want)),
                                   err_msg=label)


@pytest.mark.parametrize("name", list(ERRORS))
def test_golden_errors(name):
    """What neural-tangents refuses (an activation or LayerNorm without a Gaussian input, FanInSum of
    non-Gaussian branches, branches of different widths) is an error of the same type here, when the
    network is built or when its kernel is asked for, with a message naming the layer."""
    error = ERRORS[name]
    expected = {"ValueError": ValueError, "NotImplementedError": NotImplementedError}[error["error"]]
    x1, x2 = np.random.default_rng(7).standard_normal((2, 5)), np.random.default_rng(8).standard_normal((3, 5))
    with pytest.raises(expected) as info:
        _, _, kernel_fn = build(error["source"])
        kernel_fn(x1, x2)
    assert error["offender"] in str(info.value), (name, str(info.value), "neural-tangents: " + error["message"])


def test_golden_errors_also_from_kernel_and_diagonal():
    for name in ("activation_on_inputs", "faninsum_non_gaussian_branches", "layernorm_after_activation"):
        error = ERRORS[name]
        expected = {"ValueError": ValueError, "NotImplementedError": NotImplementedError}[error["error"]]
        x = np.ones((2, 5))
        for call in (lambda layer: layer.kernel(x), lambda layer: layer.kernel(x, diagonal=True),
                     lambda layer: layer.kernel_fn(x, None, "nngp")):
            with pytest.raises(expected, match=error["offender"]):
                call(build(error["source"]))


# ---------------------------------------------------------------------------------------------
# random layer trees against the NumPy reference

TREE_ACTIVATIONS = (
    lambda: stax.Relu(), lambda: stax.Erf(), lambda: stax.Erf(1.3, 0.7, -0.2), lambda: stax.Abs(),
    lambda: stax.LeakyRelu(0.2), lambda: stax.ABRelu(-0.5, 1.1), lambda: stax.Sin(1.0, 0.8, 0.3),
)


def random_tree(index: int):
    """A random valid network (every activation and LayerNorm after an affine layer): a Dense layer,
    then 1-4 units among activation + Dense, LayerNorm, a residual block and a product of two Dense
    (+ activation) branches followed by a Dense layer; then an optional activation and a readout."""
    rng = np.random.default_rng(500 + index)
    mode = ("ntk", "standard", "mixed")[index % 3]

    def dense(width):
        b_std = (None, 0.0, float(rng.uniform(0.05, 0.5)))[rng.integers(3)]
        parameterization = mode if mode != "mixed" else ("ntk", "standard")[rng.integers(2)]
        return stax.Dense(int(width), W_std=float(rng.uniform(0.6, 1.6)), b_std=b_std,
                          parameterization=parameterization)

    def act():
        return TREE_ACTIVATIONS[rng.integers(len(TREE_ACTIVATIONS))]()

    width = int(rng.choice([3, 8, 16]))
    layers = [dense(width)]
    for _ in range(rng.integers(1, 5)):
        kind = rng.integers(4)
        if kind == 0:
            width = int(rng.choice([3, 8, 16]))
            layers += [act(), dense(width)]
        elif kind == 1:
            layers.append(stax.LayerNorm(eps=float(rng.choice([1e-12, 1e-3, 0.1]))))
        elif kind == 2:
            branch = [act(), dense(width)]
            if rng.integers(2):
                branch.insert(0, stax.LayerNorm(eps=0.01))
            layers += [stax.FanOut(2), stax.parallel(stax.serial(*branch), stax.Identity()), stax.FanInSum()]
        else:
            inner = int(rng.choice([3, 8]))
            branches = [stax.serial(dense(inner), act()) if rng.integers(2) else dense(inner) for _ in range(2)]
            width = int(rng.choice([3, 8, 16]))
            layers += [stax.FanOut(2), stax.parallel(*branches), stax.FanInProd(), dense(width)]
    if rng.integers(2):
        layers.append(act())
    layers.append(dense(rng.choice([1, 2])))
    return stax.serial(*layers)


@pytest.mark.parametrize("index", range(24))
def test_random_trees_match_the_reference(index):
    layer = random_tree(index)
    rng = np.random.default_rng(900 + index)
    x1, x2 = rng.standard_normal((6, 4)), 1.4 * rng.standard_normal((5, 4))
    for a, b in ((x1, x2), (x1, None)):
        got = layer.kernel(a, b)
        want = stax_reference.reference_kernels(layer, a, b)
        for kind, w in zip(("nngp", "ntk"), want):
            assert relative_error(getattr(got, kind), w) <= REFERENCE_TOL, (repr(layer), kind, b is None)
    diag = layer.kernel(x1, diagonal=True)
    for kind, w in zip(("nngp", "ntk"), stax_reference.reference_diagonal(layer, x1)):
        assert relative_error(getattr(diag, kind), w) <= REFERENCE_TOL, (repr(layer), kind)


def test_reference_rules_by_hand():
    """The reference's Dense / FanInSum / FanInProd / LayerNorm rules on a one-layer case, by hand."""
    x = np.array([[1.0, 2.0], [0.5, -1.0]])
    k0 = x @ x.T / 2
    nngp, ntk = stax_reference.reference_kernels(stax.Dense(3, W_std=2.0, b_std=0.5), x)
    np.testing.assert_allclose(nngp, 4 * k0 + 0.25)
    np.testing.assert_allclose(ntk, 4 * k0 + 0.25)
    nngp, ntk = stax_reference.reference_kernels(stax.Dense(3, W_std=2.0, b_std=0.0, parameterization="standard"), x)
    np.testing.assert_allclose(ntk, 2 * k0 + 1)
    two = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(3, W_std=2.0), stax.Dense(3, b_std=1.0)))
    nngp, ntk = stax_reference.reference_kernels(stax.serial(two, stax.FanInProd()), x)
    np.testing.assert_allclose(nngp, (4 * k0) * (k0 + 1))
    np.testing.assert_allclose(ntk, (4 * k0) * (k0 + 1) * 2)
    nngp, _ = stax_reference.reference_kernels(stax.serial(stax.Dense(3), stax.LayerNorm(eps=0.5)), x)
    v = np.diag(k0)
    np.testing.assert_allclose(nngp, k0 / np.sqrt(np.outer(v + 0.5, v + 0.5)))


# ---------------------------------------------------------------------------------------------
# MLP equivalence

MLP_ACTIVATIONS = {
    "relu": (stax.Relu, A.Relu, ()),
    "erf": (stax.Erf, A.Erf, (1.3, 0.7, -0.2)),
    "gelu": (stax.Gelu, A.Gelu, ()),
    "abrelu": (stax.ABRelu, A.ABRelu, (-0.4, 1.6)),
    "sin": (stax.Sin, A.Sin, (1.2, 0.7, 0.3)),
    "sign": (stax.Sign, A.Sign, ()),
    "monomial2": (stax.Monomial, A.Monomial, (2,)),
    "rbf": (stax.Rbf, A.Rbf, (0.6,)),
}


def stax_mlp(act, depth, W_std, b_std, parameterization, width):
    dense = stax.Dense(width, W_std=W_std, b_std=b_std, parameterization=parameterization)
    readout = stax.Dense(1, W_std=W_std, b_std=b_std, parameterization=parameterization)
    return stax.serial(*[dense, act] * depth, readout)


@pytest.mark.parametrize("name", list(MLP_ACTIVATIONS))
@pytest.mark.parametrize("parameterization, b_std", [("ntk", 0.2), ("ntk", None), ("standard", 0.3),
                                                     ("standard", 0.0), ("standard", None)])
def test_serial_of_dense_and_activation_is_the_mlp(name, parameterization, b_std):
    layer_fn, activation, args = MLP_ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((7, 5)), rng.standard_normal((4, 5))
    for depth in (1, 3):
        ours = stax_mlp(layer_fn(*args), depth, 1.3, b_std, parameterization, 24)
        mlp = ntkfast.MLP(depth, activation(*args), W_std=1.3, b_std=b_std, parameterization=parameterization,
                          width=24)
        for a, b in ((x1, x2), (x1, None)):
            got, want = ours.kernel(a, b), mlp.kernel(a, b)
            for kind in ("nngp", "ntk"):
                assert relative_error(getattr(got, kind), getattr(want, kind)) <= MLP_TOL, (name, depth, kind)
        got, want = ours.kernel(x1, diagonal=True), mlp.kernel(x1, diagonal=True)
        for kind in ("nngp", "ntk"):
            assert relative_error(getattr(got, kind), getattr(want, kind)) <= MLP_TOL, (name, depth, kind)


def test_predict_is_the_mlps():
    rng = np.random.default_rng(4)
    x, xt, y = rng.standard_normal((20, 6)), rng.standard_normal((7, 6)), rng.standard_normal((20, 2))
    for parameterization in ("ntk", "standard"):
        ours = stax_mlp(stax.Relu(), 2, 1.4, 0.1, parameterization, 64)
        mlp = ntkfast.MLP(2, "relu", W_std=1.4, b_std=0.1, parameterization=parameterization, width=64)
        cases = [(xt, dict()), (xt, dict(t=np.array([0.0, 1.0, 10.0]))), (xt, dict(get="nngp", diag_reg=1e-3)),
                 (xt, dict(compute_cov=True, t=5.0)), (None, dict(diag_reg=1e-2, diag_reg_absolute_scale=True))]
        for x_test, kwargs in cases:
            got = ours.predict(x, y, x_test, **kwargs)
            want = mlp.predict(x, y, x_test, **kwargs)
            if kwargs.get("compute_cov"):
                assert relative_error(got.mean, want.mean) <= 1e-10
                assert relative_error(got.cov, want.cov) <= 1e-10
            else:
                assert relative_error(got, want) <= 1e-10, kwargs


# ---------------------------------------------------------------------------------------------
# the API

def resnet():
    return stax.serial(stax.Dense(16, W_std=1.2, b_std=0.1),
                       stax.FanOut(2), stax.parallel(stax.serial(stax.LayerNorm(), stax.Relu(),
                                                                 stax.Dense(16, W_std=1.3, b_std=0.1)),
                                                     stax.Identity()), stax.FanInSum(),
                       stax.FanOut(2), stax.parallel(stax.serial(stax.Dense(16, W_std=1.1), stax.Erf()),
                                                     stax.serial(stax.Dense(16, W_std=0.9, b_std=0.2), stax.Gelu())),
                       stax.FanInProd(),
                       stax.Dense(1, W_std=1.0, b_std=0.1))


X = np.random.default_rng(5).standard_normal((9, 5))
X2 = np.random.default_rng(6).standard_normal((4, 5))


def test_unpacks_into_neural_tangents_triple():
    layer = resnet()
    assert len(layer) == 3
    init_fn, apply_fn, kernel_fn = layer
    assert all(callable(f) for f in (init_fn, apply_fn, kernel_fn))
    assert layer[2] == kernel_fn
    # triples unpacked from layers compose, as in neural-tangents
    relu_triple = tuple(stax.Relu())
    a = stax.serial(tuple(stax.Dense(8, W_std=1.5)), relu_triple, stax.Dense(1))
    b = stax.serial(stax.Dense(8, W_std=1.5), stax.Relu(), stax.Dense(1))
    np.testing.assert_array_equal(a.kernel(X, get="ntk"), b.kernel(X, get="ntk"))


def test_kernel_fn_get():
    _, _, kernel_fn = resnet()
    full = kernel_fn(X, X2)
    assert isinstance(full, ntkfast.Kernel)
    assert full.nngp.shape == full.ntk.shape == (9, 4)
    np.testing.assert_array_equal(kernel_fn(X, X2, "ntk"), full.ntk)
    np.testing.assert_array_equal(kernel_fn(X, X2, get="nngp"), full.nngp)
    ntk, nngp = kernel_fn(X, X2, ("ntk", "nngp"))
    np.testing.assert_array_equal(ntk, full.ntk)
    np.testing.assert_array_equal(nngp, full.nngp)
    (only,) = kernel_fn(X, X2, ("nngp",))
    np.testing.assert_array_equal(only, full.nngp)
    # x2=None: the symmetric kernel, with exact diagonal formulas (x2=x1 takes the general path,
    # which may differ there by a rounding)
    np.testing.assert_allclose(kernel_fn(X, None, "nngp"), kernel_fn(X, X, "nngp"), rtol=1e-14, atol=0)


def test_float32_in_float32_out():
    layer = resnet()
    k64 = layer.kernel(X, X2)
    k32 = layer.kernel(X.astype(np.float32), X2.astype(np.float32))
    d32 = layer.kernel(X.astype(np.float32), diagonal=True)
    for kind in ("nngp", "ntk"):
        assert getattr(k32, kind).dtype == np.float32 and getattr(d32, kind).dtype == np.float32
        assert relative_error(getattr(k32, kind), getattr(k64, kind)) <= 1e-5, kind
    mixed = layer.kernel(X.astype(np.float32), X2)
    assert mixed.ntk.dtype == np.float64


def test_symmetric_exactly_and_diagonal_matches():
    for layer in (resnet(), build(CONFIGS["deep8_residual_layernorm"]["source"]),
                  build(CONFIGS["prod_three_branches"]["source"])):
        sym = layer.kernel(X)
        diag = layer.kernel(X, diagonal=True)
        for kind in ("nngp", "ntk"):
            k = getattr(sym, kind)
            np.testing.assert_array_equal(k, k.T)
            np.testing.assert_array_equal(np.diag(k), getattr(diag, kind))
            assert getattr(diag, kind).shape == (len(X),)
        assert layer.kernel(X, diagonal=True, get="ntk").shape == (len(X),)


def test_positive_semi_definite():
    x = np.random.default_rng(9).standard_normal((40, 6))
    names = ("residual_nested", "prod_activation_branches", "standard_layernorm")
    for layer in (resnet(), *(build(CONFIGS[name]["source"]) for name in names)):
        for kind, k in zip(("nngp", "ntk"), layer.kernel(x)):
            eig = np.linalg.eigvalsh(k)
            assert eig.min() >= -1e-10 * eig.max(), (repr(layer), kind, eig.min(), eig.max())


def test_pickle_round_trip():
    for layer in (resnet(), build(CONFIGS["layernorm_eps_mixed"]["source"]),
                  build(CONFIGS["standard_mixed_widths_bias"]["source"])):
        want = layer.kernel(X, X2)  # compiled first: the compiled spec is not part of the pickle
        for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
            assert repr(other) == repr(layer)
            got = other.kernel(X, X2)
            np.testing.assert_array_equal(got.nngp, want.nngp)
            np.testing.assert_array_equal(got.ntk, want.ntk)
    fresh = pickle.loads(pickle.dumps(resnet()))  # never compiled
    np.testing.assert_array_equal(fresh.kernel(X, get="ntk"), resnet().kernel(X, get="ntk"))


def test_layers_are_values():
    """One layer object used at several places (as in [Dense, act] * depth) and in several networks."""
    dense, relu = stax.Dense(8, W_std=1.4, b_std=0.1), stax.Relu()
    a = stax.serial(dense, relu, dense, relu, stax.Dense(1))
    b = stax.serial(stax.Dense(8, W_std=1.4, b_std=0.1), stax.Relu(), stax.Dense(8, W_std=1.4, b_std=0.1),
                    stax.Relu(), stax.Dense(1))
    np.testing.assert_array_equal(a.kernel(X, get="ntk"), b.kernel(X, get="ntk"))
    c = stax.serial(a, stax.Relu(), stax.Dense(1))  # a network inside another
    d = stax.serial(dense, relu, dense, relu, stax.Dense(1), stax.Relu(), stax.Dense(1))
    np.testing.assert_allclose(c.kernel(X, get="ntk"), d.kernel(X, get="ntk"), rtol=1e-14)


# -- bad input ------------------------------------------------------------------------------------

def test_bad_inputs_name_the_argument():
    layer = resnet()
    with pytest.raises(ValueError, match="x2"):
        layer.kernel(X, np.ones((3, 4)))
    with pytest.raises(ValueError, match="x2"):
        layer.kernel_fn(X, np.ones((3, 4)))
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"x1: row 2"):
        layer.kernel(bad)
    with pytest.raises(ValueError, match="x1"):
        layer.kernel(bad, diagonal=True)
    with pytest.raises(ValueError, match=r"x2: row 2"):
        layer.kernel(X2, bad)
    with pytest.raises(ValueError, match="get"):
        layer.kernel_fn(X, None, "foo")
    with pytest.raises(ValueError, match="get"):
        layer.kernel(X, get=("nngp", "foo"))
    with pytest.raises(ValueError, match="diagonal"):
        layer.kernel(X, X2, diagonal=True)
    with pytest.raises(ValueError, match="x1: must be 2-D"):
        layer.kernel(np.ones(5))


def test_several_outputs_are_refused():
    for layer in (stax.serial(stax.Dense(4), stax.FanOut(2)), stax.FanOut(2),
                  stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Dense(1), stax.Dense(1)))):
        with pytest.raises(ValueError, match="outputs"):
            layer.kernel_fn(X)


@pytest.mark.parametrize("make, where", [
    (lambda: stax.serial(stax.Dense(4), stax.FanOut(2), stax.Dense(1)), r"serial\[2\]"),
    (lambda: stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(4), stax.Dense(4), stax.Dense(4)),
                         stax.FanInSum()), r"serial\[1\]"),
    (lambda: stax.serial(stax.Dense(4), stax.parallel(stax.Dense(4), stax.Dense(4)), stax.FanInSum()), r"serial\[1\]"),
    (lambda: stax.parallel(stax.Dense(4), stax.FanOut(2)), r"parallel\[1\]"),
])
def test_mismatched_branches_name_the_position(make, where):
    with pytest.raises(ValueError, match=where):
        layer = make()
        layer.kernel_fn(X)


@pytest.mark.parametrize("make, exc, name", [
    (lambda: stax.Dense(0), ValueError, "out_dim"),
    (lambda: stax.Dense(-3), ValueError, "out_dim"),
    (lambda: stax.Dense(2.5), TypeError, "out_dim"),
    (lambda: stax.Dense(4, W_std=-1.0), ValueError, "W_std"),
    (lambda: stax.Dense(4, W_std=float("nan")), ValueError, "W_std"),
    (lambda: stax.Dense(4, W_std="1"), TypeError, "W_std"),
    (lambda: stax.Dense(4, b_std=-0.5), ValueError, "b_std"),
    (lambda: stax.Dense(4, parameterization="mup"), ValueError, "parameterization"),
    (lambda: stax.LayerNorm(eps=-1.0), ValueError, "eps"),
    (lambda: stax.FanOut(0), ValueError, "num"),
    (lambda: stax.serial(), ValueError, "layers"),
    (lambda: stax.serial(stax.Dense(4), "relu"), TypeError, "layers"),
])
def test_bad_layer_arguments_name_the_argument(make, exc, name):
    with pytest.raises(exc, match=name):
        layer = make()
        stax.serial(layer, stax.Dense(1)).kernel_fn(X)


def test_gelu_approximate_must_be_a_bool():
    # a string such as 'no' was taken as True
    for flag in ("no", 0, None):
        with pytest.raises(TypeError, match="approximate"):
            stax.Gelu(approximate=flag)
    assert repr(stax.Gelu(approximate=np.bool_(True))) == "Gelu(approximate=True)"
    assert not stax.Gelu().approximate


def test_elementwise_numerical_errors_name_its_own_arguments():
    # activations.Numerical calls them dfn and degree: ElementwiseNumerical's are df and deg
    with pytest.raises(TypeError, match=r"^df: must be callable") as caught:
        stax.ElementwiseNumerical(np.tanh, deg=8, df=3)
    assert "dfn" not in str(caught.value)
    with pytest.raises(ValueError, match=r"^df: must be vectorised"):
        stax.ElementwiseNumerical(np.tanh, deg=8, df=lambda x: x[:1])
    with pytest.raises(TypeError, match=r"^fn: must be callable"):
        stax.ElementwiseNumerical(3, deg=8)


def _nested_serial(depth):
    net = stax.Dense(4, b_std=0.1)
    for _ in range(depth):
        net = stax.serial(net, stax.Relu(), stax.Dense(4, W_std=2**0.5, b_std=0.1))
    return net


def test_deep_nesting_is_walked_without_recursion():
    # a serial nested in a serial 3000 times: _tree, repr and init_fn raised a bare RecursionError
    deep = _nested_serial(3000)
    assert stax.nesting_depth(deep) == 3000
    assert repr(deep).count("serial(") == 3000
    tree = deep._tree()
    for _ in range(3000):
        assert tree[0] == "serial"
        tree = tree[1][0]
    assert tree[0] == "dense"
    shape, params = deep.init_fn(0, (-1, 3))
    assert shape == (-1, 4)
    # the core refuses nesting beyond its limit, naming the layers; shallower trees compute
    with pytest.raises(ValueError, match=r"^layers: .*nest"):
        deep.kernel(X)
    mid = _nested_serial(600)  # deeper than Python's recursion limit allowed the recursive walk
    flat = stax.serial(stax.Dense(4, b_std=0.1), *[stax.Relu(), stax.Dense(4, W_std=2**0.5, b_std=0.1)] * 600)
    np.testing.assert_array_equal(mid.kernel(X, get="ntk"), flat.kernel(X, get="ntk"))


def test_nesting_error_names_the_layers_only_for_deep_trees():
    exc = RecursionError("maximum recursion depth exceeded")
    error = stax.nesting_error(_nested_serial(3000), exc)
    assert isinstance(error, ValueError)
    assert str(error).startswith("layers: the network is nested 3000 levels deep")
    assert stax.nesting_error(_nested_serial(3), exc) is exc  # a user's function's own recursion


# ---------------------------------------------------------------------------------------------
# live comparison with neural-tangents (when importable; the golden file is what CI checks)

LIVE = ["mlp_relu", "residual_pre_layernorm", "residual_nested", "prod_activation_branches", "prod_dense_and_input",
        "standard_mixed_widths_zero_bias", "standard_prod", "mixed_parameterizations", "layernorm_eps_mixed",
        "mixed_sigmoid_rbf_gabor", "residual_fanout3_sum"]


@pytest.mark.parametrize("name", LIVE)
def test_live_neural_tangents(name):
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    jax = pytest.importorskip("jax")
    nt = pytest.importorskip("neural_tangents")
    jax.config.update("jax_enable_x64", True)
    source = CONFIGS[name]["source"]
    rng = np.random.default_rng(77)
    x1, x2 = rng.standard_normal((6, 3)), rng.standard_normal((5, 3))
    if name == "prod_dense_and_input":  # its Dense layer has the input's width
        x1, x2 = rng.standard_normal((6, 5)), rng.standard_normal((5, 5))
    theirs = eval(source, {"stax": nt.stax, "jnp": jax.numpy})[2]  # noqa: S307
    ours = build(source)[2]
    for b in (x2, None):
        want, got = theirs(x1, b, ("nngp", "ntk")), ours(x1, b, ("nngp", "ntk"))
        off = np.ones(want[0].shape, dtype=bool) if b is not None else ~np.eye(len(x1), dtype=bool)
        for w, g in zip(want, got):
            w = np.asarray(w, dtype=np.float64)
            assert np.max(np.abs(g - w)[off]) <= KERNEL_TOL * np.max(np.abs(w)), name


def test_readme_migration_snippet_runs_and_matches_the_reference():
    """The README's neural-tangents script, with only the import changed, runs; its kernels match
    the plain-NumPy reference and apply_fn returns one output per input."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Migrating from neural-tangents"):]
    namespace: dict = {}
    exec(compile(re.search(r"```python\n(.*?)```", section, re.S).group(1), "README.md", "exec"), namespace)
    x, k = namespace["x_train"], namespace["k"]
    network = stax.serial(*(namespace["init_fn"].__self__.layers))
    want_nngp, want_ntk = stax_reference.reference_kernels(network, x)
    assert relative_error(k.nngp, want_nngp) < 1e-12 and relative_error(k.ntk, want_ntk) < 1e-12
    assert namespace["ntk"].shape == (100, 10) and namespace["out"].shape == (100, 1)
    assert np.allclose(namespace["ntk"], k.ntk[:, :10], rtol=1e-13, atol=0)


def test_sklearn_estimators_take_a_composed_model():
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    from ntkfast.sklearn import NTKKernel, NTKRegressor

    rng = np.random.default_rng(3)
    x, xt = rng.standard_normal((30, 4)), rng.standard_normal((7, 4))
    y = np.sin(x[:, 0]) + x[:, 1]
    net = resnet()
    reg = clone(NTKRegressor(model=net, diag_reg=1e-4)).fit(x, y)
    k, kt = net.kernel(x, get="ntk"), net.kernel(xt, x, get="ntk")
    k_r = k + 1e-4 * np.trace(k) / len(x) * np.eye(len(x))
    assert np.allclose(reg.predict(xt), kt @ np.linalg.solve(k_r, y), rtol=1e-8, atol=1e-10)
    assert np.array_equal(NTKKernel(model=net, get="nngp")(x), net.kernel(x, get="nngp"))
    with pytest.raises(TypeError, match="model: must be an ntkfast.MLP or an ntkfast.stax layer"):
        NTKRegressor(model="resnet").fit(x, y)


def test_neural_tangents_signatures_of_elementwise_and_the_relus():
    """``Elementwise(fn, nngp_fn, d_nngp_fn)`` takes neural-tangents' arguments (kernels by
    quadrature of fn: Elementwise(erf) is Erf()); the ReLU family takes ``do_stabilize``."""
    from scipy.special import erf

    x = np.random.default_rng(5).standard_normal((6, 4))
    by_fn = stax.serial(stax.Dense(8, W_std=1.3, b_std=0.1), stax.Elementwise(erf, nngp_fn=lambda *a: 0.0),
                        stax.Dense(1, W_std=1.3, b_std=0.1))
    closed = stax.serial(stax.Dense(8, W_std=1.3, b_std=0.1), stax.Erf(), stax.Dense(1, W_std=1.3, b_std=0.1))
    assert relative_error(by_fn.kernel(x, get="ntk"), closed.kernel(x, get="ntk")) < 1e-8
    with pytest.raises(NotImplementedError, match="fn: "):
        stax.Elementwise(nngp_fn=lambda c, q1, q2: c)
    for layer in (stax.Relu(do_stabilize=True), stax.LeakyRelu(0.1, do_stabilize=True),
                  stax.ABRelu(-0.2, 1.0, True), stax.Abs(do_stabilize=True)):
        net = stax.serial(stax.Dense(8, W_std=1.3), layer, stax.Dense(1))
        assert np.all(np.isfinite(net.kernel(x, get="ntk")))
