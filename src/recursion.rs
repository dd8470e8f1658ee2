//! The per-entry steps of a plan on one row segment of a Gram tile: a Dense map with or without
//! the activation after it, LayerNorm, and the branch combinators. Each works in place on a
//! register's (NNGP, NTK) row segment while the tile is in cache.
//!
//! Dense (`DenseStep`): Theta = ntk_alpha Sigma-hat + w2 Theta-hat + ntk_beta and
//! Sigma = w2 Sigma-hat + b2; then an activation: Sigma-hat = dual(Sigma), Theta-hat = Theta *
//! Sigma-dot. LayerNorm: both divided by sqrt((k(x1, x1) + eps)(k(x2, x2) + eps)). FanInSum adds,
//! FanInProd multiplies (NTK by the product rule).

use crate::activation::{Affine, ColumnInputs, Dual, RowInput, WithDual};
use crate::float::{MulAdd, Real};
use crate::simd::{self, Vectorized};
use crate::spec::DenseStep;

/// Per-slot quantities of a set of inputs, slot-major: `q[s * n + i]` is input i's value at slot
/// s (`diagonal::Diagonal::variances`), `aux[s * n + i]` the slot's per-input auxiliary (the
/// dual's, or 1/sqrt(q + eps) for a LayerNorm) and `root[s * n + i]` sqrt(q).
pub struct LayerStats<'a, T> {
    pub q: &'a [T],
    pub aux: &'a [T],
    pub root: &'a [T],
    pub n: usize,
}

impl<T: Real> LayerStats<'_, T> {
    /// Input `i` at slot `slot`, as a row of a tile.
    #[inline(always)]
    pub fn row(&self, slot: usize, i: usize) -> RowInput<T> {
        let index = slot * self.n + i;
        RowInput { q: self.q[index], aux: self.aux[index], root: self.root[index], index: i }
    }

    /// Inputs `col0..col0 + len` at slot `slot`, as the columns of a tile row.
    #[inline(always)]
    pub fn columns(&self, slot: usize, col0: usize, len: usize) -> ColumnInputs<'_, T> {
        let index = slot * self.n + col0;
        ColumnInputs {
            q: &self.q[index..][..len],
            aux: &self.aux[index..][..len],
            root: &self.root[index..][..len],
            index: col0,
        }
    }
}

/// A Dense map alone on a row segment; `fresh`: Theta-hat is 0 (not read).
#[inline(always)]
pub fn dense<T: Real, const NTK: bool>(step: &DenseStep<T>, fresh: bool, sigma: &mut [T], theta: &mut [T]) {
    type M = crate::float::Separate;
    if NTK {
        for (s, t) in sigma.iter_mut().zip(theta.iter_mut()) {
            let theta_hat = if fresh { T::ZERO } else { *t };
            *t = step.theta::<M>(*s, theta_hat);
        }
    }
    for s in sigma.iter_mut() {
        *s = step.sigma::<M>(*s);
    }
}

/// A Dense map and the activation after it on one row segment, compiled for the CPU's SIMD level:
/// run by `Activation::with_dual` (closed forms) or directly with a series dual.
pub struct DenseActivation<'a, T, const NTK: bool> {
    pub step: &'a DenseStep<T>,
    pub fresh: bool,
    pub sigma: &'a mut [T],
    pub theta: &'a mut [T],
    pub row: RowInput<T>,
    pub cols: ColumnInputs<'a, T>,
}

impl<T: Real, const NTK: bool> WithDual<T> for DenseActivation<'_, T, NTK> {
    type Output = ();
    #[inline(always)]
    fn run<D: Dual<T>>(self, dual: D) {
        simd::dispatch(Fused { job: self, dual });
    }
}

struct Fused<'a, T, D, const NTK: bool> {
    job: DenseActivation<'a, T, NTK>,
    dual: D,
}

impl<T: Real, D: Dual<T>, const NTK: bool> Vectorized for Fused<'_, T, D, NTK> {
    type Output = ();
    #[inline(always)]
    fn run<M: MulAdd>(self) {
        let j = self.job;
        let theta = if NTK { j.theta } else { &mut [] };
        self.dual.layer_row::<M, NTK, _>((j.step, j.fresh), j.sigma, theta, j.row, j.cols);
    }
}

/// LayerNorm on a row segment: entry j times `inv_row * inv_cols[j]` (1/sqrt(k + eps) each).
#[inline(always)]
pub fn norm<T: Real, const NTK: bool>(inv_row: T, inv_cols: &[T], fresh: bool, sigma: &mut [T], theta: &mut [T]) {
    for (s, &c) in sigma.iter_mut().zip(inv_cols) {
        *s *= inv_row * c;
    }
    if NTK && !fresh {
        for (t, &c) in theta.iter_mut().zip(inv_cols) {
            *t *= inv_row * c;
        }
    }
}

/// FanInSum of two registers' row segments into the first.
#[inline(always)]
pub fn sum<T: Real, const NTK: bool>(ntk: bool, dst: (&mut [T], &mut [T]), src: (&[T], &[T])) {
    dst.0.iter_mut().zip(src.0).for_each(|(d, &s)| *d += s);
    if NTK && ntk {
        dst.1.iter_mut().zip(src.1).for_each(|(d, &s)| *d += s);
    }
}

/// FanInProd of two registers' row segments into the first (the NTK by the product rule).
#[inline(always)]
pub fn product<T: Real, const NTK: bool>(ntk: bool, dst: (&mut [T], &mut [T]), src: (&[T], &[T])) {
    if NTK && ntk {
        for (((dt, &ds), &st), &ss) in dst.1.iter_mut().zip(dst.0.iter()).zip(src.1).zip(src.0) {
            *dt = *dt * ss + ds * st;
        }
    }
    dst.0.iter_mut().zip(src.0).for_each(|(d, &s)| *d *= s);
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
