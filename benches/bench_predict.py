"""Benchmark of predictions and of the symmetric eigendecomposition.

    python benches/bench_predict.py [--quick]

1. `MLP.predict` with covariance at t=inf: n_train=2000 (d=784, 10 outputs), n_test=500,
   ReLU depth 3, get="ntk"; against neural-tangents' gradient_descent_mse_ensemble when it is
   importable (its jitted kernel_fn; see benches/bench_kernels.py for its environment).
2. `ntkfast.eigh` with each LAPACK driver against numpy.linalg.eigh at n=4000 (n=1000 with
   --quick). Figures are ratios within this one run.
"""

from __future__ import annotations

import os

import numpy as np

import ntkfast
from _common import best_time, import_neural_tangents, quick_flag, relu_stax




def neural_tangents_predict(x_train, y_train, x_test):
    imported = import_neural_tangents()
    if imported is None:
        return None
    jax, nt, stax = imported
    kernel_fn = jax.jit(relu_stax(stax, 3, 512, 10)[2], static_argnames="get")

    def run():
        fn = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train)
        out = fn(None, x_test, "ntk", compute_cov=True)
        np.asarray(out.covariance)
        return out

    return run


def main() -> None:
    quick = quick_flag(__doc__)
    rng = np.random.default_rng(0)
    n_train, n_test, n_eig = (500, 100, 1000) if quick else (2000, 500, 4000)
    print(f"ntkfast {ntkfast.__version__}, {ntkfast.num_threads()} threads, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}\n")

    x_train, x_test = rng.standard_normal((n_train, 784)), rng.standard_normal((n_test, 784))
    y_train = np.eye(10)[rng.integers(0, 10, n_train)]
    mlp = ntkfast.MLP(3, "relu", W_std=2**0.5, b_std=0.1)
    ours = lambda: mlp.predict(x_train, y_train, x_test, t=None, get="ntk", compute_cov=True)  # noqa: E731
    t_ours = best_time(ours, 3)
    print(f"predict, cov, t=inf, n_train={n_train}, n_test={n_test}: ntkfast {t_ours * 1e3:.0f} ms")
    nt_run = neural_tangents_predict(x_train, y_train, x_test)
    if nt_run is not None:
        nt_run()  # compile
        t_nt = best_time(nt_run, 3)
        ref, got = nt_run(), ours()
        err = max(np.max(np.abs(np.asarray(ref.mean) - got.mean)) / np.max(np.abs(got.mean)),
                  np.max(np.abs(np.asarray(ref.covariance) - got.cov)) / np.max(np.abs(got.cov)))
        print(f"  neural-tangents {t_nt * 1e3:.0f} ms: ntkfast is {t_nt / t_ours:.1f} x faster (target >= 3); "
              f"max relative difference {err:.1e}")
    else:
        print("  neural-tangents is not importable here: comparison skipped")

    z = rng.standard_normal((n_eig, 64))
    a = z @ z.T / 64 + 1e-3 * np.eye(n_eig)
    repeats = 1 if n_eig > 2000 else 3
    t_numpy = best_time(lambda: np.linalg.eigh(a), repeats)
    print(f"\neigh n={n_eig}: numpy.linalg.eigh {t_numpy:.2f} s")
    for driver in ("syevd", "syevr") if n_eig > 2000 else ("syevd", "syevr", "syev"):
        t = best_time(lambda: ntkfast.eigh(a, driver=driver), repeats)
        print(f"  ntkfast.eigh driver={driver:6s} {t:6.2f} s = {t / t_numpy:.2f} x numpy (target <= 1.2 for the default)")
    w, v = ntkfast.eigh(a)
    print(f"  residual max|A V - V diag(w)| = {np.max(np.abs(a @ v - v * w)):.1e}")


if __name__ == "__main__":
    main()
