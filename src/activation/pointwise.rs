//! The activations themselves, phi(x) and phi'(x), for finite-width networks. Derivatives at
//! kinks follow JAX (what neural-tangents differentiates): jnp.minimum/maximum split a tie
//! evenly, so ABReLU has phi'(0) = (a + b)/2; sign has phi' = 0 everywhere.

use super::Activation;

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl Activation {
    /// (phi(x), phi'(x)).
    #[inline]
    pub fn value_and_derivative(&self, x: f64) -> (f64, f64) {
        match *self {
            Activation::Identity => (x, 1.0),
            Activation::AbRelu { a, b } => {
                if x < 0.0 {
                    (a * x, a)
                } else if x > 0.0 {
                    (b * x, b)
                } else {
                    (0.0, 0.5 * (a + b))
                }
            }
            Activation::Erf { a, b, c } => {
                (a * libm::erf(b * x) + c, a * b * FRAC_2_SQRT_PI * (-(b * x) * (b * x)).exp())
            }
            Activation::Gelu => {
                let cdf = 0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
                (x * cdf, cdf + x * FRAC_1_SQRT_2PI * (-0.5 * x * x).exp())
            }
            Activation::Sign => (
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                },
                0.0,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_central_differences() {
        let acts = [
            Activation::Identity,
            Activation::AbRelu { a: -0.3, b: 1.7 },
            Activation::Erf { a: 1.3, b: 0.7, c: -0.2 },
            Activation::Gelu,
        ];
        for act in acts {
            for &x in &[-2.5, -0.7, 0.3, 1.9] {
                let h = 1e-6;
                let fd = (act.value_and_derivative(x + h).0 - act.value_and_derivative(x - h).0) / (2.0 * h);
                assert!((fd - act.value_and_derivative(x).1).abs() < 1e-8, "{act:?} at {x}");
            }
        }
        assert_eq!(Activation::AbRelu { a: 0.0, b: 1.0 }.value_and_derivative(0.0), (0.0, 0.5));
        assert_eq!(Activation::Sign.value_and_derivative(-3.0), (-1.0, 0.0));
        // GELU(x) = x Phi(x): Phi(1) = 0.8413447460685429
        assert!((Activation::Gelu.value_and_derivative(1.0).0 - 0.841_344_746_068_542_9).abs() < 1e-15);
    }
}
