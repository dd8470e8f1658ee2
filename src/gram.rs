//! NNGP and NTK Gram matrices of a network (a compiled `model::Plan`), in new memory or in the
//! caller's (`gram_into`: a NumPy memmap on disk for kernels larger than RAM).
//!
//! The output is cut into square tiles (`prepared.rs`). Per tile: one GEMM writes the input
//! kernel x1.x2^T/d straight into the NNGP output (or a per-thread scratch tile when only the
//! NTK is wanted), then every step of the plan runs while the tile is in cache (`tile.rs`),
//! writing the NTK next to it: memory is the outputs plus O(threads * tile * registers), never
//! n x n x depth. Tiles run in parallel on rayon with single-threaded GEMMs (one level of
//! parallelism). For the symmetric kernel of x1 with itself only tiles on and above the diagonal
//! are computed and mirrored, and the diagonal comes from the exact diagonal pass.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use std::ops::Range;

use crate::error::Error;
use crate::float::Real;
use crate::memory::{self, Plan as MemoryPlan};
use crate::model::{Model, Plan};
use crate::prepared::{
    ADAPTIVE, MIRROR_BLOCK, Prepared, TILE, cast, check_features, diagonal_of, input_plan, kernel_request, overflow,
    steps_plan, tile_edge,
};
use crate::tile::Out;

/// Which kernels to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub nngp: bool,
    pub ntk: bool,
}

impl Want {
    /// How many kernels are wanted.
    pub fn count(&self) -> usize {
        self.nngp as usize + self.ntk as usize
    }
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

/// The diagonals k(x_i, x_i) by the exact diagonal pass.
pub fn gram_diagonal<T: Real>(model: &Model, x: ArrayView2<T>, want: Want) -> Result<Kernels<Array1<T>>, Error> {
    if model.image.is_some() {
        return crate::conv::gram_diagonal(model, x, want);
    }
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

/// The checks every kernel request starts with; the compiled plan.
pub fn compile_for<T>(model: &Model, x1: &ArrayView2<T>, x2: Option<&ArrayView2<T>>) -> Result<Plan, Error> {
    if model.image.is_some() {
        return Err(Error::Unsupported {
            name: "x1",
            message: "kernel products, kernel(..., out=) and the matrix-free solvers are not implemented yet for \
                      networks of images: compute the kernel itself (solver='cholesky' or 'eigh' in predictions)"
                .into(),
        });
    }
    if let Some(x2) = x2 {
        check_features(x1, x2)?;
    }
    if x1.ncols() == 0 {
        return Err(Error::invalid("x1", format!("must be non-empty, got shape ({}, 0)", x1.nrows())));
    }
    Plan::compile(model, Some(x1.ncols()))
}

/// Whether a float32 kernel of this plan is computed in float64 (see `FLOAT32_MAX_DEPTH`).
pub fn widened<T: Real>(plan: &Plan) -> bool {
    std::mem::size_of::<T>() < 8 && plan.depth() > FLOAT32_MAX_DEPTH
}

/// The per-thread scratch of tiles of `edge`: an input-kernel tile and the register scratch.
fn scratch_plan<T: Real>(plan: &Plan, edge: usize) -> MemoryPlan {
    let threads = rayon::current_num_threads();
    MemoryPlan::new()
        .add([threads, edge, edge], std::mem::size_of::<T>())
        .plus(Prepared::<T>::registers_plan(plan, threads, edge))
}

/// The (n1, n2) NNGP and/or NTK of `x1` against `x2`, or of `x1` with itself when `x2` is None.
pub fn gram<T: Real>(
    model: &Model,
    x1: ArrayView2<T>,
    x2: Option<ArrayView2<T>>,
    want: Want,
) -> Result<Kernels<Array2<T>>, Error> {
    if model.image.is_some() {
        return crate::conv::gram(model, x1, x2, want);
    }
    let plan = compile_for(model, &x1, x2.as_ref())?;
    if widened::<T>(&plan) {
        return deep_float32(model, x1, x2, want);
    }
    let (n1, n2) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()));
    // Memory is planned before anything is allocated: the outputs, per-thread scratch tiles and
    // both sides' per-input tables (at the quadrature degree tried, for series activations).
    let outputs = MemoryPlan::new().add([n1, n2, want.count()], std::mem::size_of::<T>());
    let request = |_: Option<usize>| outputs.plus(scratch_plan::<T>(&plan, TILE));
    let what = kernel_request(n1, n2, x2.is_some());
    let cross = x2.is_some();
    let prepared = Prepared::new(plan.clone(), x1, x2, &request, &what)?;
    let len = n1 * n2; // (fits in memory, so in usize)
    let mut nngp = if want.nngp { memory::zeroed::<T>(len, "the NNGP output")? } else { Vec::new() };
    let mut ntk = if want.ntk { memory::zeroed::<T>(len, "the NTK output")? } else { Vec::new() };
    let finite = fill(&prepared, 0..n1, Out::new(&mut nngp, n2), Out::new(&mut ntk, n2));
    if crate::interrupt::check().is_err() {
        // Unmapping gigabytes of outputs takes a while: let the caller raise first.
        std::thread::spawn(move || drop((nngp, ntk)));
        return Err(Error::Interrupted);
    }
    if !finite {
        return Err(overflow::<T>(if cross { "x1 and x2" } else { "x1" }, f64::INFINITY));
    }
    let shape = |v: Vec<T>| Array2::from_shape_vec((n1, n2), v).expect("length is n1 * n2");
    Ok(Kernels {
        nngp: want.nngp.then(|| shape(nngp)),
        ntk: want.ntk.then(|| shape(ntk)),
        series_error: prepared.series_error,
    })
}

/// An output the caller provides (`name` for errors): shape (n1, n2), row-major, as a raw block.
fn caller_out<T>(
    out: &mut Option<ArrayViewMut2<T>>,
    n1: usize,
    n2: usize,
    name: &'static str,
) -> Result<Out<T>, Error> {
    match out {
        None => Ok(Out { ptr: std::ptr::null_mut(), ld: n2, present: false }),
        Some(a) => {
            if a.dim() != (n1, n2) {
                return Err(Error::invalid(
                    name,
                    format!("must have the kernel's shape ({n1}, {n2}), got {:?}", a.dim()),
                ));
            }
            if !a.is_standard_layout() {
                return Err(Error::invalid(name, "must be C-contiguous (row-major)"));
            }
            Ok(Out { ptr: a.as_mut_ptr(), ld: n2, present: n1 * n2 > 0 })
        }
    }
}

/// The kernel written into the caller's memory, tile by tile (the same numbers as `gram`):
/// `nngp` / `ntk` (at least one) of shape (n1, n2), row-major. Only per-input tables and
/// per-thread tiles are allocated, so the outputs may be larger than RAM (memory-mapped files).
/// On an error the outputs hold partial results. The series error estimate.
pub fn gram_into<T: Real>(
    model: &Model,
    x1: ArrayView2<T>,
    x2: Option<ArrayView2<T>>,
    mut nngp: Option<ArrayViewMut2<T>>,
    mut ntk: Option<ArrayViewMut2<T>>,
) -> Result<f64, Error> {
    let plan = compile_for(model, &x1, x2.as_ref())?;
    let (n1, n2) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()));
    let outs = (caller_out(&mut nngp, n1, n2, "out.nngp")?, caller_out(&mut ntk, n1, n2, "out.ntk")?);
    if !outs.0.present && !outs.1.present {
        return Err(Error::invalid("out", "give at least one output".to_string()));
    }
    let what = kernel_request(n1, n2, x2.is_some());
    let cross = x2.is_some();
    let (finite, series_error) = if widened::<T>(&plan) {
        into_widened(plan, x1, x2, outs, &what)?
    } else {
        let request = |_: Option<usize>| scratch_plan::<T>(&plan, TILE);
        let prepared = Prepared::new(plan.clone(), x1, x2, &request, &what)?;
        (fill(&prepared, 0..n1, outs.0, outs.1), prepared.series_error)
    };
    crate::interrupt::check()?;
    if !finite {
        return Err(overflow::<T>(if cross { "x1 and x2" } else { "x1" }, f64::INFINITY));
    }
    Ok(series_error)
}

/// `gram_into` for a deep float32 kernel: computed in float64 in blocks of rows, each rounded
/// into the caller's float32 outputs.
fn into_widened<T: Real>(
    plan: Plan,
    x1: ArrayView2<T>,
    x2: Option<ArrayView2<T>>,
    outs: (Out<T>, Out<T>),
    what: &str,
) -> Result<(bool, f64), Error> {
    let (n1, n2) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()));
    let block = (BLOCK_VALUES / n2.max(1)).clamp(1, n1.max(1));
    let count = outs.0.present as usize + outs.1.present as usize;
    let inputs = MemoryPlan::new().add([n1 + x2.as_ref().map_or(0, |x| x.nrows()), x1.ncols()], 8);
    let request = |_: Option<usize>| inputs.add([block, n2, count], 8).plus(scratch_plan::<f64>(&plan, TILE));
    inputs.check_advising(what, "compute it in blocks of rows")?;
    let widen = |x: &ArrayView2<T>| x.mapv(|v| v.to_f64());
    let (a, b) = (widen(&x1), x2.as_ref().map(widen));
    let prepared = Prepared::new(plan.clone(), a.view(), b.as_ref().map(|b| b.view()), &request, what)?;
    let mut finite = true;
    let mut nngp = if outs.0.present { vec![0.0f64; block * n2] } else { Vec::new() };
    let mut ntk = if outs.1.present { vec![0.0f64; block * n2] } else { Vec::new() };
    for start in (0..n1).step_by(block) {
        let rows = start..(start + block).min(n1);
        finite &= fill(&prepared, rows.clone(), Out::new(&mut nngp, n2), Out::new(&mut ntk, n2));
        crate::interrupt::check()?;
        for (out, values) in [(outs.0, &nngp), (outs.1, &ntk)] {
            if out.present {
                for (r, i) in rows.clone().enumerate() {
                    for j in 0..n2 {
                        // SAFETY: (i, j) lies inside the caller's (n1, n2) output.
                        unsafe { *out.at(i, j) = T::from_f64(values[r * n2 + j]) };
                    }
                }
                finite &= values[..rows.len() * n2].iter().all(|v| T::from_f64(*v).is_finite());
            }
        }
    }
    Ok((finite, prepared.series_error))
}

/// Values per block of rows computed at once by `into_widened` (32 MiB of float64 per kernel).
const BLOCK_VALUES: usize = 1 << 22;

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
    // the float64 copies of the inputs and outputs, beside the float32 outputs
    let inputs = MemoryPlan::new().add([n1 + x2.as_ref().map_or(0, |x| x.nrows()), x1.ncols()], 8);
    inputs
        .add([n1, n2, want.count()], 8 + std::mem::size_of::<T>())
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

/// The tiles to compute: all of them, or for a symmetric kernel those on and above the diagonal.
pub fn tiles(rows: Range<usize>, n2: usize, symmetric: bool, edge: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let blocks = |r: Range<usize>| {
        (0..r.len().div_ceil(edge)).map(move |b| r.start + b * edge..(r.start + (b + 1) * edge).min(r.end))
    };
    let mut out = Vec::new();
    for (bi, rows) in blocks(rows.clone()).enumerate() {
        for (bj, cols) in blocks(0..n2).enumerate() {
            if !symmetric || bj >= bi {
                out.push((rows.clone(), cols));
            }
        }
    }
    out
}

/// Rows `rows` of the kernel into `nngp` / `ntk` (row `rows.start` at their row 0). The whole
/// of a symmetric kernel computes the tiles on and above the diagonal and mirrors them; a block
/// of rows computes every tile. Diagonal entries of a symmetric kernel are the exact diagonal.
/// Whether every entry came out finite (false also when cancelled: check the token).
fn fill<T: Real>(p: &Prepared<T>, rows: Range<usize>, nngp: Out<T>, ntk: Out<T>) -> bool {
    let (n1, n2) = (p.n1(), p.n2());
    let mirror = p.symmetric() && rows == (0..n1);
    let edge = tile_edge(rows.len(), n2, mirror);
    let need_scratch = !nngp.present;
    let finite = std::sync::atomic::AtomicBool::new(true);
    let token = crate::interrupt::current();
    tiles(rows.clone(), n2, mirror, edge).into_par_iter().for_each_init(
        || {
            let input = if need_scratch { vec![T::ZERO; edge * edge] } else { Vec::new() };
            (input, p.registers(edge))
        },
        |(scratch, registers), (tile_rows, cols)| {
            if token.is_cancelled() {
                return; // the caller discards the outputs
            }
            let at = (tile_rows.start - rows.start, cols.start);
            // The input kernel goes where the NNGP will end up, or into scratch.
            let (sigma, origin) = if need_scratch {
                (Out { ptr: scratch.as_mut_ptr(), ld: cols.len(), present: true }, (0, 0))
            } else {
                (nngp, at)
            };
            let on_diagonal = mirror && tile_rows.start == cols.start;
            // SAFETY: the tile's blocks are this worker's alone, inside their buffers.
            let ok = unsafe {
                p.tile(registers, tile_rows.clone(), cols.clone(), sigma, origin, ntk, at, on_diagonal, &token)
            };
            if !ok {
                finite.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            // SAFETY: the tile and its transposed block are this worker's alone.
            unsafe {
                if mirror {
                    finish_symmetric(p, &tile_rows, &cols, on_diagonal, nngp, ntk);
                } else if p.symmetric() {
                    exact_diagonal(p, &tile_rows, &cols, rows.start, nngp, ntk);
                }
            }
        },
    );
    finite.into_inner()
}

/// The exact diagonal entries of a symmetric kernel in a tile of a block of rows starting at
/// `first` (the tile path's would differ in the last bits).
unsafe fn exact_diagonal<T: Real>(
    p: &Prepared<T>,
    rows: &Range<usize>,
    cols: &Range<usize>,
    first: usize,
    nngp: Out<T>,
    ntk: Out<T>,
) {
    for (out, diag) in [(nngp, &p.diag_nngp), (ntk, &p.diag_ntk)] {
        if out.present {
            for i in rows.start.max(cols.start)..rows.end.min(cols.end) {
                // SAFETY: (i, i) lies in this worker's tile.
                unsafe { *out.at(i - first, i) = diag[i] };
            }
        }
    }
}

/// Exact diagonal entries, then the mirror image of the computed upper part.
unsafe fn finish_symmetric<T: Real>(
    p: &Prepared<T>,
    rows: &Range<usize>,
    cols: &Range<usize>,
    on_diagonal: bool,
    nngp: Out<T>,
    ntk: Out<T>,
) {
    for (out, diag) in [(nngp, &p.diag_nngp), (ntk, &p.diag_ntk)] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::activation::SeriesFunction;
    use crate::model::Layer;
    use crate::series::PointwiseFn;
    use crate::spec::{Dense, Mlp, Parameterization};
    use crate::testing::inputs;
    use ndarray::{Array2, s};

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
                Layer::Serial(vec![act, dense(1.2), Layer::layer_norm(1e-3, [false, false]).unwrap()]),
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
        let mut x = ndarray::concatenate(ndarray::Axis(0), &[v.view(), v.view(), (&v * 1.0000001).view()]).unwrap();
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
