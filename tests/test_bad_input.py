"""Every bad input is a clear ValueError / TypeError / MemoryError naming the argument."""

import numpy as np
import pytest

import ntkfast
from ntkfast import activations as A

X = np.random.default_rng(0).standard_normal((5, 3))


def relu():
    return ntkfast.MLP(2, "relu", b_std=0.1)


@pytest.mark.parametrize("bad, where", [(np.nan, "x1"), (np.inf, "x1"), (-np.inf, "x2")])
def test_non_finite_inputs(bad, where):
    x = X.copy()
    x[2, 1] = bad
    with pytest.raises(ValueError, match=rf"{where}: row 2"):
        if where == "x1":
            relu().kernel(x)
        else:
            relu().kernel(X, x)
    if where == "x1":
        with pytest.raises(ValueError, match="x1"):
            relu().kernel(x, diagonal=True)
        with pytest.raises(ValueError, match="x1"):
            relu().kernel(x.astype(np.float32))


def test_values_too_large_to_square():
    with pytest.raises(ValueError, match="x1"):
        relu().kernel(X * 1e200)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_wrong_ndim(shape):
    with pytest.raises(ValueError, match=r"x1: must be 2-D"):
        relu().kernel(np.ones(shape))
    with pytest.raises(ValueError, match=r"x2: must be 2-D"):
        relu().kernel(X, np.ones(shape))


def test_mismatched_feature_dims():
    with pytest.raises(ValueError, match=r"x2: has 4 features but x1 has 3"):
        relu().kernel(X, np.ones((2, 4)))


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_empty_inputs(shape):
    with pytest.raises(ValueError, match=r"x1: must be non-empty"):
        relu().kernel(np.ones(shape))
    with pytest.raises(ValueError, match=r"x2: must be non-empty"):
        relu().kernel(X, np.ones(shape))


@pytest.mark.parametrize("bad", [np.array([["a", "b"]]), np.array([[object()]]), X.astype(complex),
                                 [[1, "x"]], None, "abc"])
def test_non_numeric_inputs(bad):
    with pytest.raises(TypeError, match="x1"):
        relu().kernel(bad)


def test_non_numeric_x2():
    with pytest.raises(TypeError, match="x2"):
        relu().kernel(X, X.astype(complex))


@pytest.mark.parametrize("depth, exc", [(-1, ValueError), (2.5, TypeError), ("3", TypeError), (True, TypeError)])
def test_bad_depth(depth, exc):
    with pytest.raises(exc, match="depth"):
        ntkfast.MLP(depth, "relu")


@pytest.mark.parametrize("name", ["W_std", "readout_W_std"])
@pytest.mark.parametrize("value, exc", [(0.0, ValueError), (-1.0, ValueError), (np.nan, ValueError),
                                        (np.inf, ValueError), (None, TypeError), ("1", TypeError)])
def test_bad_weight_std(name, value, exc):
    with pytest.raises(exc, match=name):
        ntkfast.MLP(2, "relu", **{name: value})


@pytest.mark.parametrize("name", ["b_std", "readout_b_std"])
@pytest.mark.parametrize("value, exc", [(-0.1, ValueError), (np.nan, ValueError), ("0", TypeError)])
def test_bad_bias_std(name, value, exc):
    with pytest.raises(exc, match=name):
        ntkfast.MLP(2, "relu", **{name: value})


def test_unknown_activation_name():
    with pytest.raises(ValueError, match=r"activation: unknown name 'tanhh'"):
        ntkfast.MLP(2, "tanhh")
    with pytest.raises(TypeError, match="activation"):
        ntkfast.MLP(2, 3)
    with pytest.raises(TypeError, match="activation: pass an instance"):
        ntkfast.MLP(2, A.Relu)


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(a=np.nan), ValueError, "a"), (dict(b="x"), TypeError, "b"), (dict(c=np.inf), ValueError, "c")])
def test_bad_activation_parameters(kwargs, exc, name):
    with pytest.raises(exc, match=rf"^{name}:"):
        A.Erf(**kwargs)


def test_standard_parameterization_needs_width():
    with pytest.raises(ValueError, match="width: required"):
        ntkfast.MLP(2, "relu", parameterization="standard")
    with pytest.raises(ValueError, match="width"):
        ntkfast.MLP(2, "relu", parameterization="standard", width=0)
    with pytest.raises(TypeError, match="width"):
        ntkfast.MLP(2, "relu", parameterization="standard", width=3.5)


def test_unknown_parameterization():
    with pytest.raises(ValueError, match="parameterization: must be 'ntk' or 'standard'"):
        ntkfast.MLP(2, "relu", parameterization="mup")


@pytest.mark.parametrize("get, exc", [("ntkk", ValueError), (("nngp", "x"), ValueError), ((), TypeError),
                                      (3, TypeError), (None, TypeError)])
def test_bad_get(get, exc):
    with pytest.raises(exc, match="get"):
        relu().kernel(X, get=get)


def test_diagonal_with_x2():
    with pytest.raises(ValueError, match="diagonal"):
        relu().kernel(X, X, diagonal=True)


def test_outputs_that_cannot_fit_in_memory_raise_memory_error_before_allocating():
    x = np.zeros((3_000_000, 1))
    with pytest.raises(MemoryError, match="GiB"):
        relu().kernel(x)
    with pytest.raises(MemoryError):
        relu().kernel(x, x[:1_000_000], get="ntk")


def test_overflow_is_an_error_not_inf_or_nan():
    deep = ntkfast.MLP(300, "relu", W_std=4.0)
    with pytest.raises(ValueError, match="overflows float64"):
        deep.kernel(X)
    with pytest.raises(ValueError, match="overflows float32.*float64"):
        ntkfast.MLP(60, "relu", W_std=4.0).kernel(X.astype(np.float32))
    # the same network is fine in float64
    assert np.all(np.isfinite(ntkfast.MLP(60, "relu", W_std=4.0).kernel(X, get="ntk")))


def test_core_spec_validates_on_its_own():
    """The compiled entry point checks its arguments too (it is importable directly)."""
    from ntkfast import _core

    with pytest.raises(ValueError, match="depth"):
        _core.MlpSpec(-1, "abrelu", [0.0, 1.0], 1.0, None, 1.0, None, "ntk", None)
    with pytest.raises(ValueError, match="activation"):
        _core.MlpSpec(1, "abrelu", [0.0], 1.0, None, 1.0, None, "ntk", None)
    with pytest.raises(ValueError, match="activation"):
        _core.MlpSpec(1, "nope", [], 1.0, None, 1.0, None, "ntk", None)
    spec = _core.MlpSpec(1, "identity", [], 1.0, None, 1.0, None, "ntk", None).model()
    with pytest.raises(TypeError, match="x1: must be a 2-D float32 or float64"):
        spec.kernel(np.ones((3, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="x2"):
        spec.kernel(np.ones((3, 2)), np.ones((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="get"):
        spec.kernel(np.ones((3, 2)), nngp=False, ntk=False)
    with pytest.raises(ValueError, match="x1: must be non-empty"):
        spec.kernel(np.ones((0, 2)))
