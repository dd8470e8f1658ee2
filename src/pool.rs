//! The thread pool the core's parallel loops run on.
//!
//! rayon's global pool cannot be rebuilt, and after `fork()` its worker threads do not exist in
//! the child: the first parallel loop there would wait forever. The core's pool is therefore
//! owned here and keyed by process id; a forked child builds its own on first use (the parent's,
//! whose threads the child does not have, is leaked rather than joined).

use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

static POOL: Mutex<Option<(u32, Arc<ThreadPool>)>> = Mutex::new(None);

/// This process's pool (RAYON_NUM_THREADS threads, or one per core).
fn pool() -> Arc<ThreadPool> {
    let pid = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some((owner, pool)) if *owner == pid => pool.clone(),
        _ => {
            let pool = Arc::new(
                ThreadPoolBuilder::new()
                    .thread_name(|i| format!("ntkfast-{i}"))
                    .build()
                    .expect("a thread pool (threads can be spawned)"),
            );
            if let Some(stale) = slot.replace((pid, pool.clone())) {
                // a fork's copy of the parent's pool: its threads are not in this process
                std::mem::forget(stale);
            }
            pool
        }
    }
}

/// Runs `f` inside the pool: its parallel loops (and `rayon::current_num_threads`) use it. The
/// caller's cancellation token (`crate::interrupt`) goes with it.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let token = crate::interrupt::current();
    pool().install(move || crate::interrupt::with_token(&token, f))
}

/// The number of threads parallel loops run on.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

#[cfg(test)]
mod tests {
    #[test]
    fn install_runs_on_the_pool() {
        let n = super::install(rayon::current_num_threads);
        assert_eq!(n, super::num_threads());
        assert!(super::install(|| rayon::current_thread_index().is_some()));
    }
}
