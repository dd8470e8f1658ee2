//! Output allocation that fails with an error instead of aborting the process: a request is
//! checked against physical memory before anything is allocated, then allocated zeroed
//! (calloc: fresh pages, no memset pass over gigabytes) in transparent huge pages where the
//! system allows them: a 4000 x 4000 output then takes 64 page faults instead of 31 250, and
//! the mirrored (column-wise) writes of symmetric kernels stop missing the TLB.

use crate::error::Error;
use crate::float::Real;

/// Total physical memory in bytes (Linux: /proc/meminfo), if known.
pub fn physical_memory() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The process's address-space limit (`ulimit -v`, RLIMIT_AS) in bytes, if one is set: past
/// it an allocation fails even with free memory, and a failed allocation aborts a Rust process.
fn address_space_limit() -> Option<u128> {
    #[cfg(target_os = "linux")]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct it is given.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
        (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u128)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// The most a request may allocate: physical memory, or the address-space limit if lower.
fn allowance() -> Option<u128> {
    match (physical_memory(), address_space_limit()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Fails unless `bytes` (everything a request will allocate) fits in memory.
pub fn check_fits(bytes: u128, what: &str) -> Result<(), Error> {
    check_fits_advising(bytes, what, "")
}

/// `check_fits` with advice appended to the error (what to do instead).
pub fn check_fits_advising(bytes: u128, what: &str, advice: &str) -> Result<(), Error> {
    if let Some(total) = allowance().filter(|&total| bytes > total) {
        let advice = if advice.is_empty() { String::new() } else { format!("; {advice}") };
        return Err(Error::OutOfMemory {
            message: format!(
                "{what} needs {} but this process can use at most {:.1} GiB{advice}",
                describe_bytes(bytes),
                total as f64 / 2f64.powi(30)
            ),
        });
    }
    Ok(())
}

fn describe_bytes(bytes: u128) -> String {
    let gib = bytes as f64 / 2f64.powi(30);
    if gib < 1e6 { format!("{gib:.1} GiB") } else { format!("{gib:.2e} GiB") }
}

/// The memory of a request, planned before any of it is allocated: a sum of arrays of
/// `count` elements of `size` bytes, in u128 with saturation so that absurd sizes (a depth of
/// 2^62) are refused rather than overflowing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plan {
    bytes: u128,
}

impl Plan {
    pub fn new() -> Self {
        Plan { bytes: 0 }
    }
    /// Adds `count` elements of `size` bytes (`count` as a product of user sizes).
    pub fn add(mut self, count: impl IntoIterator<Item = usize>, size: usize) -> Self {
        let elements = count.into_iter().fold(1u128, |acc, c| acc.saturating_mul(c as u128));
        self.bytes = self.bytes.saturating_add(elements.saturating_mul(size as u128));
        self
    }
    /// Both plans' memory.
    pub fn plus(mut self, other: Plan) -> Self {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self
    }
    /// OutOfMemory naming `what` unless the plan fits.
    pub fn check(&self, what: &str) -> Result<(), Error> {
        check_fits(self.bytes, what)
    }
    /// `check`, advising what to do instead (e.g. to compute in blocks of rows).
    pub fn check_advising(&self, what: &str, advice: &str) -> Result<(), Error> {
        check_fits_advising(self.bytes, what, advice)
    }
}

/// A zero-filled vector of `len` elements, or OutOfMemory.
pub fn zeroed<T: Real>(len: usize, what: &str) -> Result<Vec<T>, Error> {
    let oom = || Error::OutOfMemory { message: format!("cannot allocate {what} ({len} values)") };
    if len == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| oom())?;
    // SAFETY: the layout has non-zero size; all-zero bits are 0.0 for f32 and f64, so the
    // memory is initialised; ownership passes to the Vec with the allocation's own layout.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        if ptr.is_null() {
            return Err(oom());
        }
        advise_huge_pages(ptr as *mut u8, layout.size());
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}

/// Asks Linux to back the 2 MiB-aligned interior of a fresh, untouched allocation with huge
/// pages (THP in "madvise" mode). Advisory: failure changes nothing but speed.
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize).next_multiple_of(HUGE);
        let end = (ptr as usize + bytes) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside an allocation we own; madvise does not touch data.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes);
}

/// A raw pointer shared by rayon workers that each write a disjoint part of the buffer behind it
/// (the callers document which).
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(*mut T);

// SAFETY: only used for disjoint writes, see the users.
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub(crate) fn new(ptr: *mut T) -> Self {
        SharedMut(ptr)
    }
    /// (A method, so that closures capture the whole `SharedMut`, not its raw pointer field.)
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}
