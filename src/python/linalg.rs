//! The linear-algebra area of the binding: LAPACK eigendecompositions, Cholesky, products.

use numpy::PyArray;
use pyo3::prelude::*;

use super::calls::{to_py_err, without_gil, without_gil_detached};
use super::readonly_matrix;
use crate::linalg::{self, EighDriver};

/// A copy of the square float64 matrix `a` (for a LAPACK call that runs detached), once it and
/// the `copies` n x n matrices the call allocates fit in memory.
fn owned_square(a: &Bound<'_, PyAny>, copies: usize) -> PyResult<ndarray::Array2<f64>> {
    let a = readonly_matrix(a, "a")?;
    let view = a.as_array();
    linalg::plan_square(&view, "a", copies + 1, "a: this eigendecomposition").map_err(to_py_err)?;
    Ok(view.as_standard_layout().into_owned())
}

/// Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix.
#[pyfunction]
#[pyo3(signature = (a, driver="syevd"))]
pub(super) fn eigh<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    driver: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let driver = EighDriver::from_name(driver).map_err(to_py_err)?;
    let a = owned_square(a, linalg::eigh_copies(true))?;
    let (w, v) = without_gil_detached(py, move || linalg::eigh(a.view(), driver))?;
    Ok((PyArray::from_owned_array(py, w).into_any(), PyArray::from_owned_array(py, v).into_any()))
}

/// Eigenvalues (ascending) of a symmetric matrix.
#[pyfunction]
pub(super) fn eigvalsh<'py>(py: Python<'py>, a: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let a = owned_square(a, linalg::eigh_copies(false))?;
    let w = without_gil_detached(py, move || linalg::eigvalsh(a.view()))?;
    Ok(PyArray::from_owned_array(py, w).into_any())
}

/// The lower Cholesky factor of a symmetric positive definite matrix.
#[pyfunction]
pub(super) fn cholesky<'py>(py: Python<'py>, a: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let a = readonly_matrix(a, "a")?;
    let view = a.as_array();
    let l = without_gil(py, (view.nrows() as f64).powi(3) / 3.0, || linalg::cholesky(view))?;
    Ok(PyArray::from_owned_array(py, l).into_any())
}

/// Solves a x = b from the lower Cholesky factor `c` of a; b of shape (n, k).
#[pyfunction]
pub(super) fn cho_solve<'py>(
    py: Python<'py>,
    c: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let c = readonly_matrix(c, "c")?;
    let b = readonly_matrix(b, "b")?;
    let (cv, bv) = (c.as_array(), b.as_array());
    let x = without_gil(py, (cv.nrows() as f64).powi(2) * bv.ncols() as f64, || linalg::cho_solve(cv, bv))?;
    Ok(PyArray::from_owned_array(py, x).into_any())
}

/// a @ b for float64 matrices of any strides (the prediction code's large products).
#[pyfunction]
pub(super) fn matmul<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = readonly_matrix(a, "a")?;
    let b = readonly_matrix(b, "b")?;
    let (av, bv) = (a.as_array(), b.as_array());
    let work = (av.nrows() * av.ncols()) as f64 * bv.ncols() as f64;
    let out = without_gil(py, work, || linalg::matmul(av, bv))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}
