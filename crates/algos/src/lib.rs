//! # Mutual exclusion, built by hand, raced across processes
//!
//! The locks of the other shmlab crates come from libraries (a futex, a
//! pthread mutex, a semaphore). This crate holds the algorithms a
//! synchronisation course builds **itself**, with each one's state in a
//! shared-memory region, raced by real processes (or threads) on the real
//! CPU:
//!
//! | algorithm | built from | workers | correct on x86? |
//! |---|---|---|---|
//! | [`Flag`] (OSTEP's first attempt) | a load, then a store | any | never: two workers can both see the flag down |
//! | [`Peterson`] | loads and stores | 2 | only with [`Fence::SeqCst`] |
//! | [`Dekker`] | loads and stores | 2 | only with [`Fence::SeqCst`] |
//! | [`Bakery`] (Lamport) | loads and stores | N | only with [`Fence::SeqCst`] |
//! | [`Tas`], [`Ttas`] | atomic swap | N | always |
//! | [`Ticket`] | atomic fetch-and-add | N | always, and first come, first served |
//! | [`CLock`] | a C shared library (`--lock-lib`) | its own | whatever the student wrote |
//!
//! **Why a fence.** A textbook proof of Peterson's algorithm assumes
//! *sequential consistency*: every processor's loads and stores happen in
//! program order, interleaved. OSTEP's simulator (`x86.py`) works that way,
//! so Peterson "works" there under every schedule. A real x86 CPU does not:
//! a store goes into the core's *store buffer* and reaches the cache (where
//! other cores can see it) a little later, and a later load of a
//! *different* address does not wait for it. So in
//!
//! ```text
//! flag[me] = true;                         // store: waits in the store buffer
//! turn = other;
//! while (flag[other] && turn == other) ;   // load: runs before the store is visible
//! ```
//!
//! both workers can read the other's flag as `false` and both enter. That
//! store→load reordering is the one reordering x86 (TSO) allows, and it is
//! exactly the one these algorithms cannot survive. A full fence between the
//! store and the load (`std::sync::atomic::fence(SeqCst)`, which compiles to
//! `mfence` on x86) makes the load wait until the store is visible to every
//! core. The atomic read-modify-write instructions (`xchg`, `lock xadd`) are
//! full barriers by themselves on x86, which is why [`Tas`], [`Ttas`] and
//! [`Ticket`] need no fence.
//!
//! With [`Fence::None`] the algorithms use `Release` stores and `Acquire`
//! loads: on x86 both are a plain `mov`, so the machine code is exactly the
//! textbook's, and the Rust program has no undefined behaviour (the
//! reordering is one the memory model allows, not a data race).
//!
//! ## The race
//!
//! [`race()`] runs the same experiment for every algorithm (`lab9-algorithms`
//! is its front end): a region holds the start barrier, the lock's state
//! and the critical section's words; N workers (processes by default, or
//! threads) each enter the critical section M times. The critical section
//! checks mutual exclusion **directly**: an occupancy counter incremented on
//! entry (`fetch_add`, which returns the old value) and decremented on exit,
//! so a second worker inside is *counted* as a [violation](RaceResult::violations),
//! not only inferred from lost updates. In between, the shared counter gets
//! C's `counter++` (a separate load and store), so a broken lock also loses
//! updates.
//!
//! Every wait loop is escapable: the algorithms wait with
//! [`Waiter::spin`], which checks the run's abort flag, and the coordinator
//! has a deadline ([`RaceConfig::deadline`]): a lock that does not finish is
//! reported as such, never waited on forever (worker processes that still
//! run are killed; see [`race()`] for threads).
//!
//! ## Bring your own lock
//!
//! In Rust: implement [`MutexAlgorithm`] for your type and call [`race()`].
//! A test-and-set lock is this much:
//!
//! ```
//! use algos::{Aborted, MutexAlgorithm, RaceConfig, Waiter};
//! use std::sync::atomic::{AtomicU8, Ordering};
//!
//! struct MyLock;
//!
//! // SAFETY: the state is one `AtomicU8`: `#[repr(C)]`-compatible, no
//! // pointers, interior-mutable, and all-zero is 0 (unlocked).
//! unsafe impl MutexAlgorithm for MyLock {
//!     type State = AtomicU8;
//!     const NAME: &'static str = "mylock";
//!     const MAX_WORKERS: u32 = algos::MAX_WORKERS;
//!
//!     fn acquire(&self, locked: &AtomicU8, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
//!         while locked.swap(1, Ordering::Acquire) != 0 {
//!             w.spin()?; // every wait loop spins through the Waiter
//!         }
//!         Ok(())
//!     }
//!
//!     fn release(&self, locked: &AtomicU8, _me: u32) {
//!         locked.store(0, Ordering::Release);
//!     }
//! }
//!
//! let r = algos::race(MyLock, &RaceConfig::threads(2, 10_000)).unwrap();
//! assert_eq!((r.actual, r.violations), (20_000, 0));
//! ```
//!
//! The state lives in shared memory, where any process can store any byte,
//! so it must be [`shm::AnyBits`]: integers and atomic integers (a flag is
//! an `AtomicU8` or `AtomicU32` read as `!= 0`), arrays of them, and
//! `#[repr(C)]` structs of those checked with [`shm::any_bits!`]. A `bool`
//! does not compile:
//!
//! ```compile_fail
//! use algos::{Aborted, MutexAlgorithm, Waiter};
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! struct MyLock;
//!
//! // SAFETY: (refused anyway: a byte of 2 in the region is not a bool.)
//! unsafe impl MutexAlgorithm for MyLock {
//!     type State = AtomicBool;
//!     const NAME: &'static str = "mylock";
//!     const MAX_WORKERS: u32 = algos::MAX_WORKERS;
//!
//!     fn acquire(&self, locked: &AtomicBool, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
//!         while locked.swap(true, Ordering::Acquire) {
//!             w.spin()?;
//!         }
//!         Ok(())
//!     }
//!
//!     fn release(&self, locked: &AtomicBool, _me: u32) {
//!         locked.store(false, Ordering::Release);
//!     }
//! }
//! ```
//!
//! In C: build a shared library with the four functions of
//! `labs/examples/locks/shmlab_lock.h` and load it with [`CLock::load`]
//! (`lab9-algorithms --lock-lib ./mylock.so`); see the [`ffi`] module.
//!
//! ## Layout
//!
//! - this root: [`MutexAlgorithm`], [`Fence`], [`Waiter`];
//! - [`classic`]: the load/store algorithms ([`Flag`], [`Peterson`],
//!   [`Dekker`], [`Bakery`]);
//! - [`hardware`]: the read-modify-write locks ([`Tas`], [`Ttas`],
//!   [`Ticket`]);
//! - [`ffi`]: [`CLock`], a lock from a C shared library (the only `unsafe`
//!   calls into foreign code);
//! - [`registry`]: [`Algo`], the list of built-in algorithms, their
//!   pseudocode and what goes wrong;
//! - `arena`: the region's payload; `harness`: [`race()`], its
//!   configuration and result.

mod arena;
pub mod classic;
pub mod ffi;
pub mod hardware;
mod harness;
pub mod registry;

pub use classic::{Bakery, Dekker, Flag, Peterson};
pub use ffi::{CLock, LibError, MAX_LIB_STATE};
pub use hardware::{Tas, Ticket, Ttas};
pub use harness::{RaceConfig, RaceError, RaceResult, WorkerShare, race};
pub use race::WorkerKind;
pub use registry::Algo;

use std::sync::atomic::{AtomicU32, Ordering};

/// Most workers one race can have (the region holds one slot each): the
/// same as the racing-counter workload's.
pub const MAX_WORKERS: u32 = race::MAX_WORKERS;

/// A mutual-exclusion algorithm whose state lives in a shared region.
///
/// The harness ([`race()`]) places one `State` in the region (all zeroes),
/// calls [`init`](Self::init) once in the creating process, then has every
/// worker call `acquire(state, me)`, run the critical section, and call
/// `release(state, me)`, with `me` the worker's index (`0..workers`). The
/// implementing value itself (`&self`) is each worker's own copy: a
/// setting such as the [`Fence`], or a loaded library.
///
/// An implementation does not have to be correct — finding out is the
/// point — but every loop that waits must call [`Waiter::spin`] and return
/// its error, so that a run can always be stopped.
///
/// # Safety
/// `State` lives in shared memory used by several processes at once, and
/// is never constructed by Rust: it must be valid when all its bytes are
/// zero, contain no pointers or references (each process maps the region
/// at its own address), have a fixed layout (`#[repr(C)]`, or a primitive
/// atomic), and keep every field interior-mutable (atomics, or `UnsafeCell`
/// for bytes foreign code writes). That it is valid for *any* bytes, which
/// another process may store, the compiler checks: `State` is
/// [`shm::AnyBits`] (no `bool`, `AtomicBool`, `char` or enum).
pub unsafe trait MutexAlgorithm: Send + Sync + 'static {
    /// The lock's words in the region: integers and atomic integers only
    /// ([`shm::AnyBits`]).
    type State: Send + Sync + 'static + shm::AnyBits;
    /// Short name, e.g. `peterson` (also the region's type tag).
    const NAME: &'static str;
    /// Most workers the algorithm supports (Peterson and Dekker: 2).
    const MAX_WORKERS: u32;

    /// Prepares the zeroed state for `workers` workers, in the creating
    /// process, before any worker starts. Default: nothing (zero is
    /// unlocked).
    fn init(&self, _state: &Self::State, _workers: u32) {}

    /// Waits until worker `me` may enter the critical section. Every wait
    /// loop must call [`Waiter::spin`]; `Err(Aborted)` means the run was
    /// stopped: return it at once.
    fn acquire(&self, state: &Self::State, me: u32, wait: &mut Waiter<'_>) -> Result<(), Aborted>;

    /// Leaves the critical section.
    fn release(&self, state: &Self::State, me: u32);

    /// The fence setting this run uses, for the report. Default:
    /// [`Fence::None`].
    fn fence(&self) -> Fence {
        Fence::None
    }

    /// Most workers this value supports. Default:
    /// [`MAX_WORKERS`](Self::MAX_WORKERS) (a C library may say less).
    fn max_workers(&self) -> u32 {
        Self::MAX_WORKERS.min(MAX_WORKERS)
    }

    /// What to call this lock in a report. Default: [`NAME`](Self::NAME).
    fn label(&self) -> String {
        Self::NAME.to_string()
    }
}

/// What the algorithms put between a worker's store of its own flag and
/// its load of the other workers' (`--fence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fence {
    /// Nothing: `Release` stores, `Acquire` loads, the textbook's code
    /// (plain `mov`s on x86).
    None,
    /// `std::sync::atomic::fence(SeqCst)` (`mfence` on x86): a load after
    /// it cannot run before the stores before it are visible to all cores.
    SeqCst,
}

impl Fence {
    /// Both settings, unfenced first.
    pub const ALL: [Fence; 2] = [Fence::None, Fence::SeqCst];

    /// `none` or `seqcst`.
    pub fn name(self) -> &'static str {
        match self {
            Fence::None => "none",
            Fence::SeqCst => "seqcst",
        }
    }

    /// The inverse of [`name`](Self::name).
    pub fn parse(s: &str) -> Option<Fence> {
        Fence::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The store→load fence, if this setting has one. On x86 `SeqCst` is
    /// `mfence`; `None` emits nothing.
    #[inline(always)]
    pub fn store_load(self) {
        if self == Fence::SeqCst {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }
}

impl std::fmt::Display for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The run was stopped (deadline, or another worker failed) while a worker
/// waited: [`MutexAlgorithm::acquire`] returns it at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the run was aborted while waiting for the lock")]
pub struct Aborted;

/// How a worker waits inside [`MutexAlgorithm::acquire`]: one
/// [`spin`](Self::spin) per turn of a wait loop.
///
/// It mostly executes `std::hint::spin_loop()` (`pause` on x86), and every
/// so many turns checks the run's abort flag and calls
/// `std::thread::yield_now()`: often (every 16 turns) when there are more
/// workers than CPUs, so that a spinning waiter lets the holder it waits
/// for run; rarely (every 4,096) otherwise, which costs nothing on an idle
/// machine and keeps a run going when the holder shares a CPU with its
/// waiter (other programs took the other CPUs).
#[derive(Debug)]
pub struct Waiter<'a> {
    abort: &'a AtomicU32,
    turns: u32,
    yield_mask: u32,
}

impl<'a> Waiter<'a> {
    /// A waiter that stops when `abort` becomes non-zero, yielding every
    /// `yield_every` turns (rounded up to a power of two).
    pub fn new(abort: &'a AtomicU32, yield_every: u32) -> Self {
        Waiter {
            abort,
            turns: 0,
            yield_mask: yield_every.max(1).next_power_of_two() - 1,
        }
    }

    /// A waiter for a run of `workers` workers on this machine (see the
    /// type's docs).
    pub fn for_workers(abort: &'a AtomicU32, workers: u32) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let every = if workers as usize > cpus { 16 } else { 4096 };
        Waiter::new(abort, every)
    }

    /// One turn of a wait loop. `Err(Aborted)` if the run was stopped.
    #[inline]
    pub fn spin(&mut self) -> Result<(), Aborted> {
        self.turns = self.turns.wrapping_add(1);
        if self.turns & self.yield_mask != 0 {
            std::hint::spin_loop();
            return Ok(());
        }
        if self.abort.load(Ordering::Relaxed) != 0 {
            return Err(Aborted);
        }
        std::thread::yield_now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_names_round_trip() {
        for f in Fence::ALL {
            assert_eq!(Fence::parse(f.name()), Some(f));
        }
        assert_eq!(Fence::parse("mfence"), None);
    }

    #[test]
    fn a_waiter_sees_the_abort_flag_within_its_yield_period() {
        let abort = AtomicU32::new(0);
        let mut w = Waiter::new(&abort, 10); // rounded up to 16
        for _ in 0..100 {
            assert_eq!(w.spin(), Ok(()));
        }
        abort.store(1, Ordering::Relaxed);
        let stopped = (0..16).any(|_| w.spin().is_err());
        assert!(stopped, "the abort flag was not seen within 16 turns");
    }
}
