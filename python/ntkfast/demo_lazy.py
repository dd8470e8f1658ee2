"""The demo's lazy-training experiment (Chizat, Oyallon & Bach 2018, "On lazy training"): centred
networks f = alpha (fbar - fbar_0) trained on the digits with learning rate eta / alpha^2, one
function-space time for every alpha. Theory: the parameter change, the gap to the linearisation
and the kernel drift all fall like 1/alpha, and so does beta / sigma^2, the ratio that bounds the
gap (``ntkfast.validity``); a wider network starts lower, as width has the same effect."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np


@dataclasses.dataclass
class LazySweep:
    """Per width and output scale alpha (``values[width][i]`` for ``alphas[i]``): the relative
    parameter change, linearisation gap and kernel drift after training, and beta, sigma_min of the
    Jacobian and beta / sigma^2 at initialisation."""

    mlp: object
    n_train: int
    steps: int
    alphas: list
    widths: list
    param_change: dict
    linearization_gap: dict
    kernel_drift: dict
    beta: dict
    sigma_min: dict
    beta_over_sigma2: dict
    # trained ensembles against the Gaussian of the theory: per width, one test output of each
    # network; and the predicted (mean, standard deviation) of that output at the same time
    ensemble: dict = dataclasses.field(default_factory=dict)
    ensemble_prediction: tuple = (0.0, 0.0)
    ensemble_time: float = 0.0

    def slope(self, field: str, width: int) -> float:
        """The fitted slope of log(field) against log(alpha) (theory: -1)."""
        return float(np.polyfit(np.log(self.alphas), np.log(getattr(self, field)[width]), 1)[0])


def lazy_sweep(mlp, x: np.ndarray, y: np.ndarray, widths: Sequence[int], alphas: Sequence[float], steps: int,
               seed: int = 0) -> LazySweep:
    """Trains a centred network per (width, alpha) from one initialisation per width, for
    ``steps`` steps of learning rate eta / alpha^2, eta half the largest stable rate of the
    unscaled network's NTK on ``x``."""
    fields = {name: {} for name in ("param_change", "linearization_gap", "kernel_drift", "beta", "sigma_min",
                                    "beta_over_sigma2")}
    for width in widths:
        unscaled = mlp.init(x.shape[1], width=width, out_dim=y.shape[1], seed=seed)
        eta = y.size / np.linalg.eigvalsh(unscaled.ntk(x, trace=False).transpose(0, 2, 1, 3).reshape(y.size, -1))[-1]
        for values in fields.values():
            values[width] = []
        for alpha in alphas:
            net = mlp.init(x.shape[1], width=width, out_dim=y.shape[1], seed=seed, output_scale=alpha, centered=True)
            valid = net.validity(x, y)
            history = net.train(x, y, learning_rate=eta / alpha**2, steps=steps, record_every=steps,
                                track_kernel=True)
            for name, value in (("param_change", history.param_change[-1]),
                                ("linearization_gap", history.linearization_gap[-1]),
                                ("kernel_drift", history.kernel_drift[-1]), ("beta", valid.beta),
                                ("sigma_min", valid.sigma_min), ("beta_over_sigma2", valid.beta_over_sigma2)):
                fields[name][width].append(float(value))
    return LazySweep(mlp, x.shape[0], steps, list(alphas), list(widths), **fields)


def ensembles(sweep: LazySweep, mlp, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, widths: Sequence[int],
              n_networks: int, t: float, learning_rate: float, seed: int = 0) -> None:
    """Adds to ``sweep`` the first output on the first test input of ``n_networks`` networks per
    width trained to time ``t`` (``ntkfast.monte_carlo_predict``), and the infinite-width
    prediction's mean and standard deviation for it (``MLP.predict(..., compute_cov=True)``)."""
    from .monte_carlo import monte_carlo_predict

    for width in widths:
        trained = monte_carlo_predict(mlp, x, y, x_test[:1], width=width, n_networks=n_networks, t=t,
                                      learning_rate=learning_rate, seed=seed)
        sweep.ensemble[width] = trained.outputs[:, 0, 0]
    predicted = mlp.predict(x, y, x_test[:1], t=t, compute_cov=True)
    sweep.ensemble_prediction = (float(np.asarray(predicted.mean)[0, 0]), float(np.sqrt(predicted.cov[0, 0])))
    sweep.ensemble_time = float(t)


def report_lines(sweep: LazySweep) -> list:
    """The report's section on it."""
    lines = [
        f"## 4. Lazy training: the output scale alpha ({sweep.n_train} digits)",
        "",
        f"Network: `{sweep.mlp!r}`, centred and scaled: f = alpha (fbar - fbar_0) (Chizat, Oyallon & Bach",
        f"2018). Each is trained for {sweep.steps} steps of learning rate eta / alpha^2, one function-space time;",
        "theory: the parameter change, the gap to the linearisation at theta_0 and the kernel drift fall like",
        "1/alpha, and so does beta / sigma^2 (beta: the Jacobian's Lipschitz constant over the minimum-norm",
        "step, sigma: its least singular value), the ratio that bounds how far the network leaves its",
        "linearisation. Fitted slopes of log(value) against log(alpha):",
        "",
        "| width | param change | linearisation gap | kernel drift | beta / sigma^2 |",
        "|---|---|---|---|---|",
    ]
    for w in sweep.widths:
        lines.append(f"| {w} | {sweep.slope('param_change', w):.2f} | {sweep.slope('linearization_gap', w):.2f} | "
                     f"{sweep.slope('kernel_drift', w):.2f} | {sweep.slope('beta_over_sigma2', w):.2f} |")
    lines += ["", "| width | alpha | ‖θ_t − θ_0‖/‖θ_0‖ | linearisation gap | NTK drift | beta | sigma | "
                  "beta / sigma^2 |", "|---|---|---|---|---|---|---|---|"]
    for w in sweep.widths:
        for i, a in enumerate(sweep.alphas):
            lines.append(f"| {w} | {a:g} | {sweep.param_change[w][i]:.3g} | {sweep.linearization_gap[w][i]:.3g} | "
                         f"{sweep.kernel_drift[w][i]:.3g} | {sweep.beta[w][i]:.3g} | {sweep.sigma_min[w][i]:.3g} | "
                         f"{sweep.beta_over_sigma2[w][i]:.3g} |")
    if sweep.ensemble:
        mean, std = sweep.ensemble_prediction
        lines += ["", f"Trained ensembles against the theory's Gaussian (one output of one test digit at t = "
                  f"{sweep.ensemble_time:g}; `ntkfast.monte_carlo_predict` against `MLP.predict(compute_cov=True)`: "
                  f"mean {mean:.4f}, standard deviation {std:.4f}):", "",
                  "| width | networks | mean | standard deviation |", "|---|---|---|---|"]
        for w, values in sweep.ensemble.items():
            lines.append(f"| {w} | {len(values)} | {values.mean():.4f} | {values.std(ddof=1):.4f} |")
    return lines + [""]
