//! The kernels area of the binding: `MlpSpec` (what `ntkfast.MLP` builds) and the kernel calls
//! every model shares; Python activation functions as the core calls them.

use numpy::{Element, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::sync::Arc;

use super::calls::{to_py_err, without_gil};
use super::{kernel_outputs, non_negative, wrong_array};
use crate::error::Error;
use crate::float::Real;
use crate::gram::{self, Want};
use crate::model::{Model, Plan};
use crate::spec::{Dense, Mlp, Parameterization};
use crate::{Activation, interrupt};

/// The compiled model spec (what `ntkfast.MLP` builds once and reuses).
#[pyclass(frozen, name = "MlpSpec", module = "ntkfast._core")]
pub(super) struct PyMlp {
    pub(super) inner: Mlp,
    /// The Python function of a numerical activation (`Activation::Series { External }`).
    pub(super) external: Option<Arc<PyFunction>>,
    /// The MLP as a serial stack of layers, for its kernels.
    model: Model,
}

/// phi (and optionally phi') as vectorised Python callables: called with one float64 array per
/// layer (every input's quadrature nodes at once), never per kernel entry.
pub(super) struct PyFunction {
    pub(super) value: Py<PyAny>,
    pub(super) slope: Option<Py<PyAny>>,
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
pub(super) fn entry_work(model: &Model, in_dim: usize) -> f64 {
    if model.image.is_some() {
        // a pair of images: every step over up to (positions)^2 entries
        return crate::conv::ConvPlan::for_model(model)
            .map_or(0.0, |plan| 30.0 * (plan.ops.len() * plan.capacity) as f64);
    }
    match Plan::compile(model, Some(in_dim)) {
        Ok(plan) => {
            let series = plan.series_slots() as f64;
            1000.0 * series + 30.0 * (plan.ops.len() as f64 - series)
        }
        Err(_) => 0.0, // (the call fails at once)
    }
}

pub(super) type KernelPair<'py> = (Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>);

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
pub(super) fn model_kernel<'py>(
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
pub(super) fn model_diagonal<'py>(
    py: Python<'py>,
    model: &Model,
    x: &Bound<'py, PyAny>,
    want: Want,
) -> PyResult<KernelPair<'py>> {
    if let Ok(a) = x.cast::<PyArray2<f64>>() {
        diagonal_typed(py, model, a, want)
    } else if let Ok(a) = x.cast::<PyArray2<f32>>() {
        diagonal_typed(py, model, a, want)
    } else {
        Err(wrong_array(x, "x1"))
    }
}

#[pymethods]
impl PyMlp {
    #[new]
    #[pyo3(signature = (depth, activation, activation_params, W_std, b_std, readout_W_std, readout_b_std, parameterization, width=None, function=None, train_readout=true))]
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
        train_readout: bool,
    ) -> PyResult<Self> {
        let depth = non_negative(depth, "depth")?;
        let activation = Activation::from_name(activation, &activation_params).map_err(to_py_err)?;
        let hidden = Dense::new(W_std, b_std, "W_std", "b_std").map_err(to_py_err)?;
        let readout = Dense::new(readout_W_std, readout_b_std, "readout_W_std", "readout_b_std")
            .map_err(to_py_err)?
            .with_trainable(train_readout);
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

    /// The MLP as a network of layers (`_core.Model`), whose kernels `ntkfast.MLP` computes.
    fn model(&self) -> super::model::PyModel {
        super::model::PyModel::from_model(self.model.clone())
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}
