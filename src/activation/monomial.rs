//! Monomials phi(x) = x^d (d = 0..5), by the Gaussian moments E[u^d v^d] (Isserlis), and
//! rectified monomials phi(x) = [x >= 0] x^n (the arc-cosine kernels of order n, Cho & Saul
//! 2009): Sigma-hat = r^n J_n(theta) / (2 pi) with r = sqrt(q11 q22) and
//! J_n(theta) = (-1)^n sin^(2n+1) (1/sin d/dtheta)^n ((pi - theta)/sin) = sin A_n(cos) + (pi - theta) B_n(cos)
//! for polynomials A_n, B_n built below; Sigma-dot = n^2 r^(n-1) J_(n-1)(theta) / (2 pi) (Price's
//! theorem). Both are homogeneous polynomials in (q12, r) times sin / (pi - theta): no division,
//! no NaN at theta = 0 or pi (where neural-tangents' formula divides by sin theta).

use super::Dual;
use super::math::angle;
use crate::float::{MulAdd, Real};

/// x^D: Sigma-hat = M_D(q12, P), Sigma-dot = D^2 M_(D-1)(q12, P), P = q11 q22.
#[derive(Clone, Copy, Debug)]
pub struct Monomial<const D: u32>;

#[inline(always)]
fn moment<T: Real>(degree: i64, x: T, p: T) -> T {
    let x2 = x * x;
    let c = |v: f64| T::from_f64(v);
    match degree {
        -1 => T::ZERO,
        0 => T::ONE,
        1 => x,
        2 => c(2.0) * x2 + p,
        3 => x * (c(6.0) * x2 + c(9.0) * p),
        4 => c(24.0) * x2 * x2 + c(72.0) * x2 * p + c(9.0) * p * p,
        _ => x * (c(120.0) * x2 * x2 + c(600.0) * x2 * p + c(225.0) * p * p),
    }
}

impl<T: Real, const D: u32> Dual<T> for Monomial<D> {
    #[inline(always)]
    fn aux(&self, _q: T) -> T {
        T::ZERO
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, q11: T, q22: T, _aux1: T, _aux2: T) -> (T, T) {
        let p = q11 * q22;
        let d = D as i64;
        (moment(d, q12, p), T::from_f64((d * d) as f64) * moment(d - 1, q12, p))
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        self.dual::<M>(q, q, q, T::ZERO, T::ZERO)
    }
}

/// The largest supported order of `RectifiedMonomial`.
pub const MAX_RECTIFIED_DEGREE: usize = 10;
const COEFFS: usize = MAX_RECTIFIED_DEGREE + 1;

/// (A_n, B_n) as coefficients of powers of c = cos(theta), by the recursion of the operator
/// (1/sin d/dtheta) on (pi - theta) p(c) / sin^a + q(c) / sin^(a-1):
///   p <- -(1 - c^2) p' - a c p,   q <- -(1 - c^2) q' - (a - 1) c q - p,   a <- a + 2.
pub fn arc_cosine_polynomials(n: usize) -> ([f64; COEFFS], [f64; COEFFS]) {
    assert!(n <= MAX_RECTIFIED_DEGREE);
    let mut p = vec![1.0];
    let mut q = vec![0.0];
    let mut a = 1.0;
    let step = |poly: &[f64], weight: f64| -> Vec<f64> {
        // -(1 - c^2) poly' - weight c poly
        let mut out = vec![0.0; poly.len() + 1];
        for (k, &v) in poly.iter().enumerate() {
            if k > 0 {
                out[k - 1] -= k as f64 * v;
                out[k + 1] += k as f64 * v;
            }
            out[k + 1] -= weight * v;
        }
        out
    };
    for _ in 0..n {
        let new_p = step(&p, a);
        let mut new_q = step(&q, a - 1.0);
        for (k, &v) in p.iter().enumerate() {
            new_q[k] -= v;
        }
        p = new_p;
        q = new_q;
        a += 2.0;
    }
    let sign = if n.is_multiple_of(2) { 1.0 } else { -1.0 };
    let (mut big_a, mut big_b) = ([0.0; COEFFS], [0.0; COEFFS]);
    for (k, v) in q.iter().enumerate().take(COEFFS) {
        big_a[k] = sign * v;
    }
    for (k, v) in p.iter().enumerate().take(COEFFS) {
        big_b[k] = sign * v;
    }
    (big_a, big_b)
}

/// sum_k coeffs[k] x^k r^(degree - k) by Horner's rule (0 for a negative degree).
#[inline(always)]
fn homogeneous<T: Real, M: MulAdd>(coeffs: &[T; COEFFS], degree: i64, x: T, r: T) -> T {
    if degree < 0 {
        return T::ZERO;
    }
    let mut h = coeffs[degree as usize];
    let mut rp = r;
    for k in (0..degree as usize).rev() {
        h = M::mul_add(h, x, coeffs[k] * rp);
        rp *= r;
    }
    h
}

#[derive(Clone, Copy, Debug)]
pub struct RectifiedMonomial<T> {
    degree: i64,
    /// A_n, B_n, A_(n-1), B_(n-1)
    a: [T; COEFFS],
    b: [T; COEFFS],
    a_prev: [T; COEFFS],
    b_prev: [T; COEFFS],
    /// B_n(1) / 2 = (2n - 1)!! / 2 and n^2 B_(n-1)(1) / 2: the diagonal.
    diag: T,
    diag_dot: T,
}

impl<T: Real> RectifiedMonomial<T> {
    pub fn new(degree: u32) -> Self {
        let n = degree as usize;
        let (a, b) = arc_cosine_polynomials(n);
        let (a_prev, b_prev) = if n > 0 { arc_cosine_polynomials(n - 1) } else { ([0.0; COEFFS], [0.0; COEFFS]) };
        let cast = |v: [f64; COEFFS]| v.map(T::from_f64);
        let at_one = |v: &[f64; COEFFS]| v.iter().sum::<f64>();
        RectifiedMonomial {
            degree: n as i64,
            a: cast(a),
            b: cast(b),
            a_prev: cast(a_prev),
            b_prev: cast(b_prev),
            diag: T::from_f64(at_one(&b) / 2.0),
            diag_dot: T::from_f64(if n > 0 { (n * n) as f64 * at_one(&b_prev) / 2.0 } else { 0.0 }),
        }
    }
}

impl<T: Real> Dual<T> for RectifiedMonomial<T> {
    /// The standard deviation: r = sqrt(q11 q22) is a product.
    #[inline(always)]
    fn aux(&self, q: T) -> T {
        q.sqrt()
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, _q11: T, _q22: T, aux1: T, aux2: T) -> (T, T) {
        let r = aux1 * aux2;
        let (sin_part, theta) = angle::<T, M>(q12, r);
        let rest = T::PI - theta;
        let inv_2pi = T::from_f64(0.5 / std::f64::consts::PI);
        let n = self.degree;
        // r^n J_n = (r sin) r^(n-1) A_n(cos) + (pi - theta) r^n B_n(cos)
        let nngp =
            sin_part * homogeneous::<T, M>(&self.a, n - 1, q12, r) + rest * homogeneous::<T, M>(&self.b, n, q12, r);
        let dot = sin_part * homogeneous::<T, M>(&self.a_prev, n - 2, q12, r)
            + rest * homogeneous::<T, M>(&self.b_prev, n - 1, q12, r);
        (nngp * inv_2pi, T::from_f64((n * n) as f64) * dot * inv_2pi)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        let mut power = T::ONE;
        for _ in 1..self.degree {
            power *= q;
        }
        // q^(n-1) in `power` for n >= 1
        if self.degree == 0 { (self.diag, T::ZERO) } else { (self.diag * power * q, self.diag_dot * power) }
    }
}

/// (x^d, d x^(d-1)).
pub fn phi_monomial(degree: u32, x: f64) -> (f64, f64) {
    let d = degree as i32;
    (x.powi(d), if d == 0 { 0.0 } else { d as f64 * x.powi(d - 1) })
}

/// ([x >= 0] x^n, [x >= 0] n x^(n-1)): JAX differentiates (x >= 0) * x^n, and the indicator has
/// no derivative.
pub fn phi_rectified(degree: u32, x: f64) -> (f64, f64) {
    let d = degree as i32;
    let on = if x >= 0.0 { 1.0 } else { 0.0 };
    (on * x.powi(d), if d == 0 { 0.0 } else { on * d as f64 * x.powi(d - 1) })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_dual, expect2, expect2_homogeneous};
    use super::*;

    #[test]
    fn arc_cosine_polynomials_match_the_known_ones() {
        let (a, b) = arc_cosine_polynomials(3);
        assert_eq!(&a[..3], &[4.0, 0.0, 11.0]);
        assert_eq!(&b[..4], &[0.0, 9.0, 0.0, 6.0]);
        let (a, b) = arc_cosine_polynomials(5);
        assert_eq!(&a[..5], &[64.0, 0.0, 607.0, 0.0, 274.0]);
        assert_eq!(&b[..6], &[0.0, 225.0, 0.0, 600.0, 0.0, 120.0]);
        // J_n(0) = pi (2n - 1)!!
        for (n, df) in [(0, 1.0), (1, 1.0), (2, 3.0), (4, 105.0), (10, 654729075.0)] {
            assert_eq!(arc_cosine_polynomials(n).1.iter().sum::<f64>(), df, "n = {n}");
        }
    }

    fn check_monomial<const D: u32>() {
        let d = D as i32;
        let phi = move |x: f64| x.powi(d);
        let dphi = move |x: f64| if d == 0 { 0.0 } else { d as f64 * x.powi(d - 1) };
        check_dual(
            Monomial::<D>,
            |q12, q11, q22| expect2(phi, phi, q12, q11, q22),
            |q12, q11, q22| expect2(dphi, dphi, q12, q11, q22),
            1e-9,
        );
    }

    #[test]
    fn monomials_match_quadrature() {
        check_monomial::<0>();
        check_monomial::<1>();
        check_monomial::<2>();
        check_monomial::<3>();
        check_monomial::<4>();
        check_monomial::<5>();
    }

    #[test]
    fn rectified_monomials_match_quadrature() {
        for n in 0..=4u32 {
            let ni = n as i32;
            let phi = move |x: f64| if x >= 0.0 { x.powi(ni) } else { 0.0 };
            let dphi = move |x: f64| if x > 0.0 && ni > 0 { ni as f64 * x.powi(ni - 1) } else { 0.0 };
            check_dual(
                RectifiedMonomial::<f64>::new(n),
                |q12, q11, q22| expect2_homogeneous(phi, phi, 2 * ni, q12, q11, q22),
                |q12, q11, q22| {
                    if n == 0 { 0.0 } else { expect2_homogeneous(dphi, dphi, 2 * ni - 2, q12, q11, q22) }
                },
                1e-4,
            );
        }
    }
}
