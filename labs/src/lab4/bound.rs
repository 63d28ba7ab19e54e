//! The oversubscription guard: a warning before a lock that never yields
//! (`spin-pure`) runs with more workers than CPUs, and a bound on how long
//! each such trial may take.
//!
//! With more spinning workers than CPUs, a pure spin lock's holder can be
//! preempted while the waiters spin out whole time slices, so a trial's
//! time is no longer bounded by the work in it. The bound is a
//! watchdog thread per trial: if the trial is still running at its deadline,
//! it prints why, kills the workers and removes the region (the same
//! clean-up Ctrl-C runs, [`shm::cleanup::run_now`]) and exits with status 2.

use race::{Config, SyncMode};
use std::sync::mpsc;
use std::time::Duration;

/// How long one oversubscribed `spin-pure` trial may run.
/// `SHMLAB_LAB4_TRIAL_LIMIT_MS` overrides it (the tests use a short one).
pub const TRIAL_LIMIT: Duration = Duration::from_secs(20);

/// The CPUs this process may run on (affinity and cgroup limits included).
pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Whether `cfg` runs a lock that never yields with more workers than CPUs.
pub fn oversubscribed(cfg: &Config) -> bool {
    cfg.sync == SyncMode::SpinPure && cfg.workers > cpus()
}

/// The trial limit in force (the environment override, or [`TRIAL_LIMIT`]).
pub fn limit() -> Duration {
    std::env::var("SHMLAB_LAB4_TRIAL_LIMIT_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(TRIAL_LIMIT, Duration::from_millis)
}

/// The warning printed (on stderr, so JSON output stays clean) before an
/// oversubscribed `spin-pure` run.
pub fn warning(cfg: &Config) -> String {
    let hint = if cfg.hold == 0 {
        " With a one-increment critical section a holder is rarely preempted inside it; a longer critical section (--hold 200) makes preemption inside it likely."
    } else {
        ""
    };
    format!(
        "warning: spin-pure never yields the CPU, and {} workers > {} CPUs: a holder preempted mid-increment leaves the waiters spinning out whole time slices, and a holder that keeps its CPU takes the lock back before any waiter can, so expect this run to be slower and very unfair compared with {} workers.{hint} Each trial is stopped after {} (the workers are killed and the region removed).",
        cfg.workers,
        cpus(),
        cpus(),
        crate::fmt::duration_ns(limit().as_nanos() as u64)
    )
}

/// A running trial's watchdog: dropping it (the trial ended) stops it.
#[derive(Debug)]
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Starts a watchdog for trial `trial` of `cfg`, if it needs one.
    pub fn start(cfg: &Config, trial: u32) -> Option<Watchdog> {
        if !oversubscribed(cfg) {
            return None;
        }
        let (tx, rx) = mpsc::channel::<()>();
        let limit = limit();
        let (workers, sync) = (cfg.workers, cfg.sync);
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!(
                    "\nerror: --sync {sync} trial {trial} with {workers} workers on {} CPUs was still running after {}: stopped (workers killed, region removed). This is the collapse: use --workers {} or fewer, or --sync spin / futex, whose waiters give the CPU back.",
                    cpus(),
                    crate::fmt::duration_ns(limit.as_nanos() as u64),
                    cpus()
                );
                shm::cleanup::run_now();
                std::process::exit(i32::from(crate::EXIT_BAD_INPUT));
            }
        });
        Some(Watchdog {
            done: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
