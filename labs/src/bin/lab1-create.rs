//! `lab1-create`: create a shared-memory object and look at its size and mode.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::lab1::Cli>();
    labs::main_with(|| labs::lab1::run(&cli))
}
