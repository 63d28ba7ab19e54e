//! `lab12-rwlock`: a readers-writer lock in shared memory, torn reads and
//! writer starvation. See `labs::lab12`.

use clap::Parser;
use labs::lab12::{Config, Impl, MAX_WORKERS, Prefer};
use std::process::ExitCode;
use std::time::Duration;

/// Readers and writers in separate processes share a multi-word record
/// under a process-shared readers-writer lock; readers count torn reads and
/// writers measure how long they wait, under reader or writer preference.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Writer starvation: --prefer reader shows it (the readers overlap and keep the lock; more --readers, a longer --read-us or a shorter --secs starve the writer more), and --check then fails naming it. The defaults (writer preference) starve nobody: with a correct lock, --check passes."
)]
struct Cli {
    /// Readers (they read back to back)
    #[arg(long, value_name = "R", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=MAX_WORKERS as i64))]
    readers: u32,
    /// Writers
    #[arg(long, value_name = "W", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_WORKERS as i64))]
    writers: u32,
    /// Write requests per writer, 1 ms apart
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=labs::lab12::MAX_WRITES))]
    writes: u64,
    /// Microseconds a reader holds the read lock each time
    #[arg(long, value_name = "US", default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    read_us: u64,
    /// The lock: glibc's, shmlab's futex one, or none
    #[arg(long = "impl", value_enum, default_value = "pthread")]
    imp: Impl,
    /// Whom the lock prefers; reader shows writer starvation
    #[arg(long, value_enum, default_value = "writer")]
    prefer: Prefer,
    /// Workers as threads of this process instead of processes
    #[arg(long)]
    threads: bool,
    /// End the run after this many seconds even if writes still wait
    #[arg(long, value_name = "S", default_value = "3", value_parser = labs::fmt::parse_seconds)]
    secs: Duration,
    /// Exit 1 on a torn read, a lost write or a write never served (writer starvation, which --prefer reader shows), saying which
    #[arg(long)]
    check: bool,
    /// One JSON object instead of text
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli: Cli = labs::parse();
    let cfg = Config {
        readers: cli.readers,
        writers: cli.writers,
        writes: cli.writes,
        read_hold: Duration::from_micros(cli.read_us),
        imp: cli.imp,
        prefer: cli.prefer,
        threads: cli.threads,
        limit: cli.secs,
    };
    labs::main_with(|| labs::lab12::main(&cfg, cli.check, cli.json))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
