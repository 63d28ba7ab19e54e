//! lab1-create: the object is created, sized, described, and removed (or
//! kept with --keep); the umask story is told from what the kernel did.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;

#[test]
fn default_run_creates_describes_and_removes() {
    let r = run(LAB1, &[]);
    r.expect_code(0);
    let name = format!("/shmlab-lab1-{}", r.pid);
    let guard = Unlink(vec![shm::ShmName::parse(&name).unwrap()]);
    assert!(
        r.stdout.contains(&format!("created {name}")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("/dev/shm{name} (present: yes)")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("fstat says: size 4096 bytes"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("requested    0600 rw-------"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("user    6      rw-     Read + Write"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("others  0      ---     No Permission"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("present: no"), "{}", r.stdout);
    assert!(r.stdout.contains("What to notice"), "{}", r.stdout);
    assert!(!exists(&guard.0[0]), "{name} left behind");
}

#[test]
fn umask_077_removes_bits_and_fchmod_forces_them_back() {
    let (guard, name) = Unlink::new("lab1-umask");
    let r = run_with_umask(
        "077",
        LAB1,
        &["--name", name.as_str(), "--mode", "0640", "--size", "64K"],
    );
    r.expect_code(0);
    let out = &r.stdout;
    assert!(out.contains("requested    0640 rw-r-----"), "{out}");
    assert!(out.contains("umask        0077 ---rwxrwx"), "{out}");
    assert!(out.contains("kernel gave  0600 rw-------"), "{out}");
    assert!(
        out.contains("forced       yes: the umask removed 0040"),
        "{out}"
    );
    assert!(out.contains("mode now     0640 rw-r-----"), "{out}");
    assert!(out.contains("size 65536 bytes"), "{out}");
    assert!(!exists(&name), "object left behind");
    drop(guard);
}

#[test]
fn keep_leaves_the_object_with_the_forced_mode() {
    let (guard, name) = Unlink::new("lab1-keep");
    let r = run_with_umask(
        "022",
        LAB1,
        &["--name", name.as_str(), "--textbook-mode", "--keep"],
    );
    r.expect_code(0);
    assert!(exists(&name), "--keep did not keep it");
    let md = std::fs::metadata(name.path()).unwrap();
    assert_eq!(md.mode() & 0o777, 0o666);
    assert_eq!(md.size(), 4096);
    assert!(
        r.stdout.contains("kernel gave  0644 rw-r--r--"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("WARNING"), "{}", r.stdout);
    assert!(
        r.stdout.contains("any user on this machine"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("shmlab clean --name {name}")),
        "{}",
        r.stdout
    );
    drop(guard);
    assert!(!exists(&name));
}

#[test]
fn no_force_keeps_the_kernels_mode() {
    let (guard, name) = Unlink::new("lab1-noforce");
    let r = run_with_umask(
        "022",
        LAB1,
        &[
            "--name",
            name.as_str(),
            "--mode",
            "rw-rw-rw-",
            "--no-force",
            "--keep",
        ],
    );
    r.expect_code(0);
    let md = std::fs::metadata(name.path()).unwrap();
    assert_eq!(md.mode() & 0o777, 0o644);
    assert!(
        r.stdout.contains("forced       no (--no-force)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("the umask took that away"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("WARNING"), "{}", r.stdout);
    drop(guard);
}
