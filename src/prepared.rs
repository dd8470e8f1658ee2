//! A kernel prepared for computing blocks: both sides' diagonal passes (per-input variances,
//! LayerNorm diagonals, series tables at one quadrature degree for all inputs) and the plan's
//! steps in the kernel's type. Any block of the kernel is then a set of tiles
//! (`Prepared::tile`), and every operation on kernels (the Gram matrix, kernel-matrix products,
//! Nystrom products) is prepare, then tiles, then its own assembly: blocks computed by different
//! operations or threads agree to the last bit.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;
use std::ops::Range;

use crate::activation::{Activation, Dual, WithDual};
use crate::diagonal::{self, Diagonal};
use crate::error::Error;
use crate::float::Real;
use crate::memory::Plan as MemoryPlan;
use crate::model::{Op, Plan, Slot};
use crate::recursion::LayerStats;
use crate::series::{self, Tables};
use crate::tile::{Out, Side, SlotKind, Tile};

/// Largest tile edge: a 256 x 256 f64 tile (512 KiB, plus the NTK tile) stays in L2 through
/// all layers, and a 256 x d x 256 GEMM is large enough to amortise the packing of its operands.
pub const TILE: usize = 256;

/// The tile edge for an (n1, n2) kernel: the largest of 256, 128, 64 that still gives every
/// thread several tiles (small kernels would otherwise leave threads idle).
pub fn tile_edge(n1: usize, n2: usize, symmetric: bool) -> usize {
    let threads = rayon::current_num_threads();
    let count = |edge: usize| {
        let (b1, b2) = (n1.div_ceil(edge), n2.div_ceil(edge));
        if symmetric { b1 * (b1 + 1) / 2 } else { b1 * b2 }
    };
    [TILE, TILE / 2].into_iter().find(|&edge| count(edge) >= 4 * threads).unwrap_or(TILE / 4)
}

pub const MIRROR_BLOCK: usize = 32;

/// The quadrature degrees a series activation may use by default: its own degree, doubling up to
/// `series::MAX_DEGREE`.
pub const ADAPTIVE: (usize, usize) = (0, series::MAX_DEGREE);

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
pub fn diagonal_of<T: Real>(
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

pub fn overflow<T: Real>(name: &str, peak: f64) -> Error {
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
pub fn input_plan<T: Real>(plan: &Plan, n: usize, series_degree: Option<usize>) -> MemoryPlan {
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
pub fn steps_plan(plan: &Plan) -> MemoryPlan {
    MemoryPlan::new().add([plan.ops.len(), 2], std::mem::size_of::<Op>())
}

/// A kernel request as memory errors name it: the arguments, then its size.
pub fn kernel_request(n1: usize, n2: usize, cross: bool) -> String {
    format!("{}: this kernel of {n1} x {n2} entries", if cross { "x1, x2" } else { "x1" })
}

pub fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

pub fn check_features<T>(x1: &ArrayView2<T>, x2: &ArrayView2<T>) -> Result<(), Error> {
    if x2.ncols() != x1.ncols() {
        return Err(Error::invalid("x2", format!("has {} features but x1 has {}", x2.ncols(), x1.ncols())));
    }
    Ok(())
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

/// A kernel of `x1` against `x2` (or itself) ready for tiles.
pub struct Prepared<'a, T: Real> {
    pub x1: ArrayView2<'a, T>,
    pub x2: Option<ArrayView2<'a, T>>,
    pub plan: Plan,
    ops: Vec<Op<T>>,
    slots: Vec<SlotKind>,
    data1: SideData<T>,
    data2: Option<SideData<T>>,
    /// x1's exact diagonals (the diagonal of a symmetric kernel).
    pub diag_nngp: Vec<T>,
    pub diag_ntk: Vec<T>,
    pub series_error: f64,
}

/// A worker's scratch for registers 1.. (branches): an NNGP and an NTK row segment each, for one
/// row of a tile or, for plans with series activations, all its rows.
pub struct Registers<T> {
    values: Vec<T>,
    stride: usize,
    edge: usize,
}

impl<'a, T: Real> Prepared<'a, T> {
    /// The diagonal passes of `x1` and `x2` (x1 with itself when None), after checking that the
    /// whole request fits in memory: `request(degree)` is what the operation itself allocates
    /// (outputs, per-thread scratch) at a series quadrature degree; `what` names it in errors.
    pub fn new(
        plan: Plan,
        x1: ArrayView2<'a, T>,
        x2: Option<ArrayView2<'a, T>>,
        request: &dyn Fn(Option<usize>) -> MemoryPlan,
        what: &str,
    ) -> Result<Self, Error> {
        let (n1, n2) = (x1.nrows(), x2.as_ref().map(|x| x.nrows()));
        let memory = |degree: Option<usize>| {
            request(degree)
                .plus(input_plan::<T>(&plan, n1, degree))
                .plus(n2.map_or(MemoryPlan::new(), |n2| input_plan::<T>(&plan, n2, degree)))
                .plus(steps_plan(&plan))
        };
        let fits = |degree: usize| memory(Some(degree)).check_advising(what, "compute it in blocks of rows");
        memory(plan.series_degree()).check_advising(what, "compute it in blocks of rows")?;
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
        let slots = plan
            .slots
            .iter()
            .map(|s| match s {
                Slot::Activation { activation: Activation::Series { .. }, .. } => SlotKind::Series,
                Slot::Activation { activation, .. } => SlotKind::Closed(*activation),
                Slot::Norm { .. } => SlotKind::Norm,
            })
            .collect();
        Ok(Prepared {
            ops: plan.ops.iter().map(Op::cast).collect(),
            slots,
            data1: SideData::new(&plan, &diag1),
            data2: diag2.as_ref().map(|d| SideData::new(&plan, d)),
            diag_nngp: cast::<T>(&diag1.nngp),
            diag_ntk: cast::<T>(&diag1.ntk),
            series_error,
            plan,
            x1,
            x2,
        })
    }

    pub fn n1(&self) -> usize {
        self.x1.nrows()
    }

    pub fn n2(&self) -> usize {
        self.x2.as_ref().map_or(self.x1.nrows(), |x| x.nrows())
    }

    /// The kernel of x1 with itself (no x2).
    pub fn symmetric(&self) -> bool {
        self.x2.is_none()
    }

    /// Plans with series activations run a step over a whole tile at a time.
    fn by_step(&self) -> bool {
        self.plan.has_series()
    }

    /// Rows of register scratch a worker needs (with `registers_plan`'s sizes).
    fn register_len(&self, edge: usize) -> (usize, usize) {
        let stride = if self.by_step() { edge } else { 1 } * 2 * edge;
        (stride, (self.plan.registers - 1) * stride)
    }

    /// The memory of `workers` register scratches for tiles of `edge` (for memory plans).
    pub fn registers_plan(plan: &Plan, workers: usize, edge: usize) -> MemoryPlan {
        let rows = if plan.has_series() { edge } else { 1 };
        MemoryPlan::new().add([workers, plan.registers - 1, rows, 2 * edge], std::mem::size_of::<T>())
    }

    /// A worker's register scratch for tiles of at most `edge` x `edge`.
    pub fn registers(&self, edge: usize) -> Registers<T> {
        let (stride, len) = self.register_len(edge);
        Registers { values: vec![T::ZERO; len], stride, edge }
    }

    /// Computes the tile `rows` x `cols`: the input kernel (one GEMM) into `sigma` at `origin`,
    /// then every step of the plan, leaving the NNGP there and the NTK in `theta` at
    /// `theta_origin` (when present). `upper_only` (a tile on a symmetric kernel's diagonal)
    /// computes columns j >= i only. Whether every entry came out finite.
    ///
    /// # Safety
    /// The blocks of `sigma` and `theta` lie inside their buffers and no other thread touches
    /// them during the call; `registers` came from `self.registers(edge)` with `edge` at least
    /// the tile's sides.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile(
        &self,
        registers: &mut Registers<T>,
        rows: Range<usize>,
        cols: Range<usize>,
        sigma: Out<T>,
        origin: (usize, usize),
        theta: Out<T>,
        theta_origin: (usize, usize),
        upper_only: bool,
        token: &crate::interrupt::Token,
    ) -> bool {
        let x2 = self.x2.as_ref().unwrap_or(&self.x1);
        // SAFETY: the caller's block.
        unsafe { input_kernel_tile(&self.x1, &rows, x2, &cols, sigma.at(origin.0, origin.1), sigma.ld) };
        let side1 = self.data1.side();
        let side2 = self.data2.as_ref().map(SideData::side);
        let tile = Tile {
            ops: &self.ops,
            slots: &self.slots,
            rows_side: &side1,
            cols_side: side2.as_ref().unwrap_or(&side1),
            rows,
            cols,
            sigma,
            origin,
            theta,
            theta_origin,
            scratch: registers.values.as_mut_ptr(),
            stride: registers.stride,
            edge: registers.edge,
            by_step: self.by_step(),
            upper_only,
            token,
        };
        tile.run()
    }
}

/// dst[r, c] = x1[rows.start + r] . x2[cols.start + c] / d, by one single-threaded GEMM.
///
/// # Safety
/// `dst` points to a block of `rows.len()` rows × `cols.len()` columns with row stride `ld`
/// that nothing else touches during the call; `rows` and `cols` lie inside x1 and x2.
pub unsafe fn input_kernel_tile<T: Real>(
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
