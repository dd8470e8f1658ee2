//! Any activation, by Gauss-Hermite quadrature and Hermite series (Mehler's formula).
//!
//! For pre-activation variance q = s^2, expand phi(s z) = sum_k a_k(q) h_k(z) in the normalised
//! probabilists' Hermite polynomials h_k (z ~ N(0, 1)); then for inputs i, j with correlation rho
//!   Sigma-hat_ij = E[phi(u) phi(v)] = sum_k a_k(q_i) a_k(q_j) rho^k,
//! and likewise Sigma-dot with the coefficients b_k of phi'. The coefficients need phi only at the
//! quadrature nodes s_i z_m of each input and layer (a batch of n x degree values per layer:
//! native Rust functions, or one call of a vectorised Python function), and the per-entry work is
//! two polynomials in rho. Without phi' the b_k follow from differentiating the series:
//! phi'(s z) = (1/s) sum_k sqrt(k + 1) a_(k+1) h_k(z). Diagonal entries use the quadrature of
//! phi^2 and phi'^2 directly (exact for correlation 1 rather than a truncated series).
//! The quadrature degree adapts until the series and the quadrature have converged (`diagonal`),
//! and each entry sums only the terms its correlation needs (`used_terms`).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::activation::{Affine, Builtin, ColumnInputs, Dual, RowInput};
use crate::error::Error;
use crate::float::{MulAdd, Real};
use crate::hermite::{self, Rule};
use crate::linalg::matmul;

/// phi (and phi' when known) at a batch of points.
pub trait PointwiseFn: Sync {
    /// Fills `value` (and `slope` if it returns Ok(true); Ok(false): phi' is not available).
    fn eval(&self, x: &[f64], value: &mut [f64], slope: &mut [f64]) -> Result<bool, Error>;
}

impl PointwiseFn for Builtin {
    fn eval(&self, x: &[f64], value: &mut [f64], slope: &mut [f64]) -> Result<bool, Error> {
        value.par_iter_mut().zip(slope.par_iter_mut()).zip(x.par_iter()).for_each(|((v, s), &x)| {
            (*v, *s) = self.value_and_derivative(x);
        });
        Ok(true)
    }
}

/// Per layer and input (index layer * n + i): 1/s and the series coefficients, term-major
/// (`a[k * len + index]`) so that a tile row's columns are contiguous for each k.
#[derive(Clone, Debug)]
pub struct Tables<T> {
    pub inv_sigma: Vec<T>,
    pub a: Vec<T>,
    pub b: Vec<T>,
    pub len: usize,
    pub terms: usize,
}

impl<T: Real> Tables<T> {
    fn cast<U: Real>(&self) -> Tables<U> {
        let cast = |v: &[T]| v.iter().map(|&x| U::from_f64(x.to_f64())).collect();
        Tables {
            inv_sigma: cast(&self.inv_sigma),
            a: cast(&self.a),
            b: cast(&self.b),
            len: self.len,
            terms: self.terms,
        }
    }
}

/// The quadrature of one layer for all inputs: coefficients (n, terms) of phi and phi', and the
/// diagonal E[phi^2], E[phi'^2].
struct LayerSeries {
    a: Array2<f64>,
    b: Array2<f64>,
    nngp_diag: Vec<f64>,
    dot_diag: Vec<f64>,
    /// phi' came from differentiating the series (its `dot_diag` is then the series' own sum).
    derived: bool,
}

/// phi (and phi' when `f` has it: the flag) at s_i z_m for every input i and node z_m,
/// input-major, followed by phi at the `extra` points.
fn evaluate(
    f: &dyn PointwiseFn,
    sigma: &[f64],
    nodes: &[f64],
    extra: &[f64],
) -> Result<(Vec<f64>, Vec<f64>, bool), Error> {
    let mut points = Vec::with_capacity(sigma.len() * nodes.len() + extra.len());
    for &s in sigma {
        points.extend(nodes.iter().map(|&z| s * z));
    }
    points.extend(extra);
    let mut value = vec![0.0; points.len()];
    let mut slope = vec![0.0; points.len()];
    let has_slope = f.eval(&points, &mut value, &mut slope)?;
    for (what, values) in [("function", &value), ("derivative", &slope)] {
        if what == "derivative" && !has_slope {
            continue;
        }
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid("activation", format!("the {what} is not finite at x = {}", points[bad])));
        }
    }
    Ok((value, slope, has_slope))
}

/// sum_m w_m v_m^2.
fn second_moment(values: &[f64], weights: &[f64]) -> f64 {
    values.iter().zip(weights).map(|(v, w)| w * v * v).sum()
}

/// `second_moment` of each row of the (n, d) values.
fn second_moments(values: &[f64], weights: &[f64]) -> Vec<f64> {
    values.chunks_exact(weights.len()).map(|row| second_moment(row, weights)).collect()
}

/// An estimate of the relative error of the diagonal moments E[phi^2] (and E[phi'^2] when `f`
/// has phi') that the `degree`-point rule gave as `nngp_diag` / `dot_diag`, from the same moments
/// by rules of half and a quarter of the degree: with changes c1 (quarter to half) and c2 (half
/// to full), convergence at the rate r = c2 / c1 leaves about c2 r / (1 - r). Smooth integrands
/// converge geometrically (r tiny, so is the estimate); kinks converge algebraically (r ~ 1/2,
/// estimate ~ c2) and so are caught, which the series tail cannot see.
fn quadrature_error(
    f: &dyn PointwiseFn,
    q: &[f64],
    degree: usize,
    nngp_diag: &[f64],
    dot_diag: Option<&[f64]>,
) -> Result<f64, Error> {
    if degree < 8 {
        return Ok(0.0);
    }
    let (half, quarter) = (hermite::rule(degree / 2)?, hermite::rule(degree / 4)?);
    // one call for both rules' nodes (a Python function is called once)
    let nodes: Vec<f64> = half.nodes.iter().chain(&quarter.nodes).copied().collect();
    let (value, slope, has_slope) = evaluate(f, &sigmas(q), &nodes, &[])?;
    let split = half.nodes.len();
    // per input: (moment by the half rule, by the quarter rule)
    let moments = |values: &[f64]| -> Vec<(f64, f64)> {
        values
            .chunks_exact(nodes.len())
            .map(|row| (second_moment(&row[..split], &half.weights), second_moment(&row[split..], &quarter.weights)))
            .collect()
    };
    let coarse_nngp = moments(&value);
    let coarse_dot = (has_slope && dot_diag.is_some()).then(|| moments(&slope));
    let estimate = |full: f64, half: f64, quarter: f64| {
        let (c1, c2) = ((half - quarter).abs(), (full - half).abs());
        let rate = if c1 > 0.0 { (c2 / c1).min(0.9) } else { 0.0 };
        let error = if c1 > 0.0 { c2 * rate / (1.0 - rate) } else { c2 };
        if full > 0.0 { error / full } else { 0.0 }
    };
    let mut worst: f64 = 0.0;
    for i in 0..q.len() {
        worst = worst.max(estimate(nngp_diag[i], coarse_nngp[i].0, coarse_nngp[i].1));
        if let (Some(dot), Some(coarse)) = (dot_diag, &coarse_dot) {
            worst = worst.max(estimate(dot[i], coarse[i].0, coarse[i].1));
        }
    }
    Ok(worst)
}

/// Standard deviations of the variances `q`.
fn sigmas(q: &[f64]) -> Vec<f64> {
    q.iter().map(|&v| v.max(0.0).sqrt()).collect()
}

fn layer_series(f: &dyn PointwiseFn, q: &[f64], rule: &Rule) -> Result<LayerSeries, Error> {
    let Rule { nodes, weights, basis, terms } = rule;
    let (terms, (n, d)) = (*terms, (q.len(), nodes.len()));
    let sigma = sigmas(q);
    // Inputs of zero variance are evaluated at +-h too, for phi'(0) by central differences.
    const H: f64 = 1e-5;
    let (value, slope, has_slope) = evaluate(f, &sigma, nodes, &[H, -H])?;
    let phi = ArrayView2::from_shape((n, d), &value[..n * d]).expect("n * d");
    let a = matmul(phi, basis.view())?;
    let nngp_diag = second_moments(&value[..n * d], weights);
    let (b, dot_diag) = if has_slope {
        let dphi = ArrayView2::from_shape((n, d), &slope[..n * d]).expect("n * d");
        let b = matmul(dphi, basis.view())?;
        (b, second_moments(&slope[..n * d], weights))
    } else {
        // phi'(s z) = (1/s) sum_k sqrt(k + 1) a_(k+1) h_k(z): the derivative of the series.
        let central = (value[n * d] - value[n * d + 1]) / (2.0 * H);
        let b = Array2::from_shape_fn((n, terms), |(i, k)| {
            if sigma[i] > 0.0 {
                if k + 1 < terms { ((k + 1) as f64).sqrt() * a[[i, k + 1]] / sigma[i] } else { 0.0 }
            } else if k == 0 {
                central
            } else {
                0.0
            }
        });
        let diag = (0..n).map(|i| b.row(i).iter().map(|v| v * v).sum()).collect();
        (b, diag)
    };
    Ok(LayerSeries { a, b, nngp_diag, dot_diag, derived: !has_slope })
}

/// The largest quadrature degree the adaptive rule goes to (1792 series terms).
pub const MAX_DEGREE: usize = crate::activation::MAX_SERIES_DEGREE;

/// The error estimate above which the degree is doubled. The estimate (`Series::error`) is the
/// largest of: the series' relative truncation error on the diagonal (sum_(k >= terms) a_k^2 /
/// E[phi^2], likewise for phi'), and the quadrature's own error on E[phi^2] and E[phi'^2]
/// (`quadrature_error`, e.g. at kinks).
pub const ERROR_TOLERANCE: f64 = 1e-10;

/// The error estimate above which the series has not converged even at `MAX_DEGREE` (kernel
/// entries may be off by about that much, relative): the Python binding warns.
pub const ERROR_WARNING: f64 = 1e-8;

/// One series activation's work on a set of inputs (pre-activation variances `q`): its tables,
/// the exact diagonal maps E[phi^2] and E[phi'^2] per input, and the largest error estimate met
/// (see `ERROR_TOLERANCE`).
pub struct SlotSeries {
    pub tables: Tables<f64>,
    pub nngp_diag: Vec<f64>,
    pub dot_diag: Vec<f64>,
    pub error: f64,
}

/// The series of `f` for inputs of variances `q` with the `degree`-point rule.
pub fn slot_series(f: &dyn PointwiseFn, q: &[f64], degree: usize) -> Result<SlotSeries, Error> {
    // A degree-point rule gives accurate coefficients far beyond degree / 2 for smooth phi.
    let rule = hermite::rule(degree)?;
    let (n, terms) = (q.len(), rule.terms);
    let series = layer_series(f, q, &rule)?;
    let mut error: f64 = 0.0;
    for i in 0..n {
        let captured = |row: ndarray::ArrayView1<f64>, total: f64| {
            if total > 0.0 { ((total - row.iter().map(|v| v * v).sum::<f64>()) / total).abs() } else { 0.0 }
        };
        // A derived phi' has no independent second moment to compare with: the share of its
        // series in the last eighth of the terms stands in for the tail (tiny once converged).
        let last_eighth = |row: ndarray::ArrayView1<f64>, total: f64| {
            let late: f64 = row.iter().skip(terms - terms / 8).map(|v| v * v).sum();
            if total > 0.0 { late / total } else { 0.0 }
        };
        let (b, dot) = (series.b.row(i), series.dot_diag[i]);
        let dot_tail = if series.derived { last_eighth(b, dot) } else { captured(b, dot) };
        error = error.max(captured(series.a.row(i), series.nngp_diag[i])).max(dot_tail);
    }
    let dot = (!series.derived).then_some(series.dot_diag.as_slice());
    error = error.max(quadrature_error(f, q, degree, &series.nngp_diag, dot)?);
    let mut tables =
        Tables { inv_sigma: vec![0.0; n], a: vec![0.0; terms * n], b: vec![0.0; terms * n], len: n, terms };
    for i in 0..n {
        tables.inv_sigma[i] = if q[i] > 0.0 { 1.0 / q[i].sqrt() } else { 0.0 };
        for k in 0..terms {
            tables.a[k * n + i] = series.a[[i, k]];
            tables.b[k * n + i] = series.b[[i, k]];
        }
    }
    Ok(SlotSeries { tables, nngp_diag: series.nngp_diag, dot_diag: series.dot_diag, error })
}

/// Runs `at(degree, inputs)` (a diagonal pass at one quadrature degree, returning its result and
/// error estimate) from `degree`, doubling up to `max_degree` while the estimate exceeds
/// `ERROR_TOLERANCE`: steep activations at large variance need more terms. The degree is first
/// found on a few inputs spread over the input variances (each try costs O(n degree terms)),
/// then all inputs are computed at it (doubling on if some input needs it). `fits(degree)` fails
/// when the request's memory at that degree is too much. Returns the result and the degree.
#[allow(clippy::type_complexity)]
pub fn adaptive<R>(
    degree: usize,
    max_degree: usize,
    input_variance: &[f64],
    fits: &dyn Fn(usize) -> Result<(), Error>,
    at: &dyn Fn(usize, &[f64]) -> Result<(R, f64), Error>,
) -> Result<(R, usize), Error> {
    let mut degree = degree;
    const PROBES: usize = 33;
    if input_variance.len() > 2 * PROBES {
        let mut order: Vec<usize> = (0..input_variance.len()).collect();
        order.sort_by(|&i, &j| input_variance[i].total_cmp(&input_variance[j]));
        let last = order.len() - 1;
        let probes: Vec<f64> = (0..PROBES).map(|p| input_variance[order[p * last / (PROBES - 1)]]).collect();
        degree = adaptive(degree, max_degree, &probes, &|_| Ok(()), at)?.1;
    }
    loop {
        fits(degree)?;
        let (result, error) = at(degree, input_variance)?;
        if error <= ERROR_TOLERANCE || degree >= max_degree {
            return Ok((result, degree));
        }
        degree = (2 * degree).min(max_degree);
    }
}

/// The dual of a series activation over both inputs' tables.
#[derive(Clone, Copy)]
pub struct SeriesDual<'a, T> {
    rows: &'a Tables<T>,
    cols: &'a Tables<T>,
}

impl<'a, T: Real> SeriesDual<'a, T> {
    pub fn new(rows: &'a Tables<T>, cols: &'a Tables<T>) -> Self {
        assert_eq!(rows.terms, cols.terms, "both sides' tables come from one quadrature degree");
        SeriesDual { rows, cols }
    }
}

/// How many leading terms of a series in rho matter for |rho| <= `rho_max`: by Cauchy-Schwarz the
/// rest sum to at most rho_max^k sqrt(E[phi(u)^2] E[phi(v)^2]), dropped once below T's rounding.
/// Weakly correlated entries (typical of the first layers) need far fewer than all terms.
#[inline(always)]
fn used_terms<T: Real>(rho_max: T, terms: usize) -> usize {
    let rho_max = rho_max.to_f64();
    if rho_max >= 1.0 {
        return terms;
    }
    let needed = (T::EPSILON.to_f64() / 16.0).ln() / rho_max.ln();
    if needed < terms as f64 { needed as usize + 1 } else { terms }
}

/// Tables in the type the kernel is computed in.
pub fn tables_as<T: Real>(tables: &Tables<f64>) -> Tables<T> {
    tables.cast()
}

impl<T: Real> Dual<T> for SeriesDual<'_, T> {
    const LAYER_MAJOR: bool = true;

    #[inline(always)]
    fn aux(&self, _q: T) -> T {
        T::ZERO
    }

    /// One entry (the tile loops use `apply_row`).
    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, _q11: T, _q22: T, aux1: T, aux2: T) -> (T, T) {
        // the identity map, then the activation, Theta = 1
        let identity = crate::activation::IdentityMap;
        let (mut s, mut t) = ([q12], [T::ZERO]);
        let row = RowInput { q: T::ZERO, aux: T::ZERO, root: T::ZERO, index: aux1.to_f64() as usize };
        let zero = [T::ZERO];
        let cols = ColumnInputs { q: &zero, aux: &zero, root: &zero, index: aux2.to_f64() as usize };
        self.layer_row::<M, true, _>((&identity, true), &mut s, &mut t, row, cols);
        (s[0], t[0])
    }

    /// The Dense map, then Horner's rule over the series terms with the columns innermost, in
    /// chunks that stay in registers: per term two FMAs on contiguous table slices.
    #[inline(always)]
    fn layer_row<M: MulAdd, const NTK: bool, A: Affine<T>>(
        &self,
        (step, first): (&A, bool),
        sigma: &mut [T],
        theta: &mut [T],
        row: RowInput<T>,
        cols: ColumnInputs<'_, T>,
    ) {
        // (the correlation is clamped to [-1, 1] below)
        let (i, index2) = (row.index, cols.index);
        if NTK {
            for (s, t) in sigma.iter_mut().zip(theta.iter_mut()) {
                let theta_hat = if first { T::ZERO } else { *t };
                *t = step.theta::<M>(*s, theta_hat);
                *s = step.sigma::<M>(*s);
            }
        } else {
            for s in sigma.iter_mut() {
                *s = step.sigma::<M>(*s);
            }
        }
        const CHUNK: usize = 32;
        let (r, c) = (self.rows, self.cols);
        for start in (0..sigma.len()).step_by(CHUNK) {
            let width = CHUNK.min(sigma.len() - start);
            let j0 = index2 + start;
            let mut rho = [T::ZERO; CHUNK];
            let (mut s, mut d) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
            let inv_row = r.inv_sigma[i];
            let mut rho_max = T::ZERO;
            for ((rho, &q12), &inv) in
                rho.iter_mut().zip(&sigma[start..start + width]).zip(&c.inv_sigma[j0..j0 + width])
            {
                *rho = (q12 * inv_row * inv).max_fast(-T::ONE).min_fast(T::ONE);
                rho_max = rho_max.max_fast(rho.abs());
            }
            for k in (0..used_terms(rho_max, r.terms)).rev() {
                let (ar, br) = (r.a[k * r.len + i], r.b[k * r.len + i]);
                let ac = &c.a[k * c.len + j0..][..width];
                let bc = &c.b[k * c.len + j0..][..width];
                for jj in 0..width {
                    s[jj] = M::mul_add(s[jj], rho[jj], ar * ac[jj]);
                    if NTK {
                        d[jj] = M::mul_add(d[jj], rho[jj], br * bc[jj]);
                    }
                }
            }
            sigma[start..start + width].copy_from_slice(&s[..width]);
            if NTK {
                for (t, &d) in theta[start..start + width].iter_mut().zip(&d[..width]) {
                    *t *= d;
                }
            }
        }
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        // (not used: diagonals come from `diagonal`'s quadrature)
        (q, T::ONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_derivatives_match_differences() {
        for f in [
            Builtin::Tanh,
            Builtin::Softplus,
            Builtin::Silu,
            Builtin::Elu,
            Builtin::Selu,
            Builtin::Sigmoid,
            Builtin::GeluTanh,
        ] {
            for &x in &[-3.0, -0.4, 0.7, 2.5] {
                let h = 1e-6;
                let fd = (f.value_and_derivative(x + h).0 - f.value_and_derivative(x - h).0) / (2.0 * h);
                assert!((fd - f.value_and_derivative(x).1).abs() < 1e-8, "{f:?} at {x}");
            }
        }
        assert!((Builtin::Softplus.value_and_derivative(800.0).0 - 800.0).abs() < 1e-12);
        assert!(Builtin::Sigmoid.value_and_derivative(-800.0).0.is_finite());
    }
}
