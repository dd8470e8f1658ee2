"""The ``ntkfast`` command line."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    """Kernels of a deep ReLU network on the unit circle, and the speed of a large Gram matrix."""
    import ntkfast

    mlp = ntkfast.MLP(3, "relu", W_std=2**0.5, b_std=0.1)
    print(f"ntkfast {ntkfast.__version__}: {mlp}")
    print(f"core: {ntkfast.num_threads()} threads, SIMD level {ntkfast.simd_level()}\n")
    angles = np.linspace(0.0, np.pi, 5)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nngp, ntk = mlp.kernel(circle[:1], circle)
    print("x = (cos t, sin t), x0 = (1, 0)")
    print("      t   NNGP(x0, x)   NTK(x0, x)")
    for t, k, th in zip(angles, nngp[0], ntk[0]):
        print(f"  {t:5.3f}   {k:11.6f}   {th:10.6f}")
    n, d = (500, 64) if args.quick else (4000, 784)
    x = np.random.default_rng(0).standard_normal((n, d))
    start = time.perf_counter()
    k = mlp.kernel(x)
    elapsed = time.perf_counter() - start
    eigmin = np.linalg.eigvalsh(k.ntk[:200, :200]).min()
    print(f"\nNNGP + NTK of {n} inputs of dimension {d}: {elapsed * 1e3:.1f} ms; "
          f"smallest eigenvalue of a 200x200 NTK block {eigmin:.3e} (PSD)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ntkfast", description="Infinite-width NNGP/NTK kernels of deep MLPs.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="print the kernels of a deep ReLU network and time a large Gram matrix")
    demo.add_argument("--quick", action="store_true", help="a small problem (seconds)")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
