//! The MLP spec: `depth` hidden (Dense, activation) pairs and a readout Dense, in
//! neural-tangents' "ntk" or "standard" parameterization (`model::Model::from_mlp` turns it into
//! a layer tree), and the Dense layers' affine maps on the kernels.

use crate::activation::Activation;
use crate::error::Error;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Parameterization {
    /// z = W_std / sqrt(fan_in) h W + b_std b with W, b ~ N(0, 1): the NTK does not depend on width.
    Ntk,
    /// z = h W + b with W ~ N(0, W_std^2 / fan_in), b ~ N(0, b_std^2): gradients w.r.t. the
    /// scaled weights make the NTK grow with the finite `width` of the hidden layers.
    Standard { width: usize },
}

/// One Dense layer's initialisation scales. `b_std = None` means the layer has no bias;
/// `trainable = false` freezes its parameters (they add nothing to the NTK).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dense {
    pub w_std: f64,
    pub b_std: Option<f64>,
    pub trainable: bool,
}

impl Dense {
    pub fn new(w_std: f64, b_std: Option<f64>, w_name: &'static str, b_name: &'static str) -> Result<Self, Error> {
        if !(w_std.is_finite() && w_std > 0.0) {
            return Err(Error::invalid(w_name, format!("must be a finite number > 0, got {w_std}")));
        }
        if let Some(b) = b_std.filter(|b| !(b.is_finite() && *b >= 0.0)) {
            return Err(Error::invalid(b_name, format!("must be None or a finite number >= 0, got {b}")));
        }
        Ok(Dense { w_std, b_std, trainable: true })
    }

    /// The layer with `trainable` set.
    pub fn with_trainable(self, trainable: bool) -> Self {
        Dense { trainable, ..self }
    }

    /// (ntk_alpha, ntk_beta) of its `DenseStep`: the layer's own parameters' share of the NTK, zero
    /// when it is frozen.
    pub fn ntk_terms(&self, alpha: f64, beta: f64) -> (f64, f64) {
        if self.trainable { (alpha, beta) } else { (0.0, 0.0) }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub depth: usize,
    pub activation: Activation,
    pub hidden: Dense,
    pub readout: Dense,
    pub parameterization: Parameterization,
}

/// The affine map of a Dense layer on (Sigma-hat, Theta-hat), the post-activation NNGP and
/// NTK of its input:  Sigma = w2 Sigma-hat + b2,  Theta = ntk_alpha Sigma-hat + w2 Theta-hat + ntk_beta.
/// "ntk": ntk_alpha = w2, ntk_beta = b2 (Theta = Sigma + w2 Theta-hat).
/// "standard": ntk_alpha = fan_in, ntk_beta = 1 if the layer has a bias (even b_std = 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseStep<T> {
    pub w2: T,
    pub b2: T,
    pub ntk_alpha: T,
    pub ntk_beta: T,
}

impl<T: Real> crate::activation::Affine<T> for DenseStep<T> {
    #[inline(always)]
    fn sigma<M: MulAdd>(&self, sigma_hat: T) -> T {
        M::mul_add(self.w2, sigma_hat, self.b2)
    }
    #[inline(always)]
    fn theta<M: MulAdd>(&self, sigma_hat: T, theta_hat: T) -> T {
        M::mul_add(self.ntk_alpha, sigma_hat, M::mul_add(self.w2, theta_hat, self.ntk_beta))
    }
}

impl<T: Real> DenseStep<T> {
    pub fn cast<U: Real>(&self) -> DenseStep<U> {
        DenseStep {
            w2: U::from_f64(self.w2.to_f64()),
            b2: U::from_f64(self.b2.to_f64()),
            ntk_alpha: U::from_f64(self.ntk_alpha.to_f64()),
            ntk_beta: U::from_f64(self.ntk_beta.to_f64()),
        }
    }
}

impl Mlp {
    pub fn new(
        depth: usize,
        activation: Activation,
        hidden: Dense,
        readout: Dense,
        parameterization: Parameterization,
    ) -> Result<Self, Error> {
        if let Parameterization::Standard { width: 0 } = parameterization {
            return Err(Error::invalid("width", "must be a positive integer"));
        }
        Ok(Mlp { depth, activation, hidden, readout, parameterization })
    }
}
