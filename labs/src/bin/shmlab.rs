//! `shmlab`: `ls`, `inspect NAME` and `clean` for what is in /dev/shm.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = labs::parse::<labs::tool::Cli>();
    labs::main_with(|| labs::tool::run(&cli))
}
