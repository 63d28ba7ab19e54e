//! What a trial reports: counts, timing, per-worker shares, and the
//! statistics over workers (Jain's index) and over trials (lost updates).

use crate::shared::{RaceShared, RegionLock, WorkerSlot};
use crate::{Config, SyncMode, WorkerKind};
use shm::Region;
use std::sync::atomic::Ordering;

/// One worker's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WorkerResult {
    /// Index, from 0.
    pub index: u32,
    /// pid (processes) or tid (threads).
    pub pid: i32,
    /// Time from the start signal to its last increment.
    pub elapsed_ns: u64,
    /// Its fraction of all increments done by the moment the first worker
    /// finished (1/N is perfectly fair).
    pub share: f64,
    /// Locks it acquired from a dead owner.
    pub owner_deaths: u64,
}

/// One trial's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrialResult {
    /// The mode.
    pub sync: SyncMode,
    /// Processes or threads.
    pub kind: WorkerKind,
    /// Number of workers.
    pub workers: u32,
    /// Increments per worker.
    pub iters: u64,
    /// `spin_loop` rounds inside each critical section ([`Config::hold`]).
    pub hold: u32,
    /// Trial number, from 1.
    pub trial: u32,
    /// workers × iters.
    pub expected: u64,
    /// The counter at the end.
    pub actual: u64,
    /// expected − actual.
    pub lost: u64,
    /// lost / expected, in percent.
    pub lost_pct: f64,
    /// From the start signal to the last worker's last increment.
    pub elapsed_ns: u64,
    /// expected / elapsed.
    pub ops_per_sec: f64,
    /// Jain's fairness index over the workers' shares (1.0 = fair).
    pub fairness: f64,
    /// Per worker.
    pub per_worker: Vec<WorkerResult>,
}

pub(crate) fn summarise<K: RegionLock>(
    cfg: &Config,
    trial: u32,
    expected: u64,
    region: &Region<RaceShared<K>>,
) -> TrialResult {
    let go = region.control.0.gate.opened_ns();
    let slots: Vec<&WorkerSlot> = region.workers[..cfg.workers as usize]
        .iter()
        .map(|w| &w.0)
        .collect();
    let at_first: Vec<u64> = slots
        .iter()
        .map(|s| s.done_at_first_finish.load(Ordering::Relaxed))
        .collect();
    let sum_first: u64 = at_first.iter().sum();
    let per_worker: Vec<WorkerResult> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| WorkerResult {
            index: i as u32,
            pid: s.id.load(Ordering::Relaxed),
            elapsed_ns: s.finish_ns.load(Ordering::Relaxed).saturating_sub(go),
            share: if sum_first == 0 {
                1.0 / cfg.workers as f64
            } else {
                at_first[i] as f64 / sum_first as f64
            },
            owner_deaths: s.owner_deaths.load(Ordering::Relaxed),
        })
        .collect();
    let elapsed_ns = per_worker
        .iter()
        .map(|w| w.elapsed_ns)
        .max()
        .unwrap_or(0)
        .max(1);
    let actual = region.counter.0.load(Ordering::Acquire);
    let lost = expected.saturating_sub(actual);
    TrialResult {
        sync: cfg.sync,
        kind: cfg.kind,
        workers: cfg.workers,
        iters: cfg.iters,
        hold: cfg.hold,
        trial,
        expected,
        actual,
        lost,
        lost_pct: lost as f64 * 100.0 / expected as f64,
        elapsed_ns,
        ops_per_sec: expected as f64 * 1e9 / elapsed_ns as f64,
        fairness: jain(per_worker.iter().map(|w| w.share)),
        per_worker,
    }
}

/// Jain's fairness index: (Σx)² / (n·Σx²); 1 when all equal, 1/n when one
/// takes everything.
pub fn jain(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = xs.clone().count() as f64;
    let s: f64 = xs.clone().sum();
    let s2: f64 = xs.map(|x| x * x).sum();
    if s2 == 0.0 { 1.0 } else { s * s / (n * s2) }
}

/// The distribution of lost updates over several trials.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LostSummary {
    /// Trials run.
    pub trials: usize,
    /// Fewest lost.
    pub min: u64,
    /// Median lost.
    pub median: u64,
    /// Most lost.
    pub max: u64,
    /// Trials that lost at least one update.
    pub trials_with_loss: usize,
}

/// Summarises lost updates across trials.
pub fn summarise_lost(results: &[TrialResult]) -> Option<LostSummary> {
    let mut lost: Vec<u64> = results.iter().map(|r| r.lost).collect();
    lost.sort_unstable();
    Some(LostSummary {
        trials: lost.len(),
        min: *lost.first()?,
        median: lost[lost.len() / 2],
        max: *lost.last()?,
        trials_with_loss: lost.iter().filter(|&&l| l > 0).count(),
    })
}
