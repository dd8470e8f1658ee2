"""Benchmark of convolutional kernels (CNN-GP / CNTK) against neural-tangents.

    python benches/bench_conv.py [--quick]

- 200 random 8x8x1 images through 3 x (Conv(64, (3, 3), SAME), Relu) + GlobalAvgPool + Dense:
  every pair of positions is tracked (64^2 per pair of images);
- 200 random 28x28x1 images through the same convolutions + Flatten + Dense: same-position pairs
  only (784 per pair);
- the 1797 x 1797 CNTK-GAP of scikit-learn's digits at depth 5 (skipped with --quick).

neural-tangents' jitted ``kernel_fn`` is timed on the same inputs when it can be imported (run in
its own environment with ``PYTHONPATH=python``). Figures are ratios of times measured in this one
run; the CPU is printed first.
"""

from __future__ import annotations

import time

import numpy as np

from ntkfast import stax
from _common import best_time, import_neural_tangents, quick_flag


def network(stax, depth: int, end: str):
    layers = []
    for _ in range(depth):
        layers += [stax.Conv(64, (3, 3), padding="SAME", W_std=2**0.5, b_std=0.1), stax.Relu()]
    last = stax.GlobalAvgPool() if end == "gap" else stax.Flatten()
    return stax.serial(*layers, last, stax.Dense(1, W_std=1.0, b_std=0.1))


def main() -> None:
    quick = quick_flag(__doc__, "skip the digits kernel")
    rng = np.random.default_rng(0)
    cases = {"3 x Conv + GlobalAvgPool, 200 images 8x8x1": (rng.standard_normal((200, 8, 8, 1)), "gap"),
             "3 x Conv + Flatten, 200 images 28x28x1": (rng.standard_normal((200, 28, 28, 1)), "flatten")}
    ours = {}
    for name, (x, end) in cases.items():
        net = network(stax, 3, end)
        k = net.kernel(x, get=("nngp", "ntk"))
        ours[name] = (k, best_time(lambda: net.kernel(x, get=("nngp", "ntk")), 3))
        print(f"{name}: ntkfast {ours[name][1]:.3f} s", flush=True)
    if not quick:
        from sklearn.datasets import load_digits

        digits = load_digits().images[..., None] / 16.0
        net = network(stax, 5, "gap")
        start = time.perf_counter()
        k = net.kernel(digits, get=("nngp", "ntk"))
        seconds = time.perf_counter() - start
        assert np.isfinite(k.ntk).all()
        print(f"CNTK-GAP depth 5 of the {len(digits)} digits (8x8): {seconds:.1f} s", flush=True)
    imported = import_neural_tangents()
    if imported is None:
        print("neural-tangents not importable: run in its environment with PYTHONPATH=python for the ratios")
        return
    jax, _, nt_stax = imported
    for name, (x, end) in cases.items():
        kernel_fn = jax.jit(network(nt_stax, 3, end)[2], static_argnames="get")

        def run():
            k = kernel_fn(x, None, ("nngp", "ntk"))
            k.ntk.block_until_ready()
            return k

        k = run()
        t_nt = best_time(run, 2)
        mine, t_ours = ours[name]
        off = ~np.eye(len(x), dtype=bool)
        error = max(np.abs(np.asarray(k.ntk) - mine.ntk)[off].max() / np.abs(mine.ntk).max(),
                    np.abs(np.asarray(k.nngp) - mine.nngp)[off].max() / np.abs(mine.nngp).max())
        print(f"{name}: neural-tangents {t_nt:.2f} s, ntkfast {t_ours:.3f} s: {t_nt / t_ours:.1f}x faster "
              f"(agree to {error:.1e})")


if __name__ == "__main__":
    main()
