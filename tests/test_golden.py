"""ntkfast against neural-tangents' own numbers, stored in tests/golden/neural_tangents.npz.

The file is written by tools/make_golden.py in neural-tangents' environment (0.6.5, JAX float64;
see that script for how to regenerate it); this test needs neither JAX nor neural-tangents, so
the agreement is checked on every run. (tests/test_neural_tangents.py compares live when
neural-tangents is importable.) Every expected number here comes from neural-tangents.

Measured agreement (the tolerances are a few to a few tens of times these):
* kernels, off-diagonal and cross entries: 1.1e-14 of the largest entry (x^4 at depth 3), 2e-15
  for most activations (every closed-form activation, 1278 configurations: depths 1-5, both
  parameterizations, b_std None/0/0.3, three readouts);
* diagonal NNGP against neural-tangents' exact diagonal (``Kernel.cov1``): 2.1e-14 relative;
* diagonal NTK: 3.3e-8 relative (neural-tangents evaluates the angle formula at angle ~1e-8
  there; README "Diagonal entries"), and for Sign, whose NTK diagonal neural-tangents gets wrong
  through that noise, not compared;
* predictions from neural-tangents' kernels: 4e-14; from ntkfast's own kernels (``MLP.predict``)
  1.5e-8, which is the diagonal NTK difference above carried through the solves;
* finite networks on neural-tangents' parameters: 3e-14.
"""

from __future__ import annotations

import collections
import itertools
import json
import pathlib

import numpy as np
import pytest

import ntkfast
from ntkfast import activations as A
from ntkfast import predict

GOLDEN = pathlib.Path(__file__).parent / "golden" / "neural_tangents.npz"
with np.load(GOLDEN) as _file:
    DATA = dict(_file)
META = json.loads(str(DATA["meta"]))

KERNEL_TOL = 1e-13  # off-diagonal entries, relative to the largest entry
DIAG_NNGP_TOL = 1e-13
DIAG_NTK_TOL = 1e-7
PREDICT_TOL = 1e-12  # from neural-tangents' kernels
PREDICT_END_TO_END_TOL = 5e-8  # from ntkfast's kernels
FINITE_TOL = 1e-12

Kernels = collections.namedtuple("Kernels", "nngp ntk")


def relative_error(got, want):
    want = np.asarray(want)
    return np.max(np.abs(np.asarray(got) - want)) / max(np.max(np.abs(want)), 1e-300)


def activation(info):
    return getattr(A, info["ntkfast"])(*info["args"])


def test_the_file_is_neural_tangents_output():
    assert META["neural_tangents"] == "0.6.5" and META["generator"] == "tools/make_golden.py"
    assert GOLDEN.stat().st_size < 2_000_000
    assert all(value.dtype == np.float64 for key, value in DATA.items() if key != "meta")


@pytest.mark.parametrize("name", META["kernels"]["order"])
def test_kernels_match_neural_tangents(name):
    info = META["kernels"]["activations"][name]
    act, scale = activation(info), info["input_scale"]
    assert len(info["configs"]) >= 18
    for i, c in enumerate(info["configs"]):
        x1 = scale * DATA[f"kernels/x1_depth{c['depth']}"]
        x2 = scale * DATA[f"kernels/x2_depth{c['depth']}"]
        mlp = ntkfast.MLP(c["depth"], act, W_std=META["kernels"]["W_std"], b_std=c["b_std"],
                          parameterization=c["parameterization"], width=META["kernels"]["width"],
                          readout_W_std=c["readout_W_std"], readout_b_std=c["readout_b_std"])
        cross, sym, diag = mlp.kernel(x1, x2), mlp.kernel(x1), mlp.kernel(x1, diagonal=True)
        label = (name, c)
        for kind in ("nngp", "ntk"):
            want = DATA[f"kernels/{name}/{kind}_cross"][i]
            assert np.all(np.isfinite(want)), label
            assert relative_error(getattr(cross, kind), want) <= KERNEL_TOL, (label, kind)
            want = DATA[f"kernels/{name}/{kind}_sym"][i]
            off = ~np.eye(len(want), dtype=bool)
            # neural-tangents' RectifiedMonomial is NaN at angle 0 (its diagonal), nowhere else
            assert np.all(np.isfinite(want[off])), label
            if not name.startswith("rectified_monomial"):
                assert np.all(np.isfinite(want)), label
            got = getattr(sym, kind)
            assert np.max(np.abs(got - want)[off]) <= KERNEL_TOL * np.max(np.abs(want[off])), (label, kind)
        want = DATA[f"kernels/{name}/cov1"][i]
        if name.startswith("rectified_monomial"):  # NaN at angle 0 there too
            assert np.all(np.isnan(want)), label
        else:
            np.testing.assert_allclose(diag.nngp, want, rtol=DIAG_NNGP_TOL, atol=0, err_msg=str(label))
        np.testing.assert_array_equal(np.diag(sym.nngp), diag.nngp)
        want = np.diag(DATA[f"kernels/{name}/ntk_sym"][i])
        if name != "sign" and np.all(np.isfinite(want)):
            np.testing.assert_allclose(diag.ntk, want, rtol=DIAG_NTK_TOL, err_msg=str(label))


# ---------------------------------------------------------------------------------------------
# predictions

PREDICT = META["predict"]
X_TRAIN, X_TEST, Y_TRAIN = DATA["predict/x_train"], DATA["predict/x_test"], DATA["predict/y_train"]
FX_TRAIN_0, FX_TEST_0 = DATA["predict/fx_train_0"], DATA["predict/fx_test_0"]


def model_mlp(spec):
    _, ours, args = spec["activation"]
    return ntkfast.MLP(spec["depth"], getattr(A, ours)(*args), W_std=spec["W_std"], b_std=spec["b_std"],
                       parameterization=spec["parameterization"], width=spec["width"],
                       readout_W_std=spec["readout_W_std"], readout_b_std=spec["readout_b_std"])


def stored_kernels(model):
    return {tag: Kernels(DATA[f"predict/{model}/{tag}/nngp"], DATA[f"predict/{model}/{tag}/ntk"])
            for tag in ("train_train", "test_train", "test_test")}


def stored_kernel_fn(model):
    """A kernel_fn that returns neural-tangents' kernels of the stored inputs."""
    k = stored_kernels(model)

    def kernel_fn(x1, x2=None, get=None):
        x1 = np.asarray(x1)
        if x2 is None:
            return k["train_train"] if np.array_equal(x1, X_TRAIN) else k["test_test"]
        assert np.array_equal(x1, X_TEST) and np.array_equal(np.asarray(x2), X_TRAIN)
        return k["test_train"]

    return kernel_fn


@pytest.mark.parametrize("model", sorted(PREDICT["models"]))
def test_gradient_descent_mse_ensemble(model):
    """Means and covariances of the trained ensemble on test and training inputs, at several times
    (0 to converged), for NNGP and NTK, three regularisers, two learning rates."""
    mlp = model_mlp(PREDICT["models"][model])
    kernel_fn = stored_kernel_fn(model)
    checked = 0
    for (r, (diag_reg, absolute)), lr in itertools.product(enumerate(PREDICT["regularizers"]),
                                                          PREDICT["learning_rates"]):
        ensemble = predict.gradient_descent_mse_ensemble(kernel_fn, X_TRAIN, Y_TRAIN, learning_rate=lr,
                                                         diag_reg=diag_reg, diag_reg_absolute_scale=absolute)
        for get, (where, x_test) in itertools.product(("nngp", "ntk"), (("test", X_TEST), ("train", None))):
            key = f"predict/{model}/ensemble/reg{r}/lr{lr}/{get}/{where}"
            for i, t in enumerate(PREDICT["times"]):
                label = (model, diag_reg, absolute, lr, get, where, t)
                want_mean, want_cov = DATA[key + "/mean"][i], DATA[key + "/cov"][i]
                got = ensemble(t, x_test, get, compute_cov=True)
                assert relative_error(got.mean, want_mean) <= PREDICT_TOL, label
                assert relative_error(got.cov, want_cov) <= PREDICT_TOL, label
                if lr == 1.0:  # end to end, with ntkfast's own kernels
                    got = mlp.predict(X_TRAIN, Y_TRAIN, x_test, t=t, get=get, compute_cov=True, diag_reg=diag_reg,
                                      diag_reg_absolute_scale=absolute)
                    assert relative_error(got.mean, want_mean) <= PREDICT_END_TO_END_TOL, label
                    assert relative_error(got.cov, want_cov) <= PREDICT_END_TO_END_TOL, label
                checked += 1
    assert checked == 2 * len(PREDICT["regularizers"]) * 4 * len(PREDICT["times"])


@pytest.mark.parametrize("model", sorted(PREDICT["models"]))
def test_gradient_descent_mse_on_precomputed_kernels(model):
    k = stored_kernels(model)
    for (r, (diag_reg, absolute)), lr in itertools.product(enumerate(PREDICT["regularizers"]),
                                                          PREDICT["learning_rates"]):
        fn = predict.gradient_descent_mse(k["train_train"].ntk, Y_TRAIN, learning_rate=lr, diag_reg=diag_reg,
                                          diag_reg_absolute_scale=absolute)
        key = f"predict/{model}/gd_mse/reg{r}/lr{lr}"
        train, test = fn(np.array([0.0, 1.0, 10.0, 100.0]), FX_TRAIN_0, FX_TEST_0, k["test_train"].ntk)
        assert relative_error(train, DATA[key + "/train"]) <= PREDICT_TOL, key
        assert relative_error(test, DATA[key + "/test"]) <= PREDICT_TOL, key
        train, test = fn(None, FX_TRAIN_0, FX_TEST_0, k["test_train"].ntk)
        assert relative_error(train, DATA[key + "/train_inf"]) <= PREDICT_TOL, key
        assert relative_error(test, DATA[key + "/test_inf"]) <= PREDICT_TOL, key


@pytest.mark.parametrize("model", sorted(PREDICT["models"]))
def test_gp_inference(model):
    k = stored_kernels(model)
    for r, (diag_reg, absolute) in enumerate(PREDICT["regularizers"]):
        fn = predict.gp_inference(k["train_train"], Y_TRAIN, diag_reg=diag_reg, diag_reg_absolute_scale=absolute)
        for get in ("nngp", "ntk", "ntkgp"):
            got = fn(get, k["test_train"], k["test_test"])
            key = f"predict/{model}/gp_inference/reg{r}/{get}"
            assert relative_error(got.mean, DATA[key + "/mean"]) <= PREDICT_TOL, key
            assert relative_error(got.cov, DATA[key + "/cov"]) <= PREDICT_TOL, key


@pytest.mark.parametrize("model", sorted(PREDICT["models"]))
def test_max_learning_rate(model):
    ntk = stored_kernels(model)["train_train"].ntk
    for momentum, size in ((0.0, None), (0.0, 60), (0.9, 60)):
        want = float(DATA[f"predict/{model}/max_learning_rate/m{momentum}/n{size}"])
        assert predict.max_learning_rate(ntk, size, momentum) == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# finite networks on neural-tangents' own parameters

FINITE = META["finite"]


@pytest.mark.parametrize("variant", sorted(FINITE["variants"]))
@pytest.mark.parametrize("name", FINITE["order"])
def test_finite_networks_on_neural_tangents_parameters(name, variant):
    """apply_fn, empirical_ntk_fn (traced over outputs and not; symmetric and cross) and
    empirical_nngp_fn of stax networks, from the parameters their init_fn drew."""
    parameterization, b_std, out_dim = FINITE["variants"][variant]
    index = FINITE["order"].index(name)
    info = FINITE["activations"][name]
    mlp = ntkfast.MLP(FINITE["depth"], activation(info), W_std=FINITE["W_std"], b_std=b_std,
                      parameterization=parameterization, width=FINITE["width"], readout_W_std=FINITE["readout_W_std"])

    def stored(key):
        return DATA[f"finite/{variant}/{key}"][index]

    params = [(stored(f"W{l}"), None if b_std is None else stored(f"b{l}")) for l in range(FINITE["depth"] + 1)]
    net = ntkfast.Network.from_params(mlp, params)
    assert net.out_dim == out_dim
    x1, x2 = info["input_scale"] * DATA["finite/x1"], info["input_scale"] * DATA["finite/x2"]
    assert relative_error(net.apply(x1), stored("apply1")) <= FINITE_TOL
    assert relative_error(net.apply(x2), stored("apply2")) <= FINITE_TOL
    assert relative_error(net.nngp(x1, x2), stored("nngp12")) <= FINITE_TOL
    for trace in (True, False):
        assert relative_error(net.ntk(x1, trace=trace), stored(f"ntk11_trace{int(trace)}")) <= FINITE_TOL, trace
        assert relative_error(net.ntk(x1, x2, trace=trace), stored(f"ntk12_trace{int(trace)}")) <= FINITE_TOL, trace
