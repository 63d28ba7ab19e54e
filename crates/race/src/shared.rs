//! What the race keeps in its shared region.

use shm::lock::{LockState, RawLock};
use shm::{CachePadded, InitCtx, Shared};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Most workers one race can have (the region holds one slot each).
pub const MAX_WORKERS: u32 = 128;

/// What kind of lock state the region holds.
///
/// # Safety
/// `State` must satisfy [`Shared`]'s layout rules: `#[repr(C)]`, no
/// pointers, valid when zeroed, interior-mutable.
pub unsafe trait RegionLock: Send + Sync + 'static {
    /// The state stored in the region ([`shm::AnyBits`]: a peer may write
    /// any bytes there).
    type State: Sync + shm::AnyBits;
    /// Name for the region's type tag.
    fn name() -> &'static str;
    /// Initialise in place (creator only).
    ///
    /// # Safety
    /// As [`RawLock::init`].
    unsafe fn init(state: *mut Self::State, ctx: &InitCtx<'_>) -> Result<(), String>;
    /// Release what `init` made.
    ///
    /// # Safety
    /// As [`RawLock::destroy`].
    unsafe fn destroy(state: &Self::State, ctx: &InitCtx<'_>);
    /// Every handle, before it unmaps the state ([`RawLock::before_unmap`],
    /// through [`Shared::before_unmap`]). Default: nothing.
    fn before_unmap(_state: &Self::State) {}
}

/// A region lock state for a [`RawLock`].
#[derive(Debug)]
pub struct ByLock<L>(PhantomData<L>);

// SAFETY: `LockState<L>` is `RawLock::State` (repr(transparent)), which the
// RawLock contract makes #[repr(C)], valid when zeroed and interior-mutable.
unsafe impl<L: RawLock + 'static> RegionLock for ByLock<L> {
    type State = LockState<L>;
    fn name() -> &'static str {
        L::NAME
    }
    unsafe fn init(state: *mut Self::State, ctx: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: forwarded from our caller's contract.
        unsafe { LockState::init(state, ctx) }.map_err(|e| e.to_string())
    }
    unsafe fn destroy(state: &Self::State, ctx: &InitCtx<'_>) {
        // SAFETY: forwarded from our caller's contract.
        unsafe { state.destroy(ctx) };
    }
    fn before_unmap(state: &Self::State) {
        state.before_unmap();
    }
}

/// No lock state in the region (modes `none`, `atomic`, and the thread-only
/// baselines whose lock lives in the coordinator's memory).
#[derive(Debug)]
pub struct NoLock;

// SAFETY: the state is a plain atomic.
unsafe impl RegionLock for NoLock {
    type State = AtomicU32;
    fn name() -> &'static str {
        "nolock"
    }
    unsafe fn init(_: *mut Self::State, _: &InitCtx<'_>) -> Result<(), String> {
        Ok(())
    }
    unsafe fn destroy(_: &Self::State, _: &InitCtx<'_>) {}
}

shm::code_enum! {
    /// A worker's state in its slot (`WorkerSlot::state`), written by the
    /// worker, read by the coordinator.
    pub enum WorkerState: u32 {
        /// Not started (the zeroed slot).
        NotStarted = 0,
        /// Attached and waiting at the start barrier.
        Arrived = 1,
        /// Finished every increment.
        Done = 2,
        /// Stopped on an error.
        Failed = 3,
    }
}

/// The start barrier and run control, on one line that is read-mostly once
/// the race runs.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Control {
    /// The start gate: workers that have attached count themselves in
    /// and sleep on it until the coordinator opens it (and records when).
    pub gate: shm_futex::Gate,
    /// Set by the coordinator to make workers stop early.
    pub abort: AtomicU32,
    /// Workers that have finished their increments.
    pub finished: AtomicU32,
    /// Iterations each worker does.
    pub iters: AtomicU64,
    /// The coordinator's pid and start time: a worker waiting at the
    /// barrier gives up when the coordinator has died (else a coordinator
    /// killed before the start would leave its workers waiting forever).
    pub coordinator_pid: AtomicI32,
    /// See `coordinator_pid`.
    pub coordinator_start: AtomicU64,
}
shm::any_bits!(Control {
    gate,
    abort,
    finished,
    iters,
    coordinator_pid,
    coordinator_start
});

/// One worker's line: its progress and results.
#[derive(Debug, Default)]
#[repr(C)]
pub struct WorkerSlot {
    /// pid (processes) or tid (threads).
    pub id: AtomicI32,
    /// A [`WorkerState`]; use [`state`](Self::state) and
    /// [`set_state`](Self::set_state).
    pub state: AtomicU32,
    /// Increments done so far (published every [`crate::PUBLISH_EVERY`]).
    pub done: AtomicU64,
    /// `CLOCK_MONOTONIC` ns when it finished.
    pub finish_ns: AtomicU64,
    /// Times it acquired the lock from an owner that had died.
    pub owner_deaths: AtomicU64,
    /// Everyone's `done` at the moment the first worker finished: the
    /// first finisher fills this in for every slot (its share of the lock
    /// while all were competing).
    pub done_at_first_finish: AtomicU64,
}
shm::any_bits!(WorkerSlot {
    id,
    state,
    done,
    finish_ns,
    owner_deaths,
    done_at_first_finish
});

impl WorkerSlot {
    /// The worker's state (`Acquire`: what the worker wrote before it is
    /// visible).
    pub fn state(&self) -> WorkerState {
        WorkerState::try_from(self.state.load(Ordering::Acquire)).unwrap_or(WorkerState::Failed)
    }

    /// Publishes the worker's state (`Release`).
    pub fn set_state(&self, s: WorkerState) {
        self.state.store(s.into(), Ordering::Release);
    }
}

/// The race's region payload: control, counter, lock state, worker slots,
/// each hot part on its own cache line.
#[repr(C)]
pub struct RaceShared<K: RegionLock> {
    /// Barrier and flags.
    pub control: CachePadded<Control>,
    /// Used by the crash experiment only.
    pub crash: CachePadded<CrashControl>,
    /// The counter everyone increments.
    pub counter: CachePadded<AtomicU64>,
    /// The lock's state (for modes that keep it in the region).
    pub lock: CachePadded<K::State>,
    /// One slot per worker.
    pub workers: [CachePadded<WorkerSlot>; MAX_WORKERS as usize],
}
shm::any_bits!([K: RegionLock] RaceShared<K> { control, crash, counter, lock, workers });

// SAFETY: #[repr(C)]; made of atomics and a `RegionLock::State` (which obeys
// the same rules); all-zero is a valid value of every field.
unsafe impl<K: RegionLock> Shared for RaceShared<K> {
    type Init = u64;

    fn type_name() -> String {
        format!("race/{}", K::name())
    }

    unsafe fn init_in_place(this: *mut Self, iters: u64, ctx: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: `this` is valid, aligned, zeroed and ours alone (the
        // trait's contract); we only touch fields through raw pointers and
        // atomics.
        unsafe {
            (*this).control.0.iters = AtomicU64::new(iters);
            let me = shm::pid();
            (*this).control.0.coordinator_pid = AtomicI32::new(me);
            (*this).control.0.coordinator_start =
                AtomicU64::new(shm::process::start_time(me).unwrap_or(0));
            let lock = &raw mut (*this).lock.0;
            K::init(lock, ctx)
        }
    }

    unsafe fn destroy(&self, ctx: &InitCtx<'_>) {
        // SAFETY: forwarded from our caller's contract (Shared::destroy).
        unsafe { K::destroy(&self.lock.0, ctx) };
    }

    fn before_unmap(&self) {
        K::before_unmap(&self.lock.0);
    }
}

impl<K: RegionLock> std::fmt::Debug for RaceShared<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaceShared")
            .field("lock", &K::name())
            .field("control", &self.control)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// What the crash experiment keeps beside the race's control line.
#[derive(Debug, Default)]
#[repr(C)]
pub struct CrashControl {
    /// `CLOCK_MONOTONIC` ns when the victim was killed.
    pub kill_ns: AtomicU64,
    /// `CLOCK_MONOTONIC` ns when a survivor first noticed (0: not yet).
    pub detect_ns: AtomicU64,
    /// A [`crate::crash::Outcome`]: 0 nothing noticed yet, then what the
    /// first survivor to notice found.
    pub outcome: AtomicU32,
    /// The dead holder's pid as a survivor saw it.
    pub holder: AtomicI32,
    /// The counter value the victim loaded inside its critical section
    /// (the increment that was in flight when it died).
    pub in_flight: AtomicU64,
    /// Increments the victim completed before it died.
    pub victim_done: AtomicU64,
    /// 1 once the victim is inside the critical section, holding the lock.
    pub victim_in_cs: AtomicU32,
}
shm::any_bits!(CrashControl {
    kill_ns,
    detect_ns,
    outcome,
    holder,
    in_flight,
    victim_done,
    victim_in_cs
});
