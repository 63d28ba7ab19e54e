//! `lab7-buffer`: the bounded buffer in shared memory. See `labs::lab7`.

use clap::Parser;
use labs::lab7::{BufferSync, Config, MAX_SLOTS, MAX_WORKERS};
use std::process::ExitCode;

/// Producers and consumers in separate processes share a ring of slots in
/// one region; every item is checked to arrive exactly once and intact.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Producer processes
    #[arg(long, value_name = "P", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=MAX_WORKERS as i64))]
    producers: u32,
    /// Consumer processes
    #[arg(long, value_name = "C", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=MAX_WORKERS as i64))]
    consumers: u32,
    /// Items each producer makes
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=labs::lab7::MAX_ITEMS))]
    items: u64,
    /// Slots in the ring
    #[arg(long, value_name = "K", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=MAX_SLOTS as i64))]
    slots: u32,
    /// Synchronisation
    #[arg(long, value_enum, default_value = "sem")]
    sync: BufferSync,
    /// Exit 1 if any item was lost, duplicated or torn
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
        sync: cli.sync,
    };
    labs::main_with(|| labs::lab7::main(&cfg, cli.check, cli.json))
}

/// This binary's command line, for the guide's test and the man pages
/// (`labs::commands` compiles this file as a module too, so that there is
/// one definition of its flags).
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
