//! Both locks under the `loom` model checker: every interleaving (and every
//! weak-memory outcome loom models) of two threads, and those of three
//! threads with at most a few preemptions.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p shmlab-futex --test loom --release`.
//!
//! What each model checks:
//! - **mutual exclusion**: each thread increments a counter in a loom
//!   `UnsafeCell` while holding the lock. loom panics on any two accesses
//!   not ordered by happens-before, so this catches both overlapping
//!   critical sections and a missing `Acquire`/`Release`; the total must be
//!   exact and the word unlocked at the end;
//! - **no lost wake-up**: the futex is modelled so that a wait ends only by
//!   a wake (no timeouts, no spurious returns), so a waiter whose wake-up
//!   was lost sleeps forever, and loom fails the execution as a deadlock
//!   once every thread is blocked. Every model must therefore terminate;
//! - **takeover without theft**: a holder dies (`shm_futex::model::die`),
//!   a waiter finds it dead and takes the lock over, while a new thread that
//!   got the dead one's tid (`shm_futex::model::reuse_tid`) locks too, and
//!   takes the lock over from its dead namesake without changing the lock
//!   word. The waiter's compare-exchange, made after its liveness check,
//!   must not succeed over the new thread's acquisition: the critical
//!   sections would overlap, which the counter's `UnsafeCell` reports.

#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::model::Builder;
use loom::sync::Arc;
use loom::thread;
use shm::lock::{Acquired, RawLock};
use shm_futex::{FutexLock, FutexState, SpinLock};
use std::time::Duration;

/// The preemption bound for three threads: enough for the classic lost
/// wake-up (a waiter preempted between setting the flag and sleeping, while
/// a third thread barges in), small enough to finish in seconds.
const PREEMPTIONS_3: usize = 3;

/// Explores every interleaving of `f` (unless `LOOM_MAX_PREEMPTIONS` is
/// set).
fn exhaustive(f: impl Fn() + Sync + Send + 'static) {
    Builder::new().check(f);
}

/// Explores the interleavings of `f` with at most [`PREEMPTIONS_3`]
/// preemptions, or `LOOM_MAX_PREEMPTIONS` if set (4 takes about ten times
/// as long).
fn bounded(f: impl Fn() + Sync + Send + 'static) {
    let mut b = Builder::new();
    b.preemption_bound = b.preemption_bound.or(Some(PREEMPTIONS_3));
    b.check(f);
}

/// A lock's state and the data it protects.
struct Shared<L: RawLock> {
    state: L::State,
    counter: UnsafeCell<u32>,
}

// SAFETY: `state` is `Sync` (`RawLock::State: Sync`); `counter` is only
// touched by a thread holding the lock, which is exactly what the models
// check: loom's `UnsafeCell` panics on any access not ordered after the
// previous one by happens-before, so if this claim were false the model
// would fail rather than race.
unsafe impl<L: RawLock> Sync for Shared<L> {}

impl<L: RawLock> Shared<L>
where
    L::State: Default,
{
    fn new() -> Arc<Self> {
        Arc::new(Shared {
            state: L::State::default(),
            counter: UnsafeCell::new(0),
        })
    }
}

impl<L: RawLock> Shared<L> {
    /// Locks (through `how`), increments the counter, unlocks.
    fn increment_with(&self, how: impl FnOnce(&L, &L::State) -> Acquired) {
        // SAFETY: `state` is `L::State::default()`, which for both locks
        // here is the value their `init` writes (`State::new()`), and this
        // thread reached it through the `Arc` that published it.
        let lock = unsafe { L::attach(&self.state) }.expect("attach");
        assert_eq!(how(&lock, &self.state), Acquired::Clean);
        // SAFETY: the lock is held (the claim under test; see `Sync` above).
        self.counter.with_mut(|n| unsafe { *n += 1 });
        // SAFETY: this thread locked it just above.
        unsafe { lock.unlock(&self.state) };
    }

    fn increment(&self) {
        self.increment_with(|l, s| l.lock(s).expect("lock"));
    }

    /// Locks, increments, unlocks, and says how the lock was acquired.
    fn increment_reporting(&self) -> Acquired {
        let mut how = None;
        self.increment_with(|l, s| {
            how = Some(l.lock(s).expect("lock"));
            Acquired::Clean
        });
        how.expect("locked")
    }

    /// The final count, and that nobody holds the lock.
    fn assert_done(&self, expected: u32) {
        // SAFETY: every other thread has been joined.
        let n = self.counter.with(|n| unsafe { *n });
        assert_eq!(n, expected, "lost or doubled increments");
        // SAFETY: as in `increment_with`.
        let lock = unsafe { L::attach(&self.state) }.expect("attach");
        assert_eq!(lock.last_holder(&self.state), None, "left locked");
    }
}

/// `threads` threads (this one included) each lock, increment, unlock.
fn mutual_exclusion<L>(threads: u32)
where
    L: RawLock + 'static,
    L::State: Default + Send + 'static,
{
    let shared = Shared::<L>::new();
    let others: Vec<_> = (1..threads)
        .map(|_| {
            let s = Arc::clone(&shared);
            thread::spawn(move || s.increment())
        })
        .collect();
    shared.increment();
    for t in others {
        t.join().expect("thread panicked");
    }
    shared.assert_done(threads);
}

/// This thread holds the lock while `waiters` threads queue behind it
/// (it unlocks only once one has marked the word, so at least one goes the
/// whole contended path: flag, sleep) and then must all get through.
fn futex_sleepers_woken(waiters: u32, timed: bool) {
    let shared = Shared::<FutexLock>::new();
    let lock = FutexLock::new();
    assert_eq!(lock.lock(&shared.state).expect("lock"), Acquired::Clean);
    let others: Vec<_> = (0..waiters)
        .map(|_| {
            let s = Arc::clone(&shared);
            thread::spawn(move || {
                if timed {
                    // The deadline path; the model's clock never reaches it.
                    s.increment_with(|l, st| {
                        l.lock_timeout(st, Duration::from_secs(1))
                            .expect("lock_timeout")
                            .expect("timed out under a frozen clock")
                    });
                } else {
                    s.increment();
                }
            })
        })
        .collect();
    while !shared.state.has_waiters() {
        thread::yield_now();
    }
    // SAFETY: this thread locked it above.
    unsafe { lock.unlock(&shared.state) };
    for t in others {
        t.join().expect("thread panicked");
    }
    shared.assert_done(waiters);
}

#[test]
fn futex_mutual_exclusion_2_threads() {
    exhaustive(|| mutual_exclusion::<FutexLock>(2));
}

#[test]
fn futex_mutual_exclusion_3_threads() {
    bounded(|| mutual_exclusion::<FutexLock>(3));
}

#[test]
fn futex_sleeper_is_woken() {
    exhaustive(|| futex_sleepers_woken(1, false));
}

#[test]
fn futex_sleeper_with_deadline_is_woken() {
    exhaustive(|| futex_sleepers_woken(1, true));
}

#[test]
fn futex_two_sleepers_are_both_woken() {
    bounded(|| futex_sleepers_woken(2, false));
}

/// A waiter that gives up after marking the word must not strand one that
/// sleeps: the flag it leaves behind is stale, never missing.
#[test]
fn futex_waiter_giving_up_strands_nobody() {
    bounded(|| {
        let shared = Shared::<FutexLock>::new();
        let quitter = {
            let s = Arc::clone(&shared);
            thread::spawn(move || {
                let lock = FutexLock::new();
                // A zero timeout is already over, even on the frozen clock:
                // this waits only as long as one pass of the contended path.
                if let Some(how) = lock.lock_timeout(&s.state, Duration::ZERO).expect("lock") {
                    assert_eq!(how, Acquired::Clean);
                    // SAFETY: acquired just above.
                    unsafe { lock.unlock(&s.state) };
                }
            })
        };
        let sleeper = {
            let s = Arc::clone(&shared);
            thread::spawn(move || s.increment())
        };
        shared.increment();
        quitter.join().expect("thread panicked");
        sleeper.join().expect("thread panicked");
        shared.assert_done(2);
    });
}

#[test]
fn futex_relock_is_a_deadlock_error() {
    exhaustive(|| {
        let state = FutexState::new();
        let lock = FutexLock::new();
        assert_eq!(lock.lock(&state).expect("lock"), Acquired::Clean);
        assert!(matches!(
            lock.lock(&state),
            Err(shm_futex::FutexError::Deadlock { .. })
        ));
        // SAFETY: held since the first `lock`.
        unsafe { lock.unlock(&state) };
    });
}

#[test]
fn spin_mutual_exclusion_2_threads() {
    exhaustive(|| mutual_exclusion::<SpinLock>(2));
}

#[test]
fn spin_mutual_exclusion_3_threads() {
    bounded(|| mutual_exclusion::<SpinLock>(3));
}

/// A spinner behind a holder gets the lock once it is released (loom
/// fails a spin loop that never ends as exceeding its branch limit).
#[test]
fn spin_waiter_gets_the_lock() {
    exhaustive(|| {
        let shared = Shared::<SpinLock>::new();
        let lock = SpinLock::new();
        assert_eq!(lock.lock(&shared.state).expect("lock"), Acquired::Clean);
        let waiter = {
            let s = Arc::clone(&shared);
            thread::spawn(move || s.increment())
        };
        thread::yield_now();
        // SAFETY: this thread locked it above.
        unsafe { lock.unlock(&shared.state) };
        waiter.join().expect("thread panicked");
        shared.assert_done(1);
    });
}

/// A futex lock whose holder died is taken over by one of two threads: a
/// waiter, or a new thread that got the dead holder's tid and so finds its
/// own tid in the word. Whatever the interleaving — in particular the
/// waiter checking the holder, the new thread taking the lock over from its
/// namesake (the lock word unchanged), and only then the waiter's
/// compare-exchange — exactly one takes over, the other gets the lock
/// cleanly after it, and the critical sections never overlap.
#[test]
fn futex_takeover_after_tid_reuse_steals_nothing() {
    bounded(|| {
        let shared = Shared::<FutexLock>::new();
        let dead = {
            let s = Arc::clone(&shared);
            thread::spawn(move || {
                let lock = FutexLock::new();
                assert_eq!(lock.lock(&s.state).expect("lock"), Acquired::Clean);
                let tid = shm_futex::model::tid();
                shm_futex::model::die(); // holding it
                tid
            })
        }
        .join()
        .expect("thread panicked");
        let waiter = {
            let s = Arc::clone(&shared);
            thread::spawn(move || s.increment_reporting())
        };
        let namesake = {
            let s = Arc::clone(&shared);
            thread::spawn(move || {
                shm_futex::model::reuse_tid(dead);
                s.increment_reporting()
            })
        };
        let hows = [
            waiter.join().expect("thread panicked"),
            namesake.join().expect("thread panicked"),
        ];
        let died = Acquired::PreviousOwnerDied {
            owner: Some(dead as i32),
        };
        assert!(
            hows == [died, Acquired::Clean] || hows == [Acquired::Clean, died],
            "exactly one takeover: {hows:?}"
        );
        shared.assert_done(2);
    });
}
