"""Matrix-free kernel solvers: kernel regression and gradient-flow predictions at n far past
what an n x n kernel allows (``MLP.predict(..., solver="cg" | "nystrom")``), and kernels as
linear operators (``MLP.kernel_operator``) for SciPy's iterative solvers and eigensolvers."""

from .cg import conjugate_gradients
from .lanczos import lanczos_function
from .operator import KernelOperator
from .report import Convergence

__all__ = ["Convergence", "KernelOperator", "conjugate_gradients", "lanczos_function"]
