//! `_core.Model`: a network of `ntkfast.stax` layers, sent as a tree of tuples and converted
//! here into the core's `model::Layer` tree (types only; the core validates values and the
//! composition, naming the layer).

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::calls::to_py_err;
use super::kernels::{KernelPair, PyFunction, model_diagonal, model_kernel};
use super::want;
use crate::Activation;
use crate::conv::Padding;
use crate::model::{Layer, Model};

/// A compiled network of `ntkfast.stax` layers.
#[pyclass(frozen, name = "Model", module = "ntkfast._core")]
pub struct PyModel {
    model: Model,
}

fn bad(message: String) -> PyErr {
    PyTypeError::new_err(format!("layers: {message}"))
}

/// The deepest nesting of serial/parallel combinators converted (the conversion and the core's
/// compiler recurse once per level, on the caller's stack).
const MAX_NESTING: usize = 1000;

/// A count argument (`out_dim`, `num`): a positive integer that fits the core's sizes.
fn count(value: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    match value.extract::<u64>() {
        Ok(v) if v >= 1 && usize::try_from(v).is_ok() => Ok(v as usize),
        _ => Err(PyValueError::new_err(format!("{name}: must be a positive integer below 2^63, got {value}"))),
    }
}

/// One node: ("dense", out_dim, W_std, b_std, parameterization, trainable), ("activation", name, params,
/// function or None, label), ("layernorm", eps, (over heights, over widths)), ("identity",), ("fanout", num), ("faninsum",),
/// ("faninprod",), ("serial", [nodes]), ("parallel", [nodes]), ("conv", out_chan, (fh, fw),
/// (sh, sw), padding, W_std, b_std, parameterization, trainable), ("avgpool", (wh, ww), (sh, sw), padding,
/// normalize_edges), ("globalavgpool",), ("flatten",).
fn layer(node: &Bound<'_, PyAny>, depth: usize) -> PyResult<Layer> {
    if depth > MAX_NESTING {
        return Err(PyValueError::new_err(format!(
            "layers: the network nests serial/parallel more than {MAX_NESTING} levels deep; flatten the nesting"
        )));
    }
    let node = node.cast::<PyTuple>().map_err(|_| bad(format!("a layer spec must be a tuple, got {node}")))?;
    let kind: String = node.get_item(0)?.extract()?;
    let arity = |n: usize| {
        if node.len() == n { Ok(()) } else { Err(bad(format!("{kind} takes {n} fields, got {}", node.len()))) }
    };
    let children = |node: &Bound<'_, PyTuple>| -> PyResult<Vec<Layer>> {
        let list = node.get_item(1)?;
        let list = list.cast::<PyList>().map_err(|_| bad(format!("{kind} takes a list of layers")))?;
        list.iter().map(|child| layer(&child, depth + 1)).collect()
    };
    Ok(match kind.as_str() {
        "dense" => {
            arity(6)?;
            let out_dim = count(&node.get_item(1)?, "out_dim")?;
            let standard = standard(&node.get_item(4)?)?;
            let dense = Layer::dense(out_dim, node.get_item(2)?.extract()?, node.get_item(3)?.extract()?, standard)
                .map_err(to_py_err)?;
            if node.get_item(5)?.extract::<bool>()? { dense } else { dense.frozen() }
        }
        "conv" => {
            arity(9)?;
            let out_chan = count(&node.get_item(1)?, "out_chan")?;
            let padding = Padding::from_name(&node.get_item(4)?.extract::<String>()?).map_err(to_py_err)?;
            let (filter, strides) = (pair(&node.get_item(2)?, "filter_shape")?, pair(&node.get_item(3)?, "strides")?);
            let (w_std, b_std) = (node.get_item(5)?.extract()?, node.get_item(6)?.extract()?);
            let conv = Layer::conv(out_chan, filter, strides, padding, w_std, b_std, standard(&node.get_item(7)?)?)
                .map_err(to_py_err)?;
            if node.get_item(8)?.extract::<bool>()? { conv } else { conv.frozen() }
        }
        "avgpool" => {
            arity(5)?;
            let padding = Padding::from_name(&node.get_item(3)?.extract::<String>()?).map_err(to_py_err)?;
            let (window, strides) = (pair(&node.get_item(1)?, "window_shape")?, pair(&node.get_item(2)?, "strides")?);
            Layer::avg_pool(window, strides, padding, node.get_item(4)?.extract()?).map_err(to_py_err)?
        }
        "globalavgpool" => Layer::GlobalAvgPool,
        "flatten" => Layer::Flatten,
        "activation" => {
            arity(5)?;
            let name: String = node.get_item(1)?.extract()?;
            let params: Vec<f64> = node.get_item(2)?.extract()?;
            let function: Option<(Py<PyAny>, Option<Py<PyAny>>)> = node.get_item(3)?.extract()?;
            let activation = Activation::from_name(&name, &params).map_err(to_py_err)?;
            let function =
                function.map(|(value, slope)| Arc::new(PyFunction { value, slope }) as crate::model::Function);
            Layer::activation(activation, function, node.get_item(4)?.extract()?).map_err(to_py_err)?
        }
        "layernorm" => {
            arity(3)?;
            let (h, w): (bool, bool) = node.get_item(2)?.extract()?;
            Layer::layer_norm(node.get_item(1)?.extract()?, [h, w]).map_err(to_py_err)?
        }
        "identity" => Layer::Identity,
        "fanout" => {
            arity(2)?;
            Layer::FanOut(count(&node.get_item(1)?, "num")?)
        }
        "faninsum" => Layer::FanInSum,
        "faninprod" => Layer::FanInProd,
        "serial" => Layer::Serial(children(node)?),
        "parallel" => Layer::Parallel(children(node)?),
        other => return Err(bad(format!("unknown layer kind {other:?}"))),
    })
}

/// "ntk" -> false, "standard" -> true.
fn standard(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let name: String = value.extract()?;
    match name.as_str() {
        "ntk" => Ok(false),
        "standard" => Ok(true),
        other => Err(PyValueError::new_err(format!("parameterization: must be 'ntk' or 'standard', got {other:?}"))),
    }
}

/// A (height, width) pair of positive integers.
fn pair(value: &Bound<'_, PyAny>, name: &str) -> PyResult<[usize; 2]> {
    let (a, b): (Bound<'_, PyAny>, Bound<'_, PyAny>) = value.extract()?;
    Ok([count(&a, name)?, count(&b, name)?])
}

/// Converts a layer spec, validating its values (W_std, b_std, eps, activation parameters), for
/// layers checked when they are created rather than when a network of them is compiled.
#[pyfunction]
pub fn check_layer(tree: &Bound<'_, PyAny>) -> PyResult<()> {
    layer(tree, 0).map(|_| ())
}

impl PyModel {
    pub(super) fn from_model(model: Model) -> Self {
        PyModel { model }
    }
}

#[pymethods]
impl PyModel {
    #[new]
    fn new(tree: &Bound<'_, PyAny>) -> PyResult<Self> {
        let model = Model::new(layer(tree, 0)?);
        // The composition is checked now (for inputs of any width; widths are checked per call);
        // a network of images when its images' shape is known (`with_image`).
        if !model.layer.is_spatial() {
            crate::model::Plan::compile(&model, None).map_err(to_py_err)?;
        }
        Ok(PyModel { model })
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

    /// (nngp, ntk) diagonals k(x_i, x_i), by the exact diagonal pass.
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

    /// (K_nngp @ v, K_ntk @ v) for x1 against x2 (x1 with itself when x2 is None), never
    /// storing the kernel; entries not requested are None. v has one row per row of x2 (x1).
    #[pyo3(signature = (x1, x2, v, nngp=true, ntk=true))]
    fn kernel_matmat<'py>(
        &self,
        py: Python<'py>,
        x1: &Bound<'py, PyAny>,
        x2: Option<&Bound<'py, PyAny>>,
        v: &Bound<'py, PyAny>,
        nngp: bool,
        ntk: bool,
    ) -> PyResult<KernelPair<'py>> {
        super::products::model_matmat(py, &self.model, x1, x2, v, want(nngp, ntk)?, false)
    }

    /// The Nystrom normal products K(x, centres)^T K(x, centres) v, never storing the kernel.
    #[pyo3(signature = (x, centres, v, nngp=true, ntk=true))]
    fn kernel_normal_matmat<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        centres: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
        nngp: bool,
        ntk: bool,
    ) -> PyResult<KernelPair<'py>> {
        super::products::model_matmat(py, &self.model, x, Some(centres), v, want(nngp, ntk)?, true)
    }

    /// The Gram matrices of x1 against x2 (or itself) written into the given C-contiguous arrays
    /// (NumPy memmaps included) of x1's dtype; at least one.
    #[pyo3(signature = (x1, x2=None, nngp=None, ntk=None))]
    fn kernel_into<'py>(
        &self,
        py: Python<'py>,
        x1: &Bound<'py, PyAny>,
        x2: Option<&Bound<'py, PyAny>>,
        nngp: Option<&Bound<'py, PyAny>>,
        ntk: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        super::products::model_kernel_into(py, &self.model, x1, x2, nngp, ntk)
    }

    /// This network for images of (height, width, channels): its kernels then take inputs of
    /// one flattened (row-major) image per row.
    fn with_image(&self, height: usize, width: usize, channels: usize) -> PyResult<Self> {
        let model = self.model.with_image([height, width, channels]).map_err(to_py_err)?;
        crate::conv::ConvPlan::for_model(&model).map_err(to_py_err)?;
        Ok(PyModel { model })
    }

    /// Whether the network has layers that need images (Conv, pooling, Flatten).
    fn is_spatial(&self) -> bool {
        self.model.layer.is_spatial()
    }

    /// The kernel entries per pair of images, and the output's (height, width) if it keeps
    /// positions (None after Flatten or GlobalAvgPool).
    fn image_output(&self) -> PyResult<Option<(usize, usize)>> {
        let plan = crate::conv::ConvPlan::for_model(&self.model).map_err(to_py_err)?;
        Ok(match plan.output {
            crate::conv::Shape::Full([h, w]) | crate::conv::Shape::Diagonal([h, w]) => Some((h, w)),
            crate::conv::Shape::Scalar => None,
        })
    }

    fn __repr__(&self) -> String {
        format!("Model({:?})", self.model.layer)
    }
}
