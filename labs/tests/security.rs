//! Another user's object with mode 0600 is refused, and the refusal names
//! the owner and the mode. Runs the lab as the unprivileged user `nobody`
//! through `setpriv` (util-linux); needs root to switch users, as CI has.

use std::process::Command;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn as_nobody(bin: &str, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin])
        .args(args)
        .output()
        .expect("setpriv runs")
}

#[test]
fn another_users_0600_object_is_refused_with_owner_and_mode() {
    if !is_root() {
        eprintln!("not root: cannot switch to another user here; skipping");
        return;
    }
    let name = format!("/shmlab-security-{}-0", std::process::id());
    let made = Command::new(env!("CARGO_BIN_EXE_lab1-create"))
        .args(["--name", &name, "--mode", "0600", "--keep"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let path = format!("/dev/shm{name}");
    let refused = [
        as_nobody(
            env!("CARGO_BIN_EXE_lab2-consumer"),
            &["--name", &name, "--wait", "0"],
        ),
        as_nobody(env!("CARGO_BIN_EXE_shmlab"), &["inspect", &name]),
        as_nobody(env!("CARGO_BIN_EXE_shmlab"), &["clean", "--name", &name]),
    ];
    let still_there = std::path::Path::new(&path).exists();
    let _ = std::fs::remove_file(&path);
    assert!(still_there, "another user removed root's object");
    for (i, out) in refused.into_iter().enumerate() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("root"), "does not name the owner: {err}");
        // Opening is refused because of the mode; clean refuses by owner.
        if i < 2 {
            assert!(
                err.contains("rw-------") && err.contains("0600"),
                "does not name the mode: {err}"
            );
        }
    }
}
