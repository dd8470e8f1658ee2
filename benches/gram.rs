//! Criterion benches of the Gram computation:
//! - `gram/relu3_784`: NNGP + NTK of (1000, 784) inputs, ReLU depth 3 (GEMM-heavy), f64 and f32;
//!   `gram/resnet_784`: the same inputs through two residual blocks with LayerNorm (branches);
//! - `recursion/<activation>`: (1024, 4) inputs at depth 0 and 10, whose difference / (10 * entries)
//!   is the cost per entry and layer of each dual activation (printed at the end);
//! - `products/`: the matrix-free kernel products of the iterative solvers, ReLU depth 3 NTK on
//!   (4000, 8) inputs: K v with 3 columns (symmetric: half the tiles) against the Gram matrix itself,
//!   and the Nystrom normal product with 500 centres.

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use ntkfast::activation::Builtin;
use ntkfast::activation::SeriesFunction;
use ntkfast::matmat::kernel_matmat;
use ntkfast::normal::kernel_normal_matmat;
use ntkfast::{Activation, Dense, Layer, Mlp, Model, Parameterization, Want, gram};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn inputs(n: usize, d: usize) -> Array2<f64> {
    // A cheap deterministic pseudo-random fill (an LCG): benches need no statistics.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    Array2::from_shape_fn((n, d), |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

fn mlp(depth: usize, activation: Activation) -> Model {
    let dense = Dense::new(2f64.sqrt(), Some(0.1), "W_std", "b_std").unwrap();
    Model::from_mlp(&Mlp::new(depth, activation, dense, dense, Parameterization::Ntk).unwrap(), None).unwrap()
}

/// Dense, two residual blocks (Relu, Dense, LayerNorm beside an Identity), Erf, Dense.
fn resnet() -> Model {
    let dense = |w: f64| Layer::dense(512, w, Some(0.05), false).unwrap();
    let act = |a: Activation, label: &str| Layer::activation(a, None, label.into()).unwrap();
    let block = || {
        Layer::Serial(vec![
            Layer::FanOut(2),
            Layer::Parallel(vec![
                Layer::Serial(vec![
                    act(Activation::AbRelu { a: 0.0, b: 1.0 }, "Relu()"),
                    dense(1.2),
                    Layer::layer_norm(1e-12, [false, false]).unwrap(),
                ]),
                Layer::Identity,
            ]),
            Layer::FanInSum,
        ])
    };
    let erf = act(Activation::Erf { a: 1.0, b: 1.0, c: 0.0 }, "Erf()");
    Model::new(Layer::Serial(vec![dense(1.5), block(), block(), erf, dense(1.5)]))
}

const BOTH: Want = Want { nngp: true, ntk: true };

fn bench_gram(c: &mut Criterion) {
    let x = inputs(1000, 784);
    let x32 = x.mapv(|v| v as f32);
    let relu3 = mlp(3, Activation::AbRelu { a: 0.0, b: 1.0 });
    let mut group = c.benchmark_group("gram");
    group.sample_size(20);
    group.bench_function("relu3_784_f64", |b| b.iter(|| black_box(gram(&relu3, x.view(), None, BOTH).unwrap())));
    group.bench_function("relu3_784_f32", |b| b.iter(|| black_box(gram(&relu3, x32.view(), None, BOTH).unwrap())));
    let resnet = resnet();
    group.bench_function("resnet_784_f64", |b| b.iter(|| black_box(gram(&resnet, x.view(), None, BOTH).unwrap())));
    group.finish();
}

fn activations() -> Vec<(&'static str, Activation)> {
    vec![
        ("relu", Activation::AbRelu { a: 0.0, b: 1.0 }),
        ("erf", Activation::Erf { a: 1.0, b: 1.0, c: 0.0 }),
        ("gelu", Activation::Gelu),
        ("sign", Activation::Sign),
        ("identity", Activation::Identity),
        ("sin", Activation::Sin { a: 1.0, b: 1.0, c: 0.0 }),
        ("gabor", Activation::Gabor),
        // the quadrature path (Hermite series; degree grows until the series is accurate)
        ("softplus*", Activation::Series { function: SeriesFunction::Builtin(Builtin::Softplus), degree: 128 }),
        ("tanh*", Activation::Series { function: SeriesFunction::Builtin(Builtin::Tanh), degree: 128 }),
    ]
}

fn bench_recursion(c: &mut Criterion) {
    let x = inputs(1024, 4);
    let mut group = c.benchmark_group("recursion");
    group.sample_size(10);
    for (name, activation) in activations() {
        for depth in [0, 10] {
            let m = mlp(depth, activation);
            group.bench_function(format!("{name}_depth{depth}"), |b| {
                b.iter(|| black_box(gram(&m, x.view(), None, BOTH).unwrap()))
            });
        }
    }
    group.finish();
}

/// Cost per entry and layer of each dual, from one run: (t(depth 10) - t(depth 0)) / (10 n(n+1)/2).
fn report_per_entry() {
    let x = inputs(1024, 4);
    let entries = 1024.0 * 1025.0 / 2.0;
    let time = |m: &Model| {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            black_box(gram(m, x.view(), None, BOTH).unwrap());
            best = best.min(start.elapsed());
        }
        best.as_secs_f64()
    };
    println!("\ncost per entry and layer (NNGP + NTK, {} threads; * = quadrature path):", rayon::current_num_threads());
    for (name, activation) in activations() {
        let per = (time(&mlp(10, activation)) - time(&mlp(0, activation))) / (10.0 * entries);
        println!("  {name:10} {:6.2} ns", per * 1e9);
    }
}

fn bench_products(c: &mut Criterion) {
    let x = inputs(4000, 8);
    let v = inputs(4000, 3);
    let centres = inputs(500, 8);
    let w = inputs(500, 3);
    let relu3 = mlp(3, Activation::AbRelu { a: 0.0, b: 1.0 });
    let ntk = Want { nngp: false, ntk: true };
    let mut group = c.benchmark_group("products");
    group.sample_size(10);
    group.bench_function("gram_ntk_4000x8", |b| b.iter(|| black_box(gram(&relu3, x.view(), None, ntk).unwrap())));
    group.bench_function("matmat_ntk_4000x8_k3", |b| {
        b.iter(|| black_box(kernel_matmat(&relu3, x.view(), None, v.view(), ntk).unwrap()))
    });
    group.bench_function("normal_ntk_4000x500_k3", |b| {
        b.iter(|| black_box(kernel_normal_matmat(&relu3, x.view(), centres.view(), w.view(), ntk).unwrap()))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_gram(c);
    bench_products(c);
    bench_recursion(c);
    report_per_entry();
}

criterion_group!(all, benches);
criterion_main!(all);
