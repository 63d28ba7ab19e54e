//! Every binary's command line, from the one definition each has: the
//! labs whose `Cli` is in this library, and the binaries that keep theirs
//! in `src/bin/` (compiled here as modules too, through `#[path]`). The
//! guide's test parses the book's command lines with these, `shmlab
//! completions` and `shmlab manpages` generate from them.

use clap::CommandFactory;

#[path = "bin/lab10-ordering.rs"]
#[allow(dead_code, unused_imports)]
mod lab10_ordering;
#[path = "bin/lab11-condvar.rs"]
#[allow(dead_code, unused_imports)]
mod lab11_condvar;
#[path = "bin/lab12-rwlock.rs"]
#[allow(dead_code, unused_imports)]
mod lab12_rwlock;
#[path = "bin/lab13-deadlock.rs"]
#[allow(dead_code, unused_imports)]
mod lab13_deadlock;
#[path = "bin/lab4-race.rs"]
#[allow(dead_code, unused_imports)]
mod lab4_race;
#[path = "bin/lab7-buffer.rs"]
#[allow(dead_code, unused_imports)]
mod lab7_buffer;
#[path = "bin/lab8-crash.rs"]
#[allow(dead_code, unused_imports)]
mod lab8_crash;
#[path = "bin/lab9-algorithms.rs"]
#[allow(dead_code, unused_imports)]
mod lab9_algorithms;

/// Every binary, by name, with its command (name set to the binary's).
pub fn all() -> Vec<(&'static str, clap::Command)> {
    vec![
        (
            "lab1-create",
            <crate::lab1::Cli as CommandFactory>::command(),
        ),
        (
            "lab2-producer",
            <crate::lab2::ProducerCli as CommandFactory>::command(),
        ),
        (
            "lab2-consumer",
            <crate::lab2::ConsumerCli as CommandFactory>::command(),
        ),
        (
            "lab3-destroy",
            <crate::lab3::Cli as CommandFactory>::command(),
        ),
        (
            "lab5-threads",
            <crate::lab5::Cli as CommandFactory>::command(),
        ),
        (
            "lab6-pipes",
            <crate::lab6::Cli as CommandFactory>::command(),
        ),
        ("shmlab", <crate::tool::Cli as CommandFactory>::command()),
        ("lab4-race", lab4_race::command()),
        ("lab7-buffer", lab7_buffer::command()),
        ("lab8-crash", lab8_crash::command()),
        ("lab9-algorithms", lab9_algorithms::command()),
        ("lab10-ordering", lab10_ordering::command()),
        ("lab11-condvar", lab11_condvar::command()),
        ("lab12-rwlock", lab12_rwlock::command()),
        ("lab13-deadlock", lab13_deadlock::command()),
    ]
    .into_iter()
    .map(|(name, cmd)| (name, with_chapter(name, cmd.name(name).bin_name(name))))
    .collect()
}

/// `cmd` with its help ending in where `bin`'s chapter of the guide is.
pub fn with_chapter(bin: &str, cmd: clap::Command) -> clap::Command {
    match chapter(bin) {
        Some(ch) => cmd.after_help(format!(
            "Guide: {ch} (in the shmlab repository; the book: mdbook serve docs)"
        )),
        None => cmd,
    }
}

/// The chapter of the guide that covers `bin`.
pub fn chapter(bin: &str) -> Option<&'static str> {
    match bin {
        "lab1-create" => Some("docs/src/lab1.md"),
        "lab2-producer" => Some("docs/src/lab2.md"),
        "lab2-consumer" => Some("docs/src/lab2.md"),
        "lab3-destroy" => Some("docs/src/lab3.md"),
        "lab4-race" => Some("docs/src/lab4.md"),
        "lab5-threads" => Some("docs/src/lab5.md"),
        "lab6-pipes" => Some("docs/src/lab6.md"),
        "lab7-buffer" => Some("docs/src/lab7.md"),
        "lab8-crash" => Some("docs/src/lab8.md"),
        "lab9-algorithms" => Some("docs/src/lab9.md"),
        "lab10-ordering" => Some("docs/src/lab10.md"),
        "lab11-condvar" => Some("docs/src/lab11.md"),
        "lab12-rwlock" => Some("docs/src/lab12.md"),
        "lab13-deadlock" => Some("docs/src/lab13.md"),
        "shmlab" => Some("docs/src/tool.md"),
        _ => None,
    }
}
