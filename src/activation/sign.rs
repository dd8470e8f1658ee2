//! Sign, phi(x) = sign(x): Sigma-hat = 1 - 2 theta / pi (the arc-sine law). phi' = 0 almost
//! everywhere, so Sigma-dot = 0 and no NTK flows through the layer (neural-tangents' choice).

use super::Dual;
use super::math::angle;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Sign;

impl<T: Real> Dual<T> for Sign {
    /// The standard deviation, as for ABReLU.
    #[inline(always)]
    fn aux(&self, q: T) -> T {
        q.sqrt()
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, _q11: T, _q22: T, aux1: T, aux2: T) -> (T, T) {
        let (_, theta) = angle::<T, M>(q12, aux1 * aux2);
        (M::mul_add(-T::from_f64(2.0) / T::PI, theta, T::ONE), T::ZERO)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        // sign(u)^2 = 1 unless u is identically 0.
        (if q > T::ZERO { T::ONE } else { T::ZERO }, T::ZERO)
    }
}

/// (sign(x), 0): the derivative is 0 everywhere (JAX's, and neural-tangents').
pub fn phi(x: f64) -> (f64, f64) {
    let value = if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    };
    (value, 0.0)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2_homogeneous};
    use super::*;

    #[test]
    fn sign_matches_quadrature() {
        let phi = |x: f64| x.signum();
        check_dual(Sign, |q12, q11, q22| expect2_homogeneous(phi, phi, 0, q12, q11, q22), |_, _, _| 0.0, 1e-4);
    }
}
