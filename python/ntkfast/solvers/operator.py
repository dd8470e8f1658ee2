"""Kernel matrices as linear operators: products with K(x1, x2) computed tile by tile in the core
and never stored, so n can go far past what an n x n matrix allows (Gardner et al. 2018 and
KeOps make the same trade: recompute kernel entries instead of storing them).

``KernelOperator`` has what ``scipy.sparse.linalg.aslinearoperator`` looks for (``shape``,
``dtype``, ``matvec``, ``matmat``, ``rmatvec``), so SciPy's iterative solvers and ``eigsh`` take
it as it is."""

from __future__ import annotations

import warnings

import numpy as np

from .._arrays import as_input_pair, renamed_error


class KernelOperator:
    """v -> K(x1, x2) v for one kernel (``get``: "nngp" or "ntk") of a model, plus
    ``shift * v`` (a diagonal regulariser, for a square operator).

    Each product costs one pass over the kernel's entries (half of them for the kernel of x1 with
    itself, which is symmetric); memory is O(n k) for k right-hand sides.
    """

    ndim = 2

    def __init__(self, core_model, x1, x2=None, *, get: str = "ntk", shift: float = 0.0,
                 names=("x1", "x2")):
        if get not in ("nngp", "ntk"):
            raise ValueError(f"get: must be 'nngp' or 'ntk' (one kernel per operator), got {get!r}")
        self._model = core_model
        self.x1, self.x2 = as_input_pair(x1, x2, names)
        self._names = names
        self.get = get
        n2 = self.x1.shape[0] if self.x2 is None else self.x2.shape[0]
        self.shape = (self.x1.shape[0], n2)
        self.dtype = self.x1.dtype
        shift = float(shift)
        if not np.isfinite(shift) or shift < 0:
            raise ValueError(f"shift: must be a finite number >= 0, got {shift!r}")
        if shift and self.x2 is not None:
            raise ValueError("shift: only for the square kernel of x1 with itself (x2=None)")
        self.shift = shift
        self.products = 0  # how many kernel passes so far (each matvec/matmat is one)

    def __repr__(self) -> str:
        return (f"<{self.shape[0]}x{self.shape[1]} KernelOperator of the {self.get.upper()} with dtype="
                f"{self.dtype}{f', shift={self.shift:.3g}' if self.shift else ''}>")

    def _product(self, a, b, v, transposed: bool) -> np.ndarray:
        want = {"nngp": self.get == "nngp", "ntk": self.get == "ntk"}
        v = np.asarray(v)
        if v.dtype.kind not in "fiub":
            raise TypeError(f"v: must hold real numbers, got dtype {v.dtype}")
        one = v.ndim == 1
        rows = self.shape[0] if transposed else self.shape[1]
        v2 = v.reshape(-1, 1) if one else v
        if v2.ndim != 2 or v2.shape[0] != rows:
            raise ValueError(f"v: must have shape ({rows},) or ({rows}, k), got {v.shape}")
        v2 = np.ascontiguousarray(v2, dtype=self.dtype)
        try:
            nngp, ntk = self._model.kernel_matmat(a, b, v2, **want)
        except Exception as exc:
            renamed = renamed_error(exc, {"x1": self._names[1] if transposed else self._names[0],
                                          "x2": self._names[0] if transposed else self._names[1]})
            if renamed is exc:
                raise
            raise renamed from None
        self.products += 1
        out = nngp if self.get == "nngp" else ntk
        if self.shift:
            out += self.shift * v2
        return out[:, 0] if one else out

    def matmat(self, v) -> np.ndarray:
        """K v for v of shape (n2, k) (or (n2,))."""
        return self._product(self.x1, self.x2, v, transposed=False)

    def matvec(self, v) -> np.ndarray:
        return self.matmat(v)

    def rmatmat(self, v) -> np.ndarray:
        """K^T v (K itself for the symmetric kernel of x1)."""
        if self.x2 is None:
            return self.matmat(v)
        return self._product(self.x2, self.x1, v, transposed=True)

    def rmatvec(self, v) -> np.ndarray:
        return self.rmatmat(v)

    def __matmul__(self, v) -> np.ndarray:
        return self.matmat(v)

    dot = __matmul__

    def diagonal(self) -> np.ndarray:
        """k(x_i, x_i) (+ shift), by the exact diagonal pass: the operator's diagonal (square only)."""
        if self.x2 is not None:
            raise ValueError("diagonal: only for the square kernel of x1 with itself (x2=None)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (warned about by the products)
            nngp, ntk = self._model.kernel_diagonal(self.x1, nngp=self.get == "nngp", ntk=self.get == "ntk")
        return (nngp if self.get == "nngp" else ntk).astype(np.float64) + self.shift
