"""Choose OpenBLAS's kernels before the core (which links OpenBLAS) is loaded.

OpenBLAS picks its kernels from the CPU model when it loads. Older builds (Debian 12 ships
0.3.21) do not know recent or virtualised Xeons and fall back to their generic "Prescott"
kernels, which run LAPACK 2-4x slower. Unless the user has set OPENBLAS_CORETYPE, set it from
the CPU's instruction-set flags, which is what a correct detection would pick anyway.
"""

import os
import sys


def configure() -> None:
    if "OPENBLAS_CORETYPE" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return
    if "avx512f" in flags and "avx512vl" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif "avx2" in flags and "fma" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
