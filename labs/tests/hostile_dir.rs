//! A hostile `/dev/shm`: a private one (a mount namespace with a small
//! tmpfs, as root) filled with what any local user can put there — a
//! FIFO, a socket, a directory, a device node, symlinks to `/dev/zero` and
//! to a file outside, names with invalid UTF-8 and terminal escapes,
//! crafted headers with huge and overflowing sizes, a truncated header —
//! and every `shmlab` command run on it. Each must finish quickly, exit 0
//! or 2, print no raw control byte, read nothing outside `/dev/shm`, and
//! `clean` must remove only the genuinely stale shmlab regions (by their
//! exact names: never the plain file whose name prints the same).
//!
//! Where the kernel refuses the namespace (not root, no `unshare`), the
//! test says so and passes without checking anything.

mod common;
use common::*;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

const SECRET: &[u8] = b"TOPSECRET-do-not-print";

/// The bytes of a region header: shmlab's magic, version 1, Ready, the
/// given layout, a creator pid and a type tag.
fn header(pid: i32, tag: &[u8], offset: u32, size: u64, trailing: u64) -> Vec<u8> {
    let mut b = vec![0u8; shm::HEADER_SIZE];
    b[..8].copy_from_slice(&shm::MAGIC.to_le_bytes());
    b[8..12].copy_from_slice(&shm::VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&2u32.to_le_bytes());
    b[16..20].copy_from_slice(&offset.to_le_bytes());
    b[20..24].copy_from_slice(&8u32.to_le_bytes());
    b[24..32].copy_from_slice(&size.to_le_bytes());
    b[32..36].copy_from_slice(&pid.to_le_bytes());
    b[56..56 + tag.len()].copy_from_slice(tag);
    b[120..128].copy_from_slice(&trailing.to_le_bytes());
    b
}

fn can_unshare() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn every_command_survives_a_hostile_dev_shm() {
    if let Err(why) = can_unshare() {
        println!(
            "SKIPPED every_command_survives_a_hostile_dev_shm: a private /dev/shm needs `unshare -m` and mount (root): {why}"
        );
        return;
    }
    let dir = TempDir::new("hostile-dir");
    let stage = dir.0.join("stage");
    let out = dir.0.join("out");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let secret = dir.0.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let put = |name: &[u8], bytes: &[u8]| {
        std::fs::write(stage.join(std::ffi::OsStr::from_bytes(name)), bytes).unwrap();
    };
    let dead = dead_pid() as i32;
    // Finding 6: a stale region named `a\xff` beside a plain file whose
    // name is the lossy rewrite of it, `a\u{fffd}`.
    let mut stale = header(dead, b"race/none", 128, 8, 0);
    stale.resize(136, 0);
    put(b"a\xff", &stale);
    put(
        "a\u{fffd}".as_bytes(),
        b"plain, not shmlab's: must survive clean",
    );
    // Finding 7: escapes in a name and in a type tag.
    let mut esc = header(dead, b"\x1b]0;pwned\x07\x1b[2J", 128, 8, 0);
    esc.resize(136, 0);
    put(b"esc\x1b[2J\x1b[31mred", &esc);
    // Finding 13: sizes that overflow, a trailing length past any limit,
    // a header cut short.
    put(b"huge", &header(dead, b"race/none", u32::MAX, u64::MAX, 0));
    put(b"trailing", &header(dead, b"race/none", 128, 8, u64::MAX));
    put(b"trunc", &shm::MAGIC.to_le_bytes());
    put(b"plain", b"hello\0");

    let script = r#"
set -u
mount -t tmpfs -o size=4m tmpfs /dev/shm || exit 97
cp -a "$STAGE/." /dev/shm/
mkfifo /dev/shm/fifo /dev/shm/sem.fifo
mkdir /dev/shm/dir
mknod /dev/shm/null c 1 3 2>/dev/null || echo "no device node: mknod refused" >&2
ln -s /dev/zero /dev/shm/sem.zero
ln -s /dev/zero /dev/shm/zero
ln -s "$SECRET" /dev/shm/leak
ln -s "$SECRET" /dev/shm/sem.leak
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("/dev/shm/sock")' 2>/dev/null || echo "no socket: python3 missing" >&2
n=0
run() {
  n=$((n+1))
  printf '%s\n' "$*" > "$OUT/$n.cmd"
  timeout 20 "$SHMLAB" "$@" > "$OUT/$n.out" 2> "$OUT/$n.err" < /dev/null
  echo $? > "$OUT/$n.rc"
}
run ls
run ps
run ps --json
run inspect /fifo
run inspect /sem.fifo
run inspect /leak
run inspect /zero
run inspect /dir
run inspect /null
run inspect /sock
run inspect /huge
run inspect /trailing
run inspect /trunc
run inspect /plain --bytes 18446744073709551615
run ps /fifo
run ps /leak
run clean --dry-run
run clean
run clean --name /fifo
run ls
LC_ALL=C ls -A -b /dev/shm > "$OUT/after"
"#;
    let status = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .env("STAGE", &stage)
        .env("OUT", &out)
        .env("SECRET", &secret)
        .env("SHMLAB", SHMLAB)
        .status()
        .unwrap();
    assert!(status.success(), "the namespace script failed: {status:?}");

    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    let mut n = 1;
    while out.join(format!("{n}.cmd")).exists() {
        let cmd = String::from_utf8_lossy(&read(&out.join(format!("{n}.cmd"))))
            .trim()
            .to_string();
        let rc: i32 = String::from_utf8_lossy(&read(&out.join(format!("{n}.rc"))))
            .trim()
            .parse()
            .unwrap();
        let stdout = read(&out.join(format!("{n}.out")));
        let stderr = read(&out.join(format!("{n}.err")));
        let show = || {
            format!(
                "`shmlab {cmd}` exited {rc}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            )
        };
        assert_ne!(rc, 124, "it hung (killed after 20 s): {}", show());
        assert!(rc == 0 || rc == 2, "{}", show());
        if rc == 2 {
            assert_eq!(
                String::from_utf8_lossy(&stderr).trim().lines().count(),
                1,
                "bad input gets one line: {}",
                show()
            );
        }
        for b in [&stdout, &stderr] {
            assert!(
                control_bytes(b).is_empty(),
                "raw control bytes at {:?}: {}",
                control_bytes(b),
                show()
            );
            assert!(
                !b.windows(SECRET.len()).any(|w| w == SECRET),
                "read a file outside /dev/shm: {}",
                show()
            );
        }
        n += 1;
    }
    assert!(n > 20, "only {} commands ran", n - 1);

    let after = String::from_utf8_lossy(&read(&out.join("after"))).into_owned();
    let left: Vec<&str> = after.lines().collect();
    // Removed: the stale crafted regions (exact names), nothing else.
    for gone in ["a\\377", "esc\\033[2J\\033[31mred", "huge", "trailing"] {
        assert!(!left.contains(&gone), "clean left stale {gone}: {left:?}");
    }
    for kept in [
        "a\\357\\277\\275",
        "trunc",
        "plain",
        "sem.fifo",
        "dir",
        "sem.zero",
        "zero",
        "leak",
        "sem.leak",
    ] {
        assert!(left.contains(&kept), "clean removed {kept}: {left:?}");
    }
    // `clean --name /fifo` on a FIFO of ours that nobody uses: explicit,
    // so it is removed (by lstat identity, never opened).
    let clean_fifo = String::from_utf8_lossy(&read(&out.join("19.out"))).into_owned();
    assert!(clean_fifo.contains("removed /fifo"), "{clean_fifo}");
    assert!(
        !left.contains(&"fifo"),
        "clean --name /fifo left it: {left:?}"
    );
    // Names print escaped in `ls` and `clean`.
    let ls = String::from_utf8_lossy(&read(&out.join("1.out"))).into_owned();
    assert!(ls.contains("/a\\xff"), "{ls}");
    assert!(ls.contains("esc\\x1b[2J"), "{ls}");
    assert!(ls.contains("FIFO"), "{ls}");
    let clean = String::from_utf8_lossy(&read(&out.join("18.out"))).into_owned();
    assert!(clean.contains("removed /a\\xff"), "{clean}");
}
