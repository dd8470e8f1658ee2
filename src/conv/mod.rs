//! Kernels of convolutional networks (CNN-GP and CNTK: Novak et al. 2019, Arora et al. 2019),
//! with neural-tangents' conventions.
//!
//! Per pair of images (x1, x2), a value of the network is described by the covariances
//! S(p1, p2) of its features at position p1 of x1 and p2 of x2 (and the NTK's T(p1, p2)).
//! - input: S(p1, p2) = x1(p1) . x2(p2) / channels, T = 0;
//! - Conv(W_std, b_std), filter of k positions: S' = W_std^2 mean_d S(p1 s + d, p2 s + d) + b_std^2
//!   (equal offsets d only: the weights are shared across positions and independent across
//!   offsets), T' = W_std^2 mean_d T(. + d, . + d) + S' ("ntk"), or
//!   channels k mean_d S + W_std^2 mean_d T + [bias] ("standard");
//! - Dense acts position by position (a 1 x 1 convolution); an activation maps each entry with
//!   its dual at variances S_11(p1, p1), S_22(p2, p2) (recorded per input and position);
//! - AvgPool averages each position over its own window, GlobalAvgPool over all pairs of
//!   positions, Flatten over same-position pairs (the trace / positions);
//! - padding 'SAME' reads zeros beyond the edges, 'CIRCULAR' wraps around (`geometry`).
//!
//! A network that ends in Flatten without pooling needs only same-position pairs: O(P) per pair
//! of images instead of O(P^2) (`plan::Shape::Diagonal`).

mod geometry;
mod gram;
mod pair;
mod plan;
mod stencil;

pub use geometry::{AxisMap, Padding, Window};
pub use gram::{gram, gram_diagonal};
pub use plan::{ConvPlan, Shape, SlotKind};
