//! The linearised network f_lin(x; theta) = f(x; theta_0) + J(x; theta_0) (theta - theta_0): the
//! first-order Taylor expansion at initialisation, trained in parameter space exactly as the
//! network is (its gradient is J(theta_0)^T applied to the residual).

use ndarray::{Array2, ArrayView2};

use crate::error::Error;
use crate::network::{DenseParams, Network, descend_along};

#[derive(Clone, Debug)]
pub struct Linearized {
    pub base: Network,
    /// theta - theta_0, laid out like the parameters.
    pub delta: Vec<DenseParams>,
}

impl Linearized {
    pub fn new(base: Network) -> Self {
        let delta = base
            .layers
            .iter()
            .map(|l| DenseParams {
                w: Array2::zeros(l.w.dim()),
                b: l.b.as_ref().map(|b| ndarray::Array1::zeros(b.len())),
            })
            .collect();
        Linearized { base, delta }
    }

    pub fn apply(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, Error> {
        self.base.check_inputs(&x, "x")?;
        let fwd = self.base.forward(x)?;
        Ok(&fwd.output + &self.base.jvp(&fwd, &self.delta))
    }

    /// One gradient-descent step on 0.5 * mean((f_lin - y)^2); returns the loss before it.
    pub fn gradient_step(&mut self, x: ArrayView2<f64>, y: ArrayView2<f64>, learning_rate: f64) -> Result<f64, Error> {
        let fwd = self.base.forward(x)?;
        let residual = &fwd.output + &self.base.jvp(&fwd, &self.delta) - y;
        let size = residual.len() as f64;
        let loss = 0.5 * residual.iter().map(|r| r * r).sum::<f64>() / size;
        let deltas = self.base.preactivation_grads(&fwd, (residual / size).view());
        descend_along(self.base.scales(), &mut self.delta, &fwd, &deltas, learning_rate);
        Ok(loss)
    }

    /// ||theta - theta_0||.
    pub fn delta_norm(&self) -> f64 {
        self.delta
            .iter()
            .map(|l| l.w.iter().chain(l.b.iter().flatten()).map(|v| v * v).sum::<f64>())
            .sum::<f64>()
            .sqrt()
    }
}
