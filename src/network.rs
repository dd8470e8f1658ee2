//! Finite-width networks of an MLP spec: forward pass, reverse mode (gradients), forward mode
//! (Jacobian-vector products) and the per-layer output derivatives the empirical NTK is made of.
//!
//! Layer l is z = w_scale * h W + b_scale * b with W of shape (fan_in, fan_out), as in
//! neural-tangents: "ntk" parameterisation w_scale = W_std / sqrt(fan_in), b_scale = b_std (W,
//! b ~ N(0, 1) stored unscaled); "standard" w_scale = b_scale = 1 (W, b stored scaled).
//! Hidden layers apply the activation; the readout does not.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

use std::sync::Arc;

use crate::activation::{Activation, SeriesFunction};
use crate::error::Error;
use crate::linalg::{add_transposed_product, matmul, matmul_scaled};
use crate::memory::Plan;
use crate::series::PointwiseFn;
use crate::spec::{Mlp, Parameterization};

/// The function of a numerical activation supplied from outside the core (a Python callable),
/// shared by copies of a network.
#[derive(Clone)]
pub struct ExternalFn(pub Arc<dyn PointwiseFn + Send>);

impl std::fmt::Debug for ExternalFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalFn")
    }
}

/// One Dense layer's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseParams {
    pub w: Array2<f64>,
    pub b: Option<Array1<f64>>,
}

#[derive(Clone, Debug)]
pub struct Network {
    pub layers: Vec<DenseParams>,
    /// (w_scale, b_scale) per layer.
    scales: Vec<(f64, f64)>,
    /// Whether each layer trains (a frozen layer has zero gradients and no share of the NTK).
    trainable: Vec<bool>,
    pub activation: Activation,
    /// phi (and maybe phi') when `activation` is a numerical activation with an external function.
    external: Option<ExternalFn>,
}

/// What a forward pass keeps for the backward and tangent passes.
pub struct Forward {
    /// The input h of every Dense layer (x for the first).
    pub inputs: Vec<Array2<f64>>,
    /// phi'(z) of every hidden layer.
    pub slopes: Vec<Array2<f64>>,
    /// The network outputs, (n, out_dim).
    pub output: Array2<f64>,
}

/// Overflow unless every value of a result computed from the input `name` is finite.
pub fn check_output<'a>(values: impl IntoIterator<Item = &'a f64>, name: &str) -> Result<(), Error> {
    if values.into_iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::Overflow {
            message: format!(
                "the network's values overflow float64 on {name}: rescale the inputs, or check the parameters"
            ),
        })
    }
}

fn check_finite<'a>(values: impl IntoIterator<Item = &'a f64>, name: &'static str, what: &str) -> Result<(), Error> {
    if values.into_iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::invalid(name, format!("{what} contains NaN or infinity")))
    }
}

impl Network {
    /// A network of `mlp` with the given parameters (depth + 1 Dense layers); `external` is the
    /// function of a numerical activation that has one (`SeriesFunction::External`).
    pub fn new(mlp: &Mlp, layers: Vec<DenseParams>, external: Option<ExternalFn>) -> Result<Self, Error> {
        if layers.len() != mlp.depth + 1 {
            return Err(Error::invalid(
                "params",
                format!("an MLP of depth {} has {} Dense layers, got {}", mlp.depth, mlp.depth + 1, layers.len()),
            ));
        }
        let needs_external = matches!(mlp.activation, Activation::Series { function: SeriesFunction::External, .. });
        if needs_external && external.is_none() {
            return Err(Error::invalid("activation", "a numerical activation needs its function"));
        }
        let mut scales = Vec::with_capacity(layers.len());
        let mut trainable = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate() {
            let dense = if l < mlp.depth { mlp.hidden } else { mlp.readout };
            trainable.push(dense.trainable);
            let (fan_in, fan_out) = layer.w.dim();
            if fan_in == 0 || fan_out == 0 {
                return Err(Error::invalid("params", format!("layer {l}: W has an empty shape ({fan_in}, {fan_out})")));
            }
            if l > 0 && fan_in != layers[l - 1].w.ncols() {
                return Err(Error::invalid(
                    "params",
                    format!(
                        "layer {l}: W has {fan_in} rows but layer {} has {} outputs",
                        l - 1,
                        layers[l - 1].w.ncols()
                    ),
                ));
            }
            match (&layer.b, dense.b_std) {
                (Some(b), Some(_)) if b.len() != fan_out => {
                    return Err(Error::invalid(
                        "params",
                        format!("layer {l}: b has {} entries, W has {fan_out} columns", b.len()),
                    ));
                }
                (Some(_), None) => {
                    return Err(Error::invalid("params", format!("layer {l}: has a bias but the MLP's b_std is None")));
                }
                (None, Some(_)) => {
                    return Err(Error::invalid("params", format!("layer {l}: has no bias but the MLP's b_std is set")));
                }
                _ => {}
            }
            check_finite(layer.w.iter(), "params", &format!("layer {l}: W"))?;
            if let Some(b) = &layer.b {
                check_finite(b.iter(), "params", &format!("layer {l}: b"))?;
            }
            scales.push(match mlp.parameterization {
                Parameterization::Ntk => (dense.w_std / (fan_in as f64).sqrt(), dense.b_std.unwrap_or(0.0)),
                Parameterization::Standard { .. } => (1.0, 1.0),
            });
        }
        let external = external.filter(|_| needs_external);
        Ok(Network { layers, scales, trainable, activation: mlp.activation, external })
    }

    pub fn in_dim(&self) -> usize {
        self.layers[0].w.nrows()
    }

    pub fn out_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].w.ncols()
    }

    fn depth(&self) -> usize {
        self.layers.len() - 1
    }

    /// The memory of a forward pass over `n` inputs (every layer's input, pre-activation,
    /// activation and slope), and with `deltas` the per-output derivatives of the empirical NTK.
    pub fn forward_plan(&self, n: usize, deltas: bool) -> Plan {
        let k = self.out_dim();
        self.layers.iter().enumerate().fold(Plan::new(), |plan, (l, layer)| {
            let (fan_in, fan_out) = layer.w.dim();
            let plan = plan.add([n, fan_in], 8).add([n, fan_out, 3], 8);
            if deltas && l < self.depth() { plan.add([n, k, fan_out, 2], 8) } else { plan }
        })
    }

    /// The number of parameters.
    pub fn size(&self) -> usize {
        self.layers.iter().map(|l| l.w.len() + l.b.as_ref().map_or(0, |b| b.len())).sum()
    }

    pub fn check_inputs(&self, x: &ArrayView2<f64>, name: &'static str) -> Result<(), Error> {
        if x.nrows() == 0 || x.ncols() != self.in_dim() {
            return Err(Error::invalid(
                name,
                format!(
                    "must have shape (n > 0, {}) for this network, got ({}, {})",
                    self.in_dim(),
                    x.nrows(),
                    x.ncols()
                ),
            ));
        }
        check_finite(x.iter(), name, "the input")
    }

    /// z = w_scale h W + b_scale b.
    fn dense(&self, layer: usize, h: ArrayView2<f64>) -> Array2<f64> {
        let (w_scale, b_scale) = self.scales[layer];
        let mut z = matmul_scaled(h, self.layers[layer].w.view(), w_scale).expect("shapes checked");
        if let Some(b) = &self.layers[layer].b {
            z.rows_mut().into_iter().for_each(|mut row| row.scaled_add(b_scale, b));
        }
        z
    }

    pub fn forward(&self, x: ArrayView2<f64>) -> Result<Forward, Error> {
        let depth = self.depth();
        let mut inputs = vec![x.to_owned()];
        let mut slopes = Vec::with_capacity(depth);
        for layer in 0..depth {
            crate::interrupt::check()?;
            let z = self.dense(layer, inputs[layer].view());
            let (h, slope) = self.activate(&z)?;
            inputs.push(h);
            slopes.push(slope);
        }
        let output = self.dense(depth, inputs[depth].view());
        Ok(Forward { inputs, slopes, output })
    }

    /// (phi(z), phi'(z)) elementwise.
    fn activate(&self, z: &Array2<f64>) -> Result<(Array2<f64>, Array2<f64>), Error> {
        let mut h = Array2::<f64>::zeros(z.dim());
        let mut slope = Array2::<f64>::zeros(z.dim());
        match &self.external {
            None => {
                let act = self.activation;
                Zip::from(&mut h)
                    .and(&mut slope)
                    .and(z)
                    .par_for_each(|h, s, &z| (*h, *s) = act.value_and_derivative(z));
            }
            Some(ExternalFn(f)) => {
                let z = z.as_standard_layout();
                let zs = z.as_slice().expect("standard layout");
                let (hs, ss) = (h.as_slice_mut().expect("fresh array"), slope.as_slice_mut().expect("fresh array"));
                if !f.eval(zs, hs, ss)? {
                    central_differences(f.as_ref(), zs, ss)?;
                }
                let bad = hs.iter().chain(ss.iter()).position(|v| !v.is_finite());
                if let Some(bad) = bad {
                    let (what, at) =
                        if bad < zs.len() { ("function", zs[bad]) } else { ("derivative", zs[bad - zs.len()]) };
                    return Err(Error::invalid("activation", format!("the {what} is not finite at x = {at}")));
                }
            }
        }
        Ok((h, slope))
    }

    /// f(x), checked: memory planned first, and an output that overflows is an error.
    pub fn apply(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, Error> {
        self.check_inputs(&x, "x")?;
        self.forward_plan(x.nrows(), false).check("x: the forward pass")?;
        let output = self.forward(x)?.output;
        check_output(output.iter(), "x")?;
        Ok(output)
    }

    /// d (sum_i g_i . f(x_i)) / d z for every Dense layer (reverse mode), each (n, fan_out);
    /// g has shape (n, out_dim) and is the readout's.
    pub fn preactivation_grads(&self, fwd: &Forward, g: ArrayView2<f64>) -> Vec<Array2<f64>> {
        let depth = self.depth();
        let mut deltas = vec![g.to_owned()];
        for layer in (1..=depth).rev() {
            let (w_scale, _) = self.scales[layer];
            let delta = deltas.last().expect("non-empty");
            let mut back = matmul(delta.view(), self.layers[layer].w.t()).expect("shapes");
            Zip::from(&mut back).and(&fwd.slopes[layer - 1]).par_for_each(|d, &s| *d *= w_scale * s);
            deltas.push(back);
        }
        deltas.reverse();
        deltas
    }

    /// The gradient w.r.t. every parameter of sum_i g_i . f(x_i) (J^T g), g of shape (n, out_dim);
    /// zero for a frozen layer's.
    pub fn backward(&self, fwd: &Forward, g: ArrayView2<f64>) -> Vec<DenseParams> {
        self.preactivation_grads(fwd, g)
            .iter()
            .enumerate()
            .map(|(layer, delta)| {
                let (w_scale, b_scale) = if self.trainable[layer] { self.scales[layer] } else { (0.0, 0.0) };
                let w = matmul_scaled(fwd.inputs[layer].t(), delta.view(), w_scale).expect("shapes");
                let b = self.layers[layer].b.as_ref().map(|_| delta.sum_axis(Axis(0)) * b_scale);
                DenseParams { w, b }
            })
            .collect()
    }

    /// The directional derivative J(x) t of the outputs along the parameter tangent t (forward mode).
    pub fn jvp(&self, fwd: &Forward, tangent: &[DenseParams]) -> Array2<f64> {
        let depth = self.depth();
        let n = fwd.output.nrows();
        let mut dh: Option<Array2<f64>> = None; // tangent of the layer input (zero for x)
        for layer in 0..=depth {
            let (w_scale, b_scale) = self.scales[layer];
            let mut dz = matmul(fwd.inputs[layer].view(), tangent[layer].w.view()).expect("shapes");
            if let Some(dh) = &dh {
                dz += &matmul(dh.view(), self.layers[layer].w.view()).expect("shapes");
            }
            dz.mapv_inplace(|v| v * w_scale);
            if let Some(db) = &tangent[layer].b {
                dz += &(db * b_scale);
            }
            if layer < depth {
                dz *= &fwd.slopes[layer];
                dh = Some(dz);
            } else {
                debug_assert_eq!(dz.nrows(), n);
                return dz;
            }
        }
        unreachable!("the readout returns")
    }

    /// d f_k(x_i) / d z_l for every Dense layer l below the readout, as (n * out_dim, fan_out_l)
    /// matrices with row i * out_dim + k (the readout's is the identity and is not stored).
    pub fn output_deltas(&self, fwd: &Forward) -> Vec<Array2<f64>> {
        let depth = self.depth();
        let (n, k) = (fwd.output.nrows(), self.out_dim());
        let mut deltas: Vec<Array2<f64>> = Vec::with_capacity(depth);
        for layer in (0..depth).rev() {
            let (w_scale, _) = self.scales[layer + 1];
            let w_next = &self.layers[layer + 1].w;
            // (Delta_{l+1} W_{l+1}^T) * w_scale, where Delta_readout rows are unit vectors e_k.
            let mut delta = match deltas.last() {
                None => {
                    let mut d = Array2::<f64>::zeros((n * k, w_next.nrows()));
                    for (row, mut out) in d.outer_iter_mut().enumerate() {
                        out.assign(&w_next.column(row % k));
                    }
                    d
                }
                Some(prev) => matmul(prev.view(), w_next.t()).expect("shapes"),
            };
            let slopes = &fwd.slopes[layer];
            delta.axis_iter_mut(Axis(0)).enumerate().for_each(|(row, mut d)| {
                Zip::from(&mut d).and(slopes.row(row / k)).for_each(|d, &s| *d *= w_scale * s);
            });
            deltas.push(delta);
        }
        deltas.reverse();
        deltas
    }

    /// (w_scale, b_scale) of every layer.
    pub fn scales(&self) -> &[(f64, f64)] {
        &self.scales
    }

    /// (w_scale, b_scale) of every layer's gradient: its scales, zero for a frozen layer.
    pub fn gradient_scales(&self) -> Vec<(f64, f64)> {
        self.scales.iter().zip(&self.trainable).map(|(&s, &t)| if t { s } else { (0.0, 0.0) }).collect()
    }

    /// (w_scale^2, b_scale^2) of layer l: its weight and bias terms in the NTK (zero if frozen).
    pub fn ntk_weights(&self, layer: usize) -> (f64, f64) {
        if !self.trainable[layer] {
            return (0.0, 0.0);
        }
        let (w, b) = self.scales[layer];
        (w * w, if self.layers[layer].b.is_some() { b * b } else { 0.0 })
    }

    /// Euclidean norm of all parameters, and of the difference to another network's.
    pub fn norm(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| l.w.iter().chain(l.b.iter().flatten()).map(|v| v * v).sum::<f64>())
            .sum::<f64>()
            .sqrt()
    }

    pub fn distance(&self, other: &Network) -> f64 {
        self.layers
            .iter()
            .zip(&other.layers)
            .map(|(a, b)| {
                let w: f64 = a.w.iter().zip(&b.w).map(|(x, y)| (x - y) * (x - y)).sum();
                let bias: f64 = match (&a.b, &b.b) {
                    (Some(x), Some(y)) => x.iter().zip(y).map(|(x, y)| (x - y) * (x - y)).sum(),
                    _ => 0.0,
                };
                w + bias
            })
            .sum::<f64>()
            .sqrt()
    }

    /// params -= learning_rate * grads.
    pub fn descend(&mut self, grads: &[DenseParams], learning_rate: f64) {
        for (layer, grad) in self.layers.iter_mut().zip(grads) {
            layer.w.scaled_add(-learning_rate, &grad.w);
            if let (Some(b), Some(gb)) = (&mut layer.b, &grad.b) {
                b.scaled_add(-learning_rate, gb);
            }
        }
    }
}

/// One step of full-batch gradient descent on 0.5 * mean((f - y)^2); returns the loss before it.
/// A step that would make a parameter non-finite is refused (`diverged`) and leaves the network
/// as it was.
pub fn gradient_step(
    net: &mut Network,
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    learning_rate: f64,
) -> Result<f64, Error> {
    net.forward_plan(x.nrows(), false).add([net.size(), 2], 8).check("x: a training step")?;
    let fwd = net.forward(x)?;
    let residual = &fwd.output - &y;
    let size = residual.len() as f64;
    let loss = 0.5 * residual.iter().map(|r| r * r).sum::<f64>() / size;
    if !loss.is_finite() {
        return Err(diverged(loss, learning_rate));
    }
    // The deltas are taken through the old weights, then the update goes into them.
    let deltas = net.preactivation_grads(&fwd, (residual / size).view());
    descend_along(&net.gradient_scales(), &mut net.layers, &fwd, &deltas, learning_rate)
        .ok_or_else(|| diverged(loss, learning_rate))?;
    Ok(loss)
}

/// target -= learning_rate * J^T g, laid out like the parameters, from the pre-activation
/// gradients of g (`preactivation_grads`) and the layers' (w_scale, b_scale): one GEMM per layer
/// straight into the target, no gradient materialised. Refused (None, the target unchanged) when
/// the step could make a parameter non-finite.
///
/// Every entry of a layer's update is at most learning_rate * w_scale * n * max|h| * max|delta|
/// (a sum of n products), cheap to bound: below `SAFE_UPDATE` the in-place update cannot
/// overflow a parameter that a finite loss came from. Above it (a diverging run) the update goes
/// into a copy that is checked before it replaces the parameters.
pub fn descend_along(
    scales: &[(f64, f64)],
    target: &mut Vec<DenseParams>,
    fwd: &Forward,
    deltas: &[Array2<f64>],
    learning_rate: f64,
) -> Option<()> {
    const SAFE_UPDATE: f64 = 1e150;
    let max_abs = |a: &Array2<f64>| a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let largest_update = deltas.iter().enumerate().fold(0.0f64, |worst, (layer, delta)| {
        let (w_scale, b_scale) = scales[layer];
        let (n, d) = (delta.nrows() as f64, max_abs(delta));
        let w = learning_rate * w_scale * n * max_abs(&fwd.inputs[layer]) * d;
        let b = learning_rate * b_scale * n * d;
        // (NaN-propagating: a NaN delta makes the bound NaN, which fails the test below)
        if w.is_nan() || b.is_nan() { f64::NAN } else { worst.max(w).max(b) }
    });
    if largest_update < SAFE_UPDATE {
        for (layer, (t, delta)) in target.iter_mut().zip(deltas).enumerate() {
            let (w_scale, b_scale) = scales[layer];
            add_transposed_product(&mut t.w, fwd.inputs[layer].view(), delta.view(), -learning_rate * w_scale);
            if let Some(b) = &mut t.b {
                b.scaled_add(-learning_rate * b_scale, &delta.sum_axis(Axis(0)));
            }
        }
        return Some(());
    }
    let mut stepped = target.clone();
    for (layer, (t, delta)) in stepped.iter_mut().zip(deltas).enumerate() {
        let (w_scale, b_scale) = scales[layer];
        add_transposed_product(&mut t.w, fwd.inputs[layer].view(), delta.view(), -learning_rate * w_scale);
        if let Some(b) = &mut t.b {
            b.scaled_add(-learning_rate * b_scale, &delta.sum_axis(Axis(0)));
        }
        if !t.w.iter().chain(t.b.iter().flatten()).all(|v| v.is_finite()) {
            return None;
        }
    }
    *target = stepped;
    Some(())
}

/// The error of a training step that would leave the parameters non-finite.
pub fn diverged(loss: f64, learning_rate: f64) -> Error {
    Error::invalid(
        "learning_rate",
        format!(
            "training diverged (loss {loss:.3e}; the step would make parameters non-finite) at learning_rate = \
             {learning_rate}; the parameters are kept as they were before this step. Gradient descent on this loss \
             is stable below ntkfast.predict.max_learning_rate(ntk_train_train, y_train.size)"
        ),
    )
}

/// phi' of an external function given without it, by central differences with step
/// 1e-5 max(1, |z|) (error ~1e-10 relative for smooth phi): two more batched calls.
fn central_differences(f: &dyn PointwiseFn, z: &[f64], slope: &mut [f64]) -> Result<(), Error> {
    let step: Vec<f64> = z.iter().map(|z| 1e-5 * z.abs().max(1.0)).collect();
    let shifted = |sign: f64| z.iter().zip(&step).map(|(z, h)| z + sign * h).collect::<Vec<f64>>();
    let (mut up, mut down, mut unused) = (vec![0.0; z.len()], vec![0.0; z.len()], vec![0.0; z.len()]);
    f.eval(&shifted(1.0), &mut up, &mut unused)?;
    f.eval(&shifted(-1.0), &mut down, &mut unused)?;
    for (((s, u), d), h) in slope.iter_mut().zip(&up).zip(&down).zip(&step) {
        *s = (u - d) / (2.0 * h);
    }
    Ok(())
}

/// Mean squared error 0.5 * mean((f - y)^2).
pub fn loss(output: &Array2<f64>, y: ArrayView2<f64>) -> f64 {
    0.5 * output.iter().zip(y.iter()).map(|(f, y)| (f - y) * (f - y)).sum::<f64>() / output.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Dense;

    #[test]
    fn a_diverging_step_is_refused_and_changes_nothing() {
        let (_, mut net) = tiny(Activation::AbRelu { a: 0.0, b: 1.0 }, Parameterization::Ntk, 2);
        let x = Array2::from_shape_fn((4, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin());
        let y = Array2::from_elem((4, 2), 1.0);
        let before = net.layers.clone();
        let mut refused = None;
        for step in 0..200 {
            if let Err(e) = gradient_step(&mut net, x.view(), y.view(), 1e150) {
                refused = Some((step, e));
                break;
            }
            assert!(net.layers.iter().all(|l| l.w.iter().all(|v| v.is_finite())));
        }
        let (step, err) = refused.expect("a learning rate of 1e150 diverges");
        assert!(matches!(err, Error::InvalidArgument { name: "learning_rate", .. }), "{err}");
        if step == 0 {
            assert_eq!(net.layers, before, "a refused step leaves the parameters as they were");
        }
        // the parameters stay finite; outputs are finite or an Overflow error, never inf/NaN
        assert!(net.layers.iter().all(|l| l.w.iter().chain(l.b.iter().flatten()).all(|v| v.is_finite())));
        match net.apply(x.view()) {
            Ok(out) => assert!(out.iter().all(|v| v.is_finite())),
            Err(e) => assert!(matches!(e, Error::Overflow { .. }), "{e}"),
        }
    }

    pub(crate) fn tiny(activation: Activation, parameterization: Parameterization, out_dim: usize) -> (Mlp, Network) {
        let dense = Dense::new(1.3, Some(0.4), "W_std", "b_std").unwrap();
        let mlp = Mlp::new(2, activation, dense, dense, parameterization).unwrap();
        let mut state = 7u64;
        let mut normal = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let dims = [3, 5, 4, out_dim];
        let layers = (0..3)
            .map(|l| DenseParams {
                w: Array2::from_shape_fn((dims[l], dims[l + 1]), |_| normal()),
                b: Some(Array1::from_shape_fn(dims[l + 1], |_| normal())),
            })
            .collect();
        let net = Network::new(&mlp, layers, None).unwrap();
        (mlp, net)
    }

    fn inputs() -> Array2<f64> {
        Array2::from_shape_fn((4, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin())
    }

    #[test]
    fn gradients_and_tangents_match_finite_differences() {
        for param in [Parameterization::Ntk, Parameterization::Standard { width: 5 }] {
            let (_, net) = tiny(Activation::Erf { a: 1.0, b: 0.8, c: 0.1 }, param, 2);
            let x = inputs();
            let fwd = net.forward(x.view()).unwrap();
            let g = Array2::from_shape_fn((4, 2), |(i, k)| (i as f64) - (k as f64) * 0.5);
            let grads = net.backward(&fwd, g.view());
            // d/d theta_p of sum(g * f) by central differences, for a few parameters per layer
            for l in 0..3 {
                for &(i, j) in &[(0, 0), (1, 1)] {
                    let mut plus = net.clone();
                    plus.layers[l].w[[i, j]] += 1e-6;
                    let mut minus = net.clone();
                    minus.layers[l].w[[i, j]] -= 1e-6;
                    let fd = ((plus.apply(x.view()).unwrap() - minus.apply(x.view()).unwrap()) * &g).sum() / 2e-6;
                    assert!((fd - grads[l].w[[i, j]]).abs() < 1e-7, "W{l}[{i},{j}]: {fd} vs {}", grads[l].w[[i, j]]);
                }
            }
            // J t = (f(theta + e t) - f(theta - e t)) / 2e
            let tangent: Vec<DenseParams> = grads.clone();
            let jvp = net.jvp(&fwd, &tangent);
            let (mut plus, mut minus) = (net.clone(), net.clone());
            plus.descend(&tangent, -1e-6);
            minus.descend(&tangent, 1e-6);
            let fd = (plus.apply(x.view()).unwrap() - minus.apply(x.view()).unwrap()) / 2e-6;
            assert!((fd - &jvp).iter().all(|d| d.abs() < 1e-6));
        }
    }

    #[test]
    fn output_deltas_are_derivatives_with_respect_to_preactivations() {
        let (_, net) = tiny(Activation::Gelu, Parameterization::Ntk, 3);
        let x = inputs();
        let fwd = net.forward(x.view()).unwrap();
        let deltas = net.output_deltas(&fwd);
        // sum_k c_k f_k via backward with g = c gives sum_k c_k delta_k; compare layer-0 bias gradient
        let c = [0.3, -1.1, 0.7];
        let g = Array2::from_shape_fn((4, 3), |(_, k)| c[k]);
        let grads = net.backward(&fwd, g.view());
        for unit in 0..5 {
            let from_deltas: f64 =
                (0..4).map(|i| (0..3).map(|k| c[k] * deltas[0][[i * 3 + k, unit]]).sum::<f64>()).sum::<f64>() * 0.4;
            assert!((from_deltas - grads[0].b.as_ref().unwrap()[unit]).abs() < 1e-12);
        }
    }

    /// tanh from outside the core, without its derivative.
    struct ExternalTanh;

    impl PointwiseFn for ExternalTanh {
        fn eval(&self, x: &[f64], value: &mut [f64], _slope: &mut [f64]) -> Result<bool, Error> {
            value.iter_mut().zip(x).for_each(|(v, x)| *v = x.tanh());
            Ok(false)
        }
    }

    #[test]
    fn an_external_function_gives_the_builtin_network_with_derivatives_by_differences() {
        use crate::activation::Builtin;
        let builtin = Activation::Series { function: SeriesFunction::Builtin(Builtin::Tanh), degree: 128 };
        let (mlp, net) = tiny(builtin, Parameterization::Ntk, 2);
        let external =
            Mlp { activation: Activation::Series { function: SeriesFunction::External, degree: 128 }, ..mlp };
        assert!(Network::new(&external, net.layers.clone(), None).is_err());
        let other = Network::new(&external, net.layers.clone(), Some(ExternalFn(Arc::new(ExternalTanh)))).unwrap();
        let (a, b) = (net.forward(inputs().view()).unwrap(), other.forward(inputs().view()).unwrap());
        assert!((&a.output - &b.output).iter().all(|d| d.abs() < 1e-15));
        for (sa, sb) in a.slopes.iter().zip(&b.slopes) {
            assert!((sa - sb).iter().all(|d| d.abs() < 1e-9));
        }
    }

    #[test]
    fn shapes_and_bias_presence_are_validated() {
        let (mlp, net) = tiny(Activation::Identity, Parameterization::Ntk, 1);
        let mut layers = net.layers.clone();
        layers[1].w = Array2::zeros((6, 4));
        assert!(matches!(Network::new(&mlp, layers, None), Err(Error::InvalidArgument { name: "params", .. })));
        let mut layers = net.layers.clone();
        layers[2].b = None;
        assert!(Network::new(&mlp, layers, None).is_err());
        assert!(Network::new(&mlp, net.layers[..2].to_vec(), None).is_err());
    }
}
