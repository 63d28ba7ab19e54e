//! # A process-shared pthread mutex inside a shmlab region
//!
//! `pthread_mutex_init` with `PTHREAD_PROCESS_SHARED` (and, for
//! [`RobustMutex`], `PTHREAD_MUTEX_ROBUST`) on a `pthread_mutex_t` that lives
//! in shared memory: glibc's own answer to "a lock for a shared region".
//! The mutex is initialised **in place** (never built on the stack and
//! copied: a futex-based mutex's identity is its address), and the attribute
//! object is destroyed on every path.
//!
//! Robustness: when a holder dies, glibc (through the kernel's robust list)
//! marks the mutex and the next `pthread_mutex_lock` returns `EOWNERDEAD`.
//! [`RobustMutex`] then calls `pthread_mutex_consistent` and reports
//! [`Acquired::PreviousOwnerDied`]: the lock is usable again, but the data it
//! guarded may be half-updated. [`PlainMutex`] is the same without
//! robustness, so the benchmarks can show what robustness costs.
//!
//! The kernel learns of the death by walking the dead thread's robust list
//! (registered by glibc with `set_robust_list`) as the thread exits, and it
//! can only mark a mutex that is still mapped then: a holder that unmaps the
//! region and then dies leaves even a robust mutex wedged.

mod sys;

use shm::InitCtx;
use shm::lock::{Acquired, RawLock, RawLockTimed};
use std::cell::UnsafeCell;
use std::time::Duration;

/// pthread's returned error numbers, typed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PthreadError {
    /// `ENOTRECOVERABLE`: an owner died and the next one unlocked without
    /// `pthread_mutex_consistent`; the mutex is permanently unusable.
    #[error(
        "the mutex is not recoverable (a previous owner died and it was never made consistent)"
    )]
    NotRecoverable,
    /// `EDEADLK`: this thread already holds it.
    #[error("this thread already holds the mutex (EDEADLK)")]
    Deadlock,
    /// Any other error number from `op`.
    #[error("{op} failed: {source}")]
    Os {
        /// The call.
        op: &'static str,
        /// The error it returned.
        source: std::io::Error,
    },
}

impl PthreadError {
    fn from_rc(op: &'static str, rc: libc::c_int) -> Self {
        match rc {
            libc::ENOTRECOVERABLE => PthreadError::NotRecoverable,
            libc::EDEADLK => PthreadError::Deadlock,
            _ => PthreadError::Os {
                op,
                source: std::io::Error::from_raw_os_error(rc),
            },
        }
    }
}

/// The `pthread_mutex_t` as it lies in the region: glibc's 40 bytes,
/// initialised in place and never moved, because the mutex's identity (its
/// futex, and the robust list entry that points at it) is its address.
#[repr(C)]
pub struct MutexState {
    m: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a process-shared pthread mutex is designed to be used
// concurrently from any thread of any process through its address; every
// access goes through glibc's pthread_mutex_* calls.
unsafe impl Sync for MutexState {}

impl std::fmt::Debug for MutexState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexState").finish_non_exhaustive()
    }
}

/// `pthread_mutexattr_init` + `setpshared` (+ `setrobust`), then
/// `pthread_mutex_init` on the state where it lies — the attribute object is
/// destroyed when `attr` drops, on the error paths too.
fn init(state: *mut MutexState, robust: bool) -> Result<(), PthreadError> {
    let os = |(op, rc)| PthreadError::from_rc(op, rc);
    let mut attr = sys::Attr::new().map_err(os)?;
    attr.set_process_shared().map_err(os)?;
    if robust {
        attr.set_robust().map_err(os)?;
    }
    // SAFETY: `state` is the caller's zeroed, aligned, never-moving storage
    // that nobody uses yet (the RawLock::init contract), and
    // `UnsafeCell<pthread_mutex_t>` has `pthread_mutex_t`'s layout, so the
    // cast pointer addresses the mutex itself: it is initialised in place.
    unsafe { sys::mutex_init(UnsafeCell::raw_get(&raw mut (*state).m), &mut attr) }
        .map_err(|rc| PthreadError::from_rc("pthread_mutex_init", rc))
}

/// `pthread_mutex_consistent` after `EOWNERDEAD` — we hold the mutex then,
/// and must mark it consistent or its next unlock makes it unrecoverable.
/// If that fails, the mutex is released again so that the error does not
/// leave it held by a caller that has no guard.
#[cold]
fn recover(state: &MutexState) -> Result<Acquired, PthreadError> {
    match sys::consistent(&state.m) {
        0 => Ok(Acquired::PreviousOwnerDied { owner: None }),
        rc => {
            let _ = sys::unlock(&state.m);
            Err(PthreadError::from_rc("pthread_mutex_consistent", rc))
        }
    }
}

macro_rules! pthread_lock {
    ($ty:ident, $name:literal, $robust:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $ty;

        // SAFETY: glibc's pthread mutex provides mutual exclusion across
        // every process mapping it (PTHREAD_PROCESS_SHARED, set by `init`),
        // with acquire semantics on lock and release semantics on unlock.
        unsafe impl RawLock for $ty {
            type State = MutexState;
            type Error = PthreadError;
            const NAME: &'static str = $name;

            /// `pthread_mutex_init(m, attr)` in place, with
            /// `PTHREAD_PROCESS_SHARED` (and `PTHREAD_MUTEX_ROBUST` for the
            /// robust kind) — in place because a mutex copied after init is
            /// a different, undefined mutex.
            unsafe fn init(state: *mut MutexState, _ctx: &InitCtx<'_>) -> Result<(), PthreadError> {
                init(state, $robust)
            }

            /// Nothing to open — the mutex is entirely inside the region,
            /// so the handle is empty.
            unsafe fn attach(_state: &MutexState) -> Result<Self, PthreadError> {
                Ok($ty)
            }

            /// `pthread_mutex_lock(m)`; `EOWNERDEAD` →
            /// `pthread_mutex_consistent` and
            /// [`Acquired::PreviousOwnerDied`] — because the lock is usable
            /// again but the data it guarded may be half-updated.
            #[inline]
            fn lock(&self, state: &MutexState) -> Result<Acquired, PthreadError> {
                match sys::lock(&state.m) {
                    0 => Ok(Acquired::Clean),
                    libc::EOWNERDEAD => recover(state),
                    rc => Err(PthreadError::from_rc("pthread_mutex_lock", rc)),
                }
            }

            /// `pthread_mutex_trylock(m)`; `EBUSY` → `None` — because a busy
            /// mutex is an answer, not an error.
            fn try_lock(&self, state: &MutexState) -> Result<Option<Acquired>, PthreadError> {
                match sys::try_lock(&state.m) {
                    0 => Ok(Some(Acquired::Clean)),
                    libc::EBUSY => Ok(None),
                    libc::EOWNERDEAD => recover(state).map(Some),
                    rc => Err(PthreadError::from_rc("pthread_mutex_trylock", rc)),
                }
            }

            /// `pthread_mutex_unlock(m)` — by the locking thread, which the
            /// `!Send` guard ensures, because glibc tracks the owner.
            #[inline]
            unsafe fn unlock(&self, state: &MutexState) {
                let rc = sys::unlock(&state.m);
                debug_assert_eq!(rc, 0, "pthread_mutex_unlock failed");
            }

            /// `pthread_mutex_destroy(m)` — by the creator, after every
            /// other user is done, because glibc may refuse (`EBUSY`) a
            /// mutex still held, which is then simply unmapped.
            unsafe fn destroy(state: &MutexState, _ctx: &InitCtx<'_>) {
                // SAFETY: our caller guarantees (RawLock::destroy) that
                // nobody uses the mutex again.
                let _ = unsafe { sys::destroy(&state.m) };
            }

            /// glibc's owner field (`__data.__owner`): the tid of the
            /// current holder, or of a holder that died with it (a plain
            /// mutex stays held by the dead tid; a robust one is marked
            /// for recovery). `None` when free.
            fn last_holder(&self, state: &MutexState) -> Option<i32> {
                Some(sys::owner_tid(&state.m)).filter(|&t| t > 0)
            }
        }

        impl RawLockTimed for $ty {
            /// `pthread_mutex_clocklock(m, CLOCK_MONOTONIC, deadline)`;
            /// `ETIMEDOUT` → `None` — monotonic, because a wall-clock
            /// deadline moves when the clock is set.
            fn lock_timeout(
                &self,
                state: &MutexState,
                timeout: Duration,
            ) -> Result<Option<Acquired>, PthreadError> {
                let deadline = shm::time::monotonic_deadline(timeout);
                loop {
                    match sys::clock_lock(&state.m, &deadline) {
                        0 => return Ok(Some(Acquired::Clean)),
                        libc::ETIMEDOUT => return Ok(None),
                        libc::EOWNERDEAD => return recover(state).map(Some),
                        // Not expected from glibc; same absolute deadline.
                        libc::EINTR => continue,
                        rc => return Err(PthreadError::from_rc("pthread_mutex_clocklock", rc)),
                    }
                }
            }
        }
    };
}

pthread_lock!(
    RobustMutex,
    "pthread",
    true,
    "glibc's `pthread_mutex_t`, process-shared and robust: the next locker learns that a holder died."
);
pthread_lock!(
    PlainMutex,
    "pthread-plain",
    false,
    "glibc's `pthread_mutex_t`, process-shared but not robust (a dead holder wedges it): the baseline that shows what robustness costs."
);
