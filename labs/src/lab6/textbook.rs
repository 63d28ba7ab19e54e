//! The textbook program: `pipe`, `fork`, the parent writes [`GREETING`],
//! the child reads and prints it, the parent waits.

use super::{GREETING, check};
use anyhow::Context;
use ipc::Exit;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

shm::code_enum! {
    /// How the textbook's child exits; the parent's `wait()` reports it.
    enum ReaderExit: i32 {
        /// It read exactly [`GREETING`].
        Greeted = 0,
        /// It read something else.
        WrongMessage = 1,
        /// A `read` failed.
        ReadFailed = 2,
    }
}

/// The textbook program: the parent writes [`GREETING`] into a pipe, the
/// child reads and prints it. Exit 1 if the child read something else.
pub fn textbook(out: &mut impl Write) -> anyhow::Result<ExitCode> {
    writeln!(
        out,
        "lab6-pipes: the textbook pipe program (the parent writes, the child reads)"
    )?;
    writeln!(out)?;
    let (r, w) = ipc::pipe()?;
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    writeln!(
        out,
        "1. pipe(fd): fd[0] = {rfd} is the read end, fd[1] = {wfd} the write end"
    )?;
    writeln!(
        out,
        "2. fork(): the child starts with copies of both descriptors; each side closes the end it does not use:"
    )?;
    writeln!(out, "   parent: close(fd[0]) -- it only writes")?;
    writeln!(
        out,
        "   child:  close(fd[1]) -- it only reads, and must not hold a write end, or it would never see end-of-file"
    )?;
    // SAFETY: `keep` is the parent's write end (the child closes its copy);
    // the child reads a pipe and prints through an unlocked `Stdout` (this
    // process holds no stdout lock while forking; the only other thread,
    // the clean-up thread, waits for signals and holds no lock).
    let (mut child, w) = unsafe {
        ipc::spawn(w, move || {
            let mut f = File::from(r);
            let mut o = std::io::stdout();
            let me = std::process::id();
            let mut buf = [0u8; 64];
            let mut got = Vec::new();
            loop {
                match f.read(&mut buf) {
                    Ok(0) => {
                        let _ = writeln!(
                            o,
                            "   child  (pid {me}): read(fd[0]) -> 0 bytes: end-of-file, no write end is open anywhere"
                        );
                        break;
                    }
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        let _ = writeln!(
                            o,
                            "   child  (pid {me}): read(fd[0]) -> {n} bytes: {:?}",
                            String::from_utf8_lossy(&buf[..n])
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(o, "   child  (pid {me}): read failed: {e}");
                        return ReaderExit::ReadFailed.into();
                    }
                }
            }
            let code = i32::from(if got == GREETING.as_bytes() {
                ReaderExit::Greeted
            } else {
                ReaderExit::WrongMessage
            });
            let _ = writeln!(o, "   child  (pid {me}): close(fd[0]); exit({code})");
            code
        })
    }?;
    let pid = child.pid();
    writeln!(
        out,
        "   fork() returned {pid} in the parent (and 0 in the child)"
    )?;
    writeln!(
        out,
        "3. parent (pid {}): write(fd[1], {GREETING:?}, {}); close(fd[1])",
        std::process::id(),
        GREETING.len()
    )?;
    let mut w = File::from(w);
    w.write_all(GREETING.as_bytes())
        .context("write to the pipe")?;
    drop(w);
    let exit = child.wait()?;
    writeln!(out, "4. parent: wait() -> child {pid} {exit}")?;
    writeln!(out)?;
    writeln!(out, "What to notice:")?;
    for line in [
        "- A pipe is a one-way buffer in the kernel with two descriptors. After fork() both processes hold both",
        "  ends, so each closes the one it does not use.",
        "- The reader must close its write end: read() returns 0 (end-of-file) only when every write end is",
        "  closed, its own copy included (see --pitfall eof).",
        "- The writer closes its read end so that, if the reader goes away, write() fails with EPIPE (or",
        "  SIGPIPE kills it) instead of filling a pipe nobody will read (see --pitfall epipe).",
        "- The parent closed its write end after writing: that close is what the child's end-of-file means.",
        "- Every byte was copied twice, into the kernel by write() and out by read(); see --compare for",
        "  what shared memory does instead.",
    ] {
        writeln!(out, "  {line}")?;
    }
    Ok(check(exit == Exit::Code(ReaderExit::Greeted.into())))
}
