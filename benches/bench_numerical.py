"""Benchmark of the quadrature path (``activations.Numerical`` and the built-in names).

    python benches/bench_numerical.py [--quick]

Times, in one run, NNGP + NTK of (n, 784) inputs through a depth-3 MLP (W_std=1.5, b_std=0.1):
closed-form Erf, then tanh natively in Rust, as a Python callable, and at the largest degree,
and (when neural-tangents is importable) neural-tangents' ``stax.ElementwiseNumerical`` with its
default 25-point rule per dimension. Accuracy is measured against the same kernel at the largest
quadrature degree and, for Erf, against its closed form.
"""

from __future__ import annotations


import numpy as np
from scipy.special import erf

import ntkfast
from ntkfast import activations as A
from _common import best_time, import_neural_tangents, quick_flag

W_STD, B_STD, DEPTH = 1.5, 0.1, 3


def relative_error(got, want) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def neural_tangents_numerical(fn_name: str, deg: int):
    imported = import_neural_tangents()
    if imported is None:
        return None
    jax, _, stax = imported
    fn = getattr(jax.numpy, fn_name) if fn_name != "erf" else jax.scipy.special.erf
    layers = []
    for _ in range(DEPTH):
        layers += [stax.Dense(512, W_std=W_STD, b_std=B_STD), stax.ElementwiseNumerical(fn, deg=deg)]
    layers += [stax.Dense(1, W_std=W_STD, b_std=B_STD)]
    kernel_fn = jax.jit(stax.serial(*layers)[2], static_argnames="get")

    def run(x):
        k = kernel_fn(x, None, ("nngp", "ntk"))
        k.ntk.block_until_ready()
        return k

    return run


def main() -> None:
    quick = quick_flag(__doc__, "n=300 instead of 1000")
    n = 300 if quick else 1000
    repeats = 3
    x = np.random.default_rng(0).standard_normal((n, 784))
    print(f"ntkfast {ntkfast.__version__}, {ntkfast.num_threads()} threads; NNGP + NTK of ({n}, 784), "
          f"depth {DEPTH}, W_std={W_STD}, b_std={B_STD}\n")

    def mlp(activation):
        return ntkfast.MLP(DEPTH, activation, W_std=W_STD, b_std=B_STD)

    derf = lambda z: 2 / np.sqrt(np.pi) * np.exp(-z * z)  # noqa: E731
    cases = {
        "Erf() closed form": mlp(A.Erf()),
        "Numerical(erf, derf)": mlp(A.Numerical(erf, derf)),
        '"tanh" (native)': mlp("tanh"),
        "Numerical(np.tanh)": mlp(A.Numerical(np.tanh)),
        '"softplus" (native)': mlp("softplus"),
    }
    times = {name: best_time(lambda m=m: m.kernel(x), repeats) for name, m in cases.items()}
    base = times["Erf() closed form"]
    for name, t in times.items():
        print(f"  {name:24s} {t * 1e3:8.1f} ms   {t / base:5.1f} x the closed form")

    exact = cases["Erf() closed form"].kernel(x)
    quad = cases["Numerical(erf, derf)"].kernel(x)
    print(f"\n  Numerical(erf, derf) vs Erf(): NNGP {relative_error(quad.nngp, exact.nngp):.1e}, "
          f"NTK {relative_error(quad.ntk, exact.ntk):.1e} (relative to the largest entry)")
    tanh = cases['"tanh" (native)'].kernel(x)
    reference = mlp(A.Numerical("tanh", degree=2048)).kernel(x)
    print(f"  tanh at the default degree vs degree 2048: NNGP {relative_error(tanh.nngp, reference.nngp):.1e}, "
          f"NTK {relative_error(tanh.ntk, reference.ntk):.1e}")

    nt_tanh = neural_tangents_numerical("tanh", 25)
    if nt_tanh is None:
        print("\nneural-tangents is not importable here: comparison skipped")
        return
    nt_tanh(x)  # compile
    t_nt = best_time(lambda: nt_tanh(x), repeats)
    k_nt = nt_tanh(x)
    off = ~np.eye(n, dtype=bool)
    err_nt = max(relative_error(np.asarray(k_nt.nngp)[off], reference.nngp[off]),
                 relative_error(np.asarray(k_nt.ntk)[off], reference.ntk[off]))
    err_ours = max(relative_error(tanh.nngp[off], reference.nngp[off]), relative_error(tanh.ntk[off], reference.ntk[off]))
    t_ours = times['"tanh" (native)']
    print("\nneural-tangents 0.6.5, stax.ElementwiseNumerical(jnp.tanh, deg=25) (jitted, float64):")
    print(f"  {t_nt * 1e3:8.1f} ms; ntkfast's \"tanh\" is {t_nt / t_ours:.1f} x faster")
    print(f"  off-diagonal error vs the degree-2048 kernel: neural-tangents {err_nt:.1e}, ntkfast {err_ours:.1e}")


if __name__ == "__main__":
    main()
