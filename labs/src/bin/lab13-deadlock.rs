//! `lab13-deadlock`: the dining philosophers as processes; deadlock found
//! across processes and named. See `labs::lab13`.

use clap::Parser;
use labs::lab13::{BarrierKind, Config, MAX_LINGER, MAX_PHILOSOPHERS, Order};
use std::process::ExitCode;
use std::time::Duration;

/// Dining philosophers in shared memory: each fork a futex lock in one
/// region, each philosopher a process. The naive order deadlocks and the lab
/// finds the cycle in the wait-for graph; the other orders never deadlock.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// How philosophers pick up forks
    #[arg(long, value_enum, default_value = "naive")]
    order: Order,
    /// Philosophers (and forks) at the table
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=MAX_PHILOSOPHERS as i64))]
    philosophers: u32,
    /// Meals each philosopher eats
    #[arg(long, value_name = "R", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rounds: u32,
    /// Microseconds a philosopher holds its first fork before reaching for the second
    #[arg(long, value_name = "US", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    hold_us: u64,
    /// Philosophers as threads of this process instead of processes
    #[arg(long)]
    threads: bool,
    /// The barrier between rounds: shmlab's futex one, or glibc's process-shared pthread_barrier_t (processes only: it has no timed wait)
    #[arg(long, value_enum, default_value = "futex")]
    barrier: BarrierKind,
    /// After finding a deadlock, leave the table deadlocked this many seconds before stopping it, so that `shmlab ps NAME` (the name is printed on stderr) can show who holds and who waits for each fork
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_LINGER.as_secs()))]
    linger: u64,
    /// One JSON object instead of text
    #[arg(long)]
    json: bool,
    /// Exit 1 if the table deadlocked
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli: Cli = labs::parse();
    let cfg = Config {
        philosophers: cli.philosophers,
        order: cli.order,
        rounds: cli.rounds,
        hold: Duration::from_micros(cli.hold_us),
        threads: cli.threads,
        barrier: cli.barrier,
        linger: Duration::from_secs(cli.linger),
    };
    labs::main_with(|| labs::lab13::main(&cfg, cli.check, cli.json))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
