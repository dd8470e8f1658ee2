//! The Python binding, the only place that knows PyO3: it converts types at the boundary (NumPy
//! arrays, tuples of layer specs) and leaves values to the core, which validates them once. By
//! area: `kernels.rs` (MlpSpec and the kernel calls), `model.rs` (stax networks), `network.rs`
//! (finite networks), `linalg.rs`; `calls.rs` runs core calls without the GIL (Ctrl-C, exit) and
//! maps core errors and panics to Python exceptions; this file holds the shared conversions and
//! the module.

#![allow(non_snake_case)] // argument names follow the Python API (W_std, b_std)

use ndarray::{Array, Dimension};
use numpy::{Element, PyArray, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::time::Duration;

use crate::gram::{Kernels, Want};
use crate::{Activation, interrupt, pool, simd};
use kernels::KernelPair;

mod calls;
mod kernels;
mod linalg;
mod model;
mod network;
mod products;
use calls::{Running, to_py_err};

fn non_negative(value: i64, name: &'static str) -> PyResult<usize> {
    usize::try_from(value).map_err(|_| PyValueError::new_err(format!("{name}: must be >= 0, got {value}")))
}

fn outputs<'py, A: Dimension, T: Element>(
    py: Python<'py>,
    k: Kernels<Array<T, A>>,
) -> (Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>) {
    let wrap = |a: Array<T, A>| PyArray::from_owned_array(py, a).into_any();
    (k.nngp.map(wrap), k.ntk.map(wrap))
}

/// `outputs` of a kernel, warning when a numerical activation's quadrature did not converge.
fn kernel_outputs<'py, A: Dimension, T: Element>(
    py: Python<'py>,
    k: Kernels<Array<T, A>>,
) -> PyResult<KernelPair<'py>> {
    warn_series(py, k.series_error)?;
    Ok(outputs(py, k))
}

/// A RuntimeWarning when a numerical activation's quadrature did not converge.
fn warn_series(py: Python<'_>, series_error: f64) -> PyResult<()> {
    if series_error > crate::series::ERROR_WARNING {
        let message = format!(
            "the numerical activation's quadrature did not converge at the largest degree ({}): its estimated \
             relative error is {:.1e}, and kernel entries may be off by up to about that much. Kinks (ELU, SELU) \
             and steep activations at large pre-activation variance cause this: rescale the inputs or reduce \
             W_std / b_std for the latter.",
            crate::series::MAX_DEGREE,
            series_error
        );
        let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
        let message = std::ffi::CString::new(message).expect("no NUL in the message");
        PyErr::warn(py, &category, &message, 2)?;
    }
    Ok(())
}

fn want(nngp: bool, ntk: bool) -> PyResult<Want> {
    if !nngp && !ntk {
        return Err(PyValueError::new_err("get: request at least one of 'nngp' and 'ntk'"));
    }
    Ok(Want { nngp, ntk })
}

fn describe(x: &Bound<'_, PyAny>) -> String {
    match x.cast::<numpy::PyUntypedArray>() {
        Ok(a) => format!("a {}-D array of dtype {}", a.ndim(), a.dtype()),
        Err(_) => x.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "an object".into()),
    }
}

fn wrong_array(x: &Bound<'_, PyAny>, name: &str) -> PyErr {
    PyTypeError::new_err(format!("{name}: must be a 2-D float32 or float64 NumPy array, got {}", describe(x)))
}

/// The SIMD level the kernels run at on this CPU ("avx512", "avx2" or "baseline").
/// A float64 2-D array argument of the linear-algebra functions, or a TypeError naming it.
fn matrix<'a, 'py>(x: &'a Bound<'py, PyAny>, name: &str) -> PyResult<&'a Bound<'py, PyArray2<f64>>> {
    x.cast::<PyArray2<f64>>().map_err(|_| wrong_matrix(x, name))
}

fn wrong_matrix(x: &Bound<'_, PyAny>, name: &str) -> PyErr {
    PyTypeError::new_err(format!("{name}: must be a 2-D float64 NumPy array, got {}", describe(x)))
}

/// A float64 2-D array argument, borrowed read-only.
fn readonly_matrix<'py>(x: &Bound<'py, PyAny>, name: &str) -> PyResult<numpy::PyReadonlyArray2<'py, f64>> {
    matrix(x, name)?.try_readonly().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

#[pyfunction]
fn simd_level() -> &'static str {
    match simd::level() {
        simd::SimdLevel::Avx512 => "avx512",
        simd::SimdLevel::Avx2 => "avx2",
        simd::SimdLevel::Baseline => "baseline",
    }
}

/// (phi(x), phi'(x)) of a core activation (`name`, `params` as `Activation::from_name` takes them)
/// at every point of `x`: the finite networks of `ntkfast.stax` evaluate their layers with it, so
/// finite and infinite networks share one definition of each activation.
#[pyfunction]
fn pointwise<'py>(
    py: Python<'py>,
    name: &str,
    params: Vec<f64>,
    x: numpy::PyReadonlyArray1<'py, f64>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let activation = Activation::from_name(name, &params).map_err(to_py_err)?;
    if let Activation::Series { function: crate::activation::SeriesFunction::External, .. } = activation {
        return Err(PyValueError::new_err("activation: a Python function is evaluated in Python, not by the core"));
    }
    let x = x.as_array();
    let (value, slope): (Vec<f64>, Vec<f64>) =
        py.detach(|| x.iter().map(|&v| activation.value_and_derivative(v)).unzip());
    let shape = x.raw_dim();
    let value = ndarray::Array1::from_vec(value).into_shape_with_order(shape).expect("same length");
    let slope = ndarray::Array1::from_vec(slope).into_shape_with_order(shape).expect("same length");
    Ok((PyArray::from_owned_array(py, value).into_any(), PyArray::from_owned_array(py, slope).into_any()))
}

/// The number of threads the core runs on (set RAYON_NUM_THREADS to change it).
#[pyfunction]
fn num_threads() -> usize {
    pool::num_threads()
}

/// Stops running core calls and refuses new ones: registered with `atexit`. Then waits, without
/// the GIL, until the calls of other (daemon) threads have ended and hold the GIL again, and for
/// LAPACK routines left running by an interrupted call (seconds at most): the interpreter must
/// not finalise under them.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    interrupt::shut_down();
    py.detach(|| Running::wait_all(Duration::from_secs(30)));
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<kernels::PyMlp>()?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(model::check_layer, m)?)?;
    m.add_class::<network::PyNetwork>()?;
    m.add_class::<network::PyLinearized>()?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(pointwise, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(linalg::eigh, m)?)?;
    m.add_function(wrap_pyfunction!(linalg::eigvalsh, m)?)?;
    m.add_function(wrap_pyfunction!(linalg::cholesky, m)?)?;
    m.add_function(wrap_pyfunction!(linalg::cho_solve, m)?)?;
    m.add_function(wrap_pyfunction!(linalg::matmul, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
