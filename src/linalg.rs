//! Dense symmetric linear algebra through LAPACK (the system OpenBLAS): eigendecomposition and
//! Cholesky factorisation / solves, with failures as errors. Matrices are row-major ndarray
//! views; a symmetric matrix is its own transpose, so it is handed to column-major LAPACK as is.

use ndarray::{Array1, Array2, ArrayView2, ShapeBuilder};
use ndarray_linalg::{Eigh, UPLO};
use rayon::prelude::*;
use std::os::raw::{c_char, c_int};

use crate::error::Error;
use crate::memory::Plan;

/// The LAPACK driver for `eigh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EighDriver {
    /// Divide and conquer (?syevd): the fastest for all eigenvectors of large matrices.
    Syevd,
    /// Relatively robust representations (?syevr).
    Syevr,
    /// The QR iteration (?syev), as ndarray-linalg's `Eigh` calls it.
    Syev,
}

impl EighDriver {
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "syevd" => Ok(EighDriver::Syevd),
            "syevr" => Ok(EighDriver::Syevr),
            "syev" => Ok(EighDriver::Syev),
            other => Err(Error::invalid("driver", format!("must be 'syevd', 'syevr' or 'syev', got {other:?}"))),
        }
    }
}

fn lapack_int(n: usize, name: &'static str) -> Result<c_int, Error> {
    c_int::try_from(n).map_err(|_| Error::invalid(name, format!("dimension {n} is too large for LAPACK")))
}

/// max |v| over `s`, or None if any value is NaN or infinite. Eight independent lanes, so that
/// the reduction vectorises (a single running max is a serial dependency chain).
fn max_abs_finite(s: &[f64]) -> Option<f64> {
    let mut lanes = [0.0f64; 8];
    let mut finite = true;
    let chunks = s.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            finite &= v.is_finite();
            let a = v.abs();
            *lane = if a > *lane { a } else { *lane };
        }
    }
    for &v in rest {
        finite &= v.is_finite();
        lanes[0] = if v.abs() > lanes[0] { v.abs() } else { lanes[0] };
    }
    finite.then(|| lanes.iter().fold(0.0f64, |m, &v| m.max(v)))
}

/// Checks that `a` is a non-empty, finite, square and (to rounding) symmetric matrix.
pub fn check_symmetric(a: &ArrayView2<f64>, name: &'static str) -> Result<(), Error> {
    check_symmetric_within(a, name, 1, "a: this matrix")
}

/// `check_symmetric`, once `copies` n x n matrices (everything the caller will allocate, and the
/// check's own contiguous copy) fit in memory: the plan comes before any allocation.
fn check_symmetric_within(a: &ArrayView2<f64>, name: &'static str, copies: usize, what: &str) -> Result<(), Error> {
    plan_square(a, name, copies + 1, what)?;
    let n = a.nrows();
    let contiguous = a.as_standard_layout();
    let s = contiguous.as_slice().expect("standard layout");
    // (in parallel: a single thread here would also compete with rayon's spinning workers)
    let scale = s
        .par_chunks(1 << 16)
        .map(max_abs_finite)
        .try_reduce(|| 0.0, |a, b| Some(a.max(b)))
        .ok_or_else(|| Error::invalid(name, "contains NaN or infinity"))?;
    let tolerance = 1e-10 * scale;
    // In 64 x 64 blocks so that the transposed reads stay in cache; branch-free (the first
    // offending pair is looked up only if there is one).
    const BLOCK: usize = 64;
    let symmetric = (0..n).step_by(BLOCK).collect::<Vec<_>>().into_par_iter().all(|i0| {
        let mut ok = true;
        for j0 in (0..=i0).step_by(BLOCK) {
            for i in i0..(i0 + BLOCK).min(n) {
                let j1 = (j0 + BLOCK).min(i);
                if j1 <= j0 {
                    continue;
                }
                for (j, &lower) in (j0..j1).zip(&s[i * n + j0..i * n + j1]) {
                    ok &= (lower - s[j * n + i]).abs() <= tolerance;
                }
            }
        }
        ok
    });
    if !symmetric {
        let close = |i: usize, j: usize| (s[i * n + j] - s[j * n + i]).abs() <= tolerance;
        let (i, j) = (0..n).flat_map(|i| (0..i).map(move |j| (i, j))).find(|&(i, j)| !close(i, j)).expect("a pair");
        return Err(Error::invalid(
            name,
            format!(
                "must be symmetric; entries ({i}, {j}) and ({j}, {i}) differ: {} vs {}",
                s[i * n + j],
                s[j * n + i]
            ),
        ));
    }
    Ok(())
}

/// Fails unless `a` is a non-empty square matrix and `copies` n x n matrices fit in memory.
pub fn plan_square(a: &ArrayView2<f64>, name: &'static str, copies: usize, what: &str) -> Result<(), Error> {
    let (n, m) = a.dim();
    if n != m || n == 0 {
        return Err(Error::invalid(name, format!("must be a non-empty square matrix, got shape ({n}, {m})")));
    }
    Plan::new().add([n, n, copies], 8).add([n, 16], 8).check(what)
}

/// The n x n matrices `eigh` (with `vectors`) or `eigvalsh` allocate for an n x n input.
pub fn eigh_copies(vectors: bool) -> usize {
    if vectors { 5 } else { 2 }
}

/// A column-major copy of `a` for LAPACK to overwrite.
fn fortran_copy(a: &ArrayView2<f64>) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros(a.dim().f());
    out.assign(a);
    out
}

fn lapack_failure(routine: &str, info: c_int) -> Error {
    Error::invalid("a", format!("LAPACK {routine} failed (info = {info})"))
}

/// The eigenvalues of a symmetric matrix in ascending order (divide and conquer without
/// eigenvectors: only the tridiagonal reduction is O(n^3)).
pub fn eigvalsh(a: ArrayView2<f64>) -> Result<Array1<f64>, Error> {
    // LAPACK's copy, and the (tridiagonal) workspace
    check_symmetric_within(&a, "a", eigh_copies(false) - 1, "a: this eigendecomposition")?;
    syevd(&a, false).map(|(w, _)| w)
}

/// The eigenvalues, ascending, of the symmetric tridiagonal matrix with diagonal `diag` and
/// off-diagonal `off` (LAPACK dsterf: O(n^2), no eigenvectors).
pub fn eigvals_tridiagonal(mut diag: Vec<f64>, mut off: Vec<f64>) -> Result<Vec<f64>, Error> {
    let n = lapack_int(diag.len(), "diag")?;
    assert_eq!(off.len() + 1, diag.len().max(1), "off-diagonal length");
    off.push(0.0); // (dsterf reads n - 1 of them; keeps the pointer valid for n = 1)
    let mut info: c_int = 0;
    // SAFETY: d has n entries and e at least n - 1, as dsterf documents.
    unsafe { lapack_sys::dsterf_(&n, diag.as_mut_ptr(), off.as_mut_ptr(), &mut info) };
    if info != 0 {
        return Err(lapack_failure("dsterf", info));
    }
    Ok(diag)
}

fn syevd(a: &ArrayView2<f64>, vectors: bool) -> Result<(Array1<f64>, Array2<f64>), Error> {
    let n = a.nrows();
    let n_int = lapack_int(n, "a")?;
    let mut v = fortran_copy(a);
    let mut w = Array1::<f64>::zeros(n);
    let (jobz, uplo) = (if vectors { b'V' } else { b'N' } as c_char, b'L' as c_char);
    let mut info: c_int = 0;
    let (mut work_size, mut iwork_size) = (0.0f64, 0 as c_int);
    // SAFETY: buffers sized as LAPACK documents; lwork = liwork = -1 is a size query.
    unsafe {
        lapack_sys::dsyevd_(
            &jobz,
            &uplo,
            &n_int,
            v.as_mut_ptr(),
            &n_int,
            w.as_mut_ptr(),
            &mut work_size,
            &-1,
            &mut iwork_size,
            &-1,
            &mut info,
        );
    }
    if info != 0 {
        return Err(lapack_failure("dsyevd", info));
    }
    let lwork = work_size as c_int;
    let mut work = vec![0.0f64; lwork.max(1) as usize];
    let mut iwork = vec![0 as c_int; iwork_size.max(1) as usize];
    unsafe {
        lapack_sys::dsyevd_(
            &jobz,
            &uplo,
            &n_int,
            v.as_mut_ptr(),
            &n_int,
            w.as_mut_ptr(),
            work.as_mut_ptr(),
            &lwork,
            iwork.as_mut_ptr(),
            &iwork_size,
            &mut info,
        );
    }
    if info != 0 {
        return Err(lapack_failure("dsyevd", info));
    }
    Ok((w, v))
}

/// Eigenvalues in ascending order and the eigenvectors as columns of a matrix (column-major).
pub fn eigh(a: ArrayView2<f64>, driver: EighDriver) -> Result<(Array1<f64>, Array2<f64>), Error> {
    // LAPACK's copy, the eigenvectors, and divide and conquer's 2 n^2 workspace
    check_symmetric_within(&a, "a", eigh_copies(true) - 1, "a: this eigendecomposition")?;
    let n = a.nrows();
    let n_int = lapack_int(n, "a")?;
    match driver {
        EighDriver::Syev => {
            let (w, v) =
                a.to_owned().eigh(UPLO::Lower).map_err(|e| Error::invalid("a", format!("LAPACK dsyev failed: {e}")))?;
            Ok((w, v))
        }
        EighDriver::Syevd => syevd(&a, true),
        EighDriver::Syevr => {
            let mut a_copy = fortran_copy(&a);
            let mut w = Array1::<f64>::zeros(n);
            let mut z = Array2::<f64>::zeros((n, n).f());
            let mut support = vec![0 as c_int; 2 * n];
            let (jobz, range, uplo) = (b'V' as c_char, b'A' as c_char, b'L' as c_char);
            let (vl, vu, il, iu, abstol) = (0.0f64, 0.0f64, 0 as c_int, 0 as c_int, 0.0f64);
            let mut found: c_int = 0;
            let mut info: c_int = 0;
            let (mut work_size, mut iwork_size) = (0.0f64, 0 as c_int);
            let call = |a: &mut Array2<f64>,
                        w: &mut Array1<f64>,
                        z: &mut Array2<f64>,
                        support: &mut [c_int],
                        work: &mut [f64],
                        lwork: c_int,
                        iwork: &mut [c_int],
                        liwork: c_int,
                        found: &mut c_int,
                        info: &mut c_int| unsafe {
                lapack_sys::dsyevr_(
                    &jobz,
                    &range,
                    &uplo,
                    &n_int,
                    a.as_mut_ptr(),
                    &n_int,
                    &vl,
                    &vu,
                    &il,
                    &iu,
                    &abstol,
                    found,
                    w.as_mut_ptr(),
                    z.as_mut_ptr(),
                    &n_int,
                    support.as_mut_ptr(),
                    work.as_mut_ptr(),
                    &lwork,
                    iwork.as_mut_ptr(),
                    &liwork,
                    info,
                )
            };
            call(
                &mut a_copy,
                &mut w,
                &mut z,
                &mut support,
                std::slice::from_mut(&mut work_size),
                -1,
                std::slice::from_mut(&mut iwork_size),
                -1,
                &mut found,
                &mut info,
            );
            if info != 0 {
                return Err(lapack_failure("dsyevr", info));
            }
            let lwork = work_size as c_int;
            let mut work = vec![0.0f64; lwork.max(1) as usize];
            let mut iwork = vec![0 as c_int; iwork_size.max(1) as usize];
            call(
                &mut a_copy,
                &mut w,
                &mut z,
                &mut support,
                &mut work,
                lwork,
                &mut iwork,
                iwork_size,
                &mut found,
                &mut info,
            );
            if info != 0 || found as usize != n {
                return Err(lapack_failure("dsyevr", info));
            }
            Ok((w, z))
        }
    }
}

/// The product a b by the multithreaded `gemm` crate, for operands of any strides (transposed
/// views cost nothing). The prediction code uses it instead of NumPy's matmul, whose speed
/// depends on which BLAS NumPy was built with (4x apart between NumPy 1.26 and 2.x here).
pub fn matmul(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Result<Array2<f64>, Error> {
    matmul_scaled(a, b, 1.0)
}

/// scale * a b.
pub fn matmul_scaled(a: ArrayView2<f64>, b: ArrayView2<f64>, scale: f64) -> Result<Array2<f64>, Error> {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    if k != k2 {
        return Err(Error::invalid("b", format!("has {k2} rows but a has {k} columns")));
    }
    Plan::new().add([m, n], 8).check("a, b: the product")?;
    let mut out = Array2::<f64>::zeros((m, n));
    if m == 0 || n == 0 || k == 0 {
        return Ok(out);
    }
    let (sa, sb) = (a.strides(), b.strides());
    // In bands of rows, each a multithreaded GEMM, so that a long product stops within a band
    // once its call is cancelled (`crate::interrupt`: the rest is left zero, and the caller's
    // result is discarded); a band of 4 GFLOP keeps GEMM efficient.
    let band = ((4e9 / (2.0 * (n * k) as f64)) as usize).clamp(256, m.max(256));
    let token = crate::interrupt::current();
    for r0 in (0..m).step_by(band) {
        if token.is_cancelled() {
            break;
        }
        let rows = band.min(m - r0);
        // SAFETY: the views describe valid memory with these strides; out is m x n row-major and
        // this band writes its rows r0..r0 + rows.
        unsafe {
            gemm::gemm(
                rows,
                n,
                k,
                out.as_mut_ptr().add(r0 * n),
                1,
                n as isize,
                false,
                a.as_ptr().offset(r0 as isize * sa[0]),
                sa[1],
                sa[0],
                b.as_ptr(),
                sb[1],
                sb[0],
                0.0,
                scale,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
    }
    Ok(out)
}

/// dst += coeff a^T b for a (n, p), b (n, q), dst (p, q) in standard layout: a gradient step
/// on a weight matrix without materialising the gradient.
pub fn add_transposed_product(dst: &mut Array2<f64>, a: ArrayView2<f64>, b: ArrayView2<f64>, coeff: f64) {
    let ((n, p), (n2, q)) = (a.dim(), b.dim());
    assert!(n == n2 && dst.dim() == (p, q) && dst.is_standard_layout(), "shapes");
    if n == 0 {
        return;
    }
    let (sa, sb) = (a.strides(), b.strides());
    // SAFETY: dst is p x q row-major; a^T has element (i, l) at a[l, i].
    unsafe {
        gemm::gemm(
            p,
            q,
            n,
            dst.as_mut_ptr(),
            1,
            q as isize,
            true,
            a.as_ptr(),
            sa[0],
            sa[1],
            b.as_ptr(),
            sb[1],
            sb[0],
            1.0,
            coeff,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
}

/// a a^T, computing only the tiles on and above the diagonal (in parallel) and mirroring them:
/// half the work of `matmul(a, a.t())`, and exactly symmetric.
pub fn gram(a: ArrayView2<f64>) -> Array2<f64> {
    let (n, k) = a.dim();
    // 256-row tiles, or smaller ones while that leaves a thread with fewer than 4 tiles.
    let threads = rayon::current_num_threads();
    let tiles_for = |edge: usize| n.div_ceil(edge) * (n.div_ceil(edge) + 1) / 2;
    let edge = [256, 128].into_iter().find(|&e| tiles_for(e) >= 4 * threads).unwrap_or(64);
    let mut out = Array2::<f64>::zeros((n, n));
    if n == 0 || k == 0 {
        return out;
    }
    let blocks: Vec<usize> = (0..n).step_by(edge).collect();
    let tiles: Vec<(usize, usize)> =
        blocks.iter().flat_map(|&i| blocks.iter().filter(move |&&j| j >= i).map(move |&j| (i, j))).collect();
    let dst = crate::memory::SharedMut::new(out.as_mut_ptr());
    let (rs, cs) = (a.strides()[0], a.strides()[1]);
    let token = crate::interrupt::current();
    tiles.into_par_iter().for_each(|(i0, j0)| {
        if token.is_cancelled() {
            return; // (the caller checks the token before using the result)
        }
        let (rows, cols) = ((i0 + edge).min(n) - i0, (j0 + edge).min(n) - j0);
        // SAFETY: each tile writes its own block of `out`; `a` is only read.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                dst.get().add(i0 * n + j0),
                1,
                n as isize,
                false,
                a.as_ptr().offset(i0 as isize * rs),
                cs,
                rs,
                a.as_ptr().offset(j0 as isize * rs),
                rs,
                cs,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
    for i in 0..n {
        for j in 0..i {
            out[[i, j]] = out[[j, i]];
        }
    }
    out
}

/// The lower Cholesky factor L of a symmetric positive definite `a` (a = L L^T), column-major
/// (its upper triangle is zero). Computed by the blocked GEMM-based factorisation of
/// `cholesky.rs` (2-3x faster than OpenBLAS's dpotrf here).
pub fn cholesky(a: ArrayView2<f64>) -> Result<Array2<f64>, Error> {
    check_symmetric_within(&a, "a", 1, "a: this Cholesky factorisation")?;
    let n = a.nrows();
    let mut u = a.as_standard_layout().into_owned().into_raw_vec_and_offset().0;
    crate::cholesky::factor_upper(&mut u, n).map_err(|j| {
        if crate::interrupt::check().is_err() {
            return Error::Interrupted;
        }
        Error::invalid(
            "a",
            format!(
                "is not positive definite (the leading minor of order {} is not positive); the kernel matrix is \
                 singular to working precision: add a diagonal regulariser (diag_reg > 0)",
                j + 1
            ),
        )
    })?;
    // U row-major is L column-major.
    Ok(Array2::from_shape_vec((n, n).f(), u).expect("n * n elements"))
}

/// Solves a x = b given the lower Cholesky factor `l` of a; b is (n, k).
pub fn cho_solve(l: ArrayView2<f64>, b: ArrayView2<f64>) -> Result<Array2<f64>, Error> {
    let (n, m) = l.dim();
    if n != m || n == 0 {
        return Err(Error::invalid("c", format!("must be a non-empty square Cholesky factor, got shape ({n}, {m})")));
    }
    if b.nrows() != n {
        return Err(Error::invalid("b", format!("has {} rows but the factor is {n} x {n}", b.nrows())));
    }
    Plan::new().add([n, n], 8).add([n, b.ncols(), 2], 8).check("b: this solve")?;
    if b.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid("b", "contains NaN or infinity"));
    }
    if (0..n).any(|i| l[[i, i]].is_nan() || l[[i, i]] <= 0.0) {
        return Err(Error::invalid("c", "is not a Cholesky factor: its diagonal must be positive"));
    }
    // A factor is lower triangular (as `cholesky` returns it) and finite; anything else would
    // silently solve a different system.
    let mut upper = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j)));
    if let Some((i, j)) = upper.find(|&(i, j)| l[[i, j]] != 0.0) {
        return Err(Error::invalid(
            "c",
            format!(
                "is not a lower Cholesky factor: entry ({i}, {j}) above the diagonal is {} (pass the lower factor, as \
                 ntkfast.linalg.cholesky returns it)",
                l[[i, j]]
            ),
        ));
    }
    if l.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid("c", "contains NaN or infinity"));
    }
    // U = L^T row-major: L's own memory when it is column-major (as `cholesky` returns it).
    let u = l.t();
    let u = u.as_standard_layout();
    let k = b.ncols();
    let mut x = b.as_standard_layout().into_owned().into_raw_vec_and_offset().0;
    crate::cholesky::solve_in_place(u.as_slice().expect("standard layout"), n, &mut x, k);
    Ok(Array2::from_shape_vec((n, k), x).expect("n * k elements"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn spd(n: usize) -> Array2<f64> {
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 11) as f64 / 11.0 - 0.4);
        b.dot(&b.t()) + Array2::<f64>::eye(n) * 0.5
    }

    #[test]
    fn every_driver_diagonalises() {
        let a = spd(40);
        for driver in [EighDriver::Syevd, EighDriver::Syevr, EighDriver::Syev] {
            let (w, v) = eigh(a.view(), driver).unwrap();
            assert!(w.windows(2).into_iter().all(|p| p[0] <= p[1]), "ascending");
            let back = v.dot(&Array2::from_diag(&w)).dot(&v.t());
            let err = (&back - &a).iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(err < 1e-12, "{driver:?}: {err}");
            let ortho = v.t().dot(&v) - Array2::<f64>::eye(40);
            assert!(ortho.iter().all(|x| x.abs() < 1e-12));
            let values = eigvalsh(a.view()).unwrap();
            assert!(values.iter().zip(&w).all(|(x, y)| (x - y).abs() < 1e-12));
        }
    }

    #[test]
    fn cholesky_solves() {
        let a = spd(30);
        let l = cholesky(a.view()).unwrap();
        assert!((l.dot(&l.t()) - &a).iter().all(|x| x.abs() < 1e-12));
        let b = Array2::from_shape_fn((30, 3), |(i, j)| (i + j) as f64);
        let x = cho_solve(l.view(), b.view()).unwrap();
        assert!((a.dot(&x) - &b).iter().all(|x| x.abs() < 1e-9));
    }

    #[test]
    fn matmul_handles_transposed_views() {
        let a = spd(20).slice(ndarray::s![..7, ..]).to_owned();
        let b = spd(20);
        let want = a.dot(&b);
        assert!((matmul(a.view(), b.view()).unwrap() - &want).iter().all(|x| x.abs() < 1e-12));
        let at = a.t().to_owned();
        assert!((matmul(at.t(), b.view()).unwrap() - &want).iter().all(|x| x.abs() < 1e-12));
        assert!(matmul(a.view(), a.view()).is_err());
    }

    #[test]
    fn gram_is_a_a_transpose() {
        let a = Array2::from_shape_fn((300, 17), |(i, j)| ((i * 13 + j * 7) as f64 * 0.1).sin());
        let g = gram(a.view());
        assert!((g.clone() - a.dot(&a.t())).iter().all(|x| x.abs() < 1e-12));
        assert_eq!(g, g.t());
        let strided = gram(a.t().t());
        assert_eq!(strided, g);
    }

    #[test]
    fn failures_are_errors() {
        let mut a = spd(5);
        a[[0, 0]] = -1.0;
        assert!(matches!(cholesky(a.view()), Err(Error::InvalidArgument { name: "a", .. })));
        a[[0, 1]] = 100.0;
        assert!(matches!(eigh(a.view(), EighDriver::Syevd), Err(Error::InvalidArgument { name: "a", .. })));
        assert!(eigh(Array2::<f64>::zeros((2, 3)).view(), EighDriver::Syevd).is_err());
    }
}
