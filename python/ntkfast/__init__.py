"""ntkfast: infinite-width NNGP and NTK kernels of fully-connected networks (``ntkfast.stax``:
neural-tangents' layer language; ``MLP``: the common stack).

A Rust core (multithreaded, SIMD) with neural-tangents' conventions and numbers::

    import ntkfast
    mlp = ntkfast.MLP(3, "relu", W_std=2 ** 0.5, b_std=0.1)
    nngp, ntk = mlp.kernel(x_train)            # (n, n) each
    k_test = mlp.kernel(x_test, x_train, get="ntk")
"""

import atexit as _atexit

from . import _openblas

_openblas.configure()  # before the core, and with it OpenBLAS, is loaded

from . import activations, demo, finite, linalg, predict, stax  # noqa: E402, F401
from ._core import __version__, num_threads, simd_level  # noqa: E402
from .finite import Network, monte_carlo_kernel  # noqa: E402
from .monte_carlo import monte_carlo_predict  # noqa: E402
from .linalg import eigh, eigvalsh  # noqa: E402
from .models import MLP, Kernel  # noqa: E402
from ._core import _shutdown  # noqa: E402

# At exit, stop core calls still running in daemon threads before the interpreter finalises
# (their Python activation functions must not be called into a dying interpreter).
_atexit.register(_shutdown)

__all__ = ["MLP", "Kernel", "Network", "monte_carlo_kernel", "monte_carlo_predict", "activations", "eigh", "eigvalsh", "finite", "linalg",
           "predict", "stax", "num_threads", "simd_level", "__version__"]
