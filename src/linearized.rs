//! The linearised network f_lin(x; theta) = f(x; theta_0) + J(x; theta_0) (theta - theta_0): the
//! first-order Taylor expansion at initialisation, trained in parameter space exactly as the
//! network is (its gradient is J(theta_0)^T applied to the residual).

use ndarray::{Array2, ArrayView2};

use crate::error::Error;
use crate::network::{DenseParams, Network, check_output, descend_along, diverged};

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

    /// A linearisation with a given parameter change (as `delta` returns it).
    pub fn with_delta(base: Network, delta: Vec<DenseParams>) -> Result<Self, Error> {
        let fits = delta.len() == base.layers.len()
            && delta
                .iter()
                .zip(&base.layers)
                .all(|(d, l)| d.w.dim() == l.w.dim() && d.b.as_ref().map(|b| b.len()) == l.b.as_ref().map(|b| b.len()));
        if !fits {
            return Err(Error::invalid("delta", "must have the network's parameter shapes"));
        }
        if !delta.iter().all(|d| d.w.iter().chain(d.b.iter().flatten()).all(|v| v.is_finite())) {
            return Err(Error::invalid("delta", "contains NaN or infinity"));
        }
        Ok(Linearized { base, delta })
    }

    pub fn apply(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, Error> {
        self.base.check_inputs(&x, "x")?;
        self.base
            .forward_plan(x.nrows(), false)
            .add([x.nrows(), self.base.out_dim(), 2], 8)
            .check("x: the forward pass")?;
        let fwd = self.base.forward(x)?;
        let out = &fwd.output + &self.base.jvp(&fwd, &self.delta);
        check_output(out.iter(), "x")?;
        Ok(out)
    }

    /// One gradient-descent step on 0.5 * mean((f_lin - y)^2); returns the loss before it. A step
    /// that would make the parameters non-finite is refused and changes nothing.
    pub fn gradient_step(&mut self, x: ArrayView2<f64>, y: ArrayView2<f64>, learning_rate: f64) -> Result<f64, Error> {
        self.base.forward_plan(x.nrows(), false).add([self.base.size(), 2], 8).check("x: a training step")?;
        let fwd = self.base.forward(x)?;
        let residual = &fwd.output + &self.base.jvp(&fwd, &self.delta) - y;
        let size = residual.len() as f64;
        let loss = 0.5 * residual.iter().map(|r| r * r).sum::<f64>() / size;
        if !loss.is_finite() {
            return Err(diverged(loss, learning_rate));
        }
        let deltas = self.base.preactivation_grads(&fwd, (residual / size).view());
        descend_along(&self.base.gradient_scales(), &mut self.delta, &fwd, &deltas, learning_rate)
            .ok_or_else(|| diverged(loss, learning_rate))?;
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
