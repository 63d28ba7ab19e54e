//! The coordinator: starts workers (forked processes that open the region
//! by name, or threads), releases them together, watches for deaths and
//! reaps them. The crash experiment starts, releases and reaps its workers
//! with the same functions.

use crate::report::summarise;
use crate::shared::{Control, RaceShared, RegionLock};
use crate::trace::{MAX_TRACED, RECORD_BYTES, TraceObject, TraceReport};
use crate::worker::{ChildExit, Stepper, WorkerState, worker_body};
use crate::{Config, Progress, RaceError, TrialResult, WorkerKind};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use shm::{Region, RegionOptions, ShmName};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the coordinator waits for every worker to reach the barrier.
pub(crate) const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// After a worker dies, how long the others get to stop before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// A worker the coordinator tracks.
enum Handle<'s> {
    /// A worker process; pid 0 once reaped.
    Proc(Pid),
    Thread(std::thread::ScopedJoinHandle<'s, Result<(), String>>),
}

/// Forks worker `index`, which runs `body` in its own process
/// ([`shm::process::fork_child`]; the child is registered for Ctrl-C
/// clean-up, and is killed if the coordinator dies: a coordinator killed
/// with SIGKILL in the middle of a run leaves no worker racing on, only its
/// region and semaphore for `shmlab clean`). Called from the thread that
/// reaps the workers, which the parent-death signal requires.
pub(crate) fn fork_worker(index: u32, body: impl FnOnce() -> i32) -> Result<Pid, RaceError> {
    // SAFETY: every worker body opens the region by name, works on it with
    // atomics and the lock, and returns a status: no lock that another of
    // the coordinator's threads could hold (the lab binaries' only other
    // threads are the signal and progress threads, which hold none across a
    // fork; see the crate docs on `sem_open`), and nothing the parent owns.
    unsafe { shm::process::fork_child(body) }
        .map(Pid::from_raw)
        .map_err(|source| RaceError::Spawn { index, source })
}

/// Releases the workers waiting at the start barrier.
pub(crate) fn release(ctl: &Control) {
    ctl.go_ns
        .store(shm::time::monotonic_ns(), Ordering::Relaxed);
    ctl.go.store(1, Ordering::Release);
    shm_futex::futex_wake(&ctl.go, i32::MAX);
}

/// Tells every worker to stop (including one still at the barrier).
pub(crate) fn abort(ctl: &Control) {
    ctl.abort.store(1, Ordering::Release);
    ctl.go.store(1, Ordering::Release);
    shm_futex::futex_wake(&ctl.go, i32::MAX);
}

/// Waits until `pid` exits, for at most until `deadline`; then SIGKILLs and
/// reaps it. Returns how it ended (`None` if it had to be killed, or could
/// not be waited for), and forgets it in [`shm::cleanup`].
pub(crate) fn reap_by(pid: Pid, deadline: Instant) -> Option<WaitStatus> {
    use nix::sys::signal::{Signal, kill};
    let status = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(WaitStatus::StillAlive) => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                break None;
            }
            Ok(s) => break Some(s),
            Err(_) => break None,
        }
    };
    shm::cleanup::unregister_child(pid.as_raw());
    status
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
        let mut handles = Vec::with_capacity(cfg.workers as usize);
        let outcome = (|| {
            for index in 0..cfg.workers {
                handles.push(spawn(
                    cfg.kind, &region, &name, index, stepper, traced, scope,
                )?);
            }
            coordinate(cfg, &region, &mut handles, progress)
        })();
        if outcome.is_err() {
            abort(&region.control.0);
        }
        reap(&mut handles);
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
    kind: WorkerKind,
    region: &'s Region<RaceShared<S::Slot>>,
    name: &ShmName,
    index: u32,
    stepper: &'s S,
    traced: Option<Traced<'s>>,
    scope: &'s std::thread::Scope<'s, 'e>,
) -> Result<Handle<'s>, RaceError> {
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
            Ok(Handle::Thread(h))
        }
        // The child: a separate process that maps the region by name.
        WorkerKind::Procs => fork_worker(index, || {
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
        })
        .map(Handle::Proc),
    }
}

/// Waits for every worker to arrive, releases them, waits for them to
/// finish, watching for deaths.
fn coordinate<K: RegionLock>(
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
                .find(|&i| region.workers[i as usize].0.state() == WorkerState::NotStarted)
                .unwrap_or(0);
            return Err(RaceError::NeverArrived {
                index,
                pid: handle_id(region, &handles[index as usize], index),
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    release(ctl);
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

fn handle_id<K: RegionLock>(region: &Region<RaceShared<K>>, h: &Handle<'_>, index: u32) -> i32 {
    match h {
        Handle::Proc(pid) => pid.as_raw(),
        Handle::Thread(_) => region.workers[index as usize].0.id.load(Ordering::Relaxed),
    }
}

/// Fails if any worker has exited abnormally (processes: `waitpid` with
/// `WNOHANG`; threads: finished without reaching "done").
fn check_alive<K: RegionLock>(
    region: &Region<RaceShared<K>>,
    handles: &mut [Handle<'_>],
) -> Result<(), RaceError> {
    for (index, h) in handles.iter_mut().enumerate() {
        let slot = &region.workers[index].0;
        let index = index as u32;
        match h {
            Handle::Proc(pid) => {
                let how = match waitpid(*pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => continue,
                    Ok(WaitStatus::Exited(_, 0)) => {
                        if slot.state() == WorkerState::Done {
                            // Reaped cleanly: remember that with a pid of 0.
                            shm::cleanup::unregister_child(pid.as_raw());
                            *h = Handle::Proc(Pid::from_raw(0));
                            continue;
                        }
                        "exited before finishing".to_string()
                    }
                    Ok(WaitStatus::Exited(_, code)) => match ChildExit::try_from(code).ok() {
                        Some(exit) => exit.describe().to_string(),
                        None => format!("exited with status {code}"),
                    },
                    Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
                    Ok(_) => continue,
                    Err(nix::errno::Errno::ECHILD) => continue, // already reaped (pid 0)
                    Err(e) => format!("could not be waited for: {e}"),
                };
                shm::cleanup::unregister_child(pid.as_raw());
                let p = pid.as_raw();
                *h = Handle::Proc(Pid::from_raw(0));
                return Err(RaceError::WorkerFailed { index, pid: p, how });
            }
            Handle::Thread(t) => {
                if t.is_finished() && slot.state() != WorkerState::Done {
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
    let deadline = Instant::now() + ABORT_GRACE;
    for h in handles.drain(..) {
        match h {
            Handle::Proc(pid) if pid.as_raw() > 0 => {
                reap_by(pid, deadline);
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
