//! Blocked Cholesky factorisation A = U^T U and the solves with it, on the `gemm` crate.
//!
//! OpenBLAS's dpotrf/dpotrs reach a third of the machine's GEMM speed on kernel-sized matrices
//! (n ~ 2000 on 2 cores); here nearly all the work is GEMMs: per panel of `PANEL` rows, a small
//! unblocked factorisation, a row-wise triangular solve of the panel (vectorised along rows,
//! parallel over column chunks), then the trailing update A22 -= U12^T U12 as parallel GEMM
//! tiles. The algorithm is LAPACK's right-looking one (no explicit inverses), so it is as stable.
//!
//! Row-major `n x n` buffers; only the upper triangle is read and written. The upper factor U in
//! row-major memory is the lower factor L = U^T in column-major memory.

use rayon::prelude::*;

const PANEL: usize = 64;
const TILE: usize = 256;
const CHUNK: usize = 256;
/// The fewest right-hand sides one worker takes.
const RHS_CHUNK: usize = 16;

type Shared = crate::memory::SharedMut<f64>;

/// Factors the symmetric positive definite `a` (row-major, upper triangle) in place into U with
/// A = U^T U, zeroing the strict lower triangle. Err(j): the leading minor of order j + 1 is not
/// positive (A is not positive definite to working precision), or the call was interrupted
/// (`crate::interrupt`) before that panel.
pub fn factor_upper(a: &mut [f64], n: usize) -> Result<(), usize> {
    assert_eq!(a.len(), n * n);
    let token = crate::interrupt::current();
    for k0 in (0..n).step_by(PANEL) {
        if token.is_cancelled() {
            return Err(k0);
        }
        let k1 = (k0 + PANEL).min(n);
        factor_diagonal_block(a, n, k0, k1)?;
        solve_panel(a, n, k0, k1);
        update_trailing(a, n, k0, k1);
    }
    for i in 1..n {
        a[i * n..i * n + i].fill(0.0);
    }
    Ok(())
}

/// Unblocked right-looking factorisation of the diagonal block rows k0..k1, columns k0..k1.
fn factor_diagonal_block(a: &mut [f64], n: usize, k0: usize, k1: usize) -> Result<(), usize> {
    for j in k0..k1 {
        let pivot = a[j * n + j];
        if pivot.is_nan() || pivot <= 0.0 {
            return Err(j);
        }
        let d = pivot.sqrt();
        a[j * n + j] = d;
        for c in j + 1..k1 {
            a[j * n + c] /= d;
        }
        let (head, tail) = a.split_at_mut((j + 1) * n);
        let row_j = &head[j * n..];
        for r in j + 1..k1 {
            let factor = row_j[r];
            let row_r = &mut tail[(r - j - 1) * n..(r - j) * n];
            for c in r..k1 {
                row_r[c] -= factor * row_j[c];
            }
        }
    }
    Ok(())
}

/// U12 = U11^-T A12 for the panel rows k0..k1 and columns k1..n: forward substitution whose
/// steps are axpys along rows, run in parallel over column chunks.
fn solve_panel(a: &mut [f64], n: usize, k0: usize, k1: usize) {
    if k1 >= n {
        return;
    }
    let base = Shared::new(a.as_mut_ptr());
    (k1..n).step_by(CHUNK).collect::<Vec<_>>().into_par_iter().for_each(|c0| {
        let c1 = (c0 + CHUNK).min(n);
        // SAFETY: this worker alone touches columns c0..c1 of rows k0..k1; the diagonal block
        // (columns k0..k1) is only read.
        let row = |i: usize| unsafe { std::slice::from_raw_parts_mut(base.get().add(i * n + c0), c1 - c0) };
        let u = |i: usize, j: usize| unsafe { *base.get().add(i * n + j) };
        for j in k0..k1 {
            let inv = 1.0 / u(j, j);
            let row_j = row(j);
            row_j.iter_mut().for_each(|v| *v *= inv);
            for r in j + 1..k1 {
                let factor = u(j, r);
                for (x, y) in row(r).iter_mut().zip(row_j.iter()) {
                    *x -= factor * y;
                }
            }
        }
    });
}

/// A22 -= U12^T U12 on the upper triangle, rows and columns k1..n, in parallel GEMM tiles.
fn update_trailing(a: &mut [f64], n: usize, k0: usize, k1: usize) {
    if k1 >= n {
        return;
    }
    let blocks: Vec<usize> = (k1..n).step_by(TILE).collect();
    let tiles: Vec<(usize, usize)> =
        blocks.iter().flat_map(|&i| blocks.iter().filter(move |&&j| j >= i).map(move |&j| (i, j))).collect();
    let base = Shared::new(a.as_mut_ptr());
    tiles.into_par_iter().for_each(|(i0, j0)| {
        let (rows, cols) = ((i0 + TILE).min(n) - i0, (j0 + TILE).min(n) - j0);
        // SAFETY: the destination tile is this worker's; U12 (rows k0..k1) is only read.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k1 - k0,
                base.get().add(i0 * n + j0),
                1,
                n as isize,
                true,
                // lhs = U12[:, i0..]^T: element (r, l) at U[k0 + l][i0 + r]
                base.get().add(k0 * n + i0),
                n as isize,
                1,
                base.get().add(k0 * n + j0),
                1,
                n as isize,
                1.0,
                -1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
}

/// Solves A X = B in place for B (row-major n x m) given the factor U (row-major upper): first
/// U^T Y = B, then U X = Y, by blocked substitution whose off-diagonal work is one GEMM per block
/// of rows. Columns of B are independent: chunks of them run in parallel.
pub fn solve_in_place(u: &[f64], n: usize, b: &mut [f64], m: usize) {
    assert_eq!(u.len(), n * n);
    assert_eq!(b.len(), n * m);
    // One chunk of columns per thread (wide GEMMs are the efficient ones), at least RHS_CHUNK wide.
    let chunk = m.div_ceil(rayon::current_num_threads()).max(RHS_CHUNK);
    let base = Shared::new(b.as_mut_ptr());
    (0..m).step_by(chunk).collect::<Vec<_>>().into_par_iter().for_each(|c0| {
        // SAFETY: this worker alone touches columns c0..c0 + width of b.
        unsafe { solve_columns(u, n, base.get().add(c0), m, (c0 + chunk).min(m) - c0) };
    });
}

/// The substitution for `width` columns of a row-major right-hand side with row stride `ld`.
unsafe fn solve_columns(u: &[f64], n: usize, b: *mut f64, ld: usize, width: usize) {
    let row = |i: usize| unsafe { std::slice::from_raw_parts_mut(b.add(i * ld), width) };
    let gemm_update = |dst_row: usize,
                       rows: usize,
                       lhs: *const f64,
                       lhs_cs: isize,
                       lhs_rs: isize,
                       src_row: usize,
                       depth: usize| unsafe {
        gemm::gemm(
            rows,
            width,
            depth,
            b.add(dst_row * ld),
            1,
            ld as isize,
            true,
            lhs,
            lhs_cs,
            lhs_rs,
            b.add(src_row * ld),
            1,
            ld as isize,
            1.0,
            -1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    };
    // Forward: Y_J = U_JJ^-T (B_J - U[<J, J]^T Y_<J).
    for j0 in (0..n).step_by(PANEL) {
        let j1 = (j0 + PANEL).min(n);
        if j0 > 0 {
            // lhs (r, l) = U[l][j0 + r]
            gemm_update(j0, j1 - j0, u.as_ptr().wrapping_add(j0), n as isize, 1, 0, j0);
        }
        for j in j0..j1 {
            let inv = 1.0 / u[j * n + j];
            let row_j = row(j);
            row_j.iter_mut().for_each(|v| *v *= inv);
            for r in j + 1..j1 {
                let factor = u[j * n + r];
                for (x, y) in row(r).iter_mut().zip(row_j.iter()) {
                    *x -= factor * y;
                }
            }
        }
    }
    // Backward: X_J = U_JJ^-1 (Y_J - U[J, >J] X_>J).
    let starts: Vec<usize> = (0..n).step_by(PANEL).collect();
    for &j0 in starts.iter().rev() {
        let j1 = (j0 + PANEL).min(n);
        if j1 < n {
            gemm_update(j0, j1 - j0, u.as_ptr().wrapping_add(j0 * n + j1), 1, n as isize, j1, n - j1);
        }
        for j in (j0..j1).rev() {
            let inv = 1.0 / u[j * n + j];
            let row_j = row(j);
            row_j.iter_mut().for_each(|v| *v *= inv);
            for r in j0..j {
                let factor = u[r * n + j];
                for (x, y) in row(r).iter_mut().zip(row_j.iter()) {
                    *x -= factor * y;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Vec<f64> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let x: Vec<f64> = (0..n * 40)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..40).map(|k| x[i * 40 + k] * x[j * 40 + k]).sum::<f64>() + if i == j { 0.1 } else { 0.0 };
            }
        }
        a
    }

    #[test]
    fn factor_and_solve_across_panel_and_tile_boundaries() {
        for n in [1, 7, 64, 65, 300, 530] {
            let a = spd(n);
            let mut u = a.clone();
            factor_upper(&mut u, n).unwrap();
            let mut worst: f64 = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let utu: f64 = (0..n).map(|l| u[l * n + i] * u[l * n + j]).sum();
                    worst = worst.max((utu - a[i * n + j]).abs());
                    if i > j {
                        assert_eq!(u[i * n + j], 0.0);
                    }
                }
            }
            assert!(worst < 1e-12, "n={n}: {worst}");
            let m = 3;
            let b: Vec<f64> = (0..n * m).map(|i| (i % 17) as f64 - 8.0).collect();
            let mut x = b.clone();
            solve_in_place(&u, n, &mut x, m);
            for i in 0..n {
                for c in 0..m {
                    let ax: f64 = (0..n).map(|l| a[i * n + l] * x[l * m + c]).sum();
                    assert!((ax - b[i * m + c]).abs() < 1e-8, "n={n}");
                }
            }
        }
    }

    #[test]
    fn indefinite_matrices_are_reported_with_their_pivot() {
        let n = 100;
        let mut a = spd(n);
        a[70 * n + 70] = -5.0;
        assert_eq!(factor_upper(&mut a, n), Err(70));
        let mut nan = spd(10);
        nan[0] = f64::NAN;
        assert_eq!(factor_upper(&mut nan, 10), Err(0));
    }
}
