//! Running core calls from Python: without the GIL, in the core's thread pool, stoppable by
//! Ctrl-C, never under a finalising interpreter, with core errors (and, defensively, panics)
//! mapped to Python exceptions once, here.

use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyNotImplementedError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::RwLock;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use crate::error::Error;
use crate::{interrupt, pool};

pub(super) fn to_py_err(err: Error) -> PyErr {
    match err {
        Error::OutOfMemory { .. } => PyMemoryError::new_err(err.to_string()),
        Error::InvalidArgument { .. } | Error::Overflow { .. } => PyValueError::new_err(err.to_string()),
        Error::Unsupported { .. } => PyNotImplementedError::new_err(err.to_string()),
        Error::Interrupted => PyKeyboardInterrupt::new_err("the ntkfast core call was interrupted"),
    }
}

/// How often a core call running for the main thread looks for Ctrl-C (Python runs signal
/// handlers only on the main thread, and only when it holds the GIL).
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// Whether this is the process's main thread, where Python handles signals (tid == pid).
fn on_main_thread() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls without arguments.
    unsafe {
        libc::gettid() == libc::getpid()
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// A panic (a bug, never expected) as a RuntimeError instead of unwinding into the interpreter.
fn panic_error(panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    PyRuntimeError::new_err(format!("internal error in the ntkfast core (please report it): {what}"))
}

/// The outcome of a core call as a Python result: a Python exception that cancelled it (Ctrl-C,
/// or a KeyboardInterrupt/SystemExit raised in a user's activation function) wins.
fn core_result<R>(
    token: &interrupt::Token,
    signal: Option<PyErr>,
    outcome: std::thread::Result<Result<R, Error>>,
) -> PyResult<R> {
    if let Some(err) = signal {
        return Err(err);
    }
    let result = outcome.map_err(panic_error)?;
    if token.is_cancelled() {
        // whatever came back was cut short (the core may return early with partial work)
        return Err(match token.take_reason().map(|reason| reason.downcast::<PyErr>()) {
            Some(Ok(err)) => *err,
            _ => to_py_err(Error::Interrupted),
        });
    }
    result.map_err(to_py_err)
}

/// Work (in floating-point operations, roughly) below which a call runs without watching for
/// Ctrl-C: a few milliseconds, less than the cost of the helper thread that watching needs.
const INLINE_WORK: f64 = 1e7;

/// Runs `f` (about `work` floating-point operations) in the core's thread pool without the GIL,
/// under a cancellation token. For the main thread a call that is not small runs on a helper
/// thread while this one polls Python's signal handlers every `SIGNAL_POLL`: Ctrl-C cancels the
/// token, the core stops at its next check (a tile, a layer, a block), and the
/// KeyboardInterrupt is raised with nothing half-written returned.
pub(super) fn without_gil<R: Send>(
    py: Python<'_>,
    work: f64,
    f: impl FnOnce() -> Result<R, Error> + Send,
) -> PyResult<R> {
    run_on_core(py, work, || pool::install(f))
}

/// `without_gil` for `f` that enters the thread pool itself (`pool::install`), after taking what
/// must not be taken inside it: a rayon worker that waits in a parallel loop runs other queued
/// jobs, so a lock taken inside the pool could be wanted again by its own holder.
pub(super) fn run_on_core<R: Send>(
    py: Python<'_>,
    work: f64,
    f: impl FnOnce() -> Result<R, Error> + Send,
) -> PyResult<R> {
    if interrupt::is_shut_down() {
        // at exit: never leave the GIL again (a thread that would have to take it back while the
        // interpreter finalises is ended by CPython, which a Rust frame cannot survive)
        return Err(to_py_err(Error::Interrupted));
    }
    let running = Running::start();
    let token = interrupt::Token::new();
    let run = || catch_unwind(AssertUnwindSafe(|| interrupt::with_token(&token, f)));
    let (outcome, signal) = if work >= INLINE_WORK && on_main_thread() {
        py.detach(|| {
            std::thread::scope(|scope| {
                let (done, finished) = std::sync::mpsc::sync_channel(1);
                scope.spawn(move || done.send(run()));
                let mut signal = None;
                loop {
                    match finished.recv_timeout(SIGNAL_POLL) {
                        Ok(outcome) => return (outcome, signal),
                        Err(RecvTimeoutError::Timeout) if signal.is_none() => {
                            // (try_attach: never re-enter an interpreter that is shutting down)
                            if let Some(Err(err)) = Python::try_attach(|py| py.check_signals()) {
                                token.cancel();
                                signal = Some(err);
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            return (Err(Box::new("the core's thread ended without a result") as _), signal);
                        }
                    }
                }
            })
        })
    } else {
        (py.detach(run), None)
    };
    drop(running); // (the GIL is held again)
    core_result(&token, signal, outcome)
}

/// The core calls running without the GIL (until they hold it again), and the routines left
/// running in the background by an interrupted call: the interpreter must not finalise under
/// them (a thread taking the GIL back then is ended by CPython, which aborts through Rust
/// frames; OpenBLAS's exit handler would wait on the threads a routine uses).
static RUNNING: (std::sync::Mutex<usize>, std::sync::Condvar) = (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// One running call (counted while it lives).
pub(super) struct Running;

impl Running {
    fn start() -> Self {
        *RUNNING.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Running
    }

    /// Waits until no call runs, or `limit` has passed (a call stuck in a user's function).
    pub(super) fn wait_all(limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        let mut running = RUNNING.0.lock().unwrap_or_else(|e| e.into_inner());
        while *running > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            running = RUNNING.1.wait_timeout(running, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        *RUNNING.0.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        RUNNING.1.notify_all();
    }
}

/// `without_gil` for work that cannot check a token (a LAPACK routine): `f` owns its data, and on
/// Ctrl-C the caller raises at once while the routine finishes in the background and its result
/// is dropped.
pub(super) fn without_gil_detached<R: Send + 'static>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<R, Error> + Send + 'static,
) -> PyResult<R> {
    if !on_main_thread() {
        return without_gil(py, 0.0, f);
    }
    let token = interrupt::Token::new();
    let (done, finished) = std::sync::mpsc::sync_channel(1);
    let worker_token = token.clone();
    if interrupt::is_shut_down() {
        return Err(to_py_err(Error::Interrupted));
    }
    let running = Running::start();
    std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| interrupt::with_token(&worker_token, || pool::install(f))));
        let _ = done.send(outcome); // (the caller may have gone: interrupted)
        drop(running);
    });
    let caller_token = token.clone();
    let (outcome, signal) = py.detach(move || {
        loop {
            match finished.recv_timeout(SIGNAL_POLL) {
                Ok(outcome) => return (outcome, None),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(Err(err)) = Python::try_attach(|py| py.check_signals()) {
                        caller_token.cancel();
                        return (Ok(Err(Error::Interrupted)), Some(err));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return (Err(Box::new("the core's thread ended without a result") as _), None);
                }
            }
        }
    });
    core_result(&token, signal, outcome)
}

/// A lock's guard even if a panic poisoned it (the core never leaves a network half-updated: a
/// training step builds new parameters and swaps them in).
pub(super) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// `f` on the value behind `lock`, read-locked, in the core's pool without the GIL (the lock
/// is taken before entering the pool, see `run_on_core`).
pub(super) fn reading<T: Send + Sync, R: Send>(
    py: Python<'_>,
    lock: &RwLock<T>,
    work: f64,
    f: impl FnOnce(&T) -> Result<R, Error> + Send,
) -> PyResult<R> {
    run_on_core(py, work, || {
        let guard = read(lock);
        let value: &T = &guard;
        pool::install(|| f(value))
    })
}

/// `reading`, write-locked.
pub(super) fn writing<T: Send + Sync, R: Send>(
    py: Python<'_>,
    lock: &RwLock<T>,
    work: f64,
    f: impl FnOnce(&mut T) -> Result<R, Error> + Send,
) -> PyResult<R> {
    run_on_core(py, work, || {
        let mut guard = write(lock);
        let value: &mut T = &mut guard;
        pool::install(|| f(value))
    })
}

/// A quick look at the value behind `lock` (the GIL released while waiting for the lock: its
/// holder may need the GIL to finish, for a Python activation function).
pub(super) fn peek<T: Send + Sync, R: Send>(py: Python<'_>, lock: &RwLock<T>, f: impl FnOnce(&T) -> R + Send) -> R {
    py.detach(|| f(&read(lock)))
}
