//! Child processes made with `fork(2)` (the handle is
//! [`shm::process::Child`], which reaps, and kills when dropped), plus the
//! small pipe helpers the labs need (`pipe2`, `poll` with a timeout, the
//! SIGPIPE disposition).

use crate::sys;
use crate::{Error, Result};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

pub use shm::process::{Child, Exit};

/// `fork()`s a child that runs `body` and `_exit`s with the status it
/// returns (101 if it panics). Returns the child and, in the parent, `keep`.
///
/// `keep` is what only the parent must hold: the child drops it first thing
/// (so put the parent's ends of pipes there, and the child's copies get
/// closed); `body` is dropped unrun in the parent (so the child's ends it
/// captured get closed there). The child resets the signal dispositions the
/// clean-up thread relies on ([`shm::cleanup::reset_in_child`]), never runs
/// the parent's destructors (it ends with `_exit`, so it cannot unlink the
/// parent's objects), and flushes stdout before it exits. The parent flushes
/// stdout before forking so the child does not print its buffer again. The
/// child is registered with [`shm::cleanup`] so Ctrl-C kills it.
///
/// # Safety
/// `keep` must not own objects whose drop has effects beyond this process
/// (a region this process created would be unlinked by the child), and
/// `body` must not use a [`Sender`](crate::Sender) or
/// [`Receiver`](crate::Receiver) this process holds (the child's copy would
/// be a second holder of that end: open the ring by name and claim instead).
/// If other threads exist at the moment of the fork, `body` runs in a copy
/// of the process where only this thread exists: it must not take a lock
/// another thread might have held (e.g. stdout's, if another thread prints;
/// glibc's `malloc` is safe, it resets its locks in the child).
pub unsafe fn spawn<K>(keep: K, body: impl FnOnce() -> i32) -> Result<(Child, K)> {
    // `keep` moves into the child's closure, which drops it first thing; in
    // the parent the closure is never run, so it is handed back below.
    let keep = std::cell::Cell::new(Some(keep));
    let child_body = || {
        drop(keep.take());
        body()
    };
    // SAFETY: forwarded to our caller (see # Safety); shm's helper does the
    // rest of what the docs above promise (flushes, signal reset, `_exit`,
    // Ctrl-C registration).
    let child =
        unsafe { shm::process::fork_child(child_body) }.map_err(|e| Error::io("fork", e))?;
    let keep = keep.take().expect("the parent never runs the child's body");
    Ok((child, keep))
}

/// `pipe2(O_CLOEXEC)`: `(read end, write end)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    sys::pipe().map_err(|e| Error::io("pipe", e))
}

/// `poll(fd, POLLIN, timeout)`: `true` if a `read` on `fd` would return at
/// once (data is there, or every write end is closed: end-of-file), `false`
/// if `timeout` passed first. Never blocks longer than `timeout`.
pub fn wait_readable(fd: impl AsFd, timeout: Duration) -> Result<bool> {
    sys::poll_readable(fd, timeout).map_err(|e| Error::io("poll", e))
}

/// What a write to a pipe without readers does to this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigPipe {
    /// `SIG_IGN`: the write fails with `EPIPE` (Rust programs start this way).
    Ignore,
    /// `SIG_DFL`: the kernel kills the writer with SIGPIPE (C programs start
    /// this way).
    Default,
}

/// `signal(SIGPIPE, SIG_IGN | SIG_DFL)` for the whole process.
pub fn set_sigpipe(how: SigPipe) -> Result<()> {
    sys::set_sigpipe(how == SigPipe::Ignore).map_err(|e| Error::io("signal(SIGPIPE)", e))
}
