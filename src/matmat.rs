//! Kernel-matrix products K(x1, x2) V without storing K: the matrix-free engine of iterative
//! solvers (conjugate gradients, Lanczos) and of predictions at n far past memory.
//!
//! Each tile of the kernel is computed into per-thread scratch (`prepared.rs`), multiplied by
//! the rows of V it meets while it is in cache, and dropped: memory is O(threads * (tile + n1 *
//! k)), never n1 x n2. For the kernel of x1 with itself only tiles on and above the diagonal are
//! computed; an off-diagonal tile serves both K_ij V_j and K_ji V_i = K_ij^T V_i, halving the
//! work. Products go into per-thread accumulators (tiles of one row block run on different
//! threads), summed at the end: the result's last bits depend on the schedule.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Mutex;

use crate::error::Error;
use crate::float::Real;
use crate::gram::{Kernels, Want, compile_for, tiles, widened};
use crate::memory::{self, Plan as MemoryPlan};
use crate::model::Model;
use crate::prepared::{Prepared, kernel_request, overflow, tile_edge};
use crate::tile::Out;

/// Checks the right-hand sides of a product with a kernel of `n2` columns.
pub fn check_rhs<T: Real>(v: &ArrayView2<T>, n2: usize, name: &'static str, against: &str) -> Result<(), Error> {
    if v.nrows() != n2 {
        return Err(Error::invalid(name, format!("must have one row per row of {against} ({n2}), got {}", v.nrows())));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        let (r, c) = (i / v.ncols().max(1), i % v.ncols().max(1));
        return Err(Error::invalid(name, format!("contains NaN or infinity (at row {r}, column {c})")));
    }
    Ok(())
}

/// dst (m x k, row-major, ld k) += a (m x depth, strides `a_rs`, `a_cs`) @ b (depth x k).
///
/// # Safety
/// Every pointer covers its matrix; `dst` is not read or written by anyone else meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn add_product<T: Real>(
    m: usize,
    k: usize,
    depth: usize,
    dst: *mut T,
    a: *const T,
    a_rs: isize,
    a_cs: isize,
    b: *const T,
    b_rs: isize,
    b_cs: isize,
) {
    unsafe {
        gemm::gemm(
            m,
            k,
            depth,
            dst,
            1,
            k as isize,
            true,
            a,
            a_cs,
            a_rs,
            b,
            b_cs,
            b_rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Per-thread accumulators of `len` values for each wanted kernel, summed at the end.
pub struct Accumulators<T> {
    slots: Vec<Mutex<Vec<T>>>,
}

impl<T: Real> Accumulators<T> {
    pub fn plan(len: usize, count: usize) -> MemoryPlan {
        MemoryPlan::new().add([rayon::current_num_threads(), count, len], std::mem::size_of::<T>())
    }

    pub fn new(len: usize, count: usize) -> Result<Self, Error> {
        let slots = (0..rayon::current_num_threads())
            .map(|_| memory::zeroed::<T>(len * count, "the product's accumulators").map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Accumulators { slots })
    }

    /// This thread's accumulator (uncontended: one per pool thread).
    pub fn mine(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        let i = rayon::current_thread_index().unwrap_or(0) % self.slots.len();
        self.slots[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sum over threads, split per wanted kernel (`count` outputs of `rows` x `k`).
    pub fn sum(self, rows: usize, k: usize, want: Want) -> Kernels<Array2<T>> {
        let mut total: Option<Vec<T>> = None;
        for slot in self.slots {
            let v = slot.into_inner().unwrap_or_else(|e| e.into_inner());
            match &mut total {
                None => total = Some(v),
                Some(t) => t.iter_mut().zip(&v).for_each(|(a, b)| *a += *b),
            }
        }
        let total = total.unwrap_or_default();
        let len = rows * k;
        let part = |i: usize| Array2::from_shape_vec((rows, k), total[i * len..(i + 1) * len].to_vec()).expect("shape");
        Kernels { nngp: want.nngp.then(|| part(0)), ntk: want.ntk.then(|| part(want.nngp as usize)), series_error: 0.0 }
    }
}

/// K(x1, x2) @ v for each wanted kernel (x1 with itself when `x2` is None): (n1, k) each.
pub fn kernel_matmat<T: Real>(
    model: &Model,
    x1: ArrayView2<T>,
    x2: Option<ArrayView2<T>>,
    v: ArrayView2<T>,
    want: Want,
) -> Result<Kernels<Array2<T>>, Error> {
    let plan = compile_for(model, &x1, x2.as_ref())?;
    let (n1, n2) = (x1.nrows(), x2.as_ref().map_or(x1.nrows(), |x| x.nrows()));
    check_rhs(&v, n2, "v", if x2.is_some() { "x2" } else { "x1" })?;
    if widened::<T>(&plan) {
        // deep float32: in float64 (as the Gram matrix), rounded at the end
        let widen = |x: &ArrayView2<T>| x.mapv(|v| v.to_f64());
        MemoryPlan::new()
            .add([n1 + x2.as_ref().map_or(0, |x| x.nrows()), x1.ncols()], 8)
            .add([n2, v.ncols()], 8)
            .check_advising(&kernel_request(n1, n2, x2.is_some()), "multiply by fewer columns at a time")?;
        let (a, b, w) = (widen(&x1), x2.as_ref().map(widen), widen(&v));
        let k = kernel_matmat::<f64>(model, a.view(), b.as_ref().map(|b| b.view()), w.view(), want)?;
        let narrow = |k: Array2<f64>| k.mapv(T::from_f64);
        return Ok(Kernels { nngp: k.nngp.map(narrow), ntk: k.ntk.map(narrow), series_error: k.series_error });
    }
    let k = v.ncols();
    let symmetric = x2.is_none();
    let edge = tile_edge(n1, n2, symmetric);
    let threads = rayon::current_num_threads();
    let elem = std::mem::size_of::<T>();
    let request = |_: Option<usize>| {
        MemoryPlan::new()
            .add([threads, 2, edge, edge], elem)
            .plus(Prepared::<T>::registers_plan(&plan, threads, edge))
            .plus(Accumulators::<T>::plan(n1 * k, want.count()))
            .add([n1, k, want.count()], elem)
    };
    let what = format!("{} times v", kernel_request(n1, n2, x2.is_some()));
    let prepared = Prepared::new(plan.clone(), x1, x2, &request, &what)?;
    let acc = Accumulators::<T>::new(n1 * k, want.count())?;
    let finite = std::sync::atomic::AtomicBool::new(true);
    let token = crate::interrupt::current();
    tiles(0..n1, n2, symmetric, edge).into_par_iter().for_each_init(
        || {
            (
                vec![T::ZERO; edge * edge],
                vec![T::ZERO; if want.ntk { edge * edge } else { 0 }],
                prepared.registers(edge),
            )
        },
        |(sigma, theta, registers), (rows, cols)| {
            if token.is_cancelled() {
                return;
            }
            let on_diagonal = symmetric && rows.start == cols.start;
            let sigma_out = Out { ptr: sigma.as_mut_ptr(), ld: edge, present: true };
            let theta_out = Out { ptr: theta.as_mut_ptr(), ld: edge, present: want.ntk };
            // SAFETY: this worker's scratch tiles, of edge x edge.
            let ok = unsafe {
                prepared.tile(
                    registers,
                    rows.clone(),
                    cols.clone(),
                    sigma_out,
                    (0, 0),
                    theta_out,
                    (0, 0),
                    on_diagonal,
                    &token,
                )
            };
            if !ok {
                finite.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            let mut mine = acc.mine();
            let mut outputs = Vec::with_capacity(2);
            if want.nngp {
                outputs.push((sigma.as_mut_slice(), &prepared.diag_nngp));
            }
            if want.ntk {
                outputs.push((theta.as_mut_slice(), &prepared.diag_ntk));
            }
            for (which, (tile, diag)) in outputs.into_iter().enumerate() {
                if on_diagonal {
                    complete_diagonal_tile(tile, edge, &rows, diag);
                }
                let dst = &mut mine[which * n1 * k..(which + 1) * n1 * k];
                // SAFETY: the tile, v and this thread's accumulator, all in bounds.
                unsafe { multiply_tile(tile, edge, &rows, &cols, &v, dst, k, symmetric && !on_diagonal) };
            }
        },
    );
    crate::interrupt::check()?;
    if !finite.into_inner() {
        return Err(overflow::<T>(if symmetric { "x1" } else { "x1 and x2" }, f64::INFINITY));
    }
    let mut out = acc.sum(n1, k, want);
    out.series_error = prepared.series_error;
    Ok(out)
}

/// A symmetric kernel's tile on the diagonal, computed above its diagonal only: the exact
/// diagonal entries and the mirror image below.
fn complete_diagonal_tile<T: Real>(tile: &mut [T], ld: usize, rows: &Range<usize>, diag: &[T]) {
    let n = rows.len();
    for i in 0..n {
        tile[i * ld + i] = diag[rows.start + i];
        for j in i + 1..n {
            tile[j * ld + i] = tile[i * ld + j];
        }
    }
}

/// dst[rows] += tile @ v[cols], and with `transposed_too` dst[cols] += tile^T @ v[rows].
///
/// # Safety
/// `tile` holds rows.len() x cols.len() values at leading dimension `ld`; `dst` is n1 x k.
#[allow(clippy::too_many_arguments)]
unsafe fn multiply_tile<T: Real>(
    tile: &[T],
    ld: usize,
    rows: &Range<usize>,
    cols: &Range<usize>,
    v: &ArrayView2<T>,
    dst: &mut [T],
    k: usize,
    transposed_too: bool,
) {
    let (vr, vc) = (v.strides()[0], v.strides()[1]);
    let ld = ld as isize;
    unsafe {
        let v_at = |i: usize| v.as_ptr().offset(i as isize * vr);
        add_product(
            rows.len(),
            k,
            cols.len(),
            dst.as_mut_ptr().add(rows.start * k),
            tile.as_ptr(),
            ld,
            1,
            v_at(cols.start),
            vr,
            vc,
        );
        if transposed_too {
            add_product(
                cols.len(),
                k,
                rows.len(),
                dst.as_mut_ptr().add(cols.start * k),
                tile.as_ptr(),
                1,
                ld,
                v_at(rows.start),
                vr,
                vc,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::gram::gram;
    use crate::spec::{Dense, Mlp, Parameterization};
    use crate::testing::inputs;

    fn model(activation: Activation) -> Model {
        let dense = Dense::new(1.3, Some(0.2), "W_std", "b_std").unwrap();
        Model::from_mlp(&Mlp::new(2, activation, dense, dense, Parameterization::Ntk).unwrap(), None).unwrap()
    }

    fn max_rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    const BOTH: Want = Want { nngp: true, ntk: true };

    #[test]
    fn products_equal_the_dense_kernel_times_v() {
        // 700 rows: several tiles with a ragged edge; v with a non-unit column stride.
        let (x1, x2) = (inputs(700, 6, 1), inputs(300, 6, 2));
        let v_wide = inputs(700, 6, 3);
        let v = v_wide.slice(ndarray::s![.., ..;2]);
        for activation in [Activation::AbRelu { a: 0.0, b: 1.0 }, Activation::Erf { a: 1.0, b: 0.7, c: 0.1 }] {
            let m = model(activation);
            let k = gram(&m, x1.view(), None, BOTH).unwrap();
            let p = kernel_matmat(&m, x1.view(), None, v, BOTH).unwrap();
            assert!(max_rel(p.nngp.as_ref().unwrap(), &k.nngp.unwrap().dot(&v)) < 1e-13);
            assert!(max_rel(p.ntk.as_ref().unwrap(), &k.ntk.unwrap().dot(&v)) < 1e-13);
            let cross = gram(&m, x2.view(), Some(x1.view()), BOTH).unwrap();
            let q = kernel_matmat(&m, x2.view(), Some(x1.view()), v, Want { nngp: false, ntk: true }).unwrap();
            assert!(q.nngp.is_none());
            assert!(max_rel(q.ntk.as_ref().unwrap(), &cross.ntk.unwrap().dot(&v)) < 1e-13);
        }
    }

    #[test]
    fn bad_right_hand_sides_are_errors() {
        let m = model(Activation::Gelu);
        let x = inputs(10, 3, 4);
        assert!(matches!(
            kernel_matmat(&m, x.view(), None, inputs(9, 2, 5).view(), BOTH),
            Err(Error::InvalidArgument { name: "v", .. })
        ));
        let mut v = inputs(10, 2, 5);
        v[[3, 1]] = f64::NAN;
        assert!(matches!(
            kernel_matmat(&m, x.view(), None, v.view(), BOTH),
            Err(Error::InvalidArgument { name: "v", .. })
        ));
    }
}
