//! The finite-network area of the binding: `Network` and `Linearized` (parameters owned by the
//! core, read and trained without the GIL).

use numpy::{PyArray, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Arc, RwLock};

use super::calls::{peek, read, reading, to_py_err, writing};
use super::kernels::PyMlp;
use super::readonly_matrix;
use crate::empirical;
use crate::error::Error;
use crate::linearized::Linearized;
use crate::network::{self, DenseParams, Network};

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

/// A finite-width network (float64 parameters owned by the core). Safe to share between Python
/// threads: readers (apply, kernels) run concurrently, a training step waits for them (the lock
/// is taken without the GIL).
#[pyclass(frozen, name = "Network", module = "ntkfast._core")]
pub(super) struct PyNetwork {
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
pub(super) struct PyLinearized {
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
