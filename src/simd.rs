//! Runtime CPU dispatch. The hot loops are plain Rust over slices written to autovectorise;
//! `dispatch` runs them inside a function compiled for AVX-512 or AVX2+FMA when the CPU has
//! them, so one binary (one wheel) is fast on new CPUs and still runs on old ones.
//! `NTKFAST_SIMD=avx2|baseline` caps the level (for tests and benchmarks).

use std::sync::OnceLock;

use crate::float::MulAdd;

/// A job whose `run` is `#[inline(always)]`, so that it is compiled into the dispatching
/// function with that function's target features. `M` says how to evaluate a * b + c there.
pub trait Vectorized {
    type Output;
    fn run<M: MulAdd>(self) -> Self::Output;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Baseline,
    Avx2,
    Avx512,
}

/// The level `dispatch` uses: the best the CPU supports, capped by `NTKFAST_SIMD`.
pub fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("NTKFAST_SIMD").as_deref() {
            Ok("baseline") => SimdLevel::Baseline,
            Ok("avx2") => SimdLevel::Avx2,
            _ => SimdLevel::Avx512,
        };
        detected().min(cap)
    })
}

fn detected() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
        {
            return SimdLevel::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Baseline
}

pub fn dispatch<V: Vectorized>(job: V) -> V::Output {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each function is only called when `level()` found its features on this CPU.
        match level() {
            SimdLevel::Avx512 => return unsafe { run_avx512(job) },
            SimdLevel::Avx2 => return unsafe { run_avx2(job) },
            SimdLevel::Baseline => return job.run::<crate::float::Separate>(),
        }
    }
    #[cfg(target_arch = "aarch64")]
    return job.run::<crate::float::Fused>();
    #[allow(unreachable_code)]
    job.run::<crate::float::Separate>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn run_avx512<V: Vectorized>(job: V) -> V::Output {
    job.run::<crate::float::Fused>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<V: Vectorized>(job: V) -> V::Output {
    job.run::<crate::float::Fused>()
}
