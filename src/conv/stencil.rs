//! The linear maps of convolution and pooling on one pair's covariances.
//!
//! Weights are shared across positions and independent across filter offsets, so a convolution
//! correlates two output positions only through equal offsets:
//!   S'(o1, o2) = sum_d S(o1 s + d, o2 s + d)            (both positions shifted by the same d),
//! while average pooling has no weights and pools each position over its own window:
//!   S'(o1, o2) = sum_{d1, d2} S(o1 s + d1, o2 s + d2) / (window normaliser).
//! Positions are (height, width) pairs; a `Full` covariance is row-major over (x1's position,
//! x2's position), a `Diagonal` one holds the same-position entries S(p, p).

use super::geometry::AxisMap;
use crate::float::{MulAdd, Real};

/// dst[k] += src[k * stride] for k < dst.len().
#[inline(always)]
fn add_strided<T: Real>(dst: &mut [T], src: &[T], stride: usize) {
    if stride == 1 {
        let n = dst.len();
        for (d, &s) in dst.iter_mut().zip(&src[..n]) {
            *d += s;
        }
    } else {
        for (k, d) in dst.iter_mut().enumerate() {
            *d += src[k * stride];
        }
    }
}

/// The window sum of a convolution on a full covariance: `input` of (h w)^2 entries into `out`
/// of (h' w')^2 entries (overwritten).
#[inline(always)]
pub fn conv_full<T: Real>(maps: &[AxisMap; 2], masks: &[T], input: &[T], out: &mut [T]) {
    let [mh, mw] = maps;
    let (w, p) = (mw.len_in, mh.len_in * mw.len_in);
    let (ow, op) = (mw.len_out, mh.len_out * mw.len_out);
    out[..op * op].fill(T::ZERO);
    if !masks.is_empty() {
        return conv_full_shifted(maps, masks, input, out);
    }
    for dh in 0..mh.runs.len() {
        for dw in 0..mw.runs.len() {
            for (oh1, ih1) in mh.pairs(dh) {
                for (ow1, iw1) in mw.pairs(dw) {
                    let src_row = &input[(ih1 * w + iw1) * p..][..p];
                    let dst_row = &mut out[(oh1 * ow + ow1) * op..][..op];
                    for (oh2, ih2) in mh.pairs(dh) {
                        let src = &src_row[ih2 * w..][..w];
                        let dst = &mut dst_row[oh2 * ow..][..ow];
                        for r in &mw.runs[dw] {
                            add_strided(&mut dst[r.o0..r.o0 + r.len], &src[r.i0..], mw.stride);
                        }
                    }
                }
            }
        }
    }
}

/// Whether a window keeps the grid and every offset is one shift of each axis (stride 1, no
/// wrapping: 'SAME' padding, or a 1-wide window).
fn is_shift(maps: &[AxisMap; 2]) -> bool {
    maps.iter().all(|m| m.stride == 1 && m.len_in == m.len_out && m.runs.iter().all(|r| r.len() <= 1))
}

/// The column masks the stencils of `maps` use (empty for windows without `is_shift`): computed
/// once per thread, in the kernel's type.
pub fn masks<T: Real>(maps: &[AxisMap; 2]) -> Vec<T> {
    if is_shift(maps) { column_masks(&maps[1], maps[0].len_in * maps[1].len_in) } else { Vec::new() }
}

/// masks[dw p + o]: 1 where output position o (of p, rows of the width's length) reads inside the
/// input at column offset dw, else 0.
fn column_masks<T: Real>(mw: &AxisMap, p: usize) -> Vec<T> {
    let mut masks = vec![T::ZERO; mw.runs.len() * p];
    for (dw, mask) in masks.chunks_exact_mut(p).enumerate() {
        for row in mask.chunks_exact_mut(mw.len_out) {
            for (o, _) in mw.pairs(dw) {
                row[o] = T::ONE;
            }
        }
    }
    masks
}

/// `conv_full` for windows with `is_shift`: per offset and output position of x1, one add over
/// all of x2's positions in the rows the offset reads (a long contiguous loop), the entries of
/// columns the offset reads outside the input masked out.
#[inline(always)]
fn conv_full_shifted<T: Real>(maps: &[AxisMap; 2], masks: &[T], input: &[T], out: &mut [T]) {
    let [mh, mw] = maps;
    let (w, p) = (mw.len_in, mh.len_in * mw.len_in);
    for (dh, rows) in mh.runs.iter().enumerate() {
        for (dw, cols) in mw.runs.iter().enumerate() {
            let (Some(rows), Some(cols)) = (rows.first(), cols.first()) else { continue };
            let shift = (rows.i0 * w + cols.i0) as isize - (rows.o0 * w + cols.o0) as isize;
            let (first, span) = (rows.o0 * w, rows.len * w);
            // x2's positions whose shifted read stays inside the row (the others are masked)
            let start = first as isize + shift;
            let lo = (-start).max(0) as usize;
            let hi = ((p as isize - start).max(0) as usize).min(span);
            let mask = &masks[dw * p + first..][lo..hi];
            for (oh1, ih1) in mh.pairs(dh) {
                for (ow1, iw1) in mw.pairs(dw) {
                    let src = &input[(ih1 * w + iw1) * p + (start + lo as isize) as usize..][..hi - lo];
                    let dst = &mut out[(oh1 * w + ow1) * p + first..][lo..hi];
                    for ((d, &s), &m) in dst.iter_mut().zip(src).zip(mask) {
                        *d += s * m;
                    }
                }
            }
        }
    }
}

/// The window sum of a convolution on same-position entries: `input` of h w entries into `out`
/// of h' w' entries (overwritten).
#[inline(always)]
pub fn conv_diagonal<T: Real, M: MulAdd>(maps: &[AxisMap; 2], masks: &[T], input: &[T], out: &mut [T]) {
    let [mh, mw] = maps;
    let (w, ow) = (mw.len_in, mw.len_out);
    if !masks.is_empty() {
        return conv_diagonal_shifted::<T, M>(maps, masks, input, &mut out[..mh.len_out * ow]);
    }
    out[..mh.len_out * ow].fill(T::ZERO);
    for dh in 0..mh.runs.len() {
        for dw in 0..mw.runs.len() {
            for (oh, ih) in mh.pairs(dh) {
                let src = &input[ih * w..][..w];
                let dst = &mut out[oh * ow..][..ow];
                for r in &mw.runs[dw] {
                    add_strided(&mut dst[r.o0..r.o0 + r.len], &src[r.i0..], mw.stride);
                }
            }
        }
    }
}

/// One filter offset of a shift window on same-position entries: out[k] += input[k + shift] *
/// mask[k] for k in lo..hi (outside it the offset reads outside the image); `ones`: the mask is
/// 1 everywhere (the offset reads inside every row), so it need not be read.
#[derive(Clone, Copy)]
struct Tap<'a, T> {
    shift: isize,
    mask: &'a [T],
    ones: bool,
    lo: usize,
    hi: usize,
}

/// The offsets of a shift window (`is_shift`), in order.
fn taps<'a, T: Real>(maps: &'a [AxisMap; 2], masks: &'a [T]) -> impl Iterator<Item = Tap<'a, T>> + 'a {
    let [mh, mw] = maps;
    let (w, p) = (mw.len_in, mh.len_in * mw.len_in);
    (0..mh.runs.len()).flat_map(move |dh| (0..mw.runs.len()).map(move |dw| (dh, dw))).filter_map(move |(dh, dw)| {
        let (rows, cols) = (mh.runs[dh].first()?, mw.runs[dw].first()?);
        let (first, span) = (rows.o0 * w, rows.len * w);
        let start = (rows.i0 * w + cols.i0) as isize - cols.o0 as isize;
        let lo = (-start).max(0) as usize;
        let hi = ((p as isize - start).max(0) as usize).min(span);
        let ones = cols.len == mw.len_out;
        let mask = &masks[dw * p..][..p];
        (lo < hi).then_some(Tap { shift: start - first as isize, mask, ones, lo: first + lo, hi: first + hi })
    })
}

/// (input, mask) of offset `t` over outputs lo..hi.
#[inline(always)]
fn read<'a, T>(input: &'a [T], t: Tap<'a, T>, lo: usize, hi: usize) -> (&'a [T], &'a [T]) {
    (&input[(lo as isize + t.shift) as usize..][..hi - lo], &t.mask[lo..hi])
}

/// `conv_diagonal` for windows with `is_shift`, three offsets at a time: where all three read
/// inside the image, one pass sums them (one store per entry instead of a read-modify-write per
/// offset, no mask read where it is all ones: a height offset, a width window's centre); the
/// edges take each offset alone.
#[inline(always)]
fn conv_diagonal_shifted<T: Real, M: MulAdd>(maps: &[AxisMap; 2], masks: &[T], input: &[T], out: &mut [T]) {
    let n = out.len();
    let mut all = taps(maps, masks);
    let mut fresh = true;
    loop {
        let group = [all.next(), all.next(), all.next()];
        let count = group.iter().flatten().count();
        if count == 0 {
            if fresh {
                out.fill(T::ZERO);
            }
            return;
        }
        let group = &group[..count];
        let lo = group.iter().flatten().map(|t| t.lo).max().unwrap_or(0).min(n);
        let hi = group.iter().flatten().map(|t| t.hi).min().unwrap_or(0).max(lo).min(n);
        if fresh {
            out[..lo].fill(T::ZERO);
            out[hi..].fill(T::ZERO);
        }
        let dst = &mut out[lo..hi];
        match group {
            [Some(a), Some(b), Some(c)] if a.ones && b.ones && c.ones => {
                let ((xa, _), (xb, _), (xc, _)) =
                    (read(input, *a, lo, hi), read(input, *b, lo, hi), read(input, *c, lo, hi));
                for i in 0..dst.len() {
                    let sum = xa[i] + xb[i] + xc[i];
                    dst[i] = if fresh { sum } else { dst[i] + sum };
                }
            }
            [Some(a), Some(b), Some(c)] if b.ones => {
                let ((xa, ma), (xb, _), (xc, mc)) =
                    (read(input, *a, lo, hi), read(input, *b, lo, hi), read(input, *c, lo, hi));
                for i in 0..dst.len() {
                    let sum = M::mul_add(xa[i], ma[i], M::mul_add(xc[i], mc[i], xb[i]));
                    dst[i] = if fresh { sum } else { dst[i] + sum };
                }
            }
            [Some(a), Some(b), Some(c)] => {
                let ((xa, ma), (xb, mb), (xc, mc)) =
                    (read(input, *a, lo, hi), read(input, *b, lo, hi), read(input, *c, lo, hi));
                for i in 0..dst.len() {
                    let sum = M::mul_add(xa[i], ma[i], M::mul_add(xb[i], mb[i], xc[i] * mc[i]));
                    dst[i] = if fresh { sum } else { dst[i] + sum };
                }
            }
            _ => {
                // one or two offsets (a window's last, or a small window): one at a time
                if fresh {
                    dst.fill(T::ZERO);
                }
                for t in group.iter().flatten() {
                    let (x, m) = read(input, *t, lo, hi);
                    for i in 0..dst.len() {
                        dst[i] = M::mul_add(x[i], m[i], dst[i]);
                    }
                }
            }
        }
        // the edges: each offset over the part of its range outside lo..hi
        for t in group.iter().flatten() {
            for range in [t.lo..t.hi.min(lo), t.lo.max(hi)..t.hi] {
                for k in range {
                    out[k] += input[(k as isize + t.shift) as usize] * t.mask[k];
                }
            }
        }
        fresh = false;
    }
}

/// Average pooling of a full covariance: `input` (h w)^2 into `out` (h' w')^2, by pooling x2's
/// positions into `tmp` (h w x h' w' entries) and then x1's. Each window sum is divided by the
/// window's size, or with `normalize_edges` by the number of its positions inside the input.
#[inline(always)]
pub fn pool_full<T: Real>(maps: &[AxisMap; 2], normalize_edges: bool, input: &[T], tmp: &mut [T], out: &mut [T]) {
    let [mh, mw] = maps;
    let (w, p) = (mw.len_in, mh.len_in * mw.len_in);
    let (ow, op) = (mw.len_out, mh.len_out * mw.len_out);
    // x2's positions: tmp[p1][o2] = sum over x2's window of input[p1][i2]
    tmp[..p * op].fill(T::ZERO);
    for p1 in 0..p {
        let src_row = &input[p1 * p..][..p];
        let dst_row = &mut tmp[p1 * op..][..op];
        for dh in 0..mh.runs.len() {
            for (oh, ih) in mh.pairs(dh) {
                let src = &src_row[ih * w..][..w];
                let dst = &mut dst_row[oh * ow..][..ow];
                for dw in 0..mw.runs.len() {
                    for r in &mw.runs[dw] {
                        add_strided(&mut dst[r.o0..r.o0 + r.len], &src[r.i0..], mw.stride);
                    }
                }
            }
        }
    }
    // x1's positions: out[o1][o2] = sum over x1's window of tmp[i1][o2]
    out[..op * op].fill(T::ZERO);
    for dh in 0..mh.runs.len() {
        for dw in 0..mw.runs.len() {
            for (oh, ih) in mh.pairs(dh) {
                for (ow1, iw) in mw.pairs(dw) {
                    let src = &tmp[(ih * w + iw) * op..][..op];
                    let dst = &mut out[(oh * ow + ow1) * op..][..op];
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                }
            }
        }
    }
    // normalisers: per output position of one input, squared over the pair
    let size = |oh: usize, owi: usize| {
        if normalize_edges { (mh.counts[oh] * mw.counts[owi]) as f64 } else { (mh.runs.len() * mw.runs.len()) as f64 }
    };
    let inv: Vec<T> = (0..op).map(|o| T::from_f64(1.0 / size(o / ow, o % ow))).collect();
    for (o1, row) in out[..op * op].chunks_exact_mut(op).enumerate() {
        for (v, &c) in row.iter_mut().zip(&inv) {
            *v *= inv[o1] * c;
        }
    }
}

/// The mean of a full covariance's entries (GlobalAvgPool).
#[inline(always)]
pub fn mean<T: Real>(input: &[T]) -> T {
    // (eight running sums: independent additions vectorise)
    let mut acc = [0.0f64; 8];
    let chunks = input.chunks_exact(8);
    let rest = chunks.remainder().iter().fold(0.0f64, |a, &v| a + v.to_f64());
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v.to_f64();
        }
    }
    T::from_f64((acc.iter().sum::<f64>() + rest) / input.len() as f64)
}

/// The mean of the same-position entries of a full covariance of `positions` positions (Flatten).
#[inline(always)]
pub fn trace_mean<T: Real>(input: &[T], positions: usize) -> T {
    let sum = (0..positions).fold(0.0f64, |acc, p| acc + input[p * positions + p].to_f64());
    T::from_f64(sum / positions as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::Padding;

    /// The covariance of windowed sums straight from its definition, by an explicit matrix: a
    /// position map y = A x over a grid has covariance A S A^T; a convolution with shared
    /// weights has sum_d A_d S A_d^T (one A_d per offset).
    fn dense_map(map_h: &AxisMap, map_w: &AxisMap, dh: usize, dw: usize) -> Vec<Vec<f64>> {
        let (p, op) = (map_h.len_in * map_w.len_in, map_h.len_out * map_w.len_out);
        let mut a = vec![vec![0.0; p]; op];
        for (oh, ih) in map_h.pairs(dh) {
            for (ow, iw) in map_w.pairs(dw) {
                a[oh * map_w.len_out + ow][ih * map_w.len_in + iw] = 1.0;
            }
        }
        a
    }

    fn sandwich(a: &[Vec<f64>], b: &[Vec<f64>], s: &[f64]) -> Vec<f64> {
        let (op, p) = (a.len(), a[0].len());
        let mut out = vec![0.0; op * op];
        for i in 0..op {
            for j in 0..op {
                let mut acc = 0.0;
                for k in 0..p {
                    for l in 0..p {
                        acc += a[i][k] * s[k * p + l] * b[j][l];
                    }
                }
                out[i * op + j] = acc;
            }
        }
        out
    }

    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn conv_and_pool_match_their_matrix_definitions() {
        for padding in [Padding::Valid, Padding::Same, Padding::Circular] {
            for (grid, window, strides) in
                // (with 'SAME' and stride 1: groups of three offsets and a remainder, all-ones masks)
                [
                    ([5, 4], [3, 2], [1, 1]),
                    ([6, 5], [2, 3], [2, 1]),
                    ([1, 7], [1, 3], [1, 2]),
                    ([7, 6], [5, 4], [1, 1]),
                    ([6, 6], [3, 1], [1, 1]),
                    ([4, 9], [1, 5], [1, 1]),
                    ([3, 3], [7, 5], [1, 1]),
                ]
            {
                let (Some(mh), Some(mw)) = (
                    AxisMap::new(grid[0], window[0], strides[0], padding),
                    AxisMap::new(grid[1], window[1], strides[1], padding),
                ) else {
                    assert_eq!(padding, Padding::Valid, "only 'VALID' refuses a window larger than the image");
                    continue;
                };
                let maps = [mh, mw];
                let (p, op) = (grid[0] * grid[1], maps[0].len_out * maps[1].len_out);
                let s = random(p * p, 7);
                let mut want = vec![0.0; op * op];
                for dh in 0..window[0] {
                    for dw in 0..window[1] {
                        let a = dense_map(&maps[0], &maps[1], dh, dw);
                        want.iter_mut().zip(sandwich(&a, &a, &s)).for_each(|(w, v)| *w += v);
                    }
                }
                let mut got = vec![f64::NAN; op * op];
                conv_full(&maps, &masks(&maps), &s, &mut got);
                let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
                assert!(close(&got, &want), "conv {padding:?} {grid:?} {window:?} {strides:?}");
                let diag: Vec<f64> = (0..p).map(|i| s[i * p + i]).collect();
                let mut got_diag = vec![f64::NAN; op];
                conv_diagonal::<f64, crate::float::Fused>(&maps, &masks(&maps), &diag, &mut got_diag);
                let want_diag: Vec<f64> = (0..op).map(|i| want[i * op + i]).collect();
                assert!(close(&got_diag, &want_diag), "diagonal {padding:?} {grid:?}");
                // pooling: (sum_d A_d) S (sum_d A_d)^T / size^2
                let mut pool = vec![vec![0.0; p]; op];
                for dh in 0..window[0] {
                    for dw in 0..window[1] {
                        for (r, row) in dense_map(&maps[0], &maps[1], dh, dw).into_iter().enumerate() {
                            pool[r].iter_mut().zip(row).for_each(|(a, b)| *a += b);
                        }
                    }
                }
                let size = (window[0] * window[1]) as f64;
                let want_pool: Vec<f64> = sandwich(&pool, &pool, &s).iter().map(|v| v / (size * size)).collect();
                let (mut tmp, mut got_pool) = (vec![f64::NAN; p * op], vec![f64::NAN; op * op]);
                pool_full(&maps, false, &s, &mut tmp, &mut got_pool);
                assert!(close(&got_pool, &want_pool), "pool {padding:?} {grid:?}");
            }
        }
    }
}
