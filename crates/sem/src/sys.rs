//! The crate's only unsafe calls: `sem_open(3)`, `sem_close(3)`,
//! `sem_unlink(3)`, `sem_init(3)`, `sem_destroy(3)`, `sem_wait(3)`,
//! `sem_trywait(3)`, `sem_clockwait(3)`, `sem_post(3)` and
//! `sem_getvalue(3)` (the monotonic deadline comes from `shm::time`). They follow the `-1` + errno convention; [`cvt`]
//! turns that into `io::Result`.
//!
//! The operations take `&UnsafeCell<sem_t>`: the borrow guarantees live,
//! aligned memory for the whole call, and `UnsafeCell` is what lets glibc
//! write through a shared reference. An unnamed semaphore is such a cell in
//! the region; a named one is reached through [`NamedHandle::cell`], valid
//! while the handle (and so the `sem_open` mapping) lives.

use libc::{c_int, sem_t};
use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::io;
use std::ptr::NonNull;

unsafe extern "C" {
    /// glibc ≥ 2.30 (not in the `libc` crate): `sem_timedwait` against a
    /// chosen clock, so a `CLOCK_MONOTONIC` deadline is not moved by changes
    /// to the wall clock.
    fn sem_clockwait(
        sem: *mut sem_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> c_int;
}

fn cvt(rc: c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// This process's `sem_t *` for a named semaphore; `sem_close`d on drop.
#[derive(Debug)]
pub(crate) struct NamedHandle(NonNull<sem_t>);

// SAFETY: the `sem_t *` from sem_open points into a shared mapping that
// stays valid until sem_close (in Drop); glibc's sem_* calls on it are
// thread-safe, so the handle may move to and be shared by any thread.
unsafe impl Send for NamedHandle {}
// SAFETY: as above.
unsafe impl Sync for NamedHandle {}

impl NamedHandle {
    fn from_raw(p: *mut sem_t) -> io::Result<Self> {
        if p == libc::SEM_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p)
            .map(NamedHandle)
            .ok_or_else(|| io::Error::other("sem_open returned NULL"))
    }

    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)` — exclusive, so two
    /// creators can never share one semaphore by accident.
    pub(crate) fn create(name: &CStr, mode: u32, value: u32) -> io::Result<Self> {
        // SAFETY: `name` is NUL-terminated; with O_CREAT the variadic part
        // is (mode_t, unsigned int), passed as C's default promotions expect.
        Self::from_raw(unsafe {
            libc::sem_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                mode as libc::c_uint,
                value as libc::c_uint,
            )
        })
    }

    /// `sem_open(name, 0)` — an existing semaphore, never creating one.
    pub(crate) fn open(name: &CStr) -> io::Result<Self> {
        // SAFETY: `name` is NUL-terminated; no O_CREAT, so no variadic part.
        Self::from_raw(unsafe { libc::sem_open(name.as_ptr(), 0) })
    }

    /// The semaphore, for the operations below.
    pub(crate) fn cell(&self) -> &UnsafeCell<sem_t> {
        // SAFETY: the pointer came from sem_open and stays valid and aligned
        // until Drop, which cannot run while `self` is borrowed;
        // `UnsafeCell<sem_t>` has `sem_t`'s layout, and all access goes
        // through the sem_* calls, which synchronise among themselves.
        unsafe { &*self.0.as_ptr().cast::<UnsafeCell<sem_t>>() }
    }
}

impl Drop for NamedHandle {
    /// `sem_close(sem)` — unmaps this process's view; the name stays.
    fn drop(&mut self) {
        // SAFETY: the pointer came from sem_open in this process, no borrow
        // of it outlives `self`, and it is closed exactly once, here.
        unsafe { libc::sem_close(self.0.as_ptr()) };
    }
}

/// `sem_unlink(name)`.
pub(crate) fn unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    cvt(unsafe { libc::sem_unlink(name.as_ptr()) })
}

/// `sem_init(sem, pshared = 1, value)` in place.
///
/// # Safety
/// `sem` points to writable, aligned, never-moving storage for a `sem_t`
/// (inside a shared mapping) that nobody uses yet.
pub(crate) unsafe fn init_shared(sem: *mut sem_t, value: u32) -> io::Result<()> {
    // SAFETY: per the caller's contract; pshared = 1 because the semaphore
    // is used from several processes.
    cvt(unsafe { libc::sem_init(sem, 1, value as libc::c_uint) })
}

/// `sem_destroy(sem)`.
///
/// # Safety
/// `sem` was initialised with `sem_init`, nobody waits on it, and nobody
/// uses it afterwards (POSIX leaves both undefined).
pub(crate) unsafe fn destroy(sem: &UnsafeCell<sem_t>) {
    // SAFETY: per the caller's contract.
    unsafe { libc::sem_destroy(sem.get()) };
}

/// `sem_wait(sem)`, retrying `EINTR`.
pub(crate) fn wait(sem: &UnsafeCell<sem_t>) -> io::Result<()> {
    loop {
        // SAFETY: `sem` is live and aligned for the call (see module docs).
        match cvt(unsafe { libc::sem_wait(sem.get()) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r,
        }
    }
}

/// `sem_trywait(sem)`: `Ok(false)` on `EAGAIN`.
pub(crate) fn try_wait(sem: &UnsafeCell<sem_t>) -> io::Result<bool> {
    loop {
        // SAFETY: as for `wait`.
        match cvt(unsafe { libc::sem_trywait(sem.get()) }) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `sem_clockwait(sem, CLOCK_MONOTONIC, deadline)`, retrying `EINTR` with
/// the same absolute deadline: `Ok(false)` on `ETIMEDOUT`.
pub(crate) fn wait_until(sem: &UnsafeCell<sem_t>, deadline: &libc::timespec) -> io::Result<bool> {
    loop {
        // SAFETY: as for `wait`; `deadline` is a valid timespec that
        // outlives the call.
        match cvt(unsafe { sem_clockwait(sem.get(), libc::CLOCK_MONOTONIC, deadline) }) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `sem_post(sem)`.
pub(crate) fn post(sem: &UnsafeCell<sem_t>) -> io::Result<()> {
    // SAFETY: as for `wait`.
    cvt(unsafe { libc::sem_post(sem.get()) })
}

/// `sem_getvalue(sem)`.
pub(crate) fn value(sem: &UnsafeCell<sem_t>) -> io::Result<i32> {
    let mut v: c_int = 0;
    // SAFETY: as for `wait`; `v` is a valid out-pointer.
    cvt(unsafe { libc::sem_getvalue(sem.get(), &mut v) })?;
    Ok(v)
}
