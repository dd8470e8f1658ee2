//! ntkfast's core: infinite-width NNGP and NTK kernels of fully-connected networks composed of
//! layers (neural-tangents' `stax` language: `model`), and finite-width networks.
//! Pure Rust (no PyO3 outside `python.rs`), so `cargo test` and `cargo bench` run without Python.
//!
//! ```
//! use ndarray::array;
//! use ntkfast::{Activation, Dense, Mlp, Model, Parameterization, Want, gram};
//! let relu = Activation::AbRelu { a: 0.0, b: 1.0 };
//! let layer = Dense::new(2f64.sqrt(), Some(0.1), "W_std", "b_std").unwrap();
//! let mlp = Mlp::new(3, relu, layer, layer, Parameterization::Ntk).unwrap();
//! let x = array![[1.0, 0.0], [0.6, 0.8]];
//! let model = Model::from_mlp(&mlp, None).unwrap();
//! let k = gram(&model, x.view(), None, Want { nngp: true, ntk: true }).unwrap();
//! assert!(k.ntk.unwrap()[[0, 1]] > 0.0);
//! ```

#![allow(clippy::needless_range_loop)] // layer indices run over several parallel arrays

pub mod activation;
pub mod cholesky;
pub mod conv;
pub mod diagonal;
pub mod empirical;
pub mod error;
pub mod float;
pub mod gram;
pub mod hermite;
pub mod interrupt;
pub mod linalg;
pub mod linearized;
pub mod matmat;
pub mod memory;
pub mod model;
pub mod network;
pub mod normal;
pub mod pool;
pub mod prepared;
pub mod recursion;
pub mod series;
pub mod simd;
pub mod spec;
#[cfg(test)]
mod testing;
pub mod tile;

#[cfg(feature = "python")]
mod python;

pub use activation::Activation;
pub use error::Error;
pub use float::Real;
pub use gram::{Kernels, Want, gram, gram_diagonal};
pub use model::{Layer, Model};
pub use spec::{Dense, Mlp, Parameterization};
