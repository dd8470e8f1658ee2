//! phi(x) = a exp(b x): Sigma-hat = a^2 exp(b^2 ((q11 + q22)/2 + q12)), Sigma-dot = b^2 Sigma-hat.
//! phi(x) = a exp(b x^2) (Gaussian, b < 1/(4 q) for finite moments): with p_i = 1 - 2 b q_ii and
//! D = sqrt(p1 p2 - 4 b^2 q12^2): Sigma-hat = a^2 / D, Sigma-dot = 4 a^2 b^2 q12 / D^3.

use super::Dual;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Exp<T> {
    a2: T,
    b2: T,
}

impl<T: Real> Exp<T> {
    pub fn new(a: f64, b: f64) -> Self {
        Exp { a2: T::from_f64(a * a), b2: T::from_f64(b * b) }
    }
}

impl<T: Real> Dual<T> for Exp<T> {
    #[inline(always)]
    fn aux(&self, _q: T) -> T {
        T::ZERO
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, q11: T, q22: T, _aux1: T, _aux2: T) -> (T, T) {
        let k = self.a2 * (self.b2 * (T::from_f64(0.5) * (q11 + q22) + q12)).exp();
        (k, self.b2 * k)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        let k = self.a2 * (T::from_f64(2.0) * self.b2 * q).exp();
        (k, self.b2 * k)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Gaussian<T> {
    a2: T,
    b: T,
    /// 2 |b|
    two_abs_b: T,
    /// 4 a^2 b^2
    dot_scale: T,
}

impl<T: Real> Gaussian<T> {
    pub fn new(a: f64, b: f64) -> Self {
        Gaussian {
            a2: T::from_f64(a * a),
            b: T::from_f64(b),
            two_abs_b: T::from_f64(2.0 * b.abs()),
            dot_scale: T::from_f64(4.0 * a * a * b * b),
        }
    }
}

impl<T: Real> Dual<T> for Gaussian<T> {
    /// sqrt(1 - 2 b q), so that sqrt(p1 p2) is a product (NaN where the moment diverges,
    /// which the diagonal recursion reports).
    #[inline(always)]
    fn aux(&self, q: T) -> T {
        (T::ONE - T::from_f64(2.0) * self.b * q).sqrt()
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, _q11: T, _q22: T, aux1: T, aux2: T) -> (T, T) {
        let r = aux1 * aux2;
        let s = self.two_abs_b * q12;
        let det = ((r - s) * (r + s)).sqrt();
        let inv = T::ONE / det;
        (self.a2 * inv, self.dot_scale * q12 * inv * inv * inv)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        // p^2 - 4 b^2 q^2 = 1 - 4 b q
        let det = (T::ONE - T::from_f64(4.0) * self.b * q).sqrt();
        let inv = T::ONE / det;
        (self.a2 * inv, self.dot_scale * q * inv * inv * inv)
    }
}

/// (phi(x), phi'(x)) for Exp: a exp(b x).
pub fn phi_exp(a: f64, b: f64, x: f64) -> (f64, f64) {
    let e = (b * x).exp();
    (a * e, a * b * e)
}

/// (phi(x), phi'(x)) for Gaussian: a exp(b x^2).
pub fn phi_gaussian(a: f64, b: f64, x: f64) -> (f64, f64) {
    let e = (b * x * x).exp();
    (a * e, 2.0 * a * b * x * e)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2};
    use super::*;

    #[test]
    fn exp_matches_quadrature() {
        let (a, b) = (0.7, 0.5);
        let phi = move |x: f64| a * (b * x).exp();
        let dphi = move |x: f64| a * b * (b * x).exp();
        check_dual(
            Exp::<f64>::new(a, b),
            |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
            |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
            1e-9,
        );
    }

    #[test]
    fn gaussian_matches_quadrature() {
        for (a, b) in [(1.0, -1.0), (1.4, -0.3), (0.9, 0.02)] {
            let phi = move |x: f64| a * (b * x * x).exp();
            let dphi = move |x: f64| 2.0 * a * b * x * (b * x * x).exp();
            check_dual(
                Gaussian::<f64>::new(a, b),
                |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
                |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
                1e-8,
            );
        }
    }
}
