//! The system calls the latency ladder needs that `sys` does not have: a
//! shared anonymous mapping, process-shared `pthread_mutex_t` and
//! `pthread_cond_t` initialised in place, named and unnamed POSIX
//! semaphores, `eventfd`, a Unix-domain socket pair and CPU affinity. Every
//! `unsafe` block of the ladder is here, each with its reason.

use nix::sched::CpuSet;
use nix::unistd::Pid;
use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

/// A `MAP_SHARED | MAP_ANONYMOUS` mapping of one `T`, zero-filled, shared
/// with every child forked after it was made; unmapped on drop (in each
/// process that drops it; the ladder's children `_exit` without dropping).
pub(crate) struct SharedAnon<T> {
    ptr: NonNull<T>,
}

impl<T: shm::AnyBits> SharedAnon<T> {
    /// Maps a zeroed `T`: valid, since every bit pattern of `T` is
    /// (`AnyBits`: the ladder's shared structs are atomics and libc types
    /// initialised later in place).
    pub(crate) fn zeroed() -> io::Result<Self> {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        let len = std::num::NonZeroUsize::new(size_of::<T>().max(1)).expect("non-zero");
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing overlaps nothing; it is page-aligned, so aligned for `T`
        // (the ladder's types align to at most 64 bytes).
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
        // valid for the ladder's types) and is only ever shared, never
        // mutably borrowed: its fields are atomics and libc objects used
        // through their own synchronisation.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for SharedAnon<T> {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range and nothing borrows it any
        // more (borrows are tied to `self`).
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), size_of::<T>().max(1)) };
    }
}

// SAFETY: the mapped `T` is made of atomics and process-shared libc
// synchronisation objects, used from one thread per process.
unsafe impl<T: Sync> Send for SharedAnon<T> {}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(rc).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(rc)),
        ))
    }
}

/// `pthread_mutex_init` with `PTHREAD_PROCESS_SHARED`, in place.
///
/// # Safety
/// `m` points to a zeroed, unused `pthread_mutex_t` in a shared mapping that
/// outlives every user, initialised once and never moved.
pub(crate) unsafe fn mutex_init_shared(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: attr is initialised by pthread_mutexattr_init before any other
    // use, destroyed after; `m` is valid per this function's contract.
    unsafe {
        check(
            libc::pthread_mutexattr_init(attr.as_mut_ptr()),
            "pthread_mutexattr_init",
        )?;
        let r = check(
            libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED),
            "pthread_mutexattr_setpshared",
        )
        // Robust: a peer killed while holding it hands the next locker
        // EOWNERDEAD instead of a wait that never ends.
        .and_then(|()| {
            check(
                libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST),
                "pthread_mutexattr_setrobust",
            )
        })
        .and_then(|()| {
            check(
                libc::pthread_mutex_init(m, attr.as_ptr()),
                "pthread_mutex_init",
            )
        });
        libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        r
    }
}

/// `pthread_cond_init` with `PTHREAD_PROCESS_SHARED` and `CLOCK_MONOTONIC`
/// (for [`cond_wait_for`]), in place.
///
/// # Safety
/// As [`mutex_init_shared`], for a `pthread_cond_t`.
pub(crate) unsafe fn cond_init_shared(c: *mut libc::pthread_cond_t) -> io::Result<()> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_condattr_t>::uninit();
    // SAFETY: as in `mutex_init_shared`.
    unsafe {
        check(
            libc::pthread_condattr_init(attr.as_mut_ptr()),
            "pthread_condattr_init",
        )?;
        let r = check(
            libc::pthread_condattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED),
            "pthread_condattr_setpshared",
        )
        .and_then(|()| {
            check(
                libc::pthread_condattr_setclock(attr.as_mut_ptr(), libc::CLOCK_MONOTONIC),
                "pthread_condattr_setclock",
            )
        })
        .and_then(|()| {
            check(
                libc::pthread_cond_init(c, attr.as_ptr()),
                "pthread_cond_init",
            )
        });
        libc::pthread_condattr_destroy(attr.as_mut_ptr());
        r
    }
}

unsafe extern "C" {
    /// glibc ≥ 2.30 (not in the `libc` crate): `pthread_mutex_timedlock`
    /// against `CLOCK_MONOTONIC`, so the deadline ignores wall-clock steps.
    fn pthread_mutex_clocklock(
        m: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// How a lock or a wait on the robust mutex ended, when it ended holding
/// the mutex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// Normally.
    Clean,
    /// `EOWNERDEAD`: the peer died holding it. It is marked consistent
    /// again (`pthread_mutex_consistent`) and this thread holds it.
    OwnerDied,
}

fn held(rc: libc::c_int, m: *mut libc::pthread_mutex_t, what: &str) -> io::Result<Held> {
    match rc {
        0 => Ok(Held::Clean),
        libc::EOWNERDEAD => {
            // SAFETY: after EOWNERDEAD this thread holds `m`, which is what
            // `pthread_mutex_consistent` requires.
            let rc = unsafe { libc::pthread_mutex_consistent(m) };
            check(rc, "pthread_mutex_consistent")?;
            Ok(Held::OwnerDied)
        }
        rc => check(rc, what).map(|()| Held::Clean),
    }
}

/// `pthread_mutex_clocklock(m, CLOCK_MONOTONIC, now + timeout)`: a lock
/// that gives up (`TimedOut`) rather than wait for ever on a peer that
/// stopped, and reports a peer that died holding it.
///
/// # Safety
/// `m` was initialised by [`mutex_init_shared`] and is not yet destroyed.
pub(crate) unsafe fn mutex_lock_for(
    m: *mut libc::pthread_mutex_t,
    timeout: Duration,
) -> io::Result<Held> {
    let at = abs_time(libc::CLOCK_MONOTONIC, timeout);
    // SAFETY: per the contract; `at` is a valid timespec.
    let rc = unsafe { pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &at) };
    held(rc, m, "pthread_mutex_clocklock")
}

/// `pthread_mutex_unlock`. A failed unlock means the mutex is not what
/// this code believes (not held, or corrupted): that is fatal, never
/// ignored, since the mutex may stay on this thread's robust list.
///
/// # Safety
/// As [`mutex_lock_for`], and the caller holds `m`.
pub(crate) unsafe fn mutex_unlock(m: *mut libc::pthread_mutex_t) {
    // SAFETY: per the contract.
    let rc = unsafe { libc::pthread_mutex_unlock(m) };
    if rc != 0 {
        let msg = format!(
            "fatal: pthread_mutex_unlock of the ladder's mutex failed: {}\n",
            io::Error::from_raw_os_error(rc)
        );
        // SAFETY: writing a valid buffer to fd 2.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        std::process::abort();
    }
}

/// `pthread_cond_signal`.
///
/// # Safety
/// `c` was initialised by [`cond_init_shared`].
pub(crate) unsafe fn cond_signal(c: *mut libc::pthread_cond_t) {
    // SAFETY: per the contract.
    unsafe { libc::pthread_cond_signal(c) };
}

/// `pthread_cond_timedwait` for at most `timeout` (`CLOCK_MONOTONIC`):
/// `None` if it timed out, else how it got the mutex back (spurious
/// wake-ups included; `OwnerDied` when the peer died holding it).
///
/// # Safety
/// `c` and `m` were initialised by this module, and the caller holds `m`.
pub(crate) unsafe fn cond_wait_for(
    c: *mut libc::pthread_cond_t,
    m: *mut libc::pthread_mutex_t,
    timeout: Duration,
) -> io::Result<Option<Held>> {
    let at = abs_time(libc::CLOCK_MONOTONIC, timeout);
    // SAFETY: per the contract; `at` is a valid timespec.
    match unsafe { libc::pthread_cond_timedwait(c, m, &at) } {
        libc::ETIMEDOUT => Ok(None),
        rc => held(rc, m, "pthread_cond_timedwait").map(Some),
    }
}

fn abs_time(clock: libc::clockid_t, after: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut now) };
    let ns = now.tv_nsec as u64 + u64::from(after.subsec_nanos());
    libc::timespec {
        tv_sec: now.tv_sec + after.as_secs() as libc::time_t + (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

/// `sem_init(sem, pshared = 1, 0)` in place.
///
/// # Safety
/// `sem` points to a zeroed, unused `sem_t` in a shared mapping that
/// outlives every user.
pub(crate) unsafe fn sem_init_shared(sem: *mut libc::sem_t) -> io::Result<()> {
    // SAFETY: per the contract.
    if unsafe { libc::sem_init(sem, 1, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `sem_destroy`.
///
/// # Safety
/// Nobody uses `sem` any more.
pub(crate) unsafe fn sem_destroy(sem: *mut libc::sem_t) {
    // SAFETY: per the contract.
    unsafe { libc::sem_destroy(sem) };
}

/// A named semaphore opened with `sem_open`; `sem_close`d on drop (the
/// creator unlinks the name separately, [`sem_unlink`]).
pub(crate) struct NamedSem {
    sem: NonNull<libc::sem_t>,
}

impl NamedSem {
    /// `sem_open(name, O_CREAT | O_EXCL, 0600, 0)`.
    pub(crate) fn create(name: &str) -> io::Result<Self> {
        let c = CString::new(name).map_err(io::Error::other)?;
        // SAFETY: `c` is a valid C string; the variadic mode and value are
        // passed as the C types sem_open reads (mode_t promoted to c_uint).
        let p = unsafe {
            libc::sem_open(
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
                0 as libc::c_uint,
            )
        };
        Self::from_ret(p)
    }

    /// `sem_open(name, 0)`: an existing semaphore.
    pub(crate) fn open(name: &str) -> io::Result<Self> {
        let c = CString::new(name).map_err(io::Error::other)?;
        // SAFETY: `c` is a valid C string; without O_CREAT no more arguments
        // are read.
        let p = unsafe { libc::sem_open(c.as_ptr(), 0) };
        Self::from_ret(p)
    }

    fn from_ret(p: *mut libc::sem_t) -> io::Result<Self> {
        if p == libc::SEM_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(NamedSem {
            sem: NonNull::new(p).ok_or_else(|| io::Error::other("sem_open returned NULL"))?,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut libc::sem_t {
        self.sem.as_ptr()
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `sem` came from a successful sem_open and is closed once.
        unsafe { libc::sem_close(self.sem.as_ptr()) };
    }
}

/// `sem_unlink(name)`.
pub(crate) fn sem_unlink(name: &str) -> io::Result<()> {
    let c = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid C string.
    if unsafe { libc::sem_unlink(c.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `sem_post`.
///
/// # Safety
/// `sem` is an initialised or opened semaphore, alive.
pub(crate) unsafe fn sem_post(sem: *mut libc::sem_t) -> io::Result<()> {
    // SAFETY: per the contract.
    if unsafe { libc::sem_post(sem) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `sem_timedwait` for at most `timeout` (the `CLOCK_REALTIME` deadline
/// POSIX prescribes), retrying `EINTR`; `false` if it timed out.
///
/// # Safety
/// As [`sem_post`].
pub(crate) unsafe fn sem_wait_for(sem: *mut libc::sem_t, timeout: Duration) -> io::Result<bool> {
    let at = abs_time(libc::CLOCK_REALTIME, timeout);
    loop {
        // SAFETY: per the contract; `at` is a valid timespec.
        if unsafe { libc::sem_timedwait(sem, &at) } == 0 {
            return Ok(true);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ETIMEDOUT) => return Ok(false),
            _ => return Err(io::Error::last_os_error()),
        }
    }
}

/// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
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
    let set = nix::sched::sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// `sched_setaffinity(0, cpus)` for the calling thread.
pub(crate) fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    Ok(nix::sched::sched_setaffinity(Pid::from_raw(0), &set)?)
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`: a ladder child that would otherwise
/// wait forever for a parent that was killed dies with it.
pub(crate) fn die_with_parent() {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
}
