"""Monte Carlo kernels: empirical NNGP / NTK averaged over randomly initialised finite networks
(neural-tangents' ``monte_carlo_kernel_fn``), of an ``MLP`` or of any ``ntkfast.stax`` network."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ._arrays import as_seed_sequence
from .finite import MAX_WIDTH, Network, _float_inputs, _positive_int, init_params
from .models import check_mlp

__all__ = ["MonteCarloKernel", "monte_carlo_kernel", "EnsemblePrediction", "monte_carlo_predict"]


@dataclasses.dataclass
class MonteCarloKernel:
    """Kernels averaged over ``n_samples`` sampled networks, with their elementwise standard errors
    (the sample standard deviation over networks / sqrt(n_samples)): what ``monte_carlo_kernel``
    returns for a tuple ``get``. Kernels not in ``get`` are None, and so are the standard errors
    of a single network (n_samples=1: no spread to estimate). Unpacks in the order of ``get``, as
    neural-tangents' namedtuple: ``nngp, ntk = monte_carlo_kernel(...)``."""

    nngp: Optional[np.ndarray]
    ntk: Optional[np.ndarray]
    nngp_stderr: Optional[np.ndarray]
    ntk_stderr: Optional[np.ndarray]
    n_samples: int
    get: tuple = ("nngp", "ntk")

    def __iter__(self):
        return (getattr(self, name) for name in self.get)


def monte_carlo_kernel(mlp, x1, x2=None, *, width: Optional[int] = None, n_samples: int, out_dim: Optional[int] = None,
                       seed=0, get=("nngp", "ntk")):
    """Empirical NNGP / NTK averaged over ``n_samples`` networks drawn from ``seed``
    (neural-tangents' ``monte_carlo_kernel_fn``): ``mlp`` an ``MLP`` (hidden layers of ``width``,
    ``out_dim`` outputs, default 1), or an ``ntkfast.stax`` network, whose widths are its layers'
    (its inputs may be images).

    ``get`` follows ``MLP.kernel``: a string (``"nngp"`` or ``"ntk"``) returns that averaged
    kernel as an array; a tuple returns a ``MonteCarloKernel`` with the requested kernels and their
    elementwise standard errors (``.ntk_stderr``, ...). The network for sample i is drawn from the
    i-th child of ``SeedSequence(seed)``. Mean and variance are accumulated in one streaming pass
    (Welford's update: no cancellation when the spread is small next to the mean), so memory is a
    few kernels whatever ``n_samples``.
    """
    from . import composed, composed_inputs, stax

    single = isinstance(get, str)
    requested = (get,) if single else tuple(get) if isinstance(get, (tuple, list)) else ()
    if not requested or any(g not in ("nngp", "ntk") for g in requested):
        raise ValueError(f"get: must be 'nngp', 'ntk' or a tuple of them, got {get!r}")
    names = tuple(dict.fromkeys(requested))  # each kernel accumulated once
    n_samples = _positive_int(n_samples, "n_samples")
    seeds = as_seed_sequence(seed)
    if isinstance(mlp, stax.Layer):
        if width is not None or out_dim is not None:
            raise ValueError("width, out_dim: an ntkfast.stax network's widths are its layers' (Dense(out_dim), "
                             "Conv(out_chan)): leave width and out_dim unset")
        a, b, in_dim = composed_inputs.sampling_inputs(mlp, x1, x2)

        def draw(rng):
            net = composed.ComposedNetwork.initialize(mlp, in_dim, rng)
            return lambda g: net.nngp(a, b) if g == "nngp" else net.ntk(a, b)
    else:
        mlp = check_mlp(mlp)
        if width is None:
            raise TypeError("width: monte_carlo_kernel of an MLP needs the width of its hidden layers")
        width = _positive_int(width, "width", MAX_WIDTH)
        out_dim = _positive_int(1 if out_dim is None else out_dim, "out_dim", MAX_WIDTH)
        a = _float_inputs(x1, "x1")
        b = None if x2 is None else _float_inputs(x2, "x2")
        if b is not None and b.shape[1] != a.shape[1]:
            raise ValueError(f"x2: has {b.shape[1]} features but x1 has {a.shape[1]}")

        def draw(rng):
            net = Network(mlp, init_params(mlp, a.shape[1], width, out_dim, rng))
            return lambda g: net._core.nngp(a, b) if g == "nngp" else net._core.ntk(a, b, True)
    mean: dict = {}
    m2: dict = {}  # sum of squared deviations from the running mean
    for count, child in enumerate(seeds.spawn(n_samples), start=1):
        kernel = draw(np.random.default_rng(child))
        for g in names:
            k = kernel(g)
            if count == 1:
                mean[g], m2[g] = k, np.zeros_like(k)
                continue
            delta = k - mean[g]
            mean[g] += delta / count
            k -= mean[g]  # now the deviation from the updated mean
            m2[g] += delta * k
    if single:
        return mean[get]
    stderr = {g: np.sqrt(m2[g] / (n_samples - 1) / n_samples) if n_samples > 1 else None for g in names}
    return MonteCarloKernel(mean.get("nngp"), mean.get("ntk"), stderr.get("nngp"), stderr.get("ntk"), n_samples,
                            requested)


@dataclasses.dataclass
class EnsemblePrediction:
    """Test outputs of ``n_networks`` finite networks trained from independent initialisations:
    ``outputs`` (n_networks, n_test, out_dim), their ``mean`` (n_test, out_dim) and ``cov``
    (n_test, n_test): the covariance over networks, averaged over outputs (as
    ``MLP.predict(..., compute_cov=True)`` shares one covariance between outputs)."""

    outputs: np.ndarray
    mean: np.ndarray
    cov: np.ndarray


def monte_carlo_predict(mlp, x_train, y_train, x_test, *, width: int, n_networks: int, t: float,
                        learning_rate: float, seed=0, threads: Optional[int] = None) -> EnsemblePrediction:
    """Trains ``n_networks`` networks of ``mlp`` (hidden ``width``) from independent
    initialisations (the i-th child of ``SeedSequence(seed)``) by full-batch gradient descent on
    0.5 * mean((f - y)^2) for ``round(t / learning_rate)`` steps, the gradient-flow time ``t`` of
    ``MLP.predict``, and returns their outputs on ``x_test``: an ensemble whose mean and
    covariance approach ``mlp.predict(x_train, y_train, x_test, t=t, compute_cov=True)`` as the
    width grows (Jacot et al. 2018; Lee et al. 2019). Networks train in parallel on ``threads``
    Python threads (default: the core's thread count); the core releases the GIL while it works."""
    import concurrent.futures
    import threading

    from ._core import num_threads
    from .training import MAX_STEPS, _learning_rate

    mlp = check_mlp(mlp)
    width = _positive_int(width, "width", MAX_WIDTH)
    n_networks = _positive_int(n_networks, "n_networks")
    learning_rate = _learning_rate(learning_rate)
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not (
            np.isfinite(t) and t >= 0):
        raise ValueError(f"t: must be a finite time >= 0, got {t!r}")
    steps = float(t) / learning_rate
    if steps > MAX_STEPS:
        raise ValueError(f"t, learning_rate: t / learning_rate = {steps:.3g} steps, more than the {MAX_STEPS} "
                         "one training call takes: raise learning_rate or lower t")
    steps = int(round(steps))
    a, b = _float_inputs(x_train, "x_train"), _float_inputs(x_test, "x_test")
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"x_test: has {b.shape[1]} features but x_train has {a.shape[1]}")
    y = np.asarray(y_train, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim != 2 or y.shape[0] != a.shape[0]:
        raise ValueError(f"y_train: must have shape ({a.shape[0]},) or ({a.shape[0]}, out_dim), got "
                         f"{np.shape(y_train)}")
    if not np.isfinite(y).all():
        raise ValueError("y_train: contains NaN or infinity")
    children = as_seed_sequence(seed).spawn(n_networks)
    stop = threading.Event()  # set on Ctrl-C (or an error): every worker stops before its next step

    def one(child) -> np.ndarray:
        net = Network(mlp, init_params(mlp, a.shape[1], width, y.shape[1], np.random.default_rng(child)))
        for _ in range(steps):  # the core's steps, one call each: a stop is seen within one step
            if stop.is_set():
                return None
            net._core.train_step(a, y, learning_rate)
        return net.apply(b)

    workers = num_threads() if threads is None else _positive_int(threads, "threads")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, n_networks))
    try:
        outputs = np.stack(list(pool.map(one, children)))
    except BaseException:  # KeyboardInterrupt in this thread, or a worker's error (a diverging step)
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    mean = outputs.mean(axis=0)
    centred = outputs - mean
    cov = np.einsum("nik,njk->ij", centred, centred) / (max(n_networks - 1, 1) * outputs.shape[2])
    return EnsemblePrediction(outputs, mean, cov)
