//! `lab11-condvar`: the bounded buffer with condition variables, and the
//! two classic condition-variable bugs. See `labs::lab11`.

use clap::Parser;
use labs::lab11::{Bug, Config, Impl, MAX_SLOTS, MAX_WORKERS};
use std::process::ExitCode;
use std::time::Duration;

/// Producers and consumers in separate processes share a ring guarded by a
/// process-shared mutex and condition variables; every item is proved
/// delivered exactly once. `--bug if` and `--bug one-cv` show the two
/// classic mistakes, detected and reported, never hung.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Producers
    #[arg(long, value_name = "P", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=MAX_WORKERS as i64))]
    producers: u32,
    /// Consumers
    #[arg(long, value_name = "C", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=MAX_WORKERS as i64))]
    consumers: u32,
    /// Items each producer makes
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=labs::lab11::MAX_ITEMS))]
    items: u64,
    /// Slots in the ring
    #[arg(long, value_name = "K", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=MAX_SLOTS as i64))]
    slots: u32,
    /// The mutex and condition variables: glibc's or shmlab's futex ones
    #[arg(long = "impl", value_enum, default_value = "pthread")]
    imp: Impl,
    /// Put a classic bug in
    #[arg(long, value_enum, default_value = "none")]
    bug: Bug,
    /// Workers as threads of this process instead of processes
    #[arg(long)]
    threads: bool,
    /// No progress for this many milliseconds with everyone waiting is a stall
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    stall_ms: u64,
    /// Exit 1 unless every item arrived exactly once and nothing stalled
    #[arg(long)]
    check: bool,
    /// One JSON object instead of text
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli: Cli = labs::parse();
    let cfg = Config {
        producers: cli.producers,
        consumers: cli.consumers,
        items: cli.items,
        slots: cli.slots,
        imp: cli.imp,
        bug: cli.bug,
        threads: cli.threads,
        stall: Duration::from_millis(cli.stall_ms),
    };
    labs::main_with(|| labs::lab11::main(&cfg, cli.check, cli.json))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
