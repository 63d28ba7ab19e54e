//! The crate's only unsafe calls: glibc's `pthread_mutex_*` and
//! `pthread_mutexattr_*`. Each returns an error number (not -1 + errno),
//! turned into `Result` by [`check`].

use libc::{c_int, pthread_mutex_t, pthread_mutexattr_t};
use std::mem::MaybeUninit;

/// pthread's convention: 0 is success, anything else *is* the error number.
pub(crate) fn check(rc: c_int) -> Result<(), c_int> {
    if rc == 0 { Ok(()) } else { Err(rc) }
}

/// A `pthread_mutexattr_t` that is always destroyed, on every path.
pub(crate) struct Attr(MaybeUninit<pthread_mutexattr_t>);

impl Attr {
    /// `pthread_mutexattr_init`.
    pub(crate) fn new() -> Result<Box<Self>, (&'static str, c_int)> {
        let mut a = Box::new(Attr(MaybeUninit::uninit()));
        // SAFETY: the pointer is to writable storage for one attr object,
        // boxed so it never moves after init.
        check(unsafe { libc::pthread_mutexattr_init(a.0.as_mut_ptr()) })
            .map_err(|e| ("pthread_mutexattr_init", e))?;
        Ok(a)
    }

    fn ptr(&mut self) -> *mut pthread_mutexattr_t {
        self.0.as_mut_ptr()
    }

    /// `pthread_mutexattr_setpshared(PTHREAD_PROCESS_SHARED)`: the mutex may
    /// be used by any process that maps the memory it lives in.
    pub(crate) fn set_process_shared(&mut self) -> Result<(), (&'static str, c_int)> {
        // SAFETY: the attr was initialised in `new`.
        check(unsafe {
            libc::pthread_mutexattr_setpshared(self.ptr(), libc::PTHREAD_PROCESS_SHARED)
        })
        .map_err(|e| ("pthread_mutexattr_setpshared", e))
    }

    /// `pthread_mutexattr_setrobust(PTHREAD_MUTEX_ROBUST)`: if the owner
    /// dies, the next locker gets `EOWNERDEAD` instead of waiting forever.
    pub(crate) fn set_robust(&mut self) -> Result<(), (&'static str, c_int)> {
        // SAFETY: the attr was initialised in `new`.
        check(unsafe { libc::pthread_mutexattr_setrobust(self.ptr(), libc::PTHREAD_MUTEX_ROBUST) })
            .map_err(|e| ("pthread_mutexattr_setrobust", e))
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (a failed init never builds an Attr).
        unsafe { libc::pthread_mutexattr_destroy(self.ptr()) };
    }
}

/// `pthread_mutex_init(m, attr)` in place.
///
/// # Safety
/// `m` points to writable, aligned storage for a mutex that no one uses
/// and that will never move.
pub(crate) unsafe fn mutex_init(m: *mut pthread_mutex_t, attr: &mut Attr) -> Result<(), c_int> {
    // SAFETY: per the caller's contract; the attr is initialised.
    check(unsafe { libc::pthread_mutex_init(m, attr.ptr()) })
}

/// `pthread_mutex_lock(m)`.
pub(crate) fn lock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: callers pass the pointer of an initialised mutex that lives
    // in a mapping outliving the call (a `MutexState` borrowed by them).
    unsafe { libc::pthread_mutex_lock(m) }
}

/// `pthread_mutex_trylock(m)`.
pub(crate) fn try_lock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: as for `lock`.
    unsafe { libc::pthread_mutex_trylock(m) }
}

/// `pthread_mutex_timedlock(m, abstime)` against `CLOCK_REALTIME`
/// (glibc's `pthread_mutex_clocklock` is not in the libc crate for all
/// targets; the deadline is recomputed from a monotonic one by the caller).
pub(crate) fn timed_lock(m: *mut pthread_mutex_t, abstime: &libc::timespec) -> c_int {
    // SAFETY: as for `lock`; `abstime` is a valid timespec.
    unsafe { libc::pthread_mutex_timedlock(m, abstime) }
}

/// `pthread_mutex_unlock(m)`.
pub(crate) fn unlock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: as for `lock`; the caller holds the mutex.
    unsafe { libc::pthread_mutex_unlock(m) }
}

/// `pthread_mutex_consistent(m)`: after `EOWNERDEAD`, marks the robust
/// mutex usable again.
pub(crate) fn consistent(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: as for `lock`; the caller holds the mutex after EOWNERDEAD.
    unsafe { libc::pthread_mutex_consistent(m) }
}

/// `pthread_mutex_destroy(m)`.
pub(crate) fn destroy(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: as for `lock`; the creator calls this once, when no other
    // process uses the mutex any more.
    unsafe { libc::pthread_mutex_destroy(m) }
}

/// `clock_gettime(CLOCK_REALTIME)` + `d`, normalised.
pub(crate) fn realtime_after(d: std::time::Duration) -> libc::timespec {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + d;
    libc::timespec {
        tv_sec: now.as_secs() as libc::time_t,
        tv_nsec: now.subsec_nanos() as libc::c_long,
    }
}
