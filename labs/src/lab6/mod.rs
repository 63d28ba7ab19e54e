//! Lab 6: pipes.
//!
//! - default: the textbook program — `pipe`, `fork`, the parent writes
//!   `Greetings`, the child reads and prints it, the parent waits;
//! - `--fifo`: the same between two unrelated processes through a named
//!   pipe (`mkfifo`), removed afterwards (also on Ctrl-C);
//! - `--compare`: round-trip latency and stream throughput of a pipe
//!   against the shared-memory ring of the `ipc` crate;
//! - `--pitfall eof`: a reader that never sees end-of-file because a write
//!   end is still open (ours), shown with a 1 s `poll`, then fixed;
//! - `--pitfall epipe`: a writer whose reader has gone: `EPIPE` with SIGPIPE
//!   ignored, death by SIGPIPE with the default action.
//!
//! This module holds the flags, the constants the demos share and the
//! dispatch; each demo is a private module of its own (`textbook`, `fifo`
//! with its reader, `pitfall`, `compare`) whose entry points are
//! re-exported here.

mod compare;
mod curve;
mod fifo;
mod ladder;
mod pitfall;
mod textbook;

pub use compare::{Comparison, compare};
pub use curve::{Point, curve};
pub use fifo::{fifo, fifo_reader};
pub use ladder::{LadderReport, ladder};
pub use pitfall::{EofReport, EpipeReport, pitfall_eof, pitfall_epipe};
pub use textbook::textbook;

use ipc::Exit;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What the textbook's parent sends.
pub const GREETING: &str = "Greetings";
/// How long the EOF pitfall waits for an end-of-file that cannot come.
pub const EOF_WAIT: Duration = Duration::from_secs(1);
/// Most round trips `--iters` accepts.
pub const MAX_ITERS: u64 = 10_000_000;
/// Most bytes `--bytes` accepts (16 GiB).
pub const MAX_BYTES: u64 = 16 << 30;

/// The pitfalls `--pitfall` can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pitfall {
    /// A reader that never sees end-of-file: a write end is still open
    Eof,
    /// A writer whose reader has gone: EPIPE, or death by SIGPIPE
    Epipe,
}

/// Flags of `lab6-pipes`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lab6-pipes",
    version,
    about = "Lab 6: pipes — the textbook parent/child pipe, a named pipe, two pitfalls, and a pipe against shared memory",
    after_help = "Run it with no flags first (the textbook program), then --pitfall eof and --pitfall epipe, \
                  then --fifo, then --compare.",
    group(clap::ArgGroup::new("mode").args(["fifo", "compare", "ladder", "curve", "pitfall", "fifo_reader"]))
)]
pub struct Cli {
    /// The same exchange between two unrelated processes through a named pipe (mkfifo)
    #[arg(long)]
    pub fifo: bool,
    /// Time a pipe against shared memory (the ipc ring): round trips and a stream
    #[arg(long)]
    pub compare: bool,
    /// With --compare: round trips to time
    #[arg(long, requires = "compare", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_ITERS))]
    pub iters: u64,
    /// With --compare: bytes to stream (4096, 64K, 256M, 1G ...)
    #[arg(long, requires = "compare", default_value = "256M", value_parser = parse_bytes)]
    pub bytes: u64,
    /// The latency ladder: round-trip distributions (p50..max) for every way two processes can signal, pinned and unpinned
    #[arg(long)]
    pub ladder: bool,
    /// With --ladder: timed round trips per rung
    #[arg(long, requires = "ladder", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(100..=MAX_ITERS))]
    pub round_trips: u64,
    /// Stream throughput against message size (64 B to 1 MiB): pipe against the ring, in place and copying out
    #[arg(long)]
    pub curve: bool,
    /// With --curve: the most bytes streamed per point
    #[arg(long, requires = "curve", default_value = "256M", value_parser = parse_bytes)]
    pub curve_bytes: u64,
    /// With --compare or --curve: the shared-memory ring's size, a multiple of 4K from 4K to 1G (64K, 256K, 1M ...)
    #[arg(long, value_name = "SIZE", value_parser = parse_ring_size)]
    pub ring_size: Option<usize>,
    /// With --compare: the ring's receiver copies each message out before checking it (two copies, as a pipe makes) instead of checking it in place
    #[arg(long)]
    pub copy_out: bool,
    /// With --ladder or --curve: write the picture as an SVG
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Show a pitfall: eof (a write end left open) or epipe (the reader has gone)
    #[arg(long, value_enum)]
    pub pitfall: Option<Pitfall>,
    /// (internal) The reading side of --fifo: open PATH, read it to the end, print it
    #[arg(long, hide = true, value_name = "PATH")]
    pub fifo_reader: Option<PathBuf>,
}

/// `--bytes`: a size as `shm::parse_size` reads it, at most [`MAX_BYTES`].
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    match shm::parse_size(s) {
        Ok(n) if n <= MAX_BYTES => Ok(n),
        Ok(_) => Err(format!("{s:?} is more than 16G; stream less")),
        Err(e) => Err(e.to_string()),
    }
}

/// `--ring-size`: a size as `shm::parse_size` reads it that a ring can
/// have ([`ipc::RingConfig::check`]).
pub fn parse_ring_size(s: &str) -> Result<usize, String> {
    let n = shm::parse_size(s).map_err(|e| e.to_string())?;
    let capacity = usize::try_from(n).map_err(|_| format!("{s:?} is too large"))?;
    ipc::RingConfig {
        signal: ipc::Signal::Futex,
        capacity,
    }
    .check()
    .map_err(|e| e.to_string())?;
    Ok(capacity)
}

/// Runs lab 6, printing to stdout. Output goes through an unlocked
/// `Stdout` so that no lock is held when a child is forked.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout();
    if let Some(path) = &cli.fifo_reader {
        return fifo_reader(path, out);
    }
    if cli.fifo {
        return fifo(out);
    }
    if cli.plot.is_some() && !cli.ladder && !cli.curve {
        anyhow::bail!("--plot draws the --ladder or --curve picture; add one of them");
    }
    if cli.ring_size.is_some() && !cli.compare && !cli.curve {
        anyhow::bail!("--ring-size sizes the ring of --compare or --curve; add one of them");
    }
    if cli.copy_out && !cli.compare {
        anyhow::bail!(
            "--copy-out changes how --compare's ring is received (--curve shows both); add --compare"
        );
    }
    let ring = cli.ring_size.unwrap_or(ipc::DEFAULT_CAPACITY);
    if cli.curve {
        curve(cli.curve_bytes, ring, cli.plot.as_deref(), out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if cli.ladder {
        ladder(cli.round_trips, cli.plot.as_deref(), out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if cli.compare {
        let receive = if cli.copy_out {
            ipc::Receive::CopyOut
        } else {
            ipc::Receive::InPlace
        };
        compare(cli.iters, cli.bytes, ring, receive, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    match cli.pitfall {
        Some(Pitfall::Eof) => {
            let r = pitfall_eof(out)?;
            Ok(check(
                r.data == pitfall::GREETING_FROM_CHILD && !r.eof_before_fix && r.eof_after_fix,
            ))
        }
        Some(Pitfall::Epipe) => {
            let r = pitfall_epipe(out)?;
            Ok(check(
                r.write_error == Some(libc::EPIPE)
                    && r.default_child == Exit::Signal(libc::SIGPIPE),
            ))
        }
        None => textbook(out),
    }
}

/// Exit 0 if the demo saw what it should, else 1 (a failed check).
fn check(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_CHECK_FAILED)
    }
}
