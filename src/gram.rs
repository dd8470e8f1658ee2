//! NNGP and NTK Gram matrices of a network (a compiled `model::Plan`).
//!
//! The output is cut into square tiles. Per tile: one GEMM writes the input kernel x1.x2^T/d
//! straight into the NNGP output (or a per-thread scratch tile when only the NTK is wanted),
//! then every step of the plan runs while the tile is in cache (`tile.rs`), writing the NTK next
//! to it: memory is the outputs plus O(threads * tile * registers), never n x n x depth.
//! Tiles run in parallel on rayon with single-threaded GEMMs (one level of parallelism).
//! For the symmetric kernel of x1 with itself only tiles on and above the diagonal are
//! computed and mirrored, and the diagonal comes from the exact diagonal pass.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use std::ops::Range;

use crate::activation::{Activation, Dual, WithDual};
use crate::diagonal::{self, Diagonal};
use crate::error::Error;
use crate::float::Real;
use crate::memory::{self, Plan as MemoryPlan};
use crate::model::{Model, Op, Plan, Slot};
use crate::recursion::LayerStats;
use crate::series::{self, Tables};
use crate::tile::{Out, Side, SlotKind, Tile};

/// Largest tile edge: a 256 x 256 f64 tile (512 KiB, plus the NTK tile) stays in L2 through
/// all layers, and a 256 x d x 256 GEMM is large enough to amortise the packing of its operands.
pub const TILE: usize = 256;

/// The tile edge for an (n1, n2) kernel: the largest of 256, 128, 64 that still gives every
/// thread several tiles (small kernels would otherwise leave threads idle).
fn tile_edge(n1: usize, n2: usize, symmetric: bool) -> usize {
    let threads = rayon::current_num_threads();
    let count = |edge: usize| {
        let (b1, b2) = (n1.div_ceil(edge), n2.div_ceil(edge));
        if symmetric { b1 * (b1 + 1) / 2 } else { b1 * b2 }
    };
    [TILE, TILE / 2].into_iter().find(|&edge| count(edge) >= 4 * threads).unwrap_or(TILE / 4)
}

const MIRROR_BLOCK: usize = 32;

/// The quadrature degrees a series activation may use by default: its own degree, doubling up to
/// `series::MAX_DEGREE`.
const ADAPTIVE: (usize, usize) = (0, series::MAX_DEGREE);

/// Which kernels to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub nngp: bool,
    pub ntk: bool,
}

/// The requested kernels (`None` where not requested).
#[derive(Clone, Debug, PartialEq)]
pub struct Kernels<A> {
    pub nngp: Option<A>,
    pub ntk: Option<A>,
    /// For numerical (series) activations: the estimate of their relative error
    /// (`series::SlotSeries::error`), above `series::ERROR_TOLERANCE` when even the largest
    /// degree did not converge; 0 for closed forms.
    pub series_error: f64,
}

/// Mean squared feature of each row, x.x/d, in f64; rejects non-finite rows.
fn input_variance<T: Real>(x: &ArrayView2<T>, name: &'static str) -> Result<Vec<f64>, Error> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::invalid(name, format!("must be non-empty, got shape ({}, {})", x.nrows(), x.ncols())));
    }
    let d = x.ncols() as f64;
    let sums: Vec<f64> = x
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|row| row.iter().map(|&v| v.to_f64() * v.to_f64()).sum::<f64>())
        .collect();
    match sums.iter().position(|s| !s.is_finite()) {
        Some(i) => {
            Err(Error::invalid(name, format!("row {i} contains NaN or infinity (or values too large to square)")))
        }
        None => Ok(sums.into_iter().map(|s| s / d).collect()),
    }
}

/// The diagonal pass of a set of inputs, with the overflow check for computing in `T`.
fn diagonal_of<T: Real>(
    plan: &Plan,
    x: &ArrayView2<T>,
    name: &'static str,
    degrees: (usize, usize),
    fits: &dyn Fn(usize) -> Result<(), Error>,
) -> Result<Diagonal, Error> {
    let input_variance = input_variance(x, name)?;
    let diag = diagonal::diagonal(plan, &input_variance, name, degrees, fits)?;
    crate::interrupt::check()?;
    // Variances are multiplied together in the duals, so they must stay below sqrt(MAX).
    let limit = T::MAX.to_f64().sqrt() / 64.0;
    // (written so that a NaN peak also fails)
    if diag.peak.partial_cmp(&limit) != Some(std::cmp::Ordering::Less) {
        return Err(overflow::<T>(name, diag.peak));
    }
    Ok(diag)
}

fn overflow<T: Real>(name: &str, peak: f64) -> Error {
    let hint = if T::NAME == "float32" { "pass float64 inputs, or " } else { "" };
    Error::Overflow {
        message: format!(
            "the kernel of {name} overflows {} (values reach {:.3e}, or an activation's moments diverge, as for \
             Gaussian(b > 0) at large variance): {hint}reduce depth, W_std or b_std, or rescale the inputs",
            T::NAME,
            peak
        ),
    }
}

/// The memory of one side's per-input work: input variances, the diagonal pass's registers and
/// per-slot values (f64) and their copies in `T` with auxiliaries and square roots, the
/// diagonals; with series activations at quadrature `degree` also their tables (in f64 and `T`)
/// and one slot's quadrature points.
fn input_plan<T: Real>(plan: &Plan, n: usize, series_degree: Option<usize>) -> MemoryPlan {
    let (slots, t) = (plan.slots.len(), std::mem::size_of::<T>());
    let memory = MemoryPlan::new()
        .add([n, 4], 8)
        .add([plan.registers, n, 2], 8)
        .add([slots, n], 8)
        .add([slots, n, 3], t)
        .add([n, 4], t);
    match series_degree {
        // (a rule of `degree` points has fewer than `degree` series terms)
        Some(degree) => memory.add([plan.series_slots(), n, 2 * degree + 1], 8 + t).add([n, degree, 6], 8),
        None => memory,
    }
}

/// The steps of the plan, in f64 and in `T`.
fn steps_plan(plan: &Plan) -> MemoryPlan {
    MemoryPlan::new().add([plan.ops.len(), 2], std::mem::size_of::<Op>())
}

/// A kernel request as memory errors name it: the arguments, then its size.
fn kernel_request(n1: usize, n2: usize, cross: bool) -> String {
    format!("{}: this kernel of {n1} x {n2} entries", if cross { "x1, x2" } else { "x1" })
}

fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn check_features<T>(x1: &ArrayView2<T>, x2: &ArrayView2<T>) -> Result<(), Error> {
    if x2.ncols() != x1.ncols() {
        return Err(Error::invalid("x2", format!("has {} features but x1 has {}", x2.ncols(), x1.ncols())));
    }
    Ok(())
}

/// The diagonals k(x_i, x_i) by the exact diagonal pass.
pub fn gram_diagonal<T: Real>(model: &Model, x: ArrayView2<T>, want: Want) -> Result<Kernels<Array1<T>>, Error> {
    if x.ncols() == 0 {
        return Err(Error::invalid("x1", format!("must be non-empty, got shape ({}, 0)", x.nrows())));
    }
    let plan = Plan::compile(model, Some(x.ncols()))?;
    let n = x.nrows();
    let memory = |degree: Option<usize>| {
        input_plan::<T>(&plan, n, degree).plus(steps_plan(&plan)).add([n, 2], std::mem::size_of::<T>())
    };
    let fits =
        |degree: usize| memory(Some(degree)).check_advising("x1: this kernel diagonal", "compute it in blocks of rows");
    memory(plan.series_degree()).check_advising("x1: this kernel diagonal", "compute it in blocks of rows")?;
    let diag = diagonal_of::<T>(&plan, &x, "x1", ADAPTIVE, &fits)?;
    let to_array = |v: &[f64]| Array1::from_vec(cast::<T>(v));
    Ok(Kernels {
        nngp: want.nngp.then(|| to_array(&diag.nngp)),
        ntk: want.ntk.then(|| to_array(&diag.ntk)),
        series_error: diag.error,
    })
}

/// The (n1, n2) NNGP and/or NTK of `x1` against `x2`, or of `x1` with itself when `x2` is None.
pub fn gram<T: Real>(
    model: &Model,
    x1: ArrayView2<T>,
    x2: Option<ArrayView2<T>>,
    want: Want,
) -> Result<Kernels<Array2<T>>, Error> {
    if let Some(x2) = &x2 {
        check_features(&x1, x2)?;
    }
    if x1.ncols() == 0 {
        return Err(Error::invalid("x1", format!("must be non-empty, got shape ({}, 0)", x1.nrows())));
    }
    let plan = Plan::compile(model, Some(x1.ncols()))?;
    let (n1, n2) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()));
    if std::mem::size_of::<T>() < 8 && plan.depth() > FLOAT32_MAX_DEPTH {
        return deep_float32(model, x1, x2, want);
    }
    // Memory is planned before anything is allocated: the outputs, per-thread scratch tiles and
    // both sides' per-input tables (at the quadrature degree tried, for series activations).
    let elem = std::mem::size_of::<T>();
    let outputs = want.nngp as usize + want.ntk as usize;
    let scratch_rows = if plan.has_series() { TILE } else { 1 };
    let memory = |degree: Option<usize>| {
        let sides = input_plan::<T>(&plan, n1, degree).plus(if x2.is_some() {
            input_plan::<T>(&plan, n2, degree)
        } else {
            MemoryPlan::new()
        });
        MemoryPlan::new()
            .add([n1, n2, outputs], elem)
            .add([rayon::current_num_threads(), TILE, TILE], elem)
            .add([rayon::current_num_threads(), plan.registers - 1, scratch_rows, 2 * TILE], elem)
            .plus(sides)
            .plus(steps_plan(&plan))
    };
    let what = kernel_request(n1, n2, x2.is_some());
    let fits = |degree: usize| memory(Some(degree)).check_advising(&what, "compute it in blocks of rows");
    memory(plan.series_degree()).check_advising(&what, "compute it in blocks of rows")?;
    let mut diag1 = diagonal_of::<T>(&plan, &x1, "x1", ADAPTIVE, &fits)?;
    let diag2 = match &x2 {
        Some(x2) => {
            // x2 starts at x1's degree: both sides' series must have the same terms
            let d = diagonal_of::<T>(&plan, x2, "x2", (diag1.degree, ADAPTIVE.1), &fits)?;
            if d.degree > diag1.degree {
                // x2 needed more terms than x1: redo x1 at exactly x2's degree
                diag1 = diagonal_of::<T>(&plan, &x1, "x1", (d.degree, d.degree), &fits)?;
            }
            Some(d)
        }
        None => None,
    };
    let series_error = diag2.as_ref().map_or(diag1.error, |d| d.error.max(diag1.error));
    let len = n1 * n2; // (fits in memory, so in usize)
    let mut nngp = if want.nngp { memory::zeroed::<T>(len, "the NNGP output")? } else { Vec::new() };
    let mut ntk = if want.ntk { memory::zeroed::<T>(len, "the NTK output")? } else { Vec::new() };

    let slots: Vec<SlotKind> = plan
        .slots
        .iter()
        .map(|s| match s {
            Slot::Activation { activation: Activation::Series { .. }, .. } => SlotKind::Series,
            Slot::Activation { activation, .. } => SlotKind::Closed(*activation),
            Slot::Norm { .. } => SlotKind::Norm,
        })
        .collect();
    let data1 = SideData::<T>::new(&plan, &diag1);
    let data2 = diag2.as_ref().map(|d| SideData::<T>::new(&plan, d));
    let side1 = data1.side();
    let side2 = data2.as_ref().map(SideData::side);
    let job = GramJob {
        ops: plan.ops.iter().map(Op::cast).collect(),
        slots: &slots,
        registers: plan.registers,
        by_step: plan.has_series(),
        x1: &x1,
        x2: x2.as_ref().unwrap_or(&x1),
        symmetric: x2.is_none(),
        rows: &side1,
        cols: side2.as_ref().unwrap_or(&side1),
        diag_nngp: cast::<T>(&diag1.nngp),
        diag_ntk: cast::<T>(&diag1.ntk),
        nngp: Out::new(&mut nngp, n2),
        ntk: Out::new(&mut ntk, n2),
        token: crate::interrupt::current(),
    };
    let finite = job.run();
    if crate::interrupt::check().is_err() {
        // Unmapping gigabytes of outputs takes a while: let the caller raise first.
        std::thread::spawn(move || drop((nngp, ntk)));
        return Err(Error::Interrupted);
    }
    if !finite {
        return Err(overflow::<T>(if x2.is_some() { "x1 and x2" } else { "x1" }, f64::INFINITY));
    }
    let shape = |v: Vec<T>| Array2::from_shape_vec((n1, n2), v).expect("length is n1 * n2");
    Ok(Kernels { nngp: want.nngp.then(|| shape(nngp)), ntk: want.ntk.then(|| shape(ntk)), series_error })
}

/// The deepest network (in activations and LayerNorms) whose float32 kernels are computed in
/// float32. Rounding errors add up over layers (the NTK sums a term per layer): float32 reaches
/// 1e-5 at depth 100 and 4e-2 at depth 1000 (LeakyReLU), against 2e-7 at depth 10.
pub const FLOAT32_MAX_DEPTH: usize = 16;

/// The kernel of a deeper float32 network: computed in float64, returned in float32 (the same
/// accuracy at any depth, at float64's speed).
fn deep_float32<T: Real>(
    model: &Model,
    x1: ArrayView2<T>,
    x2: Option<ArrayView2<T>>,
    want: Want,
) -> Result<Kernels<Array2<T>>, Error> {
    let (n1, n2) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()));
    let outputs = want.nngp as usize + want.ntk as usize;
    // the float64 copies of the inputs and outputs, beside the float32 outputs
    let inputs = MemoryPlan::new().add([n1 + x2.as_ref().map_or(0, |x| x.nrows()), x1.ncols()], 8);
    inputs
        .add([n1, n2, outputs], 8 + std::mem::size_of::<T>())
        .check_advising(&kernel_request(n1, n2, x2.is_some()), "compute it in blocks of rows")?;
    let widen = |x: &ArrayView2<T>| x.mapv(|v| v.to_f64());
    let (a, b) = (widen(&x1), x2.as_ref().map(widen));
    let k = gram::<f64>(model, a.view(), b.as_ref().map(|b| b.view()), want)?;
    drop((a, b));
    let narrow = |k: Array2<f64>| k.mapv(T::from_f64);
    let (nngp, ntk) = (k.nngp.map(narrow), k.ntk.map(narrow));
    if [&nngp, &ntk].iter().filter_map(|k| k.as_ref()).any(|k| k.iter().any(|v| !v.is_finite())) {
        return Err(overflow::<T>(if x2.is_some() { "x1 and x2" } else { "x1" }, f64::INFINITY));
    }
    Ok(Kernels { nngp, ntk, series_error: k.series_error })
}

/// One side's per-input quantities in the type the kernel is computed in: per slot the value,
/// its auxiliary and square root (slot-major), series tables, and the square roots of the final
/// diagonals.
struct SideData<T> {
    variance: Vec<T>,
    aux: Vec<T>,
    root: Vec<T>,
    tables: Vec<Option<Tables<T>>>,
    nngp_root: Vec<T>,
    ntk_root: Vec<T>,
    n: usize,
}

/// A dual's per-input auxiliaries of one slot.
struct Auxiliaries<'a, T> {
    q: &'a [T],
    out: &'a mut [T],
}

impl<T: Real> WithDual<T> for Auxiliaries<'_, T> {
    type Output = ();
    fn run<D: Dual<T>>(self, dual: D) {
        self.out.iter_mut().zip(self.q).for_each(|(a, &q)| *a = dual.aux(q));
    }
}

impl<T: Real> SideData<T> {
    fn new(plan: &Plan, diag: &Diagonal) -> Self {
        let n = diag.nngp.len();
        let roots = |v: &[f64]| v.iter().map(|&x| T::from_f64(x.max(0.0).sqrt())).collect();
        let variance = cast::<T>(&diag.variances);
        let mut aux = vec![T::ZERO; variance.len()];
        for (slot, kind) in plan.slots.iter().enumerate() {
            let range = slot * n..(slot + 1) * n;
            match kind {
                Slot::Activation { activation: Activation::Series { .. }, .. } => {}
                Slot::Activation { activation, .. } => {
                    activation.with_dual::<T, _>(Auxiliaries { q: &variance[range.clone()], out: &mut aux[range] })
                }
                Slot::Norm { eps } => {
                    for (a, &c) in aux[range.clone()].iter_mut().zip(&diag.variances[range]) {
                        *a = T::from_f64(1.0 / (c + eps).sqrt());
                    }
                }
            }
        }
        SideData {
            root: roots(&diag.variances),
            variance,
            aux,
            tables: diag.tables.iter().map(|t| t.as_ref().map(series::tables_as::<T>)).collect(),
            nngp_root: roots(&diag.nngp),
            ntk_root: roots(&diag.ntk),
            n,
        }
    }

    fn side(&self) -> Side<'_, T> {
        Side {
            stats: LayerStats { q: &self.variance, aux: &self.aux, root: &self.root, n: self.n },
            tables: &self.tables,
            nngp_root: &self.nngp_root,
            ntk_root: &self.ntk_root,
        }
    }
}

struct GramJob<'a, T> {
    ops: Vec<Op<T>>,
    slots: &'a [SlotKind],
    registers: usize,
    by_step: bool,
    x1: &'a ArrayView2<'a, T>,
    x2: &'a ArrayView2<'a, T>,
    symmetric: bool,
    rows: &'a Side<'a, T>,
    cols: &'a Side<'a, T>,
    diag_nngp: Vec<T>,
    diag_ntk: Vec<T>,
    nngp: Out<T>,
    ntk: Out<T>,
    token: crate::interrupt::Token,
}

/// The tiles to compute: all of them, or for a symmetric kernel those on and above the diagonal.
fn tiles(n1: usize, n2: usize, symmetric: bool, edge: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let blocks = |n: usize| (0..n.div_ceil(edge)).map(move |b| b * edge..((b + 1) * edge).min(n));
    let mut out = Vec::new();
    for (bi, rows) in blocks(n1).enumerate() {
        for (bj, cols) in blocks(n2).enumerate() {
            if !symmetric || bj >= bi {
                out.push((rows.clone(), cols));
            }
        }
    }
    out
}

impl<T: Real> GramJob<'_, T> {
    /// Whether every entry came out finite.
    fn run(self) -> bool {
        let (n1, n2) = (self.x1.nrows(), self.x2.nrows());
        let need_scratch = !self.nngp.present;
        let edge = tile_edge(n1, n2, self.symmetric);
        // registers 1..: an NNGP and an NTK row block each, for one row or all rows of a tile
        let stride = if self.by_step { edge } else { 1 } * 2 * edge;
        let registers = (self.registers - 1) * stride;
        let finite = std::sync::atomic::AtomicBool::new(true);
        tiles(n1, n2, self.symmetric, edge).into_par_iter().for_each_init(
            || {
                let input = if need_scratch { vec![T::ZERO; edge * edge] } else { Vec::new() };
                (input, vec![T::ZERO; registers])
            },
            |(scratch, registers), (rows, cols)| {
                if self.token.is_cancelled() {
                    return; // the caller discards the outputs
                }
                // The input kernel goes where the NNGP will end up, or into scratch.
                let sigma = if need_scratch {
                    Out { ptr: scratch.as_mut_ptr(), ld: cols.len(), present: true }
                } else {
                    self.nngp
                };
                let origin = if need_scratch { (0, 0) } else { (rows.start, cols.start) };
                let on_diagonal = self.symmetric && rows.start == cols.start;
                // SAFETY: the destination block lies inside its buffer (or the scratch tile).
                unsafe { input_kernel_tile(self.x1, &rows, self.x2, &cols, sigma.at(origin.0, origin.1), sigma.ld) };
                let tile = Tile {
                    ops: &self.ops,
                    slots: self.slots,
                    rows_side: self.rows,
                    cols_side: self.cols,
                    rows: rows.clone(),
                    cols: cols.clone(),
                    sigma,
                    origin,
                    theta: self.ntk,
                    scratch: registers.as_mut_ptr(),
                    stride,
                    edge,
                    by_step: self.by_step,
                    upper_only: on_diagonal,
                    token: &self.token,
                };
                if !tile.run() {
                    finite.store(false, std::sync::atomic::Ordering::Relaxed);
                }
                if self.symmetric {
                    // SAFETY: the tile and its transposed block are this worker's alone.
                    unsafe { self.finish_symmetric(&rows, &cols, on_diagonal) };
                }
            },
        );
        finite.into_inner()
    }

    /// Exact diagonal entries, then the mirror image of the computed upper part.
    unsafe fn finish_symmetric(&self, rows: &Range<usize>, cols: &Range<usize>, on_diagonal: bool) {
        for out in [(&self.nngp, &self.diag_nngp), (&self.ntk, &self.diag_ntk)] {
            let (out, diag) = out;
            if !out.present {
                continue;
            }
            unsafe {
                if on_diagonal {
                    for i in rows.clone() {
                        *out.at(i, i) = diag[i];
                    }
                }
                // In 32 x 32 blocks, so that both the reads (down columns) and the writes
                // (along rows) stay within a few pages and cache lines at a time.
                for jb in cols.clone().step_by(MIRROR_BLOCK) {
                    for ib in rows.clone().step_by(MIRROR_BLOCK) {
                        for j in jb..(jb + MIRROR_BLOCK).min(cols.end) {
                            for i in ib..(ib + MIRROR_BLOCK).min(rows.end) {
                                if !on_diagonal || j > i {
                                    *out.at(j, i) = *out.at(i, j);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// dst[r, c] = x1[rows.start + r] . x2[cols.start + c] / d, by one single-threaded GEMM.
unsafe fn input_kernel_tile<T: Real>(
    x1: &ArrayView2<T>,
    rows: &Range<usize>,
    x2: &ArrayView2<T>,
    cols: &Range<usize>,
    dst: *mut T,
    ld: usize,
) {
    let d = x1.ncols();
    let (s1r, s1c) = (x1.strides()[0], x1.strides()[1]);
    let (s2r, s2c) = (x2.strides()[0], x2.strides()[1]);
    unsafe {
        gemm::gemm(
            rows.len(),
            cols.len(),
            d,
            dst,
            1,
            ld as isize,
            false,
            x1.as_ptr().offset(rows.start as isize * s1r),
            s1c,
            s1r,
            // rhs = x2^T: its columns are rows of x2, its rows are features
            x2.as_ptr().offset(cols.start as isize * s2r),
            s2r,
            s2c,
            T::ZERO,
            T::from_f64(1.0 / d as f64),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::activation::SeriesFunction;
    use crate::model::Layer;
    use crate::series::PointwiseFn;
    use crate::spec::{Dense, Mlp, Parameterization};
    use ndarray::{Array2, s};

    fn inputs(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        Array2::from_shape_fn((n, d), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
    }

    fn mlp(activation: Activation, parameterization: Parameterization) -> Mlp {
        let dense = Dense::new(1.4, Some(0.2), "W_std", "b_std").unwrap();
        Mlp::new(3, activation, dense, dense, parameterization).unwrap()
    }

    fn max_rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    const BOTH: Want = Want { nngp: true, ntk: true };

    #[test]
    fn tiling_mirroring_and_blocks_are_consistent() {
        // 600 rows: several tiles of every edge, ragged last tiles.
        let x1 = inputs(600, 5, 1);
        let x2 = inputs(290, 5, 2);
        for activation in
            [Activation::AbRelu { a: 0.0, b: 1.0 }, Activation::Erf { a: 1.0, b: 0.7, c: 0.1 }, Activation::Gelu]
        {
            for param in [Parameterization::Ntk, Parameterization::Standard { width: 50 }] {
                let m = mlp(activation, param);
                let sym = gram(&Model::from_mlp(&m, None).unwrap(), x1.view(), None, BOTH).unwrap();
                let general = gram(&Model::from_mlp(&m, None).unwrap(), x1.view(), Some(x1.view()), BOTH).unwrap();
                let diag = gram_diagonal(&Model::from_mlp(&m, None).unwrap(), x1.view(), BOTH).unwrap();
                for (s, g, d) in [(&sym.nngp, &general.nngp, &diag.nngp), (&sym.ntk, &general.ntk, &diag.ntk)] {
                    let (s, g, d) = (s.as_ref().unwrap(), g.as_ref().unwrap(), d.as_ref().unwrap());
                    assert_eq!(s, &s.t().to_owned(), "symmetric output is exactly symmetric");
                    assert_eq!(s.diag().to_owned(), d, "diagonal is the exact diagonal recursion");
                    assert!(max_rel(s, g) < 1e-13);
                }
                let cross = gram(&Model::from_mlp(&m, None).unwrap(), x1.view(), Some(x2.view()), BOTH).unwrap();
                let swapped = gram(&Model::from_mlp(&m, None).unwrap(), x2.view(), Some(x1.view()), BOTH).unwrap();
                let block =
                    gram(&Model::from_mlp(&m, None).unwrap(), x1.slice(s![100..400, ..]), Some(x2.view()), BOTH)
                        .unwrap();
                for (c, w, b) in [(&cross.ntk, &swapped.ntk, &block.ntk), (&cross.nngp, &swapped.nngp, &block.nngp)] {
                    let (c, w, b) = (c.as_ref().unwrap(), w.as_ref().unwrap(), b.as_ref().unwrap());
                    assert!(max_rel(c, &w.t().to_owned()) < 1e-13);
                    assert!(max_rel(&c.slice(s![100..400, ..]).to_owned(), b) < 1e-13);
                }
                let nngp_only =
                    gram(&Model::from_mlp(&m, None).unwrap(), x1.view(), None, Want { nngp: true, ntk: false })
                        .unwrap();
                let ntk_only =
                    gram(&Model::from_mlp(&m, None).unwrap(), x1.view(), None, Want { nngp: false, ntk: true })
                        .unwrap();
                assert!(ntk_only.nngp.is_none() && nngp_only.ntk.is_none());
                assert_eq!(nngp_only.nngp, sym.nngp);
                assert_eq!(ntk_only.ntk, sym.ntk);
            }
        }
    }

    struct ErfFn(bool);
    impl PointwiseFn for ErfFn {
        fn eval(&self, x: &[f64], value: &mut [f64], slope: &mut [f64]) -> Result<bool, Error> {
            for ((v, s), &x) in value.iter_mut().zip(slope.iter_mut()).zip(x) {
                *v = libm::erf(x);
                *s = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
            }
            Ok(self.0)
        }
    }

    #[test]
    fn numerical_erf_matches_the_closed_form() {
        let x = inputs(40, 6, 9) * 2.0;
        let dense = Dense::new(1.3, Some(0.2), "W_std", "b_std").unwrap();
        let exact =
            Mlp::new(3, Activation::Erf { a: 1.0, b: 1.0, c: 0.0 }, dense, dense, Parameterization::Ntk).unwrap();
        let want = gram(&Model::from_mlp(&exact, None).unwrap(), x.view(), None, BOTH).unwrap();
        for with_derivative in [true, false] {
            let numerical = Mlp::new(
                3,
                Activation::Series { function: SeriesFunction::External, degree: 128 },
                dense,
                dense,
                Parameterization::Ntk,
            )
            .unwrap();
            let f = ErfFn(with_derivative);
            let got = gram(&Model::from_mlp(&numerical, Some(std::sync::Arc::new(f))).unwrap(), x.view(), None, BOTH)
                .unwrap();
            let e_nngp = max_rel(got.nngp.as_ref().unwrap(), want.nngp.as_ref().unwrap());
            let e_ntk = max_rel(got.ntk.as_ref().unwrap(), want.ntk.as_ref().unwrap());
            assert!(e_nngp < 1e-8 && e_ntk < 1e-8, "derivative given: {with_derivative}: {e_nngp:e} {e_ntk:e}");
        }
    }

    /// A residual network with LayerNorm and a product of branches; `act` in the residual branch.
    fn composed(act: Layer) -> Model {
        let dense = |w: f64| Layer::dense(16, w, Some(0.1), false).unwrap();
        let relu = || Layer::activation(Activation::AbRelu { a: 0.0, b: 1.0 }, None, "Relu()".into()).unwrap();
        let block = Layer::Serial(vec![
            Layer::FanOut(2),
            Layer::Parallel(vec![
                Layer::Serial(vec![act, dense(1.2), Layer::layer_norm(1e-3).unwrap()]),
                Layer::Identity,
            ]),
            Layer::FanInSum,
        ]);
        let product = Layer::Serial(vec![
            Layer::FanOut(2),
            Layer::Parallel(vec![Layer::Serial(vec![relu(), dense(1.1)]), dense(0.9)]),
            Layer::FanInProd,
        ]);
        Model::new(Layer::Serial(vec![dense(1.5), block, product, dense(1.0), relu(), dense(1.3)]))
    }

    #[test]
    fn composed_networks_tile_mirror_and_block_consistently() {
        // Branch registers in per-row scratch (closed forms) and per-tile scratch (a series
        // activation runs step by step over the tile); ragged tiles of every edge.
        let x1 = inputs(600, 5, 4) * 2.0;
        let x2 = inputs(290, 5, 5) * 2.0;
        let erf = Activation::Erf { a: 1.0, b: 1.0, c: 0.0 };
        let numerical = Activation::Series { function: SeriesFunction::External, degree: 64 };
        let closed = composed(Layer::activation(erf, None, "Erf()".into()).unwrap());
        let f: crate::model::Function = std::sync::Arc::new(ErfFn(true));
        let series = composed(Layer::activation(numerical, Some(f), "ElementwiseNumerical(erf)".into()).unwrap());
        let closed_sym = gram(&closed, x1.view(), None, BOTH).unwrap();
        for m in [&closed, &series] {
            let sym = gram(m, x1.view(), None, BOTH).unwrap();
            let general = gram(m, x1.view(), Some(x1.view()), BOTH).unwrap();
            let diag = gram_diagonal(m, x1.view(), BOTH).unwrap();
            let cross = gram(m, x1.view(), Some(x2.view()), BOTH).unwrap();
            let block = gram(m, x1.slice(s![100..400, ..]), Some(x2.view()), BOTH).unwrap();
            let ntk_only = gram(m, x1.view(), None, Want { nngp: false, ntk: true }).unwrap();
            assert_eq!(ntk_only.ntk, sym.ntk);
            for (s, g, d, c, b, want) in [
                (&sym.nngp, &general.nngp, &diag.nngp, &cross.nngp, &block.nngp, &closed_sym.nngp),
                (&sym.ntk, &general.ntk, &diag.ntk, &cross.ntk, &block.ntk, &closed_sym.ntk),
            ] {
                let (s, g, d) = (s.as_ref().unwrap(), g.as_ref().unwrap(), d.as_ref().unwrap());
                let (c, b) = (c.as_ref().unwrap(), b.as_ref().unwrap());
                assert_eq!(s, &s.t().to_owned(), "symmetric output is exactly symmetric");
                assert_eq!(s.diag().to_owned(), d, "diagonal is the exact diagonal pass");
                // x1 against itself the long way: identical inputs reach the last ReLU with a
                // correlation a few ulps below 1 (rounding along the branches), where its angle
                // has a square-root singularity: the diagonal entries carry ~sqrt(eps). The
                // symmetric path takes them from the exact diagonal pass.
                let mut off = g.clone();
                off.diag_mut().assign(&s.diag());
                assert!(max_rel(s, &off) < 1e-13);
                assert!(max_rel(s, g) < 1e-7, "{:e}", max_rel(s, g));
                assert!(max_rel(&c.slice(s![100..400, ..]).to_owned(), b) < 1e-13);
                // the series of erf reproduces the closed form inside the composed network
                assert!(max_rel(s, want.as_ref().unwrap()) < 1e-8);
            }
        }
    }

    #[test]
    fn one_hidden_relu_layer_diagonal_matches_hand_computation() {
        // Sigma1 = 2 q + 0.01, Sigma-hat = Sigma1 / 2, Sigma-dot = 1/2 on the diagonal.
        let relu = Layer::activation(Activation::AbRelu { a: 0.0, b: 1.0 }, None, "Relu()".into()).unwrap();
        let dense = || Layer::dense(3, 2f64.sqrt(), Some(0.1), false).unwrap();
        let model = Model::new(Layer::Serial(vec![dense(), relu, dense()]));
        let x = ndarray::array![[0.8f64.sqrt(), 0.8f64.sqrt()]];
        let k = gram_diagonal(&model, x.view(), BOTH).unwrap();
        let s1 = 2.0 * 0.8 + 0.01;
        assert!((k.nngp.unwrap()[0] - (2.0 * s1 / 2.0 + 0.01)).abs() < 1e-15);
        assert!((k.ntk.unwrap()[0] - (2.0 * s1 / 2.0 + 0.01 + 2.0 * s1 * 0.5)).abs() < 1e-15);
    }

    #[test]
    fn float32_agrees_with_float64() {
        let x = inputs(300, 40, 3);
        let m = mlp(Activation::AbRelu { a: 0.0, b: 1.0 }, Parameterization::Ntk);
        let k64 = gram(&Model::from_mlp(&m, None).unwrap(), x.view(), None, BOTH).unwrap();
        let k32 = gram(&Model::from_mlp(&m, None).unwrap(), x.mapv(|v| v as f32).view(), None, BOTH).unwrap();
        let back = k32.ntk.unwrap().mapv(|v| v as f64);
        assert!(max_rel(&back, k64.ntk.as_ref().unwrap()) < 1e-5);
    }

    /// |k(i, j)| <= sqrt(k(i, i) k(j, j)) for every entry of both kernels.
    fn assert_cauchy_schwarz<T: Real>(k: &Kernels<Array2<T>>) {
        for m in [k.nngp.as_ref().unwrap(), k.ntk.as_ref().unwrap()] {
            for ((i, j), v) in m.indexed_iter() {
                let bound = (m[[i, i]].to_f64() * m[[j, j]].to_f64()).sqrt();
                assert!(v.to_f64().is_finite() && v.to_f64().abs() <= bound, "entry ({i}, {j}) = {v:?} > {bound}");
            }
        }
    }

    #[test]
    fn deep_kernels_of_near_duplicates_stay_bounded_by_their_diagonals() {
        // Rounding pushed correlations past 1, which 100 layers amplified into inf (Rbf), NaN
        // (float32 Erf) and off-diagonal entries above the diagonal (float32 ReLU).
        let v = inputs(1, 8, 3);
        let mut x = ndarray::concatenate(Axis(0), &[v.view(), v.view(), (&v * 1.0000001).view()]).unwrap();
        x[[2, 0]] += 1e-9;
        let dense = Dense::new(1.0, Some(0.05), "W_std", "b_std").unwrap();
        // (Rbf(1)'s NTK doubles per layer, 2^100 overflows float32: float64 only)
        let deep = Mlp::new(100, Activation::Rbf { gamma: 1.0 }, dense, dense, Parameterization::Ntk).unwrap();
        assert_cauchy_schwarz(&gram(&Model::from_mlp(&deep, None).unwrap(), x.view(), None, BOTH).unwrap());
        for activation in [Activation::Rbf { gamma: 0.3 }, Activation::Erf { a: 1.0, b: 1.0, c: 0.0 }] {
            let deep = Mlp::new(100, activation, dense, dense, Parameterization::Ntk).unwrap();
            assert_cauchy_schwarz(&gram(&Model::from_mlp(&deep, None).unwrap(), x.view(), None, BOTH).unwrap());
            assert_cauchy_schwarz(
                &gram(&Model::from_mlp(&deep, None).unwrap(), x.mapv(|v| v as f32).view(), None, BOTH).unwrap(),
            );
        }
        let relu = Dense::new(2f64.sqrt(), Some(0.1), "W_std", "b_std").unwrap();
        let deep = Mlp::new(100, Activation::AbRelu { a: 0.0, b: 1.0 }, relu, relu, Parameterization::Ntk).unwrap();
        let x = inputs(40, 6, 8);
        assert_cauchy_schwarz(
            &gram(&Model::from_mlp(&deep, None).unwrap(), x.mapv(|v| v as f32).view(), None, BOTH).unwrap(),
        );
        assert_cauchy_schwarz(&gram(&Model::from_mlp(&deep, None).unwrap(), x.view(), None, BOTH).unwrap());
    }

    #[test]
    fn deep_float32_kernels_keep_float32_accuracy() {
        let x = inputs(30, 6, 5);
        let dense = Dense::new(1.4, Some(0.1), "W_std", "b_std").unwrap();
        let leaky = Activation::AbRelu { a: 0.1, b: 1.0 };
        for depth in [FLOAT32_MAX_DEPTH, FLOAT32_MAX_DEPTH + 1, 1000] {
            let m = Mlp::new(depth, leaky, dense, dense, Parameterization::Ntk).unwrap();
            let k64 = gram(&Model::from_mlp(&m, None).unwrap(), x.view(), None, BOTH).unwrap();
            let k32 = gram(&Model::from_mlp(&m, None).unwrap(), x.mapv(|v| v as f32).view(), None, BOTH).unwrap();
            let error = max_rel(&k32.ntk.unwrap().mapv(|v| v as f64), k64.ntk.as_ref().unwrap());
            // (computed in float32 up to FLOAT32_MAX_DEPTH, in float64 and rounded beyond)
            assert!(error < 1e-5, "depth {depth}: {error:e}");
        }
    }

    #[test]
    fn sign_of_a_zero_input_is_zero() {
        // A zero row's pre-activations are identically 0 at every layer (no bias): sign(0) = 0.
        let mut x = inputs(4, 5, 11);
        x.row_mut(3).fill(0.0);
        let dense = Dense::new(1.3, None, "W_std", "b_std").unwrap();
        let m = Mlp::new(2, Activation::Sign, dense, dense, Parameterization::Ntk).unwrap();
        let k = gram(&Model::from_mlp(&m, None).unwrap(), x.view(), None, BOTH).unwrap().nngp.unwrap();
        assert!(k.row(3).iter().chain(k.column(3).iter()).all(|&v| v == 0.0), "{k}");
        assert!(k[[0, 0]] > 1.0);
    }

    #[test]
    fn requests_too_large_fail_before_allocating() {
        // (each of these would need terabytes; refused by the plan, so they return at once)
        let dense = Dense::new(1.0, None, "W_std", "b_std").unwrap();
        let deep =
            Mlp::new(1 << 40, Activation::AbRelu { a: 0.0, b: 1.0 }, dense, dense, Parameterization::Ntk).unwrap();
        assert!(matches!(Model::from_mlp(&deep, None), Err(Error::OutOfMemory { .. })));
        // a plan that fits, whose per-input tables for 2^26 inputs do not
        let x = Array2::<f64>::ones((1, 3));
        let x = x.broadcast((1 << 26, 3)).unwrap();
        let deep = Mlp { depth: 1000, ..deep };
        let deep = Model::from_mlp(&deep, None).unwrap();
        assert!(matches!(gram_diagonal(&deep, x, BOTH), Err(Error::OutOfMemory { .. })));
        let one = Array2::<f64>::ones((1, 3));
        let many = one.broadcast((1 << 22, 3)).unwrap();
        let tanh = Mlp::new(
            2,
            Activation::Series { function: SeriesFunction::Builtin(crate::activation::Builtin::Tanh), degree: 128 },
            dense,
            dense,
            Parameterization::Ntk,
        )
        .unwrap();
        assert!(matches!(
            gram(&Model::from_mlp(&tanh, None).unwrap(), many.view(), None, BOTH),
            Err(Error::OutOfMemory { .. })
        ));
    }

    #[test]
    fn a_cancelled_call_returns_interrupted() {
        let m = mlp(Activation::Gelu, Parameterization::Ntk);
        let token = crate::interrupt::Token::new();
        token.cancel();
        let x = inputs(300, 4, 2);
        let result =
            crate::interrupt::with_token(&token, || gram(&Model::from_mlp(&m, None).unwrap(), x.view(), None, BOTH));
        assert_eq!(result, Err(Error::Interrupted));
        assert!(
            gram(&Model::from_mlp(&m, None).unwrap(), x.view(), None, BOTH).is_ok(),
            "outside the cancelled call nothing is cancelled"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let m = mlp(Activation::Gelu, Parameterization::Ntk);
        let mut x = inputs(4, 3, 4);
        assert!(matches!(
            gram(&Model::from_mlp(&m, None).unwrap(), x.view(), Some(inputs(2, 2, 5).view()), BOTH),
            Err(Error::InvalidArgument { name: "x2", .. })
        ));
        assert!(matches!(
            gram(&Model::from_mlp(&m, None).unwrap(), Array2::<f64>::zeros((0, 3)).view(), None, BOTH),
            Err(Error::InvalidArgument { name: "x1", .. })
        ));
        x[[1, 2]] = f64::NAN;
        assert!(matches!(
            gram(&Model::from_mlp(&m, None).unwrap(), x.view(), None, BOTH),
            Err(Error::InvalidArgument { name: "x1", .. })
        ));
        let deep = Mlp::new(
            400,
            Activation::AbRelu { a: 0.0, b: 1.0 },
            Dense::new(3.0, None, "W_std", "b_std").unwrap(),
            Dense::new(1.0, None, "W_std", "b_std").unwrap(),
            Parameterization::Ntk,
        )
        .unwrap();
        assert!(matches!(
            gram(&Model::from_mlp(&deep, None).unwrap(), inputs(3, 3, 6).view(), None, BOTH),
            Err(Error::Overflow { .. })
        ));
    }
}
