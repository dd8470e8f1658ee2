//! Gauss-Hermite rules for the standard normal, and the weighted Hermite basis that turns values
//! at the nodes into series coefficients. Rules are built once per degree and cached: building
//! one is O(degree * terms), far more than a small kernel costs.

use ndarray::Array2;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Error;
use crate::linalg;

/// A `degree`-point rule with the basis for its first `terms` normalised probabilists' Hermite
/// polynomials h_k.
pub struct Rule {
    pub nodes: Vec<f64>,
    /// Weights summing to 1 (the rule integrates against N(0, 1)).
    pub weights: Vec<f64>,
    /// (degree, terms): h_k(z_m) w_m, so that coefficients = values (n, degree) x basis.
    pub basis: Array2<f64>,
    pub terms: usize,
}

/// The number of series terms a `degree`-point rule resolves: a degree-point rule gives accurate
/// coefficients far beyond degree / 2 for smooth functions.
pub fn terms_of(degree: usize) -> usize {
    degree - degree / 8
}

/// How many rules the cache keeps at most.
const CACHED_RULES: usize = 24;

/// The cached rule of `degree` points.
pub fn rule(degree: usize) -> Result<Arc<Rule>, Error> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<Rule>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(rule) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&degree) {
        return Ok(rule.clone());
    }
    // Built outside the lock: two threads may both build a rule, and both results are equal.
    let (nodes, weights) = gauss_hermite(degree)?;
    let terms = terms_of(degree);
    let basis = weighted_hermite(&nodes, &weights, terms);
    let rule = Arc::new(Rule { nodes, weights, basis, terms });
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    // The adaptive degrees are few (powers of two times the user's degree), but a caller looping
    // over degrees must not grow the cache without bound (a 2048-point rule holds 29 MB).
    if cache.len() >= CACHED_RULES {
        cache.clear();
    }
    cache.insert(degree, rule.clone());
    Ok(rule)
}

/// The probabilists' Gauss-Hermite rule of `degree` points with weights summing to 1. Nodes: the
/// eigenvalues of the tridiagonal Jacobi matrix (off-diagonal sqrt(k), Golub-Welsch; LAPACK
/// dsterf, O(degree^2)), polished by Newton steps; weights from w_m = 1 / (degree h_(degree-1)(z_m)^2),
/// which keeps their relative accuracy down to the smallest doubles (eigenvector components only
/// have absolute accuracy: the tiny weights of the outer nodes would be noise of 1e-32).
pub fn gauss_hermite(degree: usize) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let off: Vec<f64> = (1..degree).map(|k| (k as f64).sqrt()).collect();
    let nodes = linalg::eigvals_tridiagonal(vec![0.0; degree], off)?;
    let mut polished = Vec::with_capacity(degree);
    let mut weights = Vec::with_capacity(degree);
    for &z0 in &nodes {
        let mut z = z0;
        for _ in 0..3 {
            let (h, previous, _) = hermite_pair(degree, z);
            let dh = (degree as f64).sqrt() * previous;
            if dh != 0.0 && (h / dh).is_finite() {
                z -= h / dh;
            }
        }
        let (_, previous, exponent) = hermite_pair(degree, z);
        polished.push(z);
        // 1 / (degree (previous 2^exponent)^2), scaled so that it underflows to 0 rather than
        // overflowing on the way
        let log2_weight = -2.0 * (previous.abs().log2() + exponent as f64) - (degree as f64).log2();
        weights.push(log2_weight.exp2());
    }
    let total: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= total);
    Ok((polished, weights))
}

/// (h_n(z), h_(n-1)(z), e) for the normalised probabilists' Hermite polynomials, both scaled by
/// 2^-e: at the outer nodes of a large rule they exceed the double range.
fn hermite_pair(n: usize, z: f64) -> (f64, f64, i32) {
    const STEP: i32 = 256;
    let (big, small) = (2f64.powi(STEP), 2f64.powi(-STEP));
    let (mut p0, mut p1, mut exponent) = (0.0, 1.0, 0); // h_(-1), h_0
    for k in 0..n {
        let p2 = (z * p1 - (k as f64).sqrt() * p0) / ((k + 1) as f64).sqrt();
        p0 = p1;
        p1 = p2;
        if p1.abs() > big {
            p0 *= small;
            p1 *= small;
            exponent += STEP;
        }
    }
    (p1, p0, exponent)
}

/// h_k(z_m) w_m for k < terms, as (degree, terms). The recurrence runs on sqrt(w_m) h_k(z_m),
/// which stays below 1 (the rows of an orthogonal matrix), and is multiplied by sqrt(w_m) at the
/// end: h_k alone overflows at the outer nodes of large rules, and w_m alone underflows.
fn weighted_hermite(nodes: &[f64], weights: &[f64], terms: usize) -> Array2<f64> {
    let mut basis = Array2::zeros((nodes.len(), terms));
    for (m, mut row) in basis.rows_mut().into_iter().enumerate() {
        let (z, root) = (nodes[m], weights[m].sqrt());
        let (mut p0, mut p1) = (0.0, root);
        for (k, out) in row.iter_mut().enumerate() {
            *out = p1 * root;
            let p2 = (z * p1 - (k as f64).sqrt() * p0) / ((k + 1) as f64).sqrt();
            p0 = p1;
            p1 = p2;
        }
    }
    basis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_hermite_rule_integrates_gaussian_moments() {
        let (_, w) = gauss_hermite(256).unwrap();
        // the outermost weight keeps its relative accuracy (it is below 1e-100)
        assert!(w[0] > 0.0 && w[0] < 1e-100 && (w[0] - w[255]).abs() <= 1e-10 * w[0]);
        let (z, w) = gauss_hermite(64).unwrap();
        let moment = |p: i32| z.iter().zip(&w).map(|(z, w)| w * z.powi(p)).sum::<f64>();
        assert!((moment(0) - 1.0).abs() < 1e-13);
        assert!((moment(2) - 1.0).abs() < 1e-12);
        assert!((moment(8) - 105.0).abs() < 1e-9);
    }

    #[test]
    fn large_rules_stay_finite_and_resolve_high_order_coefficients() {
        // at 2048 points h_(n-1) at the outer nodes is ~1e1000: the scaled recurrences must cope
        let rule = rule(2048).unwrap();
        assert!(rule.nodes.iter().chain(&rule.weights).all(|v| v.is_finite()));
        assert!(rule.nodes.windows(2).all(|p| p[0] < p[1]));
        let coefficients = |f: &dyn Fn(f64) -> f64| -> Vec<f64> {
            (0..rule.terms)
                .map(|k| rule.nodes.iter().enumerate().map(|(m, &z)| f(z) * rule.basis[[m, k]]).sum())
                .collect()
        };
        // sin(w z) = e^(-w^2 / 2) sum_(k odd) (-1)^((k - 1) / 2) w^k / sqrt(k!) h_k(z): for w = 30 the
        // weight sits near k = 900, and Parseval (sum a_k^2 = E[sin^2]) needs every one of them
        let w: f64 = 30.0;
        let a = coefficients(&|z| (w * z).sin());
        let sum_sq: f64 = a.iter().map(|v| v * v).sum();
        assert!((sum_sq - (1.0 - (-2.0 * w * w).exp()) / 2.0).abs() < 1e-10, "{sum_sq}");
        let log_factorial = |k: usize| (1..=k).map(|j| (j as f64).ln()).sum::<f64>();
        for k in [1, 301, 899, 900, 901, 1201] {
            let want = if k % 2 == 0 {
                0.0
            } else {
                let sign = if (k / 2) % 2 == 0 { 1.0 } else { -1.0 };
                sign * (-w * w / 2.0 + k as f64 * w.ln() - 0.5 * log_factorial(k)).exp()
            };
            assert!((a[k] - want).abs() < 1e-12, "k = {k}: {} vs {want}", a[k]);
        }
    }
}
