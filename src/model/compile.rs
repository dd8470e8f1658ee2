//! Compiling a layer tree into a `Plan`: a flat program over registers, each holding one value
//! flowing through the network as its (NNGP, NTK) pair per kernel entry.
//!
//! The input is register 0 (the input kernel x1.x2/d, NTK 0); `FanOut` copies into new registers,
//! a `FanIn` combines into its first input's register, so a one-input one-output network ends in
//! register 0. A Dense layer directly followed by an activation becomes one step (`Op::Layer` with
//! a slot): the fused path of the tile loops. Composition is checked here, with neural-tangents'
//! rules and the layer named: an activation or LayerNorm needs Gaussian inputs (a Dense before it),
//! `FanInSum` needs Gaussian branches, fan-ins need inputs of one width, branch counts must match.

use std::fmt::Write;

use super::layer::{Function, Layer, Model};
use crate::activation::Activation;
use crate::error::Error;
use crate::float::Real;
use crate::spec::DenseStep;

/// A point of the network where per-input values are recorded by the diagonal pass and read
/// by the kernel entries.
#[derive(Clone)]
pub enum Slot {
    /// An activation: its inputs' pre-activation variances.
    Activation { activation: Activation, function: Option<Function> },
    /// A LayerNorm: the NNGP diagonal of its input.
    Norm { eps: f64 },
}

/// One step of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<T = f64> {
    /// The Dense map `step` on register `reg`, then with `slot` the activation recorded there
    /// (`step` is the identity for an activation without a Dense right before it). `fresh`: the
    /// register's NTK is known to be 0 and is not read.
    Layer { reg: usize, step: DenseStep<T>, slot: Option<usize>, fresh: bool },
    /// LayerNorm at `slot` on register `reg` (its NTK only when not `fresh`).
    Norm { reg: usize, slot: usize, fresh: bool },
    /// Register `dst` := register `src` (both kernels).
    Copy { src: usize, dst: usize },
    /// dst += src; `ntk`: the NTKs too (else both are 0 and stay so).
    Sum { dst: usize, src: usize, ntk: bool },
    /// dst *= src with the product rule for the NTK; `ntk` as for `Sum`.
    Prod { dst: usize, src: usize, ntk: bool },
    /// The register's NTK := 0 (before it is combined with another or returned).
    Zero { reg: usize },
}

impl Op<f64> {
    pub fn cast<T: Real>(&self) -> Op<T> {
        match *self {
            Op::Layer { reg, step, slot, fresh } => Op::Layer { reg, step: step.cast(), slot, fresh },
            Op::Norm { reg, slot, fresh } => Op::Norm { reg, slot, fresh },
            Op::Copy { src, dst } => Op::Copy { src, dst },
            Op::Sum { dst, src, ntk } => Op::Sum { dst, src, ntk },
            Op::Prod { dst, src, ntk } => Op::Prod { dst, src, ntk },
            Op::Zero { reg } => Op::Zero { reg },
        }
    }
}

/// A network compiled for inputs of a given width. The result is in register 0.
#[derive(Clone)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub slots: Vec<Slot>,
    pub registers: usize,
}

impl Plan {
    /// The plan for inputs of `in_dim` features; `None` checks the composition alone (the widths
    /// of branches fed by the input itself are then not compared).
    pub fn compile(model: &Model, in_dim: Option<usize>) -> Result<Plan, Error> {
        let mut c = Compiler { ops: Vec::new(), slots: Vec::new(), free: Vec::new(), registers: 1 };
        let input = Value { reg: 0, gaussian: false, width: in_dim, fresh: true, dense: None };
        let mut out = c.layer(&model.layer, "", vec![input])?;
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
            c.ops.push(Op::Copy { src: last.reg, dst: 0 });
        }
        if last.fresh {
            c.ops.push(Op::Zero { reg: 0 });
        }
        Ok(Plan { ops: c.ops, slots: c.slots, registers: c.registers })
    }

    /// The number of nonlinear steps (activations and LayerNorms): the depth rounding errors
    /// accumulate over.
    pub fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Whether some activation is a numerical (series) one.
    pub fn has_series(&self) -> bool {
        self.slots.iter().any(|s| matches!(s, Slot::Activation { activation: Activation::Series { .. }, .. }))
    }

    /// The starting quadrature degree of the series activations (the largest asked for).
    pub fn series_degree(&self) -> Option<usize> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Activation { activation: Activation::Series { degree, .. }, .. } => Some(*degree as usize),
                _ => None,
            })
            .max()
    }

    /// The number of series slots.
    pub fn series_slots(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Activation { activation: Activation::Series { .. }, .. }))
            .count()
    }
}

/// A value flowing through the network while compiling.
#[derive(Clone, Copy, Debug)]
struct Value {
    reg: usize,
    /// Its features are centred Gaussian given the layer's input (after a Dense).
    gaussian: bool,
    /// Its finite width (the fan-in of a Dense applied to it), if known.
    width: Option<usize>,
    /// Its NTK is 0 (nothing trainable before it).
    fresh: bool,
    /// The index of the Dense step that made it, if nothing happened to it since (an activation
    /// then fuses into that step).
    dense: Option<usize>,
}

struct Compiler {
    ops: Vec<Op>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    registers: usize,
}

/// "serial[2] > parallel[0]": where a layer sits in the tree.
fn child_path(parent: &str, kind: &str, index: usize) -> String {
    let mut path = String::from(parent);
    if !path.is_empty() {
        path.push_str(" > ");
    }
    let _ = write!(path, "{kind}[{index}]");
    path
}

fn fail(path: &str, layer: &Layer, message: impl std::fmt::Display) -> Error {
    let at = if path.is_empty() { String::new() } else { format!("{path} ") };
    Error::invalid("layers", format!("{at}{layer:?}: {message}"))
}

/// As `fail`, for what neural-tangents does not implement either (a NotImplementedError there).
fn unsupported(path: &str, layer: &Layer, message: impl std::fmt::Display) -> Error {
    match fail(path, layer, message) {
        Error::InvalidArgument { name, message } => Error::Unsupported { name, message },
        other => other,
    }
}

impl Compiler {
    fn register(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.registers += 1;
            self.registers - 1
        })
    }

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

    fn layer(&mut self, layer: &Layer, path: &str, inputs: Vec<Value>) -> Result<Vec<Value>, Error> {
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
                let w2 = dense.w_std * dense.w_std;
                let b2 = dense.b_std.map_or(0.0, |b| b * b);
                let (ntk_alpha, ntk_beta) = if *standard {
                    (v.width.map_or(f64::NAN, |w| w as f64), if dense.b_std.is_some() { 1.0 } else { 0.0 })
                } else {
                    (w2, b2)
                };
                let (ntk_alpha, ntk_beta) = dense.ntk_terms(ntk_alpha, ntk_beta);
                let step = DenseStep { w2, b2, ntk_alpha, ntk_beta };
                self.ops.push(Op::Layer { reg: v.reg, step, slot: None, fresh: v.fresh });
                let dense = Some(self.ops.len() - 1);
                Ok(vec![Value { reg: v.reg, gaussian: true, width: Some(*out_dim), fresh: false, dense }])
            }
            Layer::Activation { activation, function, .. } => {
                let v = Self::one(path, layer, &inputs)?;
                if !v.gaussian {
                    return Err(fail(
                        path,
                        layer,
                        "the input to an activation must be Gaussian: a random affine transform (Dense) is \
                         required before the activation function",
                    ));
                }
                let slot = self.slots.len();
                self.slots.push(Slot::Activation { activation: *activation, function: function.clone() });
                match v.dense {
                    Some(index) => {
                        if let Op::Layer { slot: s, .. } = &mut self.ops[index] {
                            *s = Some(slot);
                        }
                    }
                    None => {
                        let step = DenseStep { w2: 1.0, b2: 0.0, ntk_alpha: 0.0, ntk_beta: 0.0 };
                        self.ops.push(Op::Layer { reg: v.reg, step, slot: Some(slot), fresh: v.fresh });
                    }
                }
                Ok(vec![Value { gaussian: false, dense: None, ..v }])
            }
            Layer::LayerNorm { eps, positions } => {
                let v = Self::one(path, layer, &inputs)?;
                if positions.contains(&true) {
                    return Err(fail(
                        path,
                        layer,
                        "normalises over positions: it needs image inputs (axis=-1 for features)",
                    ));
                }
                if !v.gaussian {
                    return Err(unsupported(
                        path,
                        layer,
                        "LayerNorm is only implemented for Gaussian inputs: put a Dense layer before it",
                    ));
                }
                let slot = self.slots.len();
                self.slots.push(Slot::Norm { eps: *eps });
                self.ops.push(Op::Norm { reg: v.reg, slot, fresh: v.fresh });
                Ok(vec![Value { dense: None, ..v }])
            }
            Layer::Identity => Ok(vec![Self::one(path, layer, &inputs)?]),
            Layer::Conv { .. } | Layer::AvgPool { .. } | Layer::GlobalAvgPool | Layer::Flatten => Err(Error::invalid(
                "x1",
                format!(
                    "{path} {layer:?} needs images: pass inputs of shape (n, height, width, channels), or (n, width, \
                     channels) for 1-D convolutions, not (n, features)"
                ),
            )),
            Layer::FanOut(num) => {
                let v = Self::one(path, layer, &inputs)?;
                // Each branch is a register: a step, and per thread an (NNGP, NTK) row block of a
                // tile (or a whole tile for series activations) of up to float64.
                crate::memory::Plan::new()
                    .add([*num, crate::pool::num_threads(), 2, crate::prepared::TILE, crate::prepared::TILE], 8)
                    .add([*num], std::mem::size_of::<Op>())
                    .check_advising(&format!("num: the {num} branches of {path} {layer:?}"), "use fewer branches")?;
                let v = Value { dense: None, ..v };
                let mut out = vec![v];
                for _ in 1..*num {
                    let dst = self.register();
                    self.ops.push(Op::Copy { src: v.reg, dst });
                    out.push(Value { reg: dst, ..v });
                }
                Ok(out)
            }
            Layer::FanInSum | Layer::FanInProd => {
                let sum = matches!(layer, Layer::FanInSum);
                if inputs.is_empty() {
                    return Err(fail(path, layer, "gets no inputs"));
                }
                if inputs.len() == 1 {
                    let v = inputs[0];
                    return Ok(vec![Value { dense: None, ..v }]);
                }
                let widths = || inputs.iter().filter_map(|v| v.width);
                if let (Some(first), Some(other)) = (widths().next(), widths().find(|&w| Some(w) != widths().next())) {
                    return Err(fail(path, layer, format!("all inputs must have one width, got {first} and {other}")));
                }
                if sum && !inputs.iter().all(|v| v.gaussian) {
                    let flags: Vec<bool> = inputs.iter().map(|v| v.gaussian).collect();
                    return Err(unsupported(
                        path,
                        layer,
                        format!(
                            "is only implemented for inputs that are all mean-zero Gaussian (each branch ending in \
                             a Dense, or an Identity of one), got Gaussian = {flags:?}"
                        ),
                    ));
                }
                let mut acc = Value { dense: None, ..inputs[0] };
                for v in &inputs[1..] {
                    let ntk = !(acc.fresh && v.fresh);
                    if ntk {
                        for z in [acc, *v].iter().filter(|z| z.fresh) {
                            self.ops.push(Op::Zero { reg: z.reg });
                        }
                    }
                    self.ops.push(if sum {
                        Op::Sum { dst: acc.reg, src: v.reg, ntk }
                    } else {
                        Op::Prod { dst: acc.reg, src: v.reg, ntk }
                    });
                    self.free.push(v.reg);
                    acc.fresh = !ntk;
                }
                acc.gaussian = sum;
                Ok(vec![acc])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Dense;

    fn dense(w: f64) -> Layer {
        Layer::Dense { out_dim: 8, dense: Dense::new(w, Some(0.1), "W_std", "b_std").unwrap(), standard: false }
    }

    fn relu() -> Layer {
        Layer::activation(Activation::AbRelu { a: 0.0, b: 1.0 }, None, "Relu()".into()).unwrap()
    }

    #[test]
    fn dense_activation_pairs_fuse_and_branches_use_registers() {
        let block = Layer::Serial(vec![
            Layer::FanOut(2),
            Layer::Parallel(vec![Layer::Serial(vec![relu(), dense(1.0)]), Layer::Identity]),
            Layer::FanInSum,
        ]);
        let model = Model::new(Layer::Serial(vec![dense(1.5), relu(), dense(1.2), block, relu(), dense(1.0)]));
        let plan = Plan::compile(&model, Some(5)).unwrap();
        assert_eq!(plan.registers, 2);
        assert_eq!(plan.slots.len(), 3);
        let kinds: Vec<&str> = plan
            .ops
            .iter()
            .map(|op| match op {
                Op::Layer { slot: Some(_), step, .. } if step.w2 == 1.0 && step.ntk_alpha == 0.0 => "act",
                Op::Layer { slot: Some(_), .. } => "dense+act",
                Op::Layer { slot: None, .. } => "dense",
                Op::Copy { .. } => "copy",
                Op::Sum { .. } => "sum",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["dense+act", "dense", "copy", "act", "dense", "sum", "act", "dense"]);
    }

    #[test]
    fn bad_compositions_name_the_layer() {
        let message = |layer: Layer| match Plan::compile(&Model::new(layer), Some(3)) {
            Err(
                Error::InvalidArgument { name: "layers", message } | Error::Unsupported { name: "layers", message },
            ) => message,
            other => panic!("{:?}", other.map(|p| p.ops)),
        };
        let m = message(Layer::Serial(vec![relu(), dense(1.0)]));
        assert!(m.starts_with("serial[0] Relu(): the input to an activation must be Gaussian"), "{m}");
        let m = message(Layer::Serial(vec![
            dense(1.0),
            relu(),
            Layer::FanOut(2),
            Layer::Parallel(vec![Layer::Identity, dense(1.0)]),
            Layer::FanInSum,
        ]));
        assert!(m.contains("serial[4] FanInSum(): is only implemented for inputs that are all mean-zero"), "{m}");
        let m = message(Layer::Serial(vec![Layer::FanOut(2), dense(1.0)]));
        assert!(m.contains("serial[1] Dense(8"), "{m}");
        let m = message(Layer::Serial(vec![Layer::FanOut(2), Layer::Parallel(vec![Layer::Identity; 3])]));
        assert!(m.contains("has 3 branches but gets 2 input(s)"), "{m}");
        let m = message(Layer::Serial(vec![dense(1.0), Layer::FanOut(2)]));
        assert!(m.contains("returns 2 outputs"), "{m}");
    }
}
