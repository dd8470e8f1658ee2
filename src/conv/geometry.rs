//! Where a window (a convolution's filter, a pooling window) reads: per spatial axis, which input
//! position each output position and window offset lands on, with neural-tangents' (XLA's)
//! padding rules.
//!
//! An axis of length L, window k, stride s has L_out = (L - k) / s + 1 outputs with `VALID`
//! padding and ceil(L / s) with `SAME` and `CIRCULAR`, which pad (L_out - 1) s + k - L positions
//! (the smaller half before). Output o and offset d read input o s + d - pad_before: a zero
//! outside [0, L) with `SAME`, wrapped around (mod L) with `CIRCULAR`.

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Valid,
    Same,
    Circular,
}

impl Padding {
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name.to_ascii_uppercase().as_str() {
            "VALID" => Ok(Padding::Valid),
            "SAME" => Ok(Padding::Same),
            "CIRCULAR" => Ok(Padding::Circular),
            _ => Err(Error::invalid("padding", format!("must be 'VALID', 'SAME' or 'CIRCULAR', got {name:?}"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Padding::Valid => "VALID",
            Padding::Same => "SAME",
            Padding::Circular => "CIRCULAR",
        }
    }
}

/// A window over (height, width): its shape, strides and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub shape: [usize; 2],
    pub strides: [usize; 2],
    pub padding: Padding,
}

impl Window {
    /// A window; `name` is the argument its shape came from (for errors).
    pub fn new(shape: [usize; 2], strides: [usize; 2], padding: Padding, name: &'static str) -> Result<Self, Error> {
        if shape.contains(&0) {
            return Err(Error::invalid(name, format!("sizes must be positive integers, got {shape:?}")));
        }
        if strides.contains(&0) {
            return Err(Error::invalid("strides", format!("must be positive integers, got {strides:?}")));
        }
        Ok(Window { shape, strides, padding })
    }

    /// The number of positions of the window.
    pub fn size(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    /// "(3, 3), strides=(1, 1), padding='SAME'" (for the layer's name in errors).
    pub fn describe(&self) -> String {
        format!(
            "({}, {}), strides=({}, {}), padding='{}'",
            self.shape[0],
            self.shape[1],
            self.strides[0],
            self.strides[1],
            self.padding.name()
        )
    }

    /// Both axes' maps for inputs of (height, width); an error (for `layer`) when the window is
    /// larger than a `VALID` input.
    pub fn maps(&self, input: [usize; 2], layer: &dyn Fn() -> String) -> Result<[AxisMap; 2], Error> {
        let axis = |a: usize| AxisMap::new(input[a], self.shape[a], self.strides[a], self.padding);
        match (axis(0), axis(1)) {
            (Some(h), Some(w)) => Ok([h, w]),
            _ => Err(Error::invalid(
                "layers",
                format!(
                    "{}: its window {:?} is larger than its input's positions {:?} with padding 'VALID'",
                    layer(),
                    self.shape,
                    input
                ),
            )),
        }
    }
}

/// Output positions o0, o0 + 1, ... (len of them) reading inputs i0, i0 + stride, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub o0: usize,
    pub i0: usize,
    pub len: usize,
}

/// One axis of a window: for each offset, the runs of output positions that read inside the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxisMap {
    pub len_in: usize,
    pub len_out: usize,
    pub stride: usize,
    /// `runs[d]`: the runs of offset d.
    pub runs: Vec<Vec<Run>>,
    /// For each output position, how many offsets read inside the input (the window's size but
    /// at `SAME` edges).
    pub counts: Vec<usize>,
}

impl AxisMap {
    /// None when a `VALID` window does not fit in the input.
    pub fn new(len_in: usize, window: usize, stride: usize, padding: Padding) -> Option<Self> {
        let (len_out, before) = match padding {
            Padding::Valid => {
                if window > len_in {
                    return None;
                }
                ((len_in - window) / stride + 1, 0)
            }
            Padding::Same | Padding::Circular => {
                let len_out = len_in.div_ceil(stride);
                let total = ((len_out - 1) * stride + window).saturating_sub(len_in);
                (len_out, total / 2)
            }
        };
        let mut counts = vec![0; len_out];
        let runs = (0..window)
            .map(|d| {
                let mut runs: Vec<Run> = Vec::new();
                for o in 0..len_out {
                    let at = (o * stride + d) as isize - before as isize;
                    let i = match padding {
                        Padding::Circular => Some(at.rem_euclid(len_in as isize) as usize),
                        _ => (0..len_in as isize).contains(&at).then_some(at as usize),
                    };
                    let Some(i) = i else { continue };
                    counts[o] += 1;
                    match runs.last_mut() {
                        Some(r) if r.o0 + r.len == o && r.i0 + r.len * stride == i => r.len += 1,
                        _ => runs.push(Run { o0: o, i0: i, len: 1 }),
                    }
                }
                runs
            })
            .collect();
        Some(AxisMap { len_in, len_out, stride, runs, counts })
    }

    /// (output, input) position pairs of offset `d`.
    #[inline(always)]
    pub fn pairs(&self, d: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.runs[d].iter().flat_map(move |r| (0..r.len).map(move |k| (r.o0 + k, r.i0 + k * self.stride)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input read by output o at offset d, straight from the rule in the module's doc.
    fn read(len_in: usize, window: usize, stride: usize, padding: Padding, o: usize, d: usize) -> Option<usize> {
        let len_out = if padding == Padding::Valid { (len_in - window) / stride + 1 } else { len_in.div_ceil(stride) };
        let pad = if padding == Padding::Valid { 0 } else { ((len_out - 1) * stride + window).saturating_sub(len_in) };
        let at = (o * stride + d) as i64 - (pad / 2) as i64;
        match padding {
            Padding::Circular => Some(at.rem_euclid(len_in as i64) as usize),
            _ => (at >= 0 && at < len_in as i64).then_some(at as usize),
        }
    }

    #[test]
    fn runs_cover_exactly_the_positions_read() {
        for padding in [Padding::Valid, Padding::Same, Padding::Circular] {
            for len_in in 1..9 {
                for window in 1..6 {
                    for stride in 1..4 {
                        let Some(map) = AxisMap::new(len_in, window, stride, padding) else {
                            assert!(padding == Padding::Valid && window > len_in);
                            continue;
                        };
                        for d in 0..window {
                            let got: Vec<(usize, usize)> = map.pairs(d).collect();
                            let want: Vec<(usize, usize)> = (0..map.len_out)
                                .filter_map(|o| read(len_in, window, stride, padding, o, d).map(|i| (o, i)))
                                .collect();
                            assert_eq!(got, want, "{padding:?} L={len_in} k={window} s={stride} d={d}");
                        }
                    }
                }
            }
        }
        // SAME: 8 positions, window 3: one zero pad each side
        let map = AxisMap::new(8, 3, 1, Padding::Same).unwrap();
        assert_eq!(map.counts, [2, 3, 3, 3, 3, 3, 3, 2]);
        assert_eq!(AxisMap::new(7, 2, 2, Padding::Same).unwrap().len_out, 4);
    }
}
