//! Cooperative cancellation of long core calls (Ctrl-C in Python, interpreter shutdown).
//!
//! The binding runs each call under a `Token` (`with_token`) and cancels it when Python's signal
//! handler raises; the core checks the token between units of work (tiles, layers, blocks,
//! training steps) and returns `Error::Interrupted`, dropping whatever it had computed, so a
//! caller never sees a half-written result. A token travels to rayon workers by value: code
//! that fans out takes `current()` on the calling thread and moves it into its closures.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Error;

/// Set when the process is shutting down: every running and future call stops.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct State {
    cancelled: AtomicBool,
    /// Why, when the cause must be handed back to the caller (a Python exception raised inside a
    /// user's activation function).
    reason: Mutex<Option<Box<dyn Any + Send>>>,
}

/// A cancellation flag shared by one call and the workers it uses.
#[derive(Clone, Default)]
pub struct Token(Arc<State>);

impl Token {
    pub fn new() -> Self {
        Token::default()
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// Cancels and records why; the first reason recorded wins.
    pub fn cancel_with(&self, reason: Box<dyn Any + Send>) {
        let mut slot = self.0.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(reason);
        self.cancel();
    }

    /// The reason given to `cancel_with`, if any (taken out).
    pub fn take_reason(&self) -> Option<Box<dyn Any + Send>> {
        self.0.reason.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed) || SHUTDOWN.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once cancelled.
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        if self.is_cancelled() { Err(Error::Interrupted) } else { Ok(()) }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Token>> = const { RefCell::new(None) };
}

/// The token of the call running on this thread (a fresh, never-cancelled one outside calls).
pub fn current() -> Token {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_default()
}

/// `current().check()`.
pub fn check() -> Result<(), Error> {
    CURRENT.with(|c| c.borrow().as_ref().map_or(Ok(()), Token::check))
}

/// Runs `f` on this thread with `token` as the current token.
pub fn with_token<R>(token: &Token, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Token>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(token.clone())));
    f()
}

/// Stops every running call and refuses new work: the process is exiting.
pub fn shut_down() {
    SHUTDOWN.store(true, Ordering::Relaxed);
}

/// Whether `shut_down` was called.
pub fn is_shut_down() -> bool {
    SHUTDOWN.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_reach_the_current_thread_only_inside_with_token() {
        let token = Token::new();
        assert!(check().is_ok());
        with_token(&token, || {
            assert!(check().is_ok());
            current().cancel();
            assert_eq!(check(), Err(Error::Interrupted));
        });
        assert!(check().is_ok(), "outside the call the thread has no token");
        assert!(token.is_cancelled());
        token.cancel_with(Box::new(7u32));
        token.cancel_with(Box::new(8u32));
        assert_eq!(token.take_reason().and_then(|r| r.downcast::<u32>().ok()).map(|b| *b), Some(7));
    }
}
