//! `lab11-condvar`: the correct monitor (glibc's and shmlab's futex one)
//! delivers every item exactly once across processes and threads; `--bug
//! if` is caught taking from an empty ring; `--bug one-cv` stalls and the
//! watchdog reports it instead of hanging; Ctrl-C and a killed lab leave
//! nothing that `shmlab clean` cannot remove.

mod common;
use common::{
    children_of, expect_bad_input, interrupt, run_json, run_leaving_nothing, shm_entries,
    shmlab_clean_removes_what_is_left, wait_until_gone,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LAB11: &str = env!("CARGO_BIN_EXE_lab11-condvar");

#[test]
fn the_correct_monitor_delivers_every_item_exactly_once() {
    for imp in ["pthread", "futex"] {
        for threads in [false, true] {
            for (p, c, k) in [("2", "3", "2"), ("3", "2", "1")] {
                let mut args = vec![
                    "--impl",
                    imp,
                    "--producers",
                    p,
                    "--consumers",
                    c,
                    "--slots",
                    k,
                    "--items",
                    "3000",
                ];
                if threads {
                    args.push("--threads");
                }
                let v = run_json(LAB11, "lab11", &args);
                let produced = v["produced"].as_u64().unwrap();
                assert_eq!(produced, 3000 * p.parse::<u64>().unwrap(), "{v}");
                assert_eq!(v["asked"], produced, "{v}");
                assert_eq!(v["exactly_once"], produced, "{args:?}: {v}");
                assert_eq!(v["consumed"], produced, "{args:?}: {v}");
                for k in ["lost", "duplicated", "torn", "took_from_empty"] {
                    assert_eq!(v[k], 0, "{args:?} {k}: {v}");
                }
                assert!(v["stall"].is_null(), "{args:?}: {v}");
            }
        }
    }
}

#[test]
fn waiting_with_if_takes_from_an_empty_ring_and_is_counted() {
    for imp in ["pthread", "futex"] {
        for threads in [false, true] {
            let mut args = vec!["--impl", imp, "--bug", "if", "--items", "10000"];
            if threads {
                args.push("--threads");
            }
            let v = run_json(LAB11, "lab11", &args);
            let took = v["took_from_empty"].as_u64().unwrap();
            assert!(took > 0, "{args:?}: {v}");
            // Every take from an empty ring read a slot already read (or
            // never written): the receipts show the damage.
            let (dup, torn) = (
                v["duplicated"].as_u64().unwrap(),
                v["torn"].as_u64().unwrap(),
            );
            assert!(dup + torn > 0, "{args:?}: {v}");
            assert_eq!(v["rewaited"], 0, "`if` never waits twice: {v}");
        }
    }
    let out = run_leaving_nothing(
        LAB11,
        "lab11",
        &["--bug", "if", "--items", "10000", "--check"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("BROKEN"), "{text}");
}

#[test]
fn one_condition_variable_with_signal_stalls_and_the_watchdog_reports_it() {
    for imp in ["pthread", "futex"] {
        for threads in [false, true] {
            let mut args = vec!["--impl", imp, "--bug", "one-cv", "--items", "20000"];
            if threads {
                args.push("--threads");
            }
            let t0 = Instant::now();
            let v = run_json(LAB11, "lab11", &args);
            // Bounded: the lab ended by itself, long before its own
            // two-minute deadline.
            assert!(t0.elapsed() < Duration::from_secs(100), "{args:?}");
            let stall = &v["stall"];
            let waiting = stall["waiting"]
                .as_array()
                .unwrap_or_else(|| panic!("{args:?} did not stall: {v}"));
            assert!(!waiting.is_empty(), "{v}");
            for w in waiting {
                assert_eq!(w["waits_on"], "the one condition variable", "{v}");
                assert!(w["tid"].as_i64().unwrap() > 0, "{v}");
            }
            // Nothing was duplicated or torn: the items simply stopped.
            // Every item produced was consumed once, except those left in
            // the ring when everybody fell asleep.
            assert_eq!(v["duplicated"], 0, "{v}");
            assert_eq!(v["torn"], 0, "{v}");
            assert_eq!(v["lost"], stall["count"], "{v}");
            let (produced, once) = (
                v["produced"].as_u64().unwrap(),
                v["exactly_once"].as_u64().unwrap(),
            );
            assert_eq!(once + v["lost"].as_u64().unwrap(), produced, "{v}");
            assert!(produced < v["asked"].as_u64().unwrap(), "{v}");
        }
    }
    let out = run_leaving_nothing(LAB11, "lab11", &["--bug", "one-cv", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("STALL after") && text.contains("waits on the one condition variable"),
        "{text}"
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    expect_bad_input(
        LAB11,
        "lab11",
        &[
            &["--producers", "0"][..],
            &["--consumers", "40"],
            &["--slots", "0"],
            &["--impl", "spin"],
            &["--bug", "while"],
            &["--items", "0"],
            &["--producers", "30", "--consumers", "10"],
            &["--items", "1000000", "--producers", "2"],
            &["--stall-ms", "5"],
        ],
    );
}

fn spawn_long() -> (std::process::Child, String) {
    let child = Command::new(LAB11)
        .args(["--items", "500000", "--slots", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("-{}-", child.id());
    let start = Instant::now();
    while shm_entries("lab11", &tag).is_empty() {
        assert!(start.elapsed().as_secs() < 10, "the region never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    (child, tag)
}

/// Ctrl-C mid-run: the workers are killed, the region removed, and the lab
/// dies of SIGINT as a shell expects.
#[test]
fn ctrl_c_removes_the_region() {
    let (child, tag) = spawn_long();
    interrupt(child);
    assert!(
        shm_entries("lab11", &tag).is_empty(),
        "left {:?}",
        shm_entries("lab11", &tag)
    );
}

/// The lab killed with SIGKILL (no clean-up possible): its workers notice
/// the parent is gone and end, and `shmlab clean` removes the region.
#[test]
fn a_killed_lab_leaves_only_what_shmlab_clean_removes() {
    let (mut child, tag) = spawn_long();
    let pid = child.id();
    let kids: Vec<i32> = children_of(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until_gone(&kids, Duration::from_secs(20));
    shmlab_clean_removes_what_is_left("lab11", &tag);
}

/// A worker killed with SIGKILL mid-run (perhaps holding the mutex): the
/// lab notices, stops the others, says so on one line, exits 2, and
/// removes the region.
#[test]
fn a_killed_worker_is_reported_and_the_region_removed() {
    for imp in ["pthread", "futex"] {
        let child = Command::new(LAB11)
            .args(["--items", "500000", "--slots", "1", "--impl", imp])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let tag = format!("-{pid}-");
        let start = Instant::now();
        let kids = loop {
            let kids: Vec<i32> = children_of(pid);
            if kids.len() == 5 && !shm_entries("lab11", &tag).is_empty() {
                break kids;
            }
            assert!(start.elapsed().as_secs() < 10, "the workers never started");
            std::thread::sleep(Duration::from_millis(5));
        };
        std::thread::sleep(Duration::from_millis(200));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(kids[3]),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{imp}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{imp}: {err}");
        assert!(
            err.contains(&format!("(pid {}) was killed", kids[3])),
            "{imp}: {err}"
        );
        assert!(
            shm_entries("lab11", &tag).is_empty(),
            "left {:?}",
            shm_entries("lab11", &tag)
        );
    }
}
