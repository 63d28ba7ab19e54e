//! The race crate's only unsafe calls: `fork(2)` and `_exit(2)`.

use nix::unistd::{ForkResult, Pid};

/// `fork()`: `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// The child of a multi-threaded parent may only rely on what `fork`
/// copies consistently: the race child calls [`shm::cleanup::reset_in_child`],
/// opens the region by name, runs its loop (no I/O, no locks the parent's
/// other threads could have held except glibc's malloc, which glibc resets in
/// the child) and ends with [`exit_now`].
pub(crate) fn fork() -> nix::Result<Option<Pid>> {
    // SAFETY: see above: the child only uses fork-safe facilities and never
    // returns into the caller's stack frames past the worker body; it ends
    // with `_exit`, so no destructors or atexit handlers of the parent run
    // twice.
    match unsafe { nix::unistd::fork()? } {
        ForkResult::Child => Ok(None),
        ForkResult::Parent { child } => Ok(Some(child)),
    }
}

/// `_exit(code)`: ends a forked child without running the parent's
/// destructors (which would unlink the parent's objects) or flushing its
/// copied stdio buffers.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// `clock_gettime(CLOCK_MONOTONIC)` in ns: one clock for every process on
/// the machine, so workers' timestamps can be compared with the
/// coordinator's.
pub(crate) fn now_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
