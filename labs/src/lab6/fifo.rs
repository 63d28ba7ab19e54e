//! `--fifo`: the same exchange between two unrelated processes through a
//! named pipe (`mkfifo`); and `--fifo-reader PATH`, its reading side, which
//! runs as a program of its own.

use super::{GREETING, check};
use anyhow::Context;
use ipc::Fifo;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// `--fifo`: the writer (this process) and a reader started as a separate
/// program meet at a named pipe.
pub fn fifo(out: &mut impl Write) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    writeln!(
        out,
        "lab6-pipes --fifo: a named pipe between two unrelated processes"
    )?;
    writeln!(out)?;
    let fifo = Fifo::create_temp("lab6")?;
    let path = fifo.path().to_path_buf();
    let md = std::fs::metadata(&path)?;
    writeln!(
        out,
        "1. mkfifo({:?}, 0600): a pipe with a name; ls -l shows it as {}{} (p = named pipe)",
        path,
        if md.file_type().is_fifo() { "p" } else { "?" },
        shm::Mode::from_bits_truncate(md.permissions().mode()).symbolic()
    )?;
    let exe = std::env::current_exe().context("find this program to start the reader")?;
    // The reader dies with us; dropped on an error path, it is killed and
    // reaped.
    let mut reader = shm::process::Child::spawn(
        std::process::Command::new(&exe)
            .arg("--fifo-reader")
            .arg(&path),
    )
    .with_context(|| format!("start the reader {}", exe.display()))?;
    let rpid = reader.pid();
    writeln!(
        out,
        "2. started a separate program as the reader: {} --fifo-reader PATH (pid {rpid})",
        exe.file_name()
            .map_or("lab6-pipes".into(), |n| n.to_string_lossy())
    )?;
    writeln!(
        out,
        "   it is a new program (fork + exec): it shares no pipe with us, it only knows the name"
    )?;
    writeln!(
        out,
        "3. writer (pid {}): open(PATH, O_WRONLY) -- waits until a reader has it open; then write {GREETING:?}; close",
        std::process::id()
    )?;
    let written = (|| -> anyhow::Result<usize> {
        let mut w = Fifo::open_write(&path, Duration::from_secs(10))?;
        w.write_all(GREETING.as_bytes())
            .context("write to the FIFO")?;
        Ok(GREETING.len())
    })();
    written?;
    let status = reader.wait().context("wait for the reader")?;
    writeln!(
        out,
        "4. writer: wrote {} bytes and closed; the reader {}",
        GREETING.len(),
        status
    )?;
    fifo.remove()?;
    writeln!(
        out,
        "5. unlink(PATH): the name is gone (present: {})",
        if path.exists() { "yes" } else { "no" }
    )?;
    writeln!(out)?;
    writeln!(out, "What to notice:")?;
    for line in [
        "- The name is only a meeting point: open() on a FIFO waits until both a reader and a writer have it",
        "  open, and the bytes go through the kernel exactly as in an anonymous pipe, never to the disk.",
        "- Unrelated processes can use it, because they find it by path (and its mode decides who may).",
        "- It stays in the directory until unlinked, like a file: this lab removes it when done, or on Ctrl-C.",
    ] {
        writeln!(out, "  {line}")?;
    }
    Ok(check(status.success()))
}

/// `--fifo-reader PATH`: the reading side of `--fifo`, a program of its
/// own. Exit 1 if what arrived is not [`GREETING`].
pub fn fifo_reader(path: &Path, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let me = std::process::id();
    let mut f = Fifo::open_read(path)?;
    let mut got = Vec::new();
    f.read_to_end(&mut got).context("read from the FIFO")?;
    writeln!(
        out,
        "   reader (pid {me}): open(PATH, O_RDONLY); read {} bytes: {:?}; then read -> 0: end-of-file",
        got.len(),
        String::from_utf8_lossy(&got)
    )?;
    Ok(check(got == GREETING.as_bytes()))
}
