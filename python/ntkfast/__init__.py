"""ntkfast: infinite-width NNGP and NTK kernels of deep fully-connected networks.

A Rust core (multithreaded, SIMD) with neural-tangents' conventions and numbers::

    import ntkfast
    mlp = ntkfast.MLP(3, "relu", W_std=2 ** 0.5, b_std=0.1)
    nngp, ntk = mlp.kernel(x_train)            # (n, n) each
    k_test = mlp.kernel(x_test, x_train, get="ntk")
"""

from . import activations
from ._core import __version__, num_threads, simd_level
from .models import MLP, Kernel

__all__ = ["MLP", "Kernel", "activations", "num_threads", "simd_level", "__version__"]
