//! Helpers shared by the labs' integration tests: running the binaries,
//! guards that remove what a test made (even when it fails), and building
//! the textbook's C programs.
#![allow(dead_code)]

use shm::{Access, ShmName, ShmObject, ShmOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const LAB1: &str = env!("CARGO_BIN_EXE_lab1-create");
pub const PRODUCER: &str = env!("CARGO_BIN_EXE_lab2-producer");
pub const CONSUMER: &str = env!("CARGO_BIN_EXE_lab2-consumer");
pub const LAB3: &str = env!("CARGO_BIN_EXE_lab3-destroy");
pub const SHMLAB: &str = env!("CARGO_BIN_EXE_shmlab");

/// Unlinks its names when dropped, so a failing test leaves nothing behind.
#[derive(Debug, Default)]
pub struct Unlink(pub Vec<ShmName>);

impl Unlink {
    pub fn new(purpose: &str) -> (Self, ShmName) {
        let name = ShmName::unique(purpose);
        (Unlink(vec![name.clone()]), name)
    }

    pub fn add(&mut self, purpose: &str) -> ShmName {
        let name = ShmName::unique(purpose);
        self.0.push(name.clone());
        name
    }
}

impl Drop for Unlink {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = n.unlink();
        }
    }
}

/// A finished run: status code, stdout, stderr, and the child's pid.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub pid: u32,
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit status: {self:#?}");
        self
    }
}

fn finish(child: std::process::Child) -> Run {
    let pid = child.id();
    let out: Output = child.wait_with_output().expect("wait for child");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    }
}

pub fn spawn(bin: &str, args: &[&str]) -> std::process::Child {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
}

/// Runs `bin args` to completion.
pub fn run(bin: &str, args: &[&str]) -> Run {
    finish(spawn(bin, args))
}

/// Runs `bin args` under `umask` (set by the shell, then `exec`).
pub fn run_with_umask(umask: &str, bin: &str, args: &[&str]) -> Run {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sh");
    finish(child)
}

pub fn exists(name: &ShmName) -> bool {
    name.path().exists()
}

/// Creates a plain object of `size` bytes holding `bytes` at offset 0, and
/// leaves it in place (the caller's [`Unlink`] removes it).
pub fn plain_object(name: &ShmName, size: u64, bytes: &[u8]) {
    let mut obj: ShmObject = ShmOptions::new()
        .create_new(true)
        .open(name)
        .expect("create");
    if size > 0 {
        obj.set_len(size).expect("size");
        let map = obj.map(Access::ReadWrite, size as usize).expect("map");
        map.write(0, bytes).expect("write");
    }
    obj.keep();
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("shmlab-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The textbook's producer (Silberschatz fig. 3.16), taking the name and
/// the message from argv so tests can use unique names.
pub const C_PRODUCER: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const int SIZE = 4096;
    const char *name = argc > 1 ? argv[1] : "OS";
    const char *message = argc > 2 ? argv[2] : "Studying Operating Systems Is Fun!";
    int fd = shm_open(name, O_CREAT | O_RDWR, 0666);
    if (fd < 0) { perror("shm_open"); return 1; }
    if (ftruncate(fd, SIZE) != 0) { perror("ftruncate"); return 1; }
    char *ptr = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    sprintf(ptr, "%s", message);
    return 0;
}
"#;

/// The textbook's consumer (fig. 3.17): print the string, then unlink.
pub const C_CONSUMER: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const int SIZE = 4096;
    const char *name = argc > 1 ? argv[1] : "OS";
    int fd = shm_open(name, O_RDONLY, 0666);
    if (fd < 0) { perror("shm_open"); return 1; }
    char *ptr = mmap(0, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    printf("%s\n", ptr);
    shm_unlink(name);
    return 0;
}
"#;

/// Compiles `src` with `cc` into `dir/exe`.
pub fn compile_c(dir: &Path, exe: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{exe}.c"));
    let out = dir.join(exe);
    std::fs::write(&c, src).expect("write C source");
    let status = Command::new("cc")
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .arg("-lrt")
        .status()
        .expect("cc (gcc) must be installed to build the textbook's C programs");
    assert!(status.success(), "cc failed for {exe}.c");
    out
}

/// The `/dev/shm` entries whose name contains `what` and `tag` (a lab's
/// `-PID-`): what that run of that lab made.
pub fn shm_entries(what: &str, tag: &str) -> Vec<String> {
    std::fs::read_dir(shm::SHM_DIR)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(what) && n.contains(tag))
        .collect()
}

/// Runs `bin args` to completion (output captured) and asserts that it
/// left nothing of its own in `/dev/shm` (entries named `what` with its
/// pid).
pub fn run_leaving_nothing(bin: &str, what: &str, args: &[&str]) -> Output {
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let tag = format!("-{}-", child.id());
    let out = child.wait_with_output().expect("wait for child");
    let left = shm_entries(what, &tag);
    assert!(left.is_empty(), "{args:?} left {left:?}");
    out
}

/// [`run_leaving_nothing`] with `--json` added: asserts success and parses
/// the one JSON object it prints.
pub fn run_json(bin: &str, what: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run_leaving_nothing(bin, what, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The processes `pid` forked that are still its children
/// (`/proc/PID/task/PID/children`).
pub fn children_of(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Waits (at most `limit`) until none of `pids` runs any more (gone, or a
/// zombie nobody reaps); panics naming the first still running.
pub fn wait_until_gone(pids: &[i32], limit: std::time::Duration) {
    let start = std::time::Instant::now();
    for &p in pids {
        while shm::process::liveness(p, 0) == shm::process::Liveness::Running {
            assert!(
                start.elapsed() < limit,
                "process {p} still runs after {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Sends SIGINT (Ctrl-C) to `child` and asserts it died of it, as a shell
/// expects of an interrupted program.
pub fn interrupt(child: std::process::Child) -> Output {
    use std::os::unix::process::ExitStatusExt;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGINT), "{:?}", out.status);
    out
}

/// Each of `cases` exits 2 with one line on stderr and leaves nothing.
pub fn expect_bad_input(bin: &str, what: &str, cases: &[&[&str]]) {
    for args in cases {
        let out = run_leaving_nothing(bin, what, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

/// What a killed lab left (one object named `what` with its `tag`) is
/// removed by `shmlab clean --name`, and then nothing is left.
pub fn shmlab_clean_removes_what_is_left(what: &str, tag: &str) {
    let left = shm_entries(what, tag);
    assert_eq!(left.len(), 1, "{left:?}");
    let out = Command::new(SHMLAB)
        .args(["clean", "--name", &format!("/{}", left[0])])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let after = shm_entries(what, tag);
    assert!(after.is_empty(), "left {after:?}");
}

/// Raw control bytes a terminal would act on: C0 but newline and tab,
/// DEL, and C1 (as UTF-8, `c2 80`..`c2 9f`).
pub fn control_bytes(b: &[u8]) -> Vec<usize> {
    let mut at = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        let c1 = c == 0xc2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
        if (c < 0x20 && c != b'\n' && c != b'\t') || c == 0x7f || c1 {
            at.push(i);
        }
    }
    at
}

/// A pid that is certainly gone: a child that ran `true` and was reaped
/// (a creator or holder to record as dead).
pub fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().expect("run true");
    let pid = c.id();
    c.wait().expect("reap true");
    pid
}
