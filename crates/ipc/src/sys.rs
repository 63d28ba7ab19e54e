//! Every system call this crate makes that is not plain `read`/`write` on a
//! `std::fs::File`: `pipe2`, `mkfifo`, `fcntl`, `poll`,
//! `signal(SIGPIPE)` and the shared futex (forking, reaping and liveness
//! are `shm::process`'s). The only
//! `unsafe` blocks of the crate outside the ring's byte copies are here.

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// Whether `pid` no longer runs: gone or a zombie waiting to be reaped
/// (the parent that should reap it may be the very process waiting on it).
/// A pid whose liveness cannot be known counts as running.
pub(crate) fn process_gone(pid: i32) -> bool {
    shm::process::liveness(pid, 0).is_dead()
}

/// `pipe2(O_CLOEXEC)`: `(read end, write end)`. Close-on-exec so that a
/// program started with `exec` does not inherit (and hold open) our ends.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// `mkfifo(path, mode)`.
pub(crate) fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let mode = nix::sys::stat::Mode::from_bits_truncate(mode as _);
    Ok(nix::unistd::mkfifo(path, mode)?)
}

/// `fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)`.
pub(crate) fn set_blocking(fd: impl AsFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fd = fd.as_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags & !OFlag::O_NONBLOCK))?;
    Ok(())
}

/// `poll({fd, POLLIN}, 1, timeout)`, retrying `EINTR` with the time left:
/// `true` if a `read` would not block (data, or end-of-file: `POLLHUP`).
pub(crate) fn poll_readable(fd: impl AsFd, timeout: Duration) -> io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `signal(SIGPIPE, ignore ? SIG_IGN : SIG_DFL)`.
pub(crate) fn set_sigpipe(ignore: bool) -> io::Result<()> {
    let handler = if ignore {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    // SAFETY: SIG_IGN and SIG_DFL install no Rust code as a handler, so
    // nothing can run in signal context.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, handler) }?;
    Ok(())
}

/// Shared `FUTEX_WAIT` (see [`shm_futex::futex_wait`]): `false` only on
/// timeout.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> bool {
    shm_futex::futex_wait(word, expected, Some(timeout))
}

/// Shared `FUTEX_WAKE` of one waiter.
pub(crate) fn futex_wake_one(word: &AtomicU32) {
    shm_futex::futex_wake(word, 1);
}
