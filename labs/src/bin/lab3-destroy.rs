//! `lab3-destroy`: an object's life cycle, checkpoint by checkpoint.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::lab3::Cli>();
    labs::main_with(|| labs::lab3::run(&cli))
}
