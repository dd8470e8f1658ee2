"""Monte Carlo kernels: empirical NNGP / NTK averaged over randomly initialised finite networks
(neural-tangents' ``monte_carlo_kernel_fn``), of an ``MLP`` or of any ``ntkfast.stax`` network."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ._arrays import as_seed_sequence
from .finite import MAX_WIDTH, Network, _float_inputs, _positive_int, init_params
from .models import check_mlp

__all__ = ["MonteCarloKernel", "monte_carlo_kernel"]


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
