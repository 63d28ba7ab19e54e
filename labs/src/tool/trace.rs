//! `shmlab trace -- PROGRAM`: the student's own program, watched and
//! explained (the tracer is the `shm_trace` crate; this is its command
//! line: where the report goes and what the exit status says).
//!
//! With `-p PID` it attaches to a running program instead
//! ([`shm_trace::attach`]); Ctrl-C then detaches (the tracer ends, the
//! program runs on).
//!
//! **Ctrl-C** reaches the traced programs and the tracer together (the
//! terminal signals the whole foreground group): the tracer ends, and the
//! kernel kills every process it still traced (`PTRACE_O_EXITKILL`), so
//! nothing is left stopped or orphaned; no summary is printed then.

use anyhow::{Context, bail};
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// Runs `command` under the tracer; the report goes to `output` (default
/// standard error, so the program's own standard output is untouched).
pub fn trace(
    command: &[OsString],
    pid: Option<i32>,
    opts: &shm_trace::Options,
    json: bool,
    check: bool,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let out: Box<dyn std::io::Write + Send> = match output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .with_context(|| format!("cannot write the report to {}", p.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let output = shm_trace::Output::new(out, json);
    let traced = match (pid, command.split_first()) {
        (Some(pid), _) => shm_trace::attach(pid, opts, output),
        (None, Some((program, args))) => shm_trace::run(program, args, opts, output),
        (None, None) => bail!(
            "no program to trace: give one after --, e.g. shmlab trace -- ./producer /demo, or -p PID"
        ),
    };
    let program = command.first().cloned().unwrap_or_default();
    let (end, summary) = traced
        .map_err(|e| match e {
            shm_trace::TraceError::Spawn(err) => anyhow::anyhow!(
                "cannot start {}: {err}; give a program that exists and is executable (a path, or a name on $PATH)",
                crate::fmt::escape(program.as_encoded_bytes())
            ),
            other => anyhow::anyhow!("{other}"),
        })?;
    if check && summary.has_problems() {
        return Ok(ExitCode::from(1));
    }
    Ok(match end {
        shm_trace::RootEnd::Exited(c) => ExitCode::from((c & 0xff) as u8),
        shm_trace::RootEnd::Killed(sig) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
    })
}
