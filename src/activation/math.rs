//! Branch-free elementary functions for the dual activations. libm's atan2 is a call that
//! stops LLVM from vectorising the loop around it; these inline into the tile loops and
//! become SIMD code under whatever target features the caller was compiled for.

use crate::float::{MulAdd, Real};

/// atan(u) for |u| <= tan(pi/8): u * P(u^2), Horner's rule over the fitted coefficients.
#[inline(always)]
fn atan_reduced<T: Real, M: MulAdd>(u: T) -> T {
    let z = u * u;
    let coeffs = T::ATAN_COEFFS;
    let mut acc = coeffs[coeffs.len() - 1];
    for &c in coeffs[..coeffs.len() - 1].iter().rev() {
        acc = M::mul_add(acc, z, c);
    }
    u * acc
}

/// atan2(y, x) in [-pi, pi], with atan2(0, 0) = 0 (callers that need another convention
/// select it themselves). Accurate to a few ulp.
#[inline(always)]
pub fn atan2<T: Real, M: MulAdd>(y: T, x: T) -> T {
    let ay = y.abs();
    let ax = x.abs();
    let small = ay.min_fast(ax);
    let large = ay.max_fast(ax);
    // atan(small/large) in [0, pi/4]; above tan(pi/8) use atan(t) = pi/4 + atan((t-1)/(t+1)).
    let reduce = small > T::TAN_PI_8 * large;
    let num = if reduce { small - large } else { small };
    let den = if reduce { small + large } else { large };
    let den = if den > T::ZERO { den } else { T::ONE };
    let offset = if reduce { T::FRAC_PI_4 } else { T::ZERO };
    let mut r = offset + atan_reduced::<T, M>(num / den);
    r = if ay > ax { T::FRAC_PI_2 - r } else { r };
    r = if x < T::ZERO { T::PI - r } else { r };
    if y < T::ZERO { -r } else { r }
}

/// The angle between two Gaussian pre-activations with covariance q12 and standard
/// deviations whose product is r = sqrt(q11 q22), as neural-tangents defines it:
/// theta = atan2(sqrt(r^2 - q12^2), q12), and theta = pi/2 when a variance is zero.
/// Returns (sqrt(r^2 - q12^2), theta).
///
/// r^2 - q12^2 cancels catastrophically for nearly (anti)parallel inputs, so it is formed as
/// (r - q12)(r + q12). Differences within a few ulp of r are rounding noise (a GEMM entry
/// against separately summed norms) and are snapped to 0, so identical inputs give exactly
/// the diagonal value instead of an angle of ~1e-8.
#[inline(always)]
pub fn angle<T: Real, M: MulAdd>(q12: T, r: T) -> (T, T) {
    let below = r - q12;
    let above = r + q12;
    let snap = T::from_f64(4.0) * T::EPSILON * r;
    let det = if below.min_fast(above) <= snap { T::ZERO } else { below * above };
    let sin_part = det.sqrt();
    let both_zero = sin_part == T::ZERO && q12 == T::ZERO;
    let theta = if both_zero { T::FRAC_PI_2 } else { atan2::<T, M>(sin_part, q12) };
    (sin_part, theta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float::{Fused, Separate};

    #[test]
    fn atan2_matches_libm_over_all_quadrants() {
        let mut worst: f64 = 0.0;
        for i in 0..2000 {
            for j in 0..50 {
                let phi = -3.2 + 6.4 * i as f64 / 1999.0;
                let rad = 10f64.powf(-3.0 + 6.0 * j as f64 / 49.0);
                let (y, x) = (rad * phi.sin(), rad * phi.cos());
                let want = y.atan2(x);
                let got = atan2::<f64, Separate>(y, x);
                let fused = atan2::<f64, Fused>(y, x);
                worst = worst.max((fused - want).abs() / want.abs().max(1e-300));
                worst = worst.max((got - want).abs() / want.abs().max(1e-300));
            }
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
    }

    #[test]
    fn atan2_f32_is_accurate_to_single_precision() {
        let mut worst: f64 = 0.0;
        for i in 0..4001 {
            let phi = std::f64::consts::PI * (i as f64 / 2000.0 - 1.0);
            let (y, x) = (phi.sin() as f32, phi.cos() as f32);
            let want = (y as f64).atan2(x as f64);
            worst = worst.max((atan2::<f32, Fused>(y, x) as f64 - want).abs() / want.abs().max(1e-30));
        }
        assert!(worst < 1e-6, "worst relative error {worst:e}");
    }

    #[test]
    fn atan2_handles_zeros_and_axes() {
        assert_eq!(atan2::<f64, Separate>(0.0f64, 0.0), 0.0);
        assert_eq!(atan2::<f64, Separate>(1.0f64, 0.0), std::f64::consts::FRAC_PI_2);
        assert_eq!(atan2::<f64, Separate>(0.0f64, -1.0), std::f64::consts::PI);
        assert_eq!(atan2::<f64, Separate>(-1.0f64, 0.0), -std::f64::consts::FRAC_PI_2);
        assert!((atan2::<f64, Separate>(1.0f64, 1.0) - std::f64::consts::FRAC_PI_4).abs() < 1e-16);
    }

    #[test]
    fn angle_is_exact_for_parallel_antiparallel_and_zero_inputs() {
        let q = 1.2345678901234567f64;
        assert_eq!(angle::<f64, Fused>(q, q), (0.0, 0.0));
        assert_eq!(angle::<f64, Fused>(-q, q), (0.0, std::f64::consts::PI));
        // an ulp of rounding noise on the covariance is snapped
        let noisy = q * (1.0 + f64::EPSILON);
        assert_eq!(angle::<f64, Fused>(noisy, q).1, 0.0);
        // zero variance: neural-tangents' convention theta = pi/2
        assert_eq!(angle::<f64, Fused>(0.0, 0.0).1, std::f64::consts::FRAC_PI_2);
    }

    #[test]
    fn angle_keeps_precision_near_parallel() {
        // Unit variances, q12 = c: the angle of the stored c is 2 asin(sqrt((1 - c)/2)), with
        // 1 - c exact, even at t = 1e-6 where 1 - c^2 loses 12 digits.
        for &t in &[1e-6f64, 1e-4, 0.1, 1.0, 3.0] {
            let c = t.cos();
            let want = 2.0 * ((1.0 - c) / 2.0).sqrt().asin();
            let (s, theta) = angle::<f64, Fused>(c, 1.0);
            assert!((theta - want).abs() <= 1e-14 * want, "t={t} theta={theta} want={want}");
            assert!((s - want.sin()).abs() <= 1e-14 * want.sin(), "t={t} s={s}");
        }
    }
}
