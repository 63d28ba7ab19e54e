//! The crash experiment behind `lab8-crash`: kill a worker with SIGKILL
//! while it holds the lock, inside its critical section, and watch what the
//! other workers experience.
//!
//! Worker 0 is the victim: it does half its increments, takes the lock,
//! loads the counter (the increment now in flight), announces that it is
//! inside the critical section, and sleeps there until the coordinator
//! kills it. The survivors take the lock with a bounded wait
//! ([`RawLock::lock_timeout`]), so none of them can hang:
//!
//! - a lock that knows its owner (robust pthread mutex, futex and spin locks
//!   with the owner's TID in the word) hands the next locker
//!   [`Acquired::PreviousOwnerDied`]: **recovered**;
//! - a semaphore cannot know who holds it, and glibc's plain (non-robust)
//!   mutex knows but does nothing about it: the wait times out, the survivor
//!   reads the last holder (the pid the region recorded, or the mutex's
//!   owner field), finds it dead and reports the lock **wedged** (detected),
//!   instead of hanging.
//!
//! Every region lock of the registry ([`SyncMode::region_locks`]) can run
//! it; the dispatch is [`SyncMode::visit`].

use crate::coordinator::{abort, fork_worker, release};
use crate::mode::{LocalLock, ModeVisitor};
use crate::shared::{ByLock, RaceShared};
use crate::worker::ChildExit;
use crate::{RaceError, SyncMode};
use shm::lock::{Acquired, Lock, RawLockTimed};
use shm::{Region, RegionOptions, ShmName};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a survivor waits for the lock before checking on its holder.
pub const WAIT_SLICE: Duration = Duration::from_millis(200);
/// How long the coordinator lets survivors run after the kill.
const SURVIVOR_DEADLINE: Duration = Duration::from_secs(20);

shm::code_enum! {
    /// What the survivors experienced; stored in the region's
    /// `CrashControl::outcome` word by the first survivor to notice.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Outcome: u32 {
        /// Nobody noticed within the deadline: without the bounded wait, the
        /// survivors would have waited forever. (Also the word's initial 0.)
        Hung = 0,
        /// The lock told the next locker its owner died and carried on.
        Recovered = 1,
        /// The lock stayed held by a dead process; a survivor detected it
        /// from the recorded holder and stopped instead of hanging.
        WedgedDetected = 2,
    }
}

impl Outcome {
    fn from_u32(v: u32) -> Self {
        Self::try_from(v).unwrap_or(Outcome::Hung)
    }
}

/// One crash experiment's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CrashReport {
    /// The lock.
    pub sync: SyncMode,
    /// Workers including the victim.
    pub workers: u32,
    /// Increments each worker was to do.
    pub iters: u64,
    /// The victim's pid.
    pub victim_pid: i32,
    /// Increments the victim completed before it died.
    pub victim_done: u64,
    /// The counter value the victim had loaded when it died.
    pub in_flight_loaded: u64,
    /// What the survivors experienced.
    pub outcome: Outcome,
    /// From the kill to the first survivor noticing, in ns.
    pub detect_ns: Option<u64>,
    /// The dead holder's pid/tid as reported by the lock or the region.
    pub reported_holder: Option<i32>,
    /// Survivors that finished all their increments.
    pub survivors_finished: u32,
    /// What the counter must read if no completed increment was lost:
    /// every survivor's increments plus the victim's completed ones.
    pub expected: u64,
    /// The counter at the end.
    pub actual: u64,
}

impl CrashReport {
    /// Whether the in-flight increment was lost and nothing else: the counter
    /// is consistent with every *completed* increment.
    pub fn consistent(&self) -> bool {
        self.actual == self.expected
    }
}

/// Modes the crash lab can run: the region locks (without a lock there is
/// nothing to die holding), in table order.
pub fn crash_modes() -> Vec<SyncMode> {
    SyncMode::region_locks().collect()
}

/// Runs the crash experiment for `sync` with `workers` processes (one of
/// them the victim) of `iters` increments each.
pub fn run_crash(sync: SyncMode, workers: u32, iters: u64) -> Result<CrashReport, RaceError> {
    if workers < 2 {
        return Err(RaceError::Config(
            "the crash lab needs at least 2 workers: one to die and one to notice".into(),
        ));
    }
    crate::Config {
        sync,
        kind: crate::WorkerKind::Procs,
        workers,
        iters,
        hold: 0,
    }
    .validate()?;
    sync.visit(Crash {
        sync,
        workers,
        iters,
    })
}

/// [`run_crash`]'s visit: region locks run, the rest are refused.
struct Crash {
    sync: SyncMode,
    workers: u32,
    iters: u64,
}

impl Crash {
    fn no_lock(self) -> Result<CrashReport, RaceError> {
        let names: Vec<&str> = crash_modes().into_iter().map(SyncMode::name).collect();
        Err(RaceError::Config(format!(
            "--sync {} has no lock in the region to die holding; choose {} or all",
            self.sync,
            names.join(", ")
        )))
    }
}

impl ModeVisitor for Crash {
    type Output = Result<CrashReport, RaceError>;
    fn unsynchronised(self) -> Self::Output {
        self.no_lock()
    }
    fn fetch_add(self) -> Self::Output {
        self.no_lock()
    }
    fn region_lock<L: RawLockTimed + 'static>(self) -> Self::Output {
        crash::<L>(self.sync, self.workers, self.iters)
    }
    fn local_lock<M: LocalLock>(self) -> Self::Output {
        self.no_lock()
    }
}

fn crash<L: RawLockTimed + 'static>(
    sync: SyncMode,
    workers: u32,
    iters: u64,
) -> Result<CrashReport, RaceError> {
    let name = ShmName::unique(&format!("crash-{sync}"));
    let region = Region::<RaceShared<ByLock<L>>>::create(&name, &RegionOptions::default(), iters)?;
    let ctl = &region.control.0;
    let cc = &region.crash.0;
    // Dropped on an error path: every worker killed and reaped.
    let mut kids = Vec::new();
    let result = (|| {
        for index in 0..workers {
            kids.push(fork_worker(index, || child::<L>(&name, index).into())?);
        }
        let arrived =
            ctl.gate
                .await_arrivals(workers, crate::coordinator::ARRIVAL_TIMEOUT, || {
                    Ok::<_, RaceError>(())
                })?;
        if !arrived {
            return Err(RaceError::NeverArrived {
                index: 0,
                pid: kids[0].pid(),
            });
        }
        release(ctl);
        // Wait for the victim to sit in its critical section, then kill it.
        let start = Instant::now();
        while cc.victim_in_cs.load(Ordering::Acquire) == 0 {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(RaceError::WorkerFailed {
                    index: 0,
                    pid: kids[0].pid(),
                    how: "never reached its critical section".into(),
                });
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        cc.kill_ns
            .store(shm::time::monotonic_ns(), Ordering::Release);
        let _ = kids[0].kill();
        // Survivors: finished, stopped at a detected wedge, or still waiting
        // at the deadline (killed: hung).
        let deadline = Instant::now() + SURVIVOR_DEADLINE;
        let finished = kids[1..]
            .iter_mut()
            .map(|kid| kid.stop_by(deadline))
            .filter(|ended| {
                matches!(ended, Ok((exit, false))
                    if exit.code() == Some(i32::from(ChildExit::Finished)))
            })
            .count() as u32;
        Ok(finished)
    })();
    if result.is_err() {
        abort(ctl);
        for kid in &mut kids {
            let _ = kid.kill();
        }
    }
    let survivors_finished = result?;
    let kill_ns = cc.kill_ns.load(Ordering::Acquire);
    let detect = cc.detect_ns.load(Ordering::Acquire);
    let outcome = Outcome::from_u32(cc.outcome.load(Ordering::Acquire));
    let victim_done = cc.victim_done.load(Ordering::Acquire);
    let survivors_done: u64 = region.workers[1..workers as usize]
        .iter()
        .map(|w| w.0.done.load(Ordering::Acquire))
        .sum();
    let holder = cc.holder.load(Ordering::Acquire);
    Ok(CrashReport {
        sync,
        workers,
        iters,
        victim_pid: region.workers[0].0.id.load(Ordering::Relaxed),
        victim_done,
        in_flight_loaded: cc.in_flight.load(Ordering::Acquire),
        outcome,
        detect_ns: (detect != 0).then(|| detect.saturating_sub(kill_ns)),
        reported_holder: (holder != 0).then_some(holder),
        survivors_finished,
        expected: victim_done + survivors_done,
        actual: region.counter.0.load(Ordering::Acquire),
    })
}

/// A worker process: opens the region by name, then plays its part.
fn child<L: RawLockTimed + 'static>(name: &ShmName, index: u32) -> ChildExit {
    let Ok(region) = Region::<RaceShared<ByLock<L>>>::open(name, &RegionOptions::default()) else {
        return ChildExit::OpenFailed;
    };
    let shared: &RaceShared<ByLock<L>> = &region;
    let slot = &shared.workers[index as usize].0;
    slot.id.store(shm::pid(), Ordering::Relaxed);
    let Ok(lock) = Lock::<L>::attach(&shared.lock.0) else {
        return ChildExit::LockFailed;
    };
    let ctl = &shared.control.0;
    let cc = &shared.crash.0;
    let counter = &shared.counter.0;
    let iters = ctl.iters.load(Ordering::Relaxed);
    if crate::worker::wait_for_go(shared).is_err() {
        return ChildExit::Aborted;
    }
    if index == 0 {
        // The victim.
        let half = iters / 2;
        for _ in 0..half {
            let Ok(_g) = lock.lock() else {
                return ChildExit::LockFailed;
            };
            let v = counter.load(Ordering::Relaxed);
            counter.store(v + 1, Ordering::Relaxed);
        }
        cc.victim_done.store(half, Ordering::Release);
        let Ok(g) = lock.lock() else {
            return ChildExit::LockFailed;
        };
        let v = counter.load(Ordering::Relaxed);
        cc.in_flight.store(v, Ordering::Relaxed);
        cc.victim_in_cs.store(1, Ordering::Release);
        // Killed here, holding the lock, before storing v + 1.
        loop {
            std::thread::sleep(Duration::from_secs(1));
            if ctl.abort.load(Ordering::Relaxed) != 0 {
                drop(g);
                return ChildExit::Finished;
            }
        }
    }
    // Survivors: their increments, then one more acquisition after the
    // kill, so every survivor meets the lock the victim died holding.
    let mut done = 0;
    loop {
        let after_kill = cc.kill_ns.load(Ordering::Acquire) != 0;
        if done == iters && after_kill {
            match take(&lock, cc) {
                Ok(Some(g)) => {
                    g.unlock();
                    return ChildExit::Finished;
                }
                Ok(None) => return ChildExit::WedgeDetected,
                Err(()) => return ChildExit::LockFailed,
            }
        }
        if done == iters {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            let g = match take(&lock, cc) {
                Ok(Some(g)) => g,
                Ok(None) => return ChildExit::WedgeDetected,
                Err(()) => return ChildExit::LockFailed,
            };
            let v = counter.load(Ordering::Relaxed);
            counter.store(v + 1, Ordering::Relaxed);
            g.unlock();
            done += 1;
            slot.done.store(done, Ordering::Relaxed);
        }
        if ctl.abort.load(Ordering::Relaxed) != 0 {
            return ChildExit::Aborted;
        }
    }
}

/// Takes the lock with bounded waits. `Ok(Some(guard))`: held;
/// `Ok(None)`: the holder is dead and the lock wedged (recorded).
fn take<'g, 'a, L: RawLockTimed>(
    lock: &'g Lock<'a, L>,
    cc: &crate::shared::CrashControl,
) -> Result<Option<shm::lock::Guard<'g, 'a, L>>, ()> {
    loop {
        match lock.lock_timeout(WAIT_SLICE) {
            Ok(Some(g)) => {
                if let Acquired::PreviousOwnerDied { owner } = g.acquired() {
                    notice(cc, Outcome::Recovered, owner.unwrap_or(0));
                }
                return Ok(Some(g));
            }
            Ok(None) => {
                if Outcome::from_u32(cc.outcome.load(Ordering::Acquire)) == Outcome::WedgedDetected
                {
                    return Ok(None);
                }
                // The holder is a single-threaded worker process: its tid
                // is its pid. A zombie holder is dead too.
                if let Some(h) = lock.raw().last_holder(lock.state())
                    && cc.kill_ns.load(Ordering::Acquire) != 0
                    && shm::process::liveness(h, 0).is_dead()
                {
                    notice(cc, Outcome::WedgedDetected, h);
                    return Ok(None);
                }
            }
            Err(_) => return Err(()),
        }
    }
}

/// Records the first survivor's discovery.
fn notice(cc: &crate::shared::CrashControl, outcome: Outcome, holder: i32) {
    if cc
        .outcome
        .compare_exchange(0, outcome.into(), Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        cc.holder.store(holder, Ordering::Relaxed);
        cc.detect_ns
            .store(shm::time::monotonic_ns(), Ordering::Release);
    }
}
