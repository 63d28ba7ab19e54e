//! [`SpinLock`]: test-and-test-and-set with exponential backoff, the
//! holder's tid in the word, and dead-owner takeover.

use crate::owner::{self, Holder, Me};
use crate::sync::{self, AtomicU32, AtomicU64, Instant, Ordering::*};
use crate::{FutexError, OWNER_CHECK_INTERVAL};
use shm::InitCtx;
use shm::lock::{Acquired, RawLock, RawLockTimed};
use std::fmt;
use std::time::Duration;

/// Lock word value: nobody holds the lock.
const UNLOCKED: u32 = 0;

/// The state a [`SpinLock`] keeps in a region: the lock word and the
/// holder's record. 16 bytes, the same layout as
/// [`FutexState`](crate::FutexState), valid when zeroed.
#[repr(C)]
pub struct SpinState {
    /// The lock word.
    ///
    /// | value | meaning |
    /// |---|---|
    /// | `0` | unlocked |
    /// | `tid` | locked by thread `tid` |
    ///
    /// Nobody sleeps on it, so there is no waiters flag: waiters re-read it
    /// (the "test" before the test-and-set keeps the cache line shared while
    /// it is held) and back off.
    word: AtomicU32,
    /// Unused; keeps `owner` 8-byte aligned and the layout explicit.
    _reserved: AtomicU32,
    /// The holder's tid and start time, as in `FutexState`.
    owner: AtomicU64,
}

impl SpinState {
    sync::const_fn_unless_loom! {
        /// An unlocked state (all zeroes).
        pub fn new() -> Self {
            SpinState {
                word: AtomicU32::new(UNLOCKED),
                _reserved: AtomicU32::new(0),
                owner: AtomicU64::new(0),
            }
        }
    }

    /// The tid in the lock word: the current holder, live or dead.
    pub fn holder(&self) -> Option<i32> {
        match self.word.load(Relaxed) {
            0 => None,
            tid => Some(tid as i32),
        }
    }

    #[inline]
    fn try_acquire(&self, me: Me) -> bool {
        if self
            .word
            .compare_exchange(UNLOCKED, me.tid(), Acquire, Relaxed)
            .is_ok()
        {
            owner::record(&self.owner, me);
            true
        } else {
            false
        }
    }

    /// Test, test-and-set, back off; once backing off has reached yielding,
    /// look at the clock on each round, and every
    /// [`OWNER_CHECK_INTERVAL`] ask whether the holder is still alive.
    #[cold]
    fn lock_contended(
        &self,
        me: Me,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired>, FutexError> {
        let mut backoff = Backoff::new();
        let mut next_check: Option<Instant> = None;
        loop {
            let state = self.word.load(Relaxed);
            if state == UNLOCKED {
                if self.try_acquire(me) {
                    return Ok(Some(Acquired::Clean));
                }
                // Lost the race for it: back off like any other round.
            } else if state == me.tid() {
                if let Some(how) = self.examine(state, me)? {
                    return Ok(Some(how));
                }
            } else if backoff.is_yielding() {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Ok(None);
                }
                let at = *next_check.get_or_insert(now + OWNER_CHECK_INTERVAL);
                if now >= at {
                    next_check = Some(now + OWNER_CHECK_INTERVAL);
                    if let Some(how) = self.examine(state, me)? {
                        return Ok(Some(how));
                    }
                }
            }
            backoff.snooze();
        }
    }

    /// As `FutexState::examine`: take over from a dead holder still in the
    /// word, report our own tid as a deadlock, otherwise `Ok(None)`.
    #[cold]
    fn examine(&self, seen: u32, me: Me) -> Result<Option<Acquired>, FutexError> {
        // Acquire: see the record the current holder's predecessor cleared.
        if self.word.load(Acquire) != seen {
            return Ok(None);
        }
        match owner::check(seen, self.owner.load(Relaxed), me) {
            Holder::Alive => Ok(None),
            Holder::Me => Err(FutexError::Deadlock {
                tid: me.tid() as i32,
            }),
            Holder::Dead => match self.word.compare_exchange(seen, me.tid(), Acquire, Relaxed) {
                Ok(_) => {
                    owner::record(&self.owner, me);
                    Ok(Some(Acquired::PreviousOwnerDied {
                        owner: Some(seen as i32),
                    }))
                }
                Err(_) => Ok(None),
            },
        }
    }
}

impl Default for SpinState {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SpinState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpinState")
            .field("holder", &self.holder())
            .finish()
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

impl SpinLock {
    /// A handle (what [`RawLock::attach`] returns).
    pub const fn new() -> Self {
        SpinLock { _private: () }
    }

    /// Like [`RawLock::lock`], but gives up after `timeout` (checked between
    /// yields): `Ok(None)` if the lock stayed held by a live thread.
    pub fn lock_timeout(
        &self,
        state: &SpinState,
        timeout: Duration,
    ) -> Result<Option<Acquired>, FutexError> {
        let me = owner::me();
        if state.try_acquire(me) {
            return Ok(Some(Acquired::Clean));
        }
        state.lock_contended(me, Instant::now().checked_add(timeout))
    }
}

// SAFETY: the word goes from 0 (or from a dead holder's tid) to ours only by
// a successful `Acquire` compare-exchange and back to 0 only by the holder's
// `Release` store; a live holder is never replaced (takeover requires
// `owner::check` to find its thread gone).
unsafe impl RawLock for SpinLock {
    type State = SpinState;
    type Error = FutexError;
    const NAME: &'static str = "spin";

    unsafe fn init(state: *mut SpinState, _ctx: &InitCtx<'_>) -> Result<(), FutexError> {
        // SAFETY: the caller promises `state` is aligned, writable and not
        // yet shared; writing over zeroes drops nothing.
        unsafe { state.write(SpinState::new()) };
        Ok(())
    }

    unsafe fn attach(_state: &SpinState) -> Result<Self, FutexError> {
        Ok(SpinLock::new())
    }

    #[inline]
    fn lock(&self, state: &SpinState) -> Result<Acquired, FutexError> {
        let me = owner::me();
        if state.try_acquire(me) {
            return Ok(Acquired::Clean);
        }
        match state.lock_contended(me, None)? {
            Some(how) => Ok(how),
            None => unreachable!("a wait without a deadline cannot time out"),
        }
    }

    #[inline]
    fn try_lock(&self, state: &SpinState) -> Result<Option<Acquired>, FutexError> {
        Ok(state.try_acquire(owner::me()).then_some(Acquired::Clean))
    }

    #[inline]
    unsafe fn unlock(&self, state: &SpinState) {
        owner::clear(&state.owner);
        let old = state.word.swap(UNLOCKED, Release);
        debug_assert_eq!(
            old,
            owner::me().tid(),
            "SpinLock unlocked by a thread that does not hold it"
        );
    }

    fn last_holder(&self, state: &SpinState) -> Option<i32> {
        state.holder()
    }
}

impl RawLockTimed for SpinLock {
    fn lock_timeout(
        &self,
        state: &SpinState,
        timeout: Duration,
    ) -> Result<Option<Acquired>, FutexError> {
        SpinLock::lock_timeout(self, state, timeout)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn timeout_and_deadlock() {
        let s = SpinState::new();
        let l = SpinLock::new();
        assert_eq!(l.lock(&s).unwrap(), Acquired::Clean);
        assert_eq!(s.holder(), Some(shm::gettid()));
        std::thread::scope(|sc| {
            let t = sc.spawn(|| {
                let t0 = std::time::Instant::now();
                let r = l.lock_timeout(&s, Duration::from_millis(150)).unwrap();
                (r, t0.elapsed())
            });
            let (r, waited) = t.join().unwrap();
            assert_eq!(r, None);
            assert!(waited >= Duration::from_millis(150));
        });
        assert!(matches!(l.lock(&s), Err(FutexError::Deadlock { .. })));
        // SAFETY: this thread holds it.
        unsafe { l.unlock(&s) };
        assert_eq!(s.holder(), None);
    }

    #[test]
    fn dead_thread_in_word_is_taken_over() {
        let gone = std::thread::spawn(shm::gettid).join().unwrap();
        let s = SpinState::new();
        s.word.store(gone as u32, Relaxed);
        let l = SpinLock::new();
        let t0 = std::time::Instant::now();
        assert_eq!(
            l.lock(&s).unwrap(),
            Acquired::PreviousOwnerDied { owner: Some(gone) }
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
        // SAFETY: we took it over.
        unsafe { l.unlock(&s) };
    }
}
