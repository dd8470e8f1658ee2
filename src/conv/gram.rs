//! Kernels of networks of images: each input's statistics (its pair with itself), then every
//! pair of inputs in parallel, tiles of pairs per task, one workspace per thread. Memory is the
//! outputs plus per-thread workspaces of the largest register (never n^2 P^2 at once), planned
//! before anything is allocated.

use ndarray::{Array1, Array2, ArrayView2, CowArray, Ix2};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

use super::pair::{self, Sides, Workspace};
use super::plan::{ConvPlan, Shape, SlotKind};
use crate::error::Error;
use crate::float::Real;
use crate::gram::{Kernels, Want, tiles};
use crate::memory::{self, Plan as MemoryPlan};
use crate::model::Model;
use crate::prepared::{kernel_request, overflow};
use crate::tile::Out;

/// Pairs per edge of a task's tile: small, so that two threads share even a few hundred images.
const EDGE: usize = 16;

/// One side's inputs as rows of h w c values (checked), their statistics and diagonal kernels.
struct Side<T> {
    x: Vec<T>,
    row: usize,
    stats: Vec<T>,
    stats_row: usize,
    /// k(x_i, x_i) entries (the plan's output length per input), NNGP and NTK.
    nngp: Vec<T>,
    ntk: Vec<T>,
}

impl<T: Real> Side<T> {
    fn x(&self, i: usize) -> &[T] {
        &self.x[i * self.row..][..self.row]
    }
    fn stats(&self, i: usize) -> &[T] {
        &self.stats[i * self.stats_row..][..self.stats_row]
    }
}

fn check_inputs<T: Real>(model: &Model, x: &ArrayView2<T>, name: &'static str) -> Result<(), Error> {
    let [h, w, c] = model.image.expect("an image model");
    if x.nrows() == 0 {
        return Err(Error::invalid(name, "must hold at least one image, got 0"));
    }
    if x.ncols() != h * w * c {
        return Err(Error::invalid(
            name,
            format!("has {} values per input, but images of shape ({h}, {w}, {c}) have {}", x.ncols(), h * w * c),
        ));
    }
    if let Some(i) = x.outer_iter().position(|row| row.iter().any(|v| !v.is_finite())) {
        return Err(Error::invalid(name, format!("image {i} contains NaN or infinity")));
    }
    Ok(())
}

/// Every input's statistics and diagonal kernels, in parallel; the peak variance they reach.
fn prepare<T: Real>(plan: &ConvPlan, x: &ArrayView2<T>, want_ntk: bool) -> Result<(Side<T>, f64), Error> {
    let x: CowArray<T, Ix2> = x.as_standard_layout();
    let (n, row) = (x.nrows(), x.ncols());
    let xs = x.as_slice().expect("standard layout");
    let stats_row = 3 * plan.stats_len;
    let token = crate::interrupt::current();
    let each: Vec<(Vec<T>, Vec<T>, Vec<T>)> = (0..n)
        .into_par_iter()
        .map_init(
            || Workspace::<T>::new(plan),
            |ws, i| {
                let mut stats = vec![T::ZERO; stats_row];
                if token.is_cancelled() {
                    return (stats, Vec::new(), Vec::new());
                }
                let xi = &xs[i * row..][..row];
                let (a, b) = if want_ntk {
                    pair::run::<T, true>(plan, ws, xi, xi, Sides::Record(&mut stats))
                } else {
                    pair::run::<T, false>(plan, ws, xi, xi, Sides::Record(&mut stats))
                };
                let (a, b) = (a.to_vec(), b.to_vec());
                (stats, a, b)
            },
        )
        .collect();
    crate::interrupt::check()?;
    let mut side = Side { x: xs.to_vec(), row, stats: Vec::new(), stats_row, nngp: Vec::new(), ntk: Vec::new() };
    for (stats, a, b) in each {
        side.stats.extend(stats);
        side.nngp.extend(a);
        side.ntk.extend(b);
    }
    // a LayerNorm of a zero variance with eps = 0 divides 0 by 0
    for (slot, s) in plan.slots.iter().enumerate() {
        if let SlotKind::Norm { .. } = s.kind {
            let aux = |i: usize| &side.stats[i * stats_row + plan.stats_len + s.offset..][..s.positions];
            if let Some(i) = (0..n).find(|&i| aux(i).iter().any(|v| !v.is_finite())) {
                return Err(Error::invalid(
                    "eps",
                    format!(
                        "input {i} reaches LayerNorm number {slot} with variance 0 and eps = 0: its normalisation is \
                         0 / 0; pass LayerNorm(eps > 0) or give the layer before it a bias"
                    ),
                ));
            }
        }
    }
    let q = side.stats.chunks(stats_row.max(1)).flat_map(|s| s[..plan.stats_len.min(s.len())].iter());
    let peak = q
        .chain(side.nngp.iter())
        .fold(0.0f64, |m, v| if v.is_finite() { m.max(v.to_f64().abs()) } else { f64::INFINITY });
    Ok((side, peak))
}

/// The (n1, n2 x L) NNGP and/or NTK of images `x1` against `x2` (or `x1` with itself), L the
/// entries per pair the network's output has (1 after Flatten or GlobalAvgPool; else the output
/// positions' pairs, row-major).
pub fn gram<T: Real>(
    model: &Model,
    x1: ArrayView2<T>,
    x2: Option<ArrayView2<T>>,
    want: Want,
) -> Result<Kernels<Array2<T>>, Error> {
    let plan = ConvPlan::for_model(model)?;
    check_inputs(model, &x1, "x1")?;
    if let Some(x2) = &x2 {
        check_inputs(model, x2, "x2")?;
    }
    let (n1, n2) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()));
    let out_len = plan.output.len();
    let size = std::mem::size_of::<T>();
    let threads = rayon::current_num_threads();
    let inputs = n1 + x2.as_ref().map_or(0, |x| x.nrows());
    MemoryPlan::new()
        .add([n1, n2, out_len, want.count().max(1)], size)
        .add([threads, Workspace::<T>::len(&plan)], size)
        .add([inputs, 3 * plan.stats_len + x1.ncols() + 2 * out_len], size)
        .check_advising(&kernel_request(n1, n2, x2.is_some()), "compute it in blocks of rows, or use smaller images")?;
    let want_ntk = want.ntk;
    let (side1, peak1) = prepare(&plan, &x1, want_ntk)?;
    let (side2, peak2) = match &x2 {
        Some(x2) => {
            let (s, p) = prepare(&plan, x2, want_ntk)?;
            (Some(s), p)
        }
        None => (None, 0.0),
    };
    let name = if x2.is_some() { "x1 and x2" } else { "x1" };
    // Variances are multiplied together in the duals, so they must stay below sqrt(MAX).
    let limit = T::MAX.to_f64().sqrt() / 64.0;
    let peak = peak1.max(peak2);
    if peak.partial_cmp(&limit) != Some(std::cmp::Ordering::Less) {
        return Err(overflow::<T>(name, peak));
    }
    let symmetric = side2.is_none();
    let side2 = side2.as_ref().unwrap_or(&side1);
    let len = n1 * n2 * out_len;
    let mut nngp = if want.nngp { memory::zeroed::<T>(len, "the NNGP output")? } else { Vec::new() };
    let mut ntk = if want.ntk { memory::zeroed::<T>(len, "the NTK output")? } else { Vec::new() };
    let (out_nngp, out_ntk) = (Out::new(&mut nngp, n2 * out_len), Out::new(&mut ntk, n2 * out_len));
    let finite = AtomicBool::new(true);
    let token = crate::interrupt::current();
    let scalar = plan.output == Shape::Scalar;
    tiles(0..n1, n2, symmetric, EDGE).into_par_iter().for_each_init(
        || Workspace::<T>::new(&plan),
        |ws, (rows, cols)| {
            let mut ok = true;
            for i in rows {
                for j in cols.clone() {
                    if token.is_cancelled() {
                        return;
                    }
                    if symmetric && j < i {
                        continue;
                    }
                    let (a, b): (Vec<T>, Vec<T>) = if symmetric && i == j {
                        let b = if want_ntk { side1.ntk[i * out_len..][..out_len].to_vec() } else { Vec::new() };
                        (side1.nngp[i * out_len..][..out_len].to_vec(), b)
                    } else {
                        let sides = Sides::Pair(side1.stats(i), side2.stats(j));
                        let (a, b) = if want_ntk {
                            pair::run::<T, true>(&plan, ws, side1.x(i), side2.x(j), sides)
                        } else {
                            pair::run::<T, false>(&plan, ws, side1.x(i), side2.x(j), sides)
                        };
                        (a.to_vec(), b.to_vec())
                    };
                    for (values, diag1, diag2, out, wanted) in [
                        (&a, &side1.nngp, &side2.nngp, out_nngp, want.nngp),
                        (&b, &side1.ntk, &side2.ntk, out_ntk, want.ntk),
                    ] {
                        if !wanted {
                            continue;
                        }
                        for (k, &v) in values.iter().enumerate() {
                            // the Cauchy-Schwarz bound of the exact diagonals keeps the kernel PSD
                            let v = if scalar {
                                let bound = (diag1[i] * diag2[j]).sqrt();
                                v.min_fast(bound).max_fast(-bound)
                            } else {
                                v
                            };
                            ok &= v.is_finite();
                            // SAFETY: each (i, j) (and its mirror (j, i)) is written by one task.
                            unsafe {
                                *out.at(i, j * out_len + k) = v;
                                if symmetric && i != j {
                                    *out.at(j, i * out_len + mirror(k, plan.output)) = v;
                                }
                            }
                        }
                    }
                }
            }
            if !ok {
                finite.store(false, Ordering::Relaxed);
            }
        },
    );
    crate::interrupt::check()?;
    if !finite.load(Ordering::Relaxed) {
        return Err(overflow::<T>(name, f64::INFINITY));
    }
    let shape = |v: Vec<T>| Array2::from_shape_vec((n1, n2 * out_len), v).expect("length is n1 * n2 * L");
    Ok(Kernels { nngp: want.nngp.then(|| shape(nngp)), ntk: want.ntk.then(|| shape(ntk)), series_error: 0.0 })
}

/// The entry of pair (x2, x1) equal to entry k of pair (x1, x2): positions swapped.
fn mirror(k: usize, output: Shape) -> usize {
    match output {
        Shape::Full(_) => {
            let p = output.positions();
            (k % p) * p + k / p
        }
        _ => k,
    }
}

/// The diagonal k(x_i, x_i) of images (the network's output without positions).
pub fn gram_diagonal<T: Real>(model: &Model, x: ArrayView2<T>, want: Want) -> Result<Kernels<Array1<T>>, Error> {
    let plan = ConvPlan::for_model(model)?;
    if plan.output != Shape::Scalar {
        return Err(Error::Unsupported {
            name: "diagonal",
            message: "the diagonal of a kernel with positions (a network not ending in Flatten() or \
                      GlobalAvgPool()) is not implemented; compute the full kernel"
                .into(),
        });
    }
    check_inputs(model, &x, "x1")?;
    let n = x.nrows();
    MemoryPlan::new()
        .add([rayon::current_num_threads(), Workspace::<T>::len(&plan)], std::mem::size_of::<T>())
        .add([n, 3 * plan.stats_len + x.ncols() + 4], std::mem::size_of::<T>())
        .check_advising("x1: this kernel diagonal", "compute it in blocks of rows")?;
    let (side, peak) = prepare(&plan, &x, want.ntk)?;
    if peak.partial_cmp(&(T::MAX.to_f64().sqrt() / 64.0)) != Some(std::cmp::Ordering::Less) {
        return Err(overflow::<T>("x1", peak));
    }
    Ok(Kernels {
        nngp: want.nngp.then(|| Array1::from_vec(side.nngp)),
        ntk: want.ntk.then(|| Array1::from_vec(side.ntk)),
        series_error: 0.0,
    })
}
