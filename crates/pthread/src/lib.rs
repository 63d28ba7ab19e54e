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
//! Both keep their mutex in a [`MutexCell`]: the mutex alone, with the
//! in-place init, the robust recovery and the fatal unlock, for a crate
//! that keeps a mutex beside other pthread objects in shared memory (the
//! monitor crate's condition variables wait on one). It is the one binding
//! of `pthread_mutex_*` in the workspace.
//!
//! The kernel learns of the death by walking the dead thread's robust list
//! (registered by glibc with `set_robust_list`) as the thread exits, and it
//! can only mark a mutex that is still mapped then: a holder that unmaps the
//! region and then dies leaves even a robust mutex wedged.
//!
//! ## The robust list and unmapping
//!
//! glibc links every robust mutex a thread holds into that thread's robust
//! list **through the mutex's own memory**, and rewrites neighbouring
//! entries whenever the thread locks or unlocks another robust mutex. A
//! held robust mutex whose mapping goes away therefore leaves glibc writing
//! pointers into whatever is mapped at that address next. Three rules keep
//! that from happening, whatever safe code does:
//!
//! - **A failed unlock is fatal.** `pthread_mutex_unlock` failing means the
//!   mutex is not in the state the guard proves (destroyed or overwritten
//!   while held, or not held by this thread); it may still be on this
//!   thread's robust list. The process aborts with one line on stderr
//!   rather than panicking: a panic can be caught (`catch_unwind`, a
//!   thread's `join`), after which the region would be dropped and
//!   unmapped with the mutex still listed, and a panic during unwinding
//!   aborts anyway, without the message.
//! - **A held mutex is never destroyed.** glibc's `pthread_mutex_destroy`
//!   of a robust mutex does not check whether it is held; it just makes
//!   every later call fail with `EINVAL` — the holder's unlock included,
//!   which then leaves the mutex on its robust list. [`RawLock::destroy`]
//!   here first takes the mutex with `pthread_mutex_trylock`: `EBUSY` (a
//!   peer still holds it) leaves it undestroyed and usable (the object is
//!   being unlinked anyway); `EOWNERDEAD` makes it consistent, then unlocks
//!   and destroys; a free mutex is unlocked again and destroyed.
//! - **No unmap while a thread of this process holds it.** Every region
//!   handle calls [`RawLock::before_unmap`] before it unmaps (see
//!   `shm::Shared::before_unmap`). [`RobustMutex`]'s reads the futex word:
//!   if its tid bits name a live thread of this process (a forgotten or
//!   leaked guard, or the lock held through another handle to the same
//!   region), it aborts with a message, since it cannot unlock on another
//!   thread's behalf and returning would be unsound. The check may refuse
//!   more than it must (a thread holding the mutex through *another*
//!   mapping would be safe), and a peer that forges one of our tids into
//!   the word can make us abort (a denial of service, which a peer able to
//!   write the region can cause anyway by holding the lock) — never the
//!   other way round.
//!
//! The fast path (lock, unlock) makes no system call more than before: only
//! the unlock's return value is now checked.

mod cell;
mod inspect;
mod sys;

pub use cell::MutexCell;

use shm::InitCtx;
use shm::lock::{Acquired, RawLock, RawLockTimed};
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

/// The `pthread_mutex_t` as it lies in the region: glibc's 40 bytes (a
/// [`MutexCell`]), initialised in place and never moved, because the
/// mutex's identity (its futex, and the robust list entry that points at
/// it) is its address.
#[repr(C)]
pub struct MutexState {
    m: MutexCell,
}
shm::any_bits!(MutexState { m });

impl std::fmt::Debug for MutexState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexState").finish_non_exhaustive()
    }
}

/// A failed call, typed.
fn os((op, rc): (&'static str, libc::c_int)) -> PthreadError {
    PthreadError::from_rc(op, rc)
}

/// `pthread_mutexattr_init` + `setpshared` (+ `setrobust`), then
/// `pthread_mutex_init` on the state where it lies — glibc's normal kind,
/// not error-checking; the attribute object is destroyed on every path.
fn init(state: *mut MutexState, robust: bool) -> Result<(), PthreadError> {
    // SAFETY: `state` is the caller's zeroed, aligned, never-moving storage
    // that nobody uses yet (the RawLock::init contract), and the field
    // pointer addresses the cell inside it.
    unsafe { MutexCell::init_kind(&raw mut (*state).m, robust, false) }.map_err(os)
}

/// [`RobustMutex`]'s [`RawLock::before_unmap`]: aborts if the futex word
/// names a live thread of this process (see the crate docs).
fn refuse_unmap_while_held_here(state: &MutexState) {
    let tid = (sys::lock_word(state.m.cell()) & sys::FUTEX_TID_MASK) as i32;
    if tid != 0 && sys::is_thread_of_this_process(tid) {
        held_at_unmap(tid);
    }
}

#[cold]
#[inline(never)]
fn held_at_unmap(tid: i32) -> ! {
    sys::fatal(&format!(
        "shmlab: fatal: a region is being unmapped while thread {tid} of this process holds its robust pthread mutex (a lock guard forgotten or leaked, or the lock held through another handle to the region); glibc keeps the mutex on that thread's robust list and would write into the freed memory, so the process aborts"
    ))
}

/// [`RawLock::destroy`] for both kinds: destroys the mutex only if it can
/// take it (see the crate docs), so a held mutex is never destroyed.
fn destroy_unless_held(state: &MutexState) {
    match sys::try_lock(state.m.cell()) {
        0 => {}
        libc::EOWNERDEAD => {
            // Made consistent so that the unlock below leaves it a normal,
            // free mutex; if that fails the unlock marks it unrecoverable,
            // which is as good for a mutex about to be destroyed.
            let _ = sys::consistent(state.m.cell());
        }
        // EBUSY: held by a peer, or (the plain kind only; for the robust
        // one `before_unmap` aborts first) by a thread of this process
        // through another handle; it must stay a working mutex so that its
        // holder can unlock it. Anything else (EINVAL: destroyed or
        // overwritten already, ENOTRECOVERABLE, EAGAIN): not ours to fix.
        _ => return,
    }
    state.m.unlock();
    // SAFETY: nobody held it a moment ago and the region is being
    // unlinked (RawLock::destroy's contract). A peer that locks it in this
    // window breaks that contract; it then gets EINVAL from its unlock,
    // which shmlab makes fatal in that peer, while the mutex is still mapped
    // there.
    let _ = unsafe { sys::destroy(state.m.cell()) };
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
                state.m.lock().map_err(os)
            }

            /// `pthread_mutex_trylock(m)`; `EBUSY` → `None` — because a busy
            /// mutex is an answer, not an error.
            fn try_lock(&self, state: &MutexState) -> Result<Option<Acquired>, PthreadError> {
                state.m.try_lock().map_err(os)
            }

            /// `pthread_mutex_unlock(m)` — by the locking thread, which the
            /// `!Send` guard ensures, because glibc tracks the owner. A
            /// failure aborts the process (see the crate docs).
            #[inline]
            unsafe fn unlock(&self, state: &MutexState) {
                state.m.unlock();
            }

            /// `pthread_mutex_trylock`, then `pthread_mutex_unlock` +
            /// `pthread_mutex_destroy` — by the creator as the region is
            /// removed; a mutex that is still held (`EBUSY`) is left
            /// undestroyed and working, because glibc would destroy a held
            /// robust mutex and make its holder's unlock fail.
            unsafe fn destroy(state: &MutexState, _ctx: &InitCtx<'_>) {
                destroy_unless_held(state);
            }

            /// For the robust kind: aborts if a live thread of this process
            /// holds the mutex, which is then on its robust list (see the
            /// crate docs). The plain kind is on no list: nothing to do.
            fn before_unmap(state: &MutexState) {
                if $robust {
                    refuse_unmap_while_held_here(state);
                }
            }

            /// glibc's owner field (`__data.__owner`): the tid of the
            /// current holder, or of a holder that died with it (a plain
            /// mutex stays held by the dead tid; a robust one is marked
            /// for recovery). `None` when free.
            fn last_holder(&self, state: &MutexState) -> Option<i32> {
                Some(sys::owner_tid(state.m.cell())).filter(|&t| t > 0)
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
                state.m.lock_timeout(timeout).map_err(os)
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
