//! `lab12-rwlock`: both locks under both policies never let a reader see a
//! torn record and never lose a write, across processes and threads; a
//! writer under writer preference is always served; no lock tears;
//! `--check` passes with the defaults and names writer starvation when it
//! fails on it; Ctrl-C leaves nothing; bad input exits 2 with one line.

mod common;
use common::{
    children_of, expect_bad_input, interrupt, run_json, run_leaving_nothing, shm_entries,
    shmlab_clean_removes_what_is_left, wait_until_gone,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LAB12: &str = env!("CARGO_BIN_EXE_lab12-rwlock");

#[test]
fn no_torn_read_and_no_lost_write_under_either_lock_and_policy() {
    for imp in ["pthread", "futex"] {
        for prefer in ["reader", "writer"] {
            for threads in [false, true] {
                let mut args = vec![
                    "--impl",
                    imp,
                    "--prefer",
                    prefer,
                    "--writers",
                    "2",
                    "--writes",
                    "50",
                    "--secs",
                    "1",
                ];
                if threads {
                    args.push("--threads");
                }
                let v = run_json(LAB12, "lab12", &args);
                assert_eq!(v["torn"], 0, "{args:?}: {v}");
                assert_eq!(v["record_intact"], true, "{args:?}: {v}");
                assert_eq!(v["final_version"], v["writes_served"], "{args:?}: {v}");
                assert!(v["reads"].as_u64().unwrap() > 0, "{args:?}: {v}");
            }
        }
    }
}

#[test]
fn under_writer_preference_every_write_is_served() {
    for imp in ["pthread", "futex"] {
        for threads in [false, true] {
            // A generous limit: the writer is served after at most one read
            // hold per request, however slow the machine.
            let mut args = vec![
                "--impl", imp, "--prefer", "writer", "--writes", "100", "--secs", "120",
            ];
            if threads {
                args.push("--threads");
            }
            let v = run_json(LAB12, "lab12", &args);
            assert_eq!(v["writes_served"], 100, "{args:?}: {v}");
            assert_eq!(v["final_version"], 100, "{args:?}: {v}");
            assert_eq!(v["starved_ns"], 0, "{args:?}: {v}");
            assert_eq!(v["torn"], 0, "{args:?}: {v}");
            assert!(v["writer_wait"]["max_ns"].as_u64().is_some(), "{v}");
        }
    }
    let out = run_leaving_nothing(
        LAB12,
        "lab12",
        &[
            "--prefer", "writer", "--writes", "20", "--secs", "120", "--check",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
}

/// The line `--check` prints when it fails (`check failed: ... (exit 1)`).
fn check_failed_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("check failed:"))
        .unwrap_or_default()
        .to_string()
}

/// `--check` with the lab's defaults judges the lock, and a correct lock
/// passes it. (The defaults used to be reader preference, which starves
/// the writer by design: `--check` exited 1 saying "a reader saw a torn
/// record or a write was lost", though none was.)
#[test]
fn check_with_the_defaults_passes_with_a_correct_lock() {
    for args in [&["--check"][..], &["--impl", "futex", "--check"]] {
        let out = run_leaving_nothing(LAB12, "lab12", args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Reader preference with overlapping readers starves the writer: the
/// check fails, and says so, not "torn" or "lost".
#[test]
fn starvation_fails_the_check_as_writer_starvation() {
    for imp in ["pthread", "futex"] {
        let args = [
            "--impl",
            imp,
            "--prefer",
            "reader",
            "--readers",
            "6",
            "--read-us",
            "2000",
            "--secs",
            "1",
            "--check",
        ];
        let out = run_leaving_nothing(LAB12, "lab12", &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}");
        let line = check_failed_line(&out);
        assert!(line.contains("writer starvation"), "{args:?}: {line:?}");
        assert!(
            !line.contains("torn") && !line.contains("lost"),
            "{args:?}: {line:?}"
        );
        assert!(stdout.contains("verdict: writer starvation"), "{stdout}");
        assert!(stdout.contains("torn reads       "), "{stdout}");
    }
}

#[test]
fn without_a_lock_the_checker_sees_torn_reads() {
    // Many writes and short read holds: a reader overlaps a writer's
    // word-by-word update many times.
    let v = run_json(
        LAB12,
        "lab12",
        &[
            "--impl",
            "none",
            "--writes",
            "2000",
            "--read-us",
            "20",
            "--secs",
            "60",
        ],
    );
    assert!(v["torn"].as_u64().unwrap() > 0, "{v}");
    let out = run_leaving_nothing(
        LAB12,
        "lab12",
        &[
            "--impl",
            "none",
            "--writes",
            "2000",
            "--read-us",
            "20",
            "--secs",
            "60",
            "--check",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let line = check_failed_line(&out);
    assert!(line.contains("torn reads: "), "{line:?}");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    expect_bad_input(
        LAB12,
        "lab12",
        &[
            &["--readers", "0"][..],
            &["--writers", "40"],
            &["--readers", "30", "--writers", "10"],
            &["--impl", "spin"],
            &["--prefer", "nobody"],
            &["--writes", "0"],
            &["--writes", "40000", "--writers", "2"],
            &["--read-us", "200000"],
            &["--secs", "0"],
            &["--secs", "x"],
        ],
    );
}

/// Ctrl-C mid-run: the workers are killed, the region removed, and the lab
/// dies of SIGINT.
#[test]
fn ctrl_c_removes_the_region() {
    let child = Command::new(LAB12)
        .args(["--prefer", "reader", "--secs", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("-{}-", child.id());
    let start = Instant::now();
    while shm_entries("lab12", &tag).is_empty() {
        assert!(start.elapsed().as_secs() < 10, "the region never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    interrupt(child);
    assert!(
        shm_entries("lab12", &tag).is_empty(),
        "left {:?}",
        shm_entries("lab12", &tag)
    );
}

/// The lab killed with SIGKILL: its workers end with it (the kernel kills
/// them, `shm::process::fork_child`'s parent-death signal), and `shmlab
/// clean` removes the region.
#[test]
fn a_killed_lab_leaves_only_what_shmlab_clean_removes() {
    let mut child = Command::new(LAB12)
        .args(["--prefer", "reader", "--secs", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let tag = format!("-{pid}-");
    let start = Instant::now();
    let kids = loop {
        let kids: Vec<i32> = children_of(pid);
        if kids.len() == 4 && !shm_entries("lab12", &tag).is_empty() {
            break kids;
        }
        assert!(start.elapsed().as_secs() < 10, "the workers never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until_gone(&kids, Duration::from_secs(20));
    shmlab_clean_removes_what_is_left("lab12", &tag);
}
