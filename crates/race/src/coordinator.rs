//! The coordinator: starts workers (forked processes that open the region
//! by name, or threads), releases them together, watches for deaths and
//! reaps them. The crash experiment starts, releases and reaps its workers
//! with the same functions.

use crate::report::summarise;
use crate::shared::{Control, RaceShared, RegionLock, WorkerState};
use crate::trace::{MAX_TRACED, RECORD_BYTES, TraceObject, TraceReport};
use crate::worker::{ChildExit, Stepper, worker_body};
use crate::{Config, Progress, RaceError, TrialResult, WorkerKind};
use shm::process::{Child, Crew};
use shm::{Region, RegionOptions, ShmName};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the coordinator waits for every worker to reach the barrier.
pub(crate) const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// After a worker dies, how long the others get to stop before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// The workers of one trial: processes, or threads in the trial's scope.
type Workers<'s> = Crew<std::thread::ScopedJoinHandle<'s, Result<(), String>>>;

/// Forks worker `index`, which runs `body` in its own process
/// ([`shm::process::fork_child`]; the child is registered for Ctrl-C
/// clean-up, and is killed if the coordinator dies: a coordinator killed
/// with SIGKILL in the middle of a run leaves no worker racing on, only its
/// region and semaphore for `shmlab clean`). Called from the thread that
/// reaps the workers, which the parent-death signal requires.
pub(crate) fn fork_worker(index: u32, body: impl FnOnce() -> i32) -> Result<Child, RaceError> {
    // SAFETY: every worker body opens the region by name, works on it with
    // atomics and the lock, and returns a status: no lock that another of
    // the coordinator's threads could hold (the lab binaries' only other
    // threads are the signal and progress threads, which hold none across a
    // fork; see the crate docs on `sem_open`), and nothing the parent owns.
    unsafe { shm::process::fork_child(body) }.map_err(|source| RaceError::Spawn { index, source })
}

/// Releases the workers waiting at the start gate.
pub(crate) fn release(ctl: &Control) {
    ctl.gate.open();
}

/// Tells every worker to stop (including one still at the gate).
pub(crate) fn abort(ctl: &Control) {
    ctl.abort.store(1, Ordering::Release);
    ctl.gate.cancel();
}

/// Runs one trial; with `trace`, every increment is recorded in a trace
/// object beside the region and the trace is analysed afterwards.
pub(crate) fn run<S: Stepper>(
    cfg: &Config,
    trial: u32,
    progress: Progress<'_>,
    stepper: &S,
    trace: bool,
) -> Result<(TrialResult, Option<TraceReport>), RaceError> {
    let expected = cfg.validate()?;
    if trace && expected > MAX_TRACED {
        return Err(RaceError::Config(format!(
            "--trace records every increment ({RECORD_BYTES} bytes each); {} workers x {} increments is more than the {} it keeps; use --iters {} or fewer",
            cfg.workers,
            cfg.iters,
            MAX_TRACED,
            MAX_TRACED / u64::from(cfg.workers)
        )));
    }
    let name = ShmName::unique(&format!("race-{}", cfg.sync));
    let region =
        Region::<RaceShared<S::Slot>>::create(&name, &RegionOptions::default(), cfg.iters)?;
    let tobj = trace
        .then(|| TraceObject::create(cfg.workers, cfg.iters))
        .transpose()?;
    let tmap = tobj.as_ref().map(TraceObject::map).transpose()?;
    let words = tmap.as_ref().map(|m| m.words()).transpose()?;
    let traced = tobj.as_ref().zip(words).map(|(o, w)| Traced {
        name: o.name(),
        len: o.len(),
        words: w,
    });
    std::thread::scope(|scope| {
        let mut crew = Workers::new();
        let outcome = (|| {
            for index in 0..cfg.workers {
                spawn(
                    &mut crew, cfg.kind, &region, &name, index, stepper, traced, scope,
                )?;
            }
            coordinate(cfg, &region, &mut crew, progress)
        })();
        if outcome.is_err() {
            abort(&region.control.0);
        }
        // Processes get ABORT_GRACE to see the abort flag, then SIGKILL (a
        // worker stuck on a wedged semaphore cannot see it). Scoped threads
        // are joined when the scope ends; a thread stuck on a wedged lock
        // would hold it up, which is why the thread-only modes use locks
        // that cannot wedge on a dead thread (threads don't die alone).
        crew.stop(ABORT_GRACE);
        outcome?;
        let result = summarise(cfg, trial, expected, &region);
        let report = traced.map(|t| {
            let incs = crate::trace::collect(t.words, cfg.workers, cfg.iters);
            crate::trace::analyse(&incs, result.actual)
        });
        Ok((result, report))
    })
}

/// A traced run's trace object, as the workers reach it: processes open it
/// by name, threads share the coordinator's words.
#[derive(Clone, Copy)]
struct Traced<'t> {
    name: &'t ShmName,
    len: usize,
    words: &'t [AtomicU64],
}

#[allow(clippy::too_many_arguments)]
fn spawn<'s, 'e, S: Stepper>(
    crew: &mut Workers<'s>,
    kind: WorkerKind,
    region: &'s Region<RaceShared<S::Slot>>,
    name: &ShmName,
    index: u32,
    stepper: &'s S,
    traced: Option<Traced<'s>>,
    scope: &'s std::thread::Scope<'s, 'e>,
) -> Result<(), RaceError> {
    match kind {
        WorkerKind::Threads => {
            let shared: &'s RaceShared<S::Slot> = region;
            let h = std::thread::Builder::new()
                .name(format!("race-worker-{index}"))
                .spawn_scoped(scope, move || {
                    shared.workers[index as usize]
                        .0
                        .id
                        .store(shm::gettid(), Ordering::Relaxed);
                    worker_body(shared, index, stepper, traced.map(|t| t.words))
                })
                .map_err(|source| RaceError::Spawn { index, source })?;
            crew.push_thread(h);
        }
        // The child: a separate process that maps the region by name.
        WorkerKind::Procs => crew.push_process(fork_worker(index, || {
            let opts = RegionOptions::default();
            let Ok(mine) = Region::<RaceShared<S::Slot>>::open(name, &opts) else {
                return i32::from(ChildExit::OpenFailed);
            };
            let slot = &mine.workers[index as usize].0;
            slot.id.store(shm::pid(), Ordering::Relaxed);
            // Its own mapping of the trace object, opened by name too.
            let tmap = match traced
                .map(|t| crate::trace::open(t.name, t.len))
                .transpose()
            {
                Ok(m) => m,
                Err(_) => return i32::from(ChildExit::OpenFailed),
            };
            let Ok(words) = tmap.as_ref().map(|m| m.words()).transpose() else {
                return i32::from(ChildExit::OpenFailed);
            };
            match worker_body(&mine, index, stepper, words) {
                Ok(()) => i32::from(ChildExit::Finished),
                Err(_) => {
                    slot.set_state(WorkerState::Failed);
                    i32::from(ChildExit::LockFailed)
                }
            }
        })?),
    }
    Ok(())
}

/// Waits for every worker to arrive, releases them, waits for them to
/// finish, watching for deaths.
fn coordinate<K: RegionLock>(
    cfg: &Config,
    region: &Region<RaceShared<K>>,
    crew: &mut Workers<'_>,
    progress: Progress<'_>,
) -> Result<(), RaceError> {
    let ctl = &region.control.0;
    let total = cfg.iters * cfg.workers as u64;
    if !ctl
        .gate
        .await_arrivals(cfg.workers, ARRIVAL_TIMEOUT, || check_alive(region, crew))?
    {
        let index = (0..cfg.workers)
            .find(|&i| region.workers[i as usize].0.state() == WorkerState::NotStarted)
            .unwrap_or(0);
        return Err(RaceError::NeverArrived {
            index,
            pid: worker_id(region, crew, index),
        });
    }
    release(ctl);
    let mut last_report = Instant::now();
    loop {
        check_alive(region, crew)?;
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

/// Worker `index`'s pid (a process) or the tid it recorded (a thread).
fn worker_id<K: RegionLock>(region: &Region<RaceShared<K>>, crew: &Workers<'_>, index: u32) -> i32 {
    crew.pid(index as usize)
        .unwrap_or_else(|| region.workers[index as usize].0.id.load(Ordering::Relaxed))
}

/// Fails if any worker has ended without finishing (a process that
/// exited early or was killed, a thread that stopped before "done").
fn check_alive<K: RegionLock>(
    region: &Region<RaceShared<K>>,
    crew: &mut Workers<'_>,
) -> Result<(), RaceError> {
    let done = |i: usize| region.workers[i].0.state() == WorkerState::Done;
    match crew.check(done) {
        Ok(_) => Ok(()),
        Err(f) => Err(RaceError::WorkerFailed {
            index: f.index as u32,
            pid: worker_id(region, crew, f.index as u32),
            how: ChildExit::describe_ended(&f.ended),
        }),
    }
}
