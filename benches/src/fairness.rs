//! The fairness experiment: how evenly each lock shares itself between
//! contending processes.
//!
//! Criterion records times, not per-worker shares, so the `fairness` bench
//! (`benches/fairness.rs`, run by `cargo bench`) runs race trials itself:
//! for each lock and each of [`PROCS`] processes it calibrates the
//! increments per process so that one trial lasts about
//! [`Settings::trial_ms`] (many scheduler time slices), runs
//! [`Settings::trials`] trials, and summarises their Jain indices and
//! per-process shares in a [`Row`]. The rows are written as JSON to
//! [`results_path`] (`target/criterion/fairness/results.json`), which
//! `bench-report` reads.
//!
//! A share is a process's fraction of all increments done at the moment the
//! first process finished (1/N is fair).

use crate::{Case, quick};
use anyhow::Result;
use race::WorkerKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Contending processes per lock.
pub const PROCS: [u32; 2] = [2, 4];

/// The directory under criterion's output directory that holds the results.
pub const DIR: &str = "fairness";

/// The command that runs the experiment and writes [`results_path`].
pub const COMMAND: &str = concat!(
    "cargo bench -p ",
    env!("CARGO_PKG_NAME"),
    " --bench fairness"
);

/// The results file, under criterion's output directory.
pub fn results_path(criterion_dir: &Path) -> PathBuf {
    criterion_dir.join(DIR).join("results.json")
}

/// The name of one row, as the bench's filter and log see it:
/// `fairness/<lock>/<procs>`.
pub fn id(lock: Case, procs: u32) -> String {
    format!("{DIR}/{}/{procs}", lock.name())
}

/// How many trials per row, and how long each should last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Race trials per lock and process count.
    pub trials: u32,
    /// The aimed-for length of one trial, in ms.
    pub trial_ms: u64,
}

impl Settings {
    /// The full run: 7 trials of about 400 ms per row (about a minute in
    /// all on 2 cores).
    pub const FULL: Settings = Settings {
        trials: 7,
        trial_ms: 400,
    };
    /// The quick run ([`crate::QUICK_ENV`]): 2 trials of about 50 ms per
    /// row, a smoke check whose shares mean little.
    pub const QUICK: Settings = Settings {
        trials: 2,
        trial_ms: 50,
    };

    /// The settings for this run, full or quick.
    pub fn for_run() -> Settings {
        if quick() {
            Settings::QUICK
        } else {
            Settings::FULL
        }
    }

    fn trial_time(self) -> Duration {
        Duration::from_millis(self.trial_ms)
    }
}

/// Fairness of one lock with N contending processes, over several trials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The lock's benchmark name.
    pub lock: String,
    /// Contending processes.
    pub procs: u32,
    /// Trials run.
    pub trials: usize,
    /// Increments per process in each trial.
    pub iters: u64,
    /// Median of the trials' Jain indices.
    pub jain_median: f64,
    /// Lowest Jain index of any trial.
    pub jain_min: f64,
    /// Smallest share any worker got in any trial.
    pub min_share: f64,
    /// Largest share any worker got in any trial.
    pub max_share: f64,
    /// The smallest share divided by the mean share (1/N): 1 is fair.
    pub min_over_mean: f64,
}

/// What the fairness bench writes and `bench-report` reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The settings every row was measured with.
    pub settings: Settings,
    /// Whether this was a quick run ([`crate::QUICK_ENV`]).
    pub quick: bool,
    /// One row per lock and process count, in table order.
    pub rows: Vec<Row>,
}

impl Results {
    /// Reads the results file; `Ok(None)` if there is none.
    pub fn load(path: &Path) -> Result<Option<Results>> {
        crate::load_json(path)
    }

    /// Writes the results file (creating its directory), replacing any
    /// earlier one in one rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::save_json(self, path)
    }

    /// These results with `rows` measured anew: rows of earlier results
    /// measured with the same settings are kept unless measured again (as
    /// criterion keeps the benchmarks a filter skipped); earlier results
    /// with other settings are dropped. Rows end in table order.
    pub fn update(earlier: Option<Results>, settings: Settings, rows: Vec<Row>) -> Results {
        let quick = quick();
        let mut all: Vec<Row> = earlier
            .filter(|e| e.settings == settings && e.quick == quick)
            .map(|e| e.rows)
            .unwrap_or_default()
            .into_iter()
            .filter(|old| {
                !rows
                    .iter()
                    .any(|new| new.lock == old.lock && new.procs == old.procs)
            })
            .collect();
        all.extend(rows);
        all.sort_by_key(|r| {
            let lock = Case::locks().position(|l| l.name() == r.lock);
            (lock.unwrap_or(usize::MAX), r.procs)
        });
        Results {
            settings,
            quick,
            rows: all,
        }
    }

    /// The row for `lock` with `procs` processes, if measured.
    pub fn find(&self, lock: &str, procs: u32) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.lock == lock && r.procs == procs)
    }
}

/// Increments per process the calibration starts from.
const CALIBRATION_START: u64 = 100_000;
/// The most increments per process calibration goes to.
const CALIBRATION_MAX: u64 = 100_000_000;
/// Calibration trials at most.
const CALIBRATION_ROUNDS: usize = 4;
/// The most calibration scales the increments by in one round.
const CALIBRATION_MAX_SCALE: f64 = 100.0;

/// Increments per worker that make one trial of `lock` with `procs`
/// processes last about `target`: a share means little if the first worker
/// finishes inside one scheduler time slice, before the others ran at all.
/// A trial of at least half of `target` is long enough.
pub fn calibrate(lock: Case, procs: u32, target: Duration) -> Result<u64> {
    let mut iters = CALIBRATION_START;
    for _ in 0..CALIBRATION_ROUNDS {
        let r = lock.contend(WorkerKind::Procs, procs, iters)?;
        let took = Duration::from_nanos(r.elapsed_ns);
        if took >= target / 2 {
            break;
        }
        let scale =
            (target.as_secs_f64() / took.as_secs_f64().max(1e-6)).min(CALIBRATION_MAX_SCALE);
        iters = ((iters as f64 * scale) as u64).clamp(CALIBRATION_START, CALIBRATION_MAX);
    }
    Ok(iters)
}

/// Measures one row: calibrates, then runs `settings.trials` trials of
/// `lock` with `procs` processes.
pub fn measure(lock: Case, procs: u32, settings: Settings) -> Result<Row> {
    let iters = calibrate(lock, procs, settings.trial_time())?;
    let mut jains = Vec::new();
    let mut shares = Vec::new();
    for _ in 0..settings.trials.max(1) {
        let r = lock.contend(WorkerKind::Procs, procs, iters)?;
        jains.push(r.fairness);
        shares.extend(r.per_worker.iter().map(|w| w.share));
    }
    Ok(summarise(lock, procs, iters, jains, &shares))
}

/// Runs one short trial of `lock` with `procs` processes (`cargo test
/// --benches`): checks that the experiment works, measures nothing.
pub fn smoke(lock: Case, procs: u32) -> Result<Row> {
    const SMOKE_ITERS: u64 = 10_000;
    let r = lock.contend(WorkerKind::Procs, procs, SMOKE_ITERS)?;
    let shares: Vec<f64> = r.per_worker.iter().map(|w| w.share).collect();
    Ok(summarise(
        lock,
        procs,
        SMOKE_ITERS,
        vec![r.fairness],
        &shares,
    ))
}

fn summarise(lock: Case, procs: u32, iters: u64, jains: Vec<f64>, shares: &[f64]) -> Row {
    let min_share = shares.iter().copied().fold(f64::INFINITY, f64::min);
    Row {
        lock: lock.name().to_string(),
        procs,
        trials: jains.len(),
        iters,
        jain_min: jains.iter().copied().fold(f64::INFINITY, f64::min),
        jain_median: median(jains),
        min_share,
        max_share: shares.iter().copied().fold(0.0, f64::max),
        min_over_mean: min_share * f64::from(procs),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    fn row(lock: &str, procs: u32, iters: u64) -> Row {
        Row {
            lock: lock.into(),
            procs,
            trials: 1,
            iters,
            jain_median: 1.0,
            jain_min: 1.0,
            min_share: 0.5,
            max_share: 0.5,
            min_over_mean: 1.0,
        }
    }

    #[test]
    fn update_keeps_other_rows_and_table_order() {
        let s = Settings::for_run();
        let first = Results::update(None, s, vec![row("sem", 2, 1), row("futex", 4, 1)]);
        let next = Results::update(Some(first), s, vec![row("futex", 4, 2), row("futex", 2, 2)]);
        let got: Vec<_> = next
            .rows
            .iter()
            .map(|r| (r.lock.as_str(), r.procs, r.iters))
            .collect();
        assert_eq!(got, [("futex", 2, 2), ("futex", 4, 2), ("sem", 2, 1)]);
        let other = Settings {
            trials: s.trials + 1,
            ..s
        };
        let fresh = Results::update(Some(next), other, vec![row("spin", 2, 3)]);
        assert_eq!(fresh.rows, [row("spin", 2, 3)]);
    }
}
