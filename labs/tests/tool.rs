//! The shmlab tool: ls, inspect (plain objects and regions) and clean,
//! which removes only stale regions and named objects of the current user.

mod common;
use common::*;
use labs::payloads::Lab3Payload;
use shm::{Region, RegionOptions};
use std::sync::Mutex;

/// Tests that run the global `shmlab clean`, or leave something stale for
/// it, take this lock, so one test's clean cannot eat another's fixture.
static GLOBAL_CLEAN: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL_CLEAN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn inspect_a_plain_object_dumps_bytes_and_the_string() {
    let (guard, name) = Unlink::new("tool-plain");
    plain_object(&name, 4096, b"hello shmlab\0");
    let r = run(SHMLAB, &["inspect", name.as_str()]);
    r.expect_code(0);
    let out = &r.stdout;
    assert!(
        out.contains("kind      POSIX shared-memory object"),
        "{out}"
    );
    assert!(out.contains("size      4096 bytes"), "{out}");
    assert!(out.contains("mode      0600 rw-------"), "{out}");
    assert!(out.contains("owner     "), "{out}");
    assert!(out.contains("no: a plain object"), "{out}");
    assert!(
        out.contains(
            "00000000  68 65 6c 6c 6f 20 73 68  6d 6c 61 62 00 00 00 00  |hello shmlab....|"
        ),
        "{out}"
    );
    assert!(
        out.contains("string    \"hello shmlab\" (12 bytes, NUL-terminated)"),
        "{out}"
    );
    drop(guard);
}

#[test]
fn inspect_binary_data_does_not_pretend_it_is_text() {
    let (guard, name) = Unlink::new("tool-binary");
    plain_object(&name, 32, &[0xff, 0x01, 0x02, 0x00]);
    let r = run(SHMLAB, &["inspect", name.as_str(), "--bytes", "16"]);
    r.expect_code(0);
    assert!(r.stdout.contains("not text"), "{}", r.stdout);
    assert!(r.stdout.contains("first 16 bytes"), "{}", r.stdout);
    drop(guard);
}

#[test]
fn inspect_a_live_region_shows_its_header_and_payload() {
    let _serial = serial();
    let (guard, name) = Unlink::new("tool-region");
    let region = Region::<Lab3Payload>::create(&name, &RegionOptions::default(), ()).unwrap();
    region
        .counter
        .store(41, std::sync::atomic::Ordering::Relaxed);
    let r = run(SHMLAB, &["inspect", name.as_str()]);
    r.expect_code(0);
    let out = &r.stdout;
    assert!(
        out.contains("region (header at offset 0, 128 bytes)"),
        "{out}"
    );
    assert!(out.contains("type      lab3/destroy"), "{out}");
    assert!(
        out.contains(&format!("creator   pid {} ", std::process::id())),
        "{out}"
    );
    assert!(out.contains("alive"), "{out}");
    assert!(
        out.contains("payload   16 bytes at offset 128, align 8"),
        "{out}"
    );
    assert!(out.contains("00000080  29 00 00 00"), "{out}");
    assert!(out.contains("counter 41"), "{out}");

    // A live region is not stale: ls says alive, clean leaves it.
    let ls = run(SHMLAB, &["ls"]);
    let line = ls
        .stdout
        .lines()
        .find(|l| l.contains(name.as_str()))
        .unwrap()
        .to_owned();
    assert!(line.contains("alive") && !line.contains("STALE"), "{line}");
    run(SHMLAB, &["clean"]).expect_code(0);
    assert!(exists(&name), "clean removed a live region");
    drop(region);
    assert!(!exists(&name));
    drop(guard);
}

#[test]
fn ls_lists_plain_objects_with_mode_owner_and_time() {
    // Not a `shmlab-…` name: those are judged by the pid in the name.
    let name = shm::ShmName::parse(&format!("plain-tool-ls-{}", std::process::id())).unwrap();
    let guard = Unlink(vec![name.clone()]);
    plain_object(&name, 8192, b"x");
    let r = run(SHMLAB, &["ls"]);
    r.expect_code(0);
    assert!(r.stdout.starts_with("KIND"), "{}", r.stdout);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains(name.as_str()))
        .unwrap();
    let owner = shm::users::user_name(nix::unistd::getuid().as_raw());
    assert!(line.starts_with("shm "), "{line}");
    assert!(
        line.contains(" 8192 ") && line.contains("0600 rw-------"),
        "{line}"
    );
    assert!(line.contains(&format!(" {owner} ")), "{line}");
    assert!(line.contains(" UTC") || line.contains(":"), "{line}");
    assert!(
        line.trim_end().ends_with(" -"),
        "a plain object has no shmlab column: {line}"
    );
    drop(guard);
}

#[test]
fn clean_leaves_plain_objects_and_removes_a_named_one() {
    let _serial = serial();
    let name = shm::ShmName::parse(&format!("plain-tool-clean-{}", std::process::id())).unwrap();
    let guard = Unlink(vec![name.clone()]);
    plain_object(&name, 4096, b"not shmlab's");
    run(SHMLAB, &["clean"]).expect_code(0);
    assert!(
        exists(&name),
        "clean removed an object that is not a stale shmlab region"
    );
    let dry = run(SHMLAB, &["clean", "--name", name.as_str(), "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout
            .contains(&format!("would remove {name} (plain object)")),
        "{}",
        dry.stdout
    );
    assert!(exists(&name));
    let r = run(SHMLAB, &["clean", "--name", name.as_str()]);
    r.expect_code(0);
    assert!(
        r.stdout.contains(&format!("removed {name}")),
        "{}",
        r.stdout
    );
    assert!(!exists(&name));
    drop(guard);
}

#[test]
fn clean_never_touches_another_users_objects() {
    let _serial = serial();
    // A stale region (lab3 --leak, whose creator has exited) given to
    // `nobody`: needs root to give it away; skipped otherwise.
    let (guard, name) = Unlink::new("tool-other-user");
    run(LAB3, &["--name", name.as_str(), "--leak"]).expect_code(0);
    if std::os::unix::fs::chown(name.path(), Some(65534), Some(65534)).is_err() {
        eprintln!("not root: skipping the other-user check");
        return;
    }
    let r = run(SHMLAB, &["clean", "--name", name.as_str()]);
    r.expect_code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("not to you"), "{}", r.stderr);
    assert!(exists(&name));
    let all = run(SHMLAB, &["clean"]);
    all.expect_code(0);
    assert!(
        all.stdout.contains(&format!("left {name} (owned by")),
        "{}",
        all.stdout
    );
    assert!(all.stdout.contains("not yours"), "{}", all.stdout);
    assert!(exists(&name), "clean removed another user's region");
    drop(guard);
}

#[test]
fn clean_removes_stale_shmlab_semaphores_only() {
    let _serial = serial();
    // A file named like a shmlab semaphore whose creator pid has exited,
    // and one whose "creator" (this process) is alive.
    let dead = dead_pid();
    let stale = format!("/dev/shm/sem.shmlab-test-{dead}-0");
    let live = format!("/dev/shm/sem.shmlab-test-{}-0", std::process::id());
    let mut guard = Unlink::default();
    for p in [&stale, &live] {
        std::fs::write(p, [0u8; 32]).unwrap();
        guard
            .0
            .push(shm::ShmName::parse(&p["/dev/shm/".len()..]).unwrap());
    }
    let r = run(SHMLAB, &["clean"]);
    r.expect_code(0);
    assert!(
        r.stdout
            .contains(&format!("removed /sem.shmlab-test-{dead}-0")),
        "{}",
        r.stdout
    );
    assert!(!std::path::Path::new(&stale).exists());
    assert!(
        std::path::Path::new(&live).exists(),
        "removed a semaphore whose creator is alive"
    );
    drop(guard);
}

/// A headerless `shmlab-…-<pid>-<n>` object (a `lab4-race --trace`
/// buffer, or a region whose creator died before writing its header) is
/// judged by the pid in its name: removed when that process is gone and
/// nobody uses it, kept while it lives.
#[test]
fn clean_removes_stale_headerless_shmlab_objects() {
    let _serial = serial();
    let dead = dead_pid();
    let stale = shm::ShmName::parse(&format!("shmlab-test-trace-{dead}-0")).unwrap();
    let live = shm::ShmName::parse(&format!("shmlab-test-trace-{}-0", std::process::id())).unwrap();
    let guard = Unlink(vec![stale.clone(), live.clone()]);
    plain_object(&stale, 4096, b"trace");
    plain_object(&live, 4096, b"trace");
    let r = run(SHMLAB, &["clean"]);
    r.expect_code(0);
    assert!(
        r.stdout
            .contains(&format!("removed {stale} (shmlab object without a header")),
        "{}",
        r.stdout
    );
    assert!(!exists(&stale));
    assert!(exists(&live), "clean removed an object whose creator lives");
    drop(guard);
}
