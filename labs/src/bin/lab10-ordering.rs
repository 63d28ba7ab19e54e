//! `lab10-ordering`: the store-buffering litmus test. See `labs::lab10`.

use clap::Parser;
use labs::lab10::{DEFAULT_RUNS, FenceChoice, MAX_RUNS, Options, Placement};
use race::WorkerKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// The store-buffering litmus test: each side stores 1 to its own variable,
/// then loads the other's. Counts how often both load 0, an outcome
/// sequential consistency forbids, with and without a fence.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Runs per configuration
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RUNS, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=MAX_RUNS))]
    runs: u64,
    /// The fence between each side's store and its load: none | seqcst | both (two tables)
    #[arg(long, default_value = "both")]
    fence: FenceChoice,
    /// Two threads of this process instead of two processes
    #[arg(long)]
    threads: bool,
    /// Pin both sides to one CPU (by default they are pinned to two different CPUs)
    #[arg(long)]
    same_cpu: bool,
    /// One JSON object per configuration per line, instead of text
    #[arg(long)]
    json: bool,
    /// Exit 1 if a fenced configuration saw r1 = r2 = 0 (the hardware or the harness is broken)
    #[arg(long)]
    check: bool,
    /// Draw the four outcomes' counts as an SVG bar chart
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli: Cli = labs::parse();
    let opts = Options {
        kind: if cli.threads {
            WorkerKind::Threads
        } else {
            WorkerKind::Procs
        },
        fence: cli.fence,
        runs: cli.runs,
        placement: if cli.same_cpu {
            Placement::SameCpu
        } else {
            Placement::TwoCpus
        },
        json: cli.json,
        check: cli.check,
        plot: cli.plot,
    };
    labs::main_with(|| labs::lab10::run(&opts))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
