//! The identity, phi(x) = x: Sigma-hat = q12, Sigma-dot = 1 (a linear network).

use super::Dual;
use crate::float::{MulAdd, Real};

#[derive(Clone, Copy, Debug)]
pub struct Identity;

impl<T: Real> Dual<T> for Identity {
    #[inline(always)]
    fn aux(&self, _q: T) -> T {
        T::ZERO
    }

    #[inline(always)]
    fn dual<M: MulAdd>(&self, q12: T, _q11: T, _q22: T, _aux1: T, _aux2: T) -> (T, T) {
        (q12, T::ONE)
    }

    #[inline(always)]
    fn dual_diag<M: MulAdd>(&self, q: T) -> (T, T) {
        (q, T::ONE)
    }
}

/// phi(x) = x, phi'(x) = 1.
pub fn phi(x: f64) -> (f64, f64) {
    (x, 1.0)
}
