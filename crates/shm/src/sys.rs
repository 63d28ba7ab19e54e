//! The only place in this crate that calls into libc unsafely: `mmap(2)`,
//! `munmap(2)`, `fork(2)`, `_exit(2)`, `signal(2)` and `pthread_atfork(3)`.
//! Everything else goes through `nix`'s safe wrappers.

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags};
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;

/// `mmap(NULL, len, PROT_READ[|PROT_WRITE], MAP_SHARED, fd, 0)`: a shared
/// mapping, so stores are visible to every process mapping the object.
pub(crate) fn map_shared(
    fd: impl AsFd,
    len: NonZeroUsize,
    writable: bool,
) -> nix::Result<NonNull<u8>> {
    let prot = if writable {
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
    } else {
        ProtFlags::PROT_READ
    };
    // SAFETY: a new mapping at an address the kernel picks (addr = None)
    // cannot alias any existing Rust object; the caller owns the returned
    // pages until `unmap` and only reaches them through atomics or raw
    // pointers, never `&mut`.
    let ptr = unsafe { nix::sys::mman::mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0)? };
    Ok(ptr.cast())
}

/// `munmap(ptr, len)`.
///
/// # Safety
/// `ptr`/`len` must be exactly one mapping returned by [`map_shared`], with
/// no reference into it alive after this call.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) -> nix::Result<()> {
    // SAFETY: the caller guarantees the range is a whole mapping of ours with
    // no live references.
    unsafe { nix::sys::mman::munmap(ptr.cast(), len) }
}

/// `kill(pid, 0)`: probes for existence without sending anything. `EPERM`
/// means the process is there but belongs to someone else.
pub(crate) fn pid_exists(pid: i32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// `fork(2)`: `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// # Safety
/// As [`crate::process::fork_child`], the only caller, states.
pub(crate) unsafe fn fork() -> std::io::Result<Option<i32>> {
    use nix::unistd::ForkResult;
    // SAFETY: the caller upholds the after-fork rules of `fork_child`.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => Ok(None),
        Ok(ForkResult::Parent { child }) => Ok(Some(child.as_raw())),
        Err(e) => Err(e.into()),
    }
}

/// `_exit(code)`.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no pointers, is async-signal-safe and never
    // returns; skipping destructors only leaks, and the process is gone.
    unsafe { libc::_exit(code) }
}

/// The process's umask, read from `/proc/self/status` (Linux 4.7+) so that
/// nothing is changed; falls back to `umask(2)` set-and-restore, which is
/// racy only against other threads creating files at the same instant.
pub(crate) fn current_umask() -> u32 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Umask:"))
        && let Ok(v) = u32::from_str_radix(line[6..].trim(), 8)
    {
        return v;
    }
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o077));
    umask(old);
    old.bits()
}

/// Restores the default action for the signals [`crate::cleanup`] catches,
/// in a freshly forked child: the child must die on Ctrl-C like any process
/// instead of writing to its parent's signal pipe.
pub(crate) fn default_signals() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: SIG_DFL installs no Rust code as a handler, so nothing
        // can run in signal context.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

/// This process's pid, cached: `getpid` is a real system call in current
/// glibc, and the locks record their holder on every acquisition. A
/// `pthread_atfork` child handler clears the cache, so a forked child never
/// reports its parent's pid.
pub(crate) fn cached_pid() -> i32 {
    use std::sync::Once;
    use std::sync::atomic::{AtomicI32, Ordering};
    static PID: AtomicI32 = AtomicI32::new(0);
    static HOOK: Once = Once::new();
    extern "C" fn forget_in_child() {
        PID.store(0, Ordering::Relaxed);
    }
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    HOOK.call_once(|| {
        // SAFETY: registers a plain function that only stores to a static
        // atomic, which is async-signal-safe as the child handler requires.
        unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
    });
    let p = std::process::id() as i32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// The function [`install_sigbus`] calls with the faulting address.
static SIGBUS_HOOK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `sigaction(SIGBUS, { SA_SIGINFO }, ...)`: on a SIGBUS, calls `hook`
/// with `si_addr`; if `hook` returns, restores the default action and
/// returns, so the faulting instruction runs again and the process dies
/// of SIGBUS as it would have.
pub(crate) fn install_sigbus(hook: fn(usize)) -> std::io::Result<()> {
    extern "C" fn handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO
        // handler; `si_addr` is the faulting address for SIGBUS.
        let addr = unsafe { (*info).si_addr() } as usize;
        let hook = SIGBUS_HOOK.load(std::sync::atomic::Ordering::Acquire);
        if hook != 0 {
            // SAFETY: only `install_sigbus` stores here, and it stores a
            // `fn(usize)`.
            let hook: fn(usize) = unsafe { std::mem::transmute::<usize, fn(usize)>(hook) };
            hook(addr);
        }
        // SAFETY: restoring the default disposition is async-signal-safe.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
    }
    SIGBUS_HOOK.store(hook as usize, std::sync::atomic::Ordering::Release);
    // SAFETY: a zeroed sigaction is a valid starting point; the handler
    // only reads atomics, formats into a stack buffer, and calls
    // `write(2)` and `_exit(2)`, all async-signal-safe.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `write(2, bytes)` then `_exit(code)`: all a signal handler may do to
/// report and stop.
pub(crate) fn write_stderr_and_exit(bytes: &[u8], code: i32) -> ! {
    // SAFETY: `bytes` is a valid buffer of that length; write and _exit are
    // async-signal-safe and take no locks.
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(code)
    }
}
