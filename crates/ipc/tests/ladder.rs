//! The latency ladder's promises: every rung carries every sequence number
//! there and back, checked, and leaves nothing behind.

use ipc::ladder::{self, Mechanism, Options};

/// A child that calls `sem_open` must not be forked while another test
/// thread is inside `sem_open` (glibc's lock is not reset by `fork`).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ours() -> Vec<String> {
    let tag = format!("-{}-", std::process::id());
    let mut left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&tag))
        .collect();
    left.extend(
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("ladder") && n.contains(&tag)),
    );
    left
}

fn small(pin: bool) -> Options {
    Options {
        round_trips: 500,
        warmup: 20,
        pin,
    }
}

#[test]
fn every_rung_round_trips_checked_and_cleans_up() {
    let _s = serial();
    for m in Mechanism::ALL {
        for pin in [true, false] {
            let row = ladder::run_mechanism(m, &small(pin)).unwrap_or_else(|e| panic!("{m}: {e}"));
            assert_eq!(row.mechanism, m);
            assert_eq!(row.samples.len(), 500, "{m}");
            assert!(row.samples.windows(2).all(|w| w[0] <= w[1]), "sorted");
            assert!(row.percentile(50.0) > 0 && row.max() >= row.percentile(99.9));
            assert_eq!(ours(), Vec::<String>::new(), "{m} left objects behind");
        }
    }
}

#[test]
fn a_ladder_restores_affinity_and_reports_pinning() {
    let _s = serial();
    let before = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let l = ladder::run_ladder(&[Mechanism::Pipe, Mechanism::Futex], &small(true)).unwrap();
    let after = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    assert_eq!(before, after, "the parent's affinity is restored");
    assert_eq!(l.rows.len(), 2);
    assert_eq!(l.pinned.is_some(), l.allowed_cpus.len() >= 2);
    let r = l.ratio(Mechanism::Pipe, Mechanism::Pipe, 50.0).unwrap();
    assert!((r - 1.0).abs() < 1e-12);
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<u64> = (1..=1000).collect();
    assert_eq!(ladder::percentile(&v, 50.0), 500);
    assert_eq!(ladder::percentile(&v, 99.9), 999);
    assert_eq!(ladder::percentile(&v, 100.0), 1000);
    assert_eq!(ladder::percentile(&v, 0.0), 1);
    assert_eq!(ladder::percentile(&[], 50.0), 0);
}

#[test]
fn names_round_trip() {
    for m in Mechanism::ALL {
        assert_eq!(m.name().parse::<Mechanism>().unwrap(), m);
    }
    assert!("carrier-pigeon".parse::<Mechanism>().is_err());
}

#[test]
fn too_many_round_trips_for_the_sequence_numbers_are_refused() {
    let opts = Options {
        round_trips: 1 << 29,
        warmup: 0,
        pin: false,
    };
    let e = ladder::run_mechanism(Mechanism::Pipe, &opts).unwrap_err();
    assert!(matches!(e, ipc::Error::Invalid(_)), "{e}");
}
