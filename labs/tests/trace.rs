//! `shmlab trace`: the course's C programs (examples/trace/, compiled here
//! with `cc`) and Python's `multiprocessing.shared_memory`, run under the
//! tracer; every classic failure must be reported and explained, checked
//! field by field in the JSON report. Everything a traced program creates
//! is removed afterwards (names carry this test's pid).

mod common;

use common::{SHMLAB, Unlink};
use serde_json::Value;
use shm::ShmName;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const LAB4: &str = env!("CARGO_BIN_EXE_lab4-race");

/// The examples, compiled once per test binary into a private directory;
/// `None` (with the reason printed) when `cc` is missing or ptrace is
/// refused here.
fn examples() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("shmlab-trace-examples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/trace");
        for entry in std::fs::read_dir(&src).expect("examples/trace") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "c") {
                let exe = dir.join(path.file_stem().unwrap());
                match Command::new("cc")
                    .args(["-Wall", "-Wextra", "-O2", "-o"])
                    .arg(&exe)
                    .arg(&path)
                    .args(["-lrt", "-pthread"])
                    .status()
                {
                    Ok(s) if s.success() => {}
                    Ok(s) => panic!("cc failed on {}: {s}", path.display()),
                    Err(e) => {
                        eprintln!("SKIPPED: no C compiler (cc: {e}); the trace tests need one");
                        return None;
                    }
                }
            }
        }
        // Can this machine trace at all (ptrace may be refused in a
        // container)?
        let probe = Command::new(SHMLAB)
            .args(["trace", "--", "/bin/true"])
            .output()
            .unwrap();
        if !probe.status.success() {
            eprintln!(
                "SKIPPED: the kernel refuses ptrace here: {}",
                String::from_utf8_lossy(&probe.stderr).trim()
            );
            return None;
        }
        Some(dir)
    })
    .as_deref()
}

/// A traced run: the program's own output and status, and the report.
struct Traced {
    code: Option<i32>,
    stdout: String,
    events: Vec<Value>,
    summary: Value,
}

impl Traced {
    fn of(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }

    fn one(&self, event: &str) -> &Value {
        let all = self.of(event);
        assert_eq!(all.len(), 1, "one {event} expected: {:#?}", self.events);
        all[0]
    }
}

/// `shmlab trace --json -o FILE [flags] -- program args`.
fn trace(flags: &[&str], program: &str, args: &[&str]) -> Traced {
    let report = std::env::temp_dir().join(format!(
        "shmlab-trace-report-{}-{}",
        std::process::id(),
        REPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let out = Command::new(SHMLAB)
        .args(["trace", "--json", "-o"])
        .arg(&report)
        .args(flags)
        .args(if program.is_empty() {
            Vec::new()
        } else {
            vec!["--", program]
        })
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let mut events = Vec::new();
    let mut summary = Value::Null;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(s) = v.get("summary") {
            summary = s.clone();
        } else {
            events.push(v);
        }
    }
    assert!(
        !summary.is_null(),
        "no summary; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Traced {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        events,
        summary,
    }
}

static REPORTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn exe(name: &str) -> Option<String> {
    Some(examples()?.join(name).to_string_lossy().into_owned())
}

fn explain(e: &Value) -> String {
    e["explain"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The textbook pair: the producer's object (created, umask shown,
/// sized, mapped) is left for the consumer, which reads and unlinks it.
#[test]
fn the_textbook_producer_and_consumer() {
    let (Some(producer), Some(consumer)) = (exe("producer"), exe("consumer")) else {
        return;
    };
    let (_guard, name) = Unlink::new("trace-pair");
    let p = trace(&[], &producer, &[name.as_str()]);
    assert_eq!(p.code, Some(0));
    let open = p.one("shm_open");
    assert_eq!(open["name"], name.as_str());
    assert_eq!(open["flags"], "O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC");
    assert_eq!(open["mode"], "0666");
    assert_eq!(open["mode_rwx"], "rw-rw-rw-");
    assert_eq!(open["created"], true);
    assert!(open["fd"].as_i64().unwrap() >= 0);
    let umask = u32::from_str_radix(open["umask"].as_str().unwrap(), 8).unwrap();
    assert_eq!(open["mode_given"], format!("{:04o}", 0o666 & !umask));
    let t = p.one("ftruncate");
    assert_eq!(
        (t["old_size"].as_u64(), t["new_size"].as_u64()),
        (Some(0), Some(4096))
    );
    let m = p.one("mmap");
    assert_eq!(m["prot"], "PROT_READ | PROT_WRITE");
    assert_eq!(m["flags"], "MAP_SHARED");
    assert_eq!(m["len"], 4096);
    p.one("munmap");
    p.one("close");
    // Left for the consumer: reported, with the command that removes it.
    let left = p.summary["left_behind"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{:#?}", p.summary);
    assert_eq!(left[0]["name"], name.as_str());
    assert_eq!(left[0]["size"], 4096);
    assert_eq!(left[0]["remove"], format!("rm {}", name.path().display()));

    let c = trace(&["--check"], &consumer, &[name.as_str()]);
    assert_eq!(c.code, Some(0), "{:#?}", c.events);
    assert_eq!(c.stdout, "Hello from the producer\n");
    assert_eq!(
        c.one("shm_open")["flags"],
        "O_RDONLY | O_NOFOLLOW | O_CLOEXEC"
    );
    assert_eq!(c.one("mmap")["prot"], "PROT_READ");
    assert_eq!(c.one("shm_unlink")["name"], name.as_str());
    assert_eq!(c.summary["left_behind"].as_array().unwrap().len(), 0);
    assert!(c.summary["verdict"].as_str().unwrap().starts_with("clean"));
    assert!(!name.path().exists());
}

/// The consumer first: ENOENT, explained, counted as a failed call.
#[test]
fn the_consumer_first_is_enoent_explained() {
    let Some(consumer) = exe("consumer") else {
        return;
    };
    let name = ShmName::unique("trace-first");
    let c = trace(&[], &consumer, &[name.as_str()]);
    assert_eq!(c.code, Some(1));
    let open = c.one("shm_open");
    assert_eq!(open["error"], "ENOENT");
    assert!(explain(open).contains("does not exist yet"), "{open}");
    assert!(explain(open).contains("Start the producer first"), "{open}");
    assert_eq!(c.summary["failed_calls"], 1);
    // --check: a failed call is a failure.
    assert_eq!(
        trace(&["--check"], &consumer, &[name.as_str()]).code,
        Some(1)
    );
}

/// Mapping an object never sized: SIGBUS explained with the object, the
/// offset and the size; the object and the death reported.
#[test]
fn a_missing_ftruncate_is_a_sigbus_explained() {
    let Some(bin) = exe("no_ftruncate") else {
        return;
    };
    let (_guard, name) = Unlink::new("trace-nofr");
    let r = trace(&[], &bin, &[name.as_str()]);
    assert_eq!(
        r.code,
        Some(128 + libc::SIGBUS),
        "the program's own death is the status"
    );
    let sig = r.one("signal");
    assert_eq!(sig["signal"], "SIGBUS");
    assert_eq!(sig["name"], name.as_str());
    assert_eq!(sig["offset"], 0);
    assert_eq!(sig["size"], 0);
    assert!(explain(sig).contains("never sized"), "{sig}");
    assert!(explain(sig).contains("ftruncate"), "{sig}");
    let exit = r.one("exit");
    assert_eq!(exit["signal"], libc::SIGBUS);
    assert_eq!(r.summary["killed"], 1);
    assert_eq!(r.summary["left_behind"][0]["size"], 0);
    assert_eq!(trace(&["--check"], &bin, &[name.as_str()]).code, Some(1));
}

/// A leak: exits 0, but the summary names the object and how to remove
/// it, and --check fails.
#[test]
fn a_leak_is_reported_with_its_removal_command() {
    let Some(bin) = exe("leak") else { return };
    let (_guard, name) = Unlink::new("trace-leak");
    let r = trace(&[], &bin, &[name.as_str()]);
    assert_eq!(r.code, Some(0));
    let left = &r.summary["left_behind"][0];
    assert_eq!(left["kind"], "shm");
    assert_eq!(left["name"], name.as_str());
    assert_eq!(left["size"], 8192);
    assert_eq!(left["mode"], "0600 (rw-------)");
    assert_eq!(left["creator"], r.one("shm_open")["pid"]);
    assert_eq!(left["remove"], format!("rm {}", name.path().display()));
    assert!(name.path().exists());
    std::fs::remove_file(name.path()).unwrap();
    let again = trace(&["--check"], &bin, &[name.as_str()]);
    assert_eq!(again.code, Some(1));
}

/// The umask changed the mode: both are shown, and why.
#[test]
fn a_mode_changed_by_the_umask_shows_both() {
    let Some(bin) = exe("umask") else { return };
    let (_guard, name) = Unlink::new("trace-umask");
    let r = trace(&["--check"], &bin, &[name.as_str()]);
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stdout, "asked 0666, got 0644\n");
    let open = r.one("shm_open");
    assert_eq!(open["mode"], "0666");
    assert_eq!(open["umask"], "0022");
    assert_eq!(open["mode_given"], "0644");
    let why = explain(open);
    assert!(
        why.contains("0666 (rw-rw-rw-)") && why.contains("0644 (rw-r--r--)"),
        "{why}"
    );
    assert!(why.contains("fchmod"), "{why}");
}

/// PROT_WRITE on an O_RDONLY descriptor: EACCES, explained.
#[test]
fn prot_write_on_a_read_only_descriptor_is_eacces_explained() {
    let Some(bin) = exe("rdonly_write") else {
        return;
    };
    let (_guard, name) = Unlink::new("trace-ro");
    let r = trace(&[], &bin, &[name.as_str()]);
    assert_eq!(r.code, Some(1));
    let m = r.one("mmap");
    assert_eq!(m["error"], "EACCES");
    assert_eq!(m["prot"], "PROT_READ | PROT_WRITE");
    assert!(
        explain(m).contains("O_RDONLY") && explain(m).contains("O_RDWR"),
        "{m}"
    );
    assert_eq!(r.of("shm_open").len(), 2);
}

/// O_CREAT | O_EXCL on a leftover: EEXIST, explained with shmlab clean.
#[test]
fn o_excl_on_a_leftover_is_eexist_explained() {
    let Some(bin) = exe("eexist") else { return };
    let (_guard, name) = Unlink::new("trace-excl");
    let r = trace(&[], &bin, &[name.as_str()]);
    assert_eq!(r.code, Some(1));
    let opens = r.of("shm_open");
    assert_eq!(opens.len(), 2);
    assert_eq!(opens[1]["error"], "EEXIST");
    assert!(explain(opens[1]).contains("shmlab clean"), "{}", opens[1]);
}

/// The pipe reader kept its own write end: the hang is found, who holds
/// the write end is said, and --kill-on-hang ends the run.
#[test]
fn a_pipe_reader_hung_by_its_own_write_end_is_explained_and_ended() {
    let Some(bin) = exe("pipe_hang") else { return };
    let t0 = std::time::Instant::now();
    let r = trace(&["--hang-after", "0.5", "--kill-on-hang"], &bin, &[]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    let hang = r.one("hang");
    let pid = hang["pid"].as_i64().unwrap();
    let why = explain(hang);
    assert!(
        why.contains(&format!("its write end is still open in pid {pid} itself")),
        "{why}"
    );
    assert!(why.contains("close the write end you do not use"), "{why}");
    assert_eq!(r.summary["hangs"], 1);
    assert_eq!(r.code, Some(128 + libc::SIGKILL));
    let pipe = r.one("pipe");
    assert!(pipe["read_fd"].as_i64().is_some() && pipe["write_fd"].as_i64().is_some());
}

/// A named semaphore never unlinked: shown as sem_open, not as glibc's
/// file juggling, and reported as left behind.
#[test]
fn a_named_semaphore_never_unlinked_is_reported() {
    let Some(bin) = exe("sem_leak") else { return };
    let name = ShmName::unique("trace-sem");
    let file = PathBuf::from(format!(
        "/dev/shm/sem.{}",
        name.as_str().trim_start_matches('/')
    ));
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(file.clone());
    let r = trace(&[], &bin, &[name.as_str()]);
    assert_eq!(r.code, Some(0));
    let s = r.one("sem_open");
    assert_eq!(s["name"], name.as_str());
    assert_eq!(s["created"], true);
    assert!(
        r.of("shm_open").is_empty(),
        "glibc's temporary file shown: {:#?}",
        r.events
    );
    assert!(r.of("shm_unlink").is_empty(), "{:#?}", r.events);
    let left = &r.summary["left_behind"][0];
    assert_eq!(left["kind"], "sem");
    assert_eq!(left["remove"], format!("rm {}", file.display()));
    assert!(file.exists());
}

/// Producer and consumer through fork in one program: the fork, the
/// child's exit, the parent's output unchanged, nothing left.
#[test]
fn a_fork_pair_is_followed_and_clean() {
    let Some(bin) = exe("forkpair") else { return };
    let (_guard, name) = Unlink::new("trace-fork");
    let r = trace(&["--check"], &bin, &[name.as_str()]);
    assert_eq!(r.code, Some(0), "{:#?}", r.summary);
    assert_eq!(r.stdout, "parent read: written by the child\n");
    let fork = r.one("fork");
    let child = fork["child"].as_i64().unwrap();
    // The mapping made before the fork is the child's too.
    let maps = fork["inherited_maps"].as_array().unwrap();
    assert_eq!(maps.len(), 1, "{fork}");
    assert!(maps[0].as_str().unwrap().contains(name.as_str()), "{fork}");
    assert!(
        r.of("exit")
            .iter()
            .any(|e| e["pid"] == child && e["status"] == 0),
        "{:#?}",
        r.events
    );
    assert_eq!(r.summary["processes"].as_array().unwrap().len(), 2);
    assert!(!name.path().exists());
}

/// Python's multiprocessing.shared_memory (its resource tracker is a
/// second process): created, sized, mapped, unlinked, nothing left.
#[test]
fn python_shared_memory_is_traced_like_c() {
    if examples().is_none() {
        return;
    }
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output();
    let Some(out) = python.ok().filter(|o| o.status.success()) else {
        eprintln!("SKIPPED: no python3 here");
        return;
    };
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (_guard, name) = Unlink::new("trace-py");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/trace/shared_memory.py");
    let r = trace(
        &["--check"],
        &python,
        &[script.to_str().unwrap(), name.as_str()],
    );
    assert_eq!(r.code, Some(0), "{:#?}", r.events);
    assert_eq!(r.stdout, "hello\n");
    let open = r.one("shm_open");
    assert_eq!(open["name"], name.as_str());
    assert_eq!(
        open["flags"],
        "O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC"
    );
    assert_eq!(r.one("ftruncate")["new_size"], 4096);
    assert!(!r.of("mmap").is_empty());
    assert_eq!(r.one("shm_unlink")["name"], name.as_str());
    assert_eq!(r.summary["left_behind"].as_array().unwrap().len(), 0);
}

/// Tracing never changes what a program does: a race without a lock
/// still loses updates, and its output is its own.
#[test]
fn a_traced_race_still_loses_updates() {
    if examples().is_none() {
        return;
    }
    let r = trace(
        &[],
        LAB4,
        &[
            "--sync", "none", "--procs", "2", "--iters", "200000", "--hold", "20", "--json",
        ],
    );
    assert_eq!(r.code, Some(0), "{:#?}", r.events);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["expected"], 400_000);
    assert!(
        v["lost"].as_u64().is_some_and(|l| l > 0),
        "no update lost under the tracer: {v:#}"
    );
    // The race's region was created, mapped and removed by the race
    // itself: the tracer saw it.
    assert!(r.of("shm_open").iter().any(|e| e["created"] == true));
    assert!(!r.of("shm_unlink").is_empty());
}

/// Bad input: one line, exit 2.
#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &["trace"][..],
        &["trace", "--", "/nonexistent/program"],
        &["trace", "--hang-after", "0", "--", "/bin/true"],
    ] {
        let out = Command::new(SHMLAB).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

/// A program that stops itself (`kill -STOP $$`) is not left stopped for
/// ever: the group-stop is resumed and the run ends normally.
#[test]
fn a_program_that_stops_itself_is_not_left_stopped() {
    if examples().is_none() {
        return;
    }
    let t0 = std::time::Instant::now();
    let r = trace(&[], "/bin/sh", &["-c", "kill -STOP $$; echo after"]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(r.code, Some(0), "{:#?}", r.events);
    assert_eq!(r.stdout, "after\n");
    assert!(r.of("signal").iter().any(|e| e["signal"] == "SIGSTOP"));
}

/// `-p PID`: attached to a program already running, what it had mapped
/// before (read from /proc) is known, so its later munmap names the
/// object; it is followed to its exit.
#[test]
fn attaching_to_a_running_program_knows_what_it_had_mapped() {
    let Some(bin) = exe("slow_producer") else {
        return;
    };
    let (_guard, name) = Unlink::new("trace-attach");
    let mut child = Command::new(&bin)
        .arg(name.as_str())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Until it has mapped the object.
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{}/maps", child.id()))
        .unwrap_or_default()
        .contains(name.as_str().trim_start_matches('/'))
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "it never mapped"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    let r = trace(&["-p", &pid], "", &[]);
    let _ = child.wait();
    assert_eq!(r.code, Some(0), "{:#?}", r.events);
    assert_eq!(r.events[0]["event"], "attach");
    let unmap = r.one("munmap");
    assert_eq!(unmap["name"], name.as_str());
    assert_eq!(r.one("shm_unlink")["name"], name.as_str());
    assert_eq!(r.summary["left_behind"].as_array().unwrap().len(), 0);
}
