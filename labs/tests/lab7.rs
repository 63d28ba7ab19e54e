//! The bounded buffer: every item exactly once with sem and futex, for
//! several producer/consumer counts; broken without synchronisation.

use labs::lab7::{BufferSync, Config, run};
use std::process::Command;

fn cfg(sync: BufferSync, producers: u32, consumers: u32, items: u64, slots: u32) -> Config {
    Config {
        producers,
        consumers,
        items,
        slots,
        sync,
    }
}

#[test]
fn sem_and_futex_deliver_every_item_exactly_once() {
    for sync in [BufferSync::Sem, BufferSync::Futex] {
        for (p, c, slots) in [(1, 1, 1), (2, 2, 4), (3, 1, 16), (1, 3, 2)] {
            let r = run(&cfg(sync, p, c, 5_000, slots)).unwrap();
            assert!(r.correct(), "{sync:?} {p}x{c} slots {slots}: {r:?}");
            assert_eq!(r.exactly_once, p as u64 * 5_000);
            assert_eq!((r.lost, r.duplicated, r.torn), (0, 0, 0));
        }
    }
}

#[test]
fn no_synchronisation_is_caught_breaking() {
    let broken = (0..3)
        .map(|_| run(&cfg(BufferSync::None, 2, 2, 5_000, 4)).unwrap())
        .filter(|r| !r.correct())
        .count();
    assert!(broken > 0, "--sync none looked correct in 3 runs");
}

#[test]
fn bad_input_exits_2() {
    for args in [
        &["--slots", "0"][..],
        &["--producers", "0"],
        &["--consumers", "0"],
        &["--items", "0"],
        &["--items", "-1"],
        &["--items", "1048576", "--producers", "2"],
        &["--producers", "40", "--consumers", "40"],
        &["--sync", "mutex"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lab7-buffer"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn check_flag_passes_a_correct_run() {
    let ok = Command::new(env!("CARGO_BIN_EXE_lab7-buffer"))
        .args(["--sync", "futex", "--items", "2000", "--check"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("exactly once and intact"));
}
