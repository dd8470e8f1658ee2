"""Full-batch gradient descent on 0.5 * mean((f - y)^2) and what it records, for every kind of
finite network (``Network``, ``ComposedNetwork`` and their linearisations): ``_train`` drives an
engine with ``apply(x)`` and ``train_step(x, y, learning_rate)`` (the loss before the step)."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Optional

import numpy as np


@dataclasses.dataclass
class TrainingHistory:
    """What full-batch gradient descent did.

    ``step`` are the recorded steps and ``time = learning_rate * step`` the matching gradient-flow
    time (as in ``ntkfast.predict``). ``train_loss`` is 0.5 * mean((f - y)^2) at every step
    0..steps; the rest are at the recorded steps: ``test_loss``, ``param_change``
    ||theta_t - theta_0|| / ||theta_0||, ``kernel_drift`` ||Theta_t - Theta_0||_F / ||Theta_0||_F
    (the empirical NTK on the training inputs; None for a linearised network) and
    ``linearization_gap`` max_i,k |f_k(x_i; theta_t) - g_k(x_i; theta_t)| over the training inputs,
    g the first-order Taylor expansion at theta_0 (one forward-mode pass per record; None for a
    linearised network, where it is 0): how far training has left the kernel regime.
    """

    step: np.ndarray
    time: np.ndarray
    train_loss: np.ndarray
    test_loss: Optional[np.ndarray]
    param_change: np.ndarray
    kernel_drift: Optional[np.ndarray]
    linearization_gap: Optional[np.ndarray] = None


def _learning_rate(learning_rate) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"learning_rate: must be a real number > 0, got {type(learning_rate).__name__}")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate: must be a finite number > 0, got {learning_rate!r}")
    return float(learning_rate)


def _steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps: must be an integer >= 0, got {steps!r} ({type(steps).__name__})")
    if steps < 0:
        raise ValueError(f"steps: must be >= 0, got {steps}")
    return int(steps)


# The most steps one call trains for: the history holds a loss per step (8 bytes each).
MAX_STEPS = 10**9


def _loss(core, x, y, name: str, learning_rate: float) -> float:
    """0.5 * mean((f(x) - y)^2), or ValueError naming learning_rate if it overflows (diverged)."""
    try:
        output = core.apply(x)
    except (ValueError, MemoryError) as e:
        message = str(e)
        if name != "x" and message.startswith("x: "):
            raise type(e)(f"{name}: {message[3:]}") from None  # the user's name for these inputs
        raise
    with np.errstate(over="ignore", invalid="ignore"):
        loss = 0.5 * np.mean((output - y) ** 2)
    if not np.isfinite(loss):
        raise _overflowed(f"the loss on {name} overflows", learning_rate)
    return float(loss)


def _overflowed(what: str, learning_rate: float) -> ValueError:
    """The divergence error when ``what`` (a loss, outputs) overflowed float64 during training."""
    return ValueError(f"learning_rate: training diverged ({what} float64) at learning_rate = {learning_rate}; "
                      "gradient descent on this loss is stable below "
                      "ntkfast.predict.max_learning_rate(ntk_train_train, y_train.size)")


def _train(core, x, y, learning_rate, steps, x_test, y_test, record_every, kernel_fn, initial_norm, change_fn,
           gap_fn=None):
    steps, learning_rate = _steps(steps), _learning_rate(learning_rate)
    if steps > MAX_STEPS:
        raise ValueError(f"steps: at most {MAX_STEPS} per call (the history keeps a loss per step), got {steps}")
    from .finite import _positive_int  # (finite imports this module)

    every = max(1, steps // 50) if record_every is None else _positive_int(record_every, "record_every")
    recorded = sorted(set(range(0, steps + 1, every)) | {steps})
    theta0 = kernel_fn() if kernel_fn is not None else None
    train_loss = np.empty(steps + 1)
    test_loss, change, drift, gap = [], [], [], []

    def record():
        if x_test is not None:
            test_loss.append(_loss(core, x_test, y_test, "x_test", learning_rate))
        change.append(change_fn() / initial_norm)
        if theta0 is not None:
            drift.append(np.linalg.norm(kernel_fn() - theta0) / np.linalg.norm(theta0))
        if gap_fn is not None:
            try:
                value = gap_fn()
            except ValueError as e:  # the outputs overflow: the parameters have blown up
                if "overflow" not in str(e):
                    raise
                value = np.inf
            if not np.isfinite(value):
                raise _overflowed("the outputs on x overflow", learning_rate)
            gap.append(value)

    for s in range(steps):
        if s in recorded:
            record()
        try:
            train_loss[s] = core.train_step(x, y, learning_rate)
        except ValueError as e:
            if str(e).startswith("learning_rate: training diverged"):
                # the core refused the step and kept the parameters: say when
                raise ValueError(f"{e} (at step {s} of {steps})") from None
            raise
    train_loss[steps] = _loss(core, x, y, "x", learning_rate)
    record()
    step = np.array(recorded)
    return TrainingHistory(step, step * learning_rate, train_loss,
                           np.array(test_loss) if x_test is not None else None, np.array(change),
                           np.array(drift) if theta0 is not None else None,
                           np.array(gap) if gap_fn is not None else None)
