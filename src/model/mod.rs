//! The layer language: a network is a tree of layers (`Layer`), as neural-tangents' `stax` writes
//! it, compiled for given inputs into a `Plan` — a flat program of per-entry steps on a few
//! registers of (NNGP, NTK) values that the diagonal and Gram computations run.

mod compile;
mod layer;

pub use compile::{Op, Plan, Slot};
pub use layer::{Function, Layer, Model};
