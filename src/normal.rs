//! The Nystrom normal product K(x, C)^T (K(x, C) V) for n inputs x and M centres C, without
//! storing the n x M kernel: the matrix-vector product of Falkon-style kernel regression
//! (Rudi, Carratino, Rosasco 2017), whose system is (K_nM^T K_nM + lambda K_MM) beta = K_nM^T y.
//!
//! Work is split into panels of `PANEL` rows of x by all M centres: a panel is computed tile by
//! tile into per-thread scratch, then U = P V (PANEL x k) and the thread's accumulator gets
//! P^T U, so every kernel entry is computed once per product.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::Error;
use crate::float::Real;
use crate::gram::{Kernels, Want, compile_for, widened};
use crate::matmat::{Accumulators, add_product, check_rhs};
use crate::memory::Plan as MemoryPlan;
use crate::model::Model;
use crate::prepared::{Prepared, TILE, kernel_request, overflow};
use crate::tile::Out;

/// Rows of x per panel: a 64 x M panel (1 MiB at M = 2000 in f64) stays in L2 between its
/// two products.
const PANEL: usize = 64;

/// K(x, centres)^T K(x, centres) v for each wanted kernel: (M, k) each, v of shape (M, k).
pub fn kernel_normal_matmat<T: Real>(
    model: &Model,
    x: ArrayView2<T>,
    centres: ArrayView2<T>,
    v: ArrayView2<T>,
    want: Want,
) -> Result<Kernels<Array2<T>>, Error> {
    let plan = compile_for(model, &x, Some(&centres))?;
    let (n, m) = (x.nrows(), centres.nrows());
    check_rhs(&v, m, "v", "x2")?;
    if widened::<T>(&plan) {
        let widen = |x: &ArrayView2<T>| x.mapv(|v| v.to_f64());
        MemoryPlan::new()
            .add([n + m, x.ncols()], 8)
            .add([m, v.ncols()], 8)
            .check_advising(&kernel_request(n, m, true), "multiply by fewer columns at a time")?;
        let (a, b, w) = (widen(&x), widen(&centres), widen(&v));
        let k = kernel_normal_matmat::<f64>(model, a.view(), b.view(), w.view(), want)?;
        let narrow = |k: Array2<f64>| k.mapv(T::from_f64);
        return Ok(Kernels { nngp: k.nngp.map(narrow), ntk: k.ntk.map(narrow), series_error: k.series_error });
    }
    let k = v.ncols();
    let threads = rayon::current_num_threads();
    let elem = std::mem::size_of::<T>();
    let panels = 1 + want.ntk as usize; // the NNGP panel always holds the input kernel
    let request = |_: Option<usize>| {
        MemoryPlan::new()
            .add([threads, panels, PANEL, m], elem)
            .add([threads, PANEL, k], elem)
            .plus(Prepared::<T>::registers_plan(&plan, threads, TILE))
            .plus(Accumulators::<T>::plan(m * k, want.count()))
            .add([m, k, want.count()], elem)
    };
    let what = format!("{} (normal product)", kernel_request(n, m, true));
    let prepared = Prepared::new(plan.clone(), x, Some(centres), &request, &what)?;
    let acc = Accumulators::<T>::new(m * k, want.count())?;
    let finite = std::sync::atomic::AtomicBool::new(true);
    let token = crate::interrupt::current();
    let starts: Vec<usize> = (0..n).step_by(PANEL).collect();
    starts.into_par_iter().for_each_init(
        || {
            let panel = vec![T::ZERO; panels * PANEL * m];
            (panel, vec![T::ZERO; PANEL * k], prepared.registers(TILE))
        },
        |(panel, u, registers), start| {
            if token.is_cancelled() {
                return;
            }
            let rows = start..(start + PANEL).min(n);
            let (sigma, theta) = panel.split_at_mut(PANEL * m);
            let sigma_out = Out { ptr: sigma.as_mut_ptr(), ld: m, present: true };
            let theta_out = Out { ptr: theta.as_mut_ptr(), ld: m, present: want.ntk };
            for c in (0..m).step_by(TILE) {
                let cols = c..(c + TILE).min(m);
                // SAFETY: the panel is this worker's, PANEL x m.
                let ok = unsafe {
                    prepared.tile(registers, rows.clone(), cols, sigma_out, (0, c), theta_out, (0, c), false, &token)
                };
                if !ok {
                    finite.store(false, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let mut mine = acc.mine();
            let mut outputs = Vec::with_capacity(2);
            if want.nngp {
                outputs.push(&*sigma);
            }
            if want.ntk {
                outputs.push(&*theta);
            }
            let (vr, vc) = (v.strides()[0], v.strides()[1]);
            let b = rows.len();
            for (which, p) in outputs.into_iter().enumerate() {
                u.fill(T::ZERO);
                let dst = &mut mine[which * m * k..(which + 1) * m * k];
                // SAFETY: the panel (b x m, ld m), v (m x k), u (b x k), dst (m x k).
                unsafe {
                    add_product(b, k, m, u.as_mut_ptr(), p.as_ptr(), m as isize, 1, v.as_ptr(), vr, vc);
                    add_product(m, k, b, dst.as_mut_ptr(), p.as_ptr(), 1, m as isize, u.as_ptr(), k as isize, 1);
                }
            }
        },
    );
    crate::interrupt::check()?;
    if !finite.into_inner() {
        return Err(overflow::<T>("x1 and x2", f64::INFINITY));
    }
    let mut out = acc.sum(m, k, want);
    out.series_error = prepared.series_error;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::gram::gram;
    use crate::spec::{Dense, Mlp, Parameterization};
    use crate::testing::inputs;

    #[test]
    fn normal_product_equals_the_dense_one() {
        let dense = Dense::new(1.3, Some(0.2), "W_std", "b_std").unwrap();
        let mlp = Mlp::new(3, Activation::AbRelu { a: 0.0, b: 1.0 }, dense, dense, Parameterization::Ntk).unwrap();
        let m = Model::from_mlp(&mlp, None).unwrap();
        // 150 rows (ragged last panel), 300 centres (ragged last tile)
        let (x, c, v) = (inputs(150, 4, 1), inputs(300, 4, 2), inputs(300, 3, 3));
        let both = Want { nngp: true, ntk: true };
        let k = gram(&m, x.view(), Some(c.view()), both).unwrap();
        let p = kernel_normal_matmat(&m, x.view(), c.view(), v.view(), both).unwrap();
        for (got, k) in [(p.nngp.unwrap(), k.nngp.unwrap()), (p.ntk.unwrap(), k.ntk.unwrap())] {
            let want = k.t().dot(&k.dot(&v));
            let scale = want.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12 * scale));
        }
    }
}
