"""The output scale of finite networks: f(x) = alpha * (fbar_theta(x) - fbar_theta0(x)) when
centered, else alpha * fbar_theta(x) (Chizat, Oyallon & Bach 2018, "On lazy training").

Scaling the output by alpha scales the Jacobian by alpha and the empirical NTK by alpha^2, so
gradient descent with learning rate eta / alpha^2 follows one function-space trajectory for every
alpha while the parameters move ~1/alpha as far: training becomes lazy as alpha grows, as it does
with width. Centering subtracts the network's output at its initial parameters theta0, so that
f starts at 0 whatever alpha (otherwise its initial output grows like alpha).

Training the scaled network is training the unscaled one on other targets: a step on
0.5 * mean((alpha (fbar - fbar0) - y)^2) with learning rate eta moves theta by
-eta alpha^2 Jbar^T (fbar - (fbar0 + y / alpha)) / N, which is a step of the unscaled network with
learning rate eta alpha^2 towards the targets fbar0 + y / alpha; its loss is alpha^2 times the
unscaled one. ``Scale.engine`` wraps a network's unscaled apply and step so.
"""

from __future__ import annotations

import numbers
from typing import Callable, Optional

import numpy as np


def check_scale(output_scale, centered) -> tuple[float, bool]:
    """(alpha, centered) checked: alpha a finite number != 0, centered True or False."""
    if isinstance(output_scale, bool) or not isinstance(output_scale, numbers.Real):
        raise TypeError(f"output_scale: must be a real number, got {type(output_scale).__name__}")
    if not np.isfinite(output_scale) or output_scale == 0:
        raise ValueError(f"output_scale: must be finite and nonzero, got {output_scale!r}")
    if not isinstance(centered, (bool, np.bool_)):
        raise TypeError(f"centered: must be True or False, got {centered!r}")
    return float(output_scale), bool(centered)


class Scale:
    """alpha and centering of one network; ``initial(x)`` gives fbar_theta0(x) (needed when
    centered: the unscaled outputs at the initial parameters)."""

    def __init__(self, output_scale: float = 1.0, centered: bool = False,
                 initial: Optional[Callable[[np.ndarray], np.ndarray]] = None):
        self.alpha, self.centered = check_scale(output_scale, centered)
        if self.centered and initial is None:
            raise ValueError("centered: needs the network's initial outputs")
        self.initial = initial

    @property
    def trivial(self) -> bool:
        return self.alpha == 1.0 and not self.centered

    def outputs(self, raw: np.ndarray, x: np.ndarray, initial: Optional[np.ndarray] = None) -> np.ndarray:
        """alpha * (raw - fbar0(x)) or alpha * raw (``initial``: fbar0(x) if already known)."""
        if self.trivial:
            return raw
        out = raw - (self.initial(x) if initial is None else initial) if self.centered else raw.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            out *= self.alpha
        return self._finite(out, "outputs")

    def kernel(self, raw: np.ndarray) -> np.ndarray:
        """An empirical NTK of the unscaled network, scaled: alpha^2 Theta."""
        if self.alpha == 1.0:
            return raw
        with np.errstate(over="ignore", invalid="ignore"):
            return self._finite(raw * self.alpha * self.alpha, "empirical kernel")

    def _finite(self, values: np.ndarray, what: str) -> np.ndarray:
        if not np.isfinite(values).all():
            raise ValueError(f"output_scale: the {what} scaled by output_scale = {self.alpha} overflow float64 (the "
                             "unscaled network's are finite): use a smaller output_scale")
        return values

    def engine(self, raw_apply, raw_step, x: np.ndarray) -> "_Engine":
        """What ``finite._train`` drives, on the scaled network; x: the training inputs."""
        return _Engine(self, raw_apply, raw_step, x)

    def state(self) -> dict:
        return {"output_scale": self.alpha, "centered": self.centered}


class Scaled:
    """What a network with a ``Scale`` in ``_scale`` shows of it."""

    @property
    def output_scale(self) -> float:
        return self._scale.alpha

    @property
    def centered(self) -> bool:
        return self._scale.centered

    def _scale_repr(self) -> str:
        return "" if self._scale.trivial else f", output_scale={self.output_scale}, centered={self.centered}"


class _Engine:
    def __init__(self, scale: Scale, raw_apply, raw_step, x: np.ndarray):
        self.scale, self.raw_apply, self.raw_step = scale, raw_apply, raw_step
        self.x, self.initial = x, (scale.initial(x) if scale.centered else None)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.scale.outputs(self.raw_apply(x), x, self.initial if x is self.x else None)

    def train_step(self, x: np.ndarray, y: np.ndarray, learning_rate: float) -> float:
        s = self.scale
        if s.trivial:
            return self.raw_step(x, y, learning_rate)
        unscaled_rate = learning_rate * s.alpha * s.alpha
        if not np.isfinite(unscaled_rate):
            raise ValueError(f"learning_rate: learning_rate * output_scale^2 = {learning_rate} * {s.alpha}^2, the step "
                             "of the unscaled network, overflows float64: use a smaller learning_rate (lazy "
                             "training takes learning_rate ~ 1 / output_scale^2)")
        targets = y / s.alpha
        if s.centered:
            targets += self.initial if x is self.x else s.initial(x)
        try:
            loss = s.alpha * s.alpha * self.raw_step(x, targets, unscaled_rate)
        except ValueError as exc:
            if not str(exc).startswith("learning_rate: training diverged"):
                raise
            raise ValueError(f"learning_rate: training diverged at learning_rate = {learning_rate} with "
                             f"output_scale = {s.alpha} (a step of learning_rate * output_scale^2 = "
                             f"{unscaled_rate} on the unscaled network): {exc}") from None
        if not np.isfinite(loss):
            raise ValueError(f"output_scale: the loss scaled by output_scale^2 = {s.alpha * s.alpha} overflows float64 "
                             "(the unscaled network's is finite): use a smaller output_scale")
        return loss
