"""The experiments of the demo (``ntkfast demo``), as functions returning plain results.

1. ``circle_convergence``: the empirical NTK of random networks converges to the analytic one as
   the width grows (Jacot et al. 2018, Fig. 1): Theta(x0, x) for x on the unit circle.
2. ``digits_dynamics``: training dynamics on scikit-learn's bundled handwritten digits: kernel
   gradient flow with the analytic NTK against real finite networks trained by gradient descent,
   and the convergence of the residual along the NTK's principal components.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence

import numpy as np

from . import predict
from ._progress import Progress
from .finite import Network, init_params
from .models import MLP


@dataclasses.dataclass
class CircleConvergence:
    angles: np.ndarray  # (P,)
    analytic: np.ndarray  # (P,) Theta(x0, x(angle))
    widths: list
    samples: dict  # width -> (S, P) empirical Theta(x0, x) of S networks
    errors: dict  # width -> (S,) relative L2 error over the circle, per network


def circle_convergence(mlp: MLP, widths: Sequence[int], n_samples: int, n_points: int = 100,
                       seed: int = 0) -> CircleConvergence:
    angles = np.linspace(-np.pi, np.pi, n_points)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x0 = np.array([[1.0, 0.0]])
    analytic = mlp.kernel(x0, circle, get="ntk")[0]
    samples, errors = {}, {}
    seeds = np.random.SeedSequence(seed)
    with Progress(len(widths) * n_samples, "1/3 empirical NTK on the unit circle") as bar:
        for width, child in zip(widths, seeds.spawn(len(widths))):
            rows = []
            for sample_seed in child.spawn(n_samples):
                net = Network(mlp, init_params(mlp, 2, width, 1, np.random.default_rng(sample_seed)))
                rows.append(net.ntk(x0, circle)[0])
                bar.update()
            samples[width] = np.array(rows)
            errors[width] = np.linalg.norm(samples[width] - analytic, axis=1) / np.linalg.norm(analytic)
    return CircleConvergence(angles, analytic, list(widths), samples, errors)


def load_digits_data(n_train: int, n_test: int, seed: int = 0):
    """scikit-learn's bundled 8x8 digits (no download): pixels scaled to [0, 1] and each image
    centred and normalised to norm sqrt(64) (so the input kernel x.x'/d is a cosine), one-hot
    targets minus their mean 0.1."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data.astype(np.float64) / 16.0
    x = x - x.mean(axis=1, keepdims=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(x.shape[1])
    y = np.eye(10)[data.target] - 0.1
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:n_train], order[n_train:n_train + n_test]
    return x[train], y[train], x[test], y[test], data.target[train], data.target[test]


@dataclasses.dataclass
class NetworkRun:
    width: int
    time: np.ndarray  # gradient-flow time at each recorded step
    train_loss: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    train_accuracy: np.ndarray
    # along the leading eigenvectors v_i of this network's own NTK at initialisation:
    residual_coefficients: np.ndarray  # (R, top): ||v_i . (f_t - y)|| / ||v_i . (f_0 - y)|| (norm over outputs)
    predicted_decay: np.ndarray  # (R, top): |1 - lr lambda_i / N|^steps, exact for the linearised network
    spectrum: np.ndarray  # eigenvalues of its NTK at initialisation, descending
    param_change: float
    kernel_drift: float
    seconds: float
    # the analytic NTK's gradient flow started from this network's own initial outputs
    predicted_train_loss: np.ndarray  # on DigitsDynamics.times
    predicted_test_loss: np.ndarray
    predicted_test_accuracy: np.ndarray


@dataclasses.dataclass
class DigitsDynamics:
    n_train: int
    n_test: int
    times: np.ndarray
    curves: predict.TrainingCurves  # analytic NTK gradient flow
    eigenvalues: np.ndarray  # descending
    top: int
    decay: np.ndarray  # (T, top) exp(-lambda_i t / N) for the leading eigenvectors
    runs: list
    ntk_accuracy: float  # converged NTK regression (t = inf)
    nngp_accuracy: float
    kernel_seconds: float


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


def digits_dynamics(mlp: MLP, n_train: int, n_test: int, widths: Sequence[int], steps: int, n_records: int = 12,
                    top: int = 5, seed: int = 0) -> DigitsDynamics:
    x, y, xt, yt, labels, test_labels = load_digits_data(n_train, n_test, seed)
    start = time.perf_counter()
    k = mlp.kernel(x)
    kt = mlp.kernel(xt, x)
    kernel_seconds = time.perf_counter() - start
    n = y.size
    lr = 0.5 * predict.max_learning_rate(k.ntk, n)  # stable for the finite nets too (their NTK is close)
    t_max = lr * steps
    times = np.geomspace(lr, t_max, 60)
    curves = predict.training_curves(k.ntk, y, times, k_test_train=kt.ntk, y_test=yt)
    flow = predict.GradientFlow(k.ntk, y)
    eigenvalues = flow.eigenvalues[::-1]
    decay = np.exp(-np.maximum(eigenvalues[:top], 0)[None, :] * times[:, None] / n)
    ntk_accuracy = _accuracy(mlp.predict(x, y, xt, get="ntk"), test_labels)
    nngp_accuracy = _accuracy(mlp.predict(x, y, xt, get="nngp"), test_labels)

    record_steps = np.unique(np.geomspace(1, steps, n_records).astype(int))
    runs = []
    with Progress(len(widths) * len(record_steps), "2/3 training finite networks on digits") as bar:
        for i, width in enumerate(widths):
            begin = time.perf_counter()
            net = mlp.init(x.shape[1], width=width, out_dim=10, seed=seed + 1 + i)
            theta0 = net.ntk(x)
            own_values, own_vectors = np.linalg.eigh(theta0)
            own_values, leading = own_values[::-1], own_vectors[:, ::-1][:, :top]
            f0, ft0 = net.apply(x), net.apply(xt)
            c0 = np.linalg.norm(leading.T @ (f0 - y), axis=1)
            pred_train = flow.train(times, f0)
            pred_test = flow.test(times, kt.ntk, f0, ft0)
            predicted = (0.5 * np.mean((pred_train - y) ** 2, axis=(1, 2)), 0.5 * np.mean((pred_test - yt) ** 2, axis=(1, 2)),
                         np.mean(np.argmax(pred_test, axis=2) == test_labels[None], axis=1))
            hist = {"time": [], "train_loss": [], "test_loss": [], "test_acc": [], "train_acc": [], "coef": []}
            done = 0
            for target in record_steps:
                net.train(x, y, learning_rate=lr, steps=int(target - done), track_kernel=False, record_every=10**9)
                done = int(target)
                f, ft = net.apply(x), net.apply(xt)
                hist["time"].append(lr * done)
                hist["train_loss"].append(0.5 * np.mean((f - y) ** 2))
                hist["test_loss"].append(0.5 * np.mean((ft - yt) ** 2))
                hist["train_acc"].append(_accuracy(f, labels))
                hist["test_acc"].append(_accuracy(ft, test_labels))
                hist["coef"].append(np.linalg.norm(leading.T @ (f - y), axis=1) / c0)
                bar.update()
            drift = float(np.linalg.norm(net.ntk(x) - theta0) / np.linalg.norm(theta0))
            start_params = mlp.init(x.shape[1], width=width, out_dim=10, seed=seed + 1 + i)
            change = float(net._core.distance(start_params._core) / start_params._core.norm())
            runs.append(NetworkRun(width, np.array(hist["time"]), np.array(hist["train_loss"]),
                                   np.array(hist["test_loss"]), np.array(hist["test_acc"]), np.array(hist["train_acc"]),
                                   np.array(hist["coef"]),
                                   np.abs(1 - lr * own_values[None, :top] / n) ** record_steps[:, None], own_values,
                                   change, drift, time.perf_counter() - begin, *predicted))
    return DigitsDynamics(n_train, n_test, times, curves, eigenvalues, top, decay, runs, ntk_accuracy, nngp_accuracy,
                          kernel_seconds)


def write_report(out_dir, mlp: MLP, circle: CircleConvergence, digits: DigitsDynamics, figures: Optional[dict],
                 seconds: float) -> str:
    """A Markdown report of both experiments; returns its path."""
    import os

    lines = [
        "# ntkfast demo",
        "",
        f"Network: `{mlp!r}`. Total time {seconds:.1f} s.",
        "",
        "## 1. The empirical NTK converges to the analytic one as width grows",
        "",
        "Theta(x0, x) for x = (cos g, sin g) on the unit circle and x0 = (1, 0); relative L2 error of single",
        "random networks against the infinite-width NTK (mean over networks). Theory: O(1/sqrt(width)).",
        "",
        "| width | networks | relative error |",
        "|---|---|---|",
    ]
    for w in circle.widths:
        lines.append(f"| {w} | {len(circle.errors[w])} | {np.mean(circle.errors[w]):.4f} |")
    lines += [
        "",
        f"## 2. Training on handwritten digits ({digits.n_train} train, {digits.n_test} test images)",
        "",
        "Gradient flow with the analytic NTK (learning rate 1 on 0.5 mean((f - y)^2), time t = learning",
        "rate x steps) against finite networks trained by full-batch gradient descent from their own random",
        "initialisation. The ensemble of infinitely wide networks starts from f_0 = 0; for each finite network",
        "the analytic prediction from its own f_0 is given too (the lazy-training limit of that network).",
        f"Analytic kernels took {digits.kernel_seconds:.2f} s.",
        "",
        "| model | test accuracy | test loss | ‖θ_t − θ_0‖/‖θ_0‖ | NTK drift | analytic NTK from its f_0: accuracy |",
        "|---|---|---|---|---|---|",
        f"| NTK regression (t = inf) | {digits.ntk_accuracy:.3f} | | | |",
        f"| NNGP regression (t = inf) | {digits.nngp_accuracy:.3f} | | | |",
        f"| NTK gradient flow at t = {digits.times[-1]:.3g} | {digits.curves.test_accuracy[-1]:.3f} | "
        f"{digits.curves.test_loss[-1]:.4f} | | |",
    ]
    for run in digits.runs:
        lines.append(f"| network, width {run.width}, t = {run.time[-1]:.3g} | {run.test_accuracy[-1]:.3f} | "
                     f"{run.test_loss[-1]:.4f} | {run.param_change:.4f} | {run.kernel_drift:.4f} | "
                     f"{run.predicted_test_accuracy[-1]:.3f} |")
    lines += [
        "",
        "## 3. Convergence along the principal components",
        "",
        "The residual f_t - y of kernel gradient flow shrinks along eigenvector v_i of the NTK as",
        "exp(-lambda_i t / N) (the seeds' convergence along principal components); for gradient descent with",
        "learning rate lr, as |1 - lr lambda_i / N|^steps. Leading eigenvalues of the analytic training NTK: "
        + ", ".join(f"{v:.4g}" for v in digits.eigenvalues[:digits.top]) + "; of each network's NTK at",
        "initialisation: "
        + "; ".join(f"width {r.width}: " + ", ".join(f"{v:.4g}" for v in r.spectrum[:digits.top]) for r in digits.runs)
        + ".",
        "",
    ]
    if figures:
        lines += ["## Figures", ""] + [f"![{name}]({os.path.basename(path)})" for name, path in figures.items()]
    else:
        lines += ["(matplotlib is not installed: `pip install ntkfast[plot]` for the figures.)"]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run(out_dir: str = "ntkfast-demo", quick: bool = False) -> dict:
    """Runs both experiments, writes the figures (if matplotlib is installed) and the report."""
    import os

    start = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    mlp = MLP(3, "relu", W_std=2**0.5, b_std=0.1)
    if quick:
        circle = circle_convergence(mlp, [32, 128, 512], n_samples=3, n_points=60)
        digits = digits_dynamics(MLP(2, "relu", W_std=2**0.5, b_std=0.1), 200, 200, [128, 512], steps=200, n_records=6)
    else:
        circle = circle_convergence(mlp, [64, 256, 1024, 4096], n_samples=8)
        digits = digits_dynamics(MLP(2, "relu", W_std=2**0.5, b_std=0.1), 1000, 500, [256, 2048], steps=500)
    figures = None
    try:
        from . import plot
    except ImportError:
        plot = None
    if plot is not None:
        with Progress(3, "3/3 figures") as bar:
            figures = {}
            for name, draw in (("circle", plot.circle_convergence), ("dynamics", plot.training_dynamics),
                               ("spectrum", plot.spectrum)):
                fig = draw(circle if name == "circle" else digits)
                figures[name] = os.path.join(out_dir, f"{name}.png")
                fig.savefig(figures[name], dpi=110)
                plot.close(fig)
                bar.update()
    report = write_report(out_dir, mlp, circle, digits, figures, time.perf_counter() - start)
    return {"report": report, "figures": figures or {}, "circle": circle, "digits": digits}
