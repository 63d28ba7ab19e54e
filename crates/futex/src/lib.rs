//! # `futex(2)` locks that live in shared memory
//!
//! `futex(uaddr, FUTEX_WAIT, val, timeout)` puts the caller to sleep if the
//! 32-bit word at `uaddr` still holds `val`; `futex(uaddr, FUTEX_WAKE, n)`
//! wakes up to `n` sleepers on that word. Everything else — who holds the
//! lock, who waits — is kept in the word itself, in user space, so an
//! uncontended lock and unlock make no system call at all.
//!
//! This crate provides:
//! - [`futex_wait`] / [`futex_wake`]: the two operations, **shared** (never
//!   `FUTEX_PRIVATE_FLAG`), for any word in a `MAP_SHARED` mapping — the
//!   race's start barrier and the IPC benchmarks' ring signalling use them;
//! - [`FutexLock`] (`futex`): std's three-state futex mutex, made robust;
//! - [`SpinLock`] (`spin`): test-and-test-and-set with backoff, also robust;
//! - [`FutexError`]: what their [`RawLock`](shm::lock::RawLock) methods
//!   report.
//!
//! ## The lock word
//!
//! std's mutex (`library/std/src/sys/sync/mutex/futex.rs`) stores 0
//! (unlocked), 1 (locked) or 2 (locked, waiters). Here the word stores the
//! **holder's kernel thread id** instead of 1, and the top bit is the
//! waiters flag: the kernel's own `FUTEX_WAITERS` (`0x8000_0000`, the bit it
//! uses in the `[FUTEX_WAITERS | tid]` words of PI and robust futexes; free
//! here because tids stay below `pid_max` ≤ 2^22, and not interpreted by
//! plain `FUTEX_WAIT`/`FUTEX_WAKE`); see [`FutexState`] for the table. The spin
//! locks keep the same word with no flag ([`SpinState`]).
//!
//! Beside the word, in the same 64-bit atomic (the word is its first four
//! bytes, so the futex address is the state's own), sits a **generation**
//! that every acquisition increments: the lock is taken by one
//! compare-exchange of the (word, generation) pair, `(0, g) → (tid, g+1)`,
//! so that a pair names one acquisition, which is what a takeover needs
//! (below). What all locks do with such an *owner word* — take it, examine
//! its holder, take it over from a dead holder, release it — is written
//! once (`word.rs`); the lock modules differ only in how a waiter waits and
//! in the flag. The futex lock's algorithm is std's: an `#[inline]` fast
//! path (a load, then `compare_exchange((0, g), (tid, g+1))`), a `#[cold]`
//! path that spins about 100 loads, sets the flag and sleeps, and an unlock
//! that is one `fetch_and` clearing the word (the generation stays,
//! `Release`) plus a `FUTEX_WAKE` only if the flag was set.
//!
//! The tid comes from a `thread_local!` cache, so the fast path costs one TLS
//! load, not a `gettid` system call. A forked child's only thread is a copy
//! of the forking one, cache included, but with a new tid: a
//! `pthread_atfork` child handler, registered before any thread first fills
//! its cache, zeroes the cache in the child. (Comparing a cached pid with
//! `getpid()` would not be cheaper: glibc no longer caches the pid, so that
//! is a system call too.)
//!
//! ## A holder that dies
//!
//! A process killed while holding a lock in shared memory leaves the lock
//! held forever, unless someone notices. Linux's answer for pthread mutexes
//! is the robust list (`set_robust_list(2)`), but it is one list per thread
//! and glibc already owns it, so this crate does not touch it. Instead:
//!
//! - a contended [`FutexLock`] waiter sleeps in slices of
//!   [`OWNER_CHECK_INTERVAL`]; a slice that ends without a wake-up while the
//!   word is unchanged makes it check the holder (a [`SpinLock`] waiter
//!   checks every [`OWNER_CHECK_INTERVAL`] of spinning);
//! - the check reads `/proc/TID/stat` (it exists for every thread id, not
//!   only process ids): no entry, or state `Z`/`X` (a killed process that
//!   nobody reaped yet is a zombie, and a zombie holds nothing), means dead;
//!   without `/proc` access it falls back to `kill(tid, 0)`;
//! - against **tid reuse**, the holder also writes an *owner record* next to
//!   the word right after acquiring (the generation of its acquisition and
//!   its *stamp*: the low 31 bits of its start time, cached with the tid)
//!   and clears it right before releasing; a record of the current
//!   generation with a different start time than `/proc` shows means the tid
//!   now names another thread. A record of another generation says nothing
//!   (a dead holder's, left until whoever took its place writes its own);
//! - a waiter that finds the holder dead replaces it with one
//!   compare-exchange from the (word, generation) pair it examined to
//!   `(my_tid | FUTEX_WAITERS, generation + 1)` (keeping the flag so the
//!   other sleepers are woken in turn; `my_tid` for the spin locks, which
//!   have no flag) and gets
//!   [`Acquired::PreviousOwnerDied`](shm::lock::Acquired) with the dead tid.
//!   The liveness check and the compare-exchange are two steps; if the dead
//!   holder's tid was reused in between by a thread that took this lock
//!   (the lock word can then read exactly as before), the generation has
//!   moved and the compare-exchange fails rather than steal a live lock.
//!   Takeover happens about [`OWNER_CHECK_INTERVAL`] after the holder's
//!   death; a live holder costs each sleeping waiter one timed-out
//!   `FUTEX_WAIT` and one small file read per interval.
//! - A waiter that finds its *own* tid in the word is locking twice if the
//!   current generation's record holds its own stamp: it gets
//!   [`FutexError::Deadlock`] instead of hanging. Any other record means a
//!   dead thread that had its tid, and it takes the lock over. A thread that
//!   cannot read its own start time stamps itself with a random nonce
//!   (marked by the stamp's top bit, so nobody compares it with `/proc`),
//!   which still tells it from a dead predecessor in the same situation.
//!
//! ## Limits, honestly
//!
//! - Detection is by polling, so it takes up to about
//!   [`OWNER_CHECK_INTERVAL`] plus a scheduling delay, where the kernel's
//!   robust list is immediate.
//! - A holder that dies in the few instructions between its compare-exchange
//!   and writing its record leaves no start time: if its tid is then reused
//!   by a live thread before a waiter checks, the lock stays wedged (a
//!   [`lock_timeout`](FutexLock::lock_timeout) still returns).
//! - Start times are in clock ticks (10 ms), truncated to 31 bits (248 days
//!   at 100 Hz): a tid reused within the same tick, or exactly a wrap later,
//!   is not told apart. (Linux hands out tids cyclically, so reuse within a
//!   tick means cycling through all of `pid_max` in 10 ms.)
//! - The generation is 32 bits: a takeover whose liveness check and
//!   compare-exchange are 2^32 acquisitions apart (and that finds the same
//!   lock word again) is not caught.
//! - Tids are per pid namespace: every process using one lock must share the
//!   same pid namespace and `/proc` (`kill(tid, 0)` backs up a hidden
//!   `/proc`).
//! - The fork handler covers `fork(3)` (and so `nix::unistd::fork`); a child
//!   made by a raw `clone(2)` without `CLONE_THREAD` that then locks would
//!   use its parent's tid.
//! - `try_lock` never takes over from a dead holder; `lock`, `lock_timeout`
//!   do.
//!
//! ## Model checking
//!
//! Both locks are checked with [`loom`](https://docs.rs/loom), which runs a
//! test under every interleaving of its threads (and the weak-memory
//! outcomes the orderings allow):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p shmlab-futex --test loom --release
//! ```
//!
//! (about 25 s once built; the first build, with loom's dependencies, takes
//! a minute or two, and the separate target directory keeps the normal
//! build's cache). `LOOM_MAX_PREEMPTIONS=4` searches the three-thread models deeper
//! in about two minutes; a failure prints the panic (`deadlock`, `Causality
//! violation`, ...) and `LOOM_LOG=trace` with `LOOM_CHECKPOINT_FILE` replays
//! it.
//!
//! Under `cfg(loom)` the algorithms are unchanged; only what they are built
//! from is swapped, in `sync.rs` and `owner.rs`: loom's atomics; a futex
//! made of a loom mutex (the hash bucket lock) and a FIFO condvar per word,
//! whose wait re-checks the word under that lock before sleeping, as the
//! kernel does, and never times out or wakes spuriously, so a lost
//! wake-up leaves a thread asleep and loom reports the deadlock; a clock that
//! never moves (no deadline a positive time away passes, no owner check
//! falls due) except that a futex waiter behind a dead holder times out at
//! once; made-up tids and start times per loom thread, and a registry of
//! which are alive standing in for `/proc`, which a model changes through
//! `shm_futex::model` (a thread dies holding a lock; another takes a dead
//! thread's tid), so that takeover, and a takeover racing with tid reuse,
//! are modelled; `loom::thread::yield_now` for yielding, and
//! a no-op for the bounded spins (a loom yield there would force the
//! holder to run, hiding any bug that needs a waiter to get past its spin
//! while the holder is preempted). A spin-wait stops branching after a few
//! idle rounds, since loom's unfair scheduler would otherwise let two
//! spinners yield to each other forever. `tests/loom.rs` says what each
//! model checks.
//!
//! All of this exists because a lock in shared memory outlives any one
//! process: a futex word is the smallest state that can both let a waiter
//! sleep across processes and name its holder, so that a crash is something
//! the next process can see and recover from rather than a hang.

mod futex;
mod gate;
mod inspect;
mod owner;
mod pure;
mod spin;
mod sync;
mod sys;
mod word;

#[cfg(loom)]
#[doc(hidden)]
pub use owner::model;

pub use futex::{FutexLock, FutexState};
pub use gate::{Cancelled, GATE_SLICE, Gate};
pub use pure::{PureSpinLock, PureSpinState};
pub use spin::{SpinLock, SpinState};

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// How long a waiter goes without news before it asks whether the holder is
/// still alive; a dead holder is replaced roughly this long after it died.
pub const OWNER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// What the locks in this crate report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FutexError {
    /// A wait gave up. The locks' own `lock_timeout` returns `Ok(None)`
    /// instead; this variant is for callers that want an error, e.g.
    /// `lock.lock_timeout(..)?.ok_or(FutexError::Timeout { .. })`.
    #[error("gave up after {waited:?} waiting for a lock held by thread {holder:?}")]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// The holder's tid, if known.
        holder: Option<i32>,
    },
    /// The calling thread already holds the lock: waiting would never end.
    #[error("thread {tid} tried to take a lock it already holds; that would wait forever")]
    Deadlock {
        /// The calling thread's tid.
        tid: i32,
    },
    /// The kernel refused a futex call (e.g. `ENOSYS` under a seccomp
    /// filter).
    #[error("{op} failed: {source}")]
    Os {
        /// Which call.
        op: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `futex(word, FUTEX_WAIT, expected, timeout)` — sleeps while `*word ==
/// expected`, at most `timeout` (relative; `None` waits for a wake-up).
///
/// Returns `false` only if the timeout passed. `true` means woken, or the
/// word no longer held `expected` on entry, or a signal interrupted the
/// sleep: wake-ups may be spurious, so callers re-check the word in a loop.
/// The wait is shared (no `FUTEX_PRIVATE_FLAG`), so [`futex_wake`] on the
/// same word from another process that maps the same object wakes it.
///
/// See [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html).
///
/// # Panics
/// If the kernel rejects the call for a reason a valid word and timeout
/// cannot cause (e.g. `ENOSYS` under a seccomp filter): returning would make
/// a caller's wait loop spin.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    match sys::futex_wait(word, expected, timeout) {
        Ok(woken) => woken,
        Err(e) => panic!("futex(FUTEX_WAIT) failed: {e}"),
    }
}

/// `futex(word, FUTEX_WAKE, n)` — wakes up to `n` threads, in any process,
/// sleeping in [`futex_wait`] on `word`; returns how many were woken.
/// `n <= 0` wakes nobody; `i32::MAX` wakes all.
///
/// Store the new value *before* waking: a waiter that has not gone to sleep
/// yet then sees it and does not sleep at all.
pub fn futex_wake(word: &AtomicU32, n: i32) -> usize {
    sys::futex_wake(word, n)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wait_times_out_or_returns_at_once() {
        let w = AtomicU32::new(7);
        let t0 = Instant::now();
        assert!(!futex_wait(&w, 7, Some(Duration::from_millis(40))));
        assert!(t0.elapsed() >= Duration::from_millis(40));
        let t0 = Instant::now();
        assert!(
            futex_wait(&w, 8, Some(Duration::from_secs(5))),
            "value differs: EAGAIN"
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(!futex_wait(&w, 7, Some(Duration::ZERO)));
        assert_eq!(futex_wake(&w, 1), 0);
        assert_eq!(futex_wake(&w, 0), 0);
    }

    #[test]
    fn wake_wakes_a_sleeping_thread() {
        use std::sync::atomic::Ordering;
        let w = AtomicU32::new(0);
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                while w.load(Ordering::Acquire) == 0 {
                    assert!(
                        futex_wait(&w, 0, Some(Duration::from_secs(10))),
                        "timed out"
                    );
                }
            });
            std::thread::sleep(Duration::from_millis(50));
            w.store(1, Ordering::Release);
            futex_wake(&w, i32::MAX);
            t.join().unwrap();
        });
    }
}
