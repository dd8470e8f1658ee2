"""Gradient-flow predictions (kernel regression) without the n x n kernel: conjugate gradients
preconditioned by a randomly pivoted Cholesky Nystrom factor plus diagonal blocks of neighbouring
inputs for exact solves, Lanczos for finite times, Falkon for approximate regression on a subset
of centres. Every kernel product runs tile by tile in the core (``KernelOperator``)."""

from __future__ import annotations

import numbers
import warnings
from typing import Optional

import numpy as np

from .cg import conjugate_gradients
from .lanczos import lanczos_function
from .nystrom import ROW_BLOCK, rpcholesky, select_centers
from .operator import KernelOperator
from .partition import principal_blocks
from .preconditioners import BlockNystromPreconditioner, jitter_ladder, jittered_cholesky
from .report import Convergence

SOLVERS = ("auto", "cholesky", "eigh", "cg", "nystrom")
CENTERS = ("uniform", "leverage")

# Default rank of the CG preconditioner's Nystrom factor: CENTERS_PER_ROOT_N sqrt(n), so that its
# setup's O(n M^2) flops stay a small share of the O(n^2) kernel entries of each CG iteration,
# at most DEFAULT_CENTERS and FACTOR_BUDGET bytes (see ``_rank``).
DEFAULT_CENTERS = 4000
CENTERS_PER_ROOT_N = 14
# Bytes the n x M factor of the CG preconditioner may take by default.
FACTOR_BUDGET = 2.0 * 2**30
# Inputs per diagonal block of the CG preconditioner, and the bytes all blocks' inverses may take
# (n x block); blocks shrink at large n to stay within it.
PRECONDITIONER_BLOCK = 1000
BLOCK_BUDGET = 1.0 * 2**30
# Rows of K_nM sampled per centre to estimate K_Mn K_nM for the "nystrom" preconditioner.
SAMPLE_ROWS_PER_CENTRE = 20


def available_memory() -> float:
    """Bytes of memory available to new allocations (Linux MemAvailable; else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return np.inf


def dense_fits(n: int, kernels: int) -> bool:
    """Whether dense solves of an n x n problem fit comfortably: the kernels plus a factor and a
    working copy, in at most half of the available memory."""
    return 8.0 * n * n * (kernels + 2) <= 0.5 * available_memory()


class Options:
    """The matrix-free solvers' settings, checked once with the user's argument names."""

    def __init__(self, solver="auto", tol=1e-6, maxiter=None, n_centers=None, centers="uniform", seed=0,
                 progress=False):
        if solver not in SOLVERS:
            raise ValueError(f"solver: must be one of {', '.join(map(repr, SOLVERS))}, got {solver!r}")
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
            raise ValueError(f"tol: must be a number in (0, 1) (a relative residual), got {tol!r}")
        if maxiter is not None and (isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral)
                                    or maxiter < 1):
            raise ValueError(f"maxiter: must be a positive integer or None, got {maxiter!r}")
        if n_centers is not None and (isinstance(n_centers, bool) or not isinstance(n_centers, numbers.Integral)
                                      or n_centers < 0):
            raise ValueError(f"n_centers: must be an integer >= 0 or None (0: no preconditioner for 'cg'), got "
                             f"{n_centers!r}")
        if centers not in CENTERS:
            raise ValueError(f"centers: must be one of {', '.join(map(repr, CENTERS))}, got {centers!r}")
        if not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"progress: must be True or False, got {progress!r}")
        self.solver, self.tol, self.maxiter = solver, float(tol), None if maxiter is None else int(maxiter)
        self.n_centers, self.centers, self.seed, self.progress = n_centers, centers, seed, bool(progress)

    def dense(self, n: int, kernels: int) -> bool:
        """Whether this solve is a dense one (cholesky / eigh, or auto with a kernel that fits)."""
        if self.solver in ("cholesky", "eigh"):
            return True
        return self.solver == "auto" and dense_fits(n, kernels)


def _gain(values: np.ndarray, t: np.ndarray, normalization: float) -> np.ndarray:
    """(1 - exp(-lambda t / N)) / lambda per time (rows), with the limit t / N at lambda <= 0
    (Ritz values of a PSD kernel are >= 0 up to rounding)."""
    lam = np.maximum(values, 0.0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.nan_to_num(lam * t[:, None] / normalization, nan=0.0, posinf=np.inf)
        out = np.where(lam > 0, -np.expm1(-rate) / np.where(lam > 0, lam, 1.0), 0.0)
    at_zero = np.where(np.isinf(t), 0.0, t / normalization)[:, None]
    return np.where(lam > 0, out, at_zero)


def _growth(values: np.ndarray, t: np.ndarray, normalization: float) -> np.ndarray:
    """1 - exp(-lambda t / N) per time (rows)."""
    lam = np.maximum(values, 0.0)[None, :]
    with np.errstate(invalid="ignore"):
        rate = np.nan_to_num(lam * t[:, None] / normalization, nan=0.0, posinf=np.inf)
    return -np.expm1(-rate)


class MatrixFreeRegression:
    """Kernel regression of ``y`` (n, k) on ``train`` (float64) with a core model's kernels, by
    matrix-free solvers. Per kernel: the regulariser, the preconditioner and solutions are
    cached; ``convergence`` records every solve."""

    def __init__(self, core_model, train: np.ndarray, y: np.ndarray, reg: float, absolute: bool, options: Options,
                 solver: str):
        self.core, self.train, self.y = core_model, train, y
        self.reg, self.absolute, self.options, self.solver = reg, absolute, options, solver
        self.n = train.shape[0]
        self._lam: dict = {}
        self._diagonals: dict = {}
        self._preconditioners: dict = {}
        self._falkon: dict = {}
        self._alpha: dict = {}
        self.convergence: list[Convergence] = []

    # -- pieces ------------------------------------------------------------------------------

    def kernel(self, g: str):
        def k(a, b):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # (warned about once, by the products)
                nngp, ntk = self.core.kernel(a, b, nngp=g == "nngp", ntk=g == "ntk")
            return nngp if g == "nngp" else ntk
        return k

    def diagonal(self, g: str) -> np.ndarray:
        """The diagonal of the training kernel g (computed once)."""
        if g not in self._diagonals:
            self._diagonals[g] = KernelOperator(self.core, self.train, get=g).diagonal()
        return self._diagonals[g]

    def lam(self, g: str) -> float:
        """The diagonal regulariser: diag_reg, times the mean diagonal unless absolute."""
        if g not in self._lam:
            if self.absolute or self.reg == 0.0:
                self._lam[g] = self.reg
            else:
                mean = float(np.mean(self.diagonal(g)))
                if not mean > 0:
                    raise ValueError(f"diag_reg: is relative to the mean diagonal of the training {g.upper()}, "
                                     f"which is {mean:.3g} here (a zero kernel on x_train); pass "
                                     f"diag_reg_absolute_scale=True for an absolute regulariser")
                self._lam[g] = self.reg * mean
        return self._lam[g]

    def operator(self, g: str) -> KernelOperator:
        return KernelOperator(self.core, self.train, get=g, shift=self.lam(g), names=("x_train", "x_train"))

    def _rank(self) -> int:
        m = self.options.n_centers
        if m is None:
            m = min(DEFAULT_CENTERS, int(CENTERS_PER_ROOT_N * np.sqrt(self.n)), self.n // 2,
                    int(FACTOR_BUDGET / (8.0 * self.n)))
        return max(0, min(int(m), self.n))

    def _block(self) -> int:
        return max(1, min(PRECONDITIONER_BLOCK, int(BLOCK_BUDGET / (8.0 * self.n))))

    def preconditioner(self, g: str):
        """P^-1 for CG: a rank-n_centers randomly pivoted Cholesky factor plus diagonal blocks of
        neighbouring inputs (``BlockNystromPreconditioner``); None without n_centers or diag_reg."""
        if g not in self._preconditioners:
            rank = self._rank()
            if rank == 0 or not self.lam(g) > 0:
                self._preconditioners[g] = None
            else:
                block = self._block()
                need = 8.0 * self.n * (rank + block)
                if need > 0.5 * available_memory():
                    raise MemoryError(f"n_centers: the preconditioner's {self.n} x {rank} factor and diagonal "
                                      f"blocks need {need / 2**30:.1f} GiB; pass fewer n_centers")
                rng = np.random.default_rng(self.options.seed)
                kernel = self.kernel(g)
                factor, _ = rpcholesky(kernel, self.train, self.diagonal(g), rank, rng)
                blocks = principal_blocks(self.train, block, seed=self.options.seed)
                self._preconditioners[g] = BlockNystromPreconditioner(
                    factor, self.lam(g), blocks, lambda idx: kernel(self.train[idx], None))
        return self._preconditioners[g]

    def _maxiter(self, default: int) -> int:
        return self.options.maxiter if self.options.maxiter is not None else default

    def solve(self, g: str, b: np.ndarray, what: str) -> np.ndarray:
        """(K_g + lam I)^-1 b by preconditioned CG."""
        op = self.operator(g)
        hint = ("raise maxiter, n_centers (a better preconditioner) or diag_reg (a better-conditioned system), "
                "or loosen tol")
        x, result = conjugate_gradients(op.matmat, b, precondition=self.preconditioner(g), tol=self.options.tol,
                                        maxiter=self._maxiter(1000), label=f"cg ({g.upper()}, {what})",
                                        progress=self.options.progress, hint=hint)
        self.convergence.append(result)
        return x

    def alpha(self, g: str) -> np.ndarray:
        if g not in self._alpha:
            self._alpha[g] = self.solve(g, self.y, "training targets")
        return self._alpha[g]

    # -- Falkon ------------------------------------------------------------------------------

    def falkon(self, g: str) -> tuple[np.ndarray, np.ndarray]:
        """(centres, beta) of Nystrom kernel regression: (K_Mn K_nM + lam K_MM) beta = K_Mn y, solved
        as Falkon does, by CG on B^T H B with B^-1 B^-T ~ H, never storing K_nM.

        Falkon's preconditioner approximates K_Mn K_nM by n/M K_MM^2 (the centres' own rows); at
        the small regularisers of kernel regression without noise scaling that is far from H and
        CG needs hundreds of iterations. Here H is estimated from ``SAMPLE_ROWS_PER_CENTRE`` x M
        sampled rows instead, (n/s) K_Ms K_sM + lam K_MM (exact when s = n), at s M^2 flops."""
        if g in self._falkon:
            return self._falkon[g]
        o = self.options
        m = o.n_centers if o.n_centers is not None else min(self.n, 2000)
        if m < 1:
            raise ValueError("n_centers: the 'nystrom' solver needs at least one centre")
        rng = np.random.default_rng(o.seed)
        lam = self.lam(g)
        diagonal = self.diagonal(g) if o.centers == "leverage" else None
        idx = select_centers(o.centers, self.kernel(g), self.train, diagonal, m, max(lam, 1e-300), rng)
        centres = np.ascontiguousarray(self.train[idx])
        m = centres.shape[0]
        k_mm = np.asarray(self.kernel(g)(centres, None), dtype=np.float64)
        sample = min(self.n, SAMPLE_ROWS_PER_CENTRE * m)
        rows = np.arange(self.n) if sample == self.n else np.sort(rng.choice(self.n, size=sample, replace=False))
        gram = np.zeros((m, m))
        for start in range(0, sample, ROW_BLOCK):
            k_bm = np.asarray(self.kernel(g)(self.train[rows[start:start + ROW_BLOCK]], centres), dtype=np.float64)
            gram += k_bm.T @ k_bm
        h = (self.n / sample) * gram + lam * k_mm
        scale = float(np.mean(np.diag(h)))
        lower = jittered_cholesky(h, jitter_ladder(1e-13 * scale, scale))
        b = np.linalg.inv(lower).T  # B = L^-T: B^T H B ~ I
        want = {"nngp": g == "nngp", "ntk": g == "ntk"}

        def normal(v):
            nngp, ntk = self.core.kernel_normal_matmat(self.train, centres, v, **want)
            return nngp if g == "nngp" else ntk

        def matmat(v):
            w = b @ v
            return b.T @ (normal(w) + lam * (k_mm @ w))

        op = KernelOperator(self.core, centres, self.train, get=g, names=("x_train", "x_train"))
        rhs = b.T @ op.matmat(self.y)
        hint = "raise maxiter or diag_reg, or loosen tol"
        gamma, result = conjugate_gradients(matmat, rhs, tol=o.tol, maxiter=self._maxiter(500),
                                            label=f"nystrom ({g.upper()}, {m} centres)", progress=o.progress,
                                            hint=hint)
        self.convergence.append(result)
        self._falkon[g] = (centres, b @ gamma)
        return self._falkon[g]

    # -- predictions -------------------------------------------------------------------------

    def _cross(self, g: str, test: np.ndarray, v: np.ndarray, against=None) -> np.ndarray:
        """K_g(test, against or train) v, matrix-free."""
        op = KernelOperator(self.core, test, self.train if against is None else against, get=g,
                            names=("x_test", "x_train"))
        return op.matmat(v)

    def _lanczos(self, g: str, fn, what: str) -> np.ndarray:
        hint = "raise maxiter or diag_reg, or loosen tol"
        # (a step's change estimates the error of the step before: stop at a tenth of tol)
        coef, result = lanczos_function(self.operator(g).matmat, self.y, fn, tol=0.1 * self.options.tol,
                                        maxiter=self._maxiter(500), label=f"lanczos ({g.upper()}, {what})",
                                        progress=self.options.progress, hint=hint,
                                        memory_limit=0.5 * available_memory())
        self.convergence.append(result)
        return coef

    def weights(self, g: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(support, coef): the mean prediction at the (flat) times t on inputs x is
        K_g(x, support) coef[i], coef of shape (T, len(support), k). The support is the training
        inputs ("cg") or Falkon's centres ("nystrom")."""
        infinite = bool(np.all(np.isinf(t)))
        if self.solver == "nystrom":
            if not infinite:
                raise NotImplementedError("t: finite times need solver='cg' (Lanczos), 'eigh' or 'cholesky'; "
                                          "solver='nystrom' gives the converged (t=inf) regression only")
            centres, beta = self.falkon(g)
            return centres, np.broadcast_to(beta, (t.size,) + beta.shape)
        if infinite:
            return self.train, np.broadcast_to(self.alpha(g), (t.size,) + self.y.shape)
        normalization = float(self.y.size)
        return self.train, self._lanczos(g, lambda values: _gain(values, t, normalization), "weights")

    def mean(self, g: str, t: np.ndarray, test: Optional[np.ndarray]) -> np.ndarray:
        """The mean prediction at the (flat) times t: (T, n_test, k); on the training inputs when
        ``test`` is None."""
        if test is None:
            if np.all(np.isinf(t)):
                return np.broadcast_to(self.y, (t.size,) + self.y.shape).copy()
            if self.solver == "nystrom":
                self.weights(g, t)  # (raises: finite times)
            normalization = float(self.y.size)
            return self._lanczos(g, lambda values: _growth(values, t, normalization), "training outputs")
        support, coef = self.weights(g, t)
        times, n, k = coef.shape
        # every time's weights in one product: a kernel pass costs the same for a few more columns
        f = self._cross(g, test, np.ascontiguousarray(coef.transpose(1, 0, 2).reshape(n, times * k)), against=support)
        return f.reshape(test.shape[0], times, k).transpose(1, 0, 2)

    def covariance(self, g: str, test: np.ndarray, nngp_tt: np.ndarray) -> np.ndarray:
        """The test covariance of the converged ensemble (t = inf), by extra solves: one CG
        column per test point."""
        if self.solver == "nystrom":
            raise NotImplementedError("compute_cov: not available with solver='nystrom'; use solver='cg' (at "
                                      "t=inf), 'cholesky' or 'eigh'")
        cross_nngp = np.asarray(self.kernel("nngp")(test, self.train), dtype=np.float64)  # (n_test, n)
        if g == "nngp":
            solved = self.solve("nngp", cross_nngp.T, "test covariance")
            return nngp_tt - cross_nngp @ solved
        cross_ntk = np.asarray(self.kernel("ntk")(self.train, test), dtype=np.float64)  # (n, n_test)
        a = self.solve("ntk", cross_ntk, "test covariance")  # Theta^-1 Theta_dt
        s = a.T @ cross_nngp.T
        nngp_a = KernelOperator(self.core, self.train, get="nngp").matmat(a)
        return nngp_tt + a.T @ nngp_a - s - s.T
