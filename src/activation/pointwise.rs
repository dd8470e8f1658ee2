//! The activations themselves, phi(x) and phi'(x), for finite-width networks: each family's
//! `phi` sits in its file beside its dual. Derivatives at kinks follow JAX (what neural-tangents
//! differentiates): jnp.minimum/maximum split a tie evenly, so ABReLU has phi'(0) = (a + b)/2;
//! sign has phi' = 0 everywhere.

use super::{Activation, SeriesFunction, abrelu, erf, exponential, gabor, gelu, identity, monomial, rbf, sign, trig};

impl Activation {
    /// (phi(x), phi'(x)), each family's own (beside its dual, in its file).
    #[inline]
    pub fn value_and_derivative(&self, x: f64) -> (f64, f64) {
        match *self {
            Activation::Identity => identity::phi(x),
            Activation::AbRelu { a, b } => abrelu::phi(a, b, x),
            Activation::Erf { a, b, c } => erf::phi(a, b, c, x),
            Activation::Gelu => gelu::phi(x),
            Activation::Sign => sign::phi(x),
            Activation::Sin { a, b, c } => trig::phi(a, b, c, x),
            Activation::Rbf { gamma } => rbf::phi(gamma, x),
            Activation::Exp { a, b } => exponential::phi_exp(a, b, x),
            Activation::Gaussian { a, b } => exponential::phi_gaussian(a, b, x),
            Activation::Gabor => gabor::phi(x),
            Activation::Monomial { degree } => monomial::phi_monomial(degree, x),
            Activation::RectifiedMonomial { degree } => monomial::phi_rectified(degree, x),
            Activation::Series { function: SeriesFunction::Builtin(builtin), .. } => builtin.value_and_derivative(x),
            // Never called: networks evaluate an external function in batches (`Network::activate`).
            Activation::Series { function: SeriesFunction::External, .. } => (f64::NAN, f64::NAN),
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
