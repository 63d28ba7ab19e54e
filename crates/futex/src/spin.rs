//! [`SpinLock`]: test-and-test-and-set with exponential backoff, the
//! holder's tid in the word, and dead-owner takeover.
//!
//! The word is an [`OwnerWord`] (`word.rs`: acquiring, examining, taking
//! over and releasing it, shared with the futex lock) with no flag bit. What
//! is here is how a waiter waits: re-read, back off, yield, and check the
//! holder every [`OWNER_CHECK_INTERVAL`]. The state's `new`/`holder` and
//! the `RawLock`/`RawLockTimed` impls are the ones both locks share, written
//! by `word::owner_word_lock!`.

use crate::OWNER_CHECK_INTERVAL;
use crate::owner::Me;
use crate::sync::{self, Instant};
use crate::word::{Attempt, OwnerWord, UNLOCKED, Wait};
use shm::lock::Acquired;
use std::fmt;

/// The spin lock's flag bit: none. Nobody sleeps on the word, so there is
/// nobody an unlock must wake.
const NO_FLAG: u32 = 0;

/// The state a [`SpinLock`] keeps in a region: the lock word and the
/// holder's record. 16 bytes, the same layout as
/// [`FutexState`](crate::FutexState), valid when zeroed.
#[repr(C)]
pub struct SpinState {
    /// The lock word and the owner record.
    ///
    /// | value | meaning |
    /// |---|---|
    /// | `0` | unlocked |
    /// | `tid` | locked by thread `tid` |
    ///
    /// Nobody sleeps on it, so there is no waiters flag: waiters re-read it
    /// (the "test" before the test-and-set keeps the cache line shared while
    /// it is held) and back off. Transitions: `0 → tid` (lock), `dead → tid`
    /// (takeover), `tid → 0` (unlock), the first two also incrementing the
    /// word's generation (see [`FutexState`](crate::FutexState)).
    word: OwnerWord<SpinLock>,
}
shm::any_bits!(SpinState { word });

impl fmt::Debug for SpinState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpinState")
            .field("holder", &self.holder())
            .finish()
    }
}

/// The spin lock's waiting: test, test-and-set, back off; unlock has
/// nothing to add to the swap.
impl Wait for SpinLock {
    const FLAG: u32 = NO_FLAG;

    /// Test, test-and-set, back off; once backing off has reached yielding,
    /// look at the clock on each round, and every
    /// [`OWNER_CHECK_INTERVAL`] ask whether the holder is still alive.
    #[cold]
    fn lock_contended(word: &OwnerWord<Self>, me: Me, deadline: Option<Instant>) -> Attempt {
        let mut backoff = Backoff::new();
        let mut next_check: Option<Instant> = None;
        loop {
            let state = word.load();
            if state.word() == UNLOCKED {
                if word.acquire_unlocked(state, me).is_ok() {
                    return Ok(Some(Acquired::Clean));
                }
                // Lost the race for it: back off like any other round.
            } else if word.is_mine(state, me) {
                if let Some(how) = word.examine(state, me)? {
                    return Ok(Some(how));
                }
            } else if backoff.is_yielding() {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    // One look at the holder before giving up, so that a caller
                    // that waits in timeouts shorter than OWNER_CHECK_INTERVAL
                    // still takes over from a dead one (found by the torture).
                    return word.examine(state, me);
                }
                let at = *next_check.get_or_insert(now + OWNER_CHECK_INTERVAL);
                if now >= at {
                    next_check = Some(now + OWNER_CHECK_INTERVAL);
                    if let Some(how) = word.examine(state, me)? {
                        return Ok(Some(how));
                    }
                }
            }
            backoff.snooze();
        }
    }
}

/// Exponential backoff for a spinning waiter, after crossbeam-utils'
/// `Backoff`: spin `2^step` times per round for the first rounds, then give
/// the core away with `sched_yield` (which matters when waiters outnumber
/// cores: the holder may be the thread that needs it).
#[derive(Debug)]
struct Backoff {
    step: u32,
}

impl Backoff {
    /// Rounds that spin (1, 2, 4, ... 64 pauses); later rounds yield.
    /// Under the model two rounds, so the yielding branch is reached
    /// without 127 rounds of interleavings.
    const SPIN_LIMIT: u32 = if cfg!(loom) { 1 } else { 6 };

    fn new() -> Self {
        Backoff { step: 0 }
    }

    fn snooze(&mut self) {
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                sync::spin_loop();
            }
            self.step += 1;
        } else {
            sync::yield_now();
            // Under the model, keep counting, so loom can stop exploring a
            // wait that has gone on long enough (see `spin_rounds`).
            #[cfg(loom)]
            {
                self.step += 1;
                sync::spin_rounds(self.step - Self::SPIN_LIMIT - 1);
            }
        }
    }

    /// Past the spinning rounds: each round now costs a syscall anyway.
    fn is_yielding(&self) -> bool {
        self.step > Self::SPIN_LIMIT
    }
}

/// A test-and-test-and-set spin lock whose state is a [`SpinState`] in
/// shared memory. Waiters never sleep in the kernel: they spin, then yield.
/// A holder that died is detected within about
/// [`OWNER_CHECK_INTERVAL`] of spinning and replaced.
///
/// For critical sections of a few instructions with fewer waiters than
/// cores; otherwise prefer [`FutexLock`](crate::FutexLock), whose waiters
/// cost nothing while they wait.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpinLock {
    _private: (),
}

crate::word::owner_word_lock! {
    lock: SpinLock,
    state: SpinState,
    name: "spin",
    /// Like [`RawLock::lock`](shm::lock::RawLock::lock), but gives up after
    /// `timeout` (checked between yields): `Ok(None)` if the lock stayed
    /// held by a live thread.
    fn lock_timeout;
}
