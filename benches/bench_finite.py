"""Benchmark of the empirical NTK of a finite network (and of Monte-Carlo kernels).

    python benches/bench_finite.py [--quick]

Empirical NTK (traced over outputs) of a width-1024, depth-3 ReLU network on 500 inputs of
dimension 784, against neural-tangents' fastest implementation for it (structured derivatives,
jitted, float64) when it is importable: both on the same parameters, in this one run. (Its other
implementations are far slower here: NTK_VECTOR_PRODUCTS 58 s and JACOBIAN_CONTRACTION 35 s for
out_dim 1, and out of memory for out_dim 10, so they are not timed.)
"""

from __future__ import annotations


import numpy as np

import ntkfast
from _common import best_time, import_neural_tangents, quick_flag, relu_stax




def neural_tangents(depth, width, out_dim):
    imported = import_neural_tangents()
    if imported is None:
        return None
    jax, nt, stax = imported
    init_fn, apply_fn, _ = relu_stax(stax, depth, width, out_dim)
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 784))
    impl = nt.NtkImplementation.STRUCTURED_DERIVATIVES
    fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=impl))
    return params, {impl.name: fn}


def main() -> None:
    quick = quick_flag(__doc__)
    n, width = (100, 256) if quick else (500, 1024)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 784))
    mlp = ntkfast.MLP(3, "relu", W_std=2**0.5, b_std=0.1)
    for out_dim in (1, 10):
        nt_side = neural_tangents(3, width, out_dim)
        net = mlp.init(784, width=width, out_dim=out_dim, seed=0) if nt_side is None else \
            ntkfast.Network.from_params(mlp, nt_side[0])
        t_ours = best_time(lambda: net.ntk(x), 5)
        print(f"empirical NTK, ReLU depth 3, width {width}, {n} inputs, out_dim {out_dim}: ntkfast {t_ours * 1e3:.0f} ms")
        if nt_side is None:
            print("  neural-tangents is not importable here: comparison skipped")
            continue
        params, fns = nt_side
        times = {}
        for name, fn in fns.items():
            fn(x, None, params).block_until_ready()  # compile
            times[name] = best_time(lambda: fn(x, None, params).block_until_ready(), 3)
            print(f"  neural-tangents {name:24s} {times[name] * 1e3:7.0f} ms")
        fastest = min(times.values())
        ref = np.asarray(fns["STRUCTURED_DERIVATIVES"](x, None, params))
        err = np.max(np.abs(net.ntk(x) - ref)) / np.max(np.abs(ref))
        print(f"  ntkfast is {fastest / t_ours:.1f} x faster than neural-tangents' fastest (target >= 3); "
              f"max relative difference {err:.1e}")

    t_mc = best_time(lambda: ntkfast.monte_carlo_kernel(mlp, x[:50], width=1024, n_samples=32), 1)
    print(f"\nMonte-Carlo NNGP + NTK, 50 inputs, width 1024, 32 samples: {t_mc:.2f} s")


if __name__ == "__main__":
    main()
