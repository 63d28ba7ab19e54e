//! The algorithms built from plain loads and stores: OSTEP's flag lock,
//! Peterson's, Dekker's and Lamport's bakery.
//!
//! Each is the textbook's code, line for line, with `Release` stores and
//! `Acquire` loads (plain `mov`s on x86), plus [`Fence::store_load`] where a
//! store of the worker's own flag is followed by a load of another's: with
//! [`Fence::None`] that is nothing, with [`Fence::SeqCst`] it is `mfence`.
//! The line numbers in the comments are the ones
//! [`Algo::pseudocode`](crate::Algo::pseudocode) prints.

use crate::{Aborted, Fence, MAX_WORKERS, MutexAlgorithm, Waiter};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::*};

/// OSTEP's first attempt (chapter 28, figure 28.1): test a flag, then set
/// it. Broken by interleaving alone: two workers can both test the flag
/// (line 1) before either sets it (line 2). A fence cannot help: it is
/// placed after the store, and the window is between the load and the
/// store.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Where the fence goes: after the store of line 2.
    pub fence: Fence,
}

/// [`Flag`]'s state: one word, 0 = free.
#[derive(Debug, Default)]
#[repr(C)]
pub struct FlagState {
    /// 1 while someone holds the lock.
    pub flag: AtomicU32,
}
shm::any_bits!(FlagState { flag });

// SAFETY: one AtomicU32, zero = free.
unsafe impl MutexAlgorithm for Flag {
    type State = FlagState;
    const NAME: &'static str = "flag";
    const MAX_WORKERS: u32 = MAX_WORKERS;

    fn acquire(&self, s: &FlagState, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        while s.flag.load(Acquire) == 1 {
            // 1: test
            w.spin()?;
        }
        s.flag.store(1, Release); // 2: set
        self.fence.store_load(); // 3
        Ok(())
    }

    fn release(&self, s: &FlagState, _me: u32) {
        s.flag.store(0, Release); // 4
    }

    fn fence(&self) -> Fence {
        self.fence
    }
}

/// Peterson's algorithm for two workers (OSTEP figure 28.2's `flag` and
/// `turn`). Correct under sequential consistency; on x86 the store of
/// `flag[me]` (line 1) can still sit in the store buffer when the load of
/// `flag[other]` (line 4) runs, unless the fence of line 3 is `mfence`.
#[derive(Clone, Copy, Debug)]
pub struct Peterson {
    /// What line 3 is.
    pub fence: Fence,
}

/// [`Peterson`]'s and [`Dekker`]'s state: a flag per worker and a turn.
///
/// The flags are bytes read as `!= 0`, not `AtomicBool`s: the state lies in
/// shared memory, where any process may store any byte (see
/// [`shm::AnyBits`]).
#[derive(Debug, Default)]
#[repr(C)]
pub struct FlagsAndTurn {
    /// `flag[i]`: worker i wants to enter (non-zero) or not (0).
    pub flag: [AtomicU8; 2],
    /// Peterson: the worker that yields if both want in; Dekker: the worker
    /// that may insist.
    pub turn: AtomicU32,
}
shm::any_bits!(FlagsAndTurn { flag, turn });

// SAFETY: atomics only; all-zero = nobody wants in.
unsafe impl MutexAlgorithm for Peterson {
    type State = FlagsAndTurn;
    const NAME: &'static str = "peterson";
    const MAX_WORKERS: u32 = 2;

    fn acquire(&self, s: &FlagsAndTurn, me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        let other = 1 - me;
        s.flag[me as usize].store(1, Release); // 1
        s.turn.store(other, Release); // 2
        self.fence.store_load(); // 3
        while s.flag[other as usize].load(Acquire) != 0 && s.turn.load(Acquire) == other {
            // 4
            w.spin()?;
        }
        Ok(())
    }

    fn release(&self, s: &FlagsAndTurn, me: u32) {
        s.flag[me as usize].store(0, Release); // 5
    }

    fn fence(&self) -> Fence {
        self.fence
    }
}

/// Dekker's algorithm for two workers, the first correct software solution
/// (as Dijkstra gave it): raise your flag; while the other's is up, if it
/// is not your turn, lower yours, wait for your turn and raise it again.
/// Every raise of the own flag (lines 1 and 7) is followed by a load of the
/// other's (line 3), so it needs a fence after each.
#[derive(Clone, Copy, Debug)]
pub struct Dekker {
    /// What lines 2 and 8 are.
    pub fence: Fence,
}

// SAFETY: atomics only; all-zero = nobody wants in, worker 0's turn.
unsafe impl MutexAlgorithm for Dekker {
    type State = FlagsAndTurn;
    const NAME: &'static str = "dekker";
    const MAX_WORKERS: u32 = 2;

    fn acquire(&self, s: &FlagsAndTurn, me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        let (mine, theirs) = (&s.flag[me as usize], &s.flag[1 - me as usize]);
        mine.store(1, Release); // 1
        self.fence.store_load(); // 2
        while theirs.load(Acquire) != 0 {
            // 3
            if s.turn.load(Acquire) != me {
                // 4
                mine.store(0, Release); // 5
                while s.turn.load(Acquire) != me {
                    // 6
                    w.spin()?;
                }
                mine.store(1, Release); // 7
                self.fence.store_load(); // 8
            } else {
                w.spin()?;
            }
        }
        Ok(())
    }

    fn release(&self, s: &FlagsAndTurn, me: u32) {
        s.turn.store(1 - me, Release); // 9
        s.flag[me as usize].store(0, Release); // 10
    }

    fn fence(&self) -> Fence {
        self.fence
    }
}

/// Lamport's bakery algorithm for N workers: take a number one higher than
/// every number you see, then wait for everyone holding a smaller one (ties
/// broken by index). Two store→load windows: the `choosing` flag (line 1)
/// must be visible before the numbers are read (line 3), and the number
/// (lines 3 and 4) before the others' are read (lines 7 and 8).
#[derive(Clone, Copy, Debug)]
pub struct Bakery {
    /// What lines 2 and 5 are.
    pub fence: Fence,
}

/// [`Bakery`]'s state: a `choosing` flag and a number per worker.
#[derive(Debug)]
#[repr(C)]
pub struct BakeryState {
    /// Workers taking part (set by `init`).
    pub workers: AtomicU32,
    /// `choosing[i]`: worker i is picking its number (non-zero) or not
    /// (0); a byte, not an `AtomicBool` (see [`FlagsAndTurn`]).
    pub choosing: [AtomicU8; MAX_WORKERS as usize],
    /// `number[i]`: worker i's ticket; 0 = not waiting.
    pub number: [AtomicU64; MAX_WORKERS as usize],
}
shm::any_bits!(BakeryState {
    workers,
    choosing,
    number
});

// SAFETY: atomics only; all-zero = nobody choosing or waiting.
unsafe impl MutexAlgorithm for Bakery {
    type State = BakeryState;
    const NAME: &'static str = "bakery";
    const MAX_WORKERS: u32 = MAX_WORKERS;

    fn init(&self, s: &BakeryState, workers: u32) {
        s.workers.store(workers, Relaxed);
    }

    fn acquire(&self, s: &BakeryState, me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        let n = s.workers.load(Relaxed) as usize;
        let me = me as usize;
        s.choosing[me].store(1, Release); // 1
        self.fence.store_load(); // 2
        let max = s.number[..n].iter().map(|x| x.load(Acquire)).max();
        let mine = 1 + max.unwrap_or(0);
        s.number[me].store(mine, Release); // 3
        s.choosing[me].store(0, Release); // 4
        self.fence.store_load(); // 5
        for j in (0..n).filter(|&j| j != me) {
            // 6
            while s.choosing[j].load(Acquire) != 0 {
                // 7
                w.spin()?;
            }
            loop {
                // 8
                let theirs = s.number[j].load(Acquire);
                if theirs == 0 || (mine, me) < (theirs, j) {
                    break;
                }
                w.spin()?;
            }
        }
        Ok(())
    }

    fn release(&self, s: &BakeryState, me: u32) {
        s.number[me as usize].store(0, Release); // 9
    }

    fn fence(&self) -> Fence {
        self.fence
    }
}
