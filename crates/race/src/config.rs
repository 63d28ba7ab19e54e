//! A race's configuration, its validation, and what can go wrong.

use crate::coordinator::ARRIVAL_TIMEOUT;
use crate::{MAX_WORKERS, SyncMode, WorkerKind};

/// One race's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How increments are protected.
    pub sync: SyncMode,
    /// Processes or threads.
    pub kind: WorkerKind,
    /// Number of workers.
    pub workers: u32,
    /// Increments per worker.
    pub iters: u64,
    /// Extra work inside each critical section: this many rounds of
    /// [`std::hint::spin_loop`] between the increment's load and its store
    /// (for `atomic`, right after its `fetch_add`, outside any critical
    /// section, since it has none to lengthen). A round's cost depends on
    /// the machine (x86's `pause` takes roughly 10 to 140 cycles: tens of
    /// ns); 0, the default, is the bare increment. At most [`MAX_HOLD`].
    pub hold: u32,
}

/// The most [`Config::hold`] rounds a configuration may ask for.
pub const MAX_HOLD: u32 = 1_000_000;

/// What is wrong with a configuration, or what went wrong running it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaceError {
    /// A bad configuration (exit 2 territory).
    #[error("{0}")]
    Config(String),
    /// Creating or opening the region.
    #[error(transparent)]
    Shm(#[from] shm::Error),
    /// A worker could not be started.
    #[error("could not start worker {index}: {source}; use fewer workers")]
    Spawn {
        /// Its index.
        index: u32,
        /// Why.
        source: std::io::Error,
    },
    /// A worker never reached the start barrier.
    #[error("worker {index} (pid {pid}) never reached the start barrier within {}s", ARRIVAL_TIMEOUT.as_secs())]
    NeverArrived {
        /// Its index.
        index: u32,
        /// Its pid or tid.
        pid: i32,
    },
    /// A worker died or failed.
    #[error(
        "worker {index} (pid {pid}) {how}; the other workers were stopped and the run's objects removed"
    )]
    WorkerFailed {
        /// Its index.
        index: u32,
        /// Its pid or tid.
        pid: i32,
        /// What happened (exit status, signal, error).
        how: String,
    },
}

impl Config {
    /// Checks the configuration: at least one worker, at most
    /// [`MAX_WORKERS`], at least one increment, a total that fits in a u64,
    /// a hold of at most [`MAX_HOLD`] rounds, and a mode that can run with
    /// this kind of worker.
    pub fn validate(&self) -> Result<u64, RaceError> {
        let bad = |s: String| Err(RaceError::Config(s));
        if self.workers == 0 {
            return bad("0 workers cannot race; use --procs N or --threads N with N >= 1".into());
        }
        if self.workers > MAX_WORKERS {
            return bad(format!(
                "{} workers is more than the region has slots for ({MAX_WORKERS}); use fewer",
                self.workers
            ));
        }
        if self.iters == 0 {
            return bad("0 increments per worker shows nothing; use --iters M with M >= 1".into());
        }
        let Some(total) = self.iters.checked_mul(self.workers as u64) else {
            return bad(format!(
                "{} workers x {} increments overflows a 64-bit counter; use fewer --iters",
                self.workers, self.iters
            ));
        };
        if self.hold > MAX_HOLD {
            return bad(format!(
                "--hold {} spin_loop rounds per increment is more than {MAX_HOLD}; use --hold {MAX_HOLD} or fewer",
                self.hold
            ));
        }
        if self.kind == WorkerKind::Procs
            && let Some(why) = self.sync.why_not_cross_process()
        {
            return bad(format!(
                "--sync {} cannot run with --procs: {why}",
                self.sync
            ));
        }
        Ok(total)
    }
}
