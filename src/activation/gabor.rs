//! Gabor, phi(x) = exp(-x^2) sin(x), in neural-tangents' closed form. With P = q11 q22,
//! S = q11 + q22, Delta = 4 (P - q12^2), den = 2 S + Delta + 1:
//!   Sigma-hat = exp(-(S + Delta + 2 q12) / (2 den)) (exp(2 q12 / den) - 1) / (2 sqrt(den)),
//!   Sigma-dot = exp(-...) (L + exp(2 q12 / den) R) / (2 den^(5/2)), with
//!   L, R = 1 + 2 S + 4 (q12^2 + P) -/+ 4 q12 (Delta + 3 S + 2).

use super::Dual;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Gabor;

impl Gabor {
    #[inline(always)]
    fn from_parts<T: Real>(q12: T, prod: T, sum: T, diff: T) -> (T, T) {
        let (one, two, four) = (T::ONE, T::from_f64(2.0), T::from_f64(4.0));
        let den = two * sum + diff + one;
        let left = (-(sum + diff + two * q12) / (two * den)).exp();
        let right = (two * q12 / den).exp();
        let shared = one + two * sum + four * (q12 * q12 + prod);
        let cross = four * q12 * (diff + T::from_f64(3.0) * sum + two);
        let root = den.sqrt();
        let dot = left * ((shared - cross) + right * (shared + cross)) / (two * den * den * root);
        (left * (right - one) / (two * root), dot)
    }
}

impl<T: Real> Dual<T> for Gabor {
    /// sqrt(q), so that sqrt(P) is a product and P - q12^2 is factored.
    #[inline(always)]
    fn aux(&self, q: T) -> T {
        q.sqrt()
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, q11: T, q22: T, aux1: T, aux2: T) -> (T, T) {
        let r = aux1 * aux2;
        let diff = T::from_f64(4.0) * ((r - q12) * (r + q12)).max_fast(T::ZERO);
        Gabor::from_parts(q12, q11 * q22, q11 + q22, diff)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        Gabor::from_parts(q, q * q, q + q, T::ZERO)
    }
}

/// (phi(x), phi'(x)) = (exp(-x^2) sin x, exp(-x^2) (cos x - 2 x sin x)).
pub fn phi(x: f64) -> (f64, f64) {
    let (e, (s, co)) = ((-x * x).exp(), x.sin_cos());
    (e * s, e * (co - 2.0 * x * s))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2};
    use super::*;

    #[test]
    fn gabor_matches_quadrature() {
        let phi = |x: f64| (-x * x).exp() * x.sin();
        let dphi = |x: f64| (-x * x).exp() * (x.cos() - 2.0 * x * x.sin());
        check_dual(
            Gabor,
            |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
            |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
            // exp(-u^2) at variance 4 is sharp against the Gaussian weight: the 120-node rule's own
            // error is ~1e-9 there
            1e-7,
        );
    }
}
