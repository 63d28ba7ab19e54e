//! Barriers in a region: everyone waits until all `n` have arrived.
//!
//! - [`PthreadBarrier`]: glibc's `pthread_barrier_t`, process-shared,
//!   initialised in place. `pthread_barrier_wait` has **no timeout**: a
//!   party that dies before arriving leaves the others waiting for good, so
//!   whoever uses it must be able to kill them (processes, not threads).
//! - [`FutexBarrier`]: shmlab's own, on a futex: a generation counter the
//!   last to arrive bumps and wakes everyone on. Its waiters look up every
//!   20 ms and leave when a `stop` word is raised, so it never hangs.

use crate::{PthreadError, sys};
use shm_futex::{futex_wait, futex_wake};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How often a futex-barrier waiter looks at `stop`.
const SLICE: Duration = Duration::from_millis(20);

/// A barrier in a region.
pub trait Barrier: Sync {
    /// Waits until all the parties have arrived; `false` if it gave up
    /// because `stop` was raised (the futex barrier only: a pthread barrier
    /// cannot be interrupted).
    fn wait(&self, stop: &AtomicU32) -> bool;
}

/// glibc's process-shared `pthread_barrier_t` where it lies.
#[repr(C)]
pub struct PthreadBarrier(UnsafeCell<libc::pthread_barrier_t>);
shm::any_bits!(PthreadBarrier { 0 });

// SAFETY: a process-shared pthread barrier is made to be used concurrently
// through its address from any thread of any process mapping it.
unsafe impl Sync for PthreadBarrier {}

impl std::fmt::Debug for PthreadBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PthreadBarrier")
    }
}

impl PthreadBarrier {
    /// `pthread_barrier_init` with `PTHREAD_PROCESS_SHARED` for `n` parties,
    /// in place.
    ///
    /// # Safety
    /// `this` points to zeroed, aligned memory in a shared mapping that
    /// nobody uses yet and that will not move.
    pub unsafe fn init(this: *mut Self, n: u32) -> Result<(), PthreadError> {
        // SAFETY: repr(C) over an UnsafeCell of the barrier: the cast
        // addresses the barrier itself; the caller upholds the rest.
        unsafe { sys::barrier_init(UnsafeCell::raw_get(&raw mut (*this).0), n) }
            .map_err(PthreadError::from)
    }
}

impl Barrier for PthreadBarrier {
    /// `pthread_barrier_wait`: returns when all have arrived; `stop` cannot
    /// be seen while waiting (there is no timed wait).
    fn wait(&self, _stop: &AtomicU32) -> bool {
        let rc = sys::barrier_wait(&self.0);
        rc == 0 || rc == libc::PTHREAD_BARRIER_SERIAL_THREAD
    }
}

/// shmlab's barrier on a futex, for `n` parties (set by [`init`](Self::init)).
#[derive(Debug, Default)]
#[repr(C)]
pub struct FutexBarrier {
    parties: AtomicU32,
    arrived: AtomicU32,
    generation: AtomicU32,
}
shm::any_bits!(FutexBarrier {
    parties,
    arrived,
    generation
});

impl FutexBarrier {
    /// Sets the number of parties, in place.
    ///
    /// # Safety
    /// `this` points to aligned memory for `Self` that nobody uses yet.
    pub unsafe fn init(this: *mut Self, n: u32) {
        // SAFETY: per the caller's contract; writing a fresh value over
        // zeroes drops nothing.
        unsafe {
            this.write(FutexBarrier {
                parties: AtomicU32::new(n),
                ..FutexBarrier::default()
            })
        };
    }
}

impl FutexBarrier {
    /// Wakes every waiter at once (after raising `stop`, so they leave now
    /// rather than at their next look).
    pub fn wake_all(&self) {
        futex_wake(&self.generation, i32::MAX);
    }
}

impl Barrier for FutexBarrier {
    /// The last to arrive resets the count, then bumps the generation
    /// (`Release`) and wakes all; the others sleep on the generation until it
    /// changes, looking at `stop` every 20 ms.
    fn wait(&self, stop: &AtomicU32) -> bool {
        let n = self.parties.load(Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            futex_wake(&self.generation, i32::MAX);
            return true;
        }
        while self.generation.load(Ordering::Acquire) == generation {
            if stop.load(Ordering::Acquire) != 0 {
                return false;
            }
            futex_wait(&self.generation, generation, Some(SLICE));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Every party passes every round together: nobody starts round r + 1
    /// before all have finished round r.
    fn rounds_stay_together(b: &(impl Barrier + ?Sized), parties: u32) {
        let stop = AtomicU32::new(0);
        let done = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..parties {
                s.spawn(|| {
                    for r in 1..=200u64 {
                        assert!(b.wait(&stop));
                        let before = done.fetch_add(1, Ordering::AcqRel);
                        // All of round r - 1 is counted before anyone enters r.
                        assert!(before >= (r - 1) * u64::from(parties), "round {r}");
                        assert!(b.wait(&stop));
                    }
                });
            }
        });
        assert_eq!(done.load(Ordering::Relaxed), 200 * u64::from(parties));
    }

    #[test]
    fn futex_barrier_keeps_rounds_together_and_stops() {
        let mut b = std::mem::MaybeUninit::<FutexBarrier>::zeroed();
        // SAFETY: local, aligned, unshared storage.
        unsafe { FutexBarrier::init(b.as_mut_ptr(), 3) };
        // SAFETY: initialised just above.
        let b = unsafe { b.assume_init() };
        rounds_stay_together(&b, 3);
        let stop = AtomicU32::new(1);
        assert!(!b.wait(&stop), "a lone waiter leaves when stopped");
    }

    #[test]
    fn pthread_barrier_keeps_rounds_together() {
        let b = Box::new(std::mem::MaybeUninit::<PthreadBarrier>::zeroed());
        let p = Box::into_raw(b).cast::<PthreadBarrier>();
        // SAFETY: boxed, aligned, unshared storage that does not move.
        unsafe { PthreadBarrier::init(p, 3) }.unwrap();
        // SAFETY: initialised above; freed below, after every thread is done.
        let b = unsafe { &*p };
        rounds_stay_together(b, 3);
        // SAFETY: from Box::into_raw above; no reference is used after this.
        drop(unsafe { Box::from_raw(p) });
    }
}
