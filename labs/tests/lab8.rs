//! `lab8-crash` from the outside.

use std::process::Command;

fn lab8(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lab8-crash"))
        .args(args)
        .output()
        .expect("lab8-crash runs")
}

#[test]
fn every_lock_either_recovers_or_is_detected_wedged() {
    let out = lab8(&["--sync", "all", "--iters", "4000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), race::crash::crash_modes().len(), "{text}");
    for r in rows {
        let want = match r["sync"].as_str().unwrap() {
            "sem" | "sem-unnamed" | "pthread-plain" => "wedged_detected",
            _ => "recovered",
        };
        assert_eq!(r["outcome"], want, "{r}");
        assert_eq!(r["expected"], r["actual"], "{r}");
    }
}

#[test]
fn table_names_each_lock() {
    let out = lab8(&["--sync", "futex", "--iters", "2000"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("recovered: took over from dead tid"),
        "{text}"
    );
}

#[test]
fn bad_input_exits_2() {
    for args in [
        &["--sync", "none"][..],
        &["--sync", "std"],
        &["--procs", "1"],
        &["--iters", "0"],
        &["--iters", "x"],
    ] {
        let out = lab8(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}
