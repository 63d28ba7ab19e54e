//! `lab4-race` from the outside: output, JSON, --check, bad input.

use std::process::Command;

fn lab4(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(args)
        .output()
        .expect("lab4-race runs")
}

/// Runs lab4-race and also returns whatever in /dev/shm carries its pid
/// (shmlab names objects `shmlab-<purpose>-<pid>-<n>`).
fn lab4_leftovers(args: &[&str]) -> (std::process::Output, Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("lab4-race runs");
    let tag = format!("-{}-", child.id());
    let out = child.wait_with_output().unwrap();
    let left = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&tag))
        .collect();
    (out, left)
}

#[test]
fn json_lines_have_the_promised_keys() {
    let out = lab4(&[
        "--sync",
        "futex",
        "--threads",
        "2",
        "--iters",
        "5000",
        "--trials",
        "3",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in [
            "sync",
            "kind",
            "workers",
            "iters",
            "expected",
            "actual",
            "lost",
            "elapsed_ns",
            "ops_per_sec",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {line}");
        }
        assert_eq!(v["sync"], "futex");
        assert_eq!(v["kind"], "threads");
        assert_eq!(v["expected"], 10_000);
        assert_eq!(v["actual"], 10_000);
        assert_eq!(v["lost"], 0);
    }
}

#[test]
fn check_fails_only_when_updates_are_lost() {
    let ok = lab4(&[
        "--sync", "pthread", "--procs", "2", "--iters", "20000", "--check",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Without a lock, 2 processes x 1,000,000 increments lose updates in
    // nearly every trial; 5 trials make a miss vanishingly unlikely.
    let lost = lab4(&["--sync", "none", "--procs", "2", "--trials", "5", "--check"]);
    assert_eq!(
        lost.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&lost.stdout)
    );
    let text = String::from_utf8_lossy(&lost.stdout);
    assert!(text.contains("lost updates over 5 trials"), "{text}");
}

#[test]
fn all_modes_table_and_plot() {
    let dir = std::env::temp_dir().join(format!("shmlab-lab4-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("modes.svg");
    let out = lab4(&[
        "--sync",
        "all",
        "--procs",
        "2",
        "--iters",
        "20000",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for mode in [
        "none",
        "atomic",
        "spin",
        "futex",
        "pthread",
        "sem",
        "sem-unnamed",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{mode} "))),
            "no row for {mode}:\n{text}"
        );
    }
    assert!(
        text.contains("std skipped") && text.contains("parking_lot skipped"),
        "{text}"
    );
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("futex"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let cases: &[&[&str]] = &[
        &["--procs", "0"],
        &["--threads", "0"],
        &["--iters", "0"],
        &["--iters", "-5"],
        &["--iters", "18446744073709551615", "--procs", "2"],
        &["--iters", "99999999999999999999999"],
        &["--sync", "mutex"],
        &["--procs", "2", "--threads", "2"],
        &["--sync", "std", "--procs", "2"],
        &["--sync", "parking_lot"],
        &["--trials", "0"],
        &["--procs", "1000"],
        &["--hold", "-1"],
        &["--hold", "lots"],
        &["--hold", "2000000"],
    ];
    for args in cases {
        let (out, left) = lab4_leftovers(args);
        assert!(left.is_empty(), "{args:?} left {left:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(
        String::from_utf8_lossy(&lab4(&["--sync", "std", "--procs", "2"]).stderr)
            .contains("--threads")
    );
}

/// The worker processes a coordinator forked (Linux: /proc/PID/task/PID/children).
fn children_of(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn wait_for_workers(pid: u32, n: usize) -> Vec<i32> {
    let start = std::time::Instant::now();
    loop {
        let kids = children_of(pid);
        if kids.len() >= n {
            return kids;
        }
        assert!(start.elapsed().as_secs() < 10, "workers never started");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn leftovers(pid: u32) -> Vec<String> {
    let tag = format!("-{pid}-");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&tag))
        .collect()
}

#[test]
fn ctrl_c_stops_the_workers_and_removes_everything() {
    use std::os::unix::process::ExitStatusExt;
    let child = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(["--sync", "sem", "--procs", "2", "--iters", "1000000000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let workers = wait_for_workers(pid, 2);
    // The region and the named semaphore exist while it runs.
    let start = std::time::Instant::now();
    while leftovers(pid).len() < 2 {
        assert!(start.elapsed().as_secs() < 10, "objects never appeared");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    // Dies of SIGINT, as a shell expects of a program interrupted by Ctrl-C.
    assert_eq!(out.status.signal(), Some(libc::SIGINT), "{:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed this run's objects"));
    assert!(leftovers(pid).is_empty(), "left {:?}", leftovers(pid));
    for w in workers {
        assert!(
            !std::path::Path::new(&format!("/proc/{w}")).exists() || {
                // A zombie until init reaps it is acceptable; a running worker is not.
                std::fs::read_to_string(format!("/proc/{w}/stat"))
                    .map_or(true, |s| s.contains(") Z"))
            },
            "worker {w} still running"
        );
    }
}

#[test]
fn a_worker_killed_from_outside_is_reported_and_the_run_stops() {
    let child = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(["--sync", "futex", "--procs", "2", "--iters", "1000000000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let workers = wait_for_workers(pid, 2);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(workers[1]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?} to stop",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("pid {}", workers[1])) && err.contains("SIGKILL"),
        "{err}"
    );
    assert!(leftovers(pid).is_empty(), "left {:?}", leftovers(pid));
}

/// `lab4-race | head`: when the reader goes away the lab ends quietly with
/// the status of a SIGPIPE death (141), no panic message, nothing left.
#[test]
fn a_closed_stdout_ends_it_quietly() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(["--sync", "none", "--trials", "2000", "--iters", "1000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("lab4-race:"), "{first}");
    // The reader is dropped here: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(leftovers(pid).is_empty(), "left {:?}", leftovers(pid));
}

/// A coordinator killed before it releases its workers: the workers notice
/// it is gone (its pid and start time are in the region) and exit by
/// themselves instead of waiting at the barrier forever.
#[test]
fn workers_of_a_coordinator_killed_before_the_start_exit_by_themselves() {
    // Stopping the coordinator before its 64th fork is a race this test can
    // lose on a busy machine; an attempt where every worker started is
    // inconclusive, is cleaned up, and is tried again.
    let (mut child, pid, workers) = (0..5)
        .find_map(|_| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
                .args(["--sync", "sem", "--procs", "64", "--iters", "1000000000"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id();
            let coordinator = nix::unistd::Pid::from_raw(pid as i32);
            let _ = wait_for_workers(pid, 2);
            // Stopped before the last of 64 workers arrives, it can never
            // release them; then killed, it can neither release nor reap
            // them.
            nix::sys::signal::kill(coordinator, nix::sys::signal::Signal::SIGSTOP).unwrap();
            let workers = children_of(pid);
            if workers.len() < 64 {
                return Some((child, pid, workers));
            }
            for w in workers {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(w),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            child.kill().unwrap();
            child.wait().unwrap();
            for n in leftovers(pid) {
                let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
            }
            None
        })
        .expect("in 5 attempts, all 64 workers always started before the coordinator was stopped");
    child.kill().unwrap();
    child.wait().unwrap();
    let start = std::time::Instant::now();
    let running = |w: &i32| {
        std::fs::read_to_string(format!("/proc/{w}/stat"))
            .is_ok_and(|s| !s.contains(") Z") && s.contains("lab4-race"))
    };
    while workers.iter().any(running) {
        assert!(
            start.elapsed().as_secs() < 10,
            "workers {:?} still waiting for a dead coordinator",
            workers.iter().filter(|w| running(w)).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // What the killed coordinator left is its region and semaphore.
    for n in leftovers(pid) {
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
    }
}

/// Runs lab4-race with `args` and `--hold N`: it must succeed, leave
/// nothing in /dev/shm and (unless `--json`) say what the critical section
/// is. Returns its stdout.
fn held_run(args: &[&str], hold: u32) -> String {
    let n = hold.to_string();
    let all: Vec<&str> = args.iter().copied().chain(["--hold", &n]).collect();
    let (out, left) = lab4_leftovers(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all:?}: {text}{err}");
    assert!(left.is_empty(), "{all:?} left {left:?}");
    if !args.contains(&"--json") {
        let line = format!("critical section: load, {hold} spin_loop rounds, store");
        assert!(text.contains(&line), "{all:?}: {text}");
    }
    text
}

#[test]
fn hold_lengthens_the_critical_section() {
    let text = held_run(
        &[
            "--sync", "spin", "--procs", "2", "--iters", "5000", "--check",
        ],
        50,
    );
    assert!(text.contains("lost 0 "), "{text}");

    let json = held_run(
        &[
            "--sync",
            "futex",
            "--threads",
            "2",
            "--iters",
            "2000",
            "--json",
        ],
        50,
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["hold"], 50);
    assert_eq!(v["actual"], 4_000);

    let err = String::from_utf8_lossy(&lab4(&["--hold", "2000000"]).stderr).into_owned();
    assert!(err.contains("--hold 1000000 or fewer"), "{err}");
}

#[test]
fn trace_works_with_a_hold() {
    let text = held_run(
        &[
            "--sync",
            "none",
            "--threads",
            "2",
            "--iters",
            "2000",
            "--trace",
        ],
        20,
    );
    assert!(text.contains("trace: 4,000 increments recorded"), "{text}");
}
