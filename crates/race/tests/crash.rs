//! Killing a lock holder: robust locks recover, semaphores wedge and are
//! detected, nobody hangs, and the counter keeps every completed increment.

use race::SyncMode;
use race::crash::{Outcome, run_crash};
use std::time::Duration;

/// Tests in this binary fork children that call `sem_open`; glibc's
/// `sem_open` takes a process-wide lock (`sem_mappings_lock`) that `fork`
/// does not reset, so a fork while another test thread is inside
/// `sem_open` leaves the child deadlocked. The tests run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn locks_that_know_their_owner_recover_within_a_second() {
    let _serial = serial();
    for sync in [SyncMode::Pthread, SyncMode::Futex, SyncMode::Spin] {
        let r = run_crash(sync, 3, 20_000).unwrap_or_else(|e| panic!("{sync}: {e}"));
        assert_eq!(r.outcome, Outcome::Recovered, "{sync}: {r:?}");
        assert_eq!(r.survivors_finished, 2, "{sync}: {r:?}");
        let detect = Duration::from_nanos(r.detect_ns.expect("detected"));
        assert!(detect < Duration::from_secs(1), "{sync}: took {detect:?}");
        // The in-flight increment is lost; every completed one is there.
        assert!(r.consistent(), "{sync}: {r:?}");
        assert_eq!(r.actual, 2 * 20_000 + 10_000, "{sync}: {r:?}");
        if sync != SyncMode::Pthread {
            // Futex and spin locks keep the owner's TID: they name it.
            assert_eq!(r.reported_holder, Some(r.victim_pid), "{sync}: {r:?}");
        }
    }
}

#[test]
fn semaphores_wedge_and_the_dead_holder_is_named() {
    let _serial = serial();
    for sync in [SyncMode::Sem, SyncMode::SemUnnamed] {
        let r = run_crash(sync, 3, 20_000).unwrap_or_else(|e| panic!("{sync}: {e}"));
        assert_eq!(r.outcome, Outcome::WedgedDetected, "{sync}: {r:?}");
        assert_eq!(r.reported_holder, Some(r.victim_pid), "{sync}: {r:?}");
        assert!(r.detect_ns.is_some());
        assert!(r.consistent(), "{sync}: {r:?}");
        assert!(r.survivors_finished < 2);
    }
}

#[test]
fn crash_needs_a_lock_and_two_workers() {
    let _serial = serial();
    assert!(run_crash(SyncMode::None, 3, 100).is_err());
    assert!(run_crash(SyncMode::Futex, 1, 100).is_err());
}
