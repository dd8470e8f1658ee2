//! Compiling a layer tree for image inputs into a `ConvPlan`: a flat program over registers,
//! each holding, per pair of inputs, the (NNGP, NTK) covariances of one value of the network at
//! the pairs of positions it tracks (`Shape`).
//!
//! Composition is checked as for fully-connected networks (`model::Plan`), with the layer named;
//! besides: Conv, pooling and Flatten need positions (they cannot follow Flatten or
//! GlobalAvgPool), branches meet with one shape, and LayerNorm and numerical activations are
//! implemented after the positions are reduced.

use super::geometry::AxisMap;
use crate::activation::Activation;
use crate::error::Error;
use crate::model::{Layer, Model};
use crate::spec::DenseStep;

/// What a register holds per pair of inputs (x1, x2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Every pair of positions of a (height, width) grid: (h w)^2 entries, row-major with x1's
    /// position as the row.
    Full([usize; 2]),
    /// Same-position pairs only (enough for a network that ends in Flatten without pooling):
    /// h w entries.
    Diagonal([usize; 2]),
    /// No positions (after Flatten or GlobalAvgPool): one entry.
    Scalar,
}

impl Shape {
    /// The number of positions of one input.
    pub fn positions(&self) -> usize {
        match self {
            Shape::Full([h, w]) | Shape::Diagonal([h, w]) => h * w,
            Shape::Scalar => 1,
        }
    }

    /// Entries per pair of inputs (never 0).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        match self {
            Shape::Full(_) => self.positions() * self.positions(),
            _ => self.positions(),
        }
    }

    fn grid(&self) -> Option<[usize; 2]> {
        match self {
            Shape::Full(g) | Shape::Diagonal(g) => Some(*g),
            Shape::Scalar => None,
        }
    }

    fn with_grid(&self, grid: [usize; 2]) -> Shape {
        match self {
            Shape::Full(_) => Shape::Full(grid),
            _ => Shape::Diagonal(grid),
        }
    }
}

/// One step of the program. `len` / shapes say how many entries a register holds at that point.
#[derive(Clone, Debug)]
pub enum Op {
    /// A Dense map (`window` None: position by position) or a convolution (the sum over the
    /// window's offsets; `step`'s w2 and ntk_alpha are divided by the window's size, so the sum
    /// becomes neural-tangents' mean), then with `slot` the activation recorded there.
    Linear {
        reg: usize,
        window: Option<usize>,
        step: DenseStep<f64>,
        slot: Option<usize>,
        fresh: bool,
        from: Shape,
        to: Shape,
    },
    /// Average pooling (window `window`), on `Full` registers; the NTK too unless `fresh`.
    Pool {
        reg: usize,
        window: usize,
        normalize_edges: bool,
        fresh: bool,
        from: Shape,
        to: Shape,
    },
    /// The mean over all pairs of positions (GlobalAvgPool), on `Full` registers.
    GlobalPool {
        reg: usize,
        fresh: bool,
        from: Shape,
    },
    /// The mean over same-position pairs (Flatten).
    Flatten {
        reg: usize,
        fresh: bool,
        from: Shape,
    },
    /// LayerNorm at `slot`: each entry divided by sqrt((v1 + eps)(v2 + eps)), v the inputs'
    /// variances at its positions (averaged over the normalised axes).
    Norm {
        reg: usize,
        slot: usize,
        fresh: bool,
        shape: Shape,
    },
    Copy {
        src: usize,
        dst: usize,
        len: usize,
    },
    Sum {
        dst: usize,
        src: usize,
        ntk: bool,
        len: usize,
    },
    Prod {
        dst: usize,
        src: usize,
        ntk: bool,
        len: usize,
    },
    Zero {
        reg: usize,
        len: usize,
    },
}

/// A point where per-input, per-position values are recorded (as `model::Slot`).
#[derive(Clone, Copy, Debug)]
pub enum SlotKind {
    Activation(Activation),
    Norm { eps: f64, positions: [bool; 2] },
}

/// A slot: its kind, and where its per-position values sit in an input's statistics.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub kind: SlotKind,
    pub offset: usize,
    pub positions: usize,
}

/// A network compiled for images of given (height, width, channels). The result is register 0.
#[derive(Clone, Debug)]
pub struct ConvPlan {
    pub ops: Vec<Op>,
    /// Each window's (height, width) maps.
    pub windows: Vec<[AxisMap; 2]>,
    /// Each window as two passes, over heights then widths (a convolution's sum over offsets
    /// (dh, dw) is a sum over dh of sums over dw: kh + kw sweeps of a full covariance, not kh kw).
    pub halves: Vec<[[AxisMap; 2]; 2]>,
    pub slots: Vec<Slot>,
    pub registers: usize,
    pub input: Shape,
    pub output: Shape,
    pub channels: usize,
    /// The most entries a register holds at any step.
    pub capacity: usize,
    /// Per-position values per input, over all slots.
    pub stats_len: usize,
    pub has_pooling: bool,
}

impl ConvPlan {
    /// The plan for `model`'s images; `diagonal`: track same-position pairs only (valid when no
    /// pooling reads pairs of different positions and the output has none).
    pub fn compile(model: &Model, diagonal: bool) -> Result<ConvPlan, Error> {
        let [h, w, c] = model.image.ok_or_else(|| Error::invalid("x1", "a network of images needs image inputs"))?;
        let input = if diagonal { Shape::Diagonal([h, w]) } else { Shape::Full([h, w]) };
        let mut k = Compiler {
            ops: Vec::new(),
            windows: Vec::new(),
            halves: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            registers: 1,
            capacity: input.len(),
            stats_len: 0,
            has_pooling: false,
        };
        let first = Value { reg: 0, gaussian: false, width: c, fresh: true, dense: None, shape: input };
        let mut out = k.layer(&model.layer, "", vec![first])?;
        if out.len() != 1 {
            return Err(Error::invalid(
                "layers",
                format!(
                    "the network returns {} outputs; a kernel needs one: end the branches with FanInSum() or \
                     FanInProd()",
                    out.len()
                ),
            ));
        }
        let last = out.pop().expect("one output");
        if last.reg != 0 {
            k.ops.push(Op::Copy { src: last.reg, dst: 0, len: last.shape.len() });
        }
        if last.fresh {
            k.ops.push(Op::Zero { reg: 0, len: last.shape.len() });
        }
        Ok(ConvPlan {
            ops: k.ops,
            windows: k.windows,
            halves: k.halves,
            slots: k.slots,
            registers: k.registers,
            input,
            output: last.shape,
            channels: c,
            capacity: k.capacity,
            stats_len: k.stats_len,
            has_pooling: k.has_pooling,
        })
    }

    /// The plan in the cheapest mode that gives the same kernel: same-position pairs only when
    /// nothing pools and the network ends without positions (neural-tangents' "diagonal spatial").
    pub fn for_model(model: &Model) -> Result<ConvPlan, Error> {
        let full = ConvPlan::compile(model, false)?;
        if full.has_pooling || full.output != Shape::Scalar { Ok(full) } else { ConvPlan::compile(model, true) }
    }
}

#[derive(Clone, Copy, Debug)]
struct Value {
    reg: usize,
    gaussian: bool,
    /// The finite width of its feature axis (channels; positions x channels after Flatten).
    width: usize,
    fresh: bool,
    /// The Linear op that made it, if nothing happened since (an activation fuses into it).
    dense: Option<usize>,
    shape: Shape,
}

struct Compiler {
    ops: Vec<Op>,
    windows: Vec<[AxisMap; 2]>,
    halves: Vec<[[AxisMap; 2]; 2]>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    registers: usize,
    capacity: usize,
    stats_len: usize,
    has_pooling: bool,
}

fn child_path(parent: &str, kind: &str, index: usize) -> String {
    if parent.is_empty() { format!("{kind}[{index}]") } else { format!("{parent} > {kind}[{index}]") }
}

fn fail(path: &str, layer: &Layer, message: impl std::fmt::Display) -> Error {
    let at = if path.is_empty() { String::new() } else { format!("{path} ") };
    Error::invalid("layers", format!("{at}{layer:?}: {message}"))
}

fn unsupported(path: &str, layer: &Layer, message: impl std::fmt::Display) -> Error {
    match fail(path, layer, message) {
        Error::InvalidArgument { name, message } => Error::Unsupported { name, message },
        other => other,
    }
}

impl Compiler {
    fn one(path: &str, layer: &Layer, inputs: &[Value]) -> Result<Value, Error> {
        match inputs {
            [v] => Ok(*v),
            _ => Err(fail(
                path,
                layer,
                format!(
                    "takes one input but gets {} (from a FanOut or parallel): combine them with FanInSum() or \
                     FanInProd() first",
                    inputs.len()
                ),
            )),
        }
    }

    fn grid(path: &str, layer: &Layer, v: &Value) -> Result<[usize; 2], Error> {
        v.shape.grid().ok_or_else(|| {
            fail(path, layer, "needs inputs with positions, but it comes after Flatten() or GlobalAvgPool()")
        })
    }

    fn shape(&mut self, shape: Shape) -> Shape {
        self.capacity = self.capacity.max(shape.len());
        shape
    }

    fn slot(&mut self, kind: SlotKind, shape: Shape) -> usize {
        let positions = shape.positions();
        self.slots.push(Slot { kind, offset: self.stats_len, positions });
        self.stats_len += positions;
        self.slots.len() - 1
    }

    fn linear(&mut self, v: Value, window: Option<usize>, step: DenseStep<f64>, to: Shape, width: usize) -> Value {
        let to = self.shape(to);
        self.ops.push(Op::Linear { reg: v.reg, window, step, slot: None, fresh: v.fresh, from: v.shape, to });
        Value { reg: v.reg, gaussian: true, width, fresh: false, dense: Some(self.ops.len() - 1), shape: to }
    }

    fn layer(&mut self, layer: &Layer, path: &str, inputs: Vec<Value>) -> Result<Vec<Value>, Error> {
        let step = |w2: f64, b2: f64, alpha: f64, beta: f64| DenseStep { w2, b2, ntk_alpha: alpha, ntk_beta: beta };
        match layer {
            Layer::Serial(layers) => {
                let mut values = inputs;
                for (i, child) in layers.iter().enumerate() {
                    values = self.layer(child, &child_path(path, "serial", i), values)?;
                }
                Ok(values)
            }
            Layer::Parallel(layers) => {
                if inputs.len() != layers.len() {
                    return Err(fail(
                        path,
                        layer,
                        format!(
                            "has {} branches but gets {} input(s): a parallel of k branches follows a FanOut(k) \
                             or another parallel of k",
                            layers.len(),
                            inputs.len()
                        ),
                    ));
                }
                let mut out = Vec::with_capacity(layers.len());
                for (i, (child, input)) in layers.iter().zip(inputs).enumerate() {
                    let child_path = child_path(path, "parallel", i);
                    let values = self.layer(child, &child_path, vec![input])?;
                    if values.len() != 1 {
                        return Err(fail(
                            &child_path,
                            child,
                            format!("a branch of parallel must return one output, got {}", values.len()),
                        ));
                    }
                    out.extend(values);
                }
                Ok(out)
            }
            Layer::Dense { out_dim, dense, standard } => {
                let v = Self::one(path, layer, &inputs)?;
                let (w2, b2) = (dense.w_std * dense.w_std, dense.b_std.map_or(0.0, |b| b * b));
                let (alpha, beta) =
                    if *standard { (v.width as f64, if dense.b_std.is_some() { 1.0 } else { 0.0 }) } else { (w2, b2) };
                let (alpha, beta) = dense.ntk_terms(alpha, beta);
                Ok(vec![self.linear(v, None, step(w2, b2, alpha, beta), v.shape, *out_dim)])
            }
            Layer::Conv { out_chan, window, dense, standard } => {
                let v = Self::one(path, layer, &inputs)?;
                let grid = Self::grid(path, layer, &v)?;
                let maps = window.maps(grid, &|| format!("{path} {layer:?}"))?;
                let to = v.shape.with_grid([maps[0].len_out, maps[1].len_out]);
                let size = window.size() as f64;
                let (w2, b2) = (dense.w_std * dense.w_std, dense.b_std.map_or(0.0, |b| b * b));
                // standard: fan_in = channels x window size; the sum over the window is size x the mean
                let (alpha, beta) = if *standard {
                    (v.width as f64, if dense.b_std.is_some() { 1.0 } else { 0.0 })
                } else {
                    (w2 / size, b2)
                };
                let (alpha, beta) = dense.ntk_terms(alpha, beta);
                let same = |len: usize| AxisMap::new(len, 1, 1, super::Padding::Valid).expect("a window of 1 fits");
                self.halves.push([[maps[0].clone(), same(maps[1].len_in)], [same(maps[0].len_out), maps[1].clone()]]);
                // a 1 x 1 convolution of stride 1 is a Dense layer at each position
                let identity = maps.iter().all(|m| m.len_in == m.len_out && m.runs.len() == 1);
                self.windows.push(maps);
                let index = (!identity).then(|| self.windows.len() - 1);
                Ok(vec![self.linear(v, index, step(w2 / size, b2, alpha, beta), to, *out_chan)])
            }
            Layer::AvgPool { window, normalize_edges } => {
                let v = Self::one(path, layer, &inputs)?;
                let grid = Self::grid(path, layer, &v)?;
                let maps = window.maps(grid, &|| format!("{path} {layer:?}"))?;
                let to = self.shape(v.shape.with_grid([maps[0].len_out, maps[1].len_out]));
                self.windows.push(maps.clone());
                self.halves.push([maps.clone(), maps]); // (unused: pooling reads pairs of windows)
                self.has_pooling = true;
                let op = Op::Pool {
                    reg: v.reg,
                    window: self.windows.len() - 1,
                    normalize_edges: *normalize_edges,
                    fresh: v.fresh,
                    from: v.shape,
                    to,
                };
                self.ops.push(op);
                Ok(vec![Value { dense: None, shape: to, ..v }])
            }
            Layer::GlobalAvgPool => {
                let v = Self::one(path, layer, &inputs)?;
                Self::grid(path, layer, &v)?;
                self.has_pooling = true;
                self.ops.push(Op::GlobalPool { reg: v.reg, fresh: v.fresh, from: v.shape });
                Ok(vec![Value { dense: None, shape: Shape::Scalar, ..v }])
            }
            Layer::Flatten => {
                let v = Self::one(path, layer, &inputs)?;
                Self::grid(path, layer, &v)?;
                self.ops.push(Op::Flatten { reg: v.reg, fresh: v.fresh, from: v.shape });
                let width = v.width * v.shape.positions();
                Ok(vec![Value { dense: None, shape: Shape::Scalar, gaussian: false, width, ..v }])
            }
            Layer::Activation { activation, .. } => {
                let v = Self::one(path, layer, &inputs)?;
                if !v.gaussian {
                    return Err(fail(
                        path,
                        layer,
                        "the input to an activation must be Gaussian: a random affine transform (Dense or Conv) is \
                         required before the activation function",
                    ));
                }
                if matches!(activation, Activation::Series { .. }) {
                    return Err(unsupported(
                        path,
                        layer,
                        "numerical activations (computed by quadrature) are not implemented yet in networks of \
                         images; use a closed-form activation",
                    ));
                }
                let slot = self.slot(SlotKind::Activation(*activation), v.shape);
                match v.dense {
                    Some(index) => {
                        if let Op::Linear { slot: s, .. } = &mut self.ops[index] {
                            *s = Some(slot);
                        }
                    }
                    None => {
                        let op = Op::Linear {
                            reg: v.reg,
                            window: None,
                            step: step(1.0, 0.0, 0.0, 0.0),
                            slot: Some(slot),
                            fresh: v.fresh,
                            from: v.shape,
                            to: v.shape,
                        };
                        self.ops.push(op);
                    }
                }
                Ok(vec![Value { gaussian: false, dense: None, ..v }])
            }
            Layer::LayerNorm { eps, positions } => {
                let v = Self::one(path, layer, &inputs)?;
                if !v.gaussian {
                    return Err(unsupported(
                        path,
                        layer,
                        "LayerNorm is only implemented for Gaussian inputs: put a Dense or Conv layer before it",
                    ));
                }
                let slot = self.slot(SlotKind::Norm { eps: *eps, positions: *positions }, v.shape);
                self.ops.push(Op::Norm { reg: v.reg, slot, fresh: v.fresh, shape: v.shape });
                Ok(vec![Value { dense: None, ..v }])
            }
            Layer::Identity => Ok(vec![Self::one(path, layer, &inputs)?]),
            Layer::FanOut(num) => {
                let v = Self::one(path, layer, &inputs)?;
                crate::memory::Plan::new()
                    .add([*num, crate::pool::num_threads(), 2, v.shape.len()], 8)
                    .check_advising(&format!("num: the {num} branches of {path} {layer:?}"), "use fewer branches")?;
                let v = Value { dense: None, ..v };
                let mut out = vec![v];
                for _ in 1..*num {
                    let dst = self.free.pop().unwrap_or_else(|| {
                        self.registers += 1;
                        self.registers - 1
                    });
                    self.ops.push(Op::Copy { src: v.reg, dst, len: v.shape.len() });
                    out.push(Value { reg: dst, ..v });
                }
                Ok(out)
            }
            Layer::FanInSum | Layer::FanInProd => {
                let sum = matches!(layer, Layer::FanInSum);
                let Some(first) = inputs.first().copied() else {
                    return Err(fail(path, layer, "gets no inputs"));
                };
                if let Some(other) = inputs.iter().find(|v| v.shape != first.shape) {
                    return Err(fail(
                        path,
                        layer,
                        format!(
                            "all inputs must have one shape of positions, got {:?} and {:?}",
                            first.shape, other.shape
                        ),
                    ));
                }
                if let Some(other) = inputs.iter().find(|v| v.width != first.width) {
                    return Err(fail(
                        path,
                        layer,
                        format!("all inputs must have one width, got {} and {}", first.width, other.width),
                    ));
                }
                if inputs.len() > 1 && sum && !inputs.iter().all(|v| v.gaussian) {
                    let flags: Vec<bool> = inputs.iter().map(|v| v.gaussian).collect();
                    return Err(unsupported(
                        path,
                        layer,
                        format!(
                            "is only implemented for inputs that are all mean-zero Gaussian (each branch ending in \
                             a Dense or Conv, or an Identity of one), got Gaussian = {flags:?}"
                        ),
                    ));
                }
                let len = first.shape.len();
                let mut acc = Value { dense: None, ..first };
                for v in &inputs[1..] {
                    let ntk = !(acc.fresh && v.fresh);
                    if ntk {
                        for z in [acc, *v].iter().filter(|z| z.fresh) {
                            self.ops.push(Op::Zero { reg: z.reg, len });
                        }
                    }
                    self.ops.push(if sum {
                        Op::Sum { dst: acc.reg, src: v.reg, ntk, len }
                    } else {
                        Op::Prod { dst: acc.reg, src: v.reg, ntk, len }
                    });
                    self.free.push(v.reg);
                    acc.fresh = !ntk;
                }
                if inputs.len() > 1 {
                    acc.gaussian = sum;
                }
                Ok(vec![acc])
            }
        }
    }
}
