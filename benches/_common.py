"""Shared by the Python benchmark scripts: timing and the optional neural-tangents import."""

from __future__ import annotations

import argparse
import os
import time


def quick_flag(doc: str, help: str | None = None) -> bool:
    """Parses the benchmark scripts' one option, ``--quick`` (smaller problems); `doc` is the usage.
    Prints the machine first: figures are comparable only within one run on one machine."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=help)
    quick = parser.parse_args().quick
    print(machine())
    return quick


def machine() -> str:
    """The CPU model, the SIMD level and threads the core uses, and OpenBLAS's core type."""
    import ntkfast

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"machine: {cpu}; ntkfast {ntkfast.__version__}, SIMD {ntkfast.simd_level()}, {ntkfast.num_threads()} "
            f"threads; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")


def best_time(fn, repeats: int) -> float:
    """The best of `repeats` wall-clock times of fn() (the least disturbed run on a noisy machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def import_neural_tangents():
    """(jax, neural_tangents, stax) with float64 enabled on the CPU, or None when not installed
    (it needs its own environment: jax==0.4.23 jaxlib==0.4.23 numpy<2 scipy<1.13
    tensorflow==2.15.1 neural-tangents==0.6.5)."""
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import jax

        jax.config.update("jax_enable_x64", True)
        import neural_tangents as nt
        from neural_tangents import stax
    except Exception:
        return None
    return jax, nt, stax


def relu_stax(stax, depth: int, width: int, out_dim: int):
    """neural-tangents' ReLU MLP with W_std = sqrt(2), b_std = 0.1 (the benchmarks' network)."""
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=2**0.5, b_std=0.1), stax.Relu()]
    layers += [stax.Dense(out_dim, W_std=2**0.5, b_std=0.1)]
    return stax.serial(*layers)
