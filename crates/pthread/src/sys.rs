//! The crate's only unsafe calls: glibc's `pthread_mutex_*` and
//! `pthread_mutexattr_*` (the monotonic deadline for the timed lock comes
//! from `shm::time`), and the read of the mutex's owner field.
//!
//! pthread functions *return* their error number (0 is success; `errno` is
//! not used), so the wrappers hand that number back as-is and [`check`]
//! turns it into a `Result` where a caller wants one.
//!
//! The mutex wrappers take `&UnsafeCell<pthread_mutex_t>` (the inside of a
//! [`MutexCell`](crate::MutexCell)): the borrow guarantees live, aligned
//! memory for the whole call, and `UnsafeCell` is what allows glibc to
//! write through a shared reference. glibc treats an
//! all-zero `pthread_mutex_t` as `PTHREAD_MUTEX_INITIALIZER`, so even a
//! region whose payload was never initialised cannot make these calls read
//! garbage; the lock contract (a `LockState` is reachable only after
//! `RawLock::init`) makes sure it was initialised with the process-shared
//! attribute.

use libc::{c_int, clockid_t, pthread_mutex_t, pthread_mutexattr_t, timespec};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;

unsafe extern "C" {
    /// glibc ≥ 2.30 (not in the `libc` crate): `pthread_mutex_timedlock`
    /// against a chosen clock, so a `CLOCK_MONOTONIC` deadline is not moved
    /// by changes to the wall clock.
    fn pthread_mutex_clocklock(
        m: *mut pthread_mutex_t,
        clock: clockid_t,
        abstime: *const timespec,
    ) -> c_int;
}

/// pthread's convention: 0 is success, anything else *is* the error number.
pub(crate) fn check(rc: c_int) -> Result<(), c_int> {
    if rc == 0 { Ok(()) } else { Err(rc) }
}

/// A `pthread_mutexattr_t` that is destroyed on every path, boxed so it never
/// moves between `pthread_mutexattr_init` and `pthread_mutexattr_destroy`
/// (POSIX leaves copies of initialised attribute objects undefined).
pub(crate) struct Attr(Box<MaybeUninit<pthread_mutexattr_t>>);

impl Attr {
    /// `pthread_mutexattr_init(attr)` — the defaults (process-private,
    /// normal type, stalled robustness) that the setters below change.
    pub(crate) fn new() -> Result<Self, (&'static str, c_int)> {
        let mut a = Box::new(MaybeUninit::<pthread_mutexattr_t>::uninit());
        // SAFETY: the pointer is to writable, aligned, boxed storage for one
        // attribute object; a failed init leaves nothing to destroy, and no
        // `Attr` (whose Drop destroys) is built then.
        check(unsafe { libc::pthread_mutexattr_init(a.as_mut_ptr()) })
            .map_err(|e| ("pthread_mutexattr_init", e))?;
        Ok(Attr(a))
    }

    fn ptr(&mut self) -> *mut pthread_mutexattr_t {
        self.0.as_mut_ptr()
    }

    /// `pthread_mutexattr_setpshared(attr, PTHREAD_PROCESS_SHARED)` — the
    /// mutex may be used by any process that maps the memory it lives in,
    /// because glibc then keys its futex on the page, not the address space.
    pub(crate) fn set_process_shared(&mut self) -> Result<(), (&'static str, c_int)> {
        // SAFETY: the attribute object was initialised in `new` and is
        // exclusively borrowed.
        check(unsafe {
            libc::pthread_mutexattr_setpshared(self.ptr(), libc::PTHREAD_PROCESS_SHARED)
        })
        .map_err(|e| ("pthread_mutexattr_setpshared", e))
    }

    /// `pthread_mutexattr_settype(attr, PTHREAD_MUTEX_ERRORCHECK)` — an
    /// unlock by a thread that does not hold it, or a relock by the
    /// holder, is an error (`EPERM`, `EDEADLK`) instead of undefined.
    pub(crate) fn set_errorcheck(&mut self) -> Result<(), (&'static str, c_int)> {
        // SAFETY: as for `set_process_shared`.
        check(unsafe {
            libc::pthread_mutexattr_settype(self.ptr(), libc::PTHREAD_MUTEX_ERRORCHECK)
        })
        .map_err(|e| ("pthread_mutexattr_settype", e))
    }

    /// `pthread_mutexattr_setrobust(attr, PTHREAD_MUTEX_ROBUST)` — if the
    /// owner dies, the next locker gets `EOWNERDEAD`, because the kernel
    /// walks the dead thread's robust list, instead of waiting forever.
    pub(crate) fn set_robust(&mut self) -> Result<(), (&'static str, c_int)> {
        // SAFETY: as for `set_process_shared`.
        check(unsafe { libc::pthread_mutexattr_setrobust(self.ptr(), libc::PTHREAD_MUTEX_ROBUST) })
            .map_err(|e| ("pthread_mutexattr_setrobust", e))
    }
}

impl Drop for Attr {
    /// `pthread_mutexattr_destroy(attr)` — on success and error paths alike,
    /// because the attribute may own resources on some implementations.
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (a failed init never builds an Attr),
        // destroyed exactly once, here.
        unsafe { libc::pthread_mutexattr_destroy(self.ptr()) };
    }
}

/// `pthread_mutex_init(m, attr)` — in place, because a futex-based mutex is
/// identified by its address and must never be built elsewhere and copied.
///
/// # Safety
/// `m` points to writable, aligned storage for a mutex that no thread or
/// process uses yet and that will never move.
pub(crate) unsafe fn mutex_init(m: *mut pthread_mutex_t, attr: &mut Attr) -> Result<(), c_int> {
    // SAFETY: `m` per the caller's contract; the attribute is initialised
    // and outlives the call.
    check(unsafe { libc::pthread_mutex_init(m, attr.ptr()) })
}

/// `pthread_mutex_lock(m)`: 0, `EOWNERDEAD` or an error number.
#[inline]
pub(crate) fn lock(m: &UnsafeCell<pthread_mutex_t>) -> c_int {
    // SAFETY: `m` is live and aligned for the call (borrowed) and glibc
    // mutates it only through atomics and the futex (see the module docs).
    unsafe { libc::pthread_mutex_lock(m.get()) }
}

/// `pthread_mutex_trylock(m)`: 0, `EBUSY`, `EOWNERDEAD` or an error number.
#[inline]
pub(crate) fn try_lock(m: &UnsafeCell<pthread_mutex_t>) -> c_int {
    // SAFETY: as for `lock`.
    unsafe { libc::pthread_mutex_trylock(m.get()) }
}

/// `pthread_mutex_clocklock(m, CLOCK_MONOTONIC, deadline)`: 0, `ETIMEDOUT`,
/// `EOWNERDEAD` or an error number. `deadline` must be normalised
/// ([`shm::time::monotonic_deadline`]).
pub(crate) fn clock_lock(m: &UnsafeCell<pthread_mutex_t>, deadline: &timespec) -> c_int {
    // SAFETY: as for `lock`; `deadline` is a valid, normalised timespec that
    // outlives the call.
    unsafe { pthread_mutex_clocklock(m.get(), libc::CLOCK_MONOTONIC, deadline) }
}

/// `pthread_mutex_unlock(m)`: 0 or an error number (`EPERM` if a robust or
/// error-checking mutex is not held by this thread).
#[inline]
pub(crate) fn unlock(m: &UnsafeCell<pthread_mutex_t>) -> c_int {
    // SAFETY: as for `lock`.
    unsafe { libc::pthread_mutex_unlock(m.get()) }
}

/// `pthread_mutex_consistent(m)`: after `EOWNERDEAD`, marks the robust
/// mutex usable again (else its next unlock makes it `ENOTRECOVERABLE`).
pub(crate) fn consistent(m: &UnsafeCell<pthread_mutex_t>) -> c_int {
    // SAFETY: as for `lock`.
    unsafe { libc::pthread_mutex_consistent(m.get()) }
}

/// `pthread_mutex_destroy(m)`: 0 or `EBUSY` if it is still locked.
///
/// # Safety
/// No thread of any process uses the mutex afterwards (POSIX leaves using a
/// destroyed mutex undefined) and none waits on it now.
pub(crate) unsafe fn destroy(m: &UnsafeCell<pthread_mutex_t>) -> c_int {
    // SAFETY: the caller guarantees nobody uses it again; the pointer is
    // live and aligned for the call (the borrow).
    unsafe { libc::pthread_mutex_destroy(m.get()) }
}

/// The owner field of glibc's mutex (`__data.__owner`, the holder's kernel
/// thread id, 0 when free), read with a relaxed atomic load. glibc's
/// `struct __pthread_mutex_s` starts `int __lock; unsigned __count; int
/// __owner;` on every 64-bit Linux target, so the field is at byte 8; glibc
/// itself writes it with plain stores under the lock, and it is only a hint
/// (the tid of whoever held it last), used to tell a wedged mutex from a
/// busy one.
pub(crate) fn owner_tid(m: &UnsafeCell<pthread_mutex_t>) -> i32 {
    const _: () = assert!(std::mem::size_of::<pthread_mutex_t>() >= 12);
    // SAFETY: byte 8 lies inside the 40-byte mutex, is 4-aligned (the mutex
    // is 8-aligned) and is an int in glibc's layout; an atomic view of it
    // reads without tearing, and we only load.
    let owner = unsafe {
        &*(m.get()
            .cast::<u8>()
            .add(8)
            .cast::<std::sync::atomic::AtomicI32>())
    };
    owner.load(std::sync::atomic::Ordering::Relaxed)
}

/// The futex word of glibc's mutex (`__data.__lock`, byte 0), read with a
/// relaxed atomic load. For a robust mutex it is the holder's tid (the low
/// 30 bits, [`FUTEX_TID_MASK`]) with `FUTEX_WAITERS` and `FUTEX_OWNER_DIED`
/// above: glibc sets the tid before it puts the mutex on the holder's
/// robust list and clears it only after taking it off, and the kernel
/// clears it (setting `FUTEX_OWNER_DIED`) when the holder dies. So a tid of
/// 0 means "on nobody's robust list", except inside a lock or unlock call
/// on that very address.
pub(crate) fn lock_word(m: &UnsafeCell<pthread_mutex_t>) -> u32 {
    // SAFETY: byte 0 of the 8-aligned, 40-byte mutex is glibc's `int
    // __lock`, the futex word, which glibc and the kernel only change
    // atomically; an atomic view reads it without tearing, and we only load.
    let word = unsafe { &*(m.get().cast::<std::sync::atomic::AtomicU32>()) };
    word.load(std::sync::atomic::Ordering::Relaxed)
}

/// The tid bits of a robust futex word (`linux/futex.h`).
pub(crate) const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// Whether `tid` is a live thread of this process: `tgkill(getpid(), tid,
/// 0)` checks that the thread exists *in this thread group* and sends
/// nothing (signal 0) — no `/proc` needed, and a tid of another process
/// is refused with `ESRCH`. The calling thread is answered without a
/// system call.
pub(crate) fn is_thread_of_this_process(tid: i32) -> bool {
    if tid <= 0 {
        return false;
    }
    // SAFETY: gettid and getpid take no arguments and cannot fail.
    if tid == unsafe { libc::gettid() } {
        return true;
    }
    // SAFETY: signal 0 only checks that the thread exists and that we may
    // signal it (always, in our own thread group); nothing is delivered.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) };
    // EPERM cannot happen within one thread group; count it as "ours" to
    // err on the side of not unmapping.
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Writes `msg` and a newline to stderr with one `write(2)` (not through
/// `std::io::stderr()`, whose lock another thread may hold) and aborts.
#[cold]
pub(crate) fn fatal(msg: &str) -> ! {
    let mut line = Vec::with_capacity(msg.len() + 1);
    line.extend_from_slice(msg.as_bytes());
    line.push(b'\n');
    // SAFETY: the pointer and length describe `line`, live for the call.
    let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    std::process::abort()
}
