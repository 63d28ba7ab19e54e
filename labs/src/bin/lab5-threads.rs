//! `lab5-threads`: split one job over threads five ways and see which scale.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::lab5::Cli>();
    labs::main_with(|| labs::lab5::run(&cli))
}
