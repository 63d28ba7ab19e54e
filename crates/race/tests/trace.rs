//! The race microscope: the trace accounts for every lost update exactly,
//! names what overwrote each, and finds nothing under a lock.

use race::{Config, RaceError, SyncMode, WorkerKind, run_traced};

fn traced(
    sync: SyncMode,
    kind: WorkerKind,
    workers: u32,
    iters: u64,
) -> (race::TrialResult, race::TraceReport) {
    let cfg = Config {
        sync,
        kind,
        workers,
        iters,
        hold: 0,
    };
    run_traced(&cfg, &mut |_, _| {}).unwrap_or_else(|e| panic!("{sync} {kind}: {e}"))
}

/// Without a lock, the trace's lost increments are exactly the lost
/// updates, in every run, and each named collision really lost a value: a
/// later store set the counter back to at most the value it wrote.
#[test]
fn the_trace_finds_exactly_the_lost_updates() {
    let mut saw_loss = false;
    for kind in [WorkerKind::Procs, WorkerKind::Threads] {
        for _ in 0..3 {
            let (r, t) = traced(SyncMode::None, kind, 2, 100_000);
            assert_eq!(t.recorded, 200_000);
            assert_eq!(t.final_value, r.actual);
            assert_eq!(t.lost_found, r.lost, "{kind}: trace {t:?}");
            assert_eq!(t.same_value + t.stale_overwrites, t.lost_found);
            assert_eq!(t.collisions.len() as u64, t.lost_found.min(16));
            for c in &t.collisions {
                match c.overwritten_by {
                    // A twin: another worker read the same value.
                    Some(k) if k.read == c.lost.read => {
                        assert_ne!(k.worker, c.lost.worker, "{c:?}");
                    }
                    // Or a later store undid it.
                    Some(k) => {
                        assert_ne!(k.worker, c.lost.worker, "{c:?}");
                        assert!(k.t_write >= c.lost.t_write, "{c:?}");
                        assert!(k.wrote() <= c.lost.wrote(), "{c:?}");
                    }
                    None => {}
                }
            }
            // Every lost increment that read a value another also read has
            // a twin to show.
            let twins = t
                .collisions
                .iter()
                .filter(|c| c.overwritten_by.is_some_and(|k| k.read == c.lost.read))
                .count() as u64;
            assert!(twins <= t.same_value);
            saw_loss |= r.lost > 0;
        }
    }
    assert!(saw_loss, "6 traced unsynchronised runs lost nothing");
}

/// Under a lock every increment reads what the previous one wrote: no
/// collisions, and the counter is exact.
#[test]
fn a_lock_shows_no_collisions() {
    for sync in [SyncMode::Futex, SyncMode::Atomic] {
        let (r, t) = traced(sync, WorkerKind::Procs, 2, 50_000);
        assert_eq!(r.lost, 0);
        assert_eq!(r.actual, 100_000);
        assert_eq!(t.lost_found, 0, "{sync}");
        assert!(t.collisions.is_empty());
    }
}

#[test]
fn too_many_increments_to_trace_is_a_config_error() {
    let cfg = Config {
        sync: SyncMode::None,
        kind: WorkerKind::Threads,
        workers: 2,
        iters: race::trace::MAX_TRACED,
        hold: 0,
    };
    match run_traced(&cfg, &mut |_, _| {}) {
        Err(RaceError::Config(m)) => assert!(m.contains("--iters"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}
