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
//! - a semaphore cannot know who holds it: the wait times out, the survivor
//!   reads the last holder's pid from the region, finds it dead and reports
//!   the lock **wedged** (detected), instead of hanging.

use crate::shared::{ByLock, RaceShared};
use crate::sys;
use crate::{RaceError, SyncMode};
use shm::lock::{Acquired, Lock, RawLock};
use shm::{Region, RegionOptions, ShmName};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a survivor waits for the lock before checking on its holder.
pub const WAIT_SLICE: Duration = Duration::from_millis(200);
/// How long the coordinator lets survivors run after the kill.
const SURVIVOR_DEADLINE: Duration = Duration::from_secs(20);

/// What the survivors experienced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The lock told the next locker its owner died and carried on.
    Recovered,
    /// The lock stayed held by a dead process; a survivor detected it from
    /// the recorded holder pid and stopped instead of hanging.
    WedgedDetected,
    /// Nobody noticed within the deadline: without the bounded wait, the
    /// survivors would have waited forever.
    Hung,
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

/// Modes the crash lab can run (locks only: without a lock there is nothing
/// to die holding).
pub const CRASH_MODES: [SyncMode; 5] = [
    SyncMode::Pthread,
    SyncMode::Futex,
    SyncMode::Spin,
    SyncMode::Sem,
    SyncMode::SemUnnamed,
];

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
        kind: crate::Kind::Procs,
        workers,
        iters,
    }
    .validate()?;
    match sync {
        SyncMode::Pthread => crash::<shm_pthread::RobustMutex>(sync, workers, iters),
        SyncMode::Futex => crash::<shm_futex::FutexLock>(sync, workers, iters),
        SyncMode::Spin => crash::<shm_futex::SpinLock>(sync, workers, iters),
        SyncMode::Sem => crash::<shm_sem::NamedSemaphore>(sync, workers, iters),
        SyncMode::SemUnnamed => crash::<shm_sem::UnnamedSemaphore>(sync, workers, iters),
        other => Err(RaceError::Config(format!(
            "--sync {other} has no lock to die holding; choose pthread, futex, spin, sem, sem-unnamed or all"
        ))),
    }
}

fn crash<L: RawLock + 'static>(
    sync: SyncMode,
    workers: u32,
    iters: u64,
) -> Result<CrashReport, RaceError> {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let name = ShmName::unique(&format!("crash-{sync}"));
    let region = Region::<RaceShared<ByLock<L>>>::create(&name, &RegionOptions::default(), iters)?;
    let ctl = &region.control.0;
    let cc = &region.crash.0;
    let mut pids = Vec::new();
    let result = (|| {
        for index in 0..workers {
            let pid = match sys::fork().map_err(|e| RaceError::Spawn {
                index,
                source: e.into(),
            })? {
                Some(pid) => pid,
                None => {
                    shm::cleanup::reset_in_child();
                    let code = std::panic::catch_unwind(|| child::<L>(&name, index)).unwrap_or(101);
                    sys::exit_now(code)
                }
            };
            shm::cleanup::register_child(pid.as_raw());
            pids.push(pid);
        }
        let start = Instant::now();
        while ctl.arrived.load(Ordering::Acquire) < workers {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(RaceError::NeverArrived {
                    index: 0,
                    pid: pids[0].as_raw(),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        ctl.go_ns.store(sys::now_ns(), Ordering::Relaxed);
        ctl.go.store(1, Ordering::Release);
        shm_futex::futex_wake(&ctl.go, i32::MAX);
        // Wait for the victim to sit in its critical section, then kill it.
        let start = Instant::now();
        while cc.victim_in_cs.load(Ordering::Acquire) == 0 {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(RaceError::WorkerFailed {
                    index: 0,
                    pid: pids[0].as_raw(),
                    how: "never reached its critical section".into(),
                });
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        cc.kill_ns.store(sys::now_ns(), Ordering::Release);
        let _ = kill(pids[0], Signal::SIGKILL);
        let _ = waitpid(pids[0], None);
        shm::cleanup::unregister_child(pids[0].as_raw());
        // Survivors: finished (0), stopped at a detected wedge (5), or still
        // waiting at the deadline (killed: hung).
        let deadline = Instant::now() + SURVIVOR_DEADLINE;
        let mut finished = 0;
        for &pid in &pids[1..] {
            loop {
                match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Ok(WaitStatus::StillAlive) => {
                        let _ = kill(pid, Signal::SIGKILL);
                        let _ = waitpid(pid, None);
                        break;
                    }
                    Ok(WaitStatus::Exited(_, 0)) => {
                        finished += 1;
                        break;
                    }
                    _ => break,
                }
            }
            shm::cleanup::unregister_child(pid.as_raw());
        }
        Ok(finished)
    })();
    if result.is_err() {
        ctl.abort.store(1, Ordering::Release);
        for &pid in &pids {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            shm::cleanup::unregister_child(pid.as_raw());
        }
    }
    let survivors_finished = result?;
    let kill_ns = cc.kill_ns.load(Ordering::Acquire);
    let detect = cc.detect_ns.load(Ordering::Acquire);
    let outcome = match cc.outcome.load(Ordering::Acquire) {
        1 => Outcome::Recovered,
        2 => Outcome::WedgedDetected,
        _ => Outcome::Hung,
    };
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
/// Exit codes: 0 finished, 3 could not open, 4 lock error, 5 stopped at a
/// detected wedge.
fn child<L: RawLock + 'static>(name: &ShmName, index: u32) -> i32 {
    let Ok(region) = Region::<RaceShared<ByLock<L>>>::open(name, &RegionOptions::default()) else {
        return 3;
    };
    let shared: &RaceShared<ByLock<L>> = &region;
    let slot = &shared.workers[index as usize].0;
    slot.id.store(shm::pid(), Ordering::Relaxed);
    let Ok(lock) = Lock::<L>::attach(&shared.lock.0) else {
        return 4;
    };
    let ctl = &shared.control.0;
    let cc = &shared.crash.0;
    let counter = &shared.counter.0;
    let iters = ctl.iters.load(Ordering::Relaxed);
    ctl.arrived.fetch_add(1, Ordering::AcqRel);
    while ctl.go.load(Ordering::Acquire) == 0 {
        shm_futex::futex_wait(&ctl.go, 0, Some(Duration::from_millis(50)));
    }
    if index == 0 {
        // The victim.
        let half = iters / 2;
        for _ in 0..half {
            let Ok(_g) = lock.lock() else { return 4 };
            let v = counter.load(Ordering::Relaxed);
            counter.store(v + 1, Ordering::Relaxed);
        }
        cc.victim_done.store(half, Ordering::Release);
        let Ok(g) = lock.lock() else { return 4 };
        let v = counter.load(Ordering::Relaxed);
        cc.in_flight.store(v, Ordering::Relaxed);
        cc.victim_in_cs.store(1, Ordering::Release);
        // Killed here, holding the lock, before storing v + 1.
        loop {
            std::thread::sleep(Duration::from_secs(1));
            if ctl.abort.load(Ordering::Relaxed) != 0 {
                drop(g);
                return 0;
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
                Ok(true) => {
                    // SAFETY: `take` returned true: this thread holds it.
                    unsafe { lock.raw().unlock(lock.state()) };
                    return 0;
                }
                Ok(false) => return 5,
                Err(()) => return 4,
            }
        }
        if done == iters {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            match take(&lock, cc) {
                Ok(true) => {}
                Ok(false) => return 5,
                Err(()) => return 4,
            }
            // `take` left the lock held: do the increment, then release.
            let v = counter.load(Ordering::Relaxed);
            counter.store(v + 1, Ordering::Relaxed);
            // SAFETY: `take` returned true, so this thread holds the lock.
            unsafe { lock.raw().unlock(lock.state()) };
            done += 1;
            slot.done.store(done, Ordering::Relaxed);
        }
        if ctl.abort.load(Ordering::Relaxed) != 0 {
            return 6;
        }
    }
}

/// Takes the lock with bounded waits. `Ok(true)`: held (the caller
/// unlocks);
/// `Ok(false)`: the holder is dead and the lock wedged (recorded).
fn take<L: RawLock>(lock: &Lock<'_, L>, cc: &crate::shared::CrashControl) -> Result<bool, ()> {
    loop {
        match lock.raw().lock_timeout(lock.state(), WAIT_SLICE) {
            Ok(Some(how)) => {
                if let Acquired::PreviousOwnerDied { owner } = how {
                    notice(cc, 1, owner.unwrap_or(0));
                }
                return Ok(true);
            }
            Ok(None) => {
                if cc.outcome.load(Ordering::Acquire) == 2 {
                    return Ok(false);
                }
                if let Some(h) = lock.raw().last_holder(lock.state())
                    && cc.kill_ns.load(Ordering::Acquire) != 0
                    && !shm::process_alive(h)
                {
                    notice(cc, 2, h);
                    return Ok(false);
                }
            }
            Err(_) => return Err(()),
        }
    }
}

/// Records the first survivor's discovery.
fn notice(cc: &crate::shared::CrashControl, outcome: u32, holder: i32) {
    if cc
        .outcome
        .compare_exchange(0, outcome, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        cc.holder.store(holder, Ordering::Relaxed);
        cc.detect_ns.store(sys::now_ns(), Ordering::Release);
    }
}
