//! Rbf(gamma): the activation sqrt(2) sin(sqrt(2 gamma) x + pi/4), whose NNGP map is the RBF
//! kernel of the pre-activations: Sigma-hat = exp(-gamma (q11 + q22 - 2 q12)),
//! Sigma-dot = 2 gamma Sigma-hat.

use super::Dual;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Rbf<T> {
    gamma: T,
}

impl<T: Real> Rbf<T> {
    pub fn new(gamma: f64) -> Self {
        Rbf { gamma: T::from_f64(gamma) }
    }
}

impl<T: Real> Dual<T> for Rbf<T> {
    #[inline(always)]
    fn aux(&self, _q: T) -> T {
        T::ZERO
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, q11: T, q22: T, _aux1: T, _aux2: T) -> (T, T) {
        let k = (self.gamma * (q12 + q12 - q11 - q22)).exp();
        (k, (self.gamma + self.gamma) * k)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, _q: T) -> (T, T) {
        (T::ONE, self.gamma + self.gamma)
    }
}

/// (phi(x), phi'(x)) for phi(x) = sqrt(2) sin(sqrt(2 gamma) x + pi/4).
pub fn phi(gamma: f64, x: f64) -> (f64, f64) {
    let w = (2.0 * gamma).sqrt();
    let (s, co) = (w * x + std::f64::consts::FRAC_PI_4).sin_cos();
    (std::f64::consts::SQRT_2 * s, std::f64::consts::SQRT_2 * w * co)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2};
    use super::*;

    #[test]
    fn rbf_matches_quadrature_of_its_activation() {
        for gamma in [0.3, 1.0] {
            let w = (2.0f64 * gamma).sqrt();
            let phi = move |x: f64| 2f64.sqrt() * (w * x + std::f64::consts::FRAC_PI_4).sin();
            let dphi = move |x: f64| 2f64.sqrt() * w * (w * x + std::f64::consts::FRAC_PI_4).cos();
            check_dual(
                Rbf::<f64>::new(gamma),
                |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
                |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
                1e-9,
            );
        }
    }
}
