"""Benchmark of the empirical NTK of a finite network (and of Monte-Carlo kernels).

    python benches/bench_finite.py [--quick]

Empirical NTK (traced over outputs) of a width-1024, depth-3 ReLU network on 500 inputs of
dimension 784, and of a CNN (3 x (Conv(64, 3x3, SAME), ReLU) + GlobalAvgPool + Dense(1)) on 100
random 8x8x1 images, against neural-tangents' fastest implementation for them (structured
derivatives, jitted, float64) when it is importable: both on the same parameters, in this one
run. (Its other implementations are far slower here: for the MLP NTK_VECTOR_PRODUCTS 58 s and
JACOBIAN_CONTRACTION 35 s for out_dim 1, and out of memory for out_dim 10; for the CNN
JACOBIAN_CONTRACTION did not finish in 5 minutes; so they are not timed.)
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


def cnn(stax):
    layers = []
    for _ in range(3):
        layers += [stax.Conv(64, (3, 3), padding="SAME", W_std=2**0.5, b_std=0.1), stax.Relu()]
    return stax.serial(*layers, stax.GlobalAvgPool(), stax.Dense(1, W_std=1.0, b_std=0.1))


def cnn_empirical_ntk(n: int) -> None:
    from ntkfast import stax as our_stax
    from ntkfast.composed import ComposedNetwork

    x = np.random.default_rng(1).standard_normal((n, 8, 8, 1))
    layer = cnn(our_stax)
    imported = import_neural_tangents()
    if imported is None:
        net = layer.init((8, 8, 1), seed=0)
    else:
        jax, nt, nt_stax = imported
        _, apply_fn, _ = cnn(nt_stax)
        _, params = cnn(nt_stax)[0](jax.random.PRNGKey(0), x.shape)
        net = ComposedNetwork.from_params(layer, params, (8, 8, 1))
    t_ours = best_time(lambda: net.ntk(x), 3)
    print(f"\nempirical NTK, CNN 3 x Conv(64, 3x3, SAME) + GlobalAvgPool, {n} images 8x8x1: ntkfast "
          f"{t_ours * 1e3:.0f} ms")
    if imported is None:
        print("  neural-tangents is not importable here: comparison skipped")
        return
    times = {}
    # (JACOBIAN_CONTRACTION ran over 5 minutes here without finishing: not timed)
    for impl in (nt.NtkImplementation.STRUCTURED_DERIVATIVES,):
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=impl))
        ref = np.asarray(fn(x, None, params))  # compile
        times[impl.name] = best_time(lambda: fn(x, None, params).block_until_ready(), 3)
        print(f"  neural-tangents {impl.name:24s} {times[impl.name] * 1e3:7.0f} ms")
    err = np.max(np.abs(net.ntk(x) - ref)) / np.max(np.abs(ref))
    print(f"  ntkfast is {min(times.values()) / t_ours:.1f} x faster than neural-tangents' fastest; max relative "
          f"difference {err:.1e}")


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

    cnn_empirical_ntk(50 if quick else 100)

    t_mc = best_time(lambda: ntkfast.monte_carlo_kernel(mlp, x[:50], width=1024, n_samples=32), 1)
    print(f"\nMonte-Carlo NNGP + NTK, 50 inputs, width 1024, 32 samples: {t_mc:.2f} s")


if __name__ == "__main__":
    main()
