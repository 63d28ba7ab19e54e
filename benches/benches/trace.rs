//! What tracing costs: `trace_overhead/<workload>/<how>` is the wall time
//! of one whole run of a workload process (start to exit, the process's
//! own start-up included, the same for every `how`):
//!
//! - `untraced`: the workload alone;
//! - `shmlab-trace`: under `shm_trace::run` (what `shmlab trace` runs),
//!   whose seccomp-BPF filter stops the program only at the calls it
//!   decodes (opens, sizes, maps, unlinks, pipes, shared futex waits);
//! - `shmlab-trace-no-waits`: the same with `--no-waits` (the filter
//!   lets futex calls through: no `futex_wait` events);
//! - `strace-f`: under `strace -f -qq -o /dev/null`, which stops at every
//!   system call (skipped, with the reason printed, without strace).
//!
//! Workloads, run by this very binary re-executed with
//! `--shmlab-workload NAME`:
//!
//! - `race-none`: lab 4's race without a lock, 2 processes × 200,000,000
//!   increments (`lab4-race --sync none --iters 200000000`): a loop with no
//!   system call at all, so only start-up and the region's set-up stop;
//! - `race-futex`: lab 4's race, 2 processes × 200,000 increments under
//!   the futex lock in the region (`lab4-race --sync futex --iters
//!   200000`); its loop makes no system call but the shared futex waits of
//!   a contended lock;
//! - `buffer-sem`: lab 7's bounded buffer, 2 producers and 2 consumers,
//!   20,000 items each through 16 slots with POSIX semaphores (`lab7-buffer
//!   --items 20000`): a system call (shared futex wait or wake) for many
//!   items.
//!
//! Ratios are taken against `untraced` of the same run.
//! `SHMLAB_BENCH_QUICK=1` shrinks it to a smoke check.

use criterion::{Criterion, SamplingMode};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FLAG: &str = "--shmlab-workload";
const WORKLOADS: [&str; 3] = ["race-none", "race-futex", "buffer-sem"];

/// The workload process: runs `name` and exits 0 (1 on failure).
fn workload(name: &str) -> ! {
    let ok = match name {
        "race-none" => {
            let cfg = race::Config {
                sync: race::SyncMode::None,
                kind: race::WorkerKind::Procs,
                workers: 2,
                iters: 200_000_000,
                hold: 0,
            };
            race::run_trial(&cfg, 1, &mut |_, _| {}).is_ok()
        }
        "race-futex" => {
            let cfg = race::Config {
                sync: race::SyncMode::Futex,
                kind: race::WorkerKind::Procs,
                workers: 2,
                iters: 200_000,
                hold: 0,
            };
            race::run_trial(&cfg, 1, &mut |_, _| {}).is_ok_and(|r| r.actual == r.expected)
        }
        "buffer-sem" => {
            let cfg = labs::lab7::Config {
                producers: 2,
                consumers: 2,
                items: 20_000,
                slots: 16,
                sync: labs::lab7::BufferSync::Sem,
            };
            labs::lab7::run(&cfg).is_ok_and(|r| r.correct())
        }
        _ => false,
    };
    std::process::exit(if ok { 0 } else { 1 })
}

fn untraced(exe: &std::path::Path, w: &str) -> Duration {
    let t0 = Instant::now();
    let st = Command::new(exe)
        .args([FLAG, w])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let d = t0.elapsed();
    assert!(st.success(), "{w} failed untraced");
    d
}

fn traced(exe: &std::path::Path, w: &str, waits: bool) -> Duration {
    let opts = shm_trace::Options {
        hang_after: Duration::from_secs(3600),
        kill_on_hang: false,
        every_call: false,
        waits,
    };
    let args = [FLAG.into(), w.into()];
    let t0 = Instant::now();
    let (end, summary) = shm_trace::run(
        exe.as_os_str(),
        &args,
        &opts,
        shm_trace::Output::new(Box::new(std::io::sink()), false),
    )
    .unwrap_or_else(|e| panic!("{w}: {e}"));
    let d = t0.elapsed();
    assert_eq!(
        end,
        shm_trace::RootEnd::Exited(0),
        "{w} failed traced: {summary:?}"
    );
    d
}

fn straced(exe: &std::path::Path, w: &str) -> Duration {
    let t0 = Instant::now();
    let st = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null"])
        .arg(exe)
        .args([FLAG, w])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let d = t0.elapsed();
    assert!(st.success(), "{w} failed under strace");
    d
}

fn have_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == FLAG) {
        workload(args.get(i + 1).map_or("", String::as_str));
    }
    let exe = std::env::current_exe().expect("this bench's own path");
    let quick = shmlab_benches::quick();
    let strace = have_strace();
    if !strace {
        eprintln!("trace_overhead/*/strace-f: SKIPPED, strace is not installed");
    }
    // Can this machine trace (ptrace may be refused in a container)?
    let probe = shm_trace::run(
        std::ffi::OsStr::new("/bin/true"),
        &[],
        &shm_trace::Options {
            hang_after: Duration::from_secs(3600),
            kill_on_hang: false,
            every_call: false,
            waits: true,
        },
        shm_trace::Output::new(Box::new(std::io::sink()), false),
    );
    if let Err(e) = probe {
        eprintln!("trace_overhead: SKIPPED, this machine cannot trace: {e}");
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("trace_overhead");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(if quick { 100 } else { 1000 }))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 10 }));
    for w in WORKLOADS {
        g.bench_function(format!("{w}/untraced"), |b| {
            b.iter_custom(|n| (0..n).map(|_| untraced(&exe, w)).sum())
        });
        g.bench_function(format!("{w}/shmlab-trace"), |b| {
            b.iter_custom(|n| (0..n).map(|_| traced(&exe, w, true)).sum())
        });
        g.bench_function(format!("{w}/shmlab-trace-no-waits"), |b| {
            b.iter_custom(|n| (0..n).map(|_| traced(&exe, w, false)).sum())
        });
        if strace {
            g.bench_function(format!("{w}/strace-f"), |b| {
                b.iter_custom(|n| (0..n).map(|_| straced(&exe, w)).sum())
            });
        }
    }
    g.finish();
    c.final_summary();
}
