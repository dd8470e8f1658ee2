"""The ``ntkfast`` command line."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    """The experiments of ``ntkfast.demo``: figures and a Markdown report in ``--out``."""
    import ntkfast
    from ntkfast import demo

    print(f"ntkfast {ntkfast.__version__}: {ntkfast.num_threads()} threads, SIMD level {ntkfast.simd_level()}")
    try:
        import sklearn  # noqa: F401  (the digits ship with scikit-learn)
    except ImportError:
        print("the demo needs scikit-learn (its bundled digits): pip install 'ntkfast[demo]'", file=sys.stderr)
        return 1
    start = time.perf_counter()
    result = demo.run(args.out, quick=args.quick)
    digits = result["digits"]
    print(f"\nconverged NTK regression: test accuracy {digits.ntk_accuracy:.3f}; NNGP regression "
          f"{digits.nngp_accuracy:.3f}")
    for run in digits.runs:
        print(f"network of width {run.width} after gradient descent to t = {run.time[-1]:.3g}: "
              f"test accuracy {run.test_accuracy[-1]:.3f}, NTK drift {run.kernel_drift:.4f}")
    circle = result["circle"]
    errors = ", ".join(f"width {w}: {np.mean(circle.errors[w]):.3f}" for w in circle.widths)
    print(f"empirical vs analytic NTK on the unit circle (relative error): {errors}")
    written = [result["report"]] + list(result["figures"].values())
    print(f"\nwrote {', '.join(written)} in {time.perf_counter() - start:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ntkfast", description="Infinite-width NNGP/NTK kernels of deep MLPs.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="NTK convergence with width, and training dynamics on handwritten digits: "
                                       "figures and a Markdown report")
    demo.add_argument("--out", default="ntkfast-demo", help="output folder (default: ./ntkfast-demo)")
    demo.add_argument("--quick", action="store_true", help="small problems (about 20 seconds)")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
