//! lab3-destroy: every checkpoint printed and verified, nothing left; with
//! --leak the region is left, listed as stale, and cleaned.

mod common;
use common::*;

#[test]
fn every_checkpoint_is_verified_and_nothing_is_left() {
    let (guard, name) = Unlink::new("lab3-walk");
    let r = run(LAB3, &["--name", name.as_str()]);
    r.expect_code(0);
    let out = &r.stdout;
    for (i, step) in ["created", "mapped", "unlinked", "closed", "unmapped"]
        .iter()
        .enumerate()
    {
        let head = format!("[{}/5] {step}", i + 1);
        let line = out
            .lines()
            .position(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no {head}: {out}"));
        let next = out.lines().nth(line + 1).unwrap();
        assert!(
            next.trim_start().starts_with("verified:"),
            "{head} not verified: {out}"
        );
    }
    assert!(
        out.contains("fails with ENOENT, yet the pages still work"),
        "{out}"
    );
    assert!(out.contains("(deleted)"), "{out}");
    assert!(out.contains("nothing is left"), "{out}");
    assert!(!out.contains("CHECK FAILED"), "{out}");
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(!exists(&name), "lab3 left {name}");
    drop(guard);
}

#[test]
fn default_name_is_removed_too() {
    let r = run(LAB3, &[]);
    r.expect_code(0);
    let name = shm::ShmName::parse(&format!("/shmlab-lab3-{}", r.pid)).unwrap();
    let _guard = Unlink(vec![name.clone()]);
    assert!(r.stdout.contains(name.as_str()), "{}", r.stdout);
    assert!(!exists(&name));
}

#[test]
fn leak_is_listed_as_stale_inspected_and_cleaned() {
    let (guard, name) = Unlink::new("lab3-leak");
    let r = run(LAB3, &["--name", name.as_str(), "--leak"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("[3/5] unlinked  SKIPPED (--leak)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("shmlab clean"), "{}", r.stdout);
    assert!(exists(&name), "--leak must leave the object");

    let ls = run(SHMLAB, &["ls"]);
    ls.expect_code(0);
    let line = ls
        .stdout
        .lines()
        .find(|l| l.contains(name.as_str()))
        .unwrap_or_else(|| panic!("ls does not list {name}: {}", ls.stdout));
    assert!(line.contains("lab3/destroy"), "{line}");
    assert!(line.contains("STALE"), "{line}");
    assert!(line.contains(&format!("creator pid {}", r.pid)), "{line}");
    assert!(line.contains("rw-------"), "{line}");

    let ins = run(
        SHMLAB,
        &["inspect", name.as_str(), "--type", "lab3/destroy"],
    );
    ins.expect_code(0);
    assert!(
        ins.stdout.contains("type      lab3/destroy"),
        "{}",
        ins.stdout
    );
    assert!(ins.stdout.contains("state     ready"), "{}", ins.stdout);
    assert!(ins.stdout.contains("STALE"), "{}", ins.stdout);
    assert!(
        ins.stdout.contains("checkpoints completed 5 of 5"),
        "{}",
        ins.stdout
    );

    let dry = run(SHMLAB, &["clean", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout.contains(&format!("would remove {name}")),
        "{}",
        dry.stdout
    );
    assert!(exists(&name), "--dry-run removed it");

    let clean = run(SHMLAB, &["clean"]);
    clean.expect_code(0);
    assert!(
        clean
            .stdout
            .contains(&format!("removed {name} (shmlab region lab3/destroy")),
        "{}",
        clean.stdout
    );
    assert!(!exists(&name), "clean did not remove {name}");
    drop(guard);
}
