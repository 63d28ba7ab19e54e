//! Every system call this crate makes, each behind one safe function.
//!
//! The rest of the crate has no `unsafe` blocks except the lock-trait
//! plumbing (`RawLock::init`/`unlock`), so what can go wrong at the kernel
//! boundary is visible on one page.

use std::io;
use std::ptr;
use std::sync::atomic::AtomicU32;
#[cfg(not(loom))]
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// `futex(word, FUTEX_WAIT, expected, timeout)`: sleeps while `*word ==
/// expected`, for at most `timeout` (relative, `CLOCK_MONOTONIC`).
///
/// `Ok(true)`: woken, or `*word != expected` on entry (`EAGAIN`), or
/// interrupted by a signal (`EINTR`) — the caller re-reads the word either
/// way. `Ok(false)`: the timeout passed (`ETIMEDOUT`). `Err`: anything else,
/// which with a valid `&AtomicU32` and a well-formed timeout means the kernel
/// refused the call (e.g. `ENOSYS` under a seccomp filter).
///
/// The operation is *shared* (no `FUTEX_PRIVATE_FLAG`): the kernel keys the
/// wait queue on the backing page (inode + offset for a `MAP_SHARED`
/// mapping), so a waker in another process that maps the same object finds
/// this waiter. The private flag keys on (mm, address) instead, which only
/// works inside one process.
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    wait_at(word.as_ptr().cast_const(), expected, timeout)
}

/// [`futex_wait`] on the first four bytes of a 64-bit atomic (the lock
/// word of an owner word, whose other half is its generation; see
/// `word.rs`). The kernel reads those four bytes with a 32-bit atomic load.
#[cfg(not(loom))]
pub(crate) fn futex_wait_first_half(
    word: &AtomicU64,
    expected: u32,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    wait_at(word.as_ptr().cast::<u32>().cast_const(), expected, timeout)
}

/// [`futex_wake`] on the first four bytes of a 64-bit atomic: the address
/// [`futex_wait_first_half`] sleeps on.
#[cfg(not(loom))]
pub(crate) fn futex_wake_first_half(word: &AtomicU64, n: i32) -> usize {
    wake_at(word.as_ptr().cast::<u32>().cast_const(), n)
}

/// `FUTEX_WAIT` on `addr`, which points into a live, 4-byte aligned atomic
/// that the caller borrows for the whole call.
fn wait_at(addr: *const u32, expected: u32, timeout: Option<Duration>) -> io::Result<bool> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        // Always below 1e9, so it fits every `c_long`.
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr: *const libc::timespec = ts.as_ref().map_or(ptr::null(), ptr::from_ref);
    // SAFETY: `addr` is a valid, aligned `u32` inside an atomic the caller
    // borrows for the whole call, and FUTEX_WAIT only reads it atomically in
    // the kernel;
    // `ts_ptr` is null or points to `ts`, which lives until the call
    // returns; the last two arguments are ignored by FUTEX_WAIT.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ETIMEDOUT) => Ok(false),
        Some(libc::EINTR | libc::EAGAIN) => Ok(true),
        _ => Err(err),
    }
}

/// `futex(word, FUTEX_WAKE, n)`: wakes up to `n` waiters sleeping on `word`
/// in any process; returns how many it woke. Shared, like [`futex_wait`].
/// `n <= 0` wakes nobody (the raw call would wake one).
pub(crate) fn futex_wake(word: &AtomicU32, n: i32) -> usize {
    wake_at(word.as_ptr().cast_const(), n)
}

/// `FUTEX_WAKE` on `addr`, which points into a live, 4-byte aligned atomic
/// that the caller borrows for the whole call.
fn wake_at(addr: *const u32, n: i32) -> usize {
    if n <= 0 {
        return 0;
    }
    // SAFETY: FUTEX_WAKE uses the address only as a key to find waiters (it
    // does not write through it); `addr` is valid and aligned; the unused
    // trailing arguments are ignored.
    let r = unsafe { libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAKE, n) };
    // Only EFAULT/EINVAL are possible, and a live, aligned atomic rules both
    // out; report "nobody woken" rather than panic in an unlock path.
    usize::try_from(r).unwrap_or(0)
}

/// `pthread_atfork(NULL, NULL, child)`: runs `child` in the child of every
/// later `fork(3)`, in its only thread, before `fork` returns there.
#[cfg(not(loom))]
pub(crate) fn on_fork_child(child: extern "C" fn()) -> io::Result<()> {
    let child: unsafe extern "C" fn() = child;
    // SAFETY: registering handlers has no preconditions; `child` is a plain
    // `'static` function pointer that does not unwind (an `extern "C"` fn
    // aborts instead), so glibc may call it at any later fork.
    let r = unsafe { libc::pthread_atfork(None, None, Some(child)) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}
