//! What a worker runs: the increment for each kind of mode, the start
//! barrier and the loop, and the states and exit codes that a worker and its
//! coordinator agree on.

use crate::mode::LocalLock;
use crate::shared::{ByLock, NoLock, RaceShared, RegionLock, WorkerState};
use crate::trace::{NoRecord, Recorder, Tracer};
use shm::lock::{Acquired, Lock, RawLock};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

/// Workers publish their progress (and look at the abort flag) every this
/// many increments: often enough for a progress bar and fairness shares,
/// rare enough to stay off the hot path.
pub const PUBLISH_EVERY: u64 = 1024;

shm::code_enum! {
    /// How a forked worker process ends: its exit status, which the
    /// coordinator turns back into words.
    pub enum ChildExit: i32 {
        /// Finished.
        Finished = 0,
        /// Could not open the region by name.
        OpenFailed = 3,
        /// Taking (or attaching to) the lock failed.
        LockFailed = 4,
        /// Crash experiment: stopped at a lock it found wedged by a dead holder.
        WedgeDetected = 5,
        /// Stopped because the coordinator set the abort flag.
        Aborted = 6,
    }
}

impl ChildExit {
    /// How a worker that [`shm::process::Crew::check`] found ended early
    /// ended, in words: its status read back as a `ChildExit`, the signal
    /// that killed it, or a thread that stopped.
    pub fn describe_ended(ended: &shm::process::Ended) -> String {
        use shm::process::{Ended, Exit};
        match ended {
            Ended::Process(Exit::Code(0)) => "exited before finishing".into(),
            Ended::Process(Exit::Code(c)) => match ChildExit::try_from(*c) {
                Ok(exit) => exit.describe().into(),
                Err(_) => format!("exited with status {c}"),
            },
            Ended::Process(Exit::Signal(s)) => match nix::sys::signal::Signal::try_from(*s) {
                Ok(sig) => format!("was killed by {sig}"),
                Err(_) => format!("was killed by signal {s}"),
            },
            Ended::Thread { panicked: true } => "stopped before finishing (it panicked)".into(),
            Ended::Thread { panicked: false } => {
                "stopped before finishing (it failed taking the lock, or was aborted)".into()
            }
            Ended::Lost(e) => format!("could not be waited for: {e}"),
        }
    }

    /// What the status means, for the coordinator's report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::OpenFailed => "could not open the region by name",
            Self::LockFailed => "failed taking the lock",
            Self::WedgeDetected => "stopped at a wedged lock",
            Self::Aborted => "stopped by the coordinator's abort",
        }
    }
}

/// C's `counter++`: a separate load and store, with `hold` rounds of
/// [`hold`] between them (0: none, the bare increment). Relaxed atomics
/// make it a real race without undefined behaviour. Returns the value it
/// read.
#[inline(always)]
pub(crate) fn increment(counter: &AtomicU64, rounds: u32) -> u64 {
    let v = counter.load(Ordering::Relaxed);
    hold(rounds);
    counter.store(v.wrapping_add(1), Ordering::Relaxed);
    v
}

/// `rounds` rounds of [`std::hint::spin_loop`] (`pause` on x86_64, tens of
/// ns each, machine-dependent): extra work that lengthens a critical
/// section (`--hold`). 0 is one predictable branch. The trip count goes
/// through [`black_box`](std::hint::black_box), so the compiler can neither
/// count the loop away nor merge it; and the hint is an instruction with
/// side effects it keeps in place, between the load and the store around
/// it.
#[inline(always)]
pub(crate) fn hold(rounds: u32) {
    if rounds != 0 {
        for _ in 0..std::hint::black_box(rounds) {
            std::hint::spin_loop();
        }
    }
}

/// How a worker makes one increment under a mode. `attach` runs once per
/// worker (in its own process, for processes) and returns the step the hot
/// loop calls; it is generic, so each mode's loop is compiled and inlined on
/// its own.
pub(crate) trait Stepper: Sync {
    /// What the region holds for this mode's lock.
    type Slot: RegionLock;
    /// Builds this worker's step, which runs each increment through `rec`
    /// (nothing, or a trace record); the step says whether the lock came
    /// from a dead owner.
    fn attach<'r, R: Recorder + 'r>(
        &'r self,
        shared: &'r RaceShared<Self::Slot>,
        rec: R,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String>;
}

/// `none`: the unprotected `counter++`, `hold` rounds between its load and
/// store (a wider race window).
pub(crate) struct Unsync {
    pub(crate) hold: u32,
}
impl Stepper for Unsync {
    type Slot = NoLock;
    fn attach<'r, R: Recorder + 'r>(
        &'r self,
        shared: &'r RaceShared<NoLock>,
        mut rec: R,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let (counter, rounds) = (&shared.counter.0, self.hold);
        Ok(move || {
            rec.record(|| increment(counter, rounds));
            Ok(Acquired::Clean)
        })
    }
}

/// `atomic`: one `fetch_add`, then `hold` rounds: it has no critical
/// section to lengthen, so the hold is outside any.
pub(crate) struct FetchAdd {
    pub(crate) hold: u32,
}
impl Stepper for FetchAdd {
    type Slot = NoLock;
    fn attach<'r, R: Recorder + 'r>(
        &'r self,
        shared: &'r RaceShared<NoLock>,
        mut rec: R,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let (counter, rounds) = (&shared.counter.0, self.hold);
        Ok(move || {
            rec.record(|| {
                let v = counter.fetch_add(1, Ordering::Relaxed);
                hold(rounds);
                v
            });
            Ok(Acquired::Clean)
        })
    }
}

/// A [`RawLock`] whose state lives in the region; `hold` rounds inside it.
pub(crate) struct InRegion<L> {
    hold: u32,
    lock: PhantomData<fn() -> L>,
}
impl<L> InRegion<L> {
    pub(crate) fn new(hold: u32) -> Self {
        InRegion {
            hold,
            lock: PhantomData,
        }
    }
}
impl<L: RawLock + 'static> Stepper for InRegion<L> {
    type Slot = ByLock<L>;
    fn attach<'r, R: Recorder + 'r>(
        &'r self,
        shared: &'r RaceShared<ByLock<L>>,
        mut rec: R,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let lock = Lock::<L>::attach(&shared.lock.0).map_err(|e| e.to_string())?;
        let (counter, rounds) = (&shared.counter.0, self.hold);
        Ok(move || {
            let g = lock.lock().map_err(|e| e.to_string())?;
            rec.record(|| increment(counter, rounds));
            Ok(g.acquired())
        })
    }
}

/// A [`LocalLock`] in the coordinator's memory (threads only), and the
/// hold rounds inside it.
pub(crate) struct Local<M>(pub(crate) M, pub(crate) u32);
impl<M: LocalLock> Stepper for Local<M> {
    type Slot = NoLock;
    fn attach<'r, R: Recorder + 'r>(
        &'r self,
        shared: &'r RaceShared<NoLock>,
        mut rec: R,
    ) -> Result<impl FnMut() -> Result<Acquired, String> + 'r, String> {
        let (counter, rounds) = (&shared.counter.0, self.1);
        Ok(move || {
            self.0.with(|| rec.record(|| increment(counter, rounds)));
            Ok(Acquired::Clean)
        })
    }
}

/// Counts this worker in at the start gate and waits for it to open
/// ([`shm_futex::Gate`]: a short spin, then futex sleeps in 50 ms slices),
/// so an aborted run never leaves a worker asleep, and a worker whose
/// coordinator died before releasing it (killed, say) gives up instead of
/// waiting forever.
///
/// A worker *process* does not even get that far: it dies with its
/// coordinator at any point of the run, at the barrier or in the loop
/// ([`shm::process::fork_child`] asks the kernel for SIGKILL when the
/// parent dies), so the hot loop needs no check of its own. The liveness
/// check here is the gate's own guard, kept for a worker whose
/// coordinator is not its parent.
pub(crate) fn wait_for_go<K: RegionLock>(shared: &RaceShared<K>) -> Result<(), String> {
    let ctl = &shared.control.0;
    let coordinator_alive = || {
        let pid = ctl.coordinator_pid.load(Ordering::Relaxed);
        let start = ctl.coordinator_start.load(Ordering::Relaxed);
        !shm::process::liveness(pid, start).is_dead()
    };
    ctl.gate.arrive_and_wait(coordinator_alive).map_err(|_| {
        if ctl.abort.load(Ordering::Relaxed) != 0 {
            "aborted before the start".to_string()
        } else {
            "the coordinator died before the start".to_string()
        }
    })
}

/// Runs the worker loop: the stepper builds this worker's increment (it may
/// attach to the lock), then the loop runs `iters` steps; with `trace`
/// (the run's trace words), every increment is recorded in this worker's
/// part of it. The two loops are compiled apart, so an untraced run pays
/// nothing for tracing.
pub(crate) fn worker_body<S: Stepper>(
    shared: &RaceShared<S::Slot>,
    index: u32,
    stepper: &S,
    trace: Option<&[AtomicU64]>,
) -> Result<(), String> {
    let iters = shared.control.0.iters.load(Ordering::Relaxed);
    match trace {
        None => run_steps(shared, index, stepper.attach(shared, NoRecord)?),
        Some(words) => run_steps(
            shared,
            index,
            stepper.attach(shared, Tracer::new(words, index, iters))?,
        ),
    }
}

/// The start barrier and the loop of `worker_body`, for one kind of step.
fn run_steps<K: RegionLock>(
    shared: &RaceShared<K>,
    index: u32,
    mut step: impl FnMut() -> Result<Acquired, String>,
) -> Result<(), String> {
    let slot = &shared.workers[index as usize].0;
    let ctl = &shared.control.0;
    let iters = ctl.iters.load(Ordering::Relaxed);
    slot.set_state(WorkerState::Arrived);
    wait_for_go(shared)?;
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
    slot.finish_ns
        .store(shm::time::monotonic_ns(), Ordering::Relaxed);
    slot.owner_deaths.store(deaths, Ordering::Relaxed);
    // The first to finish records everyone's progress: their shares of the
    // lock while all were competing.
    if ctl.finished.fetch_add(1, Ordering::AcqRel) == 0 {
        for w in &shared.workers {
            w.0.done_at_first_finish
                .store(w.0.done.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
    slot.set_state(WorkerState::Done);
    Ok(())
}
