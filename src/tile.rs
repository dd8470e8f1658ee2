//! One tile of a Gram matrix: the plan's steps on each row segment, with the input kernel
//! already in the NNGP output (or a scratch tile), the NTK written beside it, extra registers
//! (branches) in per-thread scratch. Plans with series activations run step by step over all
//! rows (a step's column tables stay in cache); the others run every step on one row while it
//! sits in cache, then the next row.

use std::ops::Range;

use crate::activation::Activation;
use crate::model::Op;
use crate::recursion::{self, DenseActivation, LayerStats};
use crate::series::{SeriesDual, Tables};

use crate::float::Real;

/// What a tile's steps read about each slot: a closed-form activation, a series activation
/// (its tables per side), or a LayerNorm.
#[derive(Clone, Copy, Debug)]
pub enum SlotKind {
    Closed(Activation),
    Series,
    Norm,
}

/// A row-major output matrix shared by the tile workers; every tile writes a disjoint block
/// (and, when mirroring, its disjoint transposed block).
#[derive(Clone, Copy)]
pub struct Out<T> {
    pub ptr: *mut T,
    pub ld: usize,
    pub present: bool,
}

// SAFETY: workers only write disjoint blocks (see `gram::tiles`).
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    pub fn new(v: &mut Vec<T>, ld: usize) -> Self {
        Out { ptr: v.as_mut_ptr(), ld, present: !v.is_empty() }
    }
    /// Pointer to element (i, j).
    ///
    /// # Safety
    /// (i, j) lies inside the matrix.
    pub unsafe fn at(&self, i: usize, j: usize) -> *mut T {
        unsafe { self.ptr.add(i * self.ld + j) }
    }
}

/// One side's per-input quantities in the kernel's type.
pub struct Side<'a, T> {
    pub stats: LayerStats<'a, T>,
    pub tables: &'a [Option<Tables<T>>],
    /// sqrt of the final NNGP and NTK diagonals (the Cauchy-Schwarz bound of the outputs).
    pub nngp_root: &'a [T],
    pub ntk_root: &'a [T],
}

/// The steps of one tile.
pub struct Tile<'a, T> {
    pub ops: &'a [Op<T>],
    pub slots: &'a [SlotKind],
    pub rows_side: &'a Side<'a, T>,
    pub cols_side: &'a Side<'a, T>,
    pub rows: Range<usize>,
    pub cols: Range<usize>,
    /// Where the tile's input kernel is (register 0's NNGP); `origin` is its top-left element.
    pub sigma: Out<T>,
    pub origin: (usize, usize),
    /// Register 0's NTK: the NTK output (or a scratch tile), `theta_origin` its top-left element.
    pub theta: Out<T>,
    pub theta_origin: (usize, usize),
    /// Registers 1.. in this worker's scratch: `(register - 1) * stride`, each an NNGP and an NTK
    /// block of `edge` columns for one row, or for all rows when `by_step`.
    pub scratch: *mut T,
    pub stride: usize,
    pub edge: usize,
    pub by_step: bool,
    /// A symmetric diagonal tile: only columns j >= i are computed.
    pub upper_only: bool,
    pub token: &'a crate::interrupt::Token,
}

impl<T: Real> Tile<'_, T> {
    /// Register `reg`'s (NNGP, NTK) segments of tile row `r`, and the first column's index.
    ///
    /// # Safety
    /// The caller holds the only access to the tile and its scratch, and uses distinct registers'
    /// slices at a time.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn segments(&self, reg: usize, r: usize) -> (&mut [T], &mut [T], usize) {
        let skip = if self.upper_only { r } else { 0 };
        let len = self.cols.len() - skip;
        let col0 = self.cols.start + skip;
        unsafe {
            if reg == 0 {
                let sigma = std::slice::from_raw_parts_mut(self.sigma.at(self.origin.0 + r, self.origin.1 + skip), len);
                let theta = if self.theta.present {
                    std::slice::from_raw_parts_mut(
                        self.theta.at(self.theta_origin.0 + r, self.theta_origin.1 + skip),
                        len,
                    )
                } else {
                    &mut []
                };
                return (sigma, theta, col0);
            }
            let row = if self.by_step { r } else { 0 };
            let base = self.scratch.add((reg - 1) * self.stride + row * 2 * self.edge);
            let sigma = std::slice::from_raw_parts_mut(base, len);
            let theta =
                if self.theta.present { std::slice::from_raw_parts_mut(base.add(self.edge), len) } else { &mut [] };
            (sigma, theta, col0)
        }
    }

    /// Runs the plan on the tile; whether every entry came out finite.
    pub fn run(&self) -> bool {
        if self.theta.present { self.run_with::<true>() } else { self.run_with::<false>() }
    }

    fn run_with<const NTK: bool>(&self) -> bool {
        let mut finite = true;
        if self.by_step {
            for op in self.ops {
                if self.token.is_cancelled() {
                    return finite; // (discarded by the caller)
                }
                for r in 0..self.rows.len() {
                    self.step::<NTK>(op, r);
                }
            }
            for r in 0..self.rows.len() {
                finite &= self.finish_row(r);
            }
        } else {
            for r in 0..self.rows.len() {
                if self.token.is_cancelled() {
                    return finite;
                }
                for op in self.ops {
                    self.step::<NTK>(op, r);
                }
                finite &= self.finish_row(r);
            }
        }
        finite
    }

    #[inline(always)]
    fn step<const NTK: bool>(&self, op: &Op<T>, r: usize) {
        let i = self.rows.start + r;
        // SAFETY (every arm): this worker's tile; the registers of one step are distinct.
        match *op {
            Op::Layer { reg, ref step, slot, fresh } => {
                let (sigma, theta, col0) = unsafe { self.segments(reg, r) };
                let Some(slot) = slot else {
                    return recursion::dense::<T, NTK>(step, fresh, sigma, theta);
                };
                let len = sigma.len();
                let job = DenseActivation::<T, NTK> {
                    step,
                    fresh,
                    sigma,
                    theta,
                    row: self.rows_side.stats.row(slot, i),
                    cols: self.cols_side.stats.columns(slot, col0, len),
                };
                match self.slots[slot] {
                    SlotKind::Closed(activation) => activation.with_dual::<T, _>(job),
                    SlotKind::Series => {
                        let rows = self.rows_side.tables[slot].as_ref().expect("a series slot has tables");
                        let cols = self.cols_side.tables[slot].as_ref().expect("a series slot has tables");
                        crate::activation::WithDual::run(job, SeriesDual::new(rows, cols))
                    }
                    SlotKind::Norm => unreachable!("a Layer step's slot is an activation"),
                }
            }
            Op::Norm { reg, slot, fresh } => {
                let (sigma, theta, col0) = unsafe { self.segments(reg, r) };
                let len = sigma.len();
                let inv_row = self.rows_side.stats.row(slot, i).aux;
                let inv_cols = self.cols_side.stats.columns(slot, col0, len).aux;
                recursion::norm::<T, NTK>(inv_row, inv_cols, fresh, sigma, theta);
            }
            Op::Copy { src, dst } => {
                let (s_sigma, s_theta, _) = unsafe { self.segments(src, r) };
                let (d_sigma, d_theta, _) = unsafe { self.segments(dst, r) };
                d_sigma.copy_from_slice(s_sigma);
                d_theta.copy_from_slice(s_theta);
            }
            Op::Sum { dst, src, ntk } => {
                let (s_sigma, s_theta, _) = unsafe { self.segments(src, r) };
                let (d_sigma, d_theta, _) = unsafe { self.segments(dst, r) };
                recursion::sum::<T, NTK>(ntk, (d_sigma, d_theta), (s_sigma, s_theta));
            }
            Op::Prod { dst, src, ntk } => {
                let (s_sigma, s_theta, _) = unsafe { self.segments(src, r) };
                let (d_sigma, d_theta, _) = unsafe { self.segments(dst, r) };
                recursion::product::<T, NTK>(ntk, (d_sigma, d_theta), (s_sigma, s_theta));
            }
            Op::Zero { reg } => {
                let (_, theta, _) = unsafe { self.segments(reg, r) };
                theta.fill(T::ZERO);
            }
        }
    }

    /// The finished row r: clamped to its diagonals' Cauchy-Schwarz bound; whether it is finite.
    #[inline(always)]
    fn finish_row(&self, r: usize) -> bool {
        // SAFETY: as in `step`.
        let (sigma, theta, col0) = unsafe { self.segments(0, r) };
        let (i, cols) = (self.rows.start + r, col0..col0 + sigma.len());
        let mut finite =
            recursion::clamp_row(self.rows_side.nngp_root[i], &self.cols_side.nngp_root[cols.clone()], sigma);
        if self.theta.present {
            finite &= recursion::clamp_row(self.rows_side.ntk_root[i], &self.cols_side.ntk_root[cols], theta);
        }
        finite
    }
}
