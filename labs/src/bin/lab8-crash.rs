//! `lab8-crash`: kill a lock holder and compare what the locks do. See `labs::lab8`.

use clap::Parser;
use race::SyncMode;
use std::process::ExitCode;

/// Kill a worker with SIGKILL while it holds the lock, and show what the
/// other workers experience, per lock.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// A lock of the registry that lives in the region, or all
    #[arg(long, default_value = "all", value_parser = parse_sync, help = labs::lab8::sync_help())]
    sync: Modes,
    /// Worker processes, including the one that dies
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=race::MAX_WORKERS as i64))]
    procs: u32,
    /// Increments per worker (the victim dies halfway)
    #[arg(long, value_name = "M", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000_000))]
    iters: u64,
    /// One JSON object per lock per line
    #[arg(long)]
    json: bool,
}

/// The locks to crash.
#[derive(Clone, Debug)]
struct Modes(Vec<SyncMode>);

fn parse_sync(s: &str) -> Result<Modes, String> {
    if s == "all" {
        return Ok(Modes(labs::lab8::all_modes()));
    }
    match SyncMode::parse(s) {
        Some(m) if labs::lab8::all_modes().contains(&m) => Ok(Modes(vec![m])),
        _ => Err(format!(
            "{s:?} is not a lock that can die holding; choose {}",
            labs::lab8::sync_help().replace(" | ", ", ")
        )),
    }
}

fn main() -> ExitCode {
    let cli: Cli = labs::parse();
    let modes = cli.sync.0;
    labs::main_with(|| labs::lab8::run(&modes, cli.procs, cli.iters, cli.json))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
