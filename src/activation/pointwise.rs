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
            Activation::Sin { a, b, c } => {
                let (s, co) = (b * x + c).sin_cos();
                (a * s, a * b * co)
            }
            Activation::Rbf { gamma } => {
                let w = (2.0 * gamma).sqrt();
                let (s, co) = (w * x + std::f64::consts::FRAC_PI_4).sin_cos();
                (std::f64::consts::SQRT_2 * s, std::f64::consts::SQRT_2 * w * co)
            }
            Activation::Exp { a, b } => {
                let e = (b * x).exp();
                (a * e, a * b * e)
            }
            Activation::Gaussian { a, b } => {
                let e = (b * x * x).exp();
                (a * e, 2.0 * a * b * x * e)
            }
            Activation::Gabor => {
                let (e, (s, co)) = ((-x * x).exp(), x.sin_cos());
                (e * s, e * (co - 2.0 * x * s))
            }
            Activation::Monomial { degree } => {
                let d = degree as i32;
                (x.powi(d), if d == 0 { 0.0 } else { d as f64 * x.powi(d - 1) })
            }
            Activation::Series { function: super::SeriesFunction::Builtin(builtin), .. } => {
                builtin.value_and_derivative(x)
            }
            // Never called: networks evaluate an external function in batches (`Network::activate`).
            Activation::Series { function: super::SeriesFunction::External, .. } => (f64::NAN, f64::NAN),
            Activation::RectifiedMonomial { degree } => {
                // JAX differentiates (x >= 0) * x^n: the indicator has no derivative.
                let d = degree as i32;
                let on = if x >= 0.0 { 1.0 } else { 0.0 };
                (on * x.powi(d), if d == 0 { 0.0 } else { on * d as f64 * x.powi(d - 1) })
            }
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
            Activation::Sin { a: 1.2, b: 0.8, c: 0.3 },
            Activation::Rbf { gamma: 0.7 },
            Activation::Exp { a: 0.5, b: 0.9 },
            Activation::Gaussian { a: 1.1, b: -0.6 },
            Activation::Gabor,
            Activation::Monomial { degree: 3 },
            Activation::RectifiedMonomial { degree: 2 },
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
