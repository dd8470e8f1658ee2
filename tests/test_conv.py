"""Convolutional kernels (CNN-GP / CNTK) of ``ntkfast.stax``: against neural-tangents' own numbers
(tests/golden/conv.npz, written by tools/make_golden_conv.py), against a plain-NumPy recursion
written here from the definitions, against Monte Carlo over finite random CNNs, and their
properties (symmetry, PSD, float32, errors naming the argument)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import ntkfast
from ntkfast import stax

GOLDEN = pathlib.Path(__file__).parent / "golden" / "conv.npz"
DATA = np.load(GOLDEN)
META = json.loads(str(DATA["meta"]))
CONFIGS = META["configs"]


def test_the_file_is_neural_tangents_output():
    assert META["neural_tangents"] == "0.6.5" and META["generator"] == "tools/make_golden_conv.py"
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_neural_tangents_golden(name):
    net = eval(CONFIGS[name], {"stax": stax})
    x1, x2 = DATA[f"{name}/x1"], DATA[f"{name}/x2"]
    cross = net.kernel(x1, x2, get=("nngp", "ntk"))
    same = net.kernel(x1, None, get=("nngp", "ntk"))
    for got, key in ((cross.nngp, "nngp"), (cross.ntk, "ntk"), (same.nngp, "nngp_same"), (same.ntk, "ntk_same")):
        want = DATA[f"{name}/{key}"]
        assert got.shape == want.shape, key
        scale = np.max(np.abs(want))
        if key.endswith("same") and got.ndim == 2:
            # neural-tangents' arccos loses ~sqrt(eps) in the angle at correlation 1 (the diagonal
            # of the symmetric kernel); ntkfast's diagonal is exact
            off = ~np.eye(len(got), dtype=bool)
            np.testing.assert_allclose(got[off], want[off], rtol=0, atol=1e-13 * scale, err_msg=key)
            np.testing.assert_allclose(np.diag(got), np.diag(want), rtol=1e-8, err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * scale, err_msg=key)


# -- a plain-NumPy recursion from the definitions ------------------------------------------------

def _axis_index(length, window, stride, padding):
    """For each output position and window offset, the input position it reads (-1: a zero pad)."""
    if padding == "VALID":
        out, before = (length - window) // stride + 1, 0
    else:
        out = -(-length // stride)
        before = max((out - 1) * stride + window - length, 0) // 2
    index = np.full((out, window), -1)
    for o in range(out):
        for d in range(window):
            i = o * stride + d - before
            if padding == "CIRCULAR":
                index[o, d] = i % length
            elif 0 <= i < length:
                index[o, d] = i
    return index


def _read(cov, ih1, iw1, ih2, iw2):
    """cov[..., h1, w1, h2, w2] at the given (broadcast) indices, 0 where any is -1."""
    valid = (ih1 >= 0) & (iw1 >= 0) & (ih2 >= 0) & (iw2 >= 0)
    return np.where(valid, cov[..., ih1.clip(0), iw1.clip(0), ih2.clip(0), iw2.clip(0)], 0.0)


def _conv(cov, filt, strides, padding):
    """mean over offsets d of cov(o1 s + d, o2 s + d): cov (..., h, w, h, w)."""
    h, w = cov.shape[-4], cov.shape[-3]
    ih, iw = _axis_index(h, filt[0], strides[0], padding), _axis_index(w, filt[1], strides[1], padding)
    out = 0.0
    for dh in range(filt[0]):
        for dw in range(filt[1]):
            a = ih[:, dh][:, None, None, None]
            b = iw[:, dw][None, :, None, None]
            c = ih[:, dh][None, None, :, None]
            e = iw[:, dw][None, None, None, :]
            out = out + _read(cov, a, b, c, e)
    return out / (filt[0] * filt[1])


def _pool(cov, window, strides, padding):
    h, w = cov.shape[-4], cov.shape[-3]
    ih, iw = _axis_index(h, window[0], strides[0], padding), _axis_index(w, window[1], strides[1], padding)
    out = 0.0
    for d1 in np.ndindex(*window):
        for d2 in np.ndindex(*window):
            out = out + _read(cov, ih[:, d1[0]][:, None, None, None], iw[:, d1[1]][None, :, None, None],
                              ih[:, d2[0]][None, None, :, None], iw[:, d2[1]][None, None, None, :])
    return out / np.prod(window) ** 2


def _diag(cov):
    """The same-position variances (..., h, w) of a covariance (..., h, w, h, w)."""
    h, w = cov.shape[-4], cov.shape[-3]
    return cov.reshape(cov.shape[:-4] + (h * w, h * w)).diagonal(axis1=-2, axis2=-1).reshape(cov.shape[:-4] + (h, w))


def _relu(s, t, v1, v2):
    """ReLU's dual (Cho & Saul): s the covariance, v1/v2 the variances (broadcast)."""
    norm = np.sqrt(v1 * v2)
    c = np.clip(s / norm, -1, 1)
    theta = np.arccos(c)
    s_hat = norm * (np.sin(theta) + (np.pi - theta) * c) / (2 * np.pi)
    s_dot = (np.pi - theta) / (2 * np.pi)
    return s_hat, t * s_dot


def reference(x1, x2, layers):
    """(nngp, ntk) of a serial network of ("conv", chan, filt, strides, padding, W_std, b_std),
    ("relu",), ("pool", window, strides, padding), ("gap",), ("flatten",), ("dense", W_std, b_std)."""
    c = x1.shape[-1]
    joint = np.concatenate([x1, x2])
    cov = np.einsum("ahwc,bxyc->abhwxy", joint, joint) / c  # all pairs of all inputs
    ntk = np.zeros_like(cov)
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, _, filt, strides, padding, w_std, b_std = layer
            cov = w_std**2 * _conv(cov, filt, strides, padding) + b_std**2
            ntk = w_std**2 * _conv(ntk, filt, strides, padding) + cov
        elif kind == "dense":
            _, w_std, b_std = layer
            cov = w_std**2 * cov + b_std**2
            ntk = w_std**2 * ntk + cov
        elif kind == "relu":
            n = cov.shape[0]
            var = cov[np.arange(n), np.arange(n)]
            if cov.ndim == 2:
                cov, ntk = _relu(cov, ntk, var[:, None], var[None, :])
            else:
                d = _diag(var)  # (n, h, w)
                cov, ntk = _relu(cov, ntk, d[:, None, :, :, None, None], d[None, :, None, None, :, :])
        elif kind == "pool":
            cov, ntk = (_pool(k, *layer[1:]) for k in (cov, ntk))
        elif kind == "gap":
            cov, ntk = cov.mean(axis=(2, 3, 4, 5)), ntk.mean(axis=(2, 3, 4, 5))
        elif kind == "flatten":
            cov, ntk = _diag(cov).mean(axis=(2, 3)), _diag(ntk).mean(axis=(2, 3))
    n1 = len(x1)
    return cov[:n1, n1:], ntk[:n1, n1:]


def _stax(layers):
    out = []
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, chan, filt, strides, padding, w_std, b_std = layer
            out.append(stax.Conv(chan, filt, strides, padding, W_std=w_std, b_std=b_std))
        elif kind == "dense":
            out.append(stax.Dense(4, W_std=layer[1], b_std=layer[2]))
        elif kind == "relu":
            out.append(stax.Relu())
        elif kind == "pool":
            out.append(stax.AvgPool(layer[1], layer[2], layer[3]))
        else:
            out.append({"gap": stax.GlobalAvgPool(), "flatten": stax.Flatten()}[kind])
    return stax.serial(*out)


REFERENCE_NETS = {
    "same_gap": [("conv", 4, (3, 3), (1, 1), "SAME", 1.4, 0.2), ("relu",), ("conv", 4, (2, 2), (1, 1), "SAME", 1.2, 0.1),
                 ("relu",), ("gap",), ("dense", 1.1, 0.3)],
    "valid_strided_flatten": [("conv", 4, (3, 2), (2, 1), "VALID", 1.5, 0.1), ("relu",), ("flatten",),
                              ("dense", 1.0, 0.0)],
    "circular_pool": [("conv", 4, (3, 3), (1, 1), "CIRCULAR", 1.3, 0.3), ("relu",), ("pool", (2, 2), (1, 1), "VALID"),
                      ("conv", 4, (2, 2), (2, 2), "CIRCULAR", 1.1, 0.0), ("relu",), ("gap",), ("dense", 1.0, 0.1)],
    "same_pool_flatten": [("conv", 4, (2, 3), (1, 1), "SAME", 1.2, 0.1), ("relu",), ("pool", (3, 3), (2, 2), "SAME"),
                          ("flatten",), ("dense", 1.0, 0.2)],
    "one_wide": [("conv", 4, (1, 3), (1, 1), "SAME", 1.3, 0.1), ("relu",), ("conv", 4, (1, 2), (1, 2), "VALID", 1.2, 0.1),
                 ("relu",), ("flatten",), ("dense", 1.0, 0.1)],
}


@pytest.mark.parametrize("name", sorted(REFERENCE_NETS))
def test_plain_numpy_reference(name):
    rng = np.random.default_rng(7)
    shape = (1, 7, 2) if name == "one_wide" else (5, 6, 2)
    x1, x2 = rng.standard_normal((3,) + shape), rng.standard_normal((2,) + shape)
    want_nngp, want_ntk = reference(x1, x2, REFERENCE_NETS[name])
    k = _stax(REFERENCE_NETS[name]).kernel(x1, x2, get=("nngp", "ntk"))
    np.testing.assert_allclose(k.nngp, want_nngp, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(k.ntk, want_ntk, rtol=1e-12, atol=1e-14)


def test_monte_carlo_of_finite_cnns_converges_to_the_nngp():
    """The empirical covariance of the outputs of random finite CNNs (init_fn / apply_fn, NHWC /
    HWIO in neural-tangents' scaling) converges to the analytic NNGP as width x samples grows."""
    net = stax.serial(stax.Conv(128, (3, 3), padding="SAME", W_std=1.5, b_std=0.2), stax.Relu(),
                      stax.Conv(128, (2, 2), padding="CIRCULAR", strides=(2, 1), W_std=1.3, b_std=0.1), stax.Relu(),
                      stax.GlobalAvgPool(), stax.Dense(64, W_std=1.2, b_std=0.1))
    x = np.random.default_rng(3).standard_normal((3, 6, 5, 2))
    outs = []
    for seed in range(60):
        _, params = net.init_fn(seed, (-1,) + x.shape[1:])
        outs.append(net.apply_fn(params, x))  # (3, 64): 64 independent outputs per network
    f = np.concatenate(outs, axis=1)
    empirical = f @ f.T / f.shape[1]
    analytic = net.kernel(x, get="nngp")
    # 60 x 64 draws of outputs whose hidden layers average 128 channels: a few percent
    np.testing.assert_allclose(empirical, analytic, rtol=0.08, atol=0.03 * np.max(analytic))


def test_monte_carlo_with_layernorm_over_positions_and_flatten():
    """The same for a network with LayerNorm over all positions and channels, AvgPool and Flatten."""
    net = stax.serial(stax.Conv(96, (2, 2), padding="SAME", W_std=1.4, b_std=0.3), stax.LayerNorm(axis=(1, 2, 3)),
                      stax.Erf(), stax.AvgPool((2, 2)), stax.Flatten(), stax.Dense(64, W_std=1.1, b_std=0.1))
    x = np.random.default_rng(4).standard_normal((3, 4, 5, 1))
    outs = []
    for seed in range(60):
        _, params = net.init_fn(seed, (-1,) + x.shape[1:])
        outs.append(net.apply_fn(params, x))
    f = np.concatenate(outs, axis=1)
    analytic = net.kernel(x, get="nngp")
    np.testing.assert_allclose(f @ f.T / f.shape[1], analytic, rtol=0.08, atol=0.03 * np.max(analytic))


def test_cntk_regression_on_digits_beats_chance_by_far():
    from ntkfast import demo

    result = demo.cntk_digits(200, 100, depth=1)
    assert result.accuracy > 0.8 and np.isfinite(result.test_loss) and "GlobalAvgPool" in result.network


def test_symmetric_psd_float32_and_cross_blocks_agree():
    net = stax.serial(stax.Conv(8, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Erf(),
                      stax.Conv(8, (3, 3), padding="SAME", W_std=1.5), stax.Relu(), stax.GlobalAvgPool(),
                      stax.Dense(1, W_std=1.2, b_std=0.1))
    x = np.random.default_rng(5).standard_normal((40, 5, 5, 1))
    k = net.kernel(x, get=("nngp", "ntk"))
    for a in (k.nngp, k.ntk):
        np.testing.assert_array_equal(a, a.T)
        assert np.linalg.eigvalsh(a).min() > -1e-12 * np.abs(a).max()
    cross = net.kernel(x[:13], x[13:], get="ntk")
    np.testing.assert_allclose(cross, k.ntk[:13, 13:], rtol=1e-13)
    diag = net.kernel(x, diagonal=True, get="ntk")
    np.testing.assert_allclose(diag, np.diag(k.ntk), rtol=1e-13)
    k32 = net.kernel(x.astype(np.float32), get="ntk")
    assert k32.dtype == np.float32
    np.testing.assert_allclose(k32, k.ntk, rtol=2e-5, atol=2e-5 * np.abs(k.ntk).max())


def test_predict_with_images_is_kernel_regression():
    net = stax.serial(stax.Conv(8, (2, 2), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(), stax.Flatten(),
                      stax.Dense(1, W_std=1.1, b_std=0.1))
    rng = np.random.default_rng(11)
    x_train, x_test = rng.standard_normal((20, 4, 4, 1)), rng.standard_normal((5, 4, 4, 1))
    y = rng.standard_normal((20, 2))
    got = net.predict(x_train, y, x_test, get="ntk", diag_reg=1e-4)
    k_tt = net.kernel(x_train, get="ntk")
    k_st = net.kernel(x_test, x_train, get="ntk")
    reg = k_tt + 1e-4 * np.trace(k_tt) / 20 * np.eye(20)
    np.testing.assert_allclose(got, k_st @ np.linalg.solve(reg, y), rtol=1e-9, atol=1e-12)


def test_bad_input_names_the_argument():
    net = stax.serial(stax.Conv(4, (3, 3), padding="VALID"), stax.Relu(), stax.Flatten(), stax.Dense(1))
    x = np.ones((2, 5, 5, 1))
    with pytest.raises(ValueError, match="x1: .* images of shape"):
        net.kernel(np.ones((2, 25)))
    with pytest.raises(ValueError, match="x2: images of shape"):
        net.kernel(x, np.ones((2, 4, 5, 1)))
    with pytest.raises(ValueError, match="x1: image 1 contains NaN"):
        net.kernel(np.concatenate([x[:1], np.full_like(x[:1], np.nan)]))
    with pytest.raises(ValueError, match=r"layers: .*Conv\(4, \(3, 3\).* larger than its input"):
        net.kernel(np.ones((2, 2, 5, 1)))
    with pytest.raises(ValueError, match="filter_shape"):
        stax.Conv(4, (0, 3))
    with pytest.raises(ValueError, match="padding"):
        stax.Conv(4, (3, 3), padding="FULL")
    with pytest.raises(ValueError, match="out_chan"):
        stax.Conv(0, (3, 3))
    after = stax.serial(stax.Conv(4, (2, 2)), stax.Flatten(), stax.Conv(4, (2, 2)))
    with pytest.raises(ValueError, match=r"serial\[2\] Conv.*comes after Flatten"):
        after.kernel(x)
    norm = stax.serial(stax.Conv(4, (2, 2)), stax.LayerNorm(eps=0.0), stax.Flatten(), stax.Dense(1))
    with pytest.raises(ValueError, match="eps: input 0 reaches LayerNorm .* variance 0 and eps = 0"):
        norm.kernel(np.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match="axis: must hold the channel axis"):
        stax.LayerNorm(axis=(1, 2))
    flat = stax.serial(stax.Dense(4), stax.LayerNorm(axis=(1, 2, 3)), stax.Dense(1))
    with pytest.raises(ValueError, match="normalises over positions"):
        flat.kernel(np.ones((2, 3)))
    numerical = stax.serial(stax.Conv(4, (2, 2)), stax.Elementwise(np.tanh), stax.Flatten(), stax.Dense(1))
    with pytest.raises(NotImplementedError, match="numerical activations"):
        numerical.kernel(x)
    with pytest.raises(NotImplementedError, match="out"):
        net.kernel(x, out=np.zeros((2, 2)), get="ntk")
    with pytest.raises(NotImplementedError, match="networks of images"):
        net.predict(x, np.ones(2), x, solver="cg")
