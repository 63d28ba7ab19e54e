//! `--pitfall eof` (a reader that never sees end-of-file, because a write
//! end is still open) and `--pitfall epipe` (a writer whose reader has gone).

use super::EOF_WAIT;
use anyhow::Context;
use ipc::{Exit, SigPipe};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

shm::code_enum! {
    /// How the `--pitfall eof` child (the writer) exits.
    enum WriterExit: i32 {
        /// It wrote its message.
        Wrote = 0,
        /// The write failed.
        WriteFailed = 1,
    }
}

shm::code_enum! {
    /// How the `--pitfall epipe` child with SIGPIPE at its default action
    /// exits when it is *not* killed by SIGPIPE (which is what should happen).
    enum SigpipeChildExit: i32 {
        /// The write into a pipe without a reader succeeded.
        WroteAnyway = 2,
        /// The write failed with an error instead of a signal.
        WriteFailed = 3,
        /// It could not put SIGPIPE back to its default action.
        CannotResetSigpipe = 4,
    }
}

/// What `--pitfall eof` saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EofReport {
    /// What the child wrote and the parent read.
    pub data: String,
    /// Whether end-of-file arrived within [`EOF_WAIT`] while our write end
    /// was still open (it must not).
    pub eof_before_fix: bool,
    /// Whether it arrived once we closed it (it must).
    pub eof_after_fix: bool,
}

/// What the `--pitfall eof` child writes.
pub(super) const GREETING_FROM_CHILD: &str = "hello from the child";

/// `--pitfall eof`: the parent reads what its child wrote, but forgot to
/// close its own copy of the write end, so end-of-file never comes; a
/// `poll` with a timeout shows it without hanging. Closing it fixes it.
pub fn pitfall_eof(out: &mut impl Write) -> anyhow::Result<EofReport> {
    writeln!(
        out,
        "lab6-pipes --pitfall eof: a reader that never sees end-of-file"
    )?;
    writeln!(out)?;
    let (r, w) = ipc::pipe()?;
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    writeln!(out, "1. pipe(): read end fd {rfd}, write end fd {wfd}")?;
    let child_w = w.try_clone().context("dup the write end")?;
    // SAFETY: `keep` is the parent's read end; the child writes one short
    // message to a pipe and exits (no locks).
    let (mut child, r) = unsafe {
        ipc::spawn(r, move || {
            let mut f = File::from(child_w);
            match f.write_all(GREETING_FROM_CHILD.as_bytes()) {
                Ok(()) => WriterExit::Wrote.into(),
                Err(_) => WriterExit::WriteFailed.into(),
            }
        })
    }?;
    writeln!(
        out,
        "2. fork(): the child (pid {}) writes {GREETING_FROM_CHILD:?}, closes its write end and exits",
        child.pid()
    )?;
    writeln!(
        out,
        "   the parent forgets to close its own copy of the write end, fd {wfd}"
    )?;
    let mut r = File::from(r);
    let mut buf = vec![0u8; GREETING_FROM_CHILD.len()];
    r.read_exact(&mut buf).context("read the child's message")?;
    let data = String::from_utf8_lossy(&buf).into_owned();
    writeln!(out, "3. parent: read -> {} bytes: {data:?}", buf.len())?;
    let exit = child.wait()?;
    writeln!(
        out,
        "   parent: wait() -> the child {exit}: its write end is closed now"
    )?;
    writeln!(
        out,
        "   parent: waiting for end-of-file (poll on fd {rfd}, at most {} ms) ...",
        EOF_WAIT.as_millis()
    )?;
    let eof_before_fix = ipc::wait_readable(&r, EOF_WAIT)?;
    if eof_before_fix {
        writeln!(
            out,
            "   -> readable: unexpected, end-of-file arrived although fd {wfd} is open"
        )?;
    } else {
        writeln!(
            out,
            "   -> timed out: no end-of-file, because a write end is still open: our own fd {wfd}."
        )?;
        writeln!(
            out,
            "      A plain read() here would block forever, and a `while read() > 0` loop would never end."
        )?;
    }
    writeln!(out, "4. the fix: close(fd {wfd}), the last write end")?;
    drop(w);
    let ready = ipc::wait_readable(&r, EOF_WAIT)?;
    let n = if ready {
        r.read(&mut buf).context("read after the fix")?
    } else {
        usize::MAX
    };
    let eof_after_fix = ready && n == 0;
    if eof_after_fix {
        writeln!(
            out,
            "   parent: poll -> readable at once; read -> 0 bytes: end-of-file"
        )?;
    } else {
        writeln!(out, "   parent: still no end-of-file (unexpected)")?;
    }
    writeln!(out)?;
    writeln!(out, "What to notice:")?;
    for line in [
        "- End-of-file on a pipe means \"no write end is open in any process\", not \"the writer is done\".",
        "- After fork() every process holds a copy of every descriptor; each copy counts until closed.",
        "- So close the ends you do not use right after fork(), in the parent and in the child.",
    ] {
        writeln!(out, "  {line}")?;
    }
    Ok(EofReport {
        data,
        eof_before_fix,
        eof_after_fix,
    })
}

/// What `--pitfall epipe` saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpipeReport {
    /// The errno of the write with SIGPIPE ignored (`Some(EPIPE)` expected).
    pub write_error: Option<i32>,
    /// How the child with SIGPIPE at its default action ended
    /// (`Signal(SIGPIPE)` expected).
    pub default_child: Exit,
}

/// `--pitfall epipe`: writing into a pipe whose read ends are all closed.
pub fn pitfall_epipe(out: &mut impl Write) -> anyhow::Result<EpipeReport> {
    writeln!(
        out,
        "lab6-pipes --pitfall epipe: a writer whose reader has gone"
    )?;
    writeln!(out)?;
    let (r, w) = ipc::pipe()?;
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    writeln!(out, "1. pipe(): read end fd {rfd}, write end fd {wfd}")?;
    // SAFETY: `keep` is the parent's write end; the child only closes its
    // read end and exits.
    let (mut child, w) = unsafe {
        ipc::spawn(w, move || {
            drop(r);
            0
        })
    }?;
    writeln!(
        out,
        "2. fork(): the reader child (pid {}) exits without reading; the parent closed its own read end",
        child.pid()
    )?;
    let exit = child.wait()?;
    writeln!(
        out,
        "   parent: wait() -> the child {exit}: no read end is open anywhere now"
    )?;
    ipc::set_sigpipe(SigPipe::Ignore)?;
    writeln!(
        out,
        "3. with SIGPIPE ignored (Rust programs start that way; C programs do not):"
    )?;
    let mut w = File::from(w);
    let res = w.write(b"anyone there?");
    let write_error = match &res {
        Ok(n) => {
            writeln!(
                out,
                "   write(fd {wfd}, \"anyone there?\") -> {n} bytes (unexpected)"
            )?;
            None
        }
        Err(e) => {
            writeln!(out, "   write(fd {wfd}, \"anyone there?\") -> error: {e}")?;
            e.raw_os_error()
        }
    };
    if write_error == Some(libc::EPIPE) {
        writeln!(
            out,
            "   EPIPE, at once: nobody could ever read these bytes, so the kernel refuses them"
        )?;
    }
    drop(w);
    writeln!(
        out,
        "4. with SIGPIPE at its default action (as in C): a child writes into a pipe without a reader"
    )?;
    let (r2, w2) = ipc::pipe()?;
    drop(r2);
    // SAFETY: no `keep`; the child changes its own signal disposition and
    // writes to a pipe (no locks).
    let (mut child, ()) = unsafe {
        ipc::spawn((), move || {
            if ipc::set_sigpipe(SigPipe::Default).is_err() {
                return SigpipeChildExit::CannotResetSigpipe.into();
            }
            let mut f = File::from(w2);
            match f.write_all(b"anyone there?") {
                Ok(()) => SigpipeChildExit::WroteAnyway.into(),
                Err(_) => SigpipeChildExit::WriteFailed.into(),
            }
        })
    }?;
    let pid = child.pid();
    let default_child = child.wait()?;
    writeln!(out, "   child {pid} {default_child}")?;
    if default_child == Exit::Signal(libc::SIGPIPE) {
        writeln!(
            out,
            "   it never saw an error: the kernel killed it inside write()"
        )?;
    }
    writeln!(out)?;
    writeln!(out, "What to notice:")?;
    for line in [
        "- Writing to a pipe with no read end open anywhere sends SIGPIPE, whose default action kills the",
        "  writer. With SIGPIPE ignored (or handled) the write fails with EPIPE instead.",
        "- That is how `yes | head -1` ends: head exits, and yes dies of SIGPIPE on its next write.",
        "- A writer only gets this news if its own read end is closed too: had the parent kept fd {rfd},",
        "  the write would have succeeded and the bytes would have sat in the pipe for nobody.",
    ] {
        writeln!(out, "  {}", line.replace("{rfd}", &rfd.to_string()))?;
    }
    Ok(EpipeReport {
        write_error,
        default_child,
    })
}
