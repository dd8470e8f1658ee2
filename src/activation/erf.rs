//! phi(x) = a erf(b x) + c (Williams 1997). With u, v scaled by b and p_i = 1 + 2 b^2 q_ii:
//!   Sigma-hat = a^2 (2/pi) arcsin(2 b^2 q12 / sqrt(p1 p2)) + c^2,
//!   Sigma-dot = a^2 b^2 (4/pi) / sqrt(p1 p2 - 4 b^4 q12^2).
//! arcsin(s/r) is evaluated as atan2(s, sqrt((r - s)(r + s))), accurate at |s| -> r.

use super::Dual;
use super::math::atan2;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Erf<T> {
    b2: T,
    /// a^2 (2/pi)
    nngp_scale: T,
    /// c^2
    shift: T,
    /// a^2 b^2 (4/pi)
    dot_scale: T,
}

impl<T: Real> Erf<T> {
    pub fn new(a: f64, b: f64, c: f64) -> Self {
        let two_over_pi = 2.0 / std::f64::consts::PI;
        Erf {
            b2: T::from_f64(b * b),
            nngp_scale: T::from_f64(a * a * two_over_pi),
            shift: T::from_f64(c * c),
            dot_scale: T::from_f64(a * a * b * b * 2.0 * two_over_pi),
        }
    }
}

impl<T: Real> Dual<T> for Erf<T> {
    /// sqrt(p) = sqrt(1 + 2 b^2 q): sqrt(p1 p2) is a product per entry.
    #[inline(always)]
    fn aux(&self, q: T) -> T {
        (T::ONE + T::from_f64(2.0) * self.b2 * q).sqrt()
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, _q11: T, _q22: T, aux1: T, aux2: T) -> (T, T) {
        let s = T::from_f64(2.0) * self.b2 * q12;
        let r = aux1 * aux2;
        // r - |s| >= 1 by Cauchy-Schwarz, so the root never vanishes.
        let root = ((r - s) * (r + s)).sqrt();
        (M::mul_add(self.nngp_scale, atan2::<T, M>(s, root), self.shift), self.dot_scale / root)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        let s = T::from_f64(2.0) * self.b2 * q;
        // p^2 - s^2 = (1 + s)^2 - s^2 = 1 + 2 s
        let root = (T::ONE + T::from_f64(2.0) * s).sqrt();
        (M::mul_add(self.nngp_scale, atan2::<T, M>(s, root), self.shift), self.dot_scale / root)
    }
}

/// (phi(x), phi'(x)) = (a erf(b x) + c, a b (2/sqrt(pi)) exp(-(b x)^2)).
pub fn phi(a: f64, b: f64, c: f64, x: f64) -> (f64, f64) {
    (a * libm::erf(b * x) + c, a * b * std::f64::consts::FRAC_2_SQRT_PI * (-(b * x) * (b * x)).exp())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2};
    use super::*;

    fn check(a: f64, b: f64, c: f64) {
        let phi = move |x: f64| a * libm::erf(b * x) + c;
        let dphi = move |x: f64| a * b * 2.0 / std::f64::consts::PI.sqrt() * (-(b * x) * (b * x)).exp();
        check_dual(
            Erf::<f64>::new(a, b, c),
            |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
            |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
            1e-9,
        );
    }

    #[test]
    fn erf_family_matches_quadrature() {
        check(1.0, 1.0, 0.0);
        check(0.5, 1.0 / 2.4020563531719796, 0.5);
        check(2.0, 0.3, -0.7);
    }
}
