//! The store-buffering litmus test itself: the region, one side's loop, the
//! CPUs the sides run on, and the two ways of starting the sides (forked
//! processes that open the region by name, or threads of this process).
//!
//! ```text
//!   side 0              side 1
//!   x = 1               y = 1
//!   [fence]             [fence]
//!   r1 = y              r2 = x
//! ```
//!
//! **One run** is: a two-sided barrier (each side publishes the number of
//! the barrier it reached in its own word and spins until the other's word
//! reaches it too), the store, the optional fence, the load, a second
//! barrier after which side 0 reads side 1's result and tallies the
//! outcome, and each side resetting its own variable to 0. The reset is
//! ordered before the next run's first barrier (a `Release` store that the
//! other side reads with `Acquire`), and each load before the other side's
//! reset, so every run starts from `x = y = 0` and reads only its own
//! run's stores.
//!
//! The store and the load are `Relaxed` atomics: the program has no data
//! race (no undefined behaviour), yet nothing in the memory model orders a
//! store before a later load of *another* address, and on x86 the CPU's
//! store buffer does exactly that. [`Fence::SeqCst`] puts
//! `fence(Ordering::SeqCst)` (`mfence` on x86) between them; two `SeqCst`
//! fences forbid `r1 = r2 = 0`.

use super::Placement;
use nix::sched::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
use nix::unistd::Pid;
use race::{ChildExit, WorkerKind, WorkerState};
use shm::process::Crew;
use shm::{CachePadded, InitCtx, Region, RegionOptions, Shared, ShmName};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

shm::code_enum! {
    /// What sits between a side's store and its load (kept in the region).
    pub enum Fence: u32 {
        /// Nothing: the store may wait in the store buffer while the load
        /// goes ahead.
        None = 0,
        /// `fence(SeqCst)` (`mfence` on x86): the store buffer drains
        /// before the load.
        SeqCst = 1,
    }
}

impl Fence {
    /// The name `--fence` takes and the JSON prints.
    pub fn name(self) -> &'static str {
        match self {
            Fence::None => "none",
            Fence::SeqCst => "seqcst",
        }
    }
}

impl serde::Serialize for Fence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The most runs one configuration may ask for.
pub const MAX_RUNS: u64 = 1_000_000_000;
/// A CPU number meaning "none": not asked to pin, or not known.
const NO_CPU: i32 = -1;
/// The pin result meaning "pinned as asked" (otherwise an errno).
const PINNED: i32 = 0;

/// One side's word pair and what it reports about itself. The barrier word
/// and the result share a line: side 0 reads both with one transfer.
#[derive(Debug, Default)]
#[repr(C)]
struct Side {
    /// The last barrier this side reached (two per run).
    barrier: AtomicU64,
    /// What this side's load returned in the current run (0 or 1).
    result: AtomicU32,
    /// A [`WorkerState`]: `Arrived` once pinned and running its runs,
    /// `Done` after the last (side 0 has written the counts), `Failed` when
    /// told to stop.
    state: AtomicU32,
    /// The pid (processes) or tid (threads).
    id: AtomicI32,
    /// The CPU it was asked to run on, or [`NO_CPU`].
    cpu_asked: AtomicI32,
    /// [`PINNED`], or the errno `sched_setaffinity` failed with.
    pin: AtomicI32,
    /// The CPU it ran on at its first run (`sched_getcpu`), or [`NO_CPU`].
    cpu_seen: AtomicI32,
}
shm::any_bits!(Side {
    barrier,
    result,
    state,
    id,
    cpu_asked,
    pin,
    cpu_seen,
});

impl Side {
    fn state(&self) -> WorkerState {
        WorkerState::try_from(self.state.load(Ordering::Acquire)).unwrap_or(WorkerState::NotStarted)
    }

    fn set_state(&self, state: WorkerState) {
        self.state.store(state.into(), Ordering::Release);
    }
}

/// The region's payload: the two variables on their own lines, one slot per
/// side, and what the coordinator tells the sides and reads back.
#[derive(Debug)]
#[repr(C)]
pub(super) struct Litmus {
    x: CachePadded<AtomicU32>,
    y: CachePadded<AtomicU32>,
    sides: [CachePadded<Side>; 2],
    /// Runs to do.
    runs: AtomicU64,
    /// A [`Fence`].
    fence: AtomicU32,
    /// Non-zero: stop now (set by the coordinator when a side died).
    abort: AtomicU32,
    /// How long a side spins on the barrier before it yields its CPU.
    spins: AtomicU32,
    /// The outcome counts, indexed by [`outcome_index`]; side 0 writes them
    /// before it publishes `Done`.
    counts: [AtomicU64; 4],
    /// Side 0's time from its first barrier to its last.
    elapsed_ns: AtomicU64,
}
shm::any_bits!(Litmus {
    x,
    y,
    sides,
    runs,
    fence,
    abort,
    spins,
    counts,
    elapsed_ns,
});

/// What the creator writes into a fresh region.
#[derive(Clone, Copy, Debug)]
pub(super) struct Setup {
    runs: u64,
    fence: Fence,
    cpus: [Option<usize>; 2],
    spins: u32,
}

// SAFETY: repr(C), atomics only (all valid zeroed), no pointers; nothing is
// made outside the region, so the default `destroy` is right.
unsafe impl Shared for Litmus {
    type Init = Setup;

    fn type_name() -> String {
        "lab10/store-buffering".into()
    }

    unsafe fn init_in_place(this: *mut Self, s: Setup, _: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: `this` is zeroed, aligned and ours alone (trait contract),
        // and a zeroed `Litmus` is a valid one, so a shared reference is fine.
        let l = unsafe { &*this };
        l.runs.store(s.runs, Ordering::Relaxed);
        l.fence.store(s.fence.into(), Ordering::Relaxed);
        l.spins.store(s.spins, Ordering::Relaxed);
        for (side, cpu) in l.sides.iter().zip(s.cpus) {
            let asked = cpu.map_or(NO_CPU, |c| c as i32);
            side.cpu_asked.store(asked, Ordering::Relaxed);
            side.cpu_seen.store(NO_CPU, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// `(r1, r2)` → the slot of [`Litmus::counts`]: `(0,0)`, `(1,0)`, `(0,1)`,
/// `(1,1)` in that order.
pub(super) fn outcome_index(r1: u32, r2: u32) -> usize {
    (r1 + 2 * r2) as usize
}

/// The side stopped because it was told to.
struct Stopped;

/// Waits until `peer` reaches barrier `k`: spins `spins` times, then gives
/// the CPU away once and checks for an abort. When both sides share one
/// CPU, the peer can only get anywhere while this side does not run.
#[inline]
fn wait_for(peer: &AtomicU64, k: u64, l: &Litmus, spins: u32) -> Result<(), Stopped> {
    let mut n = 0;
    while peer.load(Ordering::Acquire) < k {
        n += 1;
        if n < spins {
            std::hint::spin_loop();
            continue;
        }
        n = 0;
        if l.abort.load(Ordering::Relaxed) != 0 {
            return Err(Stopped);
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// Side `me`'s runs, with the fence compiled in or out.
fn runs<const FENCED: bool>(l: &Litmus, me: usize) -> Result<[u64; 4], Stopped> {
    let (mine, theirs) = if me == 0 { (&l.x, &l.y) } else { (&l.y, &l.x) };
    let (slot, peer) = (&l.sides[me], &l.sides[1 - me]);
    let spins = l.spins.load(Ordering::Relaxed).max(1);
    let mut counts = [0u64; 4];
    for run in 0..l.runs.load(Ordering::Relaxed) {
        let start = 2 * run + 1;
        slot.barrier.store(start, Ordering::Release);
        wait_for(&peer.barrier, start, l, spins)?;

        mine.store(1, Ordering::Relaxed);
        if FENCED {
            fence(Ordering::SeqCst);
        }
        let r = theirs.load(Ordering::Relaxed);

        slot.result.store(r, Ordering::Relaxed);
        slot.barrier.store(start + 1, Ordering::Release);
        wait_for(&peer.barrier, start + 1, l, spins)?;
        if me == 0 {
            counts[outcome_index(r, peer.result.load(Ordering::Relaxed))] += 1;
        }
        mine.store(0, Ordering::Relaxed);
    }
    Ok(counts)
}

/// One side, in a process or a thread: pins itself, does every run, and
/// (side 0) writes the counts.
fn side(l: &Litmus, me: usize, id: i32) -> Result<(), Stopped> {
    let slot = &l.sides[me];
    slot.id.store(id, Ordering::Relaxed);
    let asked = slot.cpu_asked.load(Ordering::Relaxed);
    if asked != NO_CPU {
        slot.pin.store(pin_to(asked as usize), Ordering::Relaxed);
    }
    let seen = sched_getcpu().map_or(NO_CPU, |c| c as i32);
    slot.cpu_seen.store(seen, Ordering::Relaxed);
    slot.set_state(WorkerState::Arrived);
    let t0 = Instant::now();
    let done = match Fence::try_from(l.fence.load(Ordering::Relaxed)) {
        Ok(Fence::SeqCst) => runs::<true>(l, me),
        _ => runs::<false>(l, me),
    };
    let Ok(counts) = done else {
        slot.set_state(WorkerState::Failed);
        return Err(Stopped);
    };
    if me == 0 {
        for (c, n) in l.counts.iter().zip(counts) {
            c.store(n, Ordering::Relaxed);
        }
        l.elapsed_ns
            .store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    slot.set_state(WorkerState::Done);
    Ok(())
}

/// Pins the calling thread to `cpu`: [`PINNED`] or the errno.
fn pin_to(cpu: usize) -> i32 {
    let mut set = CpuSet::new();
    let pinned = set
        .set(cpu)
        .and_then(|()| sched_setaffinity(Pid::from_raw(0), &set));
    match pinned {
        Ok(()) => PINNED,
        Err(e) => e as i32,
    }
}

/// The CPUs this process may run on, lowest first.
pub(super) fn allowed_cpus() -> nix::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Where the sides are asked to run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// Side 0's and side 1's CPU, or `None`: leave it to the scheduler.
    pub cpus: [Option<usize>; 2],
    /// Said in the report when the plan is not what was asked for.
    pub note: Option<String>,
}

/// Two different CPUs unless `placement` asks for one or only one is
/// allowed; no pinning if the allowed set cannot be read.
pub(super) fn plan(placement: Placement, allowed: nix::Result<Vec<usize>>) -> Plan {
    let cpus = match allowed {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            return Plan {
                cpus: [None; 2],
                note: Some("the allowed CPU set is empty; the sides are not pinned".into()),
            };
        }
        Err(e) => {
            return Plan {
                cpus: [None; 2],
                note: Some(format!(
                    "cannot read the allowed CPUs (sched_getaffinity: {e}); the sides are not pinned"
                )),
            };
        }
    };
    match (placement, cpus.as_slice()) {
        (Placement::TwoCpus, &[a, b, ..]) => Plan {
            cpus: [Some(a), Some(b)],
            note: None,
        },
        (Placement::TwoCpus, &[a]) => Plan {
            cpus: [Some(a); 2],
            note: Some(format!(
                "only CPU {a} is allowed here, so both sides share it (as with --same-cpu)"
            )),
        },
        (_, &[a, ..]) => Plan {
            cpus: [Some(a); 2],
            note: None,
        },
        (_, []) => unreachable!("checked non-empty above"),
    }
}

/// What one side reported about where it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placed {
    /// Its pid (processes) or tid (threads).
    pub id: i32,
    /// The CPU it was asked to run on.
    pub asked: Option<usize>,
    /// `Err(errno)` if pinning was refused.
    pub pinned: Result<(), nix::errno::Errno>,
    /// The CPU it was on when its runs began.
    pub seen: Option<usize>,
}

/// One configuration's result.
#[derive(Clone, Debug)]
pub(super) struct Outcome {
    /// Runs per outcome, `(0,0)`, `(1,0)`, `(0,1)`, `(1,1)`.
    pub counts: [u64; 4],
    /// Side 0's time for all the runs.
    pub elapsed_ns: u64,
    /// Where each side ran.
    pub sides: [Placed; 2],
}

/// One configuration to run.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    /// Processes or threads.
    pub kind: WorkerKind,
    /// The fence between store and load.
    pub fence: Fence,
    /// Runs.
    pub runs: u64,
    /// The sides' CPUs.
    pub cpus: [Option<usize>; 2],
}

/// How long the barrier spins before yielding: at once when the two sides
/// share a CPU (the other side cannot move while this one spins), after a
/// while otherwise (so a busy machine still makes progress).
fn spins_for(cpus: [Option<usize>; 2]) -> u32 {
    match cpus {
        [Some(a), Some(b)] if a == b => 1,
        _ => 4096,
    }
}

/// The two sides: processes, or threads in the run's scope.
type Sides<'s> = Crew<std::thread::ScopedJoinHandle<'s, ()>>;

/// Runs `job`: creates the region, starts the two sides, waits for both
/// (stopping the other if one dies), and reads the counts.
pub(super) fn run(job: &Job) -> anyhow::Result<Outcome> {
    let name = ShmName::unique("lab10-litmus");
    let setup = Setup {
        runs: job.runs,
        fence: job.fence,
        cpus: job.cpus,
        spins: spins_for(job.cpus),
    };
    let region = Region::<Litmus>::create(&name, &RegionOptions::default(), setup)?;
    let l: &Litmus = &region;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut sides = Sides::new();
        let started = (0..2).try_for_each(|me| start(&mut sides, job.kind, l, &name, me, scope));
        let outcome = started.and_then(|()| supervise(l, &mut sides));
        if outcome.is_err() {
            l.abort.store(1, Ordering::Release);
        }
        // A process that has not ended a second after the abort is killed;
        // threads are joined when the scope ends.
        sides.stop(Duration::from_secs(1));
        outcome
    })?;
    let placed = |s: &Side| {
        let cpu = |v: i32| usize::try_from(v).ok();
        let pin = s.pin.load(Ordering::Relaxed);
        Placed {
            id: s.id.load(Ordering::Relaxed),
            asked: cpu(s.cpu_asked.load(Ordering::Relaxed)),
            pinned: if pin == PINNED {
                Ok(())
            } else {
                Err(nix::errno::Errno::from_raw(pin))
            },
            seen: cpu(s.cpu_seen.load(Ordering::Relaxed)),
        }
    };
    Ok(Outcome {
        counts: std::array::from_fn(|i| l.counts[i].load(Ordering::Relaxed)),
        elapsed_ns: l.elapsed_ns.load(Ordering::Relaxed),
        sides: [placed(&l.sides[0]), placed(&l.sides[1])],
    })
}

/// Starts side `me`: a thread on this mapping, or a child process that
/// opens the region by name ([`shm::process::fork_child`]; forked from
/// the thread that reaps it, and killed if that thread dies, so a lab
/// killed mid-run leaves no side spinning on).
fn start<'s>(
    sides: &mut Sides<'s>,
    kind: WorkerKind,
    l: &'s Litmus,
    name: &ShmName,
    me: usize,
    scope: &'s std::thread::Scope<'s, '_>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    match kind {
        WorkerKind::Threads => std::thread::Builder::new()
            .name(format!("litmus-side-{me}"))
            .spawn_scoped(scope, move || {
                let _ = side(l, me, shm::gettid());
            })
            .map(|h| sides.push_thread(h))
            .with_context(|| format!("starting side {me}'s thread")),
        WorkerKind::Procs => {
            let body = || {
                let Ok(mine) = Region::<Litmus>::open(name, &RegionOptions::default()) else {
                    return ChildExit::OpenFailed.into();
                };
                match side(&mine, me, shm::pid()) {
                    Ok(()) => ChildExit::Finished.into(),
                    Err(Stopped) => ChildExit::Aborted.into(),
                }
            };
            // SAFETY: the child opens the region by name and uses only its
            // atomics, `sched_setaffinity` and `sched_getcpu`. It takes no
            // lock another thread could hold: with processes the lab's only
            // other thread is the signal thread, which holds none across a
            // fork (side threads exist only with --threads, which forks
            // nothing). It uses nothing the parent owns: its own `Region`
            // handle is an opener's, which does not unlink.
            let child = unsafe { shm::process::fork_child(body) }
                .with_context(|| format!("forking side {me}"))?;
            sides.push_process(child);
            Ok(())
        }
    }
}

/// Waits for both sides to finish; an error if one ends any other way.
fn supervise(l: &Litmus, sides: &mut Sides<'_>) -> anyhow::Result<()> {
    let done = |me: usize| l.sides[me].state() == WorkerState::Done;
    loop {
        match sides.check(done) {
            Ok(true) => return Ok(()),
            Ok(false) => std::thread::sleep(Duration::from_millis(2)),
            Err(f) => {
                let id = l.sides[f.index].id.load(Ordering::Relaxed);
                let how = ChildExit::describe_ended(&f.ended);
                anyhow::bail!(
                    "side {} (id {id}) {how}; the other side was stopped",
                    f.index
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_in_table_order() {
        assert_eq!(outcome_index(0, 0), 0);
        assert_eq!(outcome_index(1, 0), 1);
        assert_eq!(outcome_index(0, 1), 2);
        assert_eq!(outcome_index(1, 1), 3);
    }

    #[test]
    fn plans_follow_the_allowed_cpus() {
        let two = plan(Placement::TwoCpus, Ok(vec![2, 5, 7]));
        assert_eq!(two.cpus, [Some(2), Some(5)]);
        assert!(two.note.is_none());
        let same = plan(Placement::SameCpu, Ok(vec![2, 5]));
        assert_eq!(same.cpus, [Some(2), Some(2)]);
        let one = plan(Placement::TwoCpus, Ok(vec![3]));
        assert_eq!(one.cpus, [Some(3), Some(3)]);
        assert!(one.note.unwrap().contains("only CPU 3"));
        let unknown = plan(Placement::TwoCpus, Err(nix::errno::Errno::EPERM));
        assert_eq!(unknown.cpus, [None, None]);
        assert!(unknown.note.unwrap().contains("not pinned"));
    }

    #[test]
    fn spins_yield_at_once_on_one_cpu() {
        assert_eq!(spins_for([Some(1), Some(1)]), 1);
        assert!(spins_for([Some(0), Some(1)]) > 1);
        assert!(spins_for([None, None]) > 1);
    }

    /// The thread harness end to end, small: the counts add up, and with
    /// the fence the forbidden outcome never shows.
    #[test]
    fn fenced_threads_never_see_both_zero() {
        let plan = plan(Placement::TwoCpus, allowed_cpus());
        let job = Job {
            kind: WorkerKind::Threads,
            fence: Fence::SeqCst,
            runs: 20_000,
            cpus: plan.cpus,
        };
        let out = run(&job).unwrap();
        assert_eq!(out.counts.iter().sum::<u64>(), 20_000);
        assert_eq!(out.counts[0], 0, "{:?}", out.counts);
    }
}
