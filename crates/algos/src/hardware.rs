//! The locks built on an atomic read-modify-write instruction: test-and-set,
//! test-and-test-and-set, and the ticket lock (OSTEP chapter 28).
//!
//! On x86 `swap` is `xchg` and `fetch_add` is `lock xadd`: each reads and
//! writes in one indivisible step *and* is a full barrier, so no
//! interleaving and no store buffer can let two workers in. [`Fence::SeqCst`]
//! adds a fence after acquiring anyway, to show that it changes nothing.

use crate::{Aborted, Fence, MAX_WORKERS, MutexAlgorithm, Waiter};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering::*};

/// Test-and-set: `while (xchg(&locked, 1) == 1) ;`. Whoever's `swap` comes
/// first wins; nothing makes the waiters take turns, so the worker that just
/// released (and still has the cache line) often wins again.
#[derive(Clone, Copy, Debug)]
pub struct Tas {
    /// A fence after acquiring (no effect on correctness).
    pub fence: Fence,
}

/// Test-and-test-and-set: spin on a plain load while the lock is held
/// (which stays in the waiter's cache), and `swap` only when it looks free.
/// Same guarantees as [`Tas`], less traffic between caches.
#[derive(Clone, Copy, Debug)]
pub struct Ttas {
    /// A fence after acquiring (no effect on correctness).
    pub fence: Fence,
}

/// [`Tas`]'s and [`Ttas`]'s state.
#[derive(Debug, Default)]
#[repr(C)]
pub struct TasState {
    /// Non-zero while held, 0 when free: a byte, not an `AtomicBool`,
    /// since the state lies in shared memory where any process may store
    /// any byte (see [`shm::AnyBits`]).
    pub locked: AtomicU8,
}
shm::any_bits!(TasState { locked });

// SAFETY: one AtomicU8, zero = unlocked.
unsafe impl MutexAlgorithm for Tas {
    type State = TasState;
    const NAME: &'static str = "tas";
    const MAX_WORKERS: u32 = MAX_WORKERS;

    fn acquire(&self, s: &TasState, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        while s.locked.swap(1, Acquire) != 0 {
            // 1
            w.spin()?;
        }
        self.fence.store_load();
        Ok(())
    }

    fn release(&self, s: &TasState, _me: u32) {
        s.locked.store(0, Release); // 2
    }

    fn fence(&self) -> Fence {
        self.fence
    }
}

// SAFETY: one AtomicU8, zero = unlocked.
unsafe impl MutexAlgorithm for Ttas {
    type State = TasState;
    const NAME: &'static str = "ttas";
    const MAX_WORKERS: u32 = MAX_WORKERS;

    fn acquire(&self, s: &TasState, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        loop {
            while s.locked.load(Relaxed) != 0 {
                // 1
                w.spin()?;
            }
            if s.locked.swap(1, Acquire) == 0 {
                // 2
                break;
            }
        }
        self.fence.store_load();
        Ok(())
    }

    fn release(&self, s: &TasState, _me: u32) {
        s.locked.store(0, Release); // 3
    }

    fn fence(&self) -> Fence {
        self.fence
    }
}

/// The ticket lock: take a ticket with `fetch_add` and wait until it is
/// served. First come, first served: with every worker waiting, the lock
/// goes round them in order, which the race's fairness columns show.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    /// A fence after acquiring (no effect on correctness).
    pub fence: Fence,
}

/// [`Ticket`]'s state: the next ticket and the one being served, on
/// separate words.
#[derive(Debug, Default)]
#[repr(C)]
pub struct TicketState {
    /// The next ticket to hand out.
    pub next: AtomicU32,
    /// The ticket allowed in.
    pub serving: AtomicU32,
}
shm::any_bits!(TicketState { next, serving });

// SAFETY: two AtomicU32s, zero = no ticket out, ticket 0 served.
unsafe impl MutexAlgorithm for Ticket {
    type State = TicketState;
    const NAME: &'static str = "ticket";
    const MAX_WORKERS: u32 = MAX_WORKERS;

    fn acquire(&self, s: &TicketState, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        let mine = s.next.fetch_add(1, Relaxed); // 1
        while s.serving.load(Acquire) != mine {
            // 2
            w.spin()?;
        }
        self.fence.store_load();
        Ok(())
    }

    fn release(&self, s: &TicketState, _me: u32) {
        // Only the holder writes `serving`.
        let next = s.serving.load(Relaxed).wrapping_add(1);
        s.serving.store(next, Release); // 3
    }

    fn fence(&self) -> Fence {
        self.fence
    }
}
