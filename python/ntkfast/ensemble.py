"""Predictions of infinite ensembles from kernel functions or models: neural-tangents'
``predict.gradient_descent_mse_ensemble`` (kernels computed once and cached with their
factorisations) and ``MLP.predict`` / stax ``predict``, by dense solves or, past memory, by the
matrix-free solvers of ``ntkfast.solvers``. Re-exported by ``ntkfast.predict``."""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import linalg
from ._arrays import renamed_error
from .linalg import matmul as _mm
from .predict import (Gaussian, _cholesky, _diag_reg, _Eigenbasis, _flag, _is_infinite, _learning_rate, _parse_get,
                      _ntk_covariance, _rectangular, _regularized, _results, _rows, _square, _targets,
                      _times)


# ---------------------------------------------------------------------------------------------
# infinite ensembles of infinitely wide networks


class _Ensemble:
    """Mean (and covariance) of the infinite ensemble trained by gradient flow, from kernels.

    ``k_dd``: train-train kernels by name. Per call, ``k_td`` the test-train kernels by name
    (None: predict on the training set) and ``nngp_tt`` the test-test NNGP (for a test
    covariance). Eigendecompositions and Cholesky factors are cached per kernel.
    """

    def __init__(self, k_dd: dict, y, diag_reg: float, absolute: bool, learning_rate: float,
                 eigh: bool = False):
        self.eigh = eigh  # every prediction through the eigendecomposition, also at t = inf
        self.y, self.y_is_1d = _targets(y)
        self.k_dd = {g: _square(k, f"kernel_fn(x_train, None).{g}", self.y.shape[0]) for g, k in k_dd.items()}
        self.reg, self.absolute = _diag_reg(diag_reg, absolute), absolute
        self.lr = _learning_rate(learning_rate)
        self._bases: dict = {}
        self._factors: dict = {}

    def basis(self, g: str) -> _Eigenbasis:
        if g not in self._bases:
            k = _regularized(self.k_dd[g], self.reg, self.absolute)
            self._bases[g] = _Eigenbasis(k, float(self.y.size), f"the training {g.upper()}", regularized=self.reg > 0,
                                         what=f"kernel_fn(x_train, None).{g}")
        return self._bases[g]

    def factor(self, g: str) -> np.ndarray:
        if g not in self._factors:
            self._factors[g] = _cholesky(_regularized(self.k_dd[g], self.reg, self.absolute),
                                         f"x_train: the training {g.upper()}")
        return self._factors[g]

    def _mean_out(self, mean: np.ndarray) -> np.ndarray:
        return mean[..., 0] if self.y_is_1d else mean

    def predict(self, g: str, t, k_td: Optional[dict], compute_cov: bool, nngp_tt: Optional[np.ndarray]):
        if _is_infinite(t) and not self.eigh:
            return self._converged(g, k_td, compute_cov, nngp_tt)
        t_flat, t_shape = _times(np.inf if t is None else t, self.lr)
        basis = self.basis(g)
        coef = basis.to_basis(self.y)
        if k_td is None:
            mean = np.einsum("ji,ti,ik->tjk", basis.vectors, basis.growth(t_flat), coef, optimize=True)
        else:
            mean = np.einsum("li,ti,ik->tlk", _mm(k_td[g], basis.vectors), basis.gain(t_flat), coef, optimize=True)
        mean = self._mean_out(mean.reshape(t_shape + mean.shape[1:]))
        if not compute_cov:
            return mean
        covs = [self._covariance(g, basis, t_flat[i:i + 1], k_td, nngp_tt) for i in range(t_flat.size)]
        return Gaussian(mean, np.stack(covs).reshape(t_shape + covs[0].shape))

    def _covariance(self, g, basis: _Eigenbasis, t: np.ndarray, k_td, nngp_tt) -> np.ndarray:
        v = basis.vectors
        if k_td is None:  # on the training set
            if g == "nngp":
                return _mm(v * (basis.clipped * basis.decay(2 * t)[0]), v.T)
            e = _mm(v * basis.decay(t)[0], v.T)
            return _mm(e, _mm(self.k_dd["nngp"], e))
        if g == "nngp":
            projected = _mm(k_td["nngp"], v)
            return nngp_tt - _mm(projected * basis.gain(2 * t)[0], projected.T)
        a = _mm(v, basis.gain(t)[0][:, None] * _mm(v.T, k_td["ntk"].T))
        return _ntk_covariance(a, self.k_dd["nngp"], k_td["nngp"], nngp_tt)

    def _converged(self, g: str, k_td: Optional[dict], compute_cov: bool, nngp_tt: Optional[np.ndarray]):
        if k_td is None:
            mean = self._mean_out(self.y.copy())
            return Gaussian(mean, np.zeros((self.y.shape[0],) * 2)) if compute_cov else mean
        if not compute_cov:
            return self._mean_out(k_td[g] @ linalg._cho_solve(self.factor(g), self.y))
        if g == "nngp":
            k = self.y.shape[1]
            solved = linalg._cho_solve(self.factor("nngp"), np.concatenate([self.y, k_td["nngp"].T], axis=1))
            mean, cov = k_td["nngp"] @ solved[:, :k], nngp_tt - _mm(k_td["nngp"], solved[:, k:])
        else:
            a = linalg._cho_solve(self.factor("ntk"), k_td["ntk"].T)  # Theta^-1 Theta_dt
            mean = a.T @ self.y
            cov = _ntk_covariance(a, self.k_dd["nngp"], k_td["nngp"], nngp_tt)
        return Gaussian(self._mean_out(mean), cov)


def _dependencies(names: tuple[str, ...], compute_cov: bool) -> tuple[str, ...]:
    """The kernels a prediction needs: the NTK covariance also needs the NNGP."""
    deps = []
    if "nngp" in names or ("ntk" in names and compute_cov):
        deps.append("nngp")
    if "ntk" in names:
        deps.append("ntk")
    return tuple(deps)



# ---------------------------------------------------------------------------------------------
# infinite ensembles of infinitely wide networks


def gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate: float = 1.0, diag_reg: float = 0.0,
                                  diag_reg_absolute_scale: bool = False, *, solver: str = "auto", tol: float = 1e-6,
                                  maxiter: Optional[int] = None, n_centers: Optional[int] = None,
                                  centers: str = "uniform", seed=0, progress: bool = False):
    """Mean and covariance of an infinite ensemble of infinitely wide networks trained by gradient
    flow on MSE (neural-tangents' ``predict.gradient_descent_mse_ensemble``).

    ``kernel_fn(x1, x2, get)`` returns kernels with ``.nngp`` / ``.ntk`` (e.g. ``MLP.kernel``).
    Returns ``predict_fn(t=None, x_test=None, get=None, compute_cov=False)``: the mean on
    ``x_test`` (on the training inputs when None) at time[s] ``t``, or a ``Gaussian`` with the
    covariance; ``get`` a string gives one result, a tuple (default ("nngp", "ntk")) a namedtuple.
    Train kernels, eigendecompositions and factorisations are cached between calls.

    ``solver``: "auto" (dense when the kernels fit comfortably in memory, else "cg"),
    "cholesky" / "eigh" (dense), "cg" or "nystrom" (matrix-free, see ``MLP.predict``; these need
    ``kernel_fn`` to be the ``kernel`` or ``kernel_fn`` of an ntkfast model).
    """
    from .solvers.regression import Options

    options = Options(solver, tol, maxiter, n_centers, centers, seed, progress)
    model = _model_of(kernel_fn)
    if options.solver in ("cg", "nystrom") or (options.solver == "auto" and model is not None
                                               and (_rows(x_train) or 0) > 0
                                               and not options.dense(_rows(x_train), 2)):
        if model is None:
            raise TypeError(f"kernel_fn: solver={options.solver!r} computes kernel products in the core, so "
                            "kernel_fn must be an ntkfast model's kernel (MLP(...).kernel or a stax kernel_fn), "
                            f"got {type(kernel_fn).__name__}")
        if not _is_one(learning_rate):
            raise NotImplementedError("learning_rate: the matrix-free solvers take learning_rate=1 (scale t instead)")

        def matrix_free_fn(t=None, x_test=None, get=None, compute_cov: bool = False):
            return predict_with(model, x_train, y_train, x_test, t=t, get=("nngp", "ntk") if get is None else get,
                                compute_cov=compute_cov, diag_reg=diag_reg,
                                diag_reg_absolute_scale=diag_reg_absolute_scale, solver=options.solver, tol=tol,
                                maxiter=maxiter, n_centers=n_centers, centers=centers, seed=seed, progress=progress)

        return matrix_free_fn
    if not callable(kernel_fn):
        raise TypeError(f"kernel_fn: must be a callable kernel_fn(x1, x2, get=...) such as MLP(...).kernel, got "
                        f"{type(kernel_fn).__name__}")
    y, _ = _targets(y_train)
    rows = _rows(x_train)
    if rows is not None and rows != y.shape[0]:
        raise ValueError(f"y_train: must have one row per row of x_train ({rows}), got shape {np.shape(y_train)}")
    reg = _diag_reg(diag_reg, diag_reg_absolute_scale)
    learning_rate = _learning_rate(learning_rate)
    kernels: dict = {}
    state: dict = {}

    def kernel(x1, x2, first: str, second: str, get: tuple[str, ...]):
        """kernel_fn(x1, x2, get=get), its errors about x1 / x2 (MLP.kernel's names) renamed to the
        caller's ``first`` / ``second`` (x_train, x_test; for x2=None, ``second`` is ``first``)."""
        try:
            return kernel_fn(x1, x2, get=get)
        except Exception as exc:
            renamed = renamed_error(exc, {"x1": first, "x2": second})
            if renamed is exc:
                raise
            raise renamed from None

    def ensemble(deps: tuple[str, ...]) -> _Ensemble:
        missing = tuple(g for g in deps if g not in kernels)
        if missing:
            k = kernel(x_train, None, "x_train", "x_train", missing)
            for g in missing:
                kernels[g] = getattr(k, g)
            state["ensemble"] = _Ensemble(dict(kernels), y_train, reg, diag_reg_absolute_scale, learning_rate,
                                          eigh=options.solver == "eigh")
        return state["ensemble"]

    def predict_fn(t=None, x_test=None, get=None, compute_cov: bool = False):
        get = ("nngp", "ntk") if get is None else get
        names = _parse_get(get)
        compute_cov = _flag(compute_cov, "compute_cov")
        if not _is_infinite(t):
            _times(t, 1.0)  # checked before any kernel is computed
            if options.solver == "cholesky":
                raise ValueError("t: solver='cholesky' solves the converged (t=inf) regression; finite times need "
                                 "solver='eigh' (or 'auto', 'cg')")
        deps = _dependencies(names, compute_cov)
        model = ensemble(deps)
        k_td = nngp_tt = None
        if x_test is not None:
            k = kernel(x_test, x_train, "x_test", "x_train", deps)
            k_td = {g: _rectangular(getattr(k, g), f"kernel_fn(x_test, x_train).{g}", model.y.shape[0]) for g in deps}
            if compute_cov:
                k_tt = kernel(x_test, None, "x_test", "x_test", ("nngp",))
                nngp_tt = _square(k_tt.nngp, "kernel_fn(x_test, None).nngp", k_td[deps[0]].shape[0])
        return _results(get, {g: model.predict(g, t, k_td, compute_cov, nngp_tt) for g in names})

    return predict_fn


def _model_of(kernel_fn):
    """The ntkfast model (MLP or stax layer) whose kernel ``kernel_fn`` is, or None."""
    owner = getattr(kernel_fn, "__self__", None)
    if owner is not None and hasattr(owner, "_core_model"):
        return owner
    if hasattr(kernel_fn, "_core_model"):
        return kernel_fn
    return None


def _is_one(value) -> bool:
    try:
        return float(value) == 1.0
    except (TypeError, ValueError):
        return False


def predict_with(model, x_train, y_train, x_test=None, *, t=None, get="ntk", compute_cov: bool = False,
                 diag_reg: float = 0.0, diag_reg_absolute_scale: bool = False, solver: str = "auto",
                 tol: float = 1e-6, maxiter=None, n_centers=None, centers: str = "uniform", seed=0,
                 progress: bool = False, return_info: bool = False):
    """``model.predict``: gradient-flow predictions with the kernels of ``model`` (an ``MLP`` or an
    ``ntkfast.stax`` layer, through its ``_kernel_float64``), errors naming the caller's arguments.
    Dense solves or, by ``solver``, matrix-free ones (``ntkfast.solvers``)."""
    from ._arrays import as_inputs
    from .solvers.regression import MatrixFreeRegression, Options

    options = Options(solver, tol, maxiter, n_centers, centers, seed, progress)
    return_info = _flag(return_info, "return_info")
    if getattr(model._core_model(), "is_spatial", lambda: False)():
        # images: one flattened image per row below, their shape restored for each kernel call
        from .images import FlatImages, as_images

        train_images = as_images(x_train, "x_train")
        if x_test is not None:
            test_images = as_images(x_test, "x_test")
            if test_images.shape[1:] != train_images.shape[1:]:
                raise ValueError(f"x_test: images of shape {test_images.shape[1:]} do not match x_train's "
                                 f"{train_images.shape[1:]}")
            x_test = test_images.reshape(test_images.shape[0], -1)
        model = FlatImages(model, train_images.shape[1:])
        x_train = train_images.reshape(train_images.shape[0], -1)
    # Checked here under the caller's names: below, they are the x1 / x2 of model.kernel.
    train = as_inputs(x_train, "x_train")
    y, y_is_1d = _targets(y_train)
    if y.shape[0] != train.shape[0]:
        raise ValueError(f"y_train: must have one row per row of x_train ({train.shape[0]}), got shape "
                         f"{np.shape(y_train)}")
    names = {id(train): "x_train"}
    test = None
    if x_test is not None:
        test = as_inputs(x_test, "x_test")
        if test.shape[1] != train.shape[1]:
            raise ValueError(f"x_test: has {test.shape[1]} features but x_train has {train.shape[1]}")
        names[id(test)] = "x_test"
    get_names = _parse_get(get)
    compute_cov = _flag(compute_cov, "compute_cov")
    reg = _diag_reg(diag_reg, diag_reg_absolute_scale)
    deps = _dependencies(get_names, compute_cov)
    if not options.dense(train.shape[0], len(deps)):
        if _is_infinite(t):
            t_flat, t_shape = np.array([np.inf]), ()
        else:
            t_flat, t_shape = _times(t, 1.0)
        solver_name = "cg" if options.solver == "auto" else options.solver
        if compute_cov and not np.all(np.isinf(t_flat)):
            raise NotImplementedError(f"compute_cov: with solver={solver_name!r} the covariance is available at "
                                      "t=inf only (by extra solves); use solver='eigh' for finite times")
        regression = MatrixFreeRegression(model._core_model(), np.asarray(train, dtype=np.float64), y, reg,
                                          diag_reg_absolute_scale, options, solver_name)
        test64 = None if test is None else np.asarray(test, dtype=np.float64)
        nngp_tt = None
        if compute_cov and test is not None:
            nngp_tt = np.asarray(model._kernel_float64(test64, None, get="nngp"), dtype=np.float64)
        out = {}
        for g in get_names:
            mean = regression.mean(g, t_flat, test64)
            mean = mean.reshape(t_shape + mean.shape[1:])
            mean = mean[..., 0] if y_is_1d else mean
            if compute_cov:
                cov = (np.zeros((y.shape[0],) * 2) if test is None else regression.covariance(g, test64, nngp_tt))
                out[g] = Gaussian(mean, cov)
            else:
                out[g] = mean
        result = _results(get, out)
        return (result, regression.convergence) if return_info else result

    def kernel_fn(x1, x2=None, *, get):
        try:
            return model._kernel_float64(x1, x2, get=get)
        except Exception as exc:  # the core names them x1 / x2 (ValueError, TypeError, MemoryError)
            first = names.get(id(x1), "x1")
            renamed = renamed_error(exc, {"x1": first, "x2": first if x2 is None else names.get(id(x2), "x2")})
            if renamed is exc:
                raise
            raise renamed from None

    fn = gradient_descent_mse_ensemble(kernel_fn, train, y_train, diag_reg=diag_reg,
                                       diag_reg_absolute_scale=diag_reg_absolute_scale,
                                       solver=options.solver if options.solver in ("cholesky", "eigh") else "auto")
    result = fn(t, test, get, compute_cov)
    return (result, []) if return_info else result
