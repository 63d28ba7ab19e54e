//! Bad input, table-driven: each row must exit 2 with exactly one line on
//! stderr (no panic), say what was wrong, and leave /dev/shm as it was
//! (objects set up for the row are still there, untouched; nothing new).

mod common;
use common::*;
use labs::payloads::Lab3Payload;
use shm::{Access, Region, RegionOptions, ShmName, ShmOptions};
use std::collections::BTreeSet;

/// What a row needs in /dev/shm before it runs; `{name}` in the args is
/// replaced by the object's name.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// Nothing; `{name}` is a unique name that does not exist.
    Missing,
    /// A plain 4096-byte object holding "precious".
    Plain,
    /// A plain object of 0 bytes (created, never sized).
    Empty,
    /// A sized plain object whose first byte is NUL (no message).
    Blank,
    /// A live lab3 region (created by this test process).
    Region,
    /// A plain object with shmlab's magic and format version 99.
    Version99,
    /// A lab3 region truncated to 64 bytes (shorter than its header).
    Truncated64,
    /// A lab3 region truncated to 136 bytes (header intact, payload cut).
    Truncated136,
}

use Setup::*;

fn rows() -> Vec<(&'static str, Vec<&'static str>, &'static str, Setup)> {
    // 256 bytes after the slash: one more than NAME_MAX.
    let name256: &'static str = Box::leak(format!("/{}", "x".repeat(256)).into_boxed_str());
    vec![
        // names
        (LAB1, vec!["--name", ""], "it is empty", Missing),
        (
            LAB1,
            vec!["--name", "/"],
            "nothing after the leading /",
            Missing,
        ),
        (
            LAB1,
            vec!["--name", "/a/b"],
            "only the leading / is allowed",
            Missing,
        ),
        (LAB1, vec!["--name", name256], "NAME_MAX", Missing),
        (
            SHMLAB,
            vec!["inspect", "/a/b"],
            "invalid shared-memory name",
            Missing,
        ),
        (
            CONSUMER,
            vec!["--name", "/"],
            "invalid shared-memory name",
            Missing,
        ),
        // modes
        (
            LAB1,
            vec!["--mode", "0888"],
            "'8' is not an octal digit",
            Missing,
        ),
        (LAB1, vec!["--mode", "rwxrwxrwx-"], "invalid mode", Missing),
        (LAB1, vec!["--mode", "-1"], "invalid mode", Missing),
        (
            LAB1,
            vec!["--mode", "0644", "--textbook-mode"],
            "cannot be used with",
            Missing,
        ),
        (
            PRODUCER,
            vec!["--name", "{name}", "--mode", "1777"],
            "above 0777",
            Missing,
        ),
        // sizes
        (
            LAB1,
            vec!["--size", "0"],
            "0 bytes cannot be mapped",
            Missing,
        ),
        (
            LAB1,
            vec!["--name", "{name}", "--size", "100000G"],
            "/dev/shm cannot hold",
            Missing,
        ),
        (LAB1, vec!["--size", "12Q"], "unknown unit", Missing),
        (
            PRODUCER,
            vec!["--name", "{name}", "--size", "100000G"],
            "/dev/shm cannot hold",
            Missing,
        ),
        (
            PRODUCER,
            vec!["--name", "{name}", "--size", "10"],
            "does not fit in --size 10",
            Missing,
        ),
        (
            PRODUCER,
            vec!["--name", "{name}", "--message", ""],
            "the --message is empty",
            Missing,
        ),
        // flags
        (LAB1, vec!["--bogus"], "unexpected argument", Missing),
        (CONSUMER, vec!["--wait", "-1"], "out of range", Missing),
        (
            CONSUMER,
            vec!["--wait", "soon"],
            "not a number of seconds",
            Missing,
        ),
        // the object exists on create
        (LAB1, vec!["--name", "{name}"], "already exists", Plain),
        (PRODUCER, vec!["--name", "{name}"], "already exists", Plain),
        (LAB3, vec!["--name", "{name}"], "already exists", Plain),
        // the object is missing
        (SHMLAB, vec!["inspect", "{name}"], "does not exist", Missing),
        (
            CONSUMER,
            vec!["--name", "{name}", "--wait", "0"],
            "does not exist",
            Missing,
        ),
        (
            SHMLAB,
            vec!["clean", "--name", "{name}"],
            "does not exist",
            Missing,
        ),
        // the object is not what was asked for
        (
            SHMLAB,
            vec!["inspect", "{name}", "--type", "lab3/destroy"],
            "is not a shmlab region",
            Plain,
        ),
        (
            SHMLAB,
            vec!["inspect", "{name}", "--type", "race/futex"],
            "holds lab3/destroy, not race/futex",
            Region,
        ),
        (
            CONSUMER,
            vec!["--name", "{name}", "--wait", "0"],
            "is a shmlab region, not a textbook message",
            Region,
        ),
        (
            SHMLAB,
            vec!["inspect", "{name}"],
            "format version 99",
            Version99,
        ),
        (
            CONSUMER,
            vec!["--name", "{name}", "--wait", "0.2"],
            "has 0 bytes",
            Empty,
        ),
        (
            CONSUMER,
            vec!["--name", "{name}", "--wait", "0.2"],
            "holds no message",
            Blank,
        ),
        // truncated after creation: a clean error, never a SIGBUS
        (
            SHMLAB,
            vec!["inspect", "{name}"],
            "it was truncated",
            Truncated64,
        ),
        (
            SHMLAB,
            vec!["inspect", "{name}", "--type", "lab3/destroy"],
            "is 136 bytes but must hold 144",
            Truncated136,
        ),
        (
            CONSUMER,
            vec!["--name", "{name}", "--wait", "0"],
            "is a shmlab region",
            Truncated64,
        ),
    ]
}

fn listing() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Makes what `setup` asks for under `name`; the returned handle (a live
/// region) must outlive the row.
fn set_up(setup: Setup, name: &ShmName) -> Option<Region<Lab3Payload>> {
    let truncated = |len: u64| {
        let mut r = Region::<Lab3Payload>::create(name, &RegionOptions::default(), ()).unwrap();
        r.keep();
        drop(r);
        std::fs::OpenOptions::new()
            .write(true)
            .open(name.path())
            .unwrap()
            .set_len(len)
            .unwrap();
    };
    match setup {
        Missing => {}
        Plain => plain_object(name, 4096, b"precious\0"),
        Empty => plain_object(name, 0, b""),
        Blank => plain_object(name, 4096, b""),
        Region => return Some(Region::create(name, &RegionOptions::default(), ()).unwrap()),
        Version99 => {
            let mut bytes = shm::MAGIC.to_le_bytes().to_vec();
            bytes.extend_from_slice(&99u32.to_le_bytes());
            plain_object(name, 4096, &bytes);
        }
        Truncated64 => truncated(64),
        Truncated136 => truncated(136),
    }
    None
}

fn snapshot(name: &ShmName) -> Option<(u64, Vec<u8>)> {
    let bytes = std::fs::read(name.path()).ok()?;
    Some((bytes.len() as u64, bytes))
}

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_dev_shm_alone() {
    let mut failures = Vec::new();
    for (i, (bin, args, expected, setup)) in rows().into_iter().enumerate() {
        let mut guard = Unlink::default();
        let name = guard.add(&format!("bad-{i}"));
        let _live = set_up(setup, &name);
        let before_obj = snapshot(&name);
        let before = listing();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{name}", name.as_str()))
            .collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(bin, &argv);
        let after = listing();
        let bin_name = bin.rsplit('/').next().unwrap();
        let row = format!("row {i}: {bin_name} {args:?}");
        if r.code != Some(2) {
            failures.push(format!(
                "{row}: exit {:?}, expected 2; stderr {:?}",
                r.code, r.stderr
            ));
        }
        if r.stderr.lines().count() != 1 || !r.stderr.starts_with("error: ") {
            failures.push(format!(
                "{row}: stderr is not one `error:` line: {:?}",
                r.stderr
            ));
        }
        if r.stderr.contains("panicked") {
            failures.push(format!("{row}: panicked: {:?}", r.stderr));
        }
        if !r.stderr.contains(expected) {
            failures.push(format!(
                "{row}: stderr {:?} does not contain {expected:?}",
                r.stderr
            ));
        }
        let pid = format!("-{}", r.pid);
        let new: Vec<_> = after
            .difference(&before)
            .filter(|n| n.contains(&pid) || n.contains(name.file_name()))
            .collect();
        if !new.is_empty() {
            failures.push(format!("{row}: left {new:?} in /dev/shm"));
        }
        if snapshot(&name) != before_obj {
            failures.push(format!(
                "{row}: the object set up for it was changed or removed"
            ));
        }
        drop(_live);
        drop(guard);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_existing_object_survives_a_refused_create() {
    let (guard, name) = Unlink::new("bad-survive");
    plain_object(&name, 4096, b"precious\0");
    run(LAB1, &["--name", name.as_str(), "--mode", "0644"]).expect_code(2);
    let obj = ShmOptions::new().read_only(true).open(&name).unwrap();
    let st = obj.stat().unwrap();
    assert_eq!((st.size, st.mode.bits()), (4096, 0o600));
    let map = obj.map(Access::ReadOnly, 4096).unwrap();
    assert_eq!(map.read_c_string(0), b"precious");
    drop(guard);
}
