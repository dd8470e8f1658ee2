//! Symmetric eigendecomposition drivers (LAPACK ?syevd, ?syevr, ?syev via ndarray-linalg) and
//! Cholesky on kernel-like SPD matrices. `cargo bench --bench linalg [-- N ...]` (default 1000 2000);
//! compare with `python -c "import numpy; ..."` in benches/bench_predict.py.

use ndarray::Array2;
use ntkfast::linalg::{EighDriver, cholesky, eigh};
use std::hint::black_box;
use std::time::Instant;

fn kernel_like(n: usize) -> Array2<f64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let x = Array2::from_shape_fn((n, 64), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    });
    x.dot(&x.t()) / 64.0 + Array2::<f64>::eye(n) * 1e-3
}

fn best_of(repeats: usize, mut f: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000, 2000] } else { sizes };
    for n in sizes {
        let a = kernel_like(n);
        let repeats = if n > 2000 { 1 } else { 3 };
        for driver in [EighDriver::Syevd, EighDriver::Syevr, EighDriver::Syev] {
            let t = best_of(repeats, || {
                black_box(eigh(a.view(), driver).unwrap());
            });
            println!("eigh n={n} {driver:?}: {:.3} s", t);
        }
        let t = best_of(repeats, || {
            black_box(cholesky(a.view()).unwrap());
        });
        println!("cholesky n={n}: {:.3} s", t);
    }
}
