//! `lab4-race --sync spin-pure`: exact with as many workers as CPUs; warned
//! about and bounded when oversubscribed.

use std::process::Command;

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
fn exact_with_workers_up_to_cpus_and_no_warning() {
    let n = cpus().min(2).to_string();
    for kind in ["--procs", "--threads"] {
        let out = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
            .args([
                "--sync",
                "spin-pure",
                kind,
                &n,
                "--iters",
                "20000",
                "--check",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{kind}: {stdout}\n{stderr}");
        assert!(stdout.contains("lost 0 "), "{stdout}");
        assert!(!stderr.contains("warning"), "{stderr}");
    }
}

#[test]
fn oversubscribed_run_is_warned_about_and_stopped_at_its_limit() {
    let workers = (cpus() * 4).to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_lab4-race"))
        .args(["--sync", "spin-pure", "--procs", &workers])
        .args(["--iters", "2000000000"])
        .env("SHMLAB_LAB4_TRIAL_LIMIT_MS", "500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let t0 = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("warning: spin-pure never yields"),
        "{stderr}"
    );
    assert!(stderr.contains("was still running after"), "{stderr}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(leftovers(pid), Vec::<String>::new());
}
