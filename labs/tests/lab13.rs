//! `lab13-deadlock`: the naive order deadlocks and the cycle is named
//! exactly; lock ordering, an arbiter and try-and-back-off never deadlock
//! and every philosopher eats every meal.

mod common;
use common::{expect_bad_input, interrupt, run_json, run_leaving_nothing, shm_entries};
use std::process::Command;

const LAB13: &str = env!("CARGO_BIN_EXE_lab13-deadlock");

#[test]
fn the_naive_order_deadlocks_and_the_cycle_is_named() {
    for (n, threads) in [(2u64, false), (3, false), (5, false), (3, true)] {
        let n_s = n.to_string();
        let mut args = vec!["--order", "naive", "--philosophers", &n_s, "--rounds", "50"];
        if threads {
            args.push("--threads");
        }
        let v = run_json(LAB13, "lab13", &args);
        let cycle = v["deadlock"]
            .as_array()
            .unwrap_or_else(|| panic!("{n} philosophers did not deadlock: {v}"));
        assert_eq!(cycle.len() as u64, n, "{v}");
        let mut tids: Vec<i64> = Vec::new();
        for link in cycle {
            let p = link["philosopher"].as_u64().unwrap();
            assert_eq!(link["holds"], p, "{v}");
            assert_eq!(link["waits_for"], (p + 1) % n, "{v}");
            assert_eq!(link["held_by"], (p + 1) % n, "{v}");
            tids.push(link["tid"].as_i64().unwrap());
        }
        // The barrier keeps every philosopher in the same round: meals
        // differ by at most one when the table deadlocks.
        let meals: Vec<u64> = v["meals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_u64().unwrap())
            .collect();
        let (lo, hi) = (meals.iter().min().unwrap(), meals.iter().max().unwrap());
        assert!(hi - lo <= 1, "philosophers in different rounds: {v}");
        tids.sort_unstable();
        tids.dedup();
        assert_eq!(
            tids.len() as u64,
            n,
            "every philosopher is its own thread: {v}"
        );
        assert!(tids.iter().all(|&t| t > 0));
    }
}

#[test]
fn ordering_an_arbiter_or_trying_never_deadlock() {
    for order in ["global", "waiter", "trylock"] {
        for threads in [false, true] {
            let mut args = vec![
                "--order",
                order,
                "--philosophers",
                "5",
                "--rounds",
                "30",
                "--hold-us",
                "200",
            ];
            if threads {
                args.push("--threads");
            }
            let v = run_json(LAB13, "lab13", &args);
            assert!(v["deadlock"].is_null(), "{order}: {v}");
            let meals = v["meals"].as_array().unwrap();
            assert_eq!(meals.len(), 5);
            assert!(meals.iter().all(|m| m == 30), "{order}: {v}");
        }
    }
}

#[test]
fn check_exits_1_on_a_deadlock_and_the_report_says_who_waits_for_whom() {
    let out = run_leaving_nothing(LAB13, "lab13", &["--philosophers", "3", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("DEADLOCK"), "{text}");
    assert!(
        text.contains("philosopher 0 (pid ")
            && text.contains("holds fork 0, waits for fork 1, held by philosopher 1"),
        "{text}"
    );
    let ok = run_leaving_nothing(
        LAB13,
        "lab13",
        &[
            "--order",
            "global",
            "--philosophers",
            "3",
            "--rounds",
            "5",
            "--check",
        ],
    );
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    expect_bad_input(
        LAB13,
        "lab13",
        &[
            &["--philosophers", "1"][..],
            &["--philosophers", "17"],
            &["--order", "random"],
            &["--rounds", "0"],
            &["--hold-us", "2000000"],
            &["--linger", "601"],
        ],
    );
}

/// Ctrl-C mid-meal: the philosophers are killed, the table is removed, and
/// the lab dies of SIGINT as a shell expects.
#[test]
fn ctrl_c_clears_the_table() {
    let child = Command::new(env!("CARGO_BIN_EXE_lab13-deadlock"))
        .args([
            "--order",
            "global",
            "--rounds",
            "100000",
            "--hold-us",
            "1000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("-{}-", child.id());
    let mine = || shm_entries("lab13", &tag);
    let start = std::time::Instant::now();
    while mine().is_empty() {
        assert!(start.elapsed().as_secs() < 10, "the table never appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    interrupt(child);
    assert!(mine().is_empty(), "left {:?}", mine());
}

/// glibc's process-shared `pthread_barrier_t` between the rounds: the same
/// outcomes as the futex barrier; refused with threads (no timed wait).
#[test]
fn the_pthread_barrier_separates_the_rounds_too() {
    let v = run_json(
        LAB13,
        "lab13",
        &[
            "--order",
            "global",
            "--barrier",
            "pthread",
            "--rounds",
            "30",
            "--hold-us",
            "200",
        ],
    );
    assert!(v["deadlock"].is_null(), "{v}");
    assert_eq!(v["barrier"], "pthread");
    assert!(
        v["meals"].as_array().unwrap().iter().all(|m| m == 30),
        "{v}"
    );
    let v = run_json(
        LAB13,
        "lab13",
        &[
            "--order",
            "naive",
            "--barrier",
            "pthread",
            "--philosophers",
            "3",
        ],
    );
    assert_eq!(v["deadlock"].as_array().map(Vec::len), Some(3), "{v}");
    let out = run_leaving_nothing(LAB13, "lab13", &["--barrier", "pthread", "--threads"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
}

/// `--linger`: a deadlocked table stays as it is, and `shmlab ps` shows it
/// from outside: every fork held by a live philosopher with its waiters
/// flag set, who waits for it, and the cycle. Then Ctrl-C ends the linger,
/// kills the philosophers and removes the table.
#[test]
fn a_lingering_deadlock_is_shown_by_shmlab_ps_fork_by_fork() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(LAB13)
        .args(["--philosophers", "3", "--linger", "60", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("-{}-", child.id());
    // The notice comes once the deadlock is found; the JSON only at the end.
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("stays as it is for 60 s"), "{line}");
    let name = line
        .split_whitespace()
        .skip_while(|w| *w != "ps")
        .nth(1)
        .unwrap_or_else(|| panic!("no name in {line:?}"))
        .to_string();
    assert!(name.contains(&tag), "{name} is not this run's");
    let ps = Command::new(env!("CARGO_BIN_EXE_shmlab"))
        .args(["ps", &name, "--json"])
        .output()
        .unwrap();
    assert!(ps.status.success(), "{ps:?}");
    let v: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    let region = &v["objects"][0]["region"];
    assert_eq!(region["type"], "lab13/philosophers", "{v}");
    let forks = region["locks"].as_array().unwrap();
    assert_eq!(forks.len(), 3, "{v}");
    let mut holders = Vec::new();
    for (f, fork) in forks.iter().enumerate() {
        assert_eq!(fork["name"], format!("fork {f}"), "{v}");
        assert_eq!(fork["state"], "held", "{v}");
        assert_eq!(fork["holder"]["liveness"], "alive", "{v}");
        assert_eq!(fork["waiters"]["any"], true, "{v}");
        // Philosopher f holds fork f; philosopher f - 1 waits for it.
        let notes: Vec<&str> = fork["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let before = (f + 2) % 3;
        assert_eq!(
            notes,
            [
                format!("held by philosopher {f}"),
                format!("waited for by philosopher {before}")
            ],
            "{v}"
        );
        holders.push(fork["holder"]["id"].as_i64().unwrap());
    }
    let cycle = region["cycle"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(cycle.len(), 3, "{v}");
    for link in cycle {
        let p = link["philosopher"].as_u64().unwrap();
        assert_eq!(link["holds"], p, "{v}");
        assert_eq!(link["waits_for"], (p + 1) % 3, "{v}");
        assert_eq!(link["tid"], holders[p as usize], "{v}");
    }
    // Ctrl-C with the lab's stderr closed (the reader above is gone): the
    // clean-up thread's farewell line fails to print, and the lab must die
    // of SIGINT all the same (it once hung: the failed print panicked the
    // clean-up thread). Bounded, so a hang fails instead of blocking.
    use std::os::unix::process::ExitStatusExt;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Ctrl-C did not end the lab within 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    let left = shm_entries("lab13", &tag);
    assert!(left.is_empty(), "left {left:?}");
}
