//! `lab4-race --trace`: the trace accounts for every lost update, shows
//! none under a lock, and refuses what it cannot record.

use std::process::Command;
use std::sync::Mutex;

/// One lab run at a time: a race needs both workers on a CPU at once, and
/// this binary's other tests would otherwise take the CPUs from them (two
/// cores here).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lab4(args: &[&str]) -> std::process::Output {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_trace_finds_exactly_the_lost_updates() {
    let mut saw_loss = false;
    for _ in 0..6 {
        let v = json(&lab4(&[
            "--sync", "none", "--trace", "--iters", "100000", "--json",
        ]));
        assert_eq!(v["expected"], 200_000);
        assert_eq!(v["trace"]["recorded"], 200_000);
        assert_eq!(v["trace"]["final_value"], v["actual"]);
        assert_eq!(v["trace"]["lost_found"], v["lost"], "{v}");
        saw_loss |= v["lost"].as_u64().unwrap() > 0;
    }
    assert!(saw_loss, "six traced runs without a lock lost nothing");
}

#[test]
fn the_text_report_shows_collisions_side_by_side() {
    // Threads collide reliably; retry a few times on a busy machine.
    for _ in 0..8 {
        let out = lab4(&[
            "--sync",
            "none",
            "--trace",
            "--threads",
            "2",
            "--iters",
            "100000",
        ]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        if text.contains("one update lost") || text.contains("counter went back") {
            assert!(text.contains("(exactly expected - actual)"), "{text}");
            assert!(
                text.contains("worker 0") && text.contains("worker 1"),
                "{text}"
            );
            return;
        }
    }
    panic!("eight traced runs showed no collision");
}

#[test]
fn a_lock_shows_no_collisions() {
    let v = json(&lab4(&[
        "--sync", "futex", "--trace", "--iters", "50000", "--json",
    ]));
    assert_eq!(v["lost"], 0);
    assert_eq!(v["trace"]["lost_found"], 0);
    assert_eq!(v["trace"]["collisions"].as_array().unwrap().len(), 0);
}

#[test]
fn the_timeline_is_drawn() {
    let dir = std::env::temp_dir().join(format!("shmlab-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("trace.svg");
    let out = lab4(&[
        "--sync",
        "none",
        "--trace",
        "--threads",
        "2",
        "--iters",
        "100000",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    assert!(text.starts_with("<svg"), "not an SVG");
}

#[test]
fn what_it_cannot_record_is_refused_with_one_line() {
    for args in [
        &["--sync", "all", "--trace"][..],
        &["--sync", "none", "--trace", "--trials", "3"],
        &[
            "--sync", "none", "--trace", "--procs", "2", "--iters", "2000000",
        ],
    ] {
        let out = lab4(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}
