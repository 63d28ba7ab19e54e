//! The algorithms raced for real: every correct one ends at exactly the
//! expected count with zero violations, in every trial, with processes and
//! with threads; the broken ones are caught; a lock that never lets go is
//! stopped at the deadline; nothing is left in /dev/shm.

use algos::{
    Aborted, Algo, Fence, MutexAlgorithm, RaceConfig, RaceError, RaceResult, Waiter, WorkerKind,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Races run one at a time: they fork (see the race crate's notes on
/// forking from a multi-threaded test), and on two CPUs parallel races
/// would only slow each other down.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's objects in /dev/shm (shmlab names them
/// `shmlab-<purpose>-<pid>-<n>`).
fn leftovers() -> Vec<String> {
    let tag = format!("-{}-", std::process::id());
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shmlab-algos") && n.contains(&tag))
        .collect()
}

const TRIALS: u32 = 3;
const ITERS: u64 = 20_000;

fn assert_exact(r: &RaceResult, what: &str) {
    assert!(r.finished, "{what}: did not finish: {r:#?}");
    assert_eq!(r.expected, r.workers as u64 * ITERS, "{what}");
    assert_eq!(r.actual, r.expected, "{what}: lost updates: {r:#?}");
    assert_eq!((r.violations, r.lost), (0, 0), "{what}: {r:#?}");
    let done: u64 = r.per_worker.iter().map(|w| w.done).sum();
    assert_eq!(done, r.expected, "{what}");
}

/// The algorithms that must be correct, with the fence that makes them so.
const CORRECT: [(Algo, Fence); 8] = [
    (Algo::Peterson, Fence::SeqCst),
    (Algo::Dekker, Fence::SeqCst),
    (Algo::Bakery, Fence::SeqCst),
    (Algo::Tas, Fence::None),
    (Algo::Ttas, Fence::None),
    (Algo::Ticket, Fence::None),
    (Algo::Tas, Fence::SeqCst),
    (Algo::Ticket, Fence::SeqCst),
];

fn every_correct_algorithm_is_exact(cfg: RaceConfig) {
    let _serial = serial();
    for (algo, fence) in CORRECT {
        assert!(algo.correct_with(fence));
        for trial in 1..=TRIALS {
            let r = algo.race(fence, &cfg).unwrap();
            assert_eq!((r.algorithm.as_str(), r.fence), (algo.name(), fence));
            assert_eq!((r.kind, r.workers), (cfg.kind, cfg.workers));
            assert_exact(&r, &format!("{algo} fence {fence} trial {trial}"));
        }
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
fn correct_algorithms_with_two_processes() {
    every_correct_algorithm_is_exact(RaceConfig::procs(2, ITERS));
}

#[test]
fn correct_algorithms_with_two_threads() {
    every_correct_algorithm_is_exact(RaceConfig::threads(2, ITERS));
}

#[test]
fn n_worker_locks_with_three_processes_and_four_threads() {
    let _serial = serial();
    for cfg in [RaceConfig::procs(3, ITERS), RaceConfig::threads(4, ITERS)] {
        for algo in [Algo::Bakery, Algo::Tas, Algo::Ttas, Algo::Ticket] {
            let r = algo.race(Fence::SeqCst, &cfg).unwrap();
            assert_exact(&r, &format!("{algo} with {} {:?}", cfg.workers, cfg.kind));
            assert_eq!(r.per_worker.len(), cfg.workers as usize);
        }
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

/// A broken algorithm's failure depends on two workers arriving at the lock
/// at once on two CPUs; on a busy machine a run can miss it. Up to
/// `tries` bounded runs; the first that shows a violation ends the search.
fn shows_violations(algo: Algo, fence: Fence, kind: WorkerKind, tries: u32) {
    let _serial = serial();
    let cfg = RaceConfig {
        kind,
        ..RaceConfig::procs(2, 200_000)
    };
    let mut seen = Vec::new();
    for _ in 0..tries {
        let r = algo.race(fence, &cfg).unwrap();
        assert!(r.finished, "{r:#?}");
        // Lost updates only ever come with violations.
        assert!(r.lost == 0 || r.violations > 0, "{r:#?}");
        assert_eq!(r.actual + r.lost, r.expected);
        if r.violations > 0 {
            assert!(leftovers().is_empty(), "{:?}", leftovers());
            return;
        }
        seen.push(r.mean_streak);
    }
    panic!(
        "{algo} with fence {fence} showed no violation in {tries} runs of 2 x 200,000 entries (entries per hand-off: {seen:?})"
    );
}

#[test]
fn unfenced_peterson_breaks_on_this_machine() {
    shows_violations(Algo::Peterson, Fence::None, WorkerKind::Procs, 8);
}

#[test]
fn unfenced_peterson_breaks_with_threads_too() {
    shows_violations(Algo::Peterson, Fence::None, WorkerKind::Threads, 8);
}

#[test]
fn the_flag_lock_breaks_fenced_or_not() {
    shows_violations(Algo::Flag, Fence::None, WorkerKind::Procs, 8);
    shows_violations(Algo::Flag, Fence::SeqCst, WorkerKind::Procs, 8);
}

/// A student's own lock, in a few lines: a ticket lock with its state as
/// a `#[repr(C)]` struct.
struct StudentTicket;

#[repr(C)]
#[derive(Default)]
struct Tickets {
    next: AtomicU32,
    now: AtomicU32,
}
shm::any_bits!(Tickets { next, now });

// SAFETY: two AtomicU32s in a #[repr(C)] struct; zero = no ticket out,
// ticket 0 served.
unsafe impl MutexAlgorithm for StudentTicket {
    type State = Tickets;
    const NAME: &'static str = "student-ticket";
    const MAX_WORKERS: u32 = algos::MAX_WORKERS;

    fn acquire(&self, t: &Tickets, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        let mine = t.next.fetch_add(1, Ordering::Relaxed);
        while t.now.load(Ordering::Acquire) != mine {
            w.spin()?;
        }
        Ok(())
    }

    fn release(&self, t: &Tickets, _me: u32) {
        t.now.fetch_add(1, Ordering::Release);
    }
}

#[test]
fn a_students_rust_lock_runs_through_the_same_harness() {
    let _serial = serial();
    for cfg in [RaceConfig::procs(2, ITERS), RaceConfig::threads(3, ITERS)] {
        let r = algos::race(StudentTicket, &cfg).unwrap();
        assert_eq!(r.algorithm, "student-ticket");
        assert_exact(&r, "student-ticket");
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

/// A lock that is never released: the second worker waits forever. With
/// `deaf`, its wait loop ignores the Waiter (as a C lock's must), so only
/// killing its process stops it.
struct NeverLetsGo {
    deaf: bool,
}

// SAFETY: one AtomicU32; zero is free.
unsafe impl MutexAlgorithm for NeverLetsGo {
    type State = AtomicU32;
    const NAME: &'static str = "never-lets-go";
    const MAX_WORKERS: u32 = 8;

    fn acquire(&self, s: &AtomicU32, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        while s.swap(1, Ordering::Acquire) != 0 {
            if self.deaf {
                std::hint::spin_loop();
            } else {
                w.spin()?;
            }
        }
        Ok(())
    }

    fn release(&self, _: &AtomicU32, _me: u32) {}
}

#[test]
fn a_lock_that_never_lets_go_is_stopped_at_the_deadline() {
    let _serial = serial();
    let deadline = Duration::from_millis(300);
    // Deaf: only processes (a deaf thread could not be stopped at all).
    for (kind, deaf) in [
        (WorkerKind::Procs, false),
        (WorkerKind::Threads, false),
        (WorkerKind::Procs, true),
    ] {
        let cfg = RaceConfig {
            kind,
            deadline,
            ..RaceConfig::procs(2, 1000)
        };
        let t0 = Instant::now();
        let r = algos::race(NeverLetsGo { deaf }, &cfg).unwrap();
        let took = t0.elapsed();
        assert!(!r.finished, "{r:#?}");
        assert!(r.actual >= 1 && r.actual < r.expected, "{r:#?}");
        assert_eq!(r.violations, 0);
        // Deadline plus at most the 1 s grace, with room for a slow machine.
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
fn bad_configurations_are_refused_before_anything_starts() {
    let _serial = serial();
    let too_many = Algo::Peterson
        .race(Fence::SeqCst, &RaceConfig::procs(3, 10))
        .unwrap_err();
    assert!(
        matches!(&too_many, RaceError::Config(m) if m.contains("at most 2 workers")),
        "{too_many}"
    );
    for cfg in [
        RaceConfig::procs(0, 10),
        RaceConfig::procs(2, 0),
        RaceConfig::procs(algos::MAX_WORKERS + 1, 10),
        RaceConfig::procs(2, u64::MAX),
        RaceConfig {
            deadline: Duration::ZERO,
            ..RaceConfig::procs(2, 10)
        },
    ] {
        let e = Algo::Tas.race(Fence::None, &cfg).unwrap_err();
        assert!(matches!(e, RaceError::Config(_)), "{e}");
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
fn results_serialise_with_their_per_worker_shares() {
    let _serial = serial();
    let r = Algo::Ticket
        .race(Fence::None, &RaceConfig::threads(2, 1000))
        .unwrap();
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    // The lab's JSON keys are checked by its own tests; these are the ones
    // only this crate explains.
    for key in ["trial", "finished", "handoffs", "mean_streak", "per_worker"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    for key in [
        "index",
        "pid",
        "done",
        "share",
        "violations",
        "handoffs",
        "elapsed_ns",
    ] {
        assert!(
            v["per_worker"][0].get(key).is_some(),
            "missing {key} in {v}"
        );
    }
    assert_eq!(v["fence"], "none");
    assert_eq!(v["kind"], "threads");
    assert!(v["per_worker"][1]["share"].is_number());
}
