//! The built-in activations evaluated by quadrature (`Activation::Series`), phi and phi': their
//! kernels come from `series.rs` (Hermite series), their values in finite networks from here.

/// Activations evaluated natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Tanh,
    Softplus,
    Silu,
    Elu,
    Selu,
    Sigmoid,
    GeluTanh,
}

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

impl Builtin {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "tanh" => Builtin::Tanh,
            "softplus" => Builtin::Softplus,
            "silu" | "swish" => Builtin::Silu,
            "elu" => Builtin::Elu,
            "selu" => Builtin::Selu,
            "sigmoid" => Builtin::Sigmoid,
            "gelu_tanh" => Builtin::GeluTanh,
            _ => return None,
        })
    }

    /// (phi(x), phi'(x)).
    pub fn value_and_derivative(self, x: f64) -> (f64, f64) {
        let sigmoid = |x: f64| if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) };
        match self {
            Builtin::Tanh => {
                let t = x.tanh();
                (t, 1.0 - t * t)
            }
            Builtin::Softplus => (x.max(0.0) + (-x.abs()).exp().ln_1p(), sigmoid(x)),
            Builtin::Silu => {
                let s = sigmoid(x);
                (x * s, s * (1.0 + x * (1.0 - s)))
            }
            Builtin::Elu => {
                if x > 0.0 {
                    (x, 1.0)
                } else {
                    (x.exp_m1(), x.exp())
                }
            }
            Builtin::Selu => {
                if x > 0.0 {
                    (SELU_SCALE * x, SELU_SCALE)
                } else {
                    (SELU_SCALE * SELU_ALPHA * x.exp_m1(), SELU_SCALE * SELU_ALPHA * x.exp())
                }
            }
            Builtin::Sigmoid => {
                let s = sigmoid(x);
                (s, s * (1.0 - s))
            }
            Builtin::GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                let inner = c * (x + 0.044715 * x * x * x);
                let t = inner.tanh();
                (0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x))
            }
        }
    }
}
