"""Python-level benchmark of ntkfast's kernels, with numpy and (when installed) neural-tangents.

    python benches/bench_kernels.py [--quick]

Every figure is a ratio of times measured in this one run (best of several repeats), so the
noise of a shared machine cancels as far as possible. neural-tangents is timed when it can be
imported (it needs its own environment: jax==0.4.23 jaxlib==0.4.23 numpy<2 scipy<1.13
tensorflow==2.15.1 neural-tangents==0.6.5); its jitted kernel_fn is compiled before timing.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import ntkfast
from _common import best_time, import_neural_tangents, quick_flag, relu_stax




def neural_tangents_kernel_fn(depth: int):
    imported = import_neural_tangents()
    if imported is None:
        return None
    jax, _, stax = imported
    kernel_fn = jax.jit(relu_stax(stax, depth, 512, 1)[2], static_argnames="get")

    def run(x):
        k = kernel_fn(x, None, ("nngp", "ntk"))
        k.ntk.block_until_ready()
        return k

    return run


# Peak RSS from VmHWM (kB): getrusage's ru_maxrss is inherited from the parent across fork.
MEMORY_PROBE = """
import sys, numpy as np, ntkfast
def peak_kib():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1])
n, d, dtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = np.random.default_rng(0).standard_normal((n, d)).astype(dtype)
mlp = ntkfast.MLP(3, "relu", W_std=2 ** 0.5, b_std=0.1)
mlp.kernel(x[:64])  # load everything before the baseline
base = peak_kib()
k = mlp.kernel(x)
print((peak_kib() - base) * 1024 / (n * n * 8))
"""


def extra_peak_memory(n: int, d: int, dtype: str) -> float:
    """Extra peak RSS of one NNGP + NTK call, in units of n x n float64 matrices."""
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(n), str(d), dtype], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    quick = quick_flag(__doc__, "n=1000 instead of 4000")
    n = 1000 if quick else 4000
    repeats = 5
    rng = np.random.default_rng(0)
    print(f"ntkfast {ntkfast.__version__}, {ntkfast.num_threads()} threads, SIMD {ntkfast.simd_level()}\n")

    x = rng.standard_normal((n, 784))
    x32 = x.astype(np.float32)
    relu3 = ntkfast.MLP(3, "relu", W_std=2**0.5, b_std=0.1)
    t_numpy = best_time(lambda: x @ x.T, repeats)
    t64 = best_time(lambda: relu3.kernel(x), repeats)
    t32 = best_time(lambda: relu3.kernel(x32), repeats)
    print(f"ReLU depth 3, W_std=sqrt(2), b_std=0.1, NNGP + NTK of x ({n}, 784):")
    print(f"  numpy x @ x.T (float64)   {t_numpy * 1e3:8.1f} ms")
    print(f"  ntkfast float64           {t64 * 1e3:8.1f} ms   = {t64 / t_numpy:.2f} x numpy's x @ x.T (target <= 1.5)")
    print(f"  ntkfast float32           {t32 * 1e3:8.1f} ms   float32 is {t64 / t32:.2f} x faster (target >= 1.6)")
    for dtype in ("float64", "float32"):
        extra = extra_peak_memory(n, 784, dtype)
        print(f"  extra peak memory, {dtype}: {extra:.2f} n x n float64 matrices (target <= 2.5)")

    xs = rng.standard_normal((n, 16))
    relu10 = ntkfast.MLP(10, "relu", W_std=2**0.5, b_std=0.1)
    t_deep = best_time(lambda: relu10.kernel(xs), repeats)
    print(f"\nReLU depth 10, NNGP + NTK of x ({n}, 16): ntkfast float64 {t_deep * 1e3:.1f} ms")

    nt3 = neural_tangents_kernel_fn(3)
    if nt3 is None:
        print("\nneural-tangents is not importable here: comparison skipped")
        return
    nt10 = neural_tangents_kernel_fn(10)
    nt3(x)
    nt10(xs)  # compile
    t_nt3 = best_time(lambda: nt3(x), 3)
    t_nt10 = best_time(lambda: nt10(xs), 3)
    ref = nt3(x)
    ours = relu3.kernel(x)
    off = ~np.eye(n, dtype=bool)
    err = max(np.max(np.abs(ours.ntk - np.asarray(ref.ntk))[off]) / np.max(np.abs(ref.ntk)),
              np.max(np.abs(ours.nngp - np.asarray(ref.nngp))[off]) / np.max(np.abs(ref.nngp)))
    print("\nneural-tangents 0.6.5 (jitted kernel_fn, float64):")
    print(f"  ({n}, 784) depth 3: {t_nt3 * 1e3:8.1f} ms; ntkfast is {t_nt3 / t64:.1f} x faster (target >= 6)")
    print(f"  ({n}, 16) depth 10: {t_nt10 * 1e3:8.1f} ms; ntkfast is {t_nt10 / t_deep:.1f} x faster (target >= 20)")
    print(f"  max off-diagonal difference relative to the largest entry: {err:.1e}")


if __name__ == "__main__":
    main()
