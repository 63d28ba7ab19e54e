//! Two real processes open the same object by name and see each other's
//! writes. The second process is this test binary run again with an
//! environment variable naming the object and its role (no `fork` in a
//! multi-threaded test harness), or a shell tool reading /dev/shm directly.

mod common;
use common::*;
use shm::{Access, InitCtx, Region, RegionOptions, Shared, ShmName, ShmOptions};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROLE: &str = "SHMLAB_TEST_CHILD_ROLE";
const NAME: &str = "SHMLAB_TEST_CHILD_NAME";

#[repr(C)]
struct Counter {
    hits: AtomicU64,
}
shm::any_bits!(Counter { hits });

// SAFETY: repr(C), one atomic, valid when zeroed.
unsafe impl Shared for Counter {
    type Init = ();
    fn type_name() -> String {
        "test/counter".into()
    }
    unsafe fn init_in_place(_: *mut Self, _: (), _: &InitCtx<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// Runs this binary's `child_process_role` test in a new process.
fn child(role: &str, name: &ShmName) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(NAME, name.as_str())
        .output()
        .unwrap()
}

/// Not a test of its own: the other process's half, selected by `ROLE`.
#[test]
fn child_process_role() {
    let (Ok(role), Ok(name)) = (std::env::var(ROLE), std::env::var(NAME)) else {
        return;
    };
    let name = ShmName::parse(&name).unwrap();
    match role.as_str() {
        "ping-pong" => {
            let obj = ShmOptions::new().open(&name).unwrap();
            assert!(obj.creation().is_none(), "opening must never create");
            let map = obj.map_all(Access::ReadWrite).unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while map.read_c_string(0) != b"ping from parent" {
                assert!(Instant::now() < deadline, "never saw the parent's write");
                std::thread::sleep(Duration::from_millis(1));
            }
            map.write(1024, b"pong from child\0").unwrap();
        }
        "count" => {
            let region = Region::<Counter>::open(&name, &RegionOptions::default()).unwrap();
            assert!(!region.is_creator());
            for _ in 0..10_000 {
                region.hits.fetch_add(1, Ordering::Relaxed);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn two_processes_see_each_others_writes_by_name() {
    let (_guard, name) = Unlink::new("proc-pingpong");
    let obj = ShmOptions::new().create_new(true).open(&name).unwrap();
    obj.set_len(4096).unwrap();
    let map = obj.map(Access::ReadWrite, 4096).unwrap();
    map.write(0, b"ping from parent\0").unwrap();
    let out = child("ping-pong", &name);
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(map.read_c_string(1024), b"pong from child");
}

#[test]
fn shell_tools_see_the_same_bytes_through_dev_shm() {
    let (_guard, name) = Unlink::new("proc-shell");
    let obj = ShmOptions::new().create_new(true).open(&name).unwrap();
    obj.set_len(4096).unwrap();
    let map = obj.map(Access::ReadWrite, 4096).unwrap();
    map.write(0, b"written through mmap").unwrap();
    let cat = Command::new("cat").arg(name.path()).output().unwrap();
    assert!(cat.status.success());
    assert_eq!(cat.stdout.len(), 4096);
    assert!(cat.stdout.starts_with(b"written through mmap\0"));
    // And the other way: a process writing the file (without truncating it)
    // changes what our mapping reads.
    let sh = Command::new("sh")
        .arg("-c")
        .arg("printf 'written by dd' | dd of=\"$0\" bs=1 seek=2048 conv=notrunc status=none")
        .arg(name.path())
        .status()
        .unwrap();
    assert!(sh.success());
    assert_eq!(map.read_c_string(2048), b"written by dd");
}

#[test]
fn a_region_is_shared_with_another_process() {
    let (_guard, name) = Unlink::new("proc-region");
    let region = Region::<Counter>::create(&name, &RegionOptions::default(), ()).unwrap();
    region.hits.store(5, Ordering::Relaxed);
    let out = child("count", &name);
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(region.hits.load(Ordering::Relaxed), 10_005);
    drop(region);
    assert!(!name.path().exists(), "the creator's drop must unlink");
}
