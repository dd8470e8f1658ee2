//! The empirical NNGP and NTK of a finite network, without Jacobians.
//!
//! For a Dense layer z = w_scale h W + b_scale b, d f_k / d W = w_scale h (x) delta_k with
//! delta_k = d f_k / d z, so the layer's share of <d f_k(x1)/d theta, d f_k'(x2)/d theta> is
//!   w_scale^2 (h(x1) . h(x2)) (delta_k(x1) . delta_k'(x2)) + b_scale^2 (delta_k(x1) . delta_k'(x2)):
//! the NTK is a sum over layers of Hadamard products of Gram matrices (neural-tangents'
//! "structured derivatives"). Memory: the activations and deltas, O(n width depth out_dim), plus
//! the n1 x n2 Gram matrices.

use ndarray::{Array2, Array4, ArrayView2, Zip};

use crate::error::Error;
use crate::linalg::matmul;
use crate::memory::Plan;
use crate::network::{Forward, Network, check_output};

/// Both inputs' forward passes and output deltas (x2 = None: the same as x1).
struct Sides {
    fwd1: Forward,
    deltas1: Vec<Array2<f64>>,
    other: Option<(Forward, Vec<Array2<f64>>)>,
}

impl Sides {
    /// Both sides' forward passes and deltas, once `outputs` (the result and the temporaries of
    /// the caller, planned with the passes) fit in memory.
    fn new(net: &Network, x1: ArrayView2<f64>, x2: Option<ArrayView2<f64>>, outputs: Plan) -> Result<Self, Error> {
        net.check_inputs(&x1, "x1")?;
        if let Some(x2) = &x2 {
            net.check_inputs(x2, "x2")?;
        }
        let second = x2.as_ref().map_or(Plan::new(), |x2| net.forward_plan(x2.nrows(), true));
        net.forward_plan(x1.nrows(), true).plus(second).plus(outputs).check_advising(
            if x2.is_some() { "x1, x2: this empirical kernel" } else { "x1: this empirical kernel" },
            "compute it in blocks of rows",
        )?;
        let fwd1 = net.forward(x1)?;
        let deltas1 = net.output_deltas(&fwd1);
        let other = x2
            .map(|x2| {
                let fwd = net.forward(x2)?;
                let deltas = net.output_deltas(&fwd);
                Ok::<_, Error>((fwd, deltas))
            })
            .transpose()?;
        Ok(Sides { fwd1, deltas1, other })
    }

    fn second(&self) -> (&Forward, &[Array2<f64>]) {
        match &self.other {
            Some((f, d)) => (f, d),
            None => (&self.fwd1, &self.deltas1),
        }
    }

    /// h(x1) . h(x2) for the input of Dense layer l.
    fn input_gram(&self, layer: usize) -> Array2<f64> {
        self.gram(self.fwd1.inputs[layer].view(), self.second().0.inputs[layer].view())
    }

    /// a b^T, by the half-work symmetric product when both sides are the same inputs.
    fn gram(&self, a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
        if self.other.is_none() { crate::linalg::gram(a) } else { matmul(a, b.t()).expect("shapes") }
    }
}

/// The empirical NTK averaged over outputs (neural-tangents' trace_axes=(-1,)), (n1, n2).
pub fn ntk_traced(net: &Network, x1: ArrayView2<f64>, x2: Option<ArrayView2<f64>>) -> Result<Array2<f64>, Error> {
    let n2 = x2.as_ref().map_or(x1.nrows(), |x| x.nrows());
    // the result, and the input and delta Gram matrices of one layer at a time
    let sides = Sides::new(net, x1, x2, Plan::new().add([x1.nrows(), n2, 3], 8))?;
    let (fwd2, deltas2) = sides.second();
    let (n1, n2, k) = (x1.nrows(), fwd2.output.nrows(), net.out_dim());
    let depth = net.layers.len() - 1;
    // The readout: delta_k . delta_k = 1 for each output, so the mean over outputs is 1.
    let (w2, b2) = net.ntk_weights(depth);
    let mut theta = sides.input_gram(depth);
    theta.mapv_inplace(|g| w2 * g + b2);
    for layer in 0..depth {
        crate::interrupt::check()?;
        let (w2, b2) = net.ntk_weights(layer);
        let width = sides.deltas1[layer].ncols();
        // Rows i * k + kk of the deltas, regrouped as rows i of k * width: one GEMM sums over outputs.
        let d1 = sides.deltas1[layer].view().into_shape_with_order((n1, k * width)).expect("contiguous");
        let d2 = deltas2[layer].view().into_shape_with_order((n2, k * width)).expect("contiguous");
        let delta_gram = sides.gram(d1, d2);
        let input_gram = sides.input_gram(layer);
        let inv_k = 1.0 / k as f64;
        Zip::from(&mut theta)
            .and(&input_gram)
            .and(&delta_gram)
            .par_for_each(|t, &g, &d| *t += (w2 * g + b2) * d * inv_k);
    }
    crate::interrupt::check()?;
    check_output(theta.iter(), if x2.is_some() { "x1 and x2" } else { "x1" })?;
    Ok(theta)
}

/// The full empirical NTK Theta[i, j, k, k'] = <d f_k(x1_i)/d theta, d f_k'(x2_j)/d theta>.
pub fn ntk_full(net: &Network, x1: ArrayView2<f64>, x2: Option<ArrayView2<f64>>) -> Result<Array4<f64>, Error> {
    let (n1, n2, k) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()), net.out_dim());
    // the result, one layer's delta Gram matrix (as large) and input Gram matrices
    let sides = Sides::new(net, x1, x2, Plan::new().add([n1, n2, k, k, 2], 8).add([n1, n2, 2], 8))?;
    let (_, deltas2) = sides.second();
    let depth = net.layers.len() - 1;
    let mut theta = Array4::<f64>::zeros((n1, n2, k, k));
    let (w2, b2) = net.ntk_weights(depth);
    let readout = sides.input_gram(depth);
    for i in 0..n1 {
        for j in 0..n2 {
            let v = w2 * readout[[i, j]] + b2;
            for kk in 0..k {
                theta[[i, j, kk, kk]] = v;
            }
        }
    }
    for layer in 0..depth {
        crate::interrupt::check()?;
        let (w2, b2) = net.ntk_weights(layer);
        let delta_gram = matmul(sides.deltas1[layer].view(), deltas2[layer].t()).expect("shapes"); // (n1 k, n2 k)
        let input_gram = sides.input_gram(layer);
        for i in 0..n1 {
            for j in 0..n2 {
                let scale = w2 * input_gram[[i, j]] + b2;
                for a in 0..k {
                    for c in 0..k {
                        theta[[i, j, a, c]] += scale * delta_gram[[i * k + a, j * k + c]];
                    }
                }
            }
        }
    }
    crate::interrupt::check()?;
    check_output(theta.iter(), if x2.is_some() { "x1 and x2" } else { "x1" })?;
    Ok(theta)
}

/// The empirical NNGP f(x1) f(x2)^T / out_dim.
pub fn nngp(net: &Network, x1: ArrayView2<f64>, x2: Option<ArrayView2<f64>>) -> Result<Array2<f64>, Error> {
    net.check_inputs(&x1, "x1")?;
    if let Some(x2) = &x2 {
        net.check_inputs(x2, "x2")?;
    }
    let n2 = x2.as_ref().map_or(x1.nrows(), |x| x.nrows());
    let second = x2.as_ref().map_or(Plan::new(), |x2| net.forward_plan(x2.nrows(), false));
    net.forward_plan(x1.nrows(), false).plus(second).add([x1.nrows(), n2], 8).check_advising(
        if x2.is_some() { "x1, x2: this empirical kernel" } else { "x1: this empirical kernel" },
        "compute it in blocks of rows",
    )?;
    let f1 = net.apply(x1)?;
    let f2 = match x2 {
        Some(x2) => net.apply(x2)?,
        None => f1.clone(),
    };
    let mut k = matmul(f1.view(), f2.t()).expect("shapes");
    k.mapv_inplace(|v| v / net.out_dim() as f64);
    crate::interrupt::check()?;
    check_output(k.iter(), if x2.is_some() { "x1 and x2" } else { "x1" })?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::network::DenseParams;
    use crate::spec::{Dense, Mlp, Parameterization};
    use ndarray::{Array1, Array2};

    fn net(out_dim: usize, param: Parameterization) -> Network {
        let dense = Dense::new(1.2, Some(0.3), "W_std", "b_std").unwrap();
        let mlp = Mlp::new(2, Activation::Erf { a: 1.0, b: 1.0, c: 0.0 }, dense, dense, param).unwrap();
        let dims = [3, 6, 5, out_dim];
        let layers = (0..3)
            .map(|l| DenseParams {
                w: Array2::from_shape_fn((dims[l], dims[l + 1]), |(i, j)| ((i * 7 + j * 3 + l) as f64 * 0.91).sin()),
                b: Some(Array1::from_shape_fn(dims[l + 1], |j| ((j + l) as f64 * 0.53).cos())),
            })
            .collect();
        Network::new(&mlp, layers, None).unwrap()
    }

    /// J J^T from central differences of every parameter: the definition of the NTK.
    fn ntk_by_differences(net: &Network, x: &Array2<f64>) -> Array2<f64> {
        let (n, k) = (x.nrows(), net.out_dim());
        let mut columns: Vec<Array2<f64>> = Vec::new();
        let perturb = |l: usize, which: usize, idx: usize, eps: f64| {
            let mut p = net.clone();
            if which == 0 {
                let cols = p.layers[l].w.ncols();
                p.layers[l].w[[idx / cols, idx % cols]] += eps;
            } else {
                p.layers[l].b.as_mut().unwrap()[idx] += eps;
            }
            p.apply(x.view()).unwrap()
        };
        for l in 0..net.layers.len() {
            for which in 0..2 {
                let count = if which == 0 { net.layers[l].w.len() } else { net.layers[l].b.as_ref().unwrap().len() };
                for idx in 0..count {
                    columns.push((perturb(l, which, idx, 1e-6) - perturb(l, which, idx, -1e-6)) / 2e-6);
                }
            }
        }
        let mut theta = Array2::<f64>::zeros((n * k, n * k));
        for col in &columns {
            for a in 0..n * k {
                for b in 0..n * k {
                    theta[[a, b]] += col[[a / k, a % k]] * col[[b / k, b % k]];
                }
            }
        }
        theta
    }

    #[test]
    fn structured_ntk_is_j_j_transpose() {
        for param in [Parameterization::Ntk, Parameterization::Standard { width: 6 }] {
            let net = net(2, param);
            let x = Array2::from_shape_fn((4, 3), |(i, j)| ((i * 3 + j) as f64 * 0.77).cos());
            let want = ntk_by_differences(&net, &x);
            let full = ntk_full(&net, x.view(), None).unwrap();
            let traced = ntk_traced(&net, x.view(), Some(x.view())).unwrap();
            for i in 0..4 {
                for j in 0..4 {
                    for a in 0..2 {
                        for c in 0..2 {
                            assert!((full[[i, j, a, c]] - want[[i * 2 + a, j * 2 + c]]).abs() < 1e-6);
                        }
                    }
                    let mean = (want[[i * 2, j * 2]] + want[[i * 2 + 1, j * 2 + 1]]) / 2.0;
                    assert!((traced[[i, j]] - mean).abs() < 1e-6);
                }
            }
        }
    }
}
