"""Finite-width MLPs in plain NumPy, for Monte-Carlo checks of the analytic kernels.

Conventions of neural-tangents' Dense: "ntk": z = W_std/sqrt(fan_in) h @ W + b_std b with
W, b ~ N(0, 1); "standard": z = h @ W + b with W ~ N(0, W_std^2/fan_in), b ~ N(0, b_std^2).
The empirical NTK is the exact parameter-gradient inner product by backpropagation, and
`ntk_by_finite_differences` checks that on tiny nets.
"""

from __future__ import annotations

import numpy as np


class NumpyMLP:
    def __init__(self, depth, width, d, phi, dphi, W_std, b_std, parameterization="ntk", rng=None,
                 readout_W_std=None, readout_b_std="same"):
        self.phi, self.dphi, self.depth = phi, dphi, depth
        self.parameterization = parameterization
        self.stds = [(W_std, b_std)] * depth + [(W_std if readout_W_std is None else readout_W_std,
                                                b_std if readout_b_std == "same" else readout_b_std)]
        dims = [d] + [width] * depth + [1]
        self.params = []
        for (w_std, b), fan_in, fan_out in zip(self.stds, dims[:-1], dims[1:]):
            W = rng.standard_normal((fan_in, fan_out))
            bias = None if b is None else rng.standard_normal(fan_out)
            if parameterization == "standard":
                W *= w_std / np.sqrt(fan_in)
                bias = None if bias is None else bias * b
            self.params.append((W, bias))

    def _layer(self, l, h):
        (W, b), (w_std, b_std) = self.params[l], self.stds[l]
        if self.parameterization == "ntk":
            z = w_std / np.sqrt(h.shape[1]) * h @ W
            return z if b is None else z + b_std * b
        return h @ W if b is None else h @ W + b

    def forward(self, x):
        """Outputs (n,) and, per Dense layer, its input h and pre-activation z."""
        h, cache = x, []
        for l in range(self.depth + 1):
            z = self._layer(l, h)
            cache.append((h, z))
            h = self.phi(z) if l < self.depth else z
        return h[:, 0], cache

    def ntk(self, x1, x2):
        """Empirical NTK: sum over Dense layers of (weight-gradient + bias-gradient) inner products."""
        grads = []
        for x in (x1, x2):
            _, cache = self.forward(x)
            delta = np.ones((x.shape[0], 1))  # d f / d z of the readout
            per_layer = [None] * (self.depth + 1)
            for l in range(self.depth, -1, -1):
                h, z = cache[l]
                per_layer[l] = (h, delta)
                if l > 0:
                    W = self.params[l][0]
                    scale = self.stds[l][0] / np.sqrt(h.shape[1]) if self.parameterization == "ntk" else 1.0
                    delta = (delta @ (scale * W).T) * self.dphi(cache[l - 1][1])
            grads.append(per_layer)
        theta = 0.0
        for l in range(self.depth + 1):
            (h1, d1), (h2, d2) = grads[0][l], grads[1][l]
            w_std, b_std = self.stds[l]
            if self.parameterization == "ntk":
                c_w, c_b = w_std**2 / h1.shape[1], (0.0 if b_std is None else b_std**2)
            else:
                c_w, c_b = 1.0, (0.0 if b_std is None else 1.0)
            dd = d1 @ d2.T
            theta = theta + c_w * (h1 @ h2.T) * dd + c_b * dd
        return theta

    def ntk_by_finite_differences(self, x, eps=1e-6):
        """J J^T with J the central-difference Jacobian of the outputs w.r.t. every parameter."""
        columns = []
        for W, b in self.params:
            for arr in (W, b):
                if arr is None:
                    continue
                flat = arr.reshape(-1)
                for i in range(flat.size):
                    old = flat[i]
                    flat[i] = old + eps
                    up = self.forward(x)[0]
                    flat[i] = old - eps
                    down = self.forward(x)[0]
                    flat[i] = old
                    columns.append((up - down) / (2 * eps))
        jac = np.stack(columns, axis=1)
        return jac @ jac.T
