//! Every system call of the tracer that is not a safe `nix` wrapper: the
//! child's set-up before `exec` (`PTRACE_TRACEME`, `PR_SET_PDEATHSIG`,
//! `PR_SET_NO_NEW_PRIVS`, `seccomp(SECCOMP_SET_MODE_FILTER)`), reading a
//! stopped tracee's syscall (`PTRACE_GET_SYSCALL_INFO`) and its memory
//! (`process_vm_readv`), and the `siginfo` of a signal it is about to get.

use crate::filter;
use nix::sys::ptrace;
use nix::unistd::Pid;
use std::io;

/// What a stop says about the system call it is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// At entry (a seccomp stop): the number and the six arguments.
    Entry { nr: u64, args: [u64; 6] },
    /// At exit: the return value (`-errno` on failure).
    Exit { ret: i64, is_error: bool },
    /// Neither (not a syscall stop, or the kernel said nothing).
    None,
}

/// `PTRACE_GET_SYSCALL_INFO` (Linux 5.3): architecture-independent, so the
/// tracer needs no register layout.
pub fn syscall_info(pid: Pid) -> io::Result<Syscall> {
    // Not `nix::sys::ptrace::syscall_info`: it passes 0 as the buffer's
    // size, so the kernel copies nothing and every stop reads as "none".
    // SAFETY: all-zero is a valid `ptrace_syscall_info` (integers and a
    // union of integers).
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GET_SYSCALL_INFO writes at most `size` bytes to the
    // buffer, which is that large and ours.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            std::mem::size_of::<libc::ptrace_syscall_info>(),
            &raw mut info,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled the union member that `op` names; each
    // arm reads only that member (plain integers, any bits valid).
    let s = unsafe {
        match info.op {
            libc::PTRACE_SYSCALL_INFO_SECCOMP => Syscall::Entry {
                nr: info.u.seccomp.nr,
                args: info.u.seccomp.args,
            },
            libc::PTRACE_SYSCALL_INFO_ENTRY => Syscall::Entry {
                nr: info.u.entry.nr,
                args: info.u.entry.args,
            },
            libc::PTRACE_SYSCALL_INFO_EXIT => Syscall::Exit {
                ret: info.u.exit.sval,
                is_error: info.u.exit.is_error != 0,
            },
            _ => Syscall::None,
        }
    };
    Ok(s)
}

/// The faulting address of the signal `pid` is about to receive (SIGBUS,
/// SIGSEGV), and its `si_code`.
pub fn fault_address(pid: Pid) -> io::Result<(u64, i32)> {
    let si = ptrace::getsiginfo(pid)?;
    // SAFETY: `si_addr` reads the union member the kernel fills for the
    // fault signals; for another signal it is some integer, which the
    // caller only compares with its mappings.
    let addr = unsafe { si.si_addr() } as u64;
    Ok((addr, si.si_code))
}

/// Reads up to `max` bytes at `addr` in `pid`'s memory, stopping at the
/// first NUL (not included). `None` if nothing could be read.
pub fn read_c_string(pid: Pid, addr: u64, max: usize) -> Option<Vec<u8>> {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        // Never cross a page in one read: the next page may be unmapped.
        let to_page = 4096 - (at % 4096) as usize;
        let want = to_page.min(max - out.len());
        let mut buf = vec![0u8; want];
        let n = process_vm_readv(
            pid,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &[RemoteIoVec {
                base: at as usize,
                len: want,
            }],
        )
        .ok()?;
        if n == 0 {
            break;
        }
        if let Some(nul) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..nul]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    (!out.is_empty()).then_some(out)
}

/// Reads two `int`s at `addr` (what `pipe`/`pipe2` wrote).
pub fn read_fd_pair(pid: Pid, addr: u64) -> Option<(i32, i32)> {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    let mut buf = [0u8; 8];
    let n = process_vm_readv(
        pid,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &[RemoteIoVec {
            base: addr as usize,
            len: 8,
        }],
    )
    .ok()?;
    (n == 8).then(|| {
        (
            i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]),
            i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]),
        )
    })
}

/// Adds to `cmd` the set-up its child makes between `fork` and `exec`:
/// `PTRACE_TRACEME` (the exec then stops it for us), SIGKILL if the tracer
/// dies (`PR_SET_PDEATHSIG`, checked against `getppid` for a tracer that
/// already died), and, unless `every_call`, the seccomp-BPF filter that
/// stops it only at the system calls the tracer decodes
/// (`PR_SET_NO_NEW_PRIVS` first, as an unprivileged filter requires).
pub fn prepare(cmd: &mut std::process::Command, every_call: bool, waits: bool) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as i32;
    let program = if every_call {
        None
    } else {
        Some(filter::program(waits))
    };
    // SAFETY: runs in the forked child before `exec`; it makes only
    // system calls (ptrace, prctl, getppid, seccomp), which take no lock,
    // and reads `program`, built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid().as_raw() != parent {
                return Err(io::Error::other("the tracer died before the exec"));
            }
            ptrace::traceme()?;
            if let Some(prog) = &program {
                install_filter(prog)?;
            }
            Ok(())
        });
    }
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)` and `seccomp(SECCOMP_SET_MODE_FILTER)`
/// with `prog`.
fn install_filter(prog: &[libc::sock_filter]) -> io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| io::Error::other("filter too long"))?,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog`, valid for its length for the whole
    // call (the kernel copies the program).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &raw const fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `/proc/PID/syscall`'s first fields: the number of the system call the
/// (stopped or sleeping) process is in and its first arguments; `None`
/// when it runs in user space or the file cannot be read.
pub fn current_syscall(pid: i32) -> Option<(i64, [u64; 3])> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut it = text.split_whitespace();
    let nr: i64 = it.next()?.parse().ok()?;
    let mut args = [0u64; 3];
    for a in &mut args {
        let s = it.next()?;
        *a = u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()?;
    }
    Some((nr, args))
}
