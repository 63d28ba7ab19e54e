//! # The racing-counter workload
//!
//! One experiment for every sync mode. A coordinator creates a region
//! ([`shared::RaceShared`]) holding the lock's state, a start barrier and
//! the counter (each on its own cache line); starts N workers (separate
//! processes that `fork` and then open the region **by name**, or threads);
//! releases them together; each does M increments under the chosen
//! [`SyncMode`]; the coordinator compares the expected count with the
//! actual one.
//!
//! Without a lock the increment is C's `counter++` as the hardware runs it:
//! a load, an add, a store (relaxed atomics in Rust: the race is real, the
//! program has no undefined behaviour). Two workers that load the same value
//! both store value + 1, and one update is lost.
//!
//! [`Config::hold`] lengthens the critical section: that many rounds of
//! `spin_loop` between the load and the store (inside the lock, for a
//! lock; a wider race window, for `none`), so that a holder is likely to
//! be preempted while it holds.
//!
//! If a worker dies or never arrives, the coordinator says which, stops the
//! others within seconds, and removes its objects either way.
//!
//! **Forking from a multi-threaded program.** Workers are `fork`ed and then
//! call `shm_open`, `mmap` and, for `--sync sem`, `sem_open`. glibc's
//! `sem_open` takes a process-wide lock that `fork` does not reset, so a
//! program that runs races while *another of its threads* may be inside
//! `sem_open` can fork a child that deadlocks there. The lab binaries never
//! do that (their only other threads are the signal and progress threads);
//! a test suite running several races at once must run them one at a time.
//! A worker that never arrives is reported after 10 s, never waited on
//! forever.
//!
//! ## Layout
//!
//! - [`mode`]: the lock registry — [`SyncMode`], generated from one list,
//!   and [`ModeVisitor`], the one dispatch over it;
//! - `config`: [`Config`], its validation and [`RaceError`];
//! - [`shared`]: the region's payload ([`shared::RaceShared`]);
//! - `worker`: what a worker runs — the increment for each kind of mode,
//!   the start barrier and the loop — and the worker states and child exit
//!   codes parent and child agree on;
//! - `coordinator`: starting workers (fork or threads), the start barrier,
//!   watching for deaths and reaping; the crash experiment uses the same;
//! - `report`: [`TrialResult`] and the statistics over workers and trials;
//! - [`trace`]: the race microscope — every increment recorded, the lost
//!   ones found and what overwrote each (`lab4-race --trace`);
//! - [`crash`]: the crash experiment behind `lab8-crash`.

mod config;
mod coordinator;
pub mod crash;
pub mod mode;
mod report;
pub mod shared;
pub mod torture;
pub mod trace;
mod worker;

pub use config::{Config, MAX_HOLD, RaceError};
pub use mode::{LocalLock, ModeVisitor, SyncMode, WorkerKind};
pub use report::{LostSummary, TrialResult, WorkerResult, jain, summarise_lost};
pub use shared::MAX_WORKERS;
pub use shared::WorkerState;
pub use trace::TraceReport;
pub use worker::{ChildExit, PUBLISH_EVERY};

use shm::lock::RawLockTimed;

/// A progress report: increments done so far, of the total.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Runs one trial of `cfg`. `progress` is called from the coordinator
/// roughly every 50 ms.
pub fn run_trial(
    cfg: &Config,
    trial: u32,
    progress: Progress<'_>,
) -> Result<TrialResult, RaceError> {
    cfg.validate()?;
    let (result, _) = cfg.sync.visit(RunTrial {
        cfg,
        trial,
        progress,
        trace: false,
    })?;
    Ok(result)
}

/// [`run_trial`] with every increment recorded ([`trace`]): the result and
/// what the trace shows — which increments were lost, and what overwrote
/// them. At most [`trace::MAX_TRACED`] increments in all.
pub fn run_traced(
    cfg: &Config,
    progress: Progress<'_>,
) -> Result<(TrialResult, TraceReport), RaceError> {
    cfg.validate()?;
    let (result, report) = cfg.sync.visit(RunTrial {
        cfg,
        trial: 1,
        progress,
        trace: true,
    })?;
    let report = report.expect("a traced run returns its trace");
    Ok((result, report))
}

/// [`run_trial`]'s visit: the worker step for each kind of mode.
struct RunTrial<'c, 'p> {
    cfg: &'c Config,
    trial: u32,
    progress: Progress<'p>,
    trace: bool,
}

impl RunTrial<'_, '_> {
    fn run<S: worker::Stepper>(self, stepper: &S) -> <Self as ModeVisitor>::Output {
        coordinator::run(self.cfg, self.trial, self.progress, stepper, self.trace)
    }
}

impl ModeVisitor for RunTrial<'_, '_> {
    type Output = Result<(TrialResult, Option<TraceReport>), RaceError>;
    fn unsynchronised(self) -> Self::Output {
        let hold = self.cfg.hold;
        self.run(&worker::Unsync { hold })
    }
    fn fetch_add(self) -> Self::Output {
        let hold = self.cfg.hold;
        self.run(&worker::FetchAdd { hold })
    }
    fn region_lock<L: RawLockTimed + 'static>(self) -> Self::Output {
        let hold = self.cfg.hold;
        self.run(&worker::InRegion::<L>::new(hold))
    }
    fn local_lock<M: LocalLock>(self) -> Self::Output {
        let hold = self.cfg.hold;
        self.run(&worker::Local(M::default(), hold))
    }
}
