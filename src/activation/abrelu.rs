//! ABReLU, phi(x) = a min(x, 0) + b max(x, 0) (ReLU, LeakyReLU, Abs): the arc-cosine kernel of
//! order 1 (Cho & Saul 2009) and its order-0 derivative kernel. With theta the angle between
//! the pre-activations:
//!   Sigma-dot = (a^2 + b^2)/2 - (a - b)^2 theta / (2 pi),
//!   Sigma-hat = (a - b)^2 / (2 pi) sqrt(q11 q22 - q12^2) + Sigma-dot q12.

use super::Dual;
use super::math::angle;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct AbRelu<T> {
    /// (a^2 + b^2) / 2: Sigma-dot at theta = 0.
    mean_square: T,
    /// (a - b)^2 / (2 pi).
    factor: T,
}

impl<T: Real> AbRelu<T> {
    pub fn new(a: f64, b: f64) -> Self {
        AbRelu {
            mean_square: T::from_f64((a * a + b * b) / 2.0),
            factor: T::from_f64((a - b) * (a - b) / (2.0 * std::f64::consts::PI)),
        }
    }
}

impl<T: Real> Dual<T> for AbRelu<T> {
    /// The standard deviation: r = sqrt(q11 q22) is a product per entry.
    #[inline(always)]
    fn aux(&self, q: T) -> T {
        q.sqrt()
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, _q11: T, _q22: T, aux1: T, aux2: T) -> (T, T) {
        let (sin_part, theta) = angle::<T, M>(q12, aux1 * aux2);
        let dot = M::mul_add(-self.factor, theta, self.mean_square);
        (M::mul_add(self.factor, sin_part, dot * q12), dot)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        // theta = 0, or pi/2 for a zero variance (neural-tangents' convention, as in `angle`).
        let theta = if q > T::ZERO { T::ZERO } else { T::FRAC_PI_2 };
        let dot = M::mul_add(-self.factor, theta, self.mean_square);
        (dot * q, dot)
    }
}

/// (phi(x), phi'(x)); at the kink phi'(0) = (a + b)/2, as JAX differentiates jnp.minimum /
/// jnp.maximum (splitting a tie evenly).
pub fn phi(a: f64, b: f64, x: f64) -> (f64, f64) {
    if x < 0.0 {
        (a * x, a)
    } else if x > 0.0 {
        (b * x, b)
    } else {
        (0.0, 0.5 * (a + b))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2_homogeneous};
    use super::*;
    use crate::float::Fused;

    fn check(a: f64, b: f64) {
        let relu = AbRelu::<f64>::new(a, b);
        let phi = move |x: f64| if x < 0.0 { a * x } else { b * x };
        let dphi = move |x: f64| if x < 0.0 { a } else { b };
        // Sigma-hat alone at the second-order accuracy of a continuous integrand.
        for &(q12, q11, q22) in &[(0.3, 1.0, 2.0), (-1.1, 0.9, 1.5), (1.9, 2.0, 1.81)] {
            let want = expect2_homogeneous(phi, phi, 2, q12, q11, q22);
            let got = relu.dual::<Fused>(q12, q11, q22, relu.aux(q11), relu.aux(q22)).0;
            assert!((got - want).abs() < 1e-9 * (1.0 + want.abs()));
        }
        check_dual(
            relu,
            |q12, q11, q22| expect2_homogeneous(phi, phi, 2, q12, q11, q22),
            |q12, q11, q22| expect2_homogeneous(dphi, dphi, 0, q12, q11, q22),
            // The midpoint rule is first-order across the jumps of phi': error <= 4 / m.
            1e-4,
        );
    }

    #[test]
    fn relu_leaky_abs_and_general_match_quadrature() {
        check(0.0, 1.0);
        check(0.1, 1.0);
        check(-1.0, 1.0);
        check(0.7, -2.0);
    }

    #[test]
    fn zero_variance_follows_neural_tangents() {
        let relu = AbRelu::<f64>::new(0.0, 1.0);
        assert_eq!(relu.dual::<Fused>(0.0, 0.0, 1.0, 0.0, 1.0), (0.0, 0.25));
        assert_eq!(relu.dual_diag::<Fused>(0.0), (0.0, 0.25));
    }
}
