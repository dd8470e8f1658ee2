//! Shared by the unit tests of kernel operations: reproducible inputs without a random crate.

use ndarray::Array2;

/// (n, d) inputs uniform in [-0.5, 0.5) from an xorshift stream seeded by `seed`.
pub fn inputs(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    Array2::from_shape_fn((n, d), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    })
}
