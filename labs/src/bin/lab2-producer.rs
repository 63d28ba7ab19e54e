//! `lab2-producer`: the textbook's producer (first terminal).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::lab2::ProducerCli>();
    labs::main_with(|| labs::lab2::run_producer(&cli))
}
