//! phi(x) = a sin(b x + c) (Cos is c + pi/2), with s = q11 + q22:
//!   Sigma-hat = a^2/2 [exp(b^2(q12 - s/2)) - exp(-b^2(q12 + s/2)) cos 2c],
//!   Sigma-dot = a^2 b^2/2 [exp(b^2(q12 - s/2)) + exp(-b^2(q12 + s/2)) cos 2c].

use super::Dual;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Sin<T> {
    b2: T,
    half_a2: T,
    cos_2c: T,
}

impl<T: Real> Sin<T> {
    pub fn new(a: f64, b: f64, c: f64) -> Self {
        Sin { b2: T::from_f64(b * b), half_a2: T::from_f64(a * a / 2.0), cos_2c: T::from_f64((2.0 * c).cos()) }
    }

    #[inline(always)]
    fn combine(&self, same: T, opposite: T) -> (T, T) {
        let s1 = same.exp();
        let s2 = opposite.exp() * self.cos_2c;
        (self.half_a2 * (s1 - s2), self.half_a2 * self.b2 * (s1 + s2))
    }
}

impl<T: Real> Dual<T> for Sin<T> {
    #[inline(always)]
    fn aux(&self, _q: T) -> T {
        T::ZERO
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, q11: T, q22: T, _aux1: T, _aux2: T) -> (T, T) {
        let half_sum = T::from_f64(0.5) * (q11 + q22);
        self.combine(self.b2 * (q12 - half_sum), -self.b2 * (q12 + half_sum))
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        self.combine(T::ZERO, T::from_f64(-2.0) * self.b2 * q)
    }
}

/// (phi(x), phi'(x)) = (a sin(b x + c), a b cos(b x + c)).
pub fn phi(a: f64, b: f64, c: f64, x: f64) -> (f64, f64) {
    let (s, co) = (b * x + c).sin_cos();
    (a * s, a * b * co)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2};
    use super::*;

    #[test]
    fn sin_and_cos_match_quadrature() {
        for (a, b, c) in [(1.0, 1.0, 0.0), (1.3, 0.6, 0.4), (0.8, 1.1, std::f64::consts::FRAC_PI_2 + 0.2)] {
            let phi = move |x: f64| a * (b * x + c).sin();
            let dphi = move |x: f64| a * b * (b * x + c).cos();
            check_dual(
                Sin::<f64>::new(a, b, c),
                |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
                |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
                1e-9,
            );
        }
    }
}
