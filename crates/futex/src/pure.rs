//! [`PureSpinLock`] (`spin-pure`): test-and-test-and-set that **never
//! yields** — the textbook spin lock, kept to show what the shmlab
//! [`SpinLock`](crate::SpinLock)'s `sched_yield` back-off is for.
//!
//! The word is the same [`OwnerWord`] (`word.rs`) as the other two locks,
//! with no flag bit: acquiring, examining, taking over from a dead holder and
//! releasing are theirs. What is here is only how a waiter waits: re-read the
//! word with a `spin_loop` hint between reads until it reads 0, then try the
//! compare-exchange. No back-off, no `sched_yield`, no sleep. The clock is
//! read once every [`CLOCK_EVERY`] rounds (a vDSO call, not a system call),
//! for the deadline of `lock_timeout` and, every
//! [`OWNER_CHECK_INTERVAL`], for the dead-holder check.
//!
//! **Why it collapses.** With more waiters than CPUs, the holder can be
//! preempted while waiters occupy every CPU spinning: each spins out its
//! whole time slice (milliseconds) reading a word that cannot change, and the
//! holder runs again only when the scheduler preempts a spinner; and a
//! holder that keeps its CPU takes the lock back before a waiter on the
//! other CPU sees it free, so a few processes do all the work. With one
//! increment per critical section, preemption inside it is rare, and on the
//! 2-vCPU machine of BENCHMARKS.md the damage from 2 to 8 processes was
//! mostly to fairness (Jain index 0.79 → 0.15) and less to throughput
//! (0.75×). Use it to see that, or with at most one waiter per CPU.

use crate::OWNER_CHECK_INTERVAL;
use crate::owner::Me;
use crate::sync::{self, Instant};
use crate::word::{Attempt, OwnerWord, UNLOCKED, Wait};
use shm::lock::Acquired;
use std::fmt;

/// Spin rounds between two looks at the clock (each round is one load and
/// one `pause`, some tens of nanoseconds: the clock is read every few tens of
/// microseconds). Under the model every round, so a wait is bounded.
const CLOCK_EVERY: u32 = if cfg!(loom) { 1 } else { 1024 };

/// The state a [`PureSpinLock`] keeps in a region: the lock word and the
/// holder's record. 16 bytes, the same layout as
/// [`SpinState`](crate::SpinState), valid when zeroed.
#[repr(C)]
pub struct PureSpinState {
    /// The lock word and the owner record: `0` unlocked, `tid` locked by
    /// thread `tid`; no flag (nobody sleeps on it). Transitions: `0 → tid`
    /// (lock), `dead → tid` (takeover), `tid → 0` (unlock), the first two
    /// also incrementing the word's generation (see
    /// [`FutexState`](crate::FutexState)).
    word: OwnerWord<PureSpinLock>,
}
shm::any_bits!(PureSpinState { word });

impl fmt::Debug for PureSpinState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PureSpinState")
            .field("holder", &self.holder())
            .finish()
    }
}

/// The pure spin lock's waiting: test, test-and-set, `spin_loop`, forever.
impl Wait for PureSpinLock {
    const FLAG: u32 = 0;

    /// Spin on loads until the word reads 0, then compare-exchange; every
    /// [`CLOCK_EVERY`] rounds look at the clock for the deadline and, every
    /// [`OWNER_CHECK_INTERVAL`], ask whether the holder is still alive.
    /// Never yields the CPU.
    #[cold]
    fn lock_contended(word: &OwnerWord<Self>, me: Me, deadline: Option<Instant>) -> Attempt {
        let mut next_check: Option<Instant> = None;
        let mut rounds: u32 = 0;
        loop {
            let state = word.load();
            if state.word() == UNLOCKED {
                if word.acquire_unlocked(state, me).is_ok() {
                    return Ok(Some(Acquired::Clean));
                }
                continue;
            }
            if word.is_mine(state, me) {
                if let Some(how) = word.examine(state, me)? {
                    return Ok(Some(how));
                }
                continue;
            }
            rounds = rounds.wrapping_add(1);
            if rounds % CLOCK_EVERY == 0 {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    // One look at the holder before giving up, so that a
                    // caller that waits in timeouts shorter than
                    // OWNER_CHECK_INTERVAL still takes over from a dead
                    // one (found by the torture).
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
            sync::spin_loop();
        }
    }
}

/// A test-and-test-and-set spin lock that never yields, whose state is a
/// [`PureSpinState`] in shared memory (`spin-pure` in the race and the
/// benches). A dead holder is detected within about
/// [`OWNER_CHECK_INTERVAL`] of spinning and replaced, like the other locks.
///
/// A teaching lock: with more contenders than CPUs its throughput
/// collapses (see the [module docs](self)); prefer
/// [`SpinLock`](crate::SpinLock) or [`FutexLock`](crate::FutexLock).
#[derive(Clone, Copy, Debug, Default)]
pub struct PureSpinLock {
    _private: (),
}

crate::word::owner_word_lock! {
    lock: PureSpinLock,
    state: PureSpinState,
    name: "spin-pure",
    /// Like [`RawLock::lock`](shm::lock::RawLock::lock), but gives up after
    /// `timeout` (the clock is read every [`CLOCK_EVERY`] spins, so it
    /// overshoots by microseconds, plus any time the waiter is preempted):
    /// `Ok(None)` if the lock stayed held by a live thread.
    fn lock_timeout;
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use shm::lock::RawLock;
    use std::time::Duration;

    #[test]
    fn layout_and_name() {
        assert_eq!(std::mem::size_of::<PureSpinState>(), 16);
        assert_eq!(std::mem::align_of::<PureSpinState>(), 8);
        assert_eq!(<PureSpinLock as RawLock>::NAME, "spin-pure");
    }

    #[test]
    fn lock_relock_unlock() {
        let s = PureSpinState::new();
        let l = PureSpinLock::new();
        assert_eq!(l.lock(&s).unwrap(), Acquired::Clean);
        assert_eq!(s.holder(), Some(shm::gettid()));
        assert!(l.try_lock(&s).unwrap().is_none());
        assert!(matches!(
            l.lock(&s),
            Err(crate::FutexError::Deadlock { .. })
        ));
        // SAFETY: this thread holds it.
        unsafe { l.unlock(&s) };
        assert_eq!(s.holder(), None);
    }

    #[test]
    fn dead_holder_is_taken_over() {
        let gone = std::thread::spawn(shm::gettid).join().unwrap();
        let s = PureSpinState::new();
        s.word.fake(gone as u32);
        let l = PureSpinLock::new();
        let t0 = std::time::Instant::now();
        assert_eq!(
            l.lock(&s).unwrap(),
            Acquired::PreviousOwnerDied { owner: Some(gone) }
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
        // SAFETY: we took it over.
        unsafe { l.unlock(&s) };
    }

    #[test]
    fn live_holder_times_out_a_waiter() {
        let s = PureSpinState::new();
        let l = PureSpinLock::new();
        assert_eq!(l.lock(&s).unwrap(), Acquired::Clean);
        std::thread::scope(|sc| {
            let t = sc.spawn(|| {
                let t0 = std::time::Instant::now();
                (l.lock_timeout(&s, Duration::from_millis(100)), t0.elapsed())
            });
            let (r, waited) = t.join().unwrap();
            assert_eq!(r.unwrap(), None);
            assert!(waited >= Duration::from_millis(100), "{waited:?}");
        });
        // SAFETY: this thread holds it.
        unsafe { l.unlock(&s) };
    }

    #[test]
    fn two_threads_count_exactly() {
        let s = PureSpinState::new();
        let n = std::cell::UnsafeCell::new(0u64);
        struct Shared<'a>(&'a std::cell::UnsafeCell<u64>);
        // SAFETY: only touched under the lock.
        unsafe impl Sync for Shared<'_> {}
        let shared = Shared(&n);
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    let l = PureSpinLock::new();
                    let shared = &shared;
                    for _ in 0..100_000 {
                        assert_eq!(l.lock(&s).unwrap(), Acquired::Clean);
                        // SAFETY: we hold the lock.
                        unsafe { *shared.0.get() += 1 };
                        // SAFETY: we hold it.
                        unsafe { l.unlock(&s) };
                    }
                });
            }
        });
        assert_eq!(n.into_inner(), 200_000);
    }
}
