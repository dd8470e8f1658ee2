//! The products area of the binding: kernel-matrix products without storing the kernel
//! (`kernel_matmat`, the Nystrom `kernel_normal_matmat`) and the Gram matrix written into the
//! caller's arrays (`kernel_into`, e.g. NumPy memmaps). Conversions only; the core decides.

use numpy::{Element, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::calls::without_gil;
use super::kernel_outputs;
use super::kernels::KernelPair;
use super::wrong_array;
use crate::float::Real;
use crate::gram::{self, Want};
use crate::model::Model;

/// `x` as a 2-D array of `T` (the dtype of `like`), or a TypeError naming it.
fn same_dtype<'a, 'py, T: Element + Real>(
    x: &'a Bound<'py, PyAny>,
    name: &str,
) -> PyResult<&'a Bound<'py, PyArray2<T>>> {
    x.cast::<PyArray2<T>>()
        .map_err(|_| PyTypeError::new_err(format!("{name}: must be a 2-D {} NumPy array like x1", T::NAME)))
}

fn readonly<'py, T: Element>(x: &Bound<'py, PyArray2<T>>, name: &str) -> PyResult<numpy::PyReadonlyArray2<'py, T>> {
    x.try_readonly().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// The rough cost of a product in floating-point operations (for Ctrl-C polling).
fn product_work(model: &Model, n1: usize, n2: usize, d: usize, k: usize) -> f64 {
    (n1 * n2) as f64 * (d as f64 + 2.0 * k as f64 + super::kernels::entry_work(model, d))
}

fn matmat_typed<'py, T: Real + Element>(
    py: Python<'py>,
    model: &Model,
    x1: &Bound<'py, PyArray2<T>>,
    x2: Option<&Bound<'py, PyAny>>,
    v: &Bound<'py, PyAny>,
    want: Want,
    normal: bool,
) -> PyResult<KernelPair<'py>> {
    let x1 = readonly(x1, "x1")?;
    let x2 = x2.map(|x| same_dtype::<T>(x, "x2").and_then(|x| readonly(x, "x2"))).transpose()?;
    let v = readonly(same_dtype::<T>(v, "v")?, "v")?;
    let (a, b, w) = (x1.as_array(), x2.as_ref().map(|x| x.as_array()), v.as_array());
    let n2 = b.as_ref().map_or(a.nrows(), |b| b.nrows());
    let work = product_work(model, a.nrows(), n2, a.ncols(), w.ncols());
    let k = if normal {
        let b = b.ok_or_else(|| PyValueError::new_err("x2: the centres are required"))?;
        without_gil(py, work, || crate::normal::kernel_normal_matmat(model, a, b, w, want))?
    } else {
        without_gil(py, work, || crate::matmat::kernel_matmat(model, a, b, w, want))?
    };
    kernel_outputs(py, k)
}

/// (K_nngp @ v, K_ntk @ v) of x1 against x2 (or itself), or with `normal` the Nystrom product
/// K(x1, x2)^T K(x1, x2) v; entries not wanted are None.
pub(super) fn model_matmat<'py>(
    py: Python<'py>,
    model: &Model,
    x1: &Bound<'py, PyAny>,
    x2: Option<&Bound<'py, PyAny>>,
    v: &Bound<'py, PyAny>,
    want: Want,
    normal: bool,
) -> PyResult<KernelPair<'py>> {
    if let Ok(x) = x1.cast::<PyArray2<f64>>() {
        matmat_typed(py, model, x, x2, v, want, normal)
    } else if let Ok(x) = x1.cast::<PyArray2<f32>>() {
        matmat_typed(py, model, x, x2, v, want, normal)
    } else {
        Err(wrong_array(x1, "x1"))
    }
}

fn into_typed<'py, T: Real + Element>(
    py: Python<'py>,
    model: &Model,
    x1: &Bound<'py, PyArray2<T>>,
    x2: Option<&Bound<'py, PyAny>>,
    nngp: Option<&Bound<'py, PyAny>>,
    ntk: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    let x1 = readonly(x1, "x1")?;
    let x2 = x2.map(|x| same_dtype::<T>(x, "x2").and_then(|x| readonly(x, "x2"))).transpose()?;
    let writable = |out: Option<&Bound<'py, PyAny>>, name: &str| {
        out.map(|o| {
            let a = o.cast::<PyArray2<T>>().map_err(|_| {
                PyTypeError::new_err(format!("{name}: must be a 2-D {} NumPy array (or memmap) like x1", T::NAME))
            })?;
            a.try_readwrite()
                .map_err(|e| PyValueError::new_err(format!("{name}: must be writable and not in use: {e}")))
        })
        .transpose()
    };
    let (mut nngp, mut ntk) = (writable(nngp, "out.nngp")?, writable(ntk, "out.ntk")?);
    let (a, b) = (x1.as_array(), x2.as_ref().map(|x| x.as_array()));
    let n2 = b.as_ref().map_or(a.nrows(), |b| b.nrows());
    let work = product_work(model, a.nrows(), n2, a.ncols(), 0);
    let (o1, o2) = (nngp.as_mut().map(|o| o.as_array_mut()), ntk.as_mut().map(|o| o.as_array_mut()));
    let error = without_gil(py, work, || gram::gram_into(model, a, b, o1, o2))?;
    super::warn_series(py, error)
}

/// The Gram matrices of x1 against x2 (or itself) written into `nngp` / `ntk`.
pub(super) fn model_kernel_into<'py>(
    py: Python<'py>,
    model: &Model,
    x1: &Bound<'py, PyAny>,
    x2: Option<&Bound<'py, PyAny>>,
    nngp: Option<&Bound<'py, PyAny>>,
    ntk: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    if let Ok(x) = x1.cast::<PyArray2<f64>>() {
        into_typed(py, model, x, x2, nngp, ntk)
    } else if let Ok(x) = x1.cast::<PyArray2<f32>>() {
        into_typed(py, model, x, x2, nngp, ntk)
    } else {
        Err(wrong_array(x1, "x1"))
    }
}
