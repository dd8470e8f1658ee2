//! The diagonal pass: a plan run on each input with itself (q11 = q22 = q12), in f64 with the
//! activations' exact diagonal formulas, over all inputs one step at a time. It yields the
//! kernels' diagonals and records, per slot, what the kernel entries read: the pre-activation
//! variance of each input at each activation, the NNGP diagonal at each LayerNorm, and a series
//! activation's tables.

use crate::activation::{Activation, Affine, Dual, SeriesFunction, WithDual};
use crate::error::Error;
use crate::float::Separate;
use crate::model::{Op, Plan, Slot};
use crate::series::{self, PointwiseFn, Tables};

/// What the diagonal pass yields for a set of inputs.
pub struct Diagonal {
    /// `variances[slot * n + i]`: input i's value at a slot (the pre-activation variance of an
    /// activation, the NNGP diagonal entering a LayerNorm), slot-major so a tile's columns are
    /// a slice.
    pub variances: Vec<f64>,
    pub nngp: Vec<f64>,
    pub ntk: Vec<f64>,
    /// The largest magnitude met anywhere (infinite if anything overflowed). Off-diagonal entries
    /// are bounded by the diagonal ones (Cauchy-Schwarz), so this bounds every value a Gram
    /// matrix computation will produce.
    pub peak: f64,
    /// Per slot, a series activation's tables.
    pub tables: Vec<Option<Tables<f64>>>,
    /// The quadrature degree of the series activations (0 without any).
    pub degree: usize,
    /// The largest series error estimate met (0 without series activations).
    pub error: f64,
}

/// The diagonal pass for inputs with mean squared features `input_variance` (`name` is the
/// argument they came from, for errors). `degrees`: the quadrature degrees series activations may
/// use (at least, at most); the plan's own degree is the start when larger. `fits(degree)` fails
/// when the request's memory at that degree is too much.
pub fn diagonal(
    plan: &Plan,
    input_variance: &[f64],
    name: &'static str,
    degrees: (usize, usize),
    fits: &dyn Fn(usize) -> Result<(), Error>,
) -> Result<Diagonal, Error> {
    match plan.series_degree() {
        None => diagonal_at(plan, 0, input_variance, name),
        Some(start) => {
            let start = start.max(degrees.0);
            let at = |degree: usize, q: &[f64]| {
                diagonal_at(plan, degree, q, name).map(|d| {
                    let error = d.error;
                    (d, error)
                })
            };
            series::adaptive(start, degrees.1.max(start), input_variance, fits, &at).map(|(d, _)| d)
        }
    }
}

/// Sigma-hat and Sigma-dot on the diagonal for every input, in place: `sigma` holds the variances
/// on entry and E[phi^2] on exit, `dot` receives E[phi'^2].
struct DiagonalMaps<'a> {
    sigma: &'a mut [f64],
    dot: &'a mut [f64],
}

impl WithDual<f64> for DiagonalMaps<'_> {
    type Output = ();
    fn run<D: Dual<f64>>(self, dual: D) {
        for (s, d) in self.sigma.iter_mut().zip(self.dot.iter_mut()) {
            (*s, *d) = dual.dual_diag::<Separate>(*s);
        }
    }
}

/// Two distinct registers, mutably.
fn pair(v: &mut [Vec<f64>], a: usize, b: usize) -> (&mut Vec<f64>, &mut Vec<f64>) {
    assert_ne!(a, b, "distinct registers");
    if a < b {
        let (lo, hi) = v.split_at_mut(b);
        (&mut lo[a], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(a);
        (&mut hi[0], &mut lo[b])
    }
}

fn diagonal_at(plan: &Plan, degree: usize, input_variance: &[f64], name: &'static str) -> Result<Diagonal, Error> {
    let n = input_variance.len();
    let mut sigma = vec![vec![0.0; n]; plan.registers];
    let mut theta = vec![vec![0.0; n]; plan.registers];
    sigma[0].copy_from_slice(input_variance);
    let mut variances = vec![0.0; plan.slots.len() * n];
    let mut tables = vec![None; plan.slots.len()];
    let (mut peak, mut error) = (0.0f64, 0.0f64);
    let track = |peak: f64, v: &[f64]| {
        v.iter().fold(peak, |p, &x| if x.is_finite() && p.is_finite() { p.max(x.abs()) } else { f64::INFINITY })
    };
    let mut dot = vec![0.0; n];
    for op in &plan.ops {
        crate::interrupt::check()?;
        if peak.is_infinite() {
            break; // (the caller reports the overflow)
        }
        match *op {
            Op::Layer { reg, step, slot, fresh } => {
                let (s, t) = (&mut sigma[reg], &mut theta[reg]);
                for (s, t) in s.iter_mut().zip(t.iter_mut()) {
                    *t = step.theta::<Separate>(*s, if fresh { 0.0 } else { *t });
                    *s = step.sigma::<Separate>(*s);
                }
                peak = track(track(peak, s), t);
                let Some(slot) = slot else { continue };
                variances[slot * n..][..n].copy_from_slice(s);
                let Slot::Activation { activation, function } = &plan.slots[slot] else {
                    unreachable!("a Layer step's slot is an activation")
                };
                match activation {
                    Activation::Series { function: kind, .. } => {
                        let builtin;
                        let f: &dyn PointwiseFn = match (kind, function) {
                            (SeriesFunction::Builtin(b), _) => {
                                builtin = *b;
                                &builtin
                            }
                            (SeriesFunction::External, Some(f)) => f.as_ref(),
                            (SeriesFunction::External, None) => {
                                return Err(Error::invalid("activation", "a numerical activation needs its function"));
                            }
                        };
                        let series = series::slot_series(f, s, degree)?;
                        error = error.max(series.error);
                        s.copy_from_slice(&series.nngp_diag);
                        dot.copy_from_slice(&series.dot_diag);
                        tables[slot] = Some(series.tables);
                    }
                    closed => closed.with_dual::<f64, _>(DiagonalMaps { sigma: s, dot: &mut dot }),
                }
                t.iter_mut().zip(&dot).for_each(|(t, d)| *t *= d);
            }
            Op::Norm { reg, slot, fresh } => {
                let Slot::Norm { eps } = plan.slots[slot] else { unreachable!("a Norm step's slot is a LayerNorm") };
                let (s, t) = (&mut sigma[reg], &mut theta[reg]);
                variances[slot * n..][..n].copy_from_slice(s);
                if let Some(i) = s.iter().position(|&c| c + eps <= 0.0) {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "row {i} reaches a LayerNorm with all features 0 (variance 0) and eps = 0: its \
                             normalisation is 0 / 0; pass LayerNorm(eps > 0) or give the layer before it a bias"
                        ),
                    ));
                }
                for (s, t) in s.iter_mut().zip(t.iter_mut()) {
                    // (as the kernel entries compute it, so that an input against itself gives
                    // exactly its diagonal: a correlation of 1 rounded down would cost sqrt(eps))
                    let inv = 1.0 / (*s + eps).sqrt();
                    *s *= inv * inv;
                    if !fresh {
                        *t *= inv * inv;
                    }
                }
            }
            Op::Copy { src, dst } => {
                let (d, s) = pair(&mut sigma, dst, src);
                d.copy_from_slice(s);
                let (d, s) = pair(&mut theta, dst, src);
                d.copy_from_slice(s);
            }
            Op::Sum { dst, src, ntk } => {
                let (d, s) = pair(&mut sigma, dst, src);
                d.iter_mut().zip(s.iter()).for_each(|(d, s)| *d += s);
                if ntk {
                    let (d, s) = pair(&mut theta, dst, src);
                    d.iter_mut().zip(s.iter()).for_each(|(d, s)| *d += s);
                }
                peak = track(track(peak, &sigma[dst]), &theta[dst]);
            }
            Op::Prod { dst, src, ntk } => {
                if ntk {
                    for i in 0..n {
                        theta[dst][i] = theta[dst][i] * sigma[src][i] + sigma[dst][i] * theta[src][i];
                    }
                }
                let (d, s) = pair(&mut sigma, dst, src);
                d.iter_mut().zip(s.iter()).for_each(|(d, s)| *d *= s);
                peak = track(track(peak, &sigma[dst]), &theta[dst]);
            }
            Op::Zero { reg } => theta[reg].fill(0.0),
        }
    }
    let nngp = std::mem::take(&mut sigma[0]);
    let ntk = std::mem::take(&mut theta[0]);
    peak = track(track(peak, &nngp), &ntk);
    Ok(Diagonal { variances, nngp, ntk, peak, tables, degree, error })
}
