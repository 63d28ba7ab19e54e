//! `lab9-algorithms`: mutual exclusion built by hand, raced across
//! processes. See `labs::lab9`.

use clap::{ArgGroup, Parser};
use labs::lab9::{FenceChoice, Options, Selection};
use race::WorkerKind;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Race the textbook's mutual-exclusion algorithms (or your own lock, from
/// a C library) across processes on this CPU, and count the times two
/// workers were inside the critical section at once.
///
/// flag, peterson, dekker and bakery are made of plain loads and stores:
/// on x86 they fail unless a fence (mfence) keeps each worker's store of
/// its own flag ahead of its load of the others'. tas, ttas and ticket use
/// an atomic read-modify-write and never fail; the ticket lock is also
/// first come, first served.
///
/// A lock library (--lock-lib) exports, in C:
///   size_t shmlab_lock_size(void);
///   void shmlab_lock_init(void *state, unsigned workers);
///   void shmlab_lock_acquire(void *state, unsigned worker);
///   void shmlab_lock_release(void *state, unsigned worker);
/// (labs/examples/locks/shmlab_lock.h; build with cc -O2 -shared -fPIC).
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
#[command(group(ArgGroup::new("workers").args(["procs", "threads"])))]
struct Cli {
    /// flag | peterson | dekker | bakery | tas | ttas | ticket | all
    #[arg(long, default_value = "all", conflicts_with = "lock_lib", value_parser = labs::lab9::parse_algo)]
    algo: Selection,
    /// none (the textbook's code) | seqcst (mfence between the flag store and the loads) | both
    /// [default: none; with --algo all, both for flag, peterson, dekker and bakery]
    #[arg(long, conflicts_with = "lock_lib", value_parser = labs::lab9::parse_fence)]
    fence: Option<FenceChoice>,
    /// Race the lock in this C shared library instead (see above)
    #[arg(long, value_name = "FILE.so")]
    lock_lib: Option<PathBuf>,
    /// Separate processes, each mapping the region by name [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=algos::MAX_WORKERS as i64))]
    procs: Option<u32>,
    /// Threads in this process instead of processes
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=algos::MAX_WORKERS as i64))]
    threads: Option<u32>,
    /// Critical-section entries per worker
    #[arg(long, value_name = "M", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    iters: u64,
    /// Trials per algorithm and fence
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    trials: u32,
    /// Most pause instructions a worker spends outside the critical section between entries (random, 0 to N)
    #[arg(long, value_name = "N", default_value_t = algos::RaceConfig::OUTSIDE, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    outside: u32,
    /// Stop a trial that has not finished after this many seconds
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = labs::fmt::parse_seconds)]
    timeout: Duration,
    /// One JSON object per trial per line, instead of text
    #[arg(long)]
    json: bool,
    /// Exit 1 on any violation, lost update or run that did not finish
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli: Cli = labs::parse();
    // --threads N, or --procs N (2 processes if neither is given).
    let kind = if cli.threads.is_some() {
        WorkerKind::Threads
    } else {
        WorkerKind::Procs
    };
    let opts = Options {
        algo: cli.algo,
        fence: cli.fence,
        lock_lib: cli.lock_lib,
        kind,
        workers: cli.threads.or(cli.procs).unwrap_or(2),
        iters: cli.iters,
        trials: cli.trials,
        outside: cli.outside,
        timeout: cli.timeout,
        json: cli.json,
        check: cli.check,
    };
    labs::main_with(|| labs::lab9::run(&opts))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
