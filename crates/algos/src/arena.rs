//! What a race keeps in its shared region: the start barrier (the racing
//! counter's [`Control`]), the critical section's words, the lock's state
//! and a slot per worker, each on its own cache line.

use crate::{MAX_WORKERS, MutexAlgorithm};
use race::shared::{Control, WorkerSlot};
use shm::{CachePadded, InitCtx, Shared};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The words the critical section touches, on one line.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct CriticalSection {
    /// Workers inside right now: 1 while the lock works.
    pub(crate) occupancy: AtomicU32,
    /// 1 + the index of the worker that was inside last (0: nobody yet).
    pub(crate) last: AtomicU32,
    /// The counter every entry increments with C's `counter++`.
    pub(crate) counter: AtomicU64,
}
shm::any_bits!(CriticalSection {
    occupancy,
    last,
    counter
});

impl CriticalSection {
    /// The critical section of worker `me`: count itself in (a non-zero
    /// occupancy on entry is a violation: someone else is inside), note a
    /// hand-off from another worker, `counter++` as a separate load and
    /// store (relaxed: a real race without undefined behaviour), count
    /// itself out. Returns (violation, hand-off).
    #[inline(always)]
    pub(crate) fn enter(&self, me: u32) -> (bool, bool) {
        let violation = self.occupancy.fetch_add(1, Ordering::Acquire) != 0;
        let handoff = self.last.load(Ordering::Relaxed) != me + 1;
        if handoff {
            self.last.store(me + 1, Ordering::Relaxed);
        }
        let v = self.counter.load(Ordering::Relaxed);
        self.counter.store(v.wrapping_add(1), Ordering::Relaxed);
        self.occupancy.fetch_sub(1, Ordering::Release);
        (violation, handoff)
    }
}

/// One worker's line: the racing counter's slot (id, state, progress,
/// finish time, progress when the first worker finished) plus what this
/// race counts.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Slot {
    /// pid or tid, [`race::WorkerState`], entries done, timings.
    pub(crate) base: WorkerSlot,
    /// Entries that found someone else inside.
    pub(crate) violations: AtomicU64,
    /// Entries that followed another worker's.
    pub(crate) handoffs: AtomicU64,
}
shm::any_bits!(Slot {
    base,
    violations,
    handoffs
});

/// The region's payload.
#[repr(C)]
pub(crate) struct Arena<A: MutexAlgorithm> {
    /// Start barrier, abort flag, iterations.
    pub(crate) control: CachePadded<Control>,
    /// The critical section's words.
    pub(crate) cs: CachePadded<CriticalSection>,
    /// The algorithm's state (128-byte aligned, so also 64).
    pub(crate) lock: CachePadded<A::State>,
    /// One slot per worker.
    pub(crate) workers: [CachePadded<Slot>; MAX_WORKERS as usize],
}
shm::any_bits!([A: MutexAlgorithm] Arena<A> { control, cs, lock, workers });

// SAFETY: #[repr(C)], made of atomics and an `A::State`, which the
// `MutexAlgorithm` contract makes pointer-free, interior-mutable and valid
// when zeroed (and `AnyBits`, as is every field: checked above); all-zero is
// a valid value of every field.
unsafe impl<A: MutexAlgorithm> Shared for Arena<A> {
    type Init = u64;

    fn type_name() -> String {
        format!("algos/{}", A::NAME)
    }

    unsafe fn init_in_place(this: *mut Self, iters: u64, _: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: `this` is valid, aligned and ours alone (the trait's
        // contract); the field is an atomic, written through a shared
        // reference.
        unsafe { (*this).control.0.iters.store(iters, Ordering::Relaxed) };
        Ok(())
    }
}

impl<A: MutexAlgorithm> std::fmt::Debug for Arena<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("algorithm", &A::NAME)
            .field("control", &self.control)
            .field("cs", &self.cs)
            .finish_non_exhaustive()
    }
}
