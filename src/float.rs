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
    /// e^self, branch-free and vectorisable: self = n ln 2 + r with |r| <= ln(2)/2, e^r by its
    /// Taylor polynomial (degree 13 in f64, 7 in f32: error below half an ulp), 2^n assembled
    /// in the exponent bits. Underflows to 0 and overflows to inf like libm.
    fn exp(self) -> Self;
    /// self * a + b with one rounding (a hardware FMA where the target has one, a slow libm
    /// call where it has not: reach it through `MulAdd`, never directly).
    fn fused_mul_add(self, a: Self, b: Self) -> Self;

    /// Neither infinite nor NaN (branch-free: x - x is 0 exactly for finite x).
    #[inline(always)]
    #[allow(clippy::eq_op)]
    fn is_finite(self) -> bool {
        self - self == Self::ZERO
    }
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
    #[inline(always)]
    fn exp(self) -> Self {
        // Round x log2(e) to an integer n with the 1.5 * 2^52 trick (n lands in the low bits).
        const SHIFT: f64 = 6755399441055744.0;
        let x = self.max_fast(-745.2).min_fast(709.8);
        let t = x * std::f64::consts::LOG2_E + SHIFT;
        let n = t - SHIFT;
        let r = n.mul_add_plain(-0.693_147_180_369_123_8, x) + n * -1.908_214_929_270_587_7e-10;
        let mut p = 1.0 / 6_227_020_800.0;
        for k in (0..13).rev() {
            p = p * r + INV_FACTORIAL[k];
        }
        // 2^n as two halves, so that n down to -1074 (subnormals) and up to 1024 works.
        let bits = t.to_bits() as i64;
        let half = bits >> 1;
        let (a, b) = (half, bits - half);
        let two_a = f64::from_bits(((a + 1023) << 52) as u64);
        let two_b = f64::from_bits(((b + 1023) << 52) as u64);
        let out = p * two_a * two_b;
        if self > 709.8 {
            f64::INFINITY
        } else if self < -745.2 {
            0.0
        } else {
            out
        }
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
    #[inline(always)]
    fn exp(self) -> Self {
        // As for f64, with the 1.5 * 2^23 trick and a degree-7 polynomial.
        const SHIFT: f32 = 12582912.0;
        let x = self.max_fast(-103.9).min_fast(88.7);
        let t = x * std::f32::consts::LOG2_E + SHIFT;
        let n = t - SHIFT;
        let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
        let mut p = 1.0 / 5040.0f32;
        for k in (0..7).rev() {
            p = p * r + INV_FACTORIAL[k] as f32;
        }
        let bits = ((t.to_bits() as i32) << 10) >> 10; // sign-extend the 22-bit n
        let half = bits >> 1;
        let (a, b) = (half, bits - half);
        let two_a = f32::from_bits(((a + 127) << 23) as u32);
        let two_b = f32::from_bits(((b + 127) << 23) as u32);
        let out = p * two_a * two_b;
        if self > 88.7 {
            f32::INFINITY
        } else if self < -103.9 {
            0.0
        } else {
            out
        }
    }
}

/// 1/k! for k = 0..=12.
const INV_FACTORIAL: [f64; 13] = [
    1.0,
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
];

trait PlainMulAdd {
    fn mul_add_plain(self, a: f64, b: f64) -> f64;
}

impl PlainMulAdd for f64 {
    /// self * a + b, two roundings (the reduction below is exact enough without an FMA: the
    /// high part of ln 2 has trailing zero bits, so n * LN2_HI is exact for |n| < 2^11).
    #[inline(always)]
    fn mul_add_plain(self, a: f64, b: f64) -> f64 {
        self * a + b
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_across_the_range() {
        let mut worst: f64 = 0.0;
        for i in 0..200_001 {
            let x = -745.0 + 1454.0 * i as f64 / 200_000.0;
            let (got, want) = (Real::exp(x), x.exp());
            if want > 1e-300 && want.is_finite() {
                worst = worst.max((got - want).abs() / want);
            }
        }
        assert!(worst < 4e-16, "{worst:e}");
        assert_eq!(Real::exp(0.0f64), 1.0);
        assert_eq!(Real::exp(800.0f64), f64::INFINITY);
        assert_eq!(Real::exp(-800.0f64), 0.0);
        let mut worst32: f64 = 0.0;
        for i in 0..20_001 {
            let x = -87.0f32 + 175.0 * i as f32 / 20_000.0;
            let want = (x as f64).exp();
            worst32 = worst32.max((Real::exp(x) as f64 - want).abs() / want);
        }
        assert!(worst32 < 3e-7, "{worst32:e}");
    }
}
