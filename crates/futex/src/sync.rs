//! The primitives the two locks are built from: atomics, futex wait/wake,
//! spin and yield hints, and the clock.
//!
//! They are gathered here, and the lock code names nothing else, so that a
//! model checker can replace this one module (`loom`'s atomics, a
//! condition-variable stand-in for the futex, a virtual clock) behind
//! `cfg(loom)` without touching the algorithms.

pub(crate) use std::hint::spin_loop;
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
pub(crate) use std::thread::yield_now;
pub(crate) use std::time::Instant;

use crate::FutexError;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout`. `Ok(false)` on
/// timeout; `Ok(true)` on a wake-up, a changed word or a signal.
#[inline]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Result<bool, FutexError> {
    crate::sys::futex_wait(word, expected, Some(timeout)).map_err(|source| FutexError::Os {
        op: "futex(FUTEX_WAIT)",
        source,
    })
}

/// Wakes one waiter sleeping on `word`, in any process.
#[inline]
pub(crate) fn wake_one(word: &AtomicU32) {
    crate::sys::futex_wake(word, 1);
}
