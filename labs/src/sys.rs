//! The labs' only unsafe system calls: `fork(2)` and `_exit(2)`, wrapped
//! once so each lab can start worker processes.

use nix::unistd::{ForkResult, Pid};

/// `fork()`, running `body` in the child and ending it with `_exit(code)`
/// (`body`'s return value, or 101 if it panicked). Returns the child's pid.
///
/// The child first restores default signal actions
/// ([`shm::cleanup::reset_in_child`]), so Ctrl-C ends it like any process,
/// and never returns into the caller: the parent's destructors (which would
/// unlink the parent's objects) and buffered output never run twice.
pub fn spawn_child(body: impl FnOnce() -> i32) -> nix::Result<Pid> {
    // SAFETY: the child only runs `body` (which opens shared objects by
    // name and works on them; glibc's fork keeps malloc usable in the child
    // of a multi-threaded parent) and then `_exit`s without unwinding into
    // the parent's frames.
    match unsafe { nix::unistd::fork()? } {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            shm::cleanup::reset_in_child();
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            exit_now(code)
        }
    }
}

/// `_exit(code)`: ends a forked child at once.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
