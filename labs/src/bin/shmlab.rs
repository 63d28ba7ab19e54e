//! `shmlab`: `ls`, `ps`, `watch`, `inspect NAME` and `clean` for what is in
//! /dev/shm, who uses it and who holds the locks inside it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::tool::Cli>();
    labs::main_with(|| labs::tool::run(&cli))
}
