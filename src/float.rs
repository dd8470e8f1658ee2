//! The floating-point types the core computes in (f32 and f64), behind one trait so every
//! kernel is written once. Methods are branch-free and `#[inline(always)]` so that loops
//! over slices autovectorise under the target features chosen in `simd.rs`.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub};

pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Default
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + MulAssign
{
    const ZERO: Self;
    const ONE: Self;
    const PI: Self;
    const FRAC_PI_2: Self;
    const FRAC_PI_4: Self;
    const TAN_PI_8: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// Largest finite value.
    const MAX: Self;
    /// Name shown in error messages ("float32"/"float64", as NumPy calls them).
    const NAME: &'static str;
    /// Coefficients c_k of atan(u) = u * sum_k c_k u^(2k) on |u| <= tan(pi/8),
    /// from `tools/fit_atan.py` (relative error 2.2e-16 in f64, 1.2e-7 in f32).
    const ATAN_COEFFS: &'static [Self];

    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    /// self * a + b with one rounding (a hardware FMA where the target has one, a slow libm
    /// call where it has not: reach it through `MulAdd`, never directly).
    fn fused_mul_add(self, a: Self, b: Self) -> Self;

    #[inline(always)]
    fn abs(self) -> Self {
        if self < Self::ZERO { -self } else { self }
    }
    /// min/max without NaN handling: one `vminpd`/`vmaxpd` each once vectorised.
    #[inline(always)]
    fn min_fast(self, other: Self) -> Self {
        if self < other { self } else { other }
    }
    #[inline(always)]
    fn max_fast(self, other: Self) -> Self {
        if self > other { self } else { other }
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const PI: Self = std::f64::consts::PI;
    const FRAC_PI_2: Self = std::f64::consts::FRAC_PI_2;
    const FRAC_PI_4: Self = std::f64::consts::FRAC_PI_4;
    const TAN_PI_8: Self = 0.414_213_562_373_095_03;
    const EPSILON: Self = f64::EPSILON;
    const MAX: Self = f64::MAX;
    const NAME: &'static str = "float64";
    const ATAN_COEFFS: &'static [Self] = &[
        1.0,
        -0.333_333_333_333_284_4,
        0.199_999_999_988_551_1,
        -0.142_857_141_809_764_67,
        0.111_111_061_804_559_46,
        -0.090_907_730_748_084_14,
        0.076_899_534_963_068_57,
        -0.066_402_339_304_294_08,
        0.056_883_492_268_090_106,
        -0.043_480_522_157_164_62,
        0.021_135_373_157_693_246,
    ];

    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn fused_mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const PI: Self = std::f32::consts::PI;
    const FRAC_PI_2: Self = std::f32::consts::FRAC_PI_2;
    const FRAC_PI_4: Self = std::f32::consts::FRAC_PI_4;
    const TAN_PI_8: Self = 0.414_213_57;
    const EPSILON: Self = f32::EPSILON;
    const MAX: Self = f32::MAX;
    const NAME: &'static str = "float32";
    const ATAN_COEFFS: &'static [Self] = &[0.999_999_98, -0.333_327_86, 0.199_740_82, -0.138_484_9, 0.079_762_92];

    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn fused_mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}

/// How a * b + c is evaluated in the vectorised loops. Rust never contracts a * b + c into an
/// FMA by itself, and `mul_add` is a libm call on x86 CPUs without FMA, so the choice is made
/// per SIMD level (`simd::dispatch`): `Fused` under AVX2/AVX-512 (faster and more accurate),
/// `Separate` for the x86 baseline.
pub trait MulAdd: Copy + Send + Sync + 'static {
    fn mul_add<T: Real>(a: T, b: T, c: T) -> T;
}

#[derive(Clone, Copy, Debug)]
pub struct Fused;

#[derive(Clone, Copy, Debug)]
pub struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add<T: Real>(a: T, b: T, c: T) -> T {
        a.fused_mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add<T: Real>(a: T, b: T, c: T) -> T {
        a * b + c
    }
}
