//! The latency ladder's results: what the `ladder` bench
//! (`benches/ladder.rs`) writes to [`results_path`]
//! (`target/criterion/ladder/results.json`) and `bench-report` reads.
//!
//! The bench runs `ipc::ladder` (the round trip between two processes for
//! every way one can wake the other) twice, pinned to two CPUs and
//! unpinned, and keeps every row's distribution as percentiles, with its
//! p50 divided by the pipe's and by the cache-line floor's *of the same
//! run* (both always run, whatever the filter selects).

use crate::quick;
use anyhow::Result;
use ipc::ladder::{Ladder, Mechanism};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The directory under criterion's output directory that holds the results.
pub const DIR: &str = "ladder";

/// The command that runs the ladder and writes [`results_path`].
pub const COMMAND: &str = concat!("cargo bench -p ", env!("CARGO_PKG_NAME"), " --bench ladder");

/// Timed round trips per row in the full run.
pub const ROUND_TRIPS: u64 = 100_000;
/// Timed round trips per row in the quick run ([`crate::QUICK_ENV`]).
pub const QUICK_ROUND_TRIPS: u64 = 20_000;

/// The rung every row's p50 is divided by in [`Row::p50_vs_pipe`].
pub const PIPE: Mechanism = Mechanism::Pipe;
/// The physical floor every row's p50 is divided by in
/// [`Row::p50_vs_floor`].
pub const FLOOR: Mechanism = Mechanism::CacheLine;

/// The results file, under criterion's output directory.
pub fn results_path(criterion_dir: &Path) -> PathBuf {
    criterion_dir.join(DIR).join("results.json")
}

/// The name of one row, as the bench's filter and log see it:
/// `ladder/<rung>/<pinned|unpinned>`.
pub fn id(m: Mechanism, pinned: bool) -> String {
    format!(
        "{DIR}/{}/{}",
        m.name(),
        if pinned { "pinned" } else { "unpinned" }
    )
}

/// Timed round trips per row for this run, full or quick.
pub fn round_trips_for_run() -> u64 {
    if quick() {
        QUICK_ROUND_TRIPS
    } else {
        ROUND_TRIPS
    }
}

/// Where the two processes of a pinned run ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinning {
    /// The timing (parent) process's CPU.
    pub parent_cpu: usize,
    /// The answering (child) process's CPU.
    pub child_cpu: usize,
}

/// One rung's round trips in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The rung (`ipc::ladder::Mechanism::name`).
    pub rung: String,
    /// See [`id`].
    pub id: String,
    /// Timed round trips.
    pub round_trips: u64,
    /// Percentiles (nearest rank) of the round trip, ns.
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    #[serde(rename = "p99.9_ns")]
    pub p99_9_ns: u64,
    /// The slowest round trip, ns.
    pub max_ns: u64,
    /// The mean round trip, ns.
    pub mean_ns: f64,
    /// p50 ÷ the pipe's p50 in the same run (`None`: not measured).
    pub p50_vs_pipe: Option<f64>,
    /// p50 ÷ the cache-line floor's p50 in the same run.
    pub p50_vs_floor: Option<f64>,
}

/// One run of the ladder, pinned or not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Where the two sides ran; `None` if unpinned (or pinning was asked
    /// for with fewer than two CPUs allowed).
    pub pinned: Option<Pinning>,
    /// The CPUs the bench was allowed to use.
    pub allowed_cpus: Vec<usize>,
    /// One row per selected rung, in the ladder's order.
    pub rows: Vec<Row>,
}

impl Run {
    /// The rows of `l` whose rung is in `selected` (`l` may hold more: the
    /// pipe and the floor, run for the ratios); `pinned` is whether pinning
    /// was asked for.
    pub fn from_ladder(l: &Ladder, pinned: bool, selected: &[Mechanism]) -> Run {
        let rows = l
            .rows
            .iter()
            .filter(|r| selected.contains(&r.mechanism))
            .map(|r| Row {
                rung: r.mechanism.name().to_string(),
                id: id(r.mechanism, pinned),
                round_trips: r.samples.len() as u64,
                p50_ns: r.percentile(50.0),
                p90_ns: r.percentile(90.0),
                p99_ns: r.percentile(99.0),
                p99_9_ns: r.percentile(99.9),
                max_ns: r.max(),
                mean_ns: r.mean(),
                p50_vs_pipe: l.ratio(r.mechanism, PIPE, 50.0),
                p50_vs_floor: l.ratio(r.mechanism, FLOOR, 50.0),
            })
            .collect();
        Run {
            pinned: l.pinned.map(|p| Pinning {
                parent_cpu: p.parent,
                child_cpu: p.child,
            }),
            allowed_cpus: l.allowed_cpus.clone(),
            rows,
        }
    }

    /// The row of `rung`, if run.
    pub fn row(&self, rung: Mechanism) -> Option<&Row> {
        self.rows.iter().find(|r| r.rung == rung.name())
    }

    /// Where the run placed its two processes, for a heading or a legend;
    /// `pin_asked`: whether it was the run asked to pin.
    pub fn placement(&self, pin_asked: bool) -> String {
        let allowed: Vec<String> = self.allowed_cpus.iter().map(|c| c.to_string()).collect();
        let allowed = allowed.join(", ");
        match (self.pinned, pin_asked) {
            (Some(p), _) => format!(
                "pinned: timing process on CPU {}, answering process on CPU {}",
                p.parent_cpu, p.child_cpu
            ),
            (None, true) => {
                format!("not pinned: pinning needs two CPUs, only CPU {allowed} allowed")
            }
            (None, false) => format!("unpinned (CPUs {allowed} allowed)"),
        }
    }
}

/// What the ladder bench writes and `bench-report` reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Whether this was a quick run ([`crate::QUICK_ENV`]).
    pub quick: bool,
    /// Timed round trips per row.
    pub round_trips_per_row: u64,
    /// The run with the two sides pinned to two CPUs (`None`: the filter
    /// selected none of its rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_run: Option<Run>,
    /// The run left to the scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpinned_run: Option<Run>,
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

    /// The runs there are, pinned first, each with whether pinning was
    /// asked for.
    pub fn runs(&self) -> impl Iterator<Item = (bool, &Run)> {
        [(true, &self.pinned_run), (false, &self.unpinned_run)]
            .into_iter()
            .filter_map(|(pinned, run)| Some((pinned, run.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::ladder::{self, Pinning as CpuPair};
    use std::time::Duration;

    fn ladder_row(m: Mechanism, samples: Vec<u64>) -> ladder::Row {
        ladder::Row {
            mechanism: m,
            samples,
            elapsed: Duration::ZERO,
        }
    }

    /// A pinned ladder of three rungs, 1000 samples each: `base + i` ns.
    fn small_ladder() -> Ladder {
        let row = |m, base: u64| ladder_row(m, (0..1000).map(|i| base + i).collect());
        Ladder {
            rows: vec![
                row(Mechanism::CacheLine, 100),
                row(Mechanism::Futex, 3000),
                row(Mechanism::Pipe, 5000),
            ],
            allowed_cpus: vec![0, 1],
            pinned: Some(CpuPair {
                parent: 0,
                child: 1,
            }),
        }
    }

    #[test]
    fn from_ladder_keeps_the_selected_rows_and_ratios_of_the_run() {
        let run = Run::from_ladder(&small_ladder(), true, &[Mechanism::Futex]);
        assert_eq!(
            run.pinned,
            Some(Pinning {
                parent_cpu: 0,
                child_cpu: 1
            })
        );
        assert_eq!(run.allowed_cpus, [0, 1]);
        let [r] = &run.rows[..] else {
            panic!("one row expected: {:?}", run.rows);
        };
        assert_eq!(r.rung, "futex");
        assert_eq!(r.id, "ladder/futex/pinned");
        assert_eq!(r.round_trips, 1000);
        // Nearest rank: p50 of 3000..=3999 is the 500th, 3499.
        assert_eq!(
            (r.p50_ns, r.p90_ns, r.p99_ns, r.p99_9_ns, r.max_ns),
            (3499, 3899, 3989, 3998, 3999)
        );
        assert_eq!(r.mean_ns, 3499.5);
        assert_eq!(r.p50_vs_pipe, Some(3499.0 / 5499.0));
        assert_eq!(r.p50_vs_floor, Some(3499.0 / 599.0));
        assert!(run.row(Mechanism::Pipe).is_none());
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("shmlab-ladder-test-{}-{name}", std::process::id()))
            .join("results.json")
    }

    #[test]
    fn save_then_load_gives_the_same_results() {
        let l = small_ladder();
        let all = [Mechanism::CacheLine, Mechanism::Futex, Mechanism::Pipe];
        let mut unpinned = Run::from_ladder(&l, false, &all);
        unpinned.pinned = None;
        let results = Results {
            quick: true,
            round_trips_per_row: 1000,
            pinned_run: Some(Run::from_ladder(&l, true, &all)),
            unpinned_run: Some(unpinned),
        };
        let path = temp_path("roundtrip");
        results.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back = Results::load(&path).unwrap();
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        assert!(text.contains("\"p99.9_ns\": 3998"), "{text}");
        assert_eq!(back, Some(results.clone()));
        let runs: Vec<String> = results.runs().map(|(p, r)| r.placement(p)).collect();
        assert_eq!(
            runs,
            [
                "pinned: timing process on CPU 0, answering process on CPU 1",
                "unpinned (CPUs 0, 1 allowed)"
            ]
        );
    }

    #[test]
    fn a_missing_file_is_none_and_a_bad_one_an_error() {
        let path = temp_path("missing");
        assert_eq!(Results::load(&path).unwrap(), None);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"quick\": 1}").unwrap();
        let bad = Results::load(&path);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        assert!(bad.is_err());
    }
}
