//! Every system call this crate makes that is not plain `read`/`write` on a
//! `std::fs::File`: `pipe2`, `mkfifo`, `fcntl`, `poll`,
//! `signal(SIGPIPE)`, the shared futex, and for the latency ladder a
//! shared anonymous mapping, `eventfd`, `socketpair` and CPU affinity
//! (forking, reaping and liveness are `shm::process`'s; the ladder's
//! pthread and semaphore objects are `shm_monitor`'s and `shm_sem`'s). The
//! only `unsafe` blocks of the crate outside the ring's byte copies are
//! here.

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

/// A `MAP_SHARED | MAP_ANONYMOUS` mapping of one `T`, zero-filled, shared
/// with every child forked after it was made (nothing in `/dev/shm`);
/// unmapped on drop (in each process that drops it; the ladder's children
/// `_exit` without dropping).
pub(crate) struct SharedAnon<T> {
    ptr: std::ptr::NonNull<T>,
}

impl<T: shm::AnyBits> SharedAnon<T> {
    /// Maps a zeroed `T`: valid, since every bit pattern of `T` is
    /// (`AnyBits`: the ladder's shared structs are atomics and libc objects
    /// initialised later in place).
    pub(crate) fn zeroed() -> io::Result<Self> {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        const { assert!(align_of::<T>() <= 4096, "a mapping is only page-aligned") };
        let len = std::num::NonZeroUsize::new(size_of::<T>().max(1)).expect("non-zero");
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing overlaps nothing; it is page-aligned, so aligned for `T`
        // (checked above).
        let p = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }?;
        Ok(SharedAnon { ptr: p.cast() })
    }
}

impl<T> std::ops::Deref for SharedAnon<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the mapping lives as long as `self`, holds one `T` (zeroed,
        // valid: `AnyBits`) and is only ever shared, never mutably
        // borrowed: its fields are atomics and libc objects used through
        // their own synchronisation.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> SharedAnon<T> {
    /// The mapped `T`, for initialising its objects in place.
    pub(crate) fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Drop for SharedAnon<T> {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range and nothing borrows it any
        // more (borrows are tied to `self`).
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), size_of::<T>().max(1)) };
    }
}

/// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `eventfd(0, EFD_CLOEXEC)`, as a descriptor to `read`/`write` 8-byte
/// counters through.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    Ok(nix::sys::eventfd::EventFd::from_value_and_flags(
        0,
        nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
    )?
    .into())
}

/// The CPUs this process may run on (`sched_getaffinity`).
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    use nix::sched::CpuSet;
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// `sched_setaffinity(0, cpus)` for the calling thread.
pub(crate) fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    Ok(nix::sched::sched_setaffinity(
        nix::unistd::Pid::from_raw(0),
        &set,
    )?)
}
