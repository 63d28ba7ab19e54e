//! The crate's only unsafe calls: glibc's `pthread_cond_*`,
//! `pthread_rwlock_*` and `pthread_barrier_*` with their attribute
//! objects, all process-shared and initialised in place (the pattern of
//! `crates/pthread`). The monitors' mutex is `crates/pthread`'s
//! [`MutexCell`]: no second binding of `pthread_mutex_*` here.
//!
//! pthread functions *return* their error number (0 is success), and the
//! wrappers hand it back as-is. The object wrappers take `&UnsafeCell<T>`:
//! the borrow guarantees live, aligned memory for the whole call, and
//! `UnsafeCell` is what lets glibc write through a shared reference. An
//! all-zero mutex, condition variable or rwlock is glibc's static
//! initializer, so even a never-initialised one cannot make these calls read
//! garbage; the types in this crate initialise them with
//! `PTHREAD_PROCESS_SHARED` before anyone else maps the region.

use libc::{
    c_int, clockid_t, pthread_barrier_t, pthread_barrierattr_t, pthread_cond_t, pthread_condattr_t,
    pthread_rwlock_t, pthread_rwlockattr_t, timespec,
};
use shm_pthread::MutexCell;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;

unsafe extern "C" {
    /// glibc >= 2.30: `pthread_rwlock_timedrdlock` against a chosen clock.
    fn pthread_rwlock_clockrdlock(
        l: *mut pthread_rwlock_t,
        clock: clockid_t,
        abstime: *const timespec,
    ) -> c_int;
    /// glibc >= 2.30: `pthread_rwlock_timedwrlock` against a chosen clock.
    fn pthread_rwlock_clockwrlock(
        l: *mut pthread_rwlock_t,
        clock: clockid_t,
        abstime: *const timespec,
    ) -> c_int;
}

/// glibc's `PTHREAD_RWLOCK_PREFER_READER_NP` (the default kind).
pub(crate) const RWLOCK_PREFER_READER: c_int = 0;
/// glibc's `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`: the only kind in
/// which a waiting writer really holds new readers back.
pub(crate) const RWLOCK_PREFER_WRITER: c_int = 2;

/// pthread's convention: 0 is success, anything else *is* the error number.
fn check(op: &'static str, rc: c_int) -> Result<(), (&'static str, c_int)> {
    if rc == 0 { Ok(()) } else { Err((op, rc)) }
}

/// `pthread_condattr_t`, boxed so it never moves, destroyed on drop.
struct CondAttr(Box<MaybeUninit<pthread_condattr_t>>);

impl Drop for CondAttr {
    fn drop(&mut self) {
        // SAFETY: initialised in `cond_init` before this value was built;
        // destroyed once, here.
        unsafe { libc::pthread_condattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// `pthread_cond_init` in place with `PTHREAD_PROCESS_SHARED` and
/// `pthread_condattr_setclock(CLOCK_MONOTONIC)`, so the deadline of
/// [`cond_timedwait`] is not moved by changes to the wall clock.
///
/// # Safety
/// `c` points to writable, aligned storage that nobody uses yet and that
/// never moves.
pub(crate) unsafe fn cond_init(c: *mut pthread_cond_t) -> Result<(), (&'static str, c_int)> {
    let mut a = Box::new(MaybeUninit::<pthread_condattr_t>::uninit());
    // SAFETY: boxed, aligned storage for one attribute object.
    check("pthread_condattr_init", unsafe {
        libc::pthread_condattr_init(a.as_mut_ptr())
    })?;
    let mut attr = CondAttr(a);
    let p = attr.0.as_mut_ptr();
    // SAFETY: the attribute object is initialised and exclusively ours.
    check("pthread_condattr_setpshared", unsafe {
        libc::pthread_condattr_setpshared(p, libc::PTHREAD_PROCESS_SHARED)
    })?;
    // SAFETY: as above.
    check("pthread_condattr_setclock", unsafe {
        libc::pthread_condattr_setclock(p, libc::CLOCK_MONOTONIC)
    })?;
    // SAFETY: `c` per the caller's contract; the attribute outlives the call.
    check("pthread_cond_init", unsafe {
        libc::pthread_cond_init(c, p)
    })
}

/// `pthread_rwlockattr_t`, boxed so it never moves, destroyed on drop.
struct RwAttr(Box<MaybeUninit<pthread_rwlockattr_t>>);

impl Drop for RwAttr {
    fn drop(&mut self) {
        // SAFETY: initialised in `rwlock_init` before this value was built;
        // destroyed once, here.
        unsafe { libc::pthread_rwlockattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// `pthread_rwlock_init` in place with `PTHREAD_PROCESS_SHARED` and the
/// glibc kind `kind` ([`RWLOCK_PREFER_READER`] or [`RWLOCK_PREFER_WRITER`]).
///
/// # Safety
/// `l` points to writable, aligned storage that nobody uses yet and that
/// never moves.
pub(crate) unsafe fn rwlock_init(
    l: *mut pthread_rwlock_t,
    kind: c_int,
) -> Result<(), (&'static str, c_int)> {
    let mut a = Box::new(MaybeUninit::<pthread_rwlockattr_t>::uninit());
    // SAFETY: boxed, aligned storage for one attribute object.
    check("pthread_rwlockattr_init", unsafe {
        libc::pthread_rwlockattr_init(a.as_mut_ptr())
    })?;
    let mut attr = RwAttr(a);
    let p = attr.0.as_mut_ptr();
    // SAFETY: the attribute object is initialised and exclusively ours.
    check("pthread_rwlockattr_setpshared", unsafe {
        libc::pthread_rwlockattr_setpshared(p, libc::PTHREAD_PROCESS_SHARED)
    })?;
    // SAFETY: as above.
    check("pthread_rwlockattr_setkind_np", unsafe {
        libc::pthread_rwlockattr_setkind_np(p, kind)
    })?;
    // SAFETY: `l` per the caller's contract; the attribute outlives the call.
    check("pthread_rwlock_init", unsafe {
        libc::pthread_rwlock_init(l, p)
    })
}

/// `pthread_cond_timedwait(c, m, deadline)` (the deadline on the clock the
/// condition variable was made with, `CLOCK_MONOTONIC`): 0 (woken, maybe
/// spuriously), `ETIMEDOUT`, or `EPERM` if `m` is not held.
pub(crate) fn cond_timedwait(
    c: &UnsafeCell<pthread_cond_t>,
    m: &MutexCell,
    deadline: &timespec,
) -> c_int {
    // SAFETY: both objects live and aligned for the call (borrowed; the
    // mutex pointer is valid while the cell is); an error-checking mutex
    // not held by this thread is refused (EPERM) rather than undefined;
    // `deadline` outlives the call.
    unsafe { libc::pthread_cond_timedwait(c.get(), m.as_ptr(), deadline) }
}

/// `pthread_cond_signal(c)`.
pub(crate) fn cond_signal(c: &UnsafeCell<pthread_cond_t>) -> c_int {
    // SAFETY: live and aligned for the call (borrowed).
    unsafe { libc::pthread_cond_signal(c.get()) }
}

/// `pthread_cond_broadcast(c)`.
pub(crate) fn cond_broadcast(c: &UnsafeCell<pthread_cond_t>) -> c_int {
    // SAFETY: live and aligned for the call (borrowed).
    unsafe { libc::pthread_cond_broadcast(c.get()) }
}

/// `pthread_rwlock_clockrdlock(l, CLOCK_MONOTONIC, deadline)`: 0 or
/// `ETIMEDOUT` (or an error number).
pub(crate) fn rwlock_rdlock(l: &UnsafeCell<pthread_rwlock_t>, deadline: &timespec) -> c_int {
    // SAFETY: live and aligned for the call (borrowed); `deadline` outlives it.
    unsafe { pthread_rwlock_clockrdlock(l.get(), libc::CLOCK_MONOTONIC, deadline) }
}

/// `pthread_rwlock_clockwrlock(l, CLOCK_MONOTONIC, deadline)`: 0 or
/// `ETIMEDOUT` (or an error number).
pub(crate) fn rwlock_wrlock(l: &UnsafeCell<pthread_rwlock_t>, deadline: &timespec) -> c_int {
    // SAFETY: as for `rwlock_rdlock`.
    unsafe { pthread_rwlock_clockwrlock(l.get(), libc::CLOCK_MONOTONIC, deadline) }
}

/// `pthread_rwlock_unlock(l)`.
pub(crate) fn rwlock_unlock(l: &UnsafeCell<pthread_rwlock_t>) -> c_int {
    // SAFETY: live and aligned for the call (borrowed).
    unsafe { libc::pthread_rwlock_unlock(l.get()) }
}

/// `pthread_barrierattr_t`, boxed so it never moves, destroyed on drop.
struct BarrierAttr(Box<MaybeUninit<pthread_barrierattr_t>>);

impl Drop for BarrierAttr {
    fn drop(&mut self) {
        // SAFETY: initialised in `barrier_init` before this value was built;
        // destroyed once, here.
        unsafe { libc::pthread_barrierattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// `pthread_barrier_init(b, attr, count)` in place with
/// `PTHREAD_PROCESS_SHARED`.
///
/// # Safety
/// `b` points to writable, aligned storage that nobody uses yet and that
/// never moves.
pub(crate) unsafe fn barrier_init(
    b: *mut pthread_barrier_t,
    count: u32,
) -> Result<(), (&'static str, c_int)> {
    let mut a = Box::new(MaybeUninit::<pthread_barrierattr_t>::uninit());
    // SAFETY: boxed, aligned storage for one attribute object.
    check("pthread_barrierattr_init", unsafe {
        libc::pthread_barrierattr_init(a.as_mut_ptr())
    })?;
    let mut attr = BarrierAttr(a);
    let p = attr.0.as_mut_ptr();
    // SAFETY: the attribute object is initialised and exclusively ours.
    check("pthread_barrierattr_setpshared", unsafe {
        libc::pthread_barrierattr_setpshared(p, libc::PTHREAD_PROCESS_SHARED)
    })?;
    // SAFETY: `b` per the caller's contract; the attribute outlives the call.
    check("pthread_barrier_init", unsafe {
        libc::pthread_barrier_init(b, p, count)
    })
}

/// `pthread_barrier_wait(b)`: 0, `PTHREAD_BARRIER_SERIAL_THREAD` (for one
/// of the waiters), or an error number. It has no timeout.
pub(crate) fn barrier_wait(b: &UnsafeCell<pthread_barrier_t>) -> c_int {
    // SAFETY: live and aligned for the call (borrowed); glibc changes it
    // only through atomics and its futex.
    unsafe { libc::pthread_barrier_wait(b.get()) }
}
