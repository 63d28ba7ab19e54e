//! `lab4-race`: the racing counter. See `labs::lab4`.

use clap::{ArgGroup, Parser};
use labs::lab4::{Options, Selection};
use race::WorkerKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Race workers incrementing one shared counter, with or without a lock,
/// and count the lost updates.
#[derive(Parser, Debug)]
#[command(version)]
#[command(group(ArgGroup::new("workers").args(["procs", "threads"])))]
struct Cli {
    /// The sync mode (the race crate's registry), or all
    #[arg(long, default_value = "none", help = labs::lab4::sync_help())]
    sync: Selection,
    /// Separate processes, each mapping the region by name [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=race::MAX_WORKERS as i64))]
    procs: Option<u32>,
    /// Threads in this process instead of processes
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=race::MAX_WORKERS as i64))]
    threads: Option<u32>,
    /// Increments per worker
    #[arg(long, value_name = "M", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    iters: u64,
    /// Lengthen each critical section: N rounds of spin_loop between the increment's load and its store, inside the lock (for atomic, after the fetch_add); roughly tens of ns a round, machine-dependent; at most 1,000,000
    #[arg(long, value_name = "N", default_value_t = 0)]
    hold: u32,
    /// Trials per mode; the lost updates are summarised as a distribution
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    trials: u32,
    /// One JSON object per trial per line, instead of text
    #[arg(long)]
    json: bool,
    /// Exit 1 if any update was lost
    #[arg(long)]
    check: bool,
    /// Draw the lost-update distribution (or, with --sync all, the modes compared; with --trace, the timeline around the first collision) as SVG
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Record every increment (value read, timestamps) and show which were lost and what overwrote them; one mode, one trial, at most 2,097,152 increments in all
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let cli: Cli = labs::parse();
    let (kind, workers) = match (cli.procs, cli.threads) {
        (_, Some(n)) => (WorkerKind::Threads, n),
        (Some(n), None) => (WorkerKind::Procs, n),
        (None, None) => (WorkerKind::Procs, 2),
    };
    let opts = Options {
        sync: cli.sync,
        kind,
        workers,
        iters: cli.iters,
        hold: cli.hold,
        trials: cli.trials,
        json: cli.json,
        check: cli.check,
        plot: cli.plot,
        trace: cli.trace,
    };
    labs::main_with(|| labs::lab4::run(&opts))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
