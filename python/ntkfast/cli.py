"""The ``ntkfast`` command line."""

from __future__ import annotations

import argparse
import sys
import time


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
          f"{digits.nngp_accuracy:.3f}; CNTK-GAP regression on the 8x8 images {digits.cntk.accuracy:.3f}")
    for run in digits.runs:
        print(f"network of width {run.width} after gradient descent to t = lr x steps = {run.time[-1]:.3g}: "
              f"test accuracy {run.test_accuracy[-1]:.3f}, NTK drift {run.kernel_drift:.4f}")
    circle = result["circle"]
    errors = ", ".join(f"width {w}: {e:.3f}" for w, e in zip(circle.widths, circle.median_errors()))
    print(f"empirical vs analytic NTK on the unit circle (median relative error over networks): {errors}")
    lazy = result["lazy"]
    widest = lazy.widths[-1]
    slopes = ", ".join(f"{name} {lazy.slope(field, widest):.2f}" for name, field in (
        ("parameter change", "param_change"), ("linearisation gap", "linearization_gap"),
        ("kernel drift", "kernel_drift"), ("beta/sigma^2", "beta_over_sigma2")))
    print(f"lazy training (width {widest}, output scale {lazy.alphas[0]:g}-{lazy.alphas[-1]:g}): slopes against "
          f"alpha {slopes} (theory: -1)")
    written = [result["report"]] + list(result["figures"].values())
    print(f"\nwrote {', '.join(written)} in {time.perf_counter() - start:.1f} s")
    return 0


DEMO_DESCRIPTION = """\
Runs three experiments and writes a Markdown report and four figures to --out:

  report.md      both experiments' numbers and what they show
  circle.png     the empirical NTK of random depth-3 ReLU networks on the unit circle converging
                 to the analytic NTK as the width grows (Jacot et al. 2018, Fig. 1)
  dynamics.png   train/test loss and accuracy on scikit-learn's bundled handwritten digits:
                 finite networks trained by gradient descent against the analytic NTK's dynamics
  spectrum.png   the NTK spectrum, and the residual's decay along its principal components
  lazy.png       parameter change, linearisation gap and kernel drift against the output scale
                 alpha of centred networks (lazy training: each falls like 1/alpha)

Takes about 4 minutes on 2 cores (--quick: about 15-25 seconds); nothing is downloaded. Needs
scikit-learn (the digits) and matplotlib (the figures): pip install 'ntkfast[demo]'.
"""


class _Parser(argparse.ArgumentParser):
    """Reports an unknown option as such, even when the command is missing too (argparse would
    complain about the missing command and never mention the option)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands: dict = {}  # name -> its subparser, for its own usage line in errors

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            command = getattr(parsed, "command", None)
            target = self.commands.get(command, self) if command else self
            target.error(f"unrecognized arguments: {' '.join(unknown)}")
        if getattr(parsed, "command", None) is None:
            self.error(f"missing command: choose from {', '.join(self.commands)} (e.g. 'ntkfast demo --help')")
        return parsed


def main(argv: list[str] | None = None) -> int:
    import ntkfast

    parser = _Parser(prog="ntkfast", description="Infinite-width NNGP/NTK kernels of deep MLPs.")
    parser.add_argument("--version", action="version", version=f"ntkfast {ntkfast.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    demo = sub.add_parser("demo", help="NTK convergence with width, and training dynamics on handwritten digits: "
                                       "figures and a Markdown report (about 3 minutes; --quick: seconds)",
                          description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", default="ntkfast-demo",
                      help="output folder, created if missing (default: ./ntkfast-demo)")
    demo.add_argument("--quick", action="store_true", help="small versions of both experiments (about 10-20 seconds)")
    demo.set_defaults(func=_demo)
    parser.commands["demo"] = demo
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
