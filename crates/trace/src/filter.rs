//! The seccomp-BPF filter the traced program runs under: it returns
//! `SECCOMP_RET_TRACE` for the system calls the tracer decodes and
//! `SECCOMP_RET_ALLOW` for every other one, so the program stops only
//! where the lesson is (as `strace --seccomp-bpf` does) and a hot loop
//! that makes no such call runs at full speed.
//!
//! The program, in the kernel's classic BPF (`seccomp(2)`, "Filter
//! programs"):
//!
//! ```text
//! ld  [arch]              ; struct seccomp_data.arch
//! jeq AUDIT_ARCH, next, allow
//! ld  [nr]                ; struct seccomp_data.nr
//! jeq NR_1, trace, next   ; one per traced call
//! ...
//! allow: ret SECCOMP_RET_ALLOW
//! trace: ret SECCOMP_RET_TRACE
//! ```
//!
//! A call made with another architecture's numbers (an i386 program on
//! x86_64) is allowed untraced: its numbers mean other calls.
//!
//! `execve` is never in the list: the filter is installed before the
//! program is executed, when the tracer cannot yet ask for seccomp stops,
//! and a `SECCOMP_RET_TRACE` without a tracer that asked fails the call
//! with `ENOSYS`. An exec is seen through `PTRACE_EVENT_EXEC` instead.

/// `AUDIT_ARCH_X86_64` (`<linux/audit.h>`).
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xc000_003e;
/// `AUDIT_ARCH_AARCH64` (`<linux/audit.h>`).
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xc000_00b7;

/// The system calls the tracer stops at: objects (open, size, mode,
/// close, dup, unlink, link for glibc's semaphores), mappings, pipes and
/// FIFOs.
pub fn traced_calls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_openat,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
        libc::SYS_fchmod,
        libc::SYS_fchown,
        libc::SYS_close,
        libc::SYS_dup,
        libc::SYS_dup3,
        libc::SYS_fcntl,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_unlinkat,
        libc::SYS_linkat,
        libc::SYS_renameat2,
        libc::SYS_pipe2,
        libc::SYS_mknodat,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_dup2,
        libc::SYS_unlink,
        libc::SYS_link,
        libc::SYS_rename,
        libc::SYS_renameat,
        libc::SYS_pipe,
        libc::SYS_mknod,
    ]);
    #[cfg(target_arch = "aarch64")]
    v.push(libc::SYS_renameat);
    v
}

/// One instruction.
fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// `FUTEX_PRIVATE_FLAG` (`<linux/futex.h>`): a futex only this process's
/// threads share.
const FUTEX_PRIVATE_FLAG: u32 = 128;
/// `FUTEX_WAIT` and `FUTEX_WAIT_BITSET`: the operations that sleep.
const FUTEX_WAIT: u32 = 0;
const FUTEX_WAIT_BITSET: u32 = 9;

/// Offset of `args[1]`'s low 32 bits in `struct seccomp_data` (nr, arch,
/// instruction_pointer, then the six 64-bit arguments).
#[cfg(target_endian = "little")]
const ARG1_LOW: u32 = 16 + 8;
#[cfg(target_endian = "big")]
const ARG1_LOW: u32 = 16 + 8 + 4;

/// The filter program. Besides the calls of [`traced_calls`], it stops at
/// a `futex` wait only when the futex is *shared* (no
/// `FUTEX_PRIVATE_FLAG`): the waits of process-shared semaphores, mutexes
/// and condition variables, which live in shared memory, and never the
/// private ones every threaded program makes.
///
/// Without `waits`, futex calls are never stopped at (the `futex_wait`
/// events are then missing; hangs are still found).
pub fn program(waits: bool) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W,
    };
    let calls = traced_calls();
    let n = calls.len();
    // Layout (index: instruction):
    //   0 ld arch; 1 jeq arch; 2 ld nr; 3..3+n jeq call -> trace;
    //   3+n jeq futex; 4+n ld arg1; 5+n jset private -> allow;
    //   6+n and 0x7f; 7+n jeq wait -> trace; 8+n jeq wait_bitset -> trace;
    //   9+n allow; 10+n trace.
    let allow = 9 + n;
    let trace = 10 + n;
    let jump = |from: usize, to: usize| u8::try_from(to - from - 1).expect("a short program");
    let mut p = vec![
        insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4),
        insn(BPF_JMP | BPF_JEQ | BPF_K, 0, jump(1, allow), AUDIT_ARCH),
        insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
    ];
    for (i, nr) in calls.iter().enumerate() {
        p.push(insn(
            BPF_JMP | BPF_JEQ | BPF_K,
            jump(3 + i, trace),
            0,
            *nr as u32,
        ));
    }
    // Without waits: a futex number that matches no call.
    let futex_nr = if waits {
        libc::SYS_futex as u32
    } else {
        u32::MAX
    };
    p.push(insn(
        BPF_JMP | BPF_JEQ | BPF_K,
        0,
        jump(3 + n, allow),
        futex_nr,
    ));
    p.push(insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG1_LOW));
    p.push(insn(
        BPF_JMP | BPF_JSET | BPF_K,
        jump(5 + n, allow),
        0,
        FUTEX_PRIVATE_FLAG,
    ));
    p.push(insn(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0x7f));
    p.push(insn(
        BPF_JMP | BPF_JEQ | BPF_K,
        jump(7 + n, trace),
        0,
        FUTEX_WAIT,
    ));
    p.push(insn(
        BPF_JMP | BPF_JEQ | BPF_K,
        jump(8 + n, trace),
        0,
        FUTEX_WAIT_BITSET,
    ));
    p.push(insn(BPF_RET | BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    p.push(insn(BPF_RET | BPF_K, 0, 0, libc::SECCOMP_RET_TRACE));
    debug_assert_eq!(p.len(), trace + 1);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program as the kernel would on (arch, nr, args[1]).
    fn run_op(p: &[libc::sock_filter], arch: u32, nr: u32, arg1: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let code = u32::from(i.code);
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                acc = match i.k {
                    0 => nr,
                    4 => arch,
                    k if k == ARG1_LOW => arg1,
                    k => panic!("load at {k}"),
                };
                pc += 1;
            } else if code == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K {
                acc &= i.k;
                pc += 1;
            } else if code == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K {
                pc += 1 + usize::from(if acc & i.k != 0 { i.jt } else { i.jf });
            } else if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K {
                pc += 1 + usize::from(if acc == i.k { i.jt } else { i.jf });
            } else if code == libc::BPF_RET | libc::BPF_K {
                return i.k;
            } else {
                panic!("unexpected instruction {code:#x}");
            }
        }
    }

    fn run(p: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        run_op(p, arch, nr, 0)
    }

    #[test]
    fn traced_calls_stop_and_every_other_call_runs() {
        let p = program(true);
        for nr in traced_calls() {
            assert_eq!(
                run(&p, AUDIT_ARCH, nr as u32),
                libc::SECCOMP_RET_TRACE,
                "{nr}"
            );
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_execve,
            libc::SYS_exit_group,
        ] {
            assert_eq!(
                run(&p, AUDIT_ARCH, nr as u32),
                libc::SECCOMP_RET_ALLOW,
                "{nr}"
            );
        }
        // Futexes: only a shared wait stops.
        let futex = libc::SYS_futex as u32;
        for (op, stops) in [
            (FUTEX_WAIT, true),
            (FUTEX_WAIT_BITSET, true),
            (FUTEX_WAIT_BITSET | 256, true), // FUTEX_CLOCK_REALTIME
            (FUTEX_WAIT | FUTEX_PRIVATE_FLAG, false),
            (FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, false),
            (1, false), // FUTEX_WAKE
            (1 | FUTEX_PRIVATE_FLAG, false),
        ] {
            let want = if stops {
                libc::SECCOMP_RET_TRACE
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            assert_eq!(run_op(&p, AUDIT_ARCH, futex, op), want, "futex op {op}");
        }
        // Without waits, no futex call stops.
        let quiet = program(false);
        for op in [FUTEX_WAIT, FUTEX_WAIT_BITSET, 1] {
            assert_eq!(
                run_op(&quiet, AUDIT_ARCH, futex, op),
                libc::SECCOMP_RET_ALLOW
            );
        }
        assert_eq!(
            run(&quiet, AUDIT_ARCH, libc::SYS_openat as u32),
            libc::SECCOMP_RET_TRACE
        );
        // Another architecture's numbers are never traced.
        assert_eq!(
            run(&p, 0x4000_0003, libc::SYS_openat as u32),
            libc::SECCOMP_RET_ALLOW
        );
    }
}
