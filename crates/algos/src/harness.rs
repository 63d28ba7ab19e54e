//! [`race()`]: N workers enter one critical section M times each under a
//! [`MutexAlgorithm`], and the harness counts violations and lost updates.
//!
//! The shape is the racing counter's (`race` crate): a region made by the
//! coordinator, workers that are forked processes opening it by name (or
//! threads), a start barrier, a coordinator that watches for deaths and
//! reaps. What differs is that the lock is the one under test, so the
//! coordinator also keeps a **deadline**: a lock that deadlocks or
//! livelocks is stopped and reported, not waited on.

use crate::arena::{Arena, Slot};
use crate::{Fence, MutexAlgorithm, Waiter, WorkerKind};
use race::{ChildExit, PUBLISH_EVERY, WorkerState};
use shm::process::{Crew, Ended};
use shm::{Region, RegionOptions, ShmName};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub use race::RaceError;

/// How long the coordinator waits for every worker to reach the barrier.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// After an abort, how long workers get to notice before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// One race's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaceConfig {
    /// Processes (forked, each opening the region by name) or threads.
    pub kind: WorkerKind,
    /// Number of workers.
    pub workers: u32,
    /// Critical-section entries per worker.
    pub iters: u64,
    /// How long the workers may take once released; past it the run is
    /// stopped and reported as not finished.
    pub deadline: Duration,
    /// Most `pause` instructions a worker spends outside the critical
    /// section between two entries (a random number from 0 to this).
    pub outside: u32,
}

impl RaceConfig {
    /// The default deadline.
    pub const DEADLINE: Duration = Duration::from_secs(30);
    /// The default for [`outside`](Self::outside).
    pub const OUTSIDE: u32 = 16;

    /// `workers` processes, `iters` entries each.
    pub fn procs(workers: u32, iters: u64) -> Self {
        RaceConfig {
            kind: WorkerKind::Procs,
            workers,
            iters,
            deadline: Self::DEADLINE,
            outside: Self::OUTSIDE,
        }
    }

    /// `workers` threads, `iters` entries each.
    pub fn threads(workers: u32, iters: u64) -> Self {
        RaceConfig {
            kind: WorkerKind::Threads,
            ..Self::procs(workers, iters)
        }
    }

    /// Checks what every race needs: the racing counter's checks (at least
    /// one worker and at most [`MAX_WORKERS`](crate::MAX_WORKERS), at least one entry, a total
    /// that fits in a u64), and a deadline. Returns workers × iters.
    pub fn validate(&self) -> Result<u64, RaceError> {
        let total = race::Config {
            sync: race::SyncMode::Atomic,
            kind: self.kind,
            workers: self.workers,
            iters: self.iters,
            hold: 0,
        }
        .validate()?;
        if self.deadline.is_zero() {
            return Err(RaceError::Config(
                "a deadline of 0 s stops every run at once; use --timeout 1 or more".into(),
            ));
        }
        Ok(total)
    }

    /// [`validate`](Self::validate), and the algorithm's own worker limit
    /// ([`MutexAlgorithm::max_workers`]).
    pub fn validate_for<A: MutexAlgorithm>(&self, algo: &A) -> Result<u64, RaceError> {
        let total = self.validate()?;
        let most = algo.max_workers();
        if self.workers > most {
            return Err(RaceError::Config(format!(
                "{} supports at most {most} workers; got {}",
                algo.label(),
                self.workers
            )));
        }
        Ok(total)
    }
}

/// One worker's part of a race.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WorkerShare {
    /// Index, from 0 (the `me` the lock was given).
    pub index: u32,
    /// pid (processes) or tid (threads).
    pub pid: i32,
    /// Entries it completed.
    pub done: u64,
    /// Its fraction of all entries made by the moment the first worker
    /// finished (1/N is perfectly fair).
    pub share: f64,
    /// Its entries that found another worker inside.
    pub violations: u64,
    /// Its entries that followed another worker's.
    pub handoffs: u64,
    /// From the start signal to its last entry.
    pub elapsed_ns: u64,
}

/// One race's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RaceResult {
    /// The lock ([`MutexAlgorithm::label`]).
    pub algorithm: String,
    /// Its fence setting ([`Fence::None`] for a C library: shmlab adds none).
    pub fence: Fence,
    /// How many entries found another worker already inside the critical
    /// section: the lock's failures, counted directly.
    pub violations: u64,
    /// Increments of the counter that were lost (entries completed minus the
    /// counter's final value): the failures as the data shows them.
    pub lost: u64,
    /// The counter's final value.
    pub actual: u64,
    /// What the counter should reach: one per entry, workers × iters.
    pub expected: u64,
    /// False if the deadline stopped the run; `lost` then counts only the
    /// entries the workers had reported (every 1,024, and when they
    /// stopped).
    pub finished: bool,
    /// `procs` or `threads`.
    pub kind: WorkerKind,
    /// How many raced.
    pub workers: u32,
    /// Entries each was to make.
    pub iters: u64,
    /// Which trial this was, from 1 (the caller numbers them; 1 otherwise).
    pub trial: u32,
    /// From the start signal to the last worker's last entry (or to the
    /// deadline).
    pub elapsed_ns: u64,
    /// Entries per second.
    pub ops_per_sec: f64,
    /// Jain's fairness index over the workers' shares (1.0 = fair, 1/N =
    /// one worker took everything).
    pub fairness: f64,
    /// Entries that followed another worker's (the lock changed hands).
    pub handoffs: u64,
    /// Entries per hand-off: how many times in a row a worker kept the lock
    /// (1.0 with two workers = strict alternation).
    pub mean_streak: f64,
    /// Per worker.
    pub per_worker: Vec<WorkerShare>,
}

/// Races `algo`: creates the region, initialises the lock's state in it
/// ([`MutexAlgorithm::init`]), starts `cfg.workers` workers (processes that
/// open the region by name, or threads), releases them together, and
/// reports what the critical section saw.
///
/// **Stopping.** A worker that dies, or never reaches the barrier, ends the
/// race with an error; the others are aborted. Past `cfg.deadline` the run
/// is aborted and returned with [`finished`](RaceResult::finished) false.
/// Aborted workers stop at their next [`Waiter::spin`]; worker processes
/// that do not stop within a second (a lock whose wait loop does not spin
/// through the [`Waiter`], such as a C library's) are killed. Threads cannot
/// be killed: a thread still stuck after that second is left running
/// (detached), and the region's name is removed from `/dev/shm` at once.
///
/// For processes, `algo` is each worker's copy of the parent's value (the
/// children are forked after it was made; a [`crate::CLock`]'s library is
/// inherited already loaded).
pub fn race<A: MutexAlgorithm>(algo: A, cfg: &RaceConfig) -> Result<RaceResult, RaceError> {
    let expected = cfg.validate_for(&algo)?;
    let name = ShmName::unique(&format!("algos-{}", A::NAME));
    let region = Region::<Arena<A>>::create(&name, &RegionOptions::default(), cfg.iters)?;
    algo.init(&region.lock.0, cfg.workers);
    let (region, algo) = (Arc::new(region), Arc::new(algo));
    let mut crew = Crew::new();
    let outcome = (0..cfg.workers)
        .try_for_each(|index| start(&mut crew, cfg, &region, &algo, index))
        .and_then(|()| supervise(cfg, &region, &mut crew));
    if !matches!(outcome, Ok(true)) {
        region.control.0.abort.store(1, Ordering::Release);
        region.control.0.gate.cancel();
    }
    if crew.stop(ABORT_GRACE) > 0 {
        // Stuck threads keep the mapping alive; the name goes now.
        let _ = region.name().unlink();
        shm::cleanup::unregister_shm(region.name());
    }
    let finished = outcome?;
    Ok(summarise(&*algo, cfg, expected, &region, finished))
}

/// Starts worker `index` and adds it to `crew`.
fn start<A: MutexAlgorithm>(
    crew: &mut Crew,
    cfg: &RaceConfig,
    region: &Arc<Region<Arena<A>>>,
    algo: &Arc<A>,
    index: u32,
) -> Result<(), RaceError> {
    let (workers, outside) = (cfg.workers, cfg.outside);
    match cfg.kind {
        WorkerKind::Threads => {
            let (region, algo) = (Arc::clone(region), Arc::clone(algo));
            let h = std::thread::Builder::new()
                .name(format!("algos-worker-{index}"))
                .spawn(move || {
                    let slot = &region.workers[index as usize].0;
                    slot.base.id.store(shm::gettid(), Ordering::Relaxed);
                    let _ = work(&*algo, &region, index, workers, outside);
                })
                .map_err(|source| RaceError::Spawn { index, source })?;
            crew.push_thread(h);
        }
        WorkerKind::Procs => {
            let name = region.name().clone();
            let body = || {
                let Ok(mine) = Region::<Arena<A>>::open(&name, &RegionOptions::default()) else {
                    return i32::from(ChildExit::OpenFailed);
                };
                let slot = &mine.workers[index as usize].0;
                slot.base.id.store(shm::pid(), Ordering::Relaxed);
                match work(&**algo, &mine, index, workers, outside) {
                    Ok(()) => i32::from(ChildExit::Finished),
                    Err(crate::Aborted) => i32::from(ChildExit::Aborted),
                }
            };
            // SAFETY: the child opens the region by name, runs the
            // algorithm on atomics in it (or the loaded library's
            // functions, which take no lock of ours) and returns a
            // status. It takes no lock another thread of ours may hold
            // (the labs' other threads are the signal thread; tests
            // run races one at a time) and uses nothing only the parent
            // may own: `algo` is the child's copy, dropped never (the
            // child `_exit`s). The child dies with this thread (the
            // coordinator's, which reaps it): a coordinator killed
            // mid-race leaves no worker spinning, not even one still
            // at the start barrier, which has no liveness check.
            let child = unsafe { shm::process::fork_child(body) }
                .map_err(|source| RaceError::Spawn { index, source })?;
            crew.push_process(child);
        }
    }
    Ok(())
}

/// Fails if a worker ended without finishing: a process that exited (or
/// was killed) early, a thread that panicked or stopped. A process that
/// finished is reaped here.
fn check<A: MutexAlgorithm>(crew: &mut Crew, region: &Region<Arena<A>>) -> Result<(), RaceError> {
    let done = |i: usize| region.workers[i].0.base.state() == WorkerState::Done;
    crew.check(done).map(drop).map_err(|f| {
        let mut how = ChildExit::describe_ended(&f.ended);
        if matches!(f.ended, Ended::Process(e) if e.signal().is_some()) {
            how.push_str(" (inside the lock's code, or the critical section)");
        }
        RaceError::WorkerFailed {
            index: f.index as u32,
            pid: f
                .pid
                .unwrap_or_else(|| region.workers[f.index].0.base.id.load(Ordering::Relaxed)),
            how,
        }
    })
}

/// Waits for every worker to arrive, releases them, and waits until they
/// finish (`Ok(true)`) or the deadline passes (`Ok(false)`), watching for
/// deaths.
fn supervise<A: MutexAlgorithm>(
    cfg: &RaceConfig,
    region: &Region<Arena<A>>,
    crew: &mut Crew,
) -> Result<bool, RaceError> {
    let ctl = &region.control.0;
    if !ctl
        .gate
        .await_arrivals(cfg.workers, ARRIVAL_TIMEOUT, || check(crew, region))?
    {
        let index = (0..cfg.workers)
            .find(|&i| region.workers[i as usize].0.base.state() == WorkerState::NotStarted)
            .unwrap_or(0);
        let pid = crew.pid(index as usize).unwrap_or_else(|| {
            region.workers[index as usize]
                .0
                .base
                .id
                .load(Ordering::Relaxed)
        });
        return Err(RaceError::NeverArrived { index, pid });
    }
    let released = ctl.gate.open();
    loop {
        check(crew, region)?;
        if ctl.finished.load(Ordering::Acquire) == cfg.workers {
            return Ok(true);
        }
        if released.elapsed() > cfg.deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// What a worker counts as it goes; published to its slot every
/// [`PUBLISH_EVERY`] entries and when it stops.
#[derive(Default)]
struct Tally {
    done: u64,
    violations: u64,
    handoffs: u64,
}

impl Tally {
    fn publish(&self, slot: &Slot) {
        slot.base.done.store(self.done, Ordering::Relaxed);
        slot.violations.store(self.violations, Ordering::Relaxed);
        slot.handoffs.store(self.handoffs, Ordering::Relaxed);
    }
}

/// A worker: arrive at the barrier, wait for the start, then `iters` times
/// acquire, run the critical section, release.
fn work<A: MutexAlgorithm>(
    algo: &A,
    arena: &Arena<A>,
    me: u32,
    workers: u32,
    outside: u32,
) -> Result<(), crate::Aborted> {
    let ctl = &arena.control.0;
    let slot = &arena.workers[me as usize].0;
    let (lock, cs) = (&arena.lock.0, &arena.cs.0);
    let iters = ctl.iters.load(Ordering::Relaxed);
    let mut wait = Waiter::for_workers(&ctl.abort, workers);
    slot.base.set_state(WorkerState::Arrived);
    // The start gate: everyone is released by one wake-up; an aborted race
    // cancels it. (A worker process dies with its coordinator.)
    if ctl.gate.arrive_and_wait(|| true).is_err() {
        slot.base.set_state(WorkerState::Failed);
        return Err(crate::Aborted);
    }
    let mut t = Tally::default();
    let mut rng = 0x9E37_79B9u32 ^ (me.wrapping_mul(0x85EB_CA6B) | 1);
    let run = (|| {
        while t.done < iters {
            algo.acquire(lock, me, &mut wait)?;
            let (violation, handoff) = cs.enter(me);
            algo.release(lock, me);
            if outside > 0 {
                // xorshift32: a different, unpredictable pause each time.
                rng ^= rng << 13;
                rng ^= rng >> 17;
                rng ^= rng << 5;
                for _ in 0..rng % (outside + 1) {
                    std::hint::spin_loop();
                }
            }
            t.done += 1;
            t.violations += u64::from(violation);
            t.handoffs += u64::from(handoff);
            if t.done % PUBLISH_EVERY == 0 {
                t.publish(slot);
                if ctl.abort.load(Ordering::Relaxed) != 0 {
                    return Err(crate::Aborted);
                }
            }
        }
        Ok(())
    })();
    t.publish(slot);
    if run.is_err() {
        slot.base.set_state(WorkerState::Failed);
        return run;
    }
    slot.base
        .finish_ns
        .store(shm::time::monotonic_ns(), Ordering::Relaxed);
    // The first to finish records everyone's progress: their shares of the
    // lock while all were competing.
    if ctl.finished.fetch_add(1, Ordering::AcqRel) == 0 {
        for w in &arena.workers[..workers as usize] {
            let done = w.0.base.done.load(Ordering::Relaxed);
            w.0.base.done_at_first_finish.store(done, Ordering::Relaxed);
        }
    }
    slot.base.set_state(WorkerState::Done);
    Ok(())
}

fn summarise<A: MutexAlgorithm>(
    algo: &A,
    cfg: &RaceConfig,
    expected: u64,
    region: &Region<Arena<A>>,
    finished: bool,
) -> RaceResult {
    let go = region.control.0.gate.opened_ns();
    let now = shm::time::monotonic_ns();
    let slots = &region.workers[..cfg.workers as usize];
    // Shares of the lock while all were competing: progress when the first
    // worker finished.
    let shares = fractions(
        slots
            .iter()
            .map(|s| s.0.base.done_at_first_finish.load(Ordering::Relaxed)),
    );
    let per_worker: Vec<WorkerShare> = slots
        .iter()
        .map(|s| &s.0)
        .zip(shares)
        .enumerate()
        .map(|(i, (s, share))| {
            let end = match s.base.finish_ns.load(Ordering::Relaxed) {
                0 => now,
                t => t,
            };
            WorkerShare {
                index: i as u32,
                pid: s.base.id.load(Ordering::Relaxed),
                done: s.base.done.load(Ordering::Relaxed),
                share,
                violations: s.violations.load(Ordering::Relaxed),
                handoffs: s.handoffs.load(Ordering::Relaxed),
                elapsed_ns: end.saturating_sub(go),
            }
        })
        .collect();
    let sum = |f: fn(&WorkerShare) -> u64| per_worker.iter().map(f).sum::<u64>();
    let (done, violations, handoffs) =
        (sum(|w| w.done), sum(|w| w.violations), sum(|w| w.handoffs));
    let actual = region.cs.0.counter.load(Ordering::Acquire);
    // The slowest worker's time (at least 1 ns, to divide by).
    let elapsed_ns = per_worker.iter().fold(1, |t, w| t.max(w.elapsed_ns));
    RaceResult {
        algorithm: algo.label(),
        fence: algo.fence(),
        violations,
        lost: done.saturating_sub(actual),
        actual,
        expected,
        finished,
        kind: cfg.kind,
        workers: cfg.workers,
        iters: cfg.iters,
        trial: 1,
        elapsed_ns,
        ops_per_sec: done as f64 * 1e9 / elapsed_ns as f64,
        fairness: race::jain(per_worker.iter().map(|w| w.share)),
        handoffs,
        mean_streak: done as f64 / handoffs.max(1) as f64,
        per_worker,
    }
}

/// Each count's fraction of their total (equal fractions if it is 0).
fn fractions(counts: impl Iterator<Item = u64>) -> Vec<f64> {
    let counts: Vec<u64> = counts.collect();
    let total: u64 = counts.iter().sum();
    let n = counts.len().max(1) as f64;
    counts
        .iter()
        .map(|&c| match total {
            0 => 1.0 / n,
            t => c as f64 / t as f64,
        })
        .collect()
}
