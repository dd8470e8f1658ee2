"""Benchmark of composed networks (``ntkfast.stax``) against ``MLP`` and neural-tangents.

    python benches/bench_stax.py [--quick]

The same network is written with ``stax.serial`` and with ``MLP``; mixed and branched networks
are timed against neural-tangents' jitted ``kernel_fn`` of the same source (when neural-tangents
can be imported: run it in neural-tangents' environment with ``PYTHONPATH=python``). Every figure
is a ratio of times measured in this one run (best of several repeats).
"""

from __future__ import annotations

import numpy as np

from ntkfast import MLP, stax
from _common import best_time, import_neural_tangents, quick_flag

NETWORKS = {
    "Relu/Erf/Gelu, width 512": """stax.serial(
        stax.Dense(512, W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Dense(512, W_std=1.5, b_std=0.1), stax.Erf(),
        stax.Dense(512, W_std=1.5, b_std=0.1), stax.Gelu(),
        stax.Dense(1, W_std=1.5, b_std=0.1))""",
    "2 residual blocks + LayerNorm": """stax.serial(
        stax.Dense(512, W_std=1.5, b_std=0.05),
        *[stax.serial(stax.FanOut(2), stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(512, W_std=1.2, b_std=0.05), stax.LayerNorm()),
            stax.Identity()), stax.FanInSum())] * 2,
        stax.Erf(), stax.Dense(1, W_std=1.5, b_std=0.05))""",
}


def main() -> None:
    quick = quick_flag(__doc__, "smaller inputs")
    repeats = 3 if quick else 5
    rng = np.random.default_rng(0)
    n, d = (1000, 784) if quick else (4000, 784)
    x = rng.standard_normal((n, d))

    layers = []
    for _ in range(3):
        layers += [stax.Dense(512, W_std=2**0.5, b_std=0.1), stax.Relu()]
    serial = stax.serial(*layers, stax.Dense(1, W_std=2**0.5, b_std=0.1))
    mlp = MLP(3, "relu", W_std=2**0.5, b_std=0.1)
    serial.kernel(x[:64])
    # interleaved rounds, so that drift of a shared machine affects both alike
    t_mlp = t_serial = float("inf")
    for _ in range(repeats):
        t_mlp = min(t_mlp, best_time(lambda: mlp.kernel(x), 2))
        t_serial = min(t_serial, best_time(lambda: serial.kernel(x), 2))
    print(f"ReLU depth 3, NNGP + NTK of ({n}, {d}): MLP {t_mlp * 1e3:.0f} ms, stax.serial {t_serial * 1e3:.0f} ms "
          f"= {t_serial / t_mlp:.3f}x MLP")

    # ntkfast first, before JAX is loaded (its thread pools slow other work in the process)
    cases = [(name, (n // 2, d)) for name in NETWORKS] + [(name, (n, 100)) for name in NETWORKS]
    ours = {}
    for name, (rows, features) in cases:
        net = eval(NETWORKS[name], {"stax": stax})
        xm = rng.standard_normal((rows, features))
        net.kernel(xm[:64])
        ours[name, rows, features] = (xm, net.kernel(xm), best_time(lambda: net.kernel(xm), repeats))
    imported = import_neural_tangents()
    for (name, rows, features), (xm, mine, t_ours) in ours.items():
        line = f"{name}, NNGP + NTK of ({rows}, {features}): ntkfast {t_ours * 1e3:.0f} ms"
        if imported is not None:
            jax, _, nt_stax = imported
            kernel_fn = jax.jit(eval(NETWORKS[name], {"stax": nt_stax})[2], static_argnames="get")

            def run():
                k = kernel_fn(xm, None, ("nngp", "ntk"))
                k.ntk.block_until_ready()
                return k

            k = run()  # compiles
            t_nt = best_time(run, repeats)
            # (off the diagonal: neural-tangents' diagonal NTK carries ~1e-8 of rounding, see README)
            off = ~np.eye(rows, dtype=bool)
            error = max(np.abs(np.asarray(k.ntk) - mine.ntk)[off].max() / np.abs(mine.ntk).max(),
                        np.abs(np.asarray(k.nngp) - mine.nngp)[off].max() / np.abs(mine.nngp).max())
            line += f", neural-tangents {t_nt * 1e3:.0f} ms: {t_nt / t_ours:.1f}x faster (agree to {error:.1e})"
        else:
            line += " (neural-tangents not importable here)"
        print(line)


if __name__ == "__main__":
    main()
