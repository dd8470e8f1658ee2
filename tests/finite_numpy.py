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


def sample_kernels(x, depth, width, phi, dphi, W_std, b_std, parameterization="ntk", n_samples=1, rng=None,
                   chunk=64, params=None):
    """Kernels of ``n_samples`` independent networks of this module's layout (out_dim 1, readout
    with the hidden layers' scales), drawn in batches: the empirical NTK, and the NNGP sample
    W_std^2 h.h' / width + b_std^2 (the readout's expected f(x) f(x'), given the last hidden layer).
    Arrays of shape (n_samples, n, n). ``params`` (stacked (W, b) per layer, as drawn here) replaces
    the draws, for checking this against ``NumpyMLP``."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    dims = [d] + [width] * depth + [1]
    c_b = 0.0 if b_std is None else (b_std**2 if parameterization == "ntk" else 1.0)
    nngp, ntk = [], []
    for start in range(0, n_samples, chunk):
        s = min(chunk, n_samples - start)
        if params is None:
            layers = []
            for fan_in, fan_out in zip(dims[:-1], dims[1:]):
                w = rng.standard_normal((s, fan_in, fan_out))
                b = None if b_std is None else rng.standard_normal((s, 1, fan_out))
                if parameterization == "standard":
                    w *= W_std / np.sqrt(fan_in)
                    b = None if b is None else b * b_std
                layers.append((w, b))
        else:
            layers = [(w[start:start + s], None if b is None else b[start:start + s]) for w, b in params]
        scale = [W_std / np.sqrt(fan_in) if parameterization == "ntk" else 1.0 for fan_in in dims[:-1]]
        h, cache = np.broadcast_to(x, (s, n, d)), []
        for l, (w, b) in enumerate(layers):
            z = scale[l] * h @ w
            if b is not None:
                z = z + (b_std * b if parameterization == "ntk" else b)
            cache.append((h, z))
            h = phi(z) if l < depth else z
        last = cache[depth][0]
        nngp.append(W_std**2 * last @ last.transpose(0, 2, 1) / last.shape[2] + (0.0 if b_std is None else b_std**2))
        delta = np.ones((s, n, 1))
        theta = 0.0
        for l in range(depth, -1, -1):
            h_in = cache[l][0]
            c_w = W_std**2 / h_in.shape[2] if parameterization == "ntk" else 1.0
            dd = delta @ delta.transpose(0, 2, 1)
            theta = theta + c_w * (h_in @ h_in.transpose(0, 2, 1)) * dd + c_b * dd
            if l > 0:
                delta = (delta @ (scale[l] * layers[l][0]).transpose(0, 2, 1)) * dphi(cache[l - 1][1])
        ntk.append(theta)
    return np.concatenate(nngp), np.concatenate(ntk)


# ---------------------------------------------------------------------------------------------
# Every activation ntkfast knows, with phi and phi' written here from their definitions (the
# papers and libraries they come from), not from the core's code. A spec is what ntkfast.MLP takes.

def _activations():
    from scipy.special import erf, expit, ndtr

    from ntkfast import activations as A

    selu_alpha, selu_scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946  # Klambauer et al.
    sqrt_2_pi = np.sqrt(2 / np.pi)

    def gelu_tanh(z):  # Hendrycks & Gimpel's tanh approximation
        return 0.5 * z * (1 + np.tanh(sqrt_2_pi * (z + 0.044715 * z**3)))

    def gelu_tanh_prime(z):
        t = np.tanh(sqrt_2_pi * (z + 0.044715 * z**3))
        return 0.5 * (1 + t) + 0.5 * z * (1 - t**2) * sqrt_2_pi * (1 + 3 * 0.044715 * z**2)

    def abrelu(a, b):
        return lambda z: np.where(z < 0, a * z, b * z), lambda z: np.where(z < 0, a, b) + 0 * z

    def erf_affine(a, b, c):
        return lambda z: a * erf(b * z) + c, lambda z: a * b * 2 / np.sqrt(np.pi) * np.exp(-(b * z) ** 2)

    def monomial(k):
        return lambda z: z**k, (lambda z: k * z ** (k - 1)) if k > 0 else np.zeros_like

    def rectified(k):
        # (z >= 0) z^k: degree 0 is the step function
        return (lambda z: np.where(z >= 0, z**k, 0.0)), ((lambda z: np.where(z >= 0, k * z ** (k - 1), 0.0)) if k > 0
                                                         else np.zeros_like)

    def silu(z):
        return z * expit(z)

    def silu_prime(z):
        return expit(z) * (1 + z * (1 - expit(z)))

    sig24 = 2.4020563531719796  # neural-tangents' Sigmoid_like: 0.5 erf(x / 2.402...) + 0.5
    table = {
        "relu": ("relu", *abrelu(0.0, 1.0)),
        "leaky_relu": (A.LeakyRelu(0.2), *abrelu(0.2, 1.0)),
        "abs": ("abs", np.abs, np.sign),
        "abrelu": (A.ABRelu(0.7, -1.3), *abrelu(0.7, -1.3)),
        "erf": ("erf", *erf_affine(1.0, 1.0, 0.0)),
        "erf_affine": (A.Erf(1.4, 0.6, -0.3), *erf_affine(1.4, 0.6, -0.3)),
        "sigmoid_like": ("sigmoid_like", *erf_affine(0.5, 1 / sig24, 0.5)),
        "gelu": ("gelu", lambda z: z * ndtr(z), lambda z: ndtr(z) + z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)),
        "sign": ("sign", np.sign, np.zeros_like),
        "identity": ("identity", lambda z: 1.0 * z, np.ones_like),
        "sin": (A.Sin(1.2, 0.7, 0.3), lambda z: 1.2 * np.sin(0.7 * z + 0.3), lambda z: 0.84 * np.cos(0.7 * z + 0.3)),
        "cos": (A.Cos(0.8, 1.3, 0.2), lambda z: 0.8 * np.cos(1.3 * z + 0.2), lambda z: -1.04 * np.sin(1.3 * z + 0.2)),
        # Rbf(gamma): sqrt(2) sin(sqrt(2 gamma) z + pi/4), whose NNGP map is exp(-gamma |u - v|^2)
        "rbf": (A.Rbf(0.7), lambda z: np.sqrt(2) * np.sin(np.sqrt(1.4) * z + np.pi / 4),
                lambda z: np.sqrt(2) * np.sqrt(1.4) * np.cos(np.sqrt(1.4) * z + np.pi / 4)),
        "gabor": ("gabor", lambda z: np.exp(-z * z) * np.sin(z),
                  lambda z: np.exp(-z * z) * (np.cos(z) - 2 * z * np.sin(z))),
        "exp": (A.Exp(0.5, 0.3), lambda z: 0.5 * np.exp(0.3 * z), lambda z: 0.15 * np.exp(0.3 * z)),
        "gaussian": (A.Gaussian(1.2, -0.5), lambda z: 1.2 * np.exp(-0.5 * z * z),
                     lambda z: -1.2 * z * np.exp(-0.5 * z * z)),
        **{f"monomial{k}": (A.Monomial(k), *monomial(k)) for k in range(6)},
        **{f"rectified_monomial{k}": (A.RectifiedMonomial(k), *rectified(k)) for k in range(11)},
        "tanh": ("tanh", np.tanh, lambda z: 1 - np.tanh(z) ** 2),
        "softplus": ("softplus", lambda z: np.logaddexp(0, z), expit),
        "silu": ("silu", silu, silu_prime),
        "swish": ("swish", silu, silu_prime),
        "sigmoid": ("sigmoid", expit, lambda z: expit(z) * (1 - expit(z))),
        "gelu_tanh": ("gelu_tanh", gelu_tanh, gelu_tanh_prime),
        "elu": ("elu", lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
                lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))),
        "selu": ("selu", lambda z: selu_scale * np.where(z > 0, z, selu_alpha * np.expm1(np.minimum(z, 0))),
                 lambda z: selu_scale * np.where(z > 0, 1.0, selu_alpha * np.exp(np.minimum(z, 0)))),
        # Python callables: with phi', and with phi' left to the core's central differences
        "python": (A.Numerical(lambda z: np.sin(z) + 0.3 * z, lambda z: np.cos(z) + 0.3),
                   lambda z: np.sin(z) + 0.3 * z, lambda z: np.cos(z) + 0.3),
        "python_no_derivative": (A.Numerical(lambda z: np.arctan(2 * z)),
                                 lambda z: np.arctan(2 * z), lambda z: 2 / (1 + 4 * z * z)),
    }
    return table


ACTIVATIONS = _activations()
# phi' that the core takes by central differences (about 1e-10 relative), not exactly
DERIVATIVE_BY_DIFFERENCES = {"python_no_derivative"}
