//! The layer recursion of an MLP's NNGP (Sigma) and NTK (Theta), for the diagonal (one input
//! with itself) and fused over all layers for a row segment of a Gram tile.
//!
//! Per hidden layer: Theta = ntk_alpha Sigma-hat + w2 Theta-hat + ntk_beta and
//! Sigma = w2 Sigma-hat + b2 (the Dense map, `DenseStep`), then the activation:
//! Sigma-hat = dual(Sigma), Theta-hat = Theta * Sigma-dot. The readout is a last Dense map.
//! The input kernel is Sigma-hat = x1.x2 / d with Theta-hat = 0.

use crate::activation::{ColumnInputs, Dual, RowInput};
use crate::float::{MulAdd, Real, Separate};
use crate::spec::DenseStep;

/// What the diagonal recursion yields for a set of inputs.
pub struct Diagonal {
    /// `variances[l * n + i]`: the pre-activation variance of input i at hidden layer l (the
    /// q11 / q22 the activation of that layer needs), layer-major so a tile's columns are a slice.
    pub variances: Vec<f64>,
    pub nngp: Vec<f64>,
    pub ntk: Vec<f64>,
    /// The largest magnitude met anywhere in the recursion (infinite if anything overflowed).
    /// Off-diagonal entries are bounded by the diagonal ones (Cauchy-Schwarz), so this bounds
    /// every value a Gram matrix computation will produce.
    pub peak: f64,
}

/// The exact diagonal recursion in f64 for inputs with mean squared features `input_variance`.
pub fn diagonal<D: Dual<f64>>(steps: &[DenseStep<f64>], dual: D, input_variance: &[f64]) -> Diagonal {
    type M = Separate;
    let depth = steps.len() - 1;
    let n = input_variance.len();
    let mut variances = vec![0.0; depth * n];
    let mut nngp = vec![0.0; n];
    let mut ntk = vec![0.0; n];
    let mut peak: f64 = 0.0;
    let mut track = |v: f64| peak = if v.is_finite() { peak.max(v.abs()) } else { f64::INFINITY };
    let token = crate::interrupt::current();
    for i in 0..n {
        if i % 64 == 0 && token.is_cancelled() {
            break; // the caller checks the token and discards the result
        }
        let (mut sigma_hat, mut theta_hat) = (input_variance[i], 0.0);
        for (layer, step) in steps[..depth].iter().enumerate() {
            let theta = step.theta::<M>(sigma_hat, theta_hat);
            let q = step.sigma::<M>(sigma_hat);
            variances[layer * n + i] = q;
            let (s, dot) = dual.dual_diag::<M>(q);
            sigma_hat = s;
            theta_hat = theta * dot;
            track(q);
            track(theta);
        }
        let readout = &steps[depth];
        ntk[i] = readout.theta::<M>(sigma_hat, theta_hat);
        nngp[i] = readout.sigma::<M>(sigma_hat);
        track(ntk[i]);
        track(nngp[i]);
    }
    Diagonal { variances, nngp, ntk, peak }
}

/// Per-layer quantities of a set of inputs, layer-major: `q[l * n + i]` is the variance of
/// input i at hidden layer l, `aux[l * n + i]` the dual's auxiliary of it and `root[l * n + i]`
/// its square root.
pub struct LayerStats<'a, T> {
    pub q: &'a [T],
    pub aux: &'a [T],
    pub root: &'a [T],
    pub n: usize,
}

impl<T: Real> LayerStats<'_, T> {
    /// Input `i` at hidden layer `layer`, as a row of a tile.
    #[inline(always)]
    pub fn row(&self, layer: usize, i: usize) -> RowInput<T> {
        let index = layer * self.n + i;
        RowInput { q: self.q[index], aux: self.aux[index], root: self.root[index], index }
    }

    /// Inputs `col0..col0 + len` at hidden layer `layer`, as the columns of a tile row.
    #[inline(always)]
    pub fn columns(&self, layer: usize, col0: usize, len: usize) -> ColumnInputs<'_, T> {
        let index = layer * self.n + col0;
        ColumnInputs {
            q: &self.q[index..][..len],
            aux: &self.aux[index..][..len],
            root: &self.root[index..][..len],
            index,
        }
    }
}

/// Runs every layer on one row segment of a Gram tile, in place, while it sits in cache.
///
/// `sigma` holds the input kernel x1.x2/d on entry and the NNGP on exit; with `NTK`, `theta`
/// receives the NTK (its entry values are ignored). Row `row` of `rows` against the columns
/// `cols` from `col0`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn row<T: Real, D: Dual<T>, M: MulAdd, const NTK: bool>(
    steps: &[DenseStep<T>],
    dual: D,
    rows: &LayerStats<T>,
    row: usize,
    cols: &LayerStats<T>,
    col0: usize,
    sigma: &mut [T],
    theta: &mut [T],
) {
    let depth = steps.len() - 1;
    for layer in 0..depth {
        row_layer::<T, D, M, NTK>(steps, dual, layer, rows.row(layer, row), cols, col0, sigma, theta);
    }
    row_readout::<T, M, NTK>(&steps[depth], depth == 0, sigma, theta);
}

/// Hidden layer `layer` of one row alone (`row_input`: the row at that layer), for tiles that
/// run layer by layer (`Dual::LAYER_MAJOR`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn row_layer<T: Real, D: Dual<T>, M: MulAdd, const NTK: bool>(
    steps: &[DenseStep<T>],
    dual: D,
    layer: usize,
    row_input: RowInput<T>,
    cols: &LayerStats<T>,
    col0: usize,
    sigma: &mut [T],
    theta: &mut [T],
) {
    let len = sigma.len();
    let theta = &mut theta[..if NTK { len } else { 0 }];
    dual.layer_row::<M, NTK>((&steps[layer], layer == 0), sigma, theta, row_input, cols.columns(layer, col0, len));
}

/// The readout Dense map on a row segment; `first`: no hidden layer before it.
#[inline(always)]
pub fn row_readout<T: Real, M: MulAdd, const NTK: bool>(
    readout: &DenseStep<T>,
    first: bool,
    sigma: &mut [T],
    theta: &mut [T],
) {
    if NTK {
        for (s, t) in sigma.iter_mut().zip(theta.iter_mut()) {
            let theta_hat = if first { T::ZERO } else { *t };
            *t = readout.theta::<M>(*s, theta_hat);
        }
    }
    for s in sigma.iter_mut() {
        *s = readout.sigma::<M>(*s);
    }
}

/// Clamps a finished row segment of a kernel to the Cauchy-Schwarz bound of its diagonals,
/// |k(i, j)| <= sqrt(k(i, i) k(j, j)) (`row_root` = sqrt(k(i, i)), `col_roots[j]` = sqrt(k(j, j))),
/// and tells whether every entry is finite. The diagonals are exact; the bound keeps rounding in
/// the off-diagonal entries from making the matrix indefinite.
#[inline(always)]
pub fn clamp_row<T: Real>(row_root: T, col_roots: &[T], out: &mut [T]) -> bool {
    let mut finite = true;
    for (k, &c) in out.iter_mut().zip(col_roots) {
        let bound = row_root * c;
        finite &= k.is_finite();
        *k = k.min_fast(bound).max_fast(-bound);
    }
    finite
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::{AbRelu, Erf};
    use crate::float::Fused;

    fn steps(depth: usize, w2: f64, b2: f64) -> Vec<DenseStep<f64>> {
        vec![DenseStep { w2, b2, ntk_alpha: w2, ntk_beta: b2 }; depth + 1]
    }

    #[test]
    fn one_hidden_relu_layer_matches_hand_computation() {
        // Sigma1 = 2 q + 0.01, Sigma-hat = Sigma1 / 2, Sigma-dot = 1/2 on the diagonal.
        let q = 0.8;
        let d = diagonal(&steps(1, 2.0, 0.01), AbRelu::<f64>::new(0.0, 1.0), &[q]);
        let s1 = 2.0 * q + 0.01;
        assert!((d.variances[0] - s1).abs() < 1e-15);
        assert!((d.nngp[0] - (2.0 * s1 / 2.0 + 0.01)).abs() < 1e-15);
        assert!((d.ntk[0] - (2.0 * s1 / 2.0 + 0.01 + 2.0 * s1 * 0.5)).abs() < 1e-15);
    }

    #[test]
    fn row_on_identical_inputs_reproduces_the_diagonal() {
        for depth in [0, 1, 4] {
            let st = steps(depth, 1.7, 0.3);
            let q = 1.3;
            let dual = Erf::<f64>::new(1.2, 0.8, 0.1);
            let d = diagonal(&st, dual, &[q, q]);
            let aux: Vec<f64> = d.variances.iter().map(|&v| dual.aux(v)).collect();
            let root: Vec<f64> = d.variances.iter().map(|&v| v.sqrt()).collect();
            let cols = LayerStats { q: &d.variances, aux: &aux, root: &root, n: 2 };
            let (mut sig, mut th) = (vec![q, q], vec![0.0, 0.0]);
            row::<f64, _, Fused, true>(&st, dual, &cols, 0, &cols, 0, &mut sig, &mut th);
            for j in 0..2 {
                assert!((sig[j] - d.nngp[0]).abs() < 1e-14 * d.nngp[0]);
                assert!((th[j] - d.ntk[0]).abs() < 1e-14 * d.ntk[0]);
            }
            let mut sig_only = vec![q, q];
            row::<f64, _, Fused, false>(&st, dual, &cols, 0, &cols, 0, &mut sig_only, &mut []);
            assert_eq!(sig_only, sig);
        }
    }
}
