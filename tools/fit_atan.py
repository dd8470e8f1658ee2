"""Fit the polynomial behind the SIMD atan in src/activation/math.rs.

atan(u) = u * h(u^2) for |u| <= tan(pi/8); h is interpolated at Chebyshev nodes of
z = u^2 in [0, tan(pi/8)^2] in 60-digit arithmetic, converted to monomial coefficients
for Horner's rule, and checked in the target precision. Run: python tools/fit_atan.py
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 60
ZMAX = mp.tan(mp.pi / 8) ** 2


def h(z):
    if z == 0:
        return mp.mpf(1)
    s = mp.sqrt(z)
    return mp.atan(s) / s


def fit(degree):
    nodes = [ZMAX / 2 * (1 - mp.cos(mp.pi * (k + mp.mpf(1) / 2) / (degree + 1))) for k in range(degree + 1)]
    # Solve the Vandermonde system in high precision: fine at these small degrees.
    a = mp.matrix([[z ** j for j in range(degree + 1)] for z in nodes])
    b = mp.matrix([h(z) for z in nodes])
    return [c for c in mp.lu_solve(a, b)]


def max_rel_error(coeffs, dtype):
    u = np.linspace(-float(mp.sqrt(ZMAX)), float(mp.sqrt(ZMAX)), 20001).astype(dtype)
    z = u * u
    acc = np.zeros_like(u)
    for c in reversed([dtype(float(c)) for c in coeffs]):
        acc = acc * z + c
    approx = u * acc
    exact = np.array([float(mp.atan(mp.mpf(float(v)))) for v in u])
    nz = exact != 0
    return np.max(np.abs(approx[nz] - exact[nz]) / np.abs(exact[nz]))


for name, dtype, degree in [("f64", np.float64, 10), ("f32", np.float32, 4)]:
    coeffs = fit(degree)
    print(f"// {name}: degree {degree} in u^2, max relative error {max_rel_error(coeffs, dtype):.2e}")
    print(", ".join(repr(float(c)) for c in coeffs))
