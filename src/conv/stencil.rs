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
use crate::float::Real;

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
pub fn conv_diagonal<T: Real>(maps: &[AxisMap; 2], masks: &[T], input: &[T], out: &mut [T]) {
    let [mh, mw] = maps;
    let (w, ow) = (mw.len_in, mw.len_out);
    out[..mh.len_out * ow].fill(T::ZERO);
    for dh in 0..mh.runs.len() {
        for dw in 0..mw.runs.len() {
            if !masks.is_empty() {
                // one masked add over all the positions of the rows this offset reads
                let (Some(rows), Some(cols)) = (mh.runs[dh].first(), mw.runs[dw].first()) else { continue };
                let p = mh.len_in * w;
                let (first, span) = (rows.o0 * w, rows.len * w);
                let start = (rows.i0 * w + cols.i0) as isize - cols.o0 as isize;
                let lo = (-start).max(0) as usize;
                let hi = ((p as isize - start).max(0) as usize).min(span);
                let src = &input[(start + lo as isize) as usize..][..hi - lo];
                let mask = &masks[dw * p + first..][lo..hi];
                for ((d, &s), &m) in out[first..][lo..hi].iter_mut().zip(src).zip(mask) {
                    *d += s * m;
                }
                continue;
            }
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
                [([5, 4], [3, 2], [1, 1]), ([6, 5], [2, 3], [2, 1]), ([1, 7], [1, 3], [1, 2])]
            {
                let maps = [
                    AxisMap::new(grid[0], window[0], strides[0], padding).unwrap(),
                    AxisMap::new(grid[1], window[1], strides[1], padding).unwrap(),
                ];
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
                conv_diagonal(&maps, &masks(&maps), &diag, &mut got_diag);
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
