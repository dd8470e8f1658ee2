//! The layers of a network as values, composed into a tree (`Layer::Serial`, `Layer::Parallel`),
//! and a `Model`: a tree with a name for error messages.

use std::sync::Arc;

use crate::activation::{Activation, SeriesFunction};
use crate::conv::{Padding, Window};
use crate::error::Error;
use crate::series::PointwiseFn;
use crate::spec::{Dense, Mlp, Parameterization};

/// A user's function phi (a Python callable) carried by a numerical activation layer.
pub type Function = Arc<dyn PointwiseFn + Send + Sync>;

#[derive(Clone)]
pub enum Layer {
    /// neural-tangents' `Dense(out_dim, W_std, b_std, parameterization)`; `out_dim` is the finite
    /// width (the fan-in of the next Dense in the "standard" parameterization).
    Dense {
        out_dim: usize,
        dense: Dense,
        standard: bool,
    },
    /// phi applied to every feature; `function` for `SeriesFunction::External`; `label` names the
    /// layer in errors (`Relu()`).
    Activation {
        activation: Activation,
        function: Option<Function>,
        label: String,
    },
    /// Division of the kernel by sqrt((k(x1, x1) + eps) (k(x2, x2) + eps)); on images, k(x, x)
    /// at each position, averaged over heights and / or widths when `positions` says so
    /// (neural-tangents' `axis` holding those spatial axes besides the channels).
    LayerNorm {
        eps: f64,
        positions: [bool; 2],
    },
    Identity,
    /// `num` copies of the input.
    FanOut(usize),
    /// The sum of the inputs (independent Gaussian branches: kernels add).
    FanInSum,
    /// The product of the inputs (kernels multiply; the NTK by the product rule).
    FanInProd,
    Serial(Vec<Layer>),
    /// Layer i on input i.
    Parallel(Vec<Layer>),
    /// neural-tangents' `Conv(out_chan, filter_shape, strides, padding, W_std, b_std,
    /// parameterization)` over (height, width); a 1-D convolution has height 1.
    Conv {
        out_chan: usize,
        window: Window,
        dense: Dense,
        standard: bool,
    },
    /// `AvgPool(window_shape, strides, padding, normalize_edges)`.
    AvgPool {
        window: Window,
        normalize_edges: bool,
    },
    /// `GlobalAvgPool()`: the mean over all positions.
    GlobalAvgPool,
    /// `Flatten()`: positions and channels as one feature axis.
    Flatten,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Dense { out_dim, dense, standard } => {
                write!(f, "Dense({out_dim}, W_std={:?}, b_std={:?}", dense.w_std, dense.b_std)?;
                if !dense.trainable {
                    write!(f, ", trainable=False")?;
                }
                if *standard { write!(f, ", parameterization='standard')") } else { write!(f, ")") }
            }
            Layer::Activation { label, .. } => f.write_str(label),
            Layer::LayerNorm { eps, positions: [false, false] } => write!(f, "LayerNorm(eps={eps:?})"),
            Layer::LayerNorm { eps, positions } => write!(f, "LayerNorm(eps={eps:?}, over positions {positions:?})"),
            Layer::Identity => f.write_str("Identity()"),
            Layer::FanOut(num) => write!(f, "FanOut({num})"),
            Layer::FanInSum => f.write_str("FanInSum()"),
            Layer::FanInProd => f.write_str("FanInProd()"),
            Layer::Conv { out_chan, window, dense, standard } => {
                write!(f, "Conv({out_chan}, {}, W_std={:?}, b_std={:?}", window.describe(), dense.w_std, dense.b_std)?;
                if !dense.trainable {
                    write!(f, ", trainable=False")?;
                }
                if *standard { write!(f, ", parameterization='standard')") } else { write!(f, ")") }
            }
            Layer::AvgPool { window, normalize_edges } => {
                write!(f, "AvgPool({}", window.describe())?;
                if *normalize_edges { write!(f, ", normalize_edges=True)") } else { write!(f, ")") }
            }
            Layer::GlobalAvgPool => f.write_str("GlobalAvgPool()"),
            Layer::Flatten => f.write_str("Flatten()"),
            Layer::Serial(layers) => f.debug_tuple("serial").field(&layers.len()).finish(),
            Layer::Parallel(layers) => f.debug_tuple("parallel").field(&layers.len()).finish(),
        }
    }
}

impl Layer {
    /// A Dense layer, its scales validated (`W_std` > 0, `b_std` None or >= 0, `out_dim` >= 1).
    pub fn dense(out_dim: usize, w_std: f64, b_std: Option<f64>, standard: bool) -> Result<Self, Error> {
        if out_dim == 0 {
            return Err(Error::invalid("out_dim", "must be a positive integer, got 0"));
        }
        Ok(Layer::Dense { out_dim, dense: Dense::new(w_std, b_std, "W_std", "b_std")?, standard })
    }

    /// The layer with its parameters frozen (`trainable=False`): Dense and Conv only.
    pub fn frozen(self) -> Self {
        match self {
            Layer::Dense { out_dim, dense, standard } => {
                Layer::Dense { out_dim, dense: dense.with_trainable(false), standard }
            }
            Layer::Conv { out_chan, window, dense, standard } => {
                Layer::Conv { out_chan, window, dense: dense.with_trainable(false), standard }
            }
            other => other,
        }
    }

    /// A LayerNorm layer (`eps` finite and >= 0).
    pub fn layer_norm(eps: f64, positions: [bool; 2]) -> Result<Self, Error> {
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::invalid("eps", format!("must be a finite number >= 0, got {eps}")));
        }
        Ok(Layer::LayerNorm { eps, positions })
    }

    /// A convolution (`out_chan` >= 1, the window's sizes and strides >= 1, scales as `dense`).
    pub fn conv(
        out_chan: usize,
        filter: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
        w_std: f64,
        b_std: Option<f64>,
        standard: bool,
    ) -> Result<Self, Error> {
        if out_chan == 0 {
            return Err(Error::invalid("out_chan", "must be a positive integer, got 0"));
        }
        let window = Window::new(filter, strides, padding, "filter_shape")?;
        Ok(Layer::Conv { out_chan, window, dense: Dense::new(w_std, b_std, "W_std", "b_std")?, standard })
    }

    /// Average pooling over windows of `shape` (sizes and strides >= 1).
    pub fn avg_pool(
        shape: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
        normalize_edges: bool,
    ) -> Result<Self, Error> {
        Ok(Layer::AvgPool { window: Window::new(shape, strides, padding, "window_shape")?, normalize_edges })
    }

    /// Whether the tree holds a layer that needs inputs with positions (Conv, pooling, Flatten).
    pub fn is_spatial(&self) -> bool {
        match self {
            Layer::Conv { .. } | Layer::AvgPool { .. } | Layer::GlobalAvgPool | Layer::Flatten => true,
            Layer::Serial(layers) | Layer::Parallel(layers) => layers.iter().any(Layer::is_spatial),
            _ => false,
        }
    }

    /// An activation layer; a numerical activation of a user's function must come with it.
    pub fn activation(activation: Activation, function: Option<Function>, label: String) -> Result<Self, Error> {
        let external = matches!(activation, Activation::Series { function: SeriesFunction::External, .. });
        if external != function.is_some() {
            return Err(Error::invalid("activation", "a numerical activation of a Python function needs the function"));
        }
        Ok(Layer::Activation { activation, function, label })
    }
}

/// A network: its layer tree, and for image inputs their (height, width, channels): each input
/// row then holds the pixels in row-major (height, width, channel) order.
#[derive(Clone, Debug)]
pub struct Model {
    pub layer: Layer,
    pub image: Option<[usize; 3]>,
}

impl Model {
    pub fn new(layer: Layer) -> Self {
        Model { layer, image: None }
    }

    /// The model for inputs of `image` = (height, width, channels), all >= 1.
    pub fn with_image(&self, image: [usize; 3]) -> Result<Self, Error> {
        if image.contains(&0) {
            return Err(Error::invalid("x1", format!("images must have positive sizes, got {image:?}")));
        }
        Ok(Model { layer: self.layer.clone(), image: Some(image) })
    }

    /// The serial stack of an MLP: `depth` (Dense, activation) pairs and a Dense readout.
    pub fn from_mlp(mlp: &Mlp, function: Option<Function>) -> Result<Self, Error> {
        let (standard, width) = match mlp.parameterization {
            Parameterization::Ntk => (false, 1),
            Parameterization::Standard { width } => (true, width),
        };
        // (a depth far beyond memory fails here rather than aborting in the allocation)
        crate::memory::Plan::new()
            .add([mlp.depth, 2], std::mem::size_of::<Layer>())
            .check_advising("depth: this network's layers", "reduce depth")?;
        let mut layers = Vec::with_capacity(2 * mlp.depth + 1);
        for _ in 0..mlp.depth {
            layers.push(Layer::Dense { out_dim: width, dense: mlp.hidden, standard });
            layers.push(Layer::activation(mlp.activation, function.clone(), format!("{:?}", mlp.activation))?);
        }
        layers.push(Layer::Dense { out_dim: 1, dense: mlp.readout, standard });
        Ok(Model::new(Layer::Serial(layers)))
    }
}
