//! One pair of images through a `ConvPlan`: the input covariance, then each step on the
//! registers of a per-thread `Workspace`. The same routine records an input's per-position
//! statistics (its pair with itself), so the diagonal entries the pairs read are exactly the ones
//! the pair (x, x) computes.

use super::geometry::AxisMap;
use super::plan::{ConvPlan, Op, Shape, SlotKind};
use super::stencil;
use crate::activation::{Affine, ColumnInputs, Dual, RowInput, WithDual};
use crate::float::{MulAdd, Real};
use crate::recursion;
use crate::simd::{self, Vectorized};
use crate::spec::DenseStep;

/// A thread's registers (NNGP and NTK of each, `capacity` entries) and scratch.
pub struct Workspace<T> {
    regs: Vec<T>,
    scratch: Vec<T>,
    capacity: usize,
    /// Each window's halves' column masks (`stencil::masks`).
    masks: Vec<[Vec<T>; 2]>,
}

impl<T: Real> Workspace<T> {
    /// Elements a workspace of `plan` holds (for memory plans).
    pub fn len(plan: &ConvPlan) -> usize {
        (2 * plan.registers + 3) * plan.capacity
    }

    pub fn new(plan: &ConvPlan) -> Self {
        Workspace {
            regs: vec![T::ZERO; 2 * plan.registers * plan.capacity],
            scratch: vec![T::ZERO; 3 * plan.capacity],
            capacity: plan.capacity,
            masks: plan.halves.iter().map(|[a, b]| [stencil::masks(a), stencil::masks(b)]).collect(),
        }
    }

    fn register(&mut self, reg: usize) -> (&mut [T], &mut [T]) {
        let cap = self.capacity;
        self.regs[2 * reg * cap..][..2 * cap].split_at_mut(cap)
    }

    /// Registers `a` != `b`: (NNGP, NTK) of each.
    #[allow(clippy::type_complexity)]
    fn two(&mut self, a: usize, b: usize) -> ((&mut [T], &mut [T]), (&mut [T], &mut [T])) {
        let cap = 2 * self.capacity;
        let (lo, hi) = (a.min(b), a.max(b));
        let (left, right) = self.regs.split_at_mut(hi * cap);
        let low = left[lo * cap..][..cap].split_at_mut(cap / 2);
        let high = right[..cap].split_at_mut(cap / 2);
        if a < b { (low, high) } else { (high, low) }
    }
}

/// One input's per-position statistics (q, then aux, then root; `plan.stats_len` each): those
/// of both inputs of a pair, or those of one input being recorded.
pub enum Sides<'a, T> {
    Pair(&'a [T], &'a [T]),
    Record(&'a mut [T]),
}

/// A slot's q, aux and root of one input.
#[derive(Clone, Copy)]
struct SlotStats<'a, T> {
    q: &'a [T],
    aux: &'a [T],
    root: &'a [T],
}

fn slot_stats<'a, T>(plan: &ConvPlan, stats: &'a [T], slot: usize) -> SlotStats<'a, T> {
    let (s, n) = (plan.slots[slot], plan.stats_len);
    let part = |k: usize| &stats[k * n + s.offset..][..s.positions];
    SlotStats { q: part(0), aux: part(1), root: part(2) }
}

/// Records slot `slot` of an input from the register's same-position covariances `diag(p)`
/// (before the slot's map).
fn record<T: Real>(plan: &ConvPlan, stats: &mut [T], slot: usize, diag: impl Fn(usize) -> T) {
    let (s, n) = (plan.slots[slot], plan.stats_len);
    let mut q: Vec<T> = (0..s.positions).map(diag).collect();
    // (negative rounding of a zero variance would give NaN roots)
    q.iter_mut().for_each(|v| *v = v.max_fast(T::ZERO));
    let mut aux = vec![T::ZERO; s.positions];
    match s.kind {
        SlotKind::Activation(activation) => activation.with_dual::<T, _>(AuxJob { q: &q, aux: &mut aux }),
        SlotKind::Norm { eps, .. } => {
            aux.iter_mut().zip(&q).for_each(|(a, &v)| *a = T::ONE / (v + T::from_f64(eps)).sqrt())
        }
    }
    for (k, values) in [q.clone(), aux, q.iter().map(|v| v.sqrt()).collect()].into_iter().enumerate() {
        stats[k * n + s.offset..][..s.positions].copy_from_slice(&values);
    }
}

/// The variances a LayerNorm divides by, per position of an input's pair with itself (register
/// values `sigma` of `shape`): same-position covariances, averaged over the heights and / or
/// widths the layer normalises over.
fn norm_variances<T: Real>(sigma: &[T], shape: Shape, kind: SlotKind) -> Vec<T> {
    let SlotKind::Norm { positions: [over_h, over_w], .. } = kind else { unreachable!("a Norm step's slot") };
    let (grid, full) = match shape {
        Shape::Full(g) => (g, true),
        Shape::Diagonal(g) => (g, false),
        Shape::Scalar => return vec![sigma[0]],
    };
    let p = grid[0] * grid[1];
    let diag: Vec<f64> = (0..p).map(|k| sigma[if full { k * p + k } else { k }].to_f64()).collect();
    let group = |h: usize, w: usize| {
        let hs = if over_h { 0..grid[0] } else { h..h + 1 };
        let mut sum = 0.0;
        let mut count = 0;
        for hh in hs {
            for ww in if over_w { 0..grid[1] } else { w..w + 1 } {
                sum += diag[hh * grid[1] + ww];
                count += 1;
            }
        }
        T::from_f64(sum / count as f64)
    };
    (0..p).map(|k| group(k / grid[1], k % grid[1])).collect()
}

struct AuxJob<'a, T> {
    q: &'a [T],
    aux: &'a mut [T],
}

impl<T: Real> WithDual<T> for AuxJob<'_, T> {
    type Output = ();
    fn run<D: Dual<T>>(self, dual: D) {
        self.aux.iter_mut().zip(self.q).for_each(|(a, &q)| *a = dual.aux(q));
    }
}

/// A Dense map then an activation on a register of shape `full` (rows x1's positions, columns
/// x2's) or same-position entries, in one pass compiled for the CPU's SIMD level.
struct Activate<'a, T, const NTK: bool> {
    step: DenseStep<T>,
    fresh: bool,
    sigma: &'a mut [T],
    theta: &'a mut [T],
    rows: SlotStats<'a, T>,
    cols: SlotStats<'a, T>,
    full: bool,
}

impl<T: Real, const NTK: bool> WithDual<T> for Activate<'_, T, NTK> {
    type Output = ();
    #[inline(always)]
    fn run<D: Dual<T>>(self, dual: D) {
        simd::dispatch(ActivateWith { job: self, dual });
    }
}

struct ActivateWith<'a, T, D, const NTK: bool> {
    job: Activate<'a, T, NTK>,
    dual: D,
}

impl<T: Real, D: Dual<T>, const NTK: bool> Vectorized for ActivateWith<'_, T, D, NTK> {
    type Output = ();
    #[inline(always)]
    fn run<M: MulAdd>(self) {
        let j = self.job;
        let p = j.rows.q.len();
        let row = |r: usize| RowInput { q: j.rows.q[r], aux: j.rows.aux[r], root: j.rows.root[r], index: r };
        let cols = |c: std::ops::Range<usize>| ColumnInputs {
            q: &j.cols.q[c.clone()],
            aux: &j.cols.aux[c.clone()],
            root: &j.cols.root[c.clone()],
            index: c.start,
        };
        if j.full {
            for (r, sigma) in j.sigma.chunks_exact_mut(p).enumerate() {
                let theta = if NTK { &mut j.theta[r * p..][..p] } else { &mut [] };
                self.dual.layer_row::<M, NTK, _>((&j.step, j.fresh), sigma, theta, row(r), cols(0..p));
            }
            return;
        }
        // same-position entries: entry p has x1's variance at p and x2's at p
        let (r, c) = (j.rows, j.cols);
        let step = j.step;
        let covariance = |s: T, r1: T, r2: T| {
            let bound = r1 * r2;
            step.sigma::<M>(s).min_fast(bound).max_fast(-bound)
        };
        let rows = r.q.iter().zip(r.aux).zip(r.root);
        let inputs = rows.zip(c.q.iter().zip(c.aux).zip(c.root));
        if NTK {
            for ((s, t), (((&q1, &a1), &r1), ((&q2, &a2), &r2))) in
                j.sigma.iter_mut().zip(j.theta.iter_mut()).zip(inputs)
            {
                let th = step.theta::<M>(*s, if j.fresh { T::ZERO } else { *t });
                let (sigma_hat, dot) = self.dual.dual::<M>(covariance(*s, r1, r2), q1, q2, a1, a2);
                *s = sigma_hat;
                *t = th * dot;
            }
        } else {
            for (s, (((&q1, &a1), &r1), ((&q2, &a2), &r2))) in j.sigma.iter_mut().zip(inputs) {
                *s = self.dual.dual::<M>(covariance(*s, r1, r2), q1, q2, a1, a2).0;
            }
        }
    }
}

/// A stencil of `stencil` compiled for the CPU's SIMD level (its loops vectorise with it).
enum Stencil<'a, T> {
    /// A convolution in place: the first `len` entries of `values` through `mid` (heights) back
    /// into `values` (widths).
    Separable {
        halves: &'a [[AxisMap; 2]; 2],
        masks: &'a [Vec<T>; 2],
        full: bool,
        len: usize,
        values: &'a mut [T],
        mid: &'a mut [T],
    },
    Pool {
        maps: &'a [AxisMap; 2],
        normalize_edges: bool,
        input: &'a [T],
        tmp: &'a mut [T],
        out: &'a mut [T],
    },
}

impl<T: Real> Vectorized for Stencil<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<M: MulAdd>(self) {
        match self {
            Stencil::Separable { halves: [first, second], masks: [m1, m2], full: true, len, values, mid } => {
                stencil::conv_full(first, m1, &values[..len], mid);
                stencil::conv_full(second, m2, mid, values);
            }
            Stencil::Separable { halves: [first, second], masks: [m1, m2], full: false, len, values, mid } => {
                stencil::conv_diagonal::<T, M>(first, m1, &values[..len], mid);
                stencil::conv_diagonal::<T, M>(second, m2, mid, values);
            }
            Stencil::Pool { maps, normalize_edges, input, tmp, out } => {
                stencil::pool_full(maps, normalize_edges, input, tmp, out)
            }
        }
    }
}

/// Runs `plan` on the pair (x1, x2) (`x` rows of h w c values, position-major); the output
/// register's (NNGP, NTK) entries are returned as slices of the workspace (the NTK empty unless
/// `NTK`). With `Sides::Record`, x1 = x2 and the statistics are recorded as the steps reach them.
pub fn run<'w, T: Real, const NTK: bool>(
    plan: &ConvPlan,
    ws: &'w mut Workspace<T>,
    x1: &[T],
    x2: &[T],
    sides: Sides<'_, T>,
) -> (&'w [T], &'w [T]) {
    simd::dispatch(Pair::<'_, 'w, '_, T, NTK> { plan, ws, x: (x1, x2), sides })
}

/// `run` as a job compiled for the CPU's SIMD level (the per-entry steps between the dispatched
/// stencils and activations vectorise with it).
struct Pair<'a, 'w, 's, T, const NTK: bool> {
    plan: &'a ConvPlan,
    ws: &'w mut Workspace<T>,
    x: (&'a [T], &'a [T]),
    sides: Sides<'s, T>,
}

impl<'w, T: Real, const NTK: bool> Vectorized for Pair<'_, 'w, '_, T, NTK> {
    type Output = (&'w [T], &'w [T]);
    #[inline(always)]
    fn run<M: MulAdd>(self) -> Self::Output {
        run_steps::<T, NTK>(self.plan, self.ws, self.x.0, self.x.1, self.sides)
    }
}

#[inline(always)]
fn run_steps<'w, T: Real, const NTK: bool>(
    plan: &ConvPlan,
    ws: &'w mut Workspace<T>,
    x1: &[T],
    x2: &[T],
    mut sides: Sides<'_, T>,
) -> (&'w [T], &'w [T]) {
    input_covariance(plan, ws, x1, x2);
    for op in &plan.ops {
        match *op {
            Op::Linear { reg, window, step, slot, fresh, from, to } => {
                let step: DenseStep<T> = step.cast();
                let cap = ws.capacity;
                let (sigma, theta) = {
                    let Workspace { regs, scratch, masks, .. } = &mut *ws;
                    let (sigma, theta) = regs[2 * reg * cap..][..2 * cap].split_at_mut(cap);
                    if let Some(w) = window {
                        let (halves, masks) = (&plan.halves[w], &masks[w]);
                        let full = matches!(from, Shape::Full(_));
                        let mid = &mut scratch[..cap];
                        let len = from.len();
                        simd::dispatch(Stencil::Separable { halves, masks, full, len, values: sigma, mid });
                        if NTK && !fresh {
                            simd::dispatch(Stencil::Separable { halves, masks, full, len, values: theta, mid });
                        }
                    }
                    (&mut sigma[..to.len()], if NTK { &mut theta[..to.len()] } else { &mut [][..] })
                };
                let Some(slot) = slot else {
                    recursion::dense::<T, NTK>(&step, fresh, sigma, theta);
                    continue;
                };
                let positions = to.positions();
                if let Sides::Record(stats) = &mut sides {
                    let s = &*sigma;
                    let diag = |p: usize| {
                        let k = if matches!(to, Shape::Full(_)) { p * positions + p } else { p };
                        step.sigma::<crate::float::Separate>(s[k])
                    };
                    record(plan, stats, slot, diag);
                }
                let (rows, cols) = match &sides {
                    Sides::Pair(a, b) => (slot_stats(plan, a, slot), slot_stats(plan, b, slot)),
                    Sides::Record(s) => (slot_stats(plan, s, slot), slot_stats(plan, s, slot)),
                };
                let SlotKind::Activation(activation) = plan.slots[slot].kind else {
                    unreachable!("a Linear step's slot is an activation")
                };
                let full = matches!(to, Shape::Full(_));
                activation.with_dual::<T, _>(Activate::<T, NTK> { step, fresh, sigma, theta, rows, cols, full });
            }
            Op::Pool { reg, window, normalize_edges, fresh, from, to } => {
                let cap = ws.capacity;
                let Workspace { regs, scratch, .. } = &mut *ws;
                let (sigma, theta) = regs[2 * reg * cap..][..2 * cap].split_at_mut(cap);
                let (tmp, out) = scratch.split_at_mut(2 * cap);
                let maps = &plan.windows[window];
                for (values, wanted) in [(sigma, true), (theta, NTK && !fresh)] {
                    if wanted {
                        let input = &values[..from.len()];
                        simd::dispatch(Stencil::Pool { maps, normalize_edges, input, tmp: &mut *tmp, out: &mut *out });
                        values[..to.len()].copy_from_slice(&out[..to.len()]);
                    }
                }
            }
            Op::GlobalPool { reg, fresh, from } | Op::Flatten { reg, fresh, from } => {
                let global = matches!(op, Op::GlobalPool { .. });
                let (sigma, theta) = ws.register(reg);
                let reduce = |v: &[T]| match from {
                    Shape::Full(_) if !global => stencil::trace_mean(v, from.positions()),
                    _ => stencil::mean(&v[..from.len()]),
                };
                sigma[0] = reduce(sigma);
                if NTK && !fresh {
                    theta[0] = reduce(theta);
                }
            }
            Op::Norm { reg, slot, fresh, shape } => {
                let (sigma, theta) = ws.register(reg);
                if let Sides::Record(stats) = &mut sides {
                    let variances = norm_variances(sigma, shape, plan.slots[slot].kind);
                    record(plan, stats, slot, |p| variances[p]);
                }
                let (rows, cols) = match &sides {
                    Sides::Pair(a, b) => (slot_stats(plan, a, slot), slot_stats(plan, b, slot)),
                    Sides::Record(s) => (slot_stats(plan, s, slot), slot_stats(plan, s, slot)),
                };
                let len = shape.len();
                let theta = if NTK { &mut theta[..len] } else { &mut [][..] };
                let sigma = &mut sigma[..len];
                match shape {
                    Shape::Full(_) => {
                        let p = shape.positions();
                        for (r, s) in sigma.chunks_exact_mut(p).enumerate() {
                            let t = if NTK { &mut theta[r * p..][..p] } else { &mut [][..] };
                            recursion::norm::<T, NTK>(rows.aux[r], cols.aux, fresh, s, t);
                        }
                    }
                    _ => {
                        for (k, s) in sigma.iter_mut().enumerate() {
                            let t = if NTK { &mut theta[k..k + 1] } else { &mut [][..] };
                            recursion::norm::<T, NTK>(
                                rows.aux[k],
                                &cols.aux[k..k + 1],
                                fresh,
                                std::slice::from_mut(s),
                                t,
                            );
                        }
                    }
                }
            }
            Op::Copy { src, dst, len } => {
                let ((s_sigma, s_theta), (d_sigma, d_theta)) = ws.two(src, dst);
                d_sigma[..len].copy_from_slice(&s_sigma[..len]);
                if NTK {
                    d_theta[..len].copy_from_slice(&s_theta[..len]);
                }
            }
            Op::Sum { dst, src, ntk, len } | Op::Prod { dst, src, ntk, len } => {
                let ((d_sigma, d_theta), (s_sigma, s_theta)) = ws.two(dst, src);
                let d = (&mut d_sigma[..len], &mut d_theta[..len]);
                let s = (&s_sigma[..len], &s_theta[..len]);
                if matches!(op, Op::Sum { .. }) {
                    recursion::sum::<T, NTK>(ntk, d, s);
                } else {
                    recursion::product::<T, NTK>(ntk, d, s);
                }
            }
            Op::Zero { reg, len } => ws.register(reg).1[..len].fill(T::ZERO),
        }
    }
    let len = plan.output.len();
    let (sigma, theta) = ws.register(0);
    (&sigma[..len], if NTK { &theta[..len] } else { &[] })
}

/// Register 0 := the input covariance x1(p) . x2(p') / channels, at the plan's pairs of positions.
#[inline(always)]
fn input_covariance<T: Real>(plan: &ConvPlan, ws: &mut Workspace<T>, x1: &[T], x2: &[T]) {
    let c = plan.channels;
    let inv = T::from_f64(1.0 / c as f64);
    let dot = |a: &[T], b: &[T]| a.iter().zip(b).fold(T::ZERO, |acc, (&u, &v)| acc + u * v) * inv;
    let positions = plan.input.positions();
    let (sigma, _) = ws.register(0);
    match plan.input {
        Shape::Full(_) => {
            for (p1, row) in sigma[..positions * positions].chunks_exact_mut(positions).enumerate() {
                let a = &x1[p1 * c..][..c];
                if c == 1 {
                    row.iter_mut().zip(x2).for_each(|(o, &b)| *o = a[0] * b);
                } else {
                    row.iter_mut().zip(x2.chunks_exact(c)).for_each(|(o, b)| *o = dot(a, b));
                }
            }
        }
        _ if c == 1 => sigma[..positions].iter_mut().zip(x1).zip(x2).for_each(|((o, &a), &b)| *o = a * b),
        _ => {
            for (p, o) in sigma[..positions].iter_mut().enumerate() {
                *o = dot(&x1[p * c..][..c], &x2[p * c..][..c]);
            }
        }
    }
}
