//! The exact GELU, phi(x) = x Phi(x) (Tsuchida et al. 2020), in neural-tangents' form. With
//! P = q11 q22, P1 = (q11 + 1)(q22 + 1), delta^2 = P1 - q12^2 and alpha = atan2(q12, delta):
//!   Sigma-hat = [(q12^2 + P delta^2) / (P1 delta) + q12 alpha] / (2 pi) + q12 / 4,
//!   Sigma-dot = q12 / (2 pi delta) (1/delta^2 + (1 - P)/P1 + 1) + 1/4 + alpha / (2 pi).

use super::Dual;
use super::math::atan2;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Gelu;

impl Gelu {
    #[inline(always)]
    fn from_delta<T: Real, M: MulAdd>(q12: T, prod: T, prod_plus_1: T, delta_sq: T) -> (T, T) {
        let quarter = T::from_f64(0.25);
        let inv_two_pi = T::from_f64(0.5 / std::f64::consts::PI);
        let delta = delta_sq.sqrt();
        let alpha = atan2::<T, M>(q12, delta);
        let ratio = M::mul_add(prod, delta_sq, q12 * q12) / (prod_plus_1 * delta);
        let nngp = M::mul_add(M::mul_add(q12, alpha, ratio), inv_two_pi, quarter * q12);
        let bracket = T::ONE / delta_sq + (T::ONE - prod) / prod_plus_1 + T::ONE;
        let dot = M::mul_add(q12 / delta * inv_two_pi, bracket, M::mul_add(alpha, inv_two_pi, quarter));
        (nngp, dot)
    }
}

impl<T: Real> Dual<T> for Gelu {
    /// sqrt(q + 1): sqrt((q11 + 1)(q22 + 1)) is a product per entry.
    #[inline(always)]
    fn aux(&self, q: T) -> T {
        (q + T::ONE).sqrt()
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, q11: T, q22: T, aux1: T, aux2: T) -> (T, T) {
        let r = aux1 * aux2;
        // delta^2 = (q11 + 1)(q22 + 1) - q12^2 >= 1: no cancellation to guard against, but the
        // factored form keeps full precision when |q12| is close to r.
        Gelu::from_delta::<T, M>(q12, q11 * q22, r * r, (r - q12) * (r + q12))
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        let q1 = q + T::ONE;
        Gelu::from_delta::<T, M>(q, q * q, q1 * q1, T::ONE + T::from_f64(2.0) * q)
    }
}

/// (phi(x), phi'(x)) = (x Phi(x), Phi(x) + x phi_N(x)) with the standard normal's cdf and density.
pub fn phi(x: f64) -> (f64, f64) {
    const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    let cdf = 0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
    (x * cdf, cdf + x * FRAC_1_SQRT_2PI * (-0.5 * x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2};
    use super::*;

    #[test]
    fn gelu_matches_quadrature() {
        let cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let phi = move |x: f64| x * cdf(x);
        let dphi = move |x: f64| cdf(x) + x * pdf(x);
        check_dual(
            Gelu,
            |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
            |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
            1e-9,
        );
    }
}
