//! # Monitors, readers–writer locks and barriers in shared memory (the course's week 6)
//!
//! Three kinds of primitive, each in two implementations, all living inside a
//! shmlab region and used by separate processes:
//!
//! - [`cond`]: a **monitor** — one mutex and two condition variables — as
//!   glibc's process-shared `pthread_mutex_t` + `pthread_cond_t`
//!   ([`PthreadMonitor`]; [`RobustMonitor`] with a robust mutex, for peers
//!   that may die holding it), and as shmlab's own futex mutex +
//!   sequence-number futex condition variables ([`FutexMonitor`]);
//! - [`rwlock`]: a readers–writer lock, as glibc's process-shared
//!   `pthread_rwlock_t` ([`PthreadRwLock`]) and as shmlab's own futex rwlock
//!   ([`FutexRwLock`]), each reader-preferring or writer-preferring;
//! - [`barrier`]: glibc's process-shared `pthread_barrier_t`
//!   ([`PthreadBarrier`]) and shmlab's futex barrier ([`FutexBarrier`]).
//!
//! Every wait is **bounded** (a timeout on `CLOCK_MONOTONIC`, or a futex
//! wait with a relative timeout), so a program that would sleep forever
//! because of a bug sees a timeout and can report it — except
//! `pthread_barrier_wait`, for which glibc has no timed form (see
//! [`PthreadBarrier`]).
//!
//! Every object is initialised **in place** with `unsafe fn init(*mut
//! Self)` from a payload's `Shared::init_in_place`, never built on the stack
//! and copied: a futex-based object's identity is its address. The futex
//! operations are the shared ones of `shm_futex` (never
//! `FUTEX_PRIVATE_FLAG`), so they work across processes.
//!
//! All unsafe calls are in the private `sys` module.

pub mod barrier;
pub mod cond;
pub mod rwlock;
mod sys;

pub use barrier::{Barrier, FutexBarrier, PthreadBarrier};
pub use cond::{FutexMonitor, Monitor, PthreadMonitor, RobustGuard, RobustMonitor, Wait};
pub use rwlock::{FutexRwLock, Policy, PthreadRwLock, RwLock};

/// A pthread call that returned an error number.
#[derive(Debug)]
pub struct PthreadError {
    /// The call.
    pub op: &'static str,
    /// Its error number.
    pub errno: i32,
}

impl std::fmt::Display for PthreadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: {}",
            self.op,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for PthreadError {}

impl From<(&'static str, i32)> for PthreadError {
    fn from((op, errno): (&'static str, i32)) -> Self {
        PthreadError { op, errno }
    }
}
