"""Benchmark of the matrix-free solvers (issue: kernel regression beyond memory).

    python benches/bench_solvers.py [--quick] [--cases dense20k,cg100k,nystrom1m,scaling]

Synthetic regression: x ~ N(0, I_8) (d = 8), three outputs y_k = sin(w_k . x) + cos(u_k . x) / 2
plus noise 0.1; ReLU network of depth 3 (W_std = 1.4, b_std = 0.1), get = "ntk", diag_reg 1e-3
(relative). Every case runs in its own process, so its peak RSS is its own; figures are
wall-clock seconds on this machine, comparable only within one run.

- dense20k: n = 20 000, CG (tol 1e-6, default preconditioner) against Cholesky: agreement of
  the test predictions and the peak RSS of each.
- cg100k: exact CG at n = 100 000: time, iterations, peak RSS.
- nystrom1m: Falkon with 2000 centres at n = 1 000 000: time, iterations, peak RSS.
- scaling: held-out error as n grows, dense at n = 2000, 6000, 10 000 (the cases above give it
  at 20 000, 100 000 and, approximately, 10^6).
With --quick every n is divided by 20 (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

N_TEST = 2000


def data(n: int, seed: int):
    rng = np.random.default_rng(1234)  # the target function is fixed; seed draws the inputs
    w, u = rng.standard_normal((8, 3)) * 0.6, rng.standard_normal((8, 3)) * 0.6
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 8))
    y = np.sin(x @ w) + 0.5 * np.cos(x @ u) + 0.1 * r.standard_normal((n, 3))
    return x, y


def target(x):
    rng = np.random.default_rng(1234)
    w, u = rng.standard_normal((8, 3)) * 0.6, rng.standard_normal((8, 3)) * 0.6
    return np.sin(x @ w) + 0.5 * np.cos(x @ u)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # (kB on Linux)


def child(case: str, n: int, solver: str, n_centers) -> dict:
    """One solve in this process: timings, test error, convergence, peak RSS."""
    import ntkfast

    model = ntkfast.MLP(3, "relu", W_std=1.4, b_std=0.1)
    x, y = data(n, seed=1)
    xt, _ = data(N_TEST, seed=2)
    base = peak_rss_gib()
    start = time.perf_counter()
    pred, info = model.predict(x, y, xt, get="ntk", diag_reg=1e-3, solver=solver, n_centers=n_centers,
                               progress=True, return_info=True)
    seconds = time.perf_counter() - start
    mse = float(np.mean((pred - target(xt)) ** 2))
    np.save(f"/tmp/bench_solvers_{case}_{solver}.npy", pred)
    return {"case": case, "n": n, "solver": solver, "seconds": seconds, "test_mse": mse,
            "iterations": [c.iterations for c in info], "residual": [c.residual for c in info],
            "converged": [c.converged for c in info], "peak_rss_gib": peak_rss_gib(), "rss_before_gib": base}


def run(case: str, n: int, solver: str, n_centers=None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps([case, n, solver, n_centers])],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    sys.stderr.write(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(r: dict) -> None:
    its = "" if not r["iterations"] else f", {r['iterations']} iterations, residual {max(r['residual']):.1e}"
    print(f"  n={r['n']:>8} {r['solver']:>8}: {r['seconds']:7.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB, "
          f"test MSE {r['test_mse']:.4f}{its}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", default="dense20k,cg100k,nystrom1m,scaling")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from _common import machine

    print(machine())
    scale = 20 if args.quick else 1
    cases = args.cases.split(",")
    if "dense20k" in cases:
        n = 20_000 // scale
        print(f"dense20k: CG against Cholesky at n = {n}")
        chol = run("dense20k", n, "cholesky")
        cg = run("dense20k", n, "cg")
        show(chol)
        show(cg)
        a = np.load("/tmp/bench_solvers_dense20k_cg.npy")
        b = np.load("/tmp/bench_solvers_dense20k_cholesky.npy")
        print(f"  CG vs Cholesky: max |difference| / max |prediction| = {np.max(np.abs(a - b)) / np.max(np.abs(b)):.2e}")
    if "cg100k" in cases:
        n = 100_000 // scale
        print(f"cg100k: exact CG at n = {n}")
        show(run("cg100k", n, "cg"))
    if "nystrom1m" in cases:
        n = 1_000_000 // scale
        print(f"nystrom1m: Falkon, 2000 centres, n = {n}")
        show(run("nystrom1m", n, "nystrom", 2000 // (4 if args.quick else 1)))
    if "scaling" in cases:
        print("scaling: held-out MSE against the noiseless target as n grows")
        for n in (1000 // scale * 2, 3000 // scale * 2, 10_000 // scale):
            show(run("scaling", n, "cholesky"))


if __name__ == "__main__":
    main()
