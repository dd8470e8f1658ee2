"""The kernel methods every ntkfast model shares (``MLP`` and ``ntkfast.stax`` layers): kernels,
kernels written into the caller's memory, kernels as linear operators, and gradient-flow
predictions. A model provides ``_core_model()``, its compiled core spec."""

from __future__ import annotations

from typing import Optional

from .ensemble import predict_with


class KernelMethods:
    def _core_model(self):  # pragma: no cover - provided by each model
        raise NotImplementedError

    def kernel(self, x1, x2=None, *, get=("nngp", "ntk"), diagonal: bool = False, out=None):
        """Infinite-width NNGP and/or NTK between the rows of ``x1`` and ``x2``.

        Args:
            x1: inputs of shape (n1, d).
            x2: inputs of shape (n2, d); ``None`` for the symmetric kernel of ``x1`` with itself
                (computed once per pair and mirrored, with exact diagonal entries).
            get: ``"nngp"`` or ``"ntk"`` returns that array; a tuple returns a ``Kernel``.
            diagonal: with ``x2=None``, return only the (n1,) diagonal k(x_i, x_i).
            out: write the kernel into this C-contiguous float32/float64 array of shape (n1, n2)
                instead of new memory, tile by tile (a ``numpy.memmap`` on disk holds kernels
                larger than RAM); for a tuple ``get``, a tuple of arrays in its order (or a dict
                by name). The kernel is computed in ``out``'s dtype; ``out`` is returned.

        Returns:
            float32 arrays for float32 inputs, float64 otherwise; (n1, n2), or (n1,) diagonals.
            The NTK of a network with several outputs is this kernel times the identity.
        """
        from .models import compiled_kernel

        return compiled_kernel(self._core_model, x1, x2, get, diagonal, out)

    def _kernel_float64(self, x1, x2=None, *, get=("nngp", "ntk")):
        from .models import kernel_float64

        return kernel_float64(self, x1, x2, get)

    def kernel_operator(self, x, x2=None, *, get: str = "ntk", diag_reg: float = 0.0):
        """The kernel K(x, x2) (K(x, x) when ``x2`` is None) as a linear operator, never stored:
        each product ``op @ v`` / ``op.matmat(v)`` computes the kernel tile by tile in the core
        (half of it for the symmetric K(x, x)). ``diag_reg`` (absolute) is added to the diagonal.

        SciPy takes it as it is: ``scipy.sparse.linalg.eigsh(op, k=10)`` for the top of the
        spectrum, ``cg(op, b)`` for a solve. ``get``: "nngp" or "ntk"."""
        from .solvers.operator import KernelOperator

        return KernelOperator(self._core_model(), x, x2, get=get, shift=diag_reg)

    def predict(self, x_train, y_train, x_test=None, *, t=None, get="ntk", compute_cov: bool = False,
                diag_reg: float = 0.0, diag_reg_absolute_scale: bool = False, solver: str = "auto",
                tol: float = 1e-6, maxiter: Optional[int] = None, n_centers: Optional[int] = None,
                centers: str = "uniform", seed=0, progress: bool = False, return_info: bool = False):
        """Outputs of the infinite ensemble of these networks, infinitely wide, trained by gradient
        flow on MSE for time ``t`` (neural-tangents' ``gradient_descent_mse_ensemble``).

        Args:
            x_train, y_train: training inputs (n, d) and targets (n,) or (n, k).
            x_test: inputs to predict on; None predicts on the training inputs.
            t: None or inf (converged), a number, or an array of times (leading axes of the
                result). Time is normalised by ``y_train.size`` (learning rate 1 on the loss
                0.5 * mean((f - y)^2)).
            get: "ntk" (all layers trained), "nngp" (only the readout trained, i.e. the NNGP
                posterior mean at t = inf), or a tuple of both (then a namedtuple of results).
            compute_cov: also return the covariance over the ensemble (shared by the outputs):
                a ``Gaussian(mean, cov)``.
            diag_reg: added to the training kernel's diagonal, relative to its mean diagonal
                unless ``diag_reg_absolute_scale``.
            solver: how the training kernel is solved:
                - "cholesky" (t = inf) / "eigh" (any t): dense, the n x n kernel in memory;
                - "cg": exact, matrix-free: conjugate gradients (Lanczos for finite t) whose
                  kernel products are computed tile by tile and never stored, preconditioned by
                  a rank-``n_centers`` randomly pivoted Cholesky Nystrom factor plus the
                  diagonal blocks (1000 neighbouring inputs each) of what it misses;
                - "nystrom": Falkon's approximate regression on ``n_centers`` centres (t = inf);
                - "auto": dense when the kernels fit comfortably in available memory, else "cg".
            tol: relative residual at which "cg" / "nystrom" stop (Lanczos: relative change).
            maxiter: iteration limit of the iterative solvers (default 1000 for "cg", 500 else);
                a solve that stops short of ``tol`` warns (RuntimeWarning).
            n_centers: "cg": the preconditioner's rank (default 14 sqrt(n), at most 4000, n/2
                and 2 GiB of factor; 0: no preconditioner);
                "nystrom": the number of centres (default min(n, 2000)).
            centers: how "nystrom" draws its centres: "uniform" or "leverage" (approximate
                ridge leverage scores); ``seed`` seeds the draws (and the preconditioner's).
            progress: print a line per iteration of long solves to stderr.
            return_info: also return the iterative solves' ``Convergence`` records (iterations,
                final residual, time): ``(prediction, [Convergence, ...])``.

        Returns:
            The mean, (n_test, k) (or (n_test,) for 1-D targets) after the shape of ``t``, or a
            ``Gaussian`` with ``.mean`` and ``.cov`` (n_test, n_test).
        """
        return predict_with(self, x_train, y_train, x_test, t=t, get=get, compute_cov=compute_cov,
                            diag_reg=diag_reg, diag_reg_absolute_scale=diag_reg_absolute_scale, solver=solver,
                            tol=tol, maxiter=maxiter, n_centers=n_centers, centers=centers, seed=seed,
                            progress=progress, return_info=return_info)
