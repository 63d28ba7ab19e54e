//! `lab9-algorithms` from the outside: the C example locks built with `cc`
//! and raced, bad libraries, bad input, `--check`, JSON, the `--algo all`
//! table, and nothing left in /dev/shm.

mod common;
use common::{Run, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

const LAB9: &str = env!("CARGO_BIN_EXE_lab9-algorithms");

fn lab9(args: &[&str]) -> Run {
    common::run(LAB9, args)
}

/// What the run left in /dev/shm: names carrying its pid (shmlab names
/// objects `shmlab-<purpose>-<pid>-<n>`).
fn left(r: &Run) -> Vec<String> {
    let tag = format!("-{}-", r.pid);
    let names = std::fs::read_dir("/dev/shm").unwrap().flatten();
    names
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&tag))
        .collect()
}

/// Runs one at a time: each forks workers and wants the two CPUs.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/locks")
}

/// `cc -O2 -shared -fPIC [extra] -o dir/out.so src` with the examples'
/// header on the include path; `None` (after saying why) if there is no
/// `cc` on this machine.
fn build_lib(dir: &Path, out: &str, src: &Path, extra: &[&str]) -> Option<PathBuf> {
    let so = dir.join(out);
    let status = Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-Wall", "-Werror"])
        .args(extra)
        .arg("-I")
        .arg(examples())
        .arg("-o")
        .arg(&so)
        .arg(src)
        .status();
    match status {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: no `cc` on this machine to build the C example locks");
            None
        }
        Err(e) => panic!("cannot run cc: {e}"),
        Ok(s) => {
            assert!(s.success(), "cc failed for {}", src.display());
            Some(so)
        }
    }
}

/// A C lock written for a bad-library case.
fn build_src(dir: &Path, name: &str, body: &str) -> Option<PathBuf> {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, format!("#include \"shmlab_lock.h\"\n{body}")).unwrap();
    build_lib(dir, &format!("{name}.so"), &src, &[])
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_c_example_locks_build_and_race() {
    let _serial = serial();
    let dir = TempDir::new("lab9-locks");
    let Some(peterson) = build_lib(&dir.0, "peterson.so", &examples().join("peterson.c"), &[])
    else {
        return;
    };
    let broken = build_lib(&dir.0, "broken.so", &examples().join("broken.c"), &[]).unwrap();
    let nofence = build_lib(
        &dir.0,
        "peterson-nofence.so",
        &examples().join("peterson.c"),
        &["-DNO_FENCE"],
    )
    .unwrap();

    // The correct one: exact, every trial, processes and threads.
    for workers in [["--procs", "2"], ["--threads", "2"]] {
        let mut args = vec!["--lock-lib", peterson.to_str().unwrap()];
        args.extend(workers);
        args.extend(["--iters", "20000", "--trials", "3", "--json", "--check"]);
        let r = lab9(&args);
        assert_eq!(r.code, Some(0), "{r:#?}");
        let rows = json_lines(&r.stdout);
        assert_eq!(rows.len(), 3, "{r:#?}");
        for v in rows {
            assert_eq!(v["algorithm"], "peterson.so");
            assert_eq!(v["expected"], 40_000);
            assert_eq!(v["actual"], 40_000);
            assert_eq!(
                (v["violations"].as_u64(), v["lost"].as_u64()),
                (Some(0), Some(0))
            );
        }
        assert!(left(&r).is_empty(), "{:?}", left(&r));
    }
    // Its text report.
    let r = lab9(&["--lock-lib", peterson.to_str().unwrap(), "--iters", "5000"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("12 bytes of state"), "{r:#?}");
    assert!(r.stdout.contains("violations 0"), "{r:#?}");
    // Its own limit: Peterson is for 2 workers.
    let r = lab9(&["--lock-lib", peterson.to_str().unwrap(), "--procs", "3"]);
    assert_eq!(r.code, Some(2), "{r:#?}");
    assert!(r.stderr.contains("at most 2 workers"), "{r:#?}");

    // The broken ones: --check exits 1 (a few bounded tries: the failure
    // needs two workers at the lock at once on two CPUs).
    for lib in [&broken, &nofence] {
        let caught = (0..6).any(|_| {
            let r = lab9(&["--lock-lib", lib.to_str().unwrap(), "--check"]);
            assert!(left(&r).is_empty(), "{:?}", left(&r));
            match r.code {
                Some(1) => {
                    assert!(
                        r.stdout.contains("does not provide mutual exclusion"),
                        "{r:#?}"
                    );
                    true
                }
                Some(0) => false,
                _ => panic!("{r:#?}"),
            }
        });
        assert!(caught, "{} was never caught in 6 runs", lib.display());
    }
}

#[test]
fn bad_libraries_exit_2_with_one_line() {
    let _serial = serial();
    let dir = TempDir::new("lab9-badlibs");
    let ok = r#"
void shmlab_lock_init(void *s, unsigned n) { (void)s; (void)n; }
void shmlab_lock_acquire(void *s, unsigned me) { (void)s; (void)me; }
"#;
    let release = "void shmlab_lock_release(void *s, unsigned me) { (void)s; (void)me; }\n";
    let cases = [
        (
            "missing",
            format!("size_t shmlab_lock_size(void) {{ return 4; }}\n{ok}"),
            "does not export shmlab_lock_release",
        ),
        (
            "zero",
            format!("size_t shmlab_lock_size(void) {{ return 0; }}\n{ok}{release}"),
            "returned 0",
        ),
        (
            "absurd",
            format!("size_t shmlab_lock_size(void) {{ return (size_t)1 << 40; }}\n{ok}{release}"),
            "returned 1099511627776 bytes",
        ),
        (
            "noworkers",
            format!(
                "size_t shmlab_lock_size(void) {{ return 4; }}\nunsigned shmlab_lock_max_workers(void) {{ return 0; }}\n{ok}{release}"
            ),
            "shmlab_lock_max_workers() returned 0",
        ),
    ];
    let mut libs = vec![];
    for (name, body, want) in &cases {
        let Some(so) = build_src(&dir.0, name, body) else {
            return;
        };
        libs.push((so.to_str().unwrap().to_string(), *want));
    }
    // Not a shared library at all, and no file.
    let text = dir.0.join("text.so");
    std::fs::write(&text, "not ELF").unwrap();
    libs.push((text.to_str().unwrap().to_string(), "cannot load"));
    libs.push(("/nonexistent/lock.so".into(), "no such file"));
    for (lib, want) in libs {
        let r = lab9(&["--lock-lib", &lib]);
        assert_eq!(r.code, Some(2), "{lib}: {r:#?}");
        assert_eq!(r.stderr.lines().count(), 1, "{lib}: {r:#?}");
        assert!(r.stderr.starts_with("error: "), "{lib}: {r:#?}");
        assert!(r.stderr.contains(want), "{lib}: want {want:?}: {r:#?}");
        assert!(!r.stderr.contains("panicked"), "{r:#?}");
        assert!(r.stdout.is_empty(), "{lib}: {r:#?}");
        assert!(left(&r).is_empty(), "{:?}", left(&r));
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let _serial = serial();
    for (args, want) in [
        (vec!["--algo", "mcs"], "unknown algorithm \"mcs\""),
        (
            vec!["--algo", "peterson", "--procs", "3"],
            "peterson is for 2 workers at most",
        ),
        (
            vec!["--algo", "dekker", "--threads", "4"],
            "dekker is for 2 workers at most",
        ),
        (vec!["--fence", "mfence"], "unknown fence \"mfence\""),
        (
            vec!["--algo", "tas", "--lock-lib", "x.so"],
            "cannot be used with",
        ),
        (vec!["--procs", "0"], "--procs"),
        (
            vec!["--procs", "2", "--threads", "2"],
            "cannot be used with",
        ),
        (vec!["--iters", "0"], "--iters"),
        (vec!["--timeout", "0"], "deadline of 0 s"),
        (vec!["--timeout", "soon"], "not a number of seconds"),
    ] {
        let r = lab9(&args);
        assert_eq!(r.code, Some(2), "{args:?}: {r:#?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:#?}");
        assert!(r.stderr.contains(want), "{args:?}: want {want:?}: {r:#?}");
        assert!(left(&r).is_empty(), "{:?}", left(&r));
    }
}

#[test]
fn one_algorithm_shows_its_code_and_says_what_to_notice() {
    let _serial = serial();
    let r = lab9(&["--algo", "peterson", "--fence", "both", "--iters", "20000"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    for want in [
        "flag[me] = true;",
        "while (flag[other] && turn == other) ;",
        "/* no fence */",
        "fence none",
        "fence seqcst",
        "What to notice:",
        "peterson, mfence",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?}: {r:#?}");
    }
    // Fenced Peterson and the ticket lock pass --check, with threads too.
    for args in [
        vec!["--algo", "peterson", "--fence", "seqcst", "--trials", "3"],
        vec!["--algo", "ticket", "--threads", "3", "--trials", "3"],
    ] {
        let mut args = args;
        args.extend(["--iters", "20000", "--check"]);
        let r = lab9(&args);
        assert_eq!(r.code, Some(0), "{args:?}: {r:#?}");
        assert!(r.stdout.contains("0 of 3 trials broke"), "{r:#?}");
        assert!(left(&r).is_empty(), "{:?}", left(&r));
    }
}

#[test]
fn all_prints_one_table_and_json_rows() {
    let _serial = serial();
    let r = lab9(&["--algo", "all", "--iters", "20000"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("algorithm fence"), "{r:#?}");
    for row in [
        "flag      none",
        "peterson  none",
        "peterson  seqcst",
        "dekker    seqcst",
        "bakery    seqcst",
        "tas       none",
        "ttas      none",
        "ticket    none",
    ] {
        assert!(r.stdout.contains(row), "missing row {row:?}: {r:#?}");
    }
    assert!(r.stdout.contains("The point:"), "{r:#?}");
    assert!(r.stdout.contains("- Fairness ("), "{r:#?}");
    assert!(left(&r).is_empty(), "{:?}", left(&r));

    // Three workers: the two-worker algorithms are skipped, with the reason.
    let r = lab9(&["--algo", "all", "--procs", "3", "--iters", "5000", "--json"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let rows = json_lines(&r.stdout);
    assert_eq!(rows.len(), 2 * 2 + 3, "{r:#?}");
    for v in &rows {
        assert_ne!(v["algorithm"], "peterson");
        assert_ne!(v["algorithm"], "dekker");
        assert_eq!(v["workers"], 3);
        assert_eq!(v["kind"], "procs");
        for key in [
            "fence",
            "iters",
            "expected",
            "actual",
            "lost",
            "violations",
            "elapsed_ns",
            "ops_per_sec",
            "fairness",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["per_worker"].as_array().unwrap().len(), 3);
    }
    let correct = rows.iter().filter(|v| {
        v["fence"] == "seqcst" && v["algorithm"] == "bakery"
            || ["tas", "ttas", "ticket"].contains(&v["algorithm"].as_str().unwrap())
    });
    for v in correct {
        assert_eq!(v["actual"], v["expected"], "{v}");
        assert_eq!(v["violations"], 0, "{v}");
    }
    assert!(left(&r).is_empty(), "{:?}", left(&r));
}

#[test]
fn help_names_every_algorithm_and_the_abi() {
    let r = lab9(&["--help"]);
    assert_eq!(r.code, Some(0));
    for want in [
        "flag | peterson | dekker | bakery | tas | ttas | ticket | all",
        "--fence",
        "--lock-lib",
        "shmlab_lock_acquire",
        "--timeout",
        "--check",
        "--json",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?}: {r:#?}");
    }
}
