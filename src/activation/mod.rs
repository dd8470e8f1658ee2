//! Dual activations: for a pointwise nonlinearity phi and centred jointly Gaussian (u, v) with
//! Var u = q11, Var v = q22, Cov(u, v) = q12, the NNGP map Sigma-hat = E[phi(u) phi(v)] and the
//! derivative map Sigma-dot = E[phi'(u) phi'(v)] (no factor 2 folded in: He scaling is
//! W_std = sqrt(2)). One file per family; `Activation` is the value the spec carries and
//! `Activation::with_dual` hands a monomorphised `Dual` to the tile loops.

mod abrelu;
mod builtin;
mod erf;
mod exponential;
mod gabor;
mod gelu;
mod identity;
pub mod math;
mod monomial;
mod pointwise;
mod rbf;
mod sign;
mod trig;

pub use abrelu::AbRelu;
pub use builtin::Builtin;
pub use erf::Erf;
pub use exponential::{Exp, Gaussian};
pub use gabor::Gabor;
pub use gelu::Gelu;
pub use identity::Identity;
pub use monomial::{MAX_RECTIFIED_DEGREE, Monomial, RectifiedMonomial};
pub use rbf::Rbf;
pub use sign::Sign;
pub use trig::Sin;

use crate::error::Error;
use crate::float::{MulAdd, Real};

/// A dual activation evaluated per kernel entry. Implementations are branch-free so the tile
/// loops vectorise; what a caller does not use (Sigma-dot for an NNGP-only request) is removed
/// by the optimiser after inlining.
pub trait Dual<T: Real>: Copy + Send + Sync {
    /// Whether a Gram tile should run layer by layer over all its rows rather than all layers row
    /// by row: duals that read large per-column tables at every layer (the Hermite series) keep
    /// one layer's tables in cache that way; closed forms keep the row in cache the other way.
    const LAYER_MAJOR: bool = false;

    /// A per-input quantity the pair formula needs, computed once per input and layer rather
    /// than per entry (a square root: the entry loop then has one square root and one division).
    fn aux(&self, q: T) -> T;
    /// (Sigma-hat, Sigma-dot) at covariance `q12` of pre-activations with variances `q11`,
    /// `q22` and auxiliaries `aux1 = aux(q11)`, `aux2 = aux(q22)`.
    fn dual<M: MulAdd>(&self, q12: T, q11: T, q22: T, aux1: T, aux2: T) -> (T, T);
    /// The same at q12 = q11 = q22 = q, by the exact diagonal formula (no angle to resolve).
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T);
    /// One layer on a row segment in place: the Dense map `step` (Theta-hat ignored when `first`)
    /// then the activation. `sigma` holds the previous Sigma-hat on entry and the new one on exit;
    /// with `NTK`, `theta` likewise for Theta. The row input has variance `row.q`, auxiliary
    /// `row.aux`, standard deviation `row.root` and index `row.index` in its layer-major table;
    /// column j has `cols.q[j]`, `cols.aux[j]`, `cols.root[j]` and index `cols.index + j`.
    /// Fused per entry by default; duals with per-input tables override it to loop over columns
    /// innermost.
    ///
    /// The covariance after the Dense map is clamped to the Cauchy-Schwarz bound
    /// |q12| <= sqrt(q11 q22): rounding (in float32, or over hundreds of layers) can otherwise push
    /// a correlation past 1, where a deep recursion amplifies it into an indefinite kernel or an
    /// overflow.
    #[inline(always)]
    fn layer_row<M: MulAdd, const NTK: bool, A: Affine<T>>(
        &self,
        (step, first): (&A, bool),
        sigma: &mut [T],
        theta: &mut [T],
        row: RowInput<T>,
        cols: ColumnInputs<'_, T>,
    ) {
        let covariance = |s: T, r2: T| {
            let bound = row.root * r2;
            step.sigma::<M>(s).min_fast(bound).max_fast(-bound)
        };
        if NTK {
            for ((((s, t), &q2), &a2), &r2) in
                sigma.iter_mut().zip(theta.iter_mut()).zip(cols.q).zip(cols.aux).zip(cols.root)
            {
                let theta_hat = if first { T::ZERO } else { *t };
                let th = step.theta::<M>(*s, theta_hat);
                let (sigma_hat, dot) = self.dual::<M>(covariance(*s, r2), row.q, q2, row.aux, a2);
                *s = sigma_hat;
                *t = th * dot;
            }
        } else {
            for (((s, &q2), &a2), &r2) in sigma.iter_mut().zip(cols.q).zip(cols.aux).zip(cols.root) {
                *s = self.dual::<M>(covariance(*s, r2), row.q, q2, row.aux, a2).0;
            }
        }
    }
}

/// The affine map on (Sigma-hat, Theta-hat) that comes before an activation (a Dense layer's,
/// `spec::DenseStep`): `Dual::layer_row` applies it and the activation in one pass.
pub trait Affine<T>: Copy {
    /// Sigma from Sigma-hat.
    fn sigma<M: MulAdd>(&self, sigma_hat: T) -> T;
    /// Theta from Sigma-hat and Theta-hat.
    fn theta<M: MulAdd>(&self, sigma_hat: T, theta_hat: T) -> T;
}

/// The identity map (Sigma = Sigma-hat, Theta = 1 for a first layer), for evaluating a dual alone.
#[derive(Clone, Copy, Debug)]
pub struct IdentityMap;

impl<T: Real> Affine<T> for IdentityMap {
    #[inline(always)]
    fn sigma<M: MulAdd>(&self, sigma_hat: T) -> T {
        sigma_hat
    }
    #[inline(always)]
    fn theta<M: MulAdd>(&self, _sigma_hat: T, theta_hat: T) -> T {
        theta_hat + T::ONE
    }
}

/// The largest quadrature degree of a series activation.
pub const MAX_SERIES_DEGREE: usize = 2048;

/// The row input of `Dual::layer_row` at one layer.
#[derive(Clone, Copy, Debug)]
pub struct RowInput<T> {
    pub q: T,
    pub aux: T,
    /// sqrt(q).
    pub root: T,
    /// The row's index in its layer-major tables.
    pub index: usize,
}

/// The column inputs of `Dual::layer_row` at one layer (slices of the row segment's length).
#[derive(Clone, Copy, Debug)]
pub struct ColumnInputs<'a, T> {
    pub q: &'a [T],
    pub aux: &'a [T],
    pub root: &'a [T],
    /// The first column's index in its layer-major tables.
    pub index: usize,
}

/// Where a series activation's function comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesFunction {
    Builtin(Builtin),
    /// Supplied with the request (a Python callable), see `series::PointwiseFn`.
    External,
}

/// The activations with closed-form duals, with their parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// phi(x) = x.
    Identity,
    /// phi(x) = a min(x, 0) + b max(x, 0): ReLU (0, 1), LeakyReLU(alpha) (alpha, 1), Abs (-1, 1).
    AbRelu { a: f64, b: f64 },
    /// phi(x) = a erf(b x) + c.
    Erf { a: f64, b: f64, c: f64 },
    /// The exact (erf) GELU, x Phi(x).
    Gelu,
    /// phi(x) = sign(x); its derivative is 0 almost everywhere, so no NTK flows through it.
    Sign,
    /// phi(x) = a sin(b x + c) (Cos(a, b, c) is Sin(a, b, c + pi/2)).
    Sin { a: f64, b: f64, c: f64 },
    /// sqrt(2) sin(sqrt(2 gamma) x + pi/4): the RBF kernel exp(-gamma |u - v|^2) as NNGP map.
    Rbf { gamma: f64 },
    /// phi(x) = a exp(b x).
    Exp { a: f64, b: f64 },
    /// phi(x) = a exp(b x^2).
    Gaussian { a: f64, b: f64 },
    /// phi(x) = exp(-x^2) sin(x).
    Gabor,
    /// phi(x) = x^degree, degree 0..=5.
    Monomial { degree: u32 },
    /// phi(x) = [x >= 0] x^degree, degree 0..=10: the arc-cosine kernels.
    RectifiedMonomial { degree: u32 },
    /// Any activation, by a `degree`-point Gauss-Hermite quadrature and Hermite series
    /// (`series.rs`); `gram.rs` dispatches these itself.
    Series { function: SeriesFunction, degree: u32 },
}

/// The quadrature degree of series activations unless given.
pub const DEFAULT_SERIES_DEGREE: u32 = 128;

/// Something to run with the concrete `Dual` of an `Activation` (a generic closure).
pub trait WithDual<T: Real> {
    type Output;
    fn run<D: Dual<T>>(self, dual: D) -> Self::Output;
}

impl Activation {
    /// Builds an activation from its name and parameters, as the Python layer sends them.
    pub fn from_name(name: &str, params: &[f64]) -> Result<Self, Error> {
        let want = |n: usize| -> Result<(), Error> {
            if params.len() == n {
                Ok(())
            } else {
                Err(Error::invalid("activation", format!("{name} takes {n} parameter(s), got {}", params.len())))
            }
        };
        if let Some(bad) = params.iter().find(|p| !p.is_finite()) {
            return Err(Error::invalid("activation", format!("{name} parameters must be finite, got {bad}")));
        }
        let activation = match name {
            "identity" => want(0).map(|_| Activation::Identity)?,
            "abrelu" => want(2).map(|_| Activation::AbRelu { a: params[0], b: params[1] })?,
            "erf" => want(3).map(|_| Activation::Erf { a: params[0], b: params[1], c: params[2] })?,
            "gelu" => want(0).map(|_| Activation::Gelu)?,
            "sign" => want(0).map(|_| Activation::Sign)?,
            "sin" => want(3).map(|_| Activation::Sin { a: params[0], b: params[1], c: params[2] })?,
            "rbf" => {
                want(1)?;
                if params[0] <= 0.0 {
                    return Err(Error::invalid("gamma", format!("must be > 0, got {}", params[0])));
                }
                Activation::Rbf { gamma: params[0] }
            }
            "exp" => want(2).map(|_| Activation::Exp { a: params[0], b: params[1] })?,
            "gaussian" => want(2).map(|_| Activation::Gaussian { a: params[0], b: params[1] })?,
            "gabor" => want(0).map(|_| Activation::Gabor)?,
            "monomial" | "rectified_monomial" => {
                want(1)?;
                let max = if name == "monomial" { 5 } else { MAX_RECTIFIED_DEGREE };
                let degree = params[0];
                if degree.fract() != 0.0 || degree < 0.0 || degree > max as f64 {
                    return Err(Error::invalid("degree", format!("must be an integer from 0 to {max}, got {degree}")));
                }
                let degree = degree as u32;
                if name == "monomial" {
                    Activation::Monomial { degree }
                } else {
                    Activation::RectifiedMonomial { degree }
                }
            }
            other => {
                let function = match (other, Builtin::from_name(other)) {
                    (_, Some(builtin)) => SeriesFunction::Builtin(builtin),
                    ("external", None) => SeriesFunction::External,
                    _ => return Err(Error::invalid("activation", format!("unknown activation {other:?}"))),
                };
                want(1)?;
                let degree = params[0];
                if degree.fract() != 0.0 || !(4.0..=MAX_SERIES_DEGREE as f64).contains(&degree) {
                    return Err(Error::invalid(
                        "degree",
                        format!("must be an integer from 4 to {}, got {degree}", MAX_SERIES_DEGREE),
                    ));
                }
                Activation::Series { function, degree: degree as u32 }
            }
        };
        Ok(activation)
    }

    pub fn with_dual<T: Real, W: WithDual<T>>(&self, work: W) -> W::Output {
        match *self {
            Activation::Identity => work.run(Identity),
            Activation::AbRelu { a, b } => work.run(AbRelu::new(a, b)),
            Activation::Erf { a, b, c } => work.run(Erf::new(a, b, c)),
            Activation::Gelu => work.run(Gelu),
            Activation::Sign => work.run(Sign),
            Activation::Sin { a, b, c } => work.run(Sin::new(a, b, c)),
            Activation::Rbf { gamma } => work.run(Rbf::new(gamma)),
            Activation::Exp { a, b } => work.run(Exp::new(a, b)),
            Activation::Gaussian { a, b } => work.run(Gaussian::new(a, b)),
            Activation::Gabor => work.run(Gabor),
            Activation::Monomial { degree } => match degree {
                0 => work.run(Monomial::<0>),
                1 => work.run(Monomial::<1>),
                2 => work.run(Monomial::<2>),
                3 => work.run(Monomial::<3>),
                4 => work.run(Monomial::<4>),
                _ => work.run(Monomial::<5>),
            },
            Activation::RectifiedMonomial { degree } => work.run(RectifiedMonomial::new(degree)),
            // Their duals need per-input tables: gram.rs builds `series::SeriesDual` instead.
            Activation::Series { .. } => unreachable!("series activations are dispatched by gram.rs"),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Checks every dual against 2-D Gauss-Hermite quadrature of its own definition.
    use super::*;
    use crate::float::{Fused, Separate};

    /// Nodes and weights of the probabilists' Gauss-Hermite rule (weight e^{-x^2/2}/sqrt(2 pi)):
    /// the zeros of He_n are bracketed on a fine grid and polished by bisection.
    pub fn gauss_hermite(n: usize) -> (Vec<f64>, Vec<f64>) {
        let half_width = (4.0 * n as f64 + 2.0).sqrt() + 1.0;
        let steps = 400 * n;
        let mut nodes = Vec::with_capacity(n);
        let mut prev_x = -half_width;
        let mut prev_p = hermite_e(n, prev_x).0;
        for k in 1..=steps {
            let x = -half_width + 2.0 * half_width * k as f64 / steps as f64;
            let p = hermite_e(n, x).0;
            if (p > 0.0) != (prev_p > 0.0) {
                let (mut lo, mut hi, lo_p) = (prev_x, x, prev_p);
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    if (hermite_e(n, mid).0 > 0.0) == (lo_p > 0.0) { lo = mid } else { hi = mid }
                }
                nodes.push(0.5 * (lo + hi));
            }
            prev_x = x;
            prev_p = p;
        }
        assert_eq!(nodes.len(), n, "lost a Hermite zero");
        // w_i = n! / (n He_{n-1}(x_i))^2 = 1 / (n h_{n-1}(x_i)^2) with h normalised below.
        let weights = nodes.iter().map(|&x| 1.0 / (n as f64 * hermite_e(n - 1, x).0.powi(2))).collect();
        (nodes, weights)
    }

    /// Normalised probabilists' Hermite polynomial h_n = He_n / sqrt(n!) and its derivative.
    fn hermite_e(n: usize, x: f64) -> (f64, f64) {
        if n == 0 {
            return (1.0, 0.0);
        }
        let (mut p0, mut p1) = (1.0, x);
        for k in 1..n {
            let kf = k as f64;
            let p2 = (x * p1 - kf.sqrt() * p0) / (kf + 1.0).sqrt();
            p0 = p1;
            p1 = p2;
        }
        (p1, (n as f64).sqrt() * p0)
    }

    /// E[f(u) g(v)] for the Gaussian (q11, q22, q12) by a tensor Gauss-Hermite rule.
    pub fn expect2(f: impl Fn(f64) -> f64, g: impl Fn(f64) -> f64, q12: f64, q11: f64, q22: f64) -> f64 {
        let (x, w) = gauss_hermite(120);
        let s1 = q11.sqrt();
        let rho = if q11 > 0.0 && q22 > 0.0 { q12 / (q11 * q22).sqrt() } else { 0.0 };
        let s2 = q22.sqrt();
        let c = (1.0 - rho * rho).max(0.0).sqrt();
        let mut total = 0.0;
        for i in 0..x.len() {
            let u = s1 * x[i];
            let fu = f(u);
            for j in 0..x.len() {
                let v = s2 * (rho * x[i] + c * x[j]);
                total += w[i] * w[j] * fu * g(v);
            }
        }
        total
    }

    /// E[f(u) g(v)] for f, g positively homogeneous with f(ru) g(rv) = r^k f(u) g(v), k even:
    /// in polar coordinates the radial integral is E[r^k] (2^(k/2) (k/2)! for a chi-2 radius)
    /// and the angular one a midpoint rule, second-order accurate across the kinks.
    pub fn expect2_homogeneous(
        f: impl Fn(f64) -> f64,
        g: impl Fn(f64) -> f64,
        degree: i32,
        q12: f64,
        q11: f64,
        q22: f64,
    ) -> f64 {
        let m = 200_000;
        let (s1, s2) = (q11.sqrt(), q22.sqrt());
        let rho = q12 / (s1 * s2);
        let c = (1.0 - rho * rho).max(0.0).sqrt();
        // E[r^(2m)] = 2^m m! for a chi-2 radius
        let radial: f64 = (1..=degree / 2).map(|i| 2.0 * i as f64).product();
        let mut total = 0.0;
        for k in 0..m {
            let phi = 2.0 * std::f64::consts::PI * (k as f64 + 0.5) / m as f64;
            let (sn, cs) = phi.sin_cos();
            total += f(s1 * cs) * g(s2 * (rho * cs + c * sn));
        }
        radial * total / m as f64
    }

    #[test]
    fn gauss_hermite_integrates_moments() {
        let (x, w) = gauss_hermite(40);
        let m = |k: i32| x.iter().zip(&w).map(|(x, w)| w * x.powi(k)).sum::<f64>();
        assert!((m(0) - 1.0).abs() < 1e-13);
        assert!((m(2) - 1.0).abs() < 1e-13);
        assert!((m(4) - 3.0).abs() < 1e-12);
        assert!((m(6) - 15.0).abs() < 1e-11);
    }

    /// Compares `dual` at a spread of (q12, q11, q22) with reference values of Sigma-hat and
    /// Sigma-dot (quadrature of the definition), and `dual_diag` with `dual` on the diagonal.
    pub fn check_dual<D: Dual<f64>>(
        dual: D,
        nngp_ref: impl Fn(f64, f64, f64) -> f64,
        dot_ref: impl Fn(f64, f64, f64) -> f64,
        tol: f64,
    ) {
        check_dual_with::<D, Separate>(dual, &nngp_ref, &dot_ref, tol);
        check_dual_with::<D, Fused>(dual, &nngp_ref, &dot_ref, tol);
    }

    fn check_dual_with<D: Dual<f64>, M: MulAdd>(
        dual: D,
        nngp_ref: &dyn Fn(f64, f64, f64) -> f64,
        dot_ref: &dyn Fn(f64, f64, f64) -> f64,
        tol: f64,
    ) {
        for &(q11, q22) in &[(1.0, 1.0), (0.3, 2.5), (4.0, 0.7)] {
            for &rho in &[-0.95, -0.4, 0.0, 0.3, 0.8, 0.99] {
                let q12 = rho * f64::sqrt(q11 * q22);
                let (s, sd) = dual.dual::<M>(q12, q11, q22, dual.aux(q11), dual.aux(q22));
                let want = nngp_ref(q12, q11, q22);
                assert!((s - want).abs() <= tol * (1.0 + want.abs()), "nngp at {q12},{q11},{q22}: {s} vs {want}");
                let want = dot_ref(q12, q11, q22);
                assert!((sd - want).abs() <= tol * (1.0 + want.abs()), "dot at {q12},{q11},{q22}: {sd} vs {want}");
            }
        }
        for &q in &[1e-3, 0.5, 1.0, 7.0] {
            let (s, sd) = dual.dual_diag::<M>(q);
            let (s2, sd2) = dual.dual::<M>(q, q, q, dual.aux(q), dual.aux(q));
            assert!((s - s2).abs() <= 1e-13 * s.abs().max(1.0), "diag nngp {s} vs {s2}");
            assert!((sd - sd2).abs() <= 1e-13 * sd.abs().max(1.0), "diag dot {sd} vs {sd2}");
        }
    }
}
