//! A lab killed with SIGKILL in the middle of a long run takes its worker
//! processes with it: they are gone within moments (they used to race on
//! at full CPU for minutes, keeping the region mapped), and `shmlab clean`
//! removes everything the run left in `/dev/shm`.
//!
//! `shm::process::fork_child`, which every lab forks its workers with,
//! makes each child ask for SIGKILL when its parent dies
//! (`PR_SET_PDEATHSIG`). One test per lab that forks workers, each with a
//! run long enough to be killed in the middle of.

mod common;
use common::{SHMLAB, shm_entries, wait_until_gone};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the orphans get to disappear after the kill.
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// One run at a time: the labs' workers spin, and a busy machine would
/// only slow every run down.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every process whose parent is `pid`, whichever of its threads forked
/// it (`/proc/PID/task/*/children`).
fn children(pid: u32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut kids: Vec<i32> = tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    kids.sort_unstable();
    kids
}

/// Starts `bin args`, waits until its `workers` worker processes exist and
/// its objects are in `/dev/shm`, lets the run go on for a moment, then
/// kills it with SIGKILL. Asserts that every worker is gone within
/// [`GONE_WITHIN`] and that `shmlab clean --name` removes each object the
/// run left, leaving nothing of it.
fn killed_mid_run_leaves_no_worker(bin: &str, args: &[&str], workers: usize) {
    let _one = one_at_a_time();
    let mut lab = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let pid = lab.id();
    let tag = format!("-{pid}-");
    let start = Instant::now();
    let kids = loop {
        let kids = children(pid);
        if kids.len() == workers && !shm_entries("shmlab", &tag).is_empty() {
            break kids;
        }
        if start.elapsed() > Duration::from_secs(20) || lab.try_wait().unwrap().is_some() {
            let _ = lab.kill();
            let _ = lab.wait();
            for k in children(pid) {
                let _ = kill(Pid::from_raw(k), Signal::SIGKILL);
            }
            panic!("{bin} {args:?}: its {workers} workers never all started (saw {kids:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // In the middle of the run: past the start gate, working.
    std::thread::sleep(Duration::from_millis(300));
    let running: Vec<i32> = kids
        .iter()
        .copied()
        .filter(|&k| shm::process::liveness(k, 0) == shm::process::Liveness::Running)
        .collect();
    lab.kill().unwrap(); // SIGKILL: nothing of the lab runs any more
    lab.wait().unwrap();
    let waited = std::panic::catch_unwind(|| wait_until_gone(&kids, GONE_WITHIN));
    if waited.is_err() {
        // Leave nothing running behind a failed test.
        for &k in &kids {
            let _ = kill(Pid::from_raw(k), Signal::SIGKILL);
        }
    }
    let left = shm_entries("shmlab", &tag);
    let mut refused = Vec::new();
    for name in &left {
        let out = Command::new(SHMLAB)
            .args(["clean", "--name", &format!("/{name}")])
            .output()
            .unwrap();
        if !out.status.success() {
            refused.push(format!("{name}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    let after = shm_entries("shmlab", &tag);
    for name in &after {
        let _ = std::fs::remove_file(format!("{}/{name}", shm::SHM_DIR));
    }
    assert!(
        waited.is_ok(),
        "{bin} {args:?}: workers {kids:?} still ran {GONE_WITHIN:?} after their coordinator was killed"
    );
    assert!(
        !running.is_empty(),
        "{bin} {args:?}: no worker was running when the lab was killed"
    );
    assert!(
        !left.is_empty(),
        "{bin} {args:?}: a killed run left nothing?"
    );
    assert!(
        refused.is_empty() && after.is_empty(),
        "{bin} {args:?}: shmlab clean refused {refused:?} and left {after:?}"
    );
}

#[test]
fn lab4_race_processes() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab4-race"),
        &["--sync", "none", "--procs", "2", "--iters", "2000000000"],
        2,
    );
}

/// With a lock (a named semaphore: two objects left), killed while the
/// workers take turns holding it.
#[test]
fn lab4_race_processes_holding_a_semaphore() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab4-race"),
        &["--sync", "sem", "--procs", "3", "--iters", "2000000000"],
        3,
    );
}

#[test]
fn lab7_buffer() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab7-buffer"),
        &[
            "--producers",
            "2",
            "--consumers",
            "2",
            "--items",
            "524288",
            "--slots",
            "1",
        ],
        4,
    );
}

#[test]
fn lab9_algorithms() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab9-algorithms"),
        &[
            "--algo",
            "ticket",
            "--procs",
            "2",
            "--iters",
            "1000000000000",
            "--timeout",
            "600",
        ],
        2,
    );
}

#[test]
fn lab10_ordering() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab10-ordering"),
        &["--runs", "1000000000", "--fence", "none"],
        2,
    );
}

#[test]
fn lab11_condvar() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab11-condvar"),
        &[
            "--producers",
            "2",
            "--consumers",
            "3",
            "--items",
            "524288",
            "--slots",
            "1",
        ],
        5,
    );
}

#[test]
fn lab12_rwlock() {
    // Reader preference starves the writer: the run lasts the whole --secs.
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab12-rwlock"),
        &["--prefer", "reader", "--secs", "600"],
        4,
    );
}

#[test]
fn lab13_deadlock() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab13-deadlock"),
        &["--order", "global", "--rounds", "1000000"],
        5,
    );
}

/// Deadlocked philosophers, each asleep on a fork another holds (and
/// glibc's barrier, which has no timed wait), killed while the table
/// lingers.
#[test]
fn lab13_deadlocked_table() {
    killed_mid_run_leaves_no_worker(
        env!("CARGO_BIN_EXE_lab13-deadlock"),
        &[
            "--order",
            "naive",
            "--barrier",
            "pthread",
            "--linger",
            "600",
        ],
        5,
    );
}
