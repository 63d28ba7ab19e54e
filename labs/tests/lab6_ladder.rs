//! `lab6-pipes --ladder`: every rung in the table, pinning stated, the SVG
//! written, nothing left in /dev/shm.

use std::process::Command;

#[test]
fn ladder_prints_every_rung_and_writes_the_plot() {
    let dir = std::env::temp_dir().join(format!("lab6-ladder-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("ladder.svg");
    let child = Command::new(env!("CARGO_BIN_EXE_lab6-pipes"))
        .args(["--ladder", "--round-trips", "300", "--plot"])
        .arg(&svg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("-{}-", child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for m in ipc::ladder::Mechanism::ALL {
        let rows = stdout
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(m.name()))
            .count();
        assert_eq!(rows, 2, "{m}: one pinned and one unpinned row\n{stdout}");
    }
    assert!(stdout.contains("pinned: ") || stdout.contains("NOT pinned"));
    assert!(stdout.contains("unpinned"));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg") && text.contains("spin-futex"));
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&tag))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_without_ladder_or_curve_is_bad_input() {
    let out = Command::new(env!("CARGO_BIN_EXE_lab6-pipes"))
        .args(["--plot", "/nonexistent/x.svg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ladder or --curve"));
}
