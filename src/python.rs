//! The Python binding, the only place that knows PyO3 (with `python/calls.rs`, which runs core
//! calls without the GIL and maps core errors and panics to Python exceptions): it converts
//! NumPy arrays at the boundary and validates every argument.

#![allow(non_snake_case)] // argument names follow the Python API (W_std, b_std)

use ndarray::{Array, Dimension};
use numpy::{Element, PyArray, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::empirical;
use crate::error::Error;
use crate::float::Real;
use crate::gram::{self, Kernels, Want};
use crate::linalg::{self, EighDriver};
use crate::linearized::Linearized;
use crate::network::{self, DenseParams, Network};
use crate::model::{Model, Plan};
use crate::spec::{Dense, Mlp, Parameterization};
use crate::{Activation, interrupt, pool, simd};

mod calls;
mod model;
use calls::{Running, peek, read, reading, to_py_err, without_gil, without_gil_detached, writing};

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
    if k.series_error > crate::series::ERROR_WARNING {
        let message = format!(
            "the numerical activation's quadrature did not converge at the largest degree ({}): its estimated \
             relative error is {:.1e}, and kernel entries may be off by up to about that much. Kinks (ELU, SELU) \
             and steep activations at large pre-activation variance cause this: rescale the inputs or reduce \
             W_std / b_std for the latter.",
            crate::series::MAX_DEGREE,
            k.series_error
        );
        let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
        let message = std::ffi::CString::new(message).expect("no NUL in the message");
        PyErr::warn(py, &category, &message, 2)?;
    }
    Ok(outputs(py, k))
}

fn want(nngp: bool, ntk: bool) -> PyResult<Want> {
    if !nngp && !ntk {
        return Err(PyValueError::new_err("get: request at least one of 'nngp' and 'ntk'"));
    }
    Ok(Want { nngp, ntk })
}

/// The compiled model spec (what `ntkfast.MLP` builds once and reuses).
#[pyclass(frozen, name = "MlpSpec", module = "ntkfast._core")]
struct PyMlp {
    inner: Mlp,
    /// The Python function of a numerical activation (`Activation::Series { External }`).
    external: Option<Arc<PyFunction>>,
    /// The MLP as a serial stack of layers, for its kernels.
    model: Model,
}

/// phi (and optionally phi') as vectorised Python callables: called with one float64 array per
/// layer (every input's quadrature nodes at once), never per kernel entry.
struct PyFunction {
    value: Py<PyAny>,
    slope: Option<Py<PyAny>>,
}

impl PyFunction {
    fn call(py: Python<'_>, f: &Py<PyAny>, x: &[f64], out: &mut [f64], what: &str) -> Result<(), Error> {
        let fail = |msg: String| Error::invalid("activation", format!("the {what}: {msg}"));
        let arg = numpy::PyArray1::from_slice(py, x);
        let result = f.call1(py, (arg,)).map_err(|e| {
            if e.is_instance_of::<PyException>(py) {
                fail(format!("raised {e}"))
            } else {
                // KeyboardInterrupt, SystemExit, ...: not a failure of the function but a request to
                // stop; it goes back to the caller unchanged.
                interrupt::current().cancel_with(Box::new(e));
                Error::Interrupted
            }
        })?;
        let np = py.import("numpy").map_err(|e| fail(e.to_string()))?;
        let array = np
            .call_method1("asarray", (result, "float64"))
            .map_err(|e| fail(format!("did not return numbers: {e}")))?;
        let array = array.cast::<numpy::PyArray1<f64>>().map_err(|_| {
            fail(format!(
                "must accept a 1-D NumPy array and return an array of its shape ({},); use NumPy functions \
                 (np.tanh, not math.tanh)",
                x.len()
            ))
        })?;
        let values = array.try_readonly().map_err(|e| fail(e.to_string()))?;
        let values = values.as_array();
        if values.len() != x.len() {
            return Err(fail(format!("returned {} values for {} points", values.len(), x.len())));
        }
        out.iter_mut().zip(values.iter()).for_each(|(o, &v)| *o = v);
        Ok(())
    }
}

impl crate::series::PointwiseFn for PyFunction {
    fn eval(&self, x: &[f64], value: &mut [f64], slope: &mut [f64]) -> Result<bool, Error> {
        interrupt::check()?;
        // Called from the core with the GIL released: take it for the call, unless the interpreter
        // is shutting down (a daemon thread's call then stops instead of re-entering it).
        Python::try_attach(|py| {
            PyFunction::call(py, &self.value, x, value, "function")?;
            match &self.slope {
                Some(d) => PyFunction::call(py, d, x, slope, "derivative").map(|_| true),
                None => Ok(false),
            }
        })
        .unwrap_or(Err(Error::Interrupted))
    }
}

/// The rough cost of one kernel entry's steps (a numerical activation also evaluates quadrature
/// tables: far more per slot).
fn entry_work(model: &Model, in_dim: usize) -> f64 {
    match Plan::compile(model, Some(in_dim)) {
        Ok(plan) => {
            let series = plan.series_slots() as f64;
            1000.0 * series + 30.0 * (plan.ops.len() as f64 - series)
        }
        Err(_) => 0.0, // (the call fails at once)
    }
}

type KernelPair<'py> = (Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>);

fn kernel_typed<'py, T: Real + Element>(
    py: Python<'py>,
    model: &Model,
    x1: &Bound<'py, PyArray2<T>>,
    x2: Option<&Bound<'py, PyAny>>,
    want: Want,
) -> PyResult<KernelPair<'py>> {
    let x2 = match x2 {
        None => None,
        Some(x2) => Some(
            x2.cast::<PyArray2<T>>()
                .map_err(|_| PyTypeError::new_err(format!("x2: must be a 2-D {} NumPy array like x1", T::NAME)))?,
        ),
    };
    let x1 = x1.try_readonly().map_err(|e| PyValueError::new_err(format!("x1: {e}")))?;
    let x2 = x2.map(|x| x.try_readonly().map_err(|e| PyValueError::new_err(format!("x2: {e}")))).transpose()?;
    let (v1, v2) = (x1.as_array(), x2.as_ref().map(|x| x.as_array()));
    let n2 = v2.as_ref().map_or(v1.nrows(), |v| v.nrows());
    let work = (v1.nrows() * n2) as f64 * (v1.ncols() as f64 + entry_work(model, v1.ncols()));
    let k = without_gil(py, work, || gram::gram(model, v1, v2, want))?;
    kernel_outputs(py, k)
}

fn diagonal_typed<'py, T: Real + Element>(
    py: Python<'py>,
    model: &Model,
    x: &Bound<'py, PyArray2<T>>,
    want: Want,
) -> PyResult<KernelPair<'py>> {
    let x = x.try_readonly().map_err(|e| PyValueError::new_err(format!("x1: {e}")))?;
    let view = x.as_array();
    let work = view.nrows() as f64 * (view.ncols() as f64 + entry_work(model, view.ncols()));
    let k = without_gil(py, work, || gram::gram_diagonal(model, view, want))?;
    kernel_outputs(py, k)
}

/// (nngp, ntk) Gram matrices of `model` for x1 against x2 (float64 or float32, x2 like x1).
fn model_kernel<'py>(
    py: Python<'py>,
    model: &Model,
    x1: &Bound<'py, PyAny>,
    x2: Option<&Bound<'py, PyAny>>,
    want: Want,
) -> PyResult<KernelPair<'py>> {
    if let Ok(x) = x1.cast::<PyArray2<f64>>() {
        kernel_typed(py, model, x, x2, want)
    } else if let Ok(x) = x1.cast::<PyArray2<f32>>() {
        kernel_typed(py, model, x, x2, want)
    } else {
        Err(wrong_array(x1, "x1"))
    }
}

/// (nngp, ntk) diagonals of `model`.
fn model_diagonal<'py>(py: Python<'py>, model: &Model, x: &Bound<'py, PyAny>, want: Want) -> PyResult<KernelPair<'py>> {
    if let Ok(a) = x.cast::<PyArray2<f64>>() {
        diagonal_typed(py, model, a, want)
    } else if let Ok(a) = x.cast::<PyArray2<f32>>() {
        diagonal_typed(py, model, a, want)
    } else {
        Err(wrong_array(x, "x1"))
    }
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

#[pymethods]
impl PyMlp {
    #[new]
    #[pyo3(signature = (depth, activation, activation_params, W_std, b_std, readout_W_std, readout_b_std, parameterization, width=None, function=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        depth: i64,
        activation: &str,
        activation_params: Vec<f64>,
        W_std: f64,
        b_std: Option<f64>,
        readout_W_std: f64,
        readout_b_std: Option<f64>,
        parameterization: &str,
        width: Option<i64>,
        function: Option<(Py<PyAny>, Option<Py<PyAny>>)>,
    ) -> PyResult<Self> {
        let depth = non_negative(depth, "depth")?;
        let activation = Activation::from_name(activation, &activation_params).map_err(to_py_err)?;
        let hidden = Dense::new(W_std, b_std, "W_std", "b_std").map_err(to_py_err)?;
        let readout = Dense::new(readout_W_std, readout_b_std, "readout_W_std", "readout_b_std").map_err(to_py_err)?;
        let parameterization = match (parameterization, width) {
            ("ntk", _) => Parameterization::Ntk,
            ("standard", Some(width)) => Parameterization::Standard { width: non_negative(width, "width")? },
            ("standard", None) => {
                return Err(PyValueError::new_err(
                    "width: required for parameterization='standard' (its NTK depends on the width)",
                ));
            }
            (other, _) => {
                return Err(PyValueError::new_err(format!(
                    "parameterization: must be 'ntk' or 'standard', got {other:?}"
                )));
            }
        };
        let inner = Mlp::new(depth, activation, hidden, readout, parameterization).map_err(to_py_err)?;
        let external = function.map(|(value, slope)| Arc::new(PyFunction { value, slope }));
        if matches!(activation, Activation::Series { function: crate::activation::SeriesFunction::External, .. })
            != external.is_some()
        {
            return Err(PyValueError::new_err("activation: 'external' goes with a function, and only it"));
        }
        let function = external.clone().map(|f| f as crate::model::Function);
        let model = Model::from_mlp(&inner, function).map_err(to_py_err)?;
        Ok(PyMlp { inner, external, model })
    }

    /// (nngp, ntk) Gram matrices of x1 against x2 (x1 with itself when x2 is None); entries
    /// not requested are None. x2 must have x1's dtype.
    #[pyo3(signature = (x1, x2=None, nngp=true, ntk=true))]
    fn kernel<'py>(
        &self,
        py: Python<'py>,
        x1: &Bound<'py, PyAny>,
        x2: Option<&Bound<'py, PyAny>>,
        nngp: bool,
        ntk: bool,
    ) -> PyResult<KernelPair<'py>> {
        model_kernel(py, &self.model, x1, x2, want(nngp, ntk)?)
    }

    /// (nngp, ntk) diagonals k(x_i, x_i), by the exact diagonal recursion.
    #[pyo3(signature = (x, nngp=true, ntk=true))]
    fn kernel_diagonal<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        nngp: bool,
        ntk: bool,
    ) -> PyResult<KernelPair<'py>> {
        model_diagonal(py, &self.model, x, want(nngp, ntk)?)
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// A float64 2-D array argument of the linear-algebra functions, or a TypeError naming it.
fn matrix<'a, 'py>(x: &'a Bound<'py, PyAny>, name: &str) -> PyResult<&'a Bound<'py, PyArray2<f64>>> {
    x.cast::<PyArray2<f64>>().map_err(|_| wrong_matrix(x, name))
}

fn wrong_matrix(x: &Bound<'_, PyAny>, name: &str) -> PyErr {
    PyTypeError::new_err(format!("{name}: must be a 2-D float64 NumPy array, got {}", describe(x)))
}

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
fn eigh<'py>(py: Python<'py>, a: &Bound<'py, PyAny>, driver: &str) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let driver = EighDriver::from_name(driver).map_err(to_py_err)?;
    let a = owned_square(a, linalg::eigh_copies(true))?;
    let (w, v) = without_gil_detached(py, move || linalg::eigh(a.view(), driver))?;
    Ok((PyArray::from_owned_array(py, w).into_any(), PyArray::from_owned_array(py, v).into_any()))
}

/// Eigenvalues (ascending) of a symmetric matrix.
#[pyfunction]
fn eigvalsh<'py>(py: Python<'py>, a: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let a = owned_square(a, linalg::eigh_copies(false))?;
    let w = without_gil_detached(py, move || linalg::eigvalsh(a.view()))?;
    Ok(PyArray::from_owned_array(py, w).into_any())
}

/// The lower Cholesky factor of a symmetric positive definite matrix.
#[pyfunction]
fn cholesky<'py>(py: Python<'py>, a: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let a = readonly_matrix(a, "a")?;
    let view = a.as_array();
    let l = without_gil(py, (view.nrows() as f64).powi(3) / 3.0, || linalg::cholesky(view))?;
    Ok(PyArray::from_owned_array(py, l).into_any())
}

/// Solves a x = b from the lower Cholesky factor `c` of a; b of shape (n, k).
#[pyfunction]
fn cho_solve<'py>(py: Python<'py>, c: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let c = readonly_matrix(c, "c")?;
    let b = readonly_matrix(b, "b")?;
    let (cv, bv) = (c.as_array(), b.as_array());
    let x = without_gil(py, (cv.nrows() as f64).powi(2) * bv.ncols() as f64, || linalg::cho_solve(cv, bv))?;
    Ok(PyArray::from_owned_array(py, x).into_any())
}

/// a @ b for float64 matrices of any strides (the prediction code's large products).
#[pyfunction]
fn matmul<'py>(py: Python<'py>, a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let a = readonly_matrix(a, "a")?;
    let b = readonly_matrix(b, "b")?;
    let (av, bv) = (a.as_array(), b.as_array());
    let work = (av.nrows() * av.ncols()) as f64 * bv.ncols() as f64;
    let out = without_gil(py, work, || linalg::matmul(av, bv))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}

/// Parameters from Python: a list of (W, b or None) per Dense layer.
fn params_from_py(params: &Bound<'_, PyAny>) -> PyResult<Vec<DenseParams>> {
    let mut layers = Vec::new();
    for (l, item) in params.try_iter()?.enumerate() {
        let item = item?;
        let (w, b): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("params: layer {l} must be a pair (W, b or None)")))?;
        let w = w
            .cast::<PyArray2<f64>>()
            .map_err(|_| PyTypeError::new_err(format!("params: layer {l}: W must be a 2-D float64 array")))?
            .to_owned_array();
        let b = if b.is_none() {
            None
        } else {
            Some(
                b.cast::<numpy::PyArray1<f64>>()
                    .map_err(|_| {
                        PyTypeError::new_err(format!("params: layer {l}: b must be a 1-D float64 array or None"))
                    })?
                    .to_owned_array(),
            )
        };
        layers.push(DenseParams { w, b });
    }
    Ok(layers)
}

fn params_to_py<'py>(py: Python<'py>, layers: &[DenseParams]) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    let items: Vec<Bound<'py, PyAny>> = layers
        .iter()
        .map(|l| {
            let w = PyArray::from_owned_array(py, l.w.clone()).into_any();
            let b = match &l.b {
                Some(b) => PyArray::from_owned_array(py, b.clone()).into_any(),
                None => py.None().into_bound(py),
            };
            pyo3::types::PyTuple::new(py, [w, b]).map(|t| t.into_any())
        })
        .collect::<PyResult<_>>()?;
    pyo3::types::PyList::new(py, items)
}

/// A float64 2-D array argument, borrowed read-only.
fn readonly_matrix<'py>(x: &Bound<'py, PyAny>, name: &str) -> PyResult<numpy::PyReadonlyArray2<'py, f64>> {
    matrix(x, name)?.try_readonly().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// A finite-width network (float64 parameters owned by the core). Safe to share between Python
/// threads: readers (apply, kernels) run concurrently, a training step waits for them (the lock
/// is taken without the GIL).
#[pyclass(frozen, name = "Network", module = "ntkfast._core")]
struct PyNetwork {
    inner: RwLock<Network>,
}

impl PyNetwork {
    /// The rough cost of a pass over n1 inputs, and of an empirical kernel against n2 more.
    fn work(&self, n1: usize, n2: usize) -> f64 {
        let (params, outputs) =
            Python::attach(|py| peek(py, &self.inner, |net| (net.size() as f64, net.out_dim() as f64)));
        6.0 * (n1 + n2) as f64 * params * outputs + (n1 * n2) as f64 * params.sqrt() * outputs
    }
}

#[pymethods]
impl PyNetwork {
    #[new]
    fn new(spec: &Bound<'_, PyMlp>, params: &Bound<'_, PyAny>) -> PyResult<Self> {
        let layers = params_from_py(params)?;
        let spec = spec.get();
        let external =
            spec.external.clone().map(|f| network::ExternalFn(f as Arc<dyn crate::series::PointwiseFn + Send>));
        let inner = Network::new(&spec.inner, layers, external).map_err(to_py_err)?;
        Ok(PyNetwork { inner: RwLock::new(inner) })
    }

    #[getter]
    fn in_dim(&self, py: Python<'_>) -> usize {
        peek(py, &self.inner, Network::in_dim)
    }

    #[getter]
    fn out_dim(&self, py: Python<'_>) -> usize {
        peek(py, &self.inner, Network::out_dim)
    }

    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let layers = py.detach(|| read(&self.inner).layers.clone());
        params_to_py(py, &layers)
    }

    fn copy(&self, py: Python<'_>) -> Self {
        PyNetwork { inner: RwLock::new(py.detach(|| read(&self.inner).clone())) }
    }

    fn apply<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = readonly_matrix(x, "x")?;
        let view = x.as_array();
        let out = reading(py, &self.inner, self.work(view.nrows(), 0), |net| net.apply(view))?;
        Ok(PyArray::from_owned_array(py, out).into_any())
    }

    #[pyo3(signature = (x1, x2=None, trace=true))]
    fn ntk<'py>(
        &self,
        py: Python<'py>,
        x1: &Bound<'py, PyAny>,
        x2: Option<&Bound<'py, PyAny>>,
        trace: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let x1 = readonly_matrix(x1, "x1")?;
        let x2 = x2.map(|x| readonly_matrix(x, "x2")).transpose()?;
        let (v1, v2) = (x1.as_array(), x2.as_ref().map(|x| x.as_array()));
        let work = self.work(v1.nrows(), v2.as_ref().map_or(v1.nrows(), |v| v.nrows()));
        if trace {
            let k = reading(py, &self.inner, work, |net| empirical::ntk_traced(net, v1, v2))?;
            Ok(PyArray::from_owned_array(py, k).into_any())
        } else {
            let k = reading(py, &self.inner, work, |net| empirical::ntk_full(net, v1, v2))?;
            Ok(PyArray::from_owned_array(py, k).into_any())
        }
    }

    #[pyo3(signature = (x1, x2=None))]
    fn nngp<'py>(
        &self,
        py: Python<'py>,
        x1: &Bound<'py, PyAny>,
        x2: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let x1 = readonly_matrix(x1, "x1")?;
        let x2 = x2.map(|x| readonly_matrix(x, "x2")).transpose()?;
        let (v1, v2) = (x1.as_array(), x2.as_ref().map(|x| x.as_array()));
        let work = self.work(v1.nrows(), v2.as_ref().map_or(v1.nrows(), |v| v.nrows()));
        let k = reading(py, &self.inner, work, |net| empirical::nngp(net, v1, v2))?;
        Ok(PyArray::from_owned_array(py, k).into_any())
    }

    /// The gradient of sum_i g_i . f(x_i) w.r.t. every parameter (J^T g), as params.
    fn vjp<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        g: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let x = readonly_matrix(x, "x")?;
        let g = readonly_matrix(g, "g")?;
        let (xv, gv) = (x.as_array(), g.as_array());
        let grads = reading(py, &self.inner, self.work(xv.nrows(), 0), |net| {
            check_targets(net, &xv, &gv, "g")?;
            net.forward_plan(xv.nrows(), false).add([net.size()], 8).check("x: this gradient")?;
            Ok(net.backward(&net.forward(xv)?, gv))
        })?;
        params_to_py(py, &grads)
    }

    /// One full-batch gradient-descent step on 0.5 * mean((f(x) - y)^2); returns the loss before it.
    fn train_step(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        learning_rate: f64,
    ) -> PyResult<f64> {
        check_rate(learning_rate)?;
        let (x, y) = (readonly_matrix(x, "x")?, readonly_matrix(y, "y")?);
        let (xv, yv) = (x.as_array(), y.as_array());
        writing(py, &self.inner, self.work(xv.nrows(), 0), |net| {
            check_targets(net, &xv, &yv, "y")?;
            network::gradient_step(net, xv, yv, learning_rate)
        })
    }

    fn norm(&self, py: Python<'_>) -> f64 {
        peek(py, &self.inner, Network::norm)
    }

    /// ||theta - theta_other||, for training histories: `other` is a private snapshot that no
    /// thread writes, so its read lock is taken first and never waits on a writer.
    fn distance(&self, py: Python<'_>, other: &PyNetwork) -> PyResult<f64> {
        if std::ptr::eq(self, other) {
            return Ok(0.0);
        }
        py.detach(|| {
            let other = read(&other.inner);
            let net = read(&self.inner);
            if other.layers.iter().map(|l| l.w.dim()).ne(net.layers.iter().map(|l| l.w.dim())) {
                return Err(PyValueError::new_err("other: a network of a different shape"));
            }
            Ok(net.distance(&other))
        })
    }

    /// The linearisation at the current parameters, with parameter change `delta` (zero if None).
    #[pyo3(signature = (delta=None))]
    fn linearize(&self, py: Python<'_>, delta: Option<&Bound<'_, PyAny>>) -> PyResult<PyLinearized> {
        let base = py.detach(|| read(&self.inner).clone());
        let inner = match delta {
            None => Linearized::new(base),
            Some(delta) => Linearized::with_delta(base, params_from_py(delta)?).map_err(to_py_err)?,
        };
        Ok(PyLinearized { inner: RwLock::new(inner) })
    }
}

/// The (Cholesky-free) checks of a training batch: shapes against the network, finite targets.
fn check_targets(
    net: &Network,
    x: &ndarray::ArrayView2<f64>,
    y: &ndarray::ArrayView2<f64>,
    name: &'static str,
) -> Result<(), Error> {
    net.check_inputs(x, "x")?;
    if y.dim() != (x.nrows(), net.out_dim()) {
        return Err(Error::invalid(
            name,
            format!("must have shape ({}, {}), got {:?}", x.nrows(), net.out_dim(), y.dim()),
        ));
    }
    if y.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(name, "contains NaN or infinity"));
    }
    Ok(())
}

fn check_rate(learning_rate: f64) -> PyResult<()> {
    if learning_rate.is_finite() && learning_rate > 0.0 {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!("learning_rate: must be a finite number > 0, got {learning_rate}")))
    }
}

/// The linearisation of a network at its parameters (shareable between threads like `Network`).
#[pyclass(frozen, name = "Linearized", module = "ntkfast._core")]
struct PyLinearized {
    inner: RwLock<Linearized>,
}

#[pymethods]
impl PyLinearized {
    fn apply<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = readonly_matrix(x, "x")?;
        let view = x.as_array();
        let work = 6.0 * view.nrows() as f64 * peek(py, &self.inner, |lin| lin.base.size()) as f64;
        let out = reading(py, &self.inner, work, |lin| lin.apply(view))?;
        Ok(PyArray::from_owned_array(py, out).into_any())
    }

    fn train_step(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        learning_rate: f64,
    ) -> PyResult<f64> {
        check_rate(learning_rate)?;
        let (x, y) = (readonly_matrix(x, "x")?, readonly_matrix(y, "y")?);
        let (xv, yv) = (x.as_array(), y.as_array());
        let work = 12.0 * xv.nrows() as f64 * peek(py, &self.inner, |lin| lin.base.size()) as f64;
        writing(py, &self.inner, work, |lin| {
            check_targets(&lin.base, &xv, &yv, "y")?;
            lin.gradient_step(xv, yv, learning_rate)
        })
    }

    fn delta_norm(&self, py: Python<'_>) -> f64 {
        peek(py, &self.inner, Linearized::delta_norm)
    }

    fn base_norm(&self, py: Python<'_>) -> f64 {
        peek(py, &self.inner, |lin| lin.base.norm())
    }

    fn delta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let delta = py.detach(|| read(&self.inner).delta.clone());
        params_to_py(py, &delta)
    }

    /// The network the linearisation is taken at (a copy).
    fn base(&self, py: Python<'_>) -> PyNetwork {
        PyNetwork { inner: RwLock::new(py.detach(|| read(&self.inner).base.clone())) }
    }

    fn copy(&self, py: Python<'_>) -> Self {
        PyLinearized { inner: RwLock::new(py.detach(|| read(&self.inner).clone())) }
    }
}

/// The SIMD level the kernels run at on this CPU ("avx512", "avx2" or "baseline").
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
    m.add_class::<PyMlp>()?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(model::check_layer, m)?)?;
    m.add_class::<PyNetwork>()?;
    m.add_class::<PyLinearized>()?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(pointwise, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(eigh, m)?)?;
    m.add_function(wrap_pyfunction!(eigvalsh, m)?)?;
    m.add_function(wrap_pyfunction!(cholesky, m)?)?;
    m.add_function(wrap_pyfunction!(cho_solve, m)?)?;
    m.add_function(wrap_pyfunction!(matmul, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
