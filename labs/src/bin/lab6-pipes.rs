//! `lab6-pipes`: the textbook pipe, a named pipe, two pitfalls, and a pipe
//! against shared memory.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::lab6::Cli>();
    labs::main_with(|| labs::lab6::run(&cli))
}
