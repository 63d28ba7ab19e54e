//! The crate's only unsafe calls: `sem_open(3)`, `sem_close(3)`,
//! `sem_unlink(3)`, `sem_init(3)`, `sem_destroy(3)`, `sem_wait(3)`,
//! `sem_trywait(3)`, `sem_clockwait(3)`, `sem_post(3)`, `sem_getvalue(3)`.
//! They follow the `-1` + errno convention; [`cvt`] turns that into
//! `io::Result`.

use libc::{c_int, sem_t};
use std::ffi::CStr;
use std::io;
use std::ptr::NonNull;

unsafe extern "C" {
    /// glibc ≥ 2.30: `sem_timedwait` against a chosen clock, so a deadline on
    /// `CLOCK_MONOTONIC` is not moved by wall-clock changes.
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

/// `sem_open(name, O_CREAT | O_EXCL, mode, value)`.
pub(crate) fn open_new(name: &CStr, mode: u32, value: u32) -> io::Result<NonNull<sem_t>> {
    // SAFETY: `name` is NUL-terminated; with O_CREAT the variadic part is
    // (mode_t, unsigned int), passed as C's default promotions expect.
    let p = unsafe {
        libc::sem_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL,
            mode as libc::c_uint,
            value as libc::c_uint,
        )
    };
    if p == libc::SEM_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p).ok_or_else(io::Error::last_os_error)
}

/// `sem_open(name, 0)`: an existing semaphore.
pub(crate) fn open_existing(name: &CStr) -> io::Result<NonNull<sem_t>> {
    // SAFETY: `name` is NUL-terminated; no O_CREAT, so no variadic part.
    let p = unsafe { libc::sem_open(name.as_ptr(), 0) };
    if p == libc::SEM_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p).ok_or_else(io::Error::last_os_error)
}

/// `sem_close(sem)`.
///
/// # Safety
/// `sem` came from `sem_open` in this process and is not used afterwards.
pub(crate) unsafe fn close(sem: NonNull<sem_t>) {
    // SAFETY: per the caller's contract.
    unsafe { libc::sem_close(sem.as_ptr()) };
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
pub(crate) fn destroy(sem: *mut sem_t) {
    // SAFETY: callers pass an initialised semaphore no one waits on.
    unsafe { libc::sem_destroy(sem) };
}

/// `sem_wait(sem)`, retrying `EINTR`.
pub(crate) fn wait(sem: *mut sem_t) -> io::Result<()> {
    loop {
        // SAFETY: callers pass an initialised (or sem_open'ed) semaphore
        // that outlives the call.
        match cvt(unsafe { libc::sem_wait(sem) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r,
        }
    }
}

/// `sem_trywait(sem)`: `Ok(false)` on `EAGAIN`.
pub(crate) fn try_wait(sem: *mut sem_t) -> io::Result<bool> {
    loop {
        // SAFETY: as for `wait`.
        match cvt(unsafe { libc::sem_trywait(sem) }) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `sem_clockwait(sem, CLOCK_MONOTONIC, deadline)`, retrying `EINTR` with
/// the same absolute deadline: `Ok(false)` on `ETIMEDOUT`.
pub(crate) fn wait_until(sem: *mut sem_t, deadline: &libc::timespec) -> io::Result<bool> {
    loop {
        // SAFETY: as for `wait`; `deadline` is a normalised timespec.
        match cvt(unsafe { sem_clockwait(sem, libc::CLOCK_MONOTONIC, deadline) }) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `sem_post(sem)`.
pub(crate) fn post(sem: *mut sem_t) -> io::Result<()> {
    // SAFETY: as for `wait`.
    cvt(unsafe { libc::sem_post(sem) })
}

/// `sem_getvalue(sem)`.
pub(crate) fn value(sem: *mut sem_t) -> io::Result<i32> {
    let mut v: c_int = 0;
    // SAFETY: as for `wait`; `v` is a valid out-pointer.
    cvt(unsafe { libc::sem_getvalue(sem, &mut v) })?;
    Ok(v)
}

/// `clock_gettime(CLOCK_MONOTONIC)` + `d`, normalised (`tv_nsec < 1e9`).
pub(crate) fn monotonic_after(d: std::time::Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    normalise(now, d)
}

/// `t + d` with the nanoseconds carried into seconds.
pub(crate) fn normalise(t: libc::timespec, d: std::time::Duration) -> libc::timespec {
    let nsec = t.tv_nsec as u64 + d.subsec_nanos() as u64;
    libc::timespec {
        tv_sec: t
            .tv_sec
            .saturating_add(d.as_secs().min(i64::MAX as u64 / 2) as libc::time_t)
            .saturating_add((nsec / 1_000_000_000) as libc::time_t),
        tv_nsec: (nsec % 1_000_000_000) as libc::c_long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespecs_are_normalised() {
        let t = libc::timespec {
            tv_sec: 5,
            tv_nsec: 999_999_999,
        };
        let r = normalise(t, std::time::Duration::from_nanos(2));
        assert_eq!((r.tv_sec, r.tv_nsec), (6, 1));
        let r = normalise(t, std::time::Duration::from_millis(1500));
        assert_eq!((r.tv_sec, r.tv_nsec), (7, 499_999_999));
    }
}
