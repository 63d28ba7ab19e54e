//! Lab 5: every strategy gets the exact answer for any thread count, the
//! binary prints its tables, and bad input exits 2 with one line. No timing
//! assertions: the lesson is in the numbers, the tests check the answers.

use labs::lab5::{Strategy, expected, run_once};
use std::process::{Command, Stdio};

const LAB5: &str = env!("CARGO_BIN_EXE_lab5-threads");

#[test]
fn every_strategy_gets_the_exact_answer() {
    for strategy in Strategy::EACH {
        for threads in [1, 2, 3, 4, 7, 17] {
            for work in [1, 2, 999, 100_003] {
                let t = run_once(strategy, threads, work);
                assert_eq!(
                    t.total,
                    expected(work),
                    "{} with {threads} threads, work {work}",
                    strategy.name()
                );
                assert!(t.right());
            }
        }
    }
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(LAB5)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run lab5-threads");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_prints_a_table_per_strategy_and_a_comparison() {
    let (code, out, err) = run(&["--strategy", "all", "--threads", "3", "--work", "30K"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for s in Strategy::EACH {
        assert!(out.contains(&format!("strategy {}:", s.name())), "{out}");
    }
    assert_eq!(out.matches("  right").count(), 15, "{out}");
    assert!(!out.contains("WRONG"), "{out}");
    assert!(out.contains("comparison"), "{out}");
    assert!(out.contains("False sharing is sharing too"), "{out}");

    let (code, out, _) = run(&[
        "--strategy",
        "false-sharing",
        "--threads",
        "2",
        "--work",
        "1000",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("strategy false-sharing:") && !out.contains("comparison"),
        "{out}"
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        &["--threads", "0"][..],
        &["--threads", "100000"],
        &["--threads", "-3"],
        &["--work", "0"],
        &["--work", "5G"],
        &["--work", "lots"],
        &["--strategy", "telepathy"],
        &["--frobnicate"],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
}
