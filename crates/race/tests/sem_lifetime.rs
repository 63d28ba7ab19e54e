//! The named semaphore and the region exist during a `--sync sem` run and
//! are gone afterwards. Its own test binary, so no other test of this
//! process creates objects with the same pid meanwhile.

use race::{Config, SyncMode, WorkerKind, run_trial};

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

#[test]
fn the_named_semaphore_lives_exactly_as_long_as_the_run() {
    let mine = format!("-{}-", std::process::id());
    let sems = || -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("sem.") && n.contains(&mine))
            .collect()
    };
    let regions = || -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("shmlab-race-sem-{}-", std::process::id())))
            .collect()
    };
    let seen = std::thread::scope(|s| {
        let run = s.spawn(|| trial(SyncMode::Sem, WorkerKind::Procs, 2, 3_000_000));
        let mut seen = (false, false);
        while !run.is_finished() {
            seen.0 |= !sems().is_empty();
            seen.1 |= !regions().is_empty();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let r = run.join().unwrap();
        assert_eq!(r.lost, 0);
        seen
    });
    assert!(seen.0, "no sem.* file appeared in /dev/shm during the run");
    assert!(seen.1, "the region never appeared in /dev/shm");
    assert!(sems().is_empty(), "semaphore left behind: {:?}", sems());
    assert!(regions().is_empty(), "region left behind: {:?}", regions());
}
