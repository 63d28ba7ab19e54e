//! What a crash leaves behind, and the tools that deal with it.

use std::process::Command;
use std::time::{Duration, Instant};

fn entries_with(tag: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(tag))
        .collect()
}

/// The tests that run `shmlab clean` (which removes every stale object of
/// this user, another test's included) run one at a time.
fn cleaning() -> std::sync::MutexGuard<'static, ()> {
    static CLEAN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CLEAN.lock().unwrap_or_else(|e| e.into_inner())
}

fn shmlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shmlab"))
        .args(args)
        .output()
        .unwrap()
}

/// Starts `lab4-race --sync sem` and waits until its region and its named
/// semaphore exist; returns it and the `-PID-` tag its objects carry.
fn start_sem_race() -> (std::process::Child, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(["--sync", "sem", "--procs", "2", "--iters", "300000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tag = format!("-{}-", child.id());
    let start = Instant::now();
    while entries_with(&tag).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "objects never appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, tag)
}

/// The coordinator is dead, so the kernel kills its workers
/// (`PR_SET_PDEATHSIG`, set by `fork_child`); a region is only stale once
/// no live process maps it, so wait until none does. Workers still there
/// after 300 ms are killed here, so that this test checks the clean-up,
/// not the death signal (`orphans.rs` checks that).
fn end_orphaned_workers(tag: &str) {
    let start = Instant::now();
    loop {
        let scan = shm::users::scan().unwrap();
        let users: Vec<i32> = shm::listing::list()
            .unwrap()
            .iter()
            .filter(|e| e.display_name().contains(tag))
            .flat_map(|e| e.users(&scan).iter().map(|u| u.pid))
            .collect();
        if users.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "workers {users:?} never went away"
        );
        if start.elapsed() > Duration::from_millis(300) {
            for pid in users {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_coordinator_killed_with_sigkill_leaves_objects_that_clean_removes() {
    let _one = cleaning();
    let (mut child, tag) = start_sem_race();
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let left = entries_with(&tag);
    assert_eq!(
        left.len(),
        2,
        "expected the region and sem.* left behind: {left:?}"
    );
    end_orphaned_workers(&tag);
    let ls = String::from_utf8(shmlab(&["ls"]).stdout).unwrap();
    let row = ls
        .lines()
        .find(|l| l.contains(&tag) && !l.contains("sem."))
        .unwrap_or_default();
    assert!(row.contains("STALE"), "ls does not mark it stale: {ls}");
    let clean = shmlab(&["clean"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let after = entries_with(&tag);
    let _ = after
        .iter()
        .map(|n| std::fs::remove_file(format!("/dev/shm/{n}")))
        .count();
    assert!(after.is_empty(), "clean left {after:?}");
}

/// A killed coordinator whose parent has not reaped it yet is a zombie: dead
/// for every purpose but its pid. `kill(pid, 0)` still succeeds on it, which
/// is why liveness reads its state from `/proc`.
#[test]
fn a_killed_coordinator_not_yet_reaped_is_stale_and_cleaned() {
    let _one = cleaning();
    let (mut child, tag) = start_sem_race();
    let pid = child.id() as i32;
    child.kill().unwrap(); // SIGKILL, and deliberately no wait() yet
    let start = Instant::now();
    while shm::process::stat(pid).map(|s| s.state).ok() != Some(b'Z') {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the killed coordinator never became a zombie"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        shm::process::liveness(pid, 0),
        shm::process::Liveness::Zombie
    );
    end_orphaned_workers(&tag);
    let ls = String::from_utf8(shmlab(&["ls"]).stdout).unwrap();
    let row = ls
        .lines()
        .find(|l| l.contains(&tag) && !l.contains("sem."))
        .unwrap_or_default();
    assert!(
        row.contains("zombie: STALE"),
        "ls does not mark a zombie's region stale: {ls}"
    );
    let clean = shmlab(&["clean"]);
    let cleaned = String::from_utf8_lossy(&clean.stdout).into_owned();
    let after = entries_with(&tag);
    // Whatever the assertions say, leave nothing behind and reap the zombie.
    for n in &after {
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
    }
    child.wait().unwrap();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(after.is_empty(), "clean left {after:?}: {cleaned}");
    assert!(cleaned.contains("zombie"), "{cleaned}");
}

#[test]
fn repair_sem_posts_only_for_a_dead_holder_and_a_zero_value() {
    let name = format!("/shmlab-repair-test-{}-0", std::process::id());
    let sem = shm_sem::NamedSem::create(&name, shm::Mode::DEFAULT, 0).unwrap();
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid.to_string()
    };
    let me = std::process::id().to_string();
    let alive = shmlab(&["repair-sem", &name, "--holder", &me]);
    let fixed = shmlab(&["repair-sem", &name, "--holder", &dead]);
    let value_after = sem.value().unwrap();
    let again = shmlab(&["repair-sem", &name, "--holder", &dead]);
    let _ = shm_sem::NamedSem::unlink(&name);
    assert_eq!(
        alive.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&alive.stderr)
    );
    assert!(String::from_utf8_lossy(&alive.stderr).contains("is alive"));
    assert!(
        fixed.status.success(),
        "{}",
        String::from_utf8_lossy(&fixed.stderr)
    );
    assert_eq!(value_after, 1);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a semaphore at 1 is not wedged"
    );
}
