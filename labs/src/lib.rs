//! Shared plumbing for the shmlab lab binaries: one way to parse flags, run,
//! and turn the outcome into the command-line contract's exit codes.
//!
//! - 0: success;
//! - 1: a check the user asked for failed (e.g. `--check` saw lost updates);
//! - 2: bad input or an object problem, with **one** line on stderr saying
//!   what was wrong and how to fix it.
//!
//! Each lab's `main` is thin: it parses, calls library code, and maps the
//! result with [`main_with`]. A lab whose binary builds a `Config` from its
//! flags has, in its module, `run(cfg) -> Report` (the experiment, for
//! tests) and `main(cfg, check, json) -> ExitCode` (run, [`emit`] the
//! report, [`check_exit`]), in that argument order.
//!
//! Besides a module per lab (`lab1` ... `lab13`) and the `shmlab` tool
//! ([`tool`]), the crate has shared modules, and a lab (or the tool)
//! borrows only from these and from this root, never from another lab or
//! the tool:
//! - [`fmt`]: how numbers, durations, rates and modes are printed (one
//!   digit grouping, one set of time units), and how `--wait` seconds are
//!   read;
//! - [`payloads`]: the region payloads the tool decodes;
//! - [`workers`]: the start gate, reaping and the final grace-then-kill
//!   for the labs that fork their own worker processes;
//! - [`items`]: the bounded-buffer labs' items, checksums and receipts;

use std::process::ExitCode;

/// Writes a lab's result: one JSON line with `--json`, else its text report.
pub fn emit<R: serde::Serialize>(json: bool, r: &R, text: impl FnOnce(&R)) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    if json {
        let line = serde_json::to_string(r).context("encoding JSON")?;
        writeln!(std::io::stdout().lock(), "{line}").context("writing to stdout")?;
    } else {
        text(r);
    }
    Ok(())
}

/// The exit status of a lab run with `--check`: 1 when `failed` (saying
/// `check failed: <why> (exit 1)` unless the output is JSON), else 0.
pub fn check_exit(failed: bool, json: bool, why: &str) -> ExitCode {
    if !failed {
        return ExitCode::SUCCESS;
    }
    if !json {
        println!("\ncheck failed: {why} (exit 1)");
    }
    ExitCode::from(EXIT_CHECK_FAILED)
}

/// Exit status for bad input.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status for a failed check.
pub const EXIT_CHECK_FAILED: u8 = 1;

/// Parses flags with clap, but reports a usage error on one line (clap's
/// first line plus a pointer to `--help`) and exits 2; `--help` and
/// `--version` print as usual and exit 0.
pub fn parse<C: clap::Parser>() -> C {
    // The help ends with where the binary's chapter of the guide is.
    let bin = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let cmd = commands::with_chapter(&bin, C::command());
    match cmd
        .try_get_matches()
        .and_then(|m| <C as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                std::process::exit(
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                );
            }
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see --help)");
            std::process::exit(EXIT_BAD_INPUT as i32);
        }
    }
}

/// Runs a lab body after installing the Ctrl-C/SIGTERM clean-up thread
/// ([`shm::cleanup::install`]); an `Err` is printed as one line
/// (`error: ...`, the whole cause chain joined by `: `) and exits 2.
pub fn main_with(body: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    if let Err(e) = shm::cleanup::install() {
        eprintln!("error: cannot install the signal handler that removes objects on Ctrl-C: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    quiet_on_closed_stdout();
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(outcome) => outcome,
        // `lab4-race | head`: the reader went away. Unwinding has already
        // run the regions' destructors (their objects are removed); end
        // quietly with the status a shell expects of a SIGPIPE death.
        Err(payload) if is_closed_stdout(payload.as_ref()) => return ExitCode::from(128 + 13),
        Err(payload) => std::panic::resume_unwind(payload),
    };
    // Interrupted meanwhile: the clean-up thread is killing the workers and
    // will end the process with the signal; an error it caused (a worker
    // "died") is not the run's outcome.
    shm::cleanup::wait_if_interrupted();
    match outcome {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Rust ignores SIGPIPE, so `println!` to a closed pipe (`lab8-crash | head`)
/// panics with "failed printing to stdout: Broken pipe". That is not a bug
/// of the lab but the reader's choice: keep its panic message off stderr
/// ([`main_with`] then exits with status 141), and every other panic as it
/// is.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_closed_stdout(info.payload()) {
            default(info);
        }
    }));
}

/// Whether a panic payload is std's "failed printing to stdout" for a
/// closed pipe.
fn is_closed_stdout(payload: &(dyn std::any::Any + Send)) -> bool {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe")
}

// `labs::…` paths also work inside the library: the binaries' files that
// `commands` compiles as modules use them.
extern crate self as labs;

pub mod commands;
pub mod decoded;
pub mod fmt;
pub mod items;
pub mod lab1;
pub mod lab10;
pub mod lab11;
pub mod lab12;
pub mod lab13;
pub mod lab2;
pub mod lab3;
pub mod lab4;
pub mod lab5;
pub mod lab6;
pub mod lab7;
pub mod lab8;
pub mod lab9;
pub mod payloads;
pub mod snapshot;
pub mod tool;
pub mod workers;
