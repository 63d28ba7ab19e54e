//! Lab 6: bytes move intact through a pipe and a FIFO, both pitfalls end
//! and report what they should, the comparison runs, nothing is left
//! behind, and bad input exits 2 with one line.

use ipc::Exit;
use std::process::{Command, Stdio};

const LAB6: &str = env!("CARGO_BIN_EXE_lab6-pipes");

/// The tests that fork inside this process run one at a time: a child
/// forked by one test would hold copies of another test's pipe ends and
/// could delay its end-of-file. Starting a lab takes it too: between its
/// `fork` and `exec` the new process holds copies of every descriptor,
/// close-on-exec or not, and a write into a pipe whose reader is gone
/// would then find a reader (the `epipe` pitfall once saw no `EPIPE`).
static FORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Run {
    code: Option<i32>,
    out: String,
    err: String,
    pid: u32,
}

fn run(args: &[&str]) -> Run {
    // Only while starting it: `spawn` returns once the child has exec'd.
    let guard = FORKS.lock().unwrap_or_else(|e| e.into_inner());
    let child = Command::new(LAB6)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lab6-pipes");
    drop(guard);
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for lab6-pipes");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    }
}

/// Files a run with this pid left in /dev/shm or the temporary directory.
fn leftovers(pid: u32) -> Vec<String> {
    let tag = format!("-{pid}-");
    [std::path::PathBuf::from(shm::SHM_DIR), std::env::temp_dir()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shmlab-") && n.contains(&tag))
        .collect()
}

#[test]
fn the_textbook_child_reads_greetings_then_eof() {
    let r = run(&[]);
    assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    assert!(
        r.out.contains(r#"read(fd[0]) -> 9 bytes: "Greetings""#),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("read(fd[0]) -> 0 bytes: end-of-file"),
        "{}",
        r.out
    );
    assert!(r.out.contains("exited with status 0"), "{}", r.out);
    assert!(r.out.contains("What to notice"), "{}", r.out);
}

#[test]
fn the_fifo_carries_greetings_between_unrelated_processes_and_is_removed() {
    let r = run(&["--fifo"]);
    assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    assert!(r.out.contains("prw-------"), "{}", r.out);
    assert!(r.out.contains(r#"read 9 bytes: "Greetings""#), "{}", r.out);
    assert!(
        r.out.contains("the reader exited with status 0"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("the name is gone (present: no)"),
        "{}",
        r.out
    );
    assert!(leftovers(r.pid).is_empty(), "{:?}", leftovers(r.pid));
}

#[test]
fn pitfall_eof_times_out_then_sees_eof() {
    let guard = FORKS.lock().unwrap_or_else(|e| e.into_inner());
    let mut sink = Vec::new();
    let rep = labs::lab6::pitfall_eof(&mut sink).unwrap();
    drop(guard);
    assert_eq!(rep.data, "hello from the child");
    assert!(!rep.eof_before_fix, "EOF arrived with a write end open");
    assert!(rep.eof_after_fix, "no EOF after closing the last write end");

    let r = run(&["--pitfall", "eof"]);
    assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    assert!(r.out.contains("-> timed out: no end-of-file"), "{}", r.out);
    assert!(r.out.contains("read -> 0 bytes: end-of-file"), "{}", r.out);
}

#[test]
fn pitfall_epipe_shows_epipe_and_death_by_sigpipe() {
    let guard = FORKS.lock().unwrap_or_else(|e| e.into_inner());
    let mut sink = Vec::new();
    let rep = labs::lab6::pitfall_epipe(&mut sink).unwrap();
    drop(guard);
    assert_eq!(rep.write_error, Some(libc::EPIPE));
    assert_eq!(rep.default_child, Exit::Signal(libc::SIGPIPE));

    let r = run(&["--pitfall", "epipe"]);
    assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    assert!(r.out.contains("Broken pipe"), "{}", r.out);
    assert!(
        r.out.contains("was killed by signal SIGPIPE (13)"),
        "{}",
        r.out
    );
}

#[test]
fn compare_runs_every_transport_and_leaves_nothing() {
    let r = run(&["--compare", "--iters", "300", "--bytes", "3M"]);
    assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    for label in [
        "pipe",
        "fifo (named pipe)",
        "shm ring, futex",
        "shm ring, spinning",
    ] {
        assert_eq!(
            r.out.matches(&format!("\n{label} ")).count(),
            2,
            "{label}: {}",
            r.out
        );
    }
    assert!(r.out.contains("stream of 3 MiB"), "{}", r.out);
    assert!(r.out.contains("the ring holds 1 MiB"), "{}", r.out);
    assert!(r.out.contains("checks each message in place"), "{}", r.out);
    assert!(leftovers(r.pid).is_empty(), "{:?}", leftovers(r.pid));
}

#[test]
fn compare_takes_a_ring_size_and_copy_out() {
    let r = run(&[
        "--compare",
        "--iters",
        "200",
        "--bytes",
        "2M",
        "--ring-size",
        "16K",
        "--copy-out",
    ]);
    assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    assert!(r.out.contains("the ring holds 16 KiB"), "{}", r.out);
    assert!(r.out.contains("copies each message out"), "{}", r.out);
    for label in [
        "shm ring, futex",
        "shm ring, spinning",
        "shm ring, adaptive",
    ] {
        assert_eq!(
            r.out.matches(&format!("\n{label} ")).count(),
            2,
            "{label}: {}",
            r.out
        );
    }
    assert!(leftovers(r.pid).is_empty(), "{:?}", leftovers(r.pid));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        &["--compare", "--iters", "0"][..],
        &["--compare", "--bytes", "0"],
        &["--compare", "--bytes", "17G"],
        &["--compare", "--bytes", "lots"],
        &["--iters", "5"],
        &["--fifo", "--compare"],
        &["--pitfall", "segfault"],
        &["--pitfall", "eof", "--fifo"],
        &["--compare", "--ring-size", "3000"],
        &["--compare", "--ring-size", "2G"],
        &["--curve", "--ring-size", "0"],
        &["--ring-size", "64K"],
        &["--ladder", "--ring-size", "64K"],
        &["--copy-out"],
        &["--curve", "--copy-out"],
    ] {
        let r = run(args);
        assert_eq!(r.code, Some(2), "{args:?}: {}{}", r.out, r.err);
        assert_eq!(r.err.lines().count(), 1, "{args:?}: {}", r.err);
        assert!(r.err.starts_with("error: "), "{args:?}: {}", r.err);
        assert!(r.out.is_empty(), "{args:?}: {}", r.out);
    }
}
