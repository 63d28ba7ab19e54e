//! The race's promises: every lock mode ends at exactly the expected count,
//! with processes and with threads; without a lock, updates are lost.

use race::{Config, RaceError, SyncMode, WorkerKind, run_trial};

/// Tests in this binary fork children that call `sem_open`; glibc's
/// `sem_open` takes a process-wide lock (`sem_mappings_lock`) that `fork`
/// does not reset, so a fork while another test thread is inside
/// `sem_open` leaves the child deadlocked. The tests run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn trial(sync: SyncMode, kind: WorkerKind, workers: u32, iters: u64) -> race::TrialResult {
    let cfg = Config {
        sync,
        kind,
        workers,
        iters,
        hold: 0,
    };
    run_trial(&cfg, 1, &mut |_, _| {}).unwrap_or_else(|e| panic!("{sync} {kind} x{workers}: {e}"))
}

const LOCKED_CROSS: [SyncMode; 6] = [
    SyncMode::Atomic,
    SyncMode::Spin,
    SyncMode::Futex,
    SyncMode::Pthread,
    SyncMode::Sem,
    SyncMode::SemUnnamed,
];

fn exact(sync: SyncMode, kind: WorkerKind, workers: u32) {
    let iters = 20_000;
    for _ in 0..2 {
        let r = trial(sync, kind, workers, iters);
        assert_eq!(r.expected, workers as u64 * iters);
        assert_eq!(
            r.actual, r.expected,
            "{sync} {kind} x{workers} lost updates"
        );
        assert_eq!(r.lost, 0);
        assert_eq!(r.per_worker.len(), workers as usize);
        let share: f64 = r.per_worker.iter().map(|w| w.share).sum();
        assert!((share - 1.0).abs() < 1e-9, "shares sum to {share}");
        assert!(r.per_worker.iter().all(|w| w.pid > 0 && w.elapsed_ns > 0));
    }
}

#[test]
fn every_lock_is_exact_with_2_and_4_processes() {
    let _serial = serial();
    for sync in LOCKED_CROSS {
        exact(sync, WorkerKind::Procs, 2);
        exact(sync, WorkerKind::Procs, 4);
    }
}

#[test]
fn every_lock_is_exact_with_2_and_4_threads() {
    let _serial = serial();
    for sync in LOCKED_CROSS
        .into_iter()
        .chain([SyncMode::Std, SyncMode::ParkingLot])
    {
        exact(sync, WorkerKind::Threads, 2);
        exact(sync, WorkerKind::Threads, 4);
    }
}

#[test]
fn workers_are_separate_processes() {
    let _serial = serial();
    let r = trial(SyncMode::Futex, WorkerKind::Procs, 2, 1000);
    let me = std::process::id() as i32;
    assert!(r.per_worker.iter().all(|w| w.pid != me));
    assert_ne!(r.per_worker[0].pid, r.per_worker[1].pid);
}

#[test]
fn no_lock_loses_updates() {
    let _serial = serial();
    // 2 processes x 1,000,000 increments on a multi-core machine lose
    // updates in nearly every trial; this fails only if none of 5 does.
    let lost: Vec<u64> = (0..5)
        .map(|_| trial(SyncMode::None, WorkerKind::Procs, 2, 1_000_000).lost)
        .collect();
    assert!(
        lost.iter().any(|&l| l > 0),
        "no trial lost an update: {lost:?}"
    );
    for &l in &lost {
        assert!(l < 2_000_000);
    }
}

#[test]
fn thread_only_modes_refuse_processes() {
    let _serial = serial();
    for sync in [SyncMode::Std, SyncMode::ParkingLot] {
        let cfg = Config {
            sync,
            kind: WorkerKind::Procs,
            workers: 2,
            iters: 10,
            hold: 0,
        };
        let err = run_trial(&cfg, 1, &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, RaceError::Config(_)));
        assert!(err.to_string().contains("--threads"), "{err}");
    }
}

#[test]
fn bad_configurations_are_refused() {
    let _serial = serial();
    let base = Config {
        sync: SyncMode::Futex,
        kind: WorkerKind::Threads,
        workers: 2,
        iters: 10,
        hold: 0,
    };
    for cfg in [
        Config {
            workers: 0,
            ..base.clone()
        },
        Config {
            iters: 0,
            ..base.clone()
        },
        Config {
            workers: race::MAX_WORKERS + 1,
            ..base.clone()
        },
        Config {
            workers: 4,
            iters: u64::MAX / 2,
            ..base.clone()
        },
    ] {
        let err = cfg.validate().unwrap_err();
        assert!(matches!(err, RaceError::Config(_)), "{cfg:?}");
    }
    assert_eq!(base.validate().unwrap(), 20);
}

/// A held trial: `hold` spin_loop rounds inside each critical section.
fn held(
    sync: SyncMode,
    kind: WorkerKind,
    workers: u32,
    iters: u64,
    hold: u32,
) -> race::TrialResult {
    let cfg = Config {
        sync,
        kind,
        workers,
        iters,
        hold,
    };
    run_trial(&cfg, 1, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{sync} {kind} x{workers} --hold {hold}: {e}"))
}

#[test]
fn every_lock_is_exact_with_a_hold_across_processes_and_threads() {
    let _serial = serial();
    // Two workers: spin-pure stays exact and quick with no more workers
    // than the CPUs of a small machine.
    let (workers, iters, hold) = (2, 2_000, 50);
    for sync in SyncMode::ALL.into_iter().filter(|m| m.synchronised()) {
        for kind in [WorkerKind::Procs, WorkerKind::Threads] {
            if kind == WorkerKind::Procs && !sync.cross_process() {
                continue;
            }
            let r = held(sync, kind, workers, iters, hold);
            assert_eq!(r.hold, hold);
            assert_eq!(r.expected, u64::from(workers) * iters);
            assert_eq!(
                r.actual, r.expected,
                "{sync} {kind} --hold {hold} lost updates"
            );
            assert_eq!(r.lost, 0);
        }
    }
}

#[test]
fn none_with_a_hold_loses_updates() {
    let _serial = serial();
    // The hold widens the window between the load and the store; on a busy
    // machine the workers may still barely overlap once, so a few tries.
    for kind in [WorkerKind::Procs, WorkerKind::Threads] {
        let lost = (0..5)
            .map(|_| held(SyncMode::None, kind, 2, 20_000, 50))
            .find(|r| r.lost > 0);
        let r = lost.unwrap_or_else(|| panic!("none {kind} --hold 50 lost nothing in 5 trials"));
        assert_eq!(r.actual + r.lost, r.expected);
    }
}

#[test]
fn a_hold_too_long_is_a_config_error() {
    let _serial = serial();
    let cfg = Config {
        sync: SyncMode::Futex,
        kind: WorkerKind::Threads,
        workers: 2,
        iters: 10,
        hold: race::MAX_HOLD + 1,
    };
    let err = run_trial(&cfg, 1, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, RaceError::Config(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("--hold") && !msg.contains('\n'), "{msg}");
    let ok = Config {
        hold: race::MAX_HOLD,
        ..cfg
    };
    assert_eq!(ok.validate().unwrap(), 20);
}
