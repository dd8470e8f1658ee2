"""scikit-learn estimators and a kernel built on the infinite-width NTK / NNGP.

``NTKRegressor`` and ``NTKClassifier`` predict what an infinite ensemble of infinitely wide MLPs
trained by gradient flow on MSE predicts (``MLP.predict``): kernel regression with the NTK (or the
NNGP for ``get="nngp"``), at time ``t`` (None: converged). ``NTKKernel`` is an
``sklearn.gaussian_process.kernels.Kernel`` for ``GaussianProcessRegressor`` and ``KernelRidge``.
Requires scikit-learn (``pip install ntkfast[sklearn]``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import predict as _predict
from ._arrays import renamed_error
from .models import MLP

__all__ = ["NTKRegressor", "NTKClassifier", "NTKKernel"]


def _kernel(mlp: MLP, X, Y=None, *, names: dict, **kwargs):
    """``mlp.kernel(X, Y, ...)``, its errors about ``x1`` / ``x2`` (MLP.kernel's names: "x1: row 0
    contains NaN", "x1: this kernel of ... entries needs ...") renamed to the estimator's."""
    try:
        return mlp.kernel(X, Y, **kwargs)
    except Exception as exc:
        renamed = renamed_error(exc, names)
        if renamed is exc:
            raise
        raise renamed from None


def _mlp_of(spec):
    """The network an estimator's or kernel's parameters describe: ``model`` when given (an ``MLP``
    or an ``ntkfast.stax`` layer), else the MLP of ``depth``, ``activation``, ..."""
    model = getattr(spec, "model", None)
    if model is not None:
        from .stax import Layer

        if not isinstance(model, (MLP, Layer)):
            raise TypeError(f"model: must be an ntkfast.MLP or an ntkfast.stax layer, got {type(model).__name__}")
        return model
    return MLP(spec.depth, spec.activation, W_std=spec.W_std, b_std=spec.b_std, parameterization=spec.parameterization,
               width=spec.width)


class _NTKModel(BaseEstimator):
    """Shared parameters and the kernel regression of the two estimators."""

    def __init__(self, depth=3, activation="relu", W_std=2**0.5, b_std=0.1, parameterization="ntk", width=None,
                 get="ntk", t=None, diag_reg=1e-6, diag_reg_absolute_scale=False, model=None, solver="auto",
                 tol=1e-6, maxiter=None, n_centers=None, centers="uniform", seed=0):
        self.model = model
        self.solver = solver
        self.tol = tol
        self.maxiter = maxiter
        self.n_centers = n_centers
        self.centers = centers
        self.seed = seed
        self.depth = depth
        self.activation = activation
        self.W_std = W_std
        self.b_std = b_std
        self.parameterization = parameterization
        self.width = width
        self.get = get
        self.t = t
        self.diag_reg = diag_reg
        self.diag_reg_absolute_scale = diag_reg_absolute_scale

    def _mlp(self):
        return _mlp_of(self)

    def _kernel_name(self) -> str:
        if self.get not in ("nngp", "ntk"):
            raise ValueError(f"get: must be 'nngp' or 'ntk', got {self.get!r}")
        return self.get

    def _fit_targets(self, X, targets):
        from .solvers.regression import MatrixFreeRegression, Options

        X = np.asarray(X, dtype=np.float64)
        mlp = self._mlp()
        options = Options(self.solver, self.tol, self.maxiter, self.n_centers, self.centers, self.seed)
        self.X_fit_ = X
        if options.dense(X.shape[0], 1):
            k = _kernel(mlp, X, get=self._kernel_name(), names={"x1": "X", "x2": "X"})
            self.support_, self.convergence_ = X, None
            self.dual_coef_ = _predict.prediction_weights(k, targets, self.t, diag_reg=self.diag_reg,
                                                          diag_reg_absolute_scale=self.diag_reg_absolute_scale)
            return self
        # matrix-free: the weights of the predictions, on the training inputs or Falkon's centres
        reg = _predict._diag_reg(self.diag_reg, self.diag_reg_absolute_scale)
        y = targets.reshape(targets.shape[0], -1)
        solver = "cg" if options.solver == "auto" else options.solver
        regression = MatrixFreeRegression(mlp._core_model(), X, y, reg, self.diag_reg_absolute_scale, options, solver)
        t = np.array([np.inf if self.t is None else self.t], dtype=np.float64)
        self.support_, coef = regression.weights(self._kernel_name(), t)
        self.dual_coef_ = coef[0].reshape(coef.shape[1:2] + targets.shape[1:])
        self.convergence_ = regression.convergence
        return self

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "dual_coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if getattr(self, "convergence_", None) is not None:  # fitted matrix-free: predict the same way
            return self._mlp().kernel_operator(X, self.support_, get=self._kernel_name()) @ self.dual_coef_
        k = _kernel(self._mlp(), X, self.X_fit_, get=self._kernel_name(), names={"x1": "X", "x2": "X_fit_"})
        return k @ self.dual_coef_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = False
        return tags


class NTKRegressor(RegressorMixin, _NTKModel):
    """Kernel regression with the NTK (or NNGP) of ``MLP(depth, activation, ...)``: the mean
    output of infinitely wide networks trained by gradient flow for time ``t`` (None: converged).

    ``diag_reg`` (relative to the mean diagonal unless ``diag_reg_absolute_scale``) keeps the
    solve well posed for duplicated samples. Supports several targets. ``model`` (an ``MLP`` or an
    ``ntkfast.stax`` network, e.g. with residual blocks) replaces ``depth`` ... ``width`` when given.
    ``solver``, ``tol``, ``maxiter``, ``n_centers``, ``centers``, ``seed``: as ``MLP.predict``; with
    "cg" or "nystrom" (or "auto" past memory) neither fit nor predict stores an n x n kernel, and
    ``convergence_`` records the solves.
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        return self._fit_targets(X, np.asarray(y, dtype=np.float64))

    def predict(self, X):
        return self._outputs(X)


class NTKClassifier(ClassifierMixin, _NTKModel):
    """Classification by NTK regression on one-hot targets and the argmax of the outputs."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        return self._fit_targets(X, np.eye(len(self.classes_))[encoded])

    def decision_function(self, X):
        out = self._outputs(X)
        return out[:, 1] - out[:, 0] if len(self.classes_) == 2 else out

    def predict(self, X):
        out = self._outputs(X)
        return self.classes_[np.argmax(out, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False  # one label column (its classes become the outputs)
        return tags


class NTKKernel(Kernel):
    """The NTK (or NNGP) of an MLP as a scikit-learn kernel, for
    ``GaussianProcessRegressor(kernel=NTKKernel(...))`` or ``KernelRidge(kernel=NTKKernel(...))``.

    It has no tunable hyperparameters (``theta`` is empty): with ``eval_gradient=True`` the
    gradient has shape (n, n, 0), and ``GaussianProcessRegressor`` skips its optimizer.
    ``parameterization="standard"`` needs ``width``; ``model`` (an ``MLP`` or an ``ntkfast.stax``
    network) replaces ``depth`` ... ``width`` when given."""

    def __init__(self, depth=3, activation="relu", W_std=2**0.5, b_std=0.1, parameterization="ntk", width=None,
                 get="ntk", model=None):
        self.model = model
        self.depth = depth
        self.activation = activation
        self.W_std = W_std
        self.b_std = b_std
        self.parameterization = parameterization
        self.width = width
        self.get = get

    def _mlp(self):
        return _mlp_of(self)

    def _kernel_name(self) -> str:
        if not isinstance(self.get, str) or self.get not in ("nngp", "ntk"):
            raise ValueError(f"get: must be 'nngp' or 'ntk', got {self.get!r}")
        return self.get

    def __call__(self, X, Y=None, eval_gradient=False):
        if eval_gradient and Y is not None:
            raise ValueError("eval_gradient: only supported when Y is None")
        X = np.asarray(X, dtype=np.float64)
        k = _kernel(self._mlp(), X, None if Y is None else np.asarray(Y, dtype=np.float64), get=self._kernel_name(),
                    names={"x1": "X", "x2": "X" if Y is None else "Y"})
        # d k / d theta for an empty theta: shape (n, n, 0), as sklearn's kernels without hyperparameters
        return (k, np.empty(k.shape + (0,))) if eval_gradient else k

    def diag(self, X):
        return _kernel(self._mlp(), np.asarray(X, dtype=np.float64), get=self._kernel_name(), diagonal=True,
                       names={"x1": "X", "x2": "X"})

    def is_stationary(self):
        return False

    def __repr__(self):
        if self.model is not None:
            return f"NTKKernel(model={self.model!r}, get={self.get!r})"
        spec = ("" if self.parameterization == "ntk"
                else f", parameterization={self.parameterization!r}, width={self.width}")
        return (f"NTKKernel(depth={self.depth}, activation={self.activation!r}, W_std={self.W_std}, "
                f"b_std={self.b_std}{spec}, get={self.get!r})")
