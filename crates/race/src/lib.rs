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

pub mod crash;
mod mode;
pub mod shared;
mod sys;

pub use mode::{Kind, SyncMode};
pub use shared::MAX_WORKERS;

use shared::{ByLock, LockSlot, NoLock, RaceShared, WorkerSlot};
use shm::lock::{Acquired, Lock, RawLock};
use shm::{Region, RegionOptions, ShmName};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Workers publish their progress (and look at the abort flag) every this
/// many increments: often enough for a progress bar and fairness shares,
/// rare enough to stay off the hot path.
pub const PUBLISH_EVERY: u64 = 1024;

/// How long the coordinator waits for every worker to reach the barrier.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// After a worker dies, how long the others get to stop before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// One race's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How increments are protected.
    pub sync: SyncMode,
    /// Processes or threads.
    pub kind: Kind,
    /// Number of workers.
    pub workers: u32,
    /// Increments per worker.
    pub iters: u64,
}

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
    /// and a mode that can run with this kind of worker.
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
        if self.kind == Kind::Procs
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
    pub kind: Kind,
    /// Number of workers.
    pub workers: u32,
    /// Increments per worker.
    pub iters: u64,
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
    match cfg.sync {
        SyncMode::None => run::<NoLock, _>(cfg, trial, progress, &Unsync),
        SyncMode::Atomic => run::<NoLock, _>(cfg, trial, progress, &FetchAdd),
        SyncMode::Spin => run::<ByLock<shm_futex::SpinLock>, _>(cfg, trial, progress, &InRegion),
        SyncMode::Futex => run::<ByLock<shm_futex::FutexLock>, _>(cfg, trial, progress, &InRegion),
        SyncMode::Pthread => {
            run::<ByLock<shm_pthread::RobustMutex>, _>(cfg, trial, progress, &InRegion)
        }
        SyncMode::Sem => run::<ByLock<shm_sem::NamedSemaphore>, _>(cfg, trial, progress, &InRegion),
        SyncMode::SemUnnamed => {
            run::<ByLock<shm_sem::UnnamedSemaphore>, _>(cfg, trial, progress, &InRegion)
        }
        SyncMode::Std => run::<NoLock, _>(cfg, trial, progress, &StdMutex(Default::default())),
        SyncMode::ParkingLot => {
            run::<NoLock, _>(cfg, trial, progress, &ParkingLot(Default::default()))
        }
    }
}

/// Runs one trial with any [`RawLock`] (not only the ones [`SyncMode`]
/// names), e.g. glibc's plain, non-robust process-shared mutex in the
/// benchmarks. `cfg.sync` is only used as the label of the result.
pub fn run_trial_with<L: RawLock + 'static>(
    cfg: &Config,
    trial: u32,
    progress: Progress<'_>,
) -> Result<TrialResult, RaceError> {
    run::<ByLock<L>, _>(cfg, trial, progress, &InRegion)
}

/// C's `counter++`: a separate load and store. Relaxed atomics make it a
/// real race without undefined behaviour.
#[inline(always)]
fn increment(counter: &AtomicU64) {
    let v = counter.load(Ordering::Relaxed);
    counter.store(v.wrapping_add(1), Ordering::Relaxed);
}

/// How a worker makes one increment under a mode. `attach` runs once per
/// worker (in its own process, for processes) and returns the step the hot
/// loop calls; it is generic, so each mode's loop is compiled and inlined on
/// its own.
trait Stepper<K: LockSlot>: Sync {
    /// Builds this worker's step; the step says whether the lock came from a
    /// dead owner.
    fn attach<'r>(
        &'r self,
        shared: &'r RaceShared<K>,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String>;
}

/// `none`: the unprotected `counter++`.
struct Unsync;
impl Stepper<NoLock> for Unsync {
    fn attach<'r>(
        &'r self,
        shared: &'r RaceShared<NoLock>,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let counter = &shared.counter.0;
        Ok(move || {
            increment(counter);
            Ok(Acquired::Clean)
        })
    }
}

/// `atomic`: one `fetch_add`.
struct FetchAdd;
impl Stepper<NoLock> for FetchAdd {
    fn attach<'r>(
        &'r self,
        shared: &'r RaceShared<NoLock>,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let counter = &shared.counter.0;
        Ok(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(Acquired::Clean)
        })
    }
}

/// A [`RawLock`] whose state lives in the region.
struct InRegion;
impl<L: RawLock + 'static> Stepper<ByLock<L>> for InRegion {
    fn attach<'r>(
        &'r self,
        shared: &'r RaceShared<ByLock<L>>,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let lock = Lock::<L>::attach(&shared.lock.0).map_err(|e| e.to_string())?;
        let counter = &shared.counter.0;
        Ok(move || {
            let g = lock.lock().map_err(|e| e.to_string())?;
            increment(counter);
            Ok(g.acquired())
        })
    }
}

/// `std`: a `std::sync::Mutex` in the coordinator's memory.
struct StdMutex(std::sync::Mutex<()>);
impl Stepper<NoLock> for StdMutex {
    fn attach<'r>(
        &'r self,
        shared: &'r RaceShared<NoLock>,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let counter = &shared.counter.0;
        Ok(move || {
            let _g = self.0.lock().unwrap_or_else(|e| e.into_inner());
            increment(counter);
            Ok(Acquired::Clean)
        })
    }
}

/// `parking_lot`: a `parking_lot::Mutex` in the coordinator's memory.
struct ParkingLot(parking_lot::Mutex<()>);
impl Stepper<NoLock> for ParkingLot {
    fn attach<'r>(
        &'r self,
        shared: &'r RaceShared<NoLock>,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let counter = &shared.counter.0;
        Ok(move || {
            let _g = self.0.lock();
            increment(counter);
            Ok(Acquired::Clean)
        })
    }
}

/// Runs the worker loop: the stepper builds this worker's increment (it may
/// attach to the lock), then the loop runs `iters` steps.
fn worker_body<K: LockSlot, S: Stepper<K>>(
    shared: &RaceShared<K>,
    index: u32,
    stepper: &S,
) -> Result<(), String> {
    let slot = &shared.workers[index as usize].0;
    let ctl = &shared.control.0;
    let iters = ctl.iters.load(Ordering::Relaxed);
    let mut step = stepper.attach(shared)?;
    slot.state.store(1, Ordering::Release);
    ctl.arrived.fetch_add(1, Ordering::AcqRel);
    // The start barrier: spin briefly, then sleep on the `go` futex, with a
    // timeout so an aborted run never leaves a worker asleep.
    let mut spins = 0u32;
    while ctl.go.load(Ordering::Acquire) == 0 {
        if ctl.abort.load(Ordering::Relaxed) != 0 {
            return Err("aborted before the start".into());
        }
        if spins < 1000 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            shm_futex::futex_wait(&ctl.go, 0, Some(Duration::from_millis(50)));
        }
    }
    let mut deaths = 0u64;
    let mut done = 0u64;
    while done < iters {
        let chunk = (iters - done).min(PUBLISH_EVERY);
        for _ in 0..chunk {
            if let Acquired::PreviousOwnerDied { .. } = step()? {
                deaths += 1;
            }
        }
        done += chunk;
        slot.done.store(done, Ordering::Relaxed);
        if ctl.abort.load(Ordering::Relaxed) != 0 {
            return Err("aborted".into());
        }
    }
    slot.finish_ns.store(sys::now_ns(), Ordering::Relaxed);
    slot.owner_deaths.store(deaths, Ordering::Relaxed);
    // The first to finish records everyone's progress: their shares of the
    // lock while all were competing.
    if ctl.finished.fetch_add(1, Ordering::AcqRel) == 0 {
        for w in &shared.workers {
            w.0.done_at_first_finish
                .store(w.0.done.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
    slot.state.store(2, Ordering::Release);
    Ok(())
}

/// A worker the coordinator tracks.
enum Handle<'s> {
    Proc(nix::unistd::Pid),
    Thread(std::thread::ScopedJoinHandle<'s, Result<(), String>>),
}

fn run<K: LockSlot, S: Stepper<K>>(
    cfg: &Config,
    trial: u32,
    progress: Progress<'_>,
    stepper: &S,
) -> Result<TrialResult, RaceError> {
    let expected = cfg.validate()?;
    let name = ShmName::unique(&format!("race-{}", cfg.sync));
    let region = Region::<RaceShared<K>>::create(&name, &RegionOptions::default(), cfg.iters)?;
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(cfg.workers as usize);
        let outcome = (|| {
            for index in 0..cfg.workers {
                handles.push(spawn(cfg.kind, &region, &name, index, stepper, scope)?);
            }
            coordinate(cfg, &region, &mut handles, progress)
        })();
        if outcome.is_err() {
            region.control.0.abort.store(1, Ordering::Release);
            region.control.0.go.store(1, Ordering::Release);
            shm_futex::futex_wake(&region.control.0.go, i32::MAX);
        }
        reap(&mut handles);
        outcome?;
        Ok(summarise(cfg, trial, expected, &region))
    })
}

fn spawn<'s, 'e, K: LockSlot, S: Stepper<K>>(
    kind: Kind,
    region: &'s Region<RaceShared<K>>,
    name: &ShmName,
    index: u32,
    stepper: &'s S,
    scope: &'s std::thread::Scope<'s, 'e>,
) -> Result<Handle<'s>, RaceError> {
    match kind {
        Kind::Threads => {
            let shared: &'s RaceShared<K> = region;
            let h = std::thread::Builder::new()
                .name(format!("race-worker-{index}"))
                .spawn_scoped(scope, move || {
                    shared.workers[index as usize]
                        .0
                        .id
                        .store(shm::gettid(), Ordering::Relaxed);
                    worker_body(shared, index, stepper)
                })
                .map_err(|source| RaceError::Spawn { index, source })?;
            Ok(Handle::Thread(h))
        }
        Kind::Procs => match sys::fork().map_err(|e| RaceError::Spawn {
            index,
            source: e.into(),
        })? {
            Some(pid) => {
                shm::cleanup::register_child(pid.as_raw());
                Ok(Handle::Proc(pid))
            }
            None => {
                // The child: a separate process that maps the region by name.
                shm::cleanup::reset_in_child();
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let opts = RegionOptions::default();
                    let Ok(mine) = Region::<RaceShared<K>>::open(name, &opts) else {
                        return 3;
                    };
                    let slot = &mine.workers[index as usize].0;
                    slot.id.store(std::process::id() as i32, Ordering::Relaxed);
                    match worker_body(&mine, index, stepper) {
                        Ok(()) => 0,
                        Err(_) => {
                            slot.state.store(3, Ordering::Release);
                            4
                        }
                    }
                }))
                .unwrap_or(101);
                sys::exit_now(code)
            }
        },
    }
}

/// Waits for every worker to arrive, releases them, waits for them to
/// finish, watching for deaths.
fn coordinate<K: LockSlot>(
    cfg: &Config,
    region: &Region<RaceShared<K>>,
    handles: &mut [Handle<'_>],
    progress: Progress<'_>,
) -> Result<(), RaceError> {
    let ctl = &region.control.0;
    let total = cfg.iters * cfg.workers as u64;
    let start = Instant::now();
    while ctl.arrived.load(Ordering::Acquire) < cfg.workers {
        check_alive(region, handles)?;
        if start.elapsed() > ARRIVAL_TIMEOUT {
            let index = (0..cfg.workers)
                .find(|&i| region.workers[i as usize].0.state.load(Ordering::Acquire) == 0)
                .unwrap_or(0);
            return Err(RaceError::NeverArrived {
                index,
                pid: handle_id(region, &handles[index as usize], index),
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    ctl.go_ns.store(sys::now_ns(), Ordering::Relaxed);
    ctl.go.store(1, Ordering::Release);
    shm_futex::futex_wake(&ctl.go, i32::MAX);
    let mut last_report = Instant::now();
    loop {
        check_alive(region, handles)?;
        if ctl.finished.load(Ordering::Acquire) == cfg.workers {
            progress(total, total);
            return Ok(());
        }
        if last_report.elapsed() >= Duration::from_millis(50) {
            let done: u64 = region.workers[..cfg.workers as usize]
                .iter()
                .map(|w| w.0.done.load(Ordering::Relaxed))
                .sum();
            progress(done, total);
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn handle_id<K: LockSlot>(region: &Region<RaceShared<K>>, h: &Handle<'_>, index: u32) -> i32 {
    match h {
        Handle::Proc(pid) => pid.as_raw(),
        Handle::Thread(_) => region.workers[index as usize].0.id.load(Ordering::Relaxed),
    }
}

/// Fails if any worker has exited abnormally (processes: `waitpid` with
/// `WNOHANG`; threads: finished without reaching "done").
fn check_alive<K: LockSlot>(
    region: &Region<RaceShared<K>>,
    handles: &mut [Handle<'_>],
) -> Result<(), RaceError> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    for (index, h) in handles.iter_mut().enumerate() {
        let slot = &region.workers[index].0;
        let index = index as u32;
        match h {
            Handle::Proc(pid) => {
                let how = match waitpid(*pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => continue,
                    Ok(WaitStatus::Exited(_, 0)) => {
                        if slot.state.load(Ordering::Acquire) == 2 {
                            // Reaped cleanly: remember that with a pid of 0.
                            shm::cleanup::unregister_child(pid.as_raw());
                            *h = Handle::Proc(nix::unistd::Pid::from_raw(0));
                            continue;
                        }
                        "exited before finishing".to_string()
                    }
                    Ok(WaitStatus::Exited(_, 3)) => "could not open the region by name".into(),
                    Ok(WaitStatus::Exited(_, 4)) => "failed taking the lock".into(),
                    Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
                    Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
                    Ok(_) => continue,
                    Err(nix::errno::Errno::ECHILD) => continue, // already reaped (pid 0)
                    Err(e) => format!("could not be waited for: {e}"),
                };
                shm::cleanup::unregister_child(pid.as_raw());
                let p = pid.as_raw();
                *h = Handle::Proc(nix::unistd::Pid::from_raw(0));
                return Err(RaceError::WorkerFailed { index, pid: p, how });
            }
            Handle::Thread(t) => {
                if t.is_finished() && slot.state.load(Ordering::Acquire) != 2 {
                    return Err(RaceError::WorkerFailed {
                        index,
                        pid: slot.id.load(Ordering::Relaxed),
                        how: "stopped before finishing (it failed taking the lock or panicked)"
                            .into(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Reaps every worker; on the error path, gives them [`ABORT_GRACE`] to see
/// the abort flag, then SIGKILLs what is left (a worker stuck on a wedged
/// semaphore cannot see it).
fn reap(handles: &mut Vec<Handle<'_>>) {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let deadline = Instant::now() + ABORT_GRACE;
    for h in handles.drain(..) {
        match h {
            Handle::Proc(pid) if pid.as_raw() > 0 => {
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
                        _ => break,
                    }
                }
                shm::cleanup::unregister_child(pid.as_raw());
            }
            Handle::Proc(_) => {}
            // Scoped threads are joined when the scope ends; a thread stuck
            // on a wedged lock would hold it up, which is why the thread-only
            // modes use locks that cannot wedge on a dead thread (threads
            // don't die alone).
            Handle::Thread(t) => {
                let _ = t.join();
            }
        }
    }
}

fn summarise<K: LockSlot>(
    cfg: &Config,
    trial: u32,
    expected: u64,
    region: &Region<RaceShared<K>>,
) -> TrialResult {
    let go = region.control.0.go_ns.load(Ordering::Relaxed);
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
