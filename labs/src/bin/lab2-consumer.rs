//! `lab2-consumer`: the textbook's consumer (second terminal).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::lab2::ConsumerCli>();
    labs::main_with(|| labs::lab2::run_consumer(&cli))
}
