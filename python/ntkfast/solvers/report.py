"""What an iterative solve reports: its convergence (iterations, final relative residual, time),
progress lines while it runs, and the warning when it stops short of its tolerance."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import dataclass, field

logger = logging.getLogger("ntkfast.solvers")


@dataclass
class Convergence:
    """How an iterative solve ended.

    ``residual``: the largest relative residual ||b - A x|| / ||b|| over the right-hand sides
    (for Lanczos: the relative change of the last step, its error estimate); ``products``:
    kernel passes (each computes every kernel entry once).
    """

    method: str
    iterations: int
    residual: float
    tol: float
    converged: bool
    seconds: float
    products: int = 0
    history: list = field(default_factory=list, repr=False)


class Progress:
    """Progress of a long solve: a line per iteration on stderr when ``show`` (at most every
    ``every`` seconds), and always to the ``ntkfast.solvers`` logger at DEBUG level."""

    def __init__(self, label: str, show: bool, every: float = 2.0):
        self.label, self.show, self.every = label, bool(show), every
        self.start = self._last = time.perf_counter()
        self.history: list = []

    def step(self, iteration: int, residual: float) -> None:
        now = time.perf_counter()
        self.history.append(float(residual))
        logger.debug("%s: iteration %d, residual %.3e, %.1f s", self.label, iteration, residual, now - self.start)
        if self.show and now - self._last >= self.every:
            self._last = now
            sys.stderr.write(f"{self.label}: iteration {iteration}, relative residual {residual:.2e}, "
                             f"{now - self.start:.0f} s\n")
            sys.stderr.flush()

    def finish(self, method: str, iterations: int, residual: float, tol: float, products: int,
               hint: str) -> Convergence:
        seconds = time.perf_counter() - self.start
        done = bool(residual <= tol)
        result = Convergence(method, iterations, float(residual), tol, done, seconds, products, self.history)
        logger.info("%s: %s after %d iterations, residual %.3e (tol %.1e), %.1f s", self.label,
                    "converged" if done else "stopped", iterations, residual, tol, seconds)
        if self.show:
            sys.stderr.write(f"{self.label}: {'converged' if done else 'NOT converged'} after {iterations} "
                             f"iterations, relative residual {residual:.2e}, {seconds:.0f} s\n")
        if not done:
            warnings.warn(f"{self.label} did not converge: relative residual {residual:.2e} > tol={tol:g} after "
                          f"{iterations} iterations (maxiter); {hint}", RuntimeWarning, stacklevel=2)
        return result
