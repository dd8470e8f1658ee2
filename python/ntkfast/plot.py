"""The demo's figures as functions returning matplotlib ``Figure`` objects (no pyplot state,
so they work in scripts and notebooks alike). Needs matplotlib: ``pip install ntkfast[plot]``.

    from ntkfast import demo, plot
    fig = plot.circle_convergence(demo.circle_convergence(mlp, [64, 256, 1024], n_samples=8))
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["circle_convergence", "training_dynamics", "spectrum", "close"]


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.15 + 0.7 * i / max(n - 1, 1)) for i in range(n)]


def circle_convergence(result) -> Figure:
    """Empirical NTKs of random networks on the unit circle against the analytic NTK, and the
    error against width on log-log axes (with the O(1/sqrt(width)) slope)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for width, color in zip(result.widths, _colors(len(result.widths))):
        samples = result.samples[width]
        mean, std = samples.mean(axis=0), samples.std(axis=0)
        left.plot(result.angles, mean, color=color, lw=1.2, label=f"width {width}")
        left.fill_between(result.angles, mean - std, mean + std, color=color, alpha=0.2, lw=0)
    left.plot(result.angles, result.analytic, color="black", lw=2, ls="--", label="infinite width")
    left.set(xlabel="angle γ of x = (cos γ, sin γ)", ylabel="Θ(x₀, x)", title="Empirical NTK (mean ± std)")
    left.legend(fontsize=8)
    widths = np.array(result.widths, dtype=float)
    errors = np.array([result.errors[w].mean() for w in result.widths])
    spread = np.array([result.errors[w].std() for w in result.widths])
    right.errorbar(widths, errors, yerr=spread, fmt="o-", color="tab:blue", capsize=3, label="relative L2 error")
    right.plot(widths, errors[0] * np.sqrt(widths[0] / widths), "k--", lw=1, label="∝ 1/√width")
    right.set(xscale="log", yscale="log", xlabel="width", ylabel="‖Θ_width − Θ_∞‖ / ‖Θ_∞‖", title="Convergence")
    right.legend(fontsize=8)
    return fig


def training_dynamics(digits) -> Figure:
    """Train/test loss and test accuracy over time: analytic NTK gradient flow (black: the
    infinite ensemble from f_0 = 0; coloured lines: from each network's own f_0) against the finite
    networks trained by gradient descent (markers)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    c = digits.curves
    left.plot(c.t, c.train_loss, color="black", lw=1.5, label="NTK flow, train")
    left.plot(c.t, c.test_loss, color="black", lw=1.5, ls="--", label="NTK flow, test")
    right.plot(c.t, c.test_accuracy, color="black", lw=1.5, label="NTK flow, test")
    for run, color in zip(digits.runs, _colors(len(digits.runs))):
        left.plot(c.t, run.predicted_train_loss, color=color, lw=1, alpha=0.7)
        left.plot(c.t, run.predicted_test_loss, color=color, lw=1, ls="--", alpha=0.7)
        right.plot(c.t, run.predicted_test_accuracy, color=color, lw=1, alpha=0.7)
        left.plot(run.time, run.train_loss, "o", color=color, ms=5, label=f"width {run.width}, train")
        left.plot(run.time, run.test_loss, "x", color=color, ms=6, label=f"width {run.width}, test")
        right.plot(run.time, run.test_accuracy, "o", color=color, ms=5, label=f"width {run.width}, test")
    left.set(xscale="log", yscale="log", xlabel="time t = learning rate × steps", ylabel="0.5 · mean((f − y)²)",
             title=f"Digits, {digits.n_train} training images")
    right.set(xscale="log", xlabel="time t", ylabel="test accuracy", title="Test accuracy")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    return fig


def spectrum(digits) -> Figure:
    """The NTK spectrum (analytic, and each network's at initialisation: converging with width),
    and the residual's decay along the leading eigenvectors of the widest network's NTK: measured
    (markers) against |1 - lr lambda_i / N|^steps (lines), exact for its linearisation."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    values = digits.eigenvalues[digits.eigenvalues > 0]
    left.plot(np.arange(1, len(values) + 1), values, color="black", lw=2, ls="--", label="infinite width")
    for run, color in zip(digits.runs, _colors(len(digits.runs))):
        own = run.spectrum[run.spectrum > 0]
        left.plot(np.arange(1, len(own) + 1), own, color=color, lw=1.2, label=f"width {run.width} at init")
    left.set(xscale="log", yscale="log", xlabel="index i", ylabel="eigenvalue λ_i", title="NTK spectrum (train)")
    left.legend(fontsize=8)
    run = digits.runs[-1]
    colors = _colors(digits.top)
    for i in range(digits.top):
        right.plot(run.time, run.predicted_decay[:, i], color=colors[i], lw=1.5, label=f"v_{i + 1}")
        right.plot(run.time, run.residual_coefficients[:, i], "o", color=colors[i], ms=5)
    right.set(xscale="log", yscale="log", ylim=(1e-6, 2), xlabel="time t",
              ylabel="‖v_i · (f_t − y)‖ / ‖v_i · (f_0 − y)‖",
              title=f"Convergence along principal components (width {run.width})")
    right.legend(fontsize=7, title="lines: linearised; dots: network", title_fontsize=7)
    return fig


def close(fig: Figure) -> None:
    """Releases a figure's memory (Figures made here are not registered with pyplot)."""
    fig.clear()
