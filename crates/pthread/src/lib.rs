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

mod sys;

use shm::InitCtx;
use shm::lock::{Acquired, RawLock};
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

/// The `pthread_mutex_t` as it lies in the region.
#[repr(C)]
pub struct MutexState {
    m: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a process-shared pthread mutex is designed to be used
// concurrently from any thread of any process through its address.
unsafe impl Sync for MutexState {}

impl MutexState {
    fn ptr(&self) -> *mut libc::pthread_mutex_t {
        self.m.get()
    }
}

impl std::fmt::Debug for MutexState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexState").finish_non_exhaustive()
    }
}

fn init(state: *mut MutexState, robust: bool) -> Result<(), PthreadError> {
    let mut attr = sys::Attr::new().map_err(|(op, rc)| PthreadError::from_rc(op, rc))?;
    attr.set_process_shared()
        .map_err(|(op, rc)| PthreadError::from_rc(op, rc))?;
    if robust {
        attr.set_robust()
            .map_err(|(op, rc)| PthreadError::from_rc(op, rc))?;
    }
    // SAFETY: `state` is the caller's zeroed, never-moving storage (the
    // RawLock::init contract); UnsafeCell<T> has T's layout.
    unsafe { sys::mutex_init(state.cast::<libc::pthread_mutex_t>(), &mut attr) }
        .map_err(|rc| PthreadError::from_rc("pthread_mutex_init", rc))
    // `attr` is destroyed here, whatever happened above.
}

/// After `EOWNERDEAD`: make the mutex consistent and report the death.
fn recover(state: &MutexState) -> Result<Acquired, PthreadError> {
    match sys::consistent(state.ptr()) {
        0 => Ok(Acquired::PreviousOwnerDied { owner: None }),
        rc => Err(PthreadError::from_rc("pthread_mutex_consistent", rc)),
    }
}

macro_rules! pthread_lock {
    ($ty:ident, $name:literal, $robust:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $ty;

        // SAFETY: glibc's pthread mutex provides mutual exclusion across
        // every process mapping it (PTHREAD_PROCESS_SHARED), with acquire
        // semantics on lock and release semantics on unlock.
        unsafe impl RawLock for $ty {
            type State = MutexState;
            type Error = PthreadError;
            const NAME: &'static str = $name;

            /// `pthread_mutex_init` in place with `PTHREAD_PROCESS_SHARED`.
            unsafe fn init(state: *mut MutexState, _ctx: &InitCtx<'_>) -> Result<(), PthreadError> {
                init(state, $robust)
            }

            fn attach(_state: &MutexState) -> Result<Self, PthreadError> {
                Ok($ty)
            }

            /// `pthread_mutex_lock`; `EOWNERDEAD` → `pthread_mutex_consistent`.
            #[inline]
            fn lock(&self, state: &MutexState) -> Result<Acquired, PthreadError> {
                match sys::lock(state.ptr()) {
                    0 => Ok(Acquired::Clean),
                    libc::EOWNERDEAD => recover(state),
                    rc => Err(PthreadError::from_rc("pthread_mutex_lock", rc)),
                }
            }

            /// `pthread_mutex_trylock`; `EBUSY` → `None`.
            fn try_lock(&self, state: &MutexState) -> Result<Option<Acquired>, PthreadError> {
                match sys::try_lock(state.ptr()) {
                    0 => Ok(Some(Acquired::Clean)),
                    libc::EBUSY => Ok(None),
                    libc::EOWNERDEAD => recover(state).map(Some),
                    rc => Err(PthreadError::from_rc("pthread_mutex_trylock", rc)),
                }
            }

            /// `pthread_mutex_timedlock`; `ETIMEDOUT` → `None`.
            fn lock_timeout(
                &self,
                state: &MutexState,
                timeout: Duration,
            ) -> Result<Option<Acquired>, PthreadError> {
                let deadline = std::time::Instant::now() + timeout;
                loop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    match sys::timed_lock(state.ptr(), &sys::realtime_after(left)) {
                        0 => return Ok(Some(Acquired::Clean)),
                        libc::EOWNERDEAD => return recover(state).map(Some),
                        libc::ETIMEDOUT if left.is_zero() => return Ok(None),
                        // The wall clock moved: recompute from the monotonic deadline.
                        libc::ETIMEDOUT | libc::EINTR => continue,
                        rc => return Err(PthreadError::from_rc("pthread_mutex_timedlock", rc)),
                    }
                }
            }

            /// `pthread_mutex_unlock`.
            #[inline]
            unsafe fn unlock(&self, state: &MutexState) {
                let rc = sys::unlock(state.ptr());
                debug_assert_eq!(rc, 0, "pthread_mutex_unlock failed");
            }

            /// `pthread_mutex_destroy`.
            fn destroy(state: &MutexState, _ctx: &InitCtx<'_>) {
                let _ = sys::destroy(state.ptr());
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
