"""The demo's figures as functions returning matplotlib ``Figure`` objects (no pyplot state,
so they work in scripts and notebooks alike). Needs matplotlib: ``pip install ntkfast[plot]``.

    from ntkfast import demo, plot
    fig = plot.circle_convergence(demo.circle_convergence(mlp, [64, 256, 1024], n_samples=8))
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["circle_convergence", "training_dynamics", "spectrum", "lazy_training", "close"]


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.15 + 0.7 * i / max(n - 1, 1)) for i in range(n)]


def circle_convergence(result) -> Figure:
    """Empirical NTKs of random networks on the unit circle against the analytic NTK (median over
    networks, 25-75% band), and the median error against width on log-log axes with its
    interquartile range, the fitted slope and the O(1/sqrt(width)) reference. Medians: the mean of
    a few networks follows the unluckiest one."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for width, color in zip(result.widths, _colors(len(result.widths))):
        samples = result.samples[width]
        low, median, high = np.quantile(samples, [0.25, 0.5, 0.75], axis=0)
        left.plot(result.angles, median, color=color, lw=1.2, label=f"width {width}")
        left.fill_between(result.angles, low, high, color=color, alpha=0.2, lw=0)
    left.plot(result.angles, result.analytic, color="black", lw=2, ls="--", label="infinite width")
    left.set(xlabel="angle γ of x = (cos γ, sin γ)", ylabel="Θ(x₀, x)",
             title="Empirical NTK (median and 25–75% band over networks)")
    left.legend(fontsize=8)
    widths = np.array(result.widths, dtype=float)
    medians = result.median_errors()
    low, high = result.error_quartiles()
    right.errorbar(widths, medians, yerr=[medians - low, high - medians], fmt="o-", color="tab:blue", capsize=3,
                   label="median relative L2 error (bars: 25–75%)")
    # the reference slope through the medians' geometric centre, so that no single width anchors it
    centre = np.exp(np.mean(np.log(medians) + 0.5 * np.log(widths)))
    right.plot(widths, centre / np.sqrt(widths), "k--", lw=1, label="∝ 1/√width")
    slope = result.fitted_slope()
    if slope is not None:
        fit = np.polyfit(np.log(widths), np.log(medians), 1)
        right.plot(widths, np.exp(np.polyval(fit, np.log(widths))), color="tab:orange", lw=1,
                   label=f"fitted: ∝ width^{slope:.2f}")
    right.set(xscale="log", yscale="log", xlabel="width", ylabel="‖Θ_width − Θ_∞‖ / ‖Θ_∞‖",
              title="Convergence (median over networks)")
    right.set_xticks(widths, [f"{int(w)}" for w in widths])
    right.xaxis.set_minor_formatter(_no_labels())
    right.legend(fontsize=8)
    return fig


def _no_labels():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def training_dynamics(digits) -> Figure:
    """Train/test loss and test accuracy against time t = lr x steps, all by gradient descent with
    one learning rate: the analytic NTK's function-space descent (black: the infinite ensemble
    from f_0 = 0; thin coloured lines: from each network's own f_0) against the finite networks
    (markers). Solid lines are train, dashed test."""
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    c = digits.curves
    left.plot(c.t, c.train_loss, color="black", lw=1.5)
    left.plot(c.t, c.test_loss, color="black", lw=1.5, ls="--")
    right.plot(c.t, c.test_accuracy, color="black", lw=1.5)
    handles = [Line2D([], [], color="black", lw=1.5, label="analytic NTK, from f₀ = 0")]
    for run, color in zip(digits.runs, _colors(len(digits.runs))):
        left.plot(c.t, run.predicted_train_loss, color=color, lw=1, alpha=0.7)
        left.plot(c.t, run.predicted_test_loss, color=color, lw=1, ls="--", alpha=0.7)
        right.plot(c.t, run.predicted_test_accuracy, color=color, lw=1, alpha=0.7)
        left.plot(run.time, run.train_loss, "o", color=color, ms=5)
        left.plot(run.time, run.test_loss, "x", color=color, ms=6)
        right.plot(run.time, run.test_accuracy, "o", color=color, ms=5)
        own = f"analytic NTK, from the width-{run.width} net's f₀"
        handles += [Line2D([], [], color=color, lw=1, alpha=0.7, label=own),
                    Line2D([], [], color=color, marker="o", ls="none", ms=5, label=f"width-{run.width} network")]
    style = [Line2D([], [], color="gray", lw=1, label="lines: train (solid), test (dashed)"),
             Line2D([], [], color="gray", marker="o", ls="none", label="network: train (o), test (x)")]
    lr = getattr(digits, "learning_rate", None)
    step_note = "" if lr is None else f", lr = {lr:.3g}"
    left.set(xscale="log", yscale="log", xlabel=f"time t = lr × steps (gradient descent{step_note})",
             ylabel="0.5 · mean((f − y)²)", title=f"Digits, {digits.n_train} training images")
    right.set(xscale="log", xlabel="time t = lr × steps", ylabel="test accuracy", title="Test accuracy")
    left.legend(handles=handles + style, fontsize=7)
    right.legend(handles=handles, fontsize=7)
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
    line_times = digits.times if len(digits.times) == len(run.predicted_decay) else run.time
    for i in range(digits.top):
        right.plot(line_times, run.predicted_decay[:, i], color=colors[i], lw=1.5, label=f"v_{i + 1}")
        right.plot(run.time, run.residual_coefficients[:, i], "o", color=colors[i], ms=5)
    right.set(xscale="log", yscale="log", ylim=(1e-6, 2), xlabel="time t = lr × steps",
              ylabel="‖v_i · (f_t − y)‖ / ‖v_i · (f_0 − y)‖",
              title=f"Convergence along principal components (width {run.width})")
    right.legend(fontsize=7, title="lines: linearised; dots: network", title_fontsize=7)
    return fig


def lazy_training(sweep) -> Figure:
    """Parameter change, linearisation gap and kernel drift after training against the output
    scale alpha (one line per width) on log-log axes, with the 1/alpha slope of the theory."""
    fig = Figure(figsize=(17 if sweep.ensemble else 13, 4), layout="constrained")
    alphas = np.asarray(sweep.alphas, dtype=float)
    axes = fig.subplots(1, 4 if sweep.ensemble else 3)
    if sweep.ensemble:
        _ensemble_histogram(axes[3], sweep)
    for ax, (field, title) in zip(axes, (("param_change", "‖θ_t − θ_0‖ / ‖θ_0‖"),
                                                       ("linearization_gap", "max |f − f_lin| (training inputs)"),
                                                       ("kernel_drift", "‖Θ_t − Θ_0‖ / ‖Θ_0‖"))):
        for width, color in zip(sweep.widths, _colors(len(sweep.widths))):
            values = np.asarray(getattr(sweep, field)[width])
            ax.plot(alphas, values, "o-", color=color, label=f"width {width} (slope {sweep.slope(field, width):.2f})")
            ax.plot(alphas, values[0] / alphas, ls=":", color=color, lw=1)
        ax.set(xscale="log", yscale="log", xlabel="output scale α", title=title)
        ax.legend(fontsize=7, title="dotted: 1/α", title_fontsize=7)
    return fig


def _ensemble_histogram(ax, sweep) -> None:
    """One test output of trained finite networks (per width) over the predicted Gaussian density."""
    mean, std = sweep.ensemble_prediction
    values = np.concatenate(list(sweep.ensemble.values()))
    grid = np.linspace(min(values.min(), mean - 4 * std), max(values.max(), mean + 4 * std), 200)
    for (width, outputs), color in zip(sweep.ensemble.items(), _colors(len(sweep.ensemble))):
        ax.hist(outputs, bins=20, density=True, alpha=0.45, color=color, label=f"width {width} ({len(outputs)} nets)")
    ax.plot(grid, np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi)), color="black", lw=2,
            label="infinite width (predict)")
    ax.set(xlabel="f(x_test) at t = %g" % sweep.ensemble_time, ylabel="density", title="Trained ensembles")
    ax.legend(fontsize=7)


def close(fig: Figure) -> None:
    """Releases a figure's memory (Figures made here are not registered with pyplot)."""
    fig.clear()
