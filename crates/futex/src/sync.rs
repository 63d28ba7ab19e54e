//! The primitives the two locks are built from: atomics, futex wait/wake,
//! spin and yield hints, and the clock.
//!
//! They are gathered here, and the lock code names nothing else, so that a
//! model checker can replace this one module (`loom`'s atomics, a
//! condition-variable stand-in for the futex, a frozen clock) behind
//! `cfg(loom)` without touching the algorithms (the locks only shorten
//! their spin limits under the model, and the spin lock reports its idle
//! rounds). The thread's identity and liveness, the other things a model
//! must replace, are in `owner`.

#[cfg(not(loom))]
pub(crate) use real::*;

#[cfg(loom)]
pub(crate) use model::*;

/// Defines `const fn $name() -> $ret`, or a plain `fn` under `cfg(loom)`,
/// whose atomics have no `const` constructor.
macro_rules! const_fn_unless_loom {
    ($(#[$m:meta])* $vis:vis fn $name:ident() -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$m])*
        $vis const fn $name() -> $ret $body
        #[cfg(loom)]
        $(#[$m])*
        $vis fn $name() -> $ret $body
    };
}
pub(crate) use const_fn_unless_loom;

/// The real thing: std and the kernel.
#[cfg(not(loom))]
mod real {
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
    pub(crate) use std::thread::yield_now;
    pub(crate) use std::time::Instant;

    use crate::FutexError;
    use std::time::Duration;

    /// Sleeps while the lock word of `word` (its first four bytes, see
    /// `word::Seen`) reads `expected`, for at most `timeout`. `Ok(false)`
    /// on timeout; `Ok(true)` on a wake-up, a changed word or a signal.
    #[inline]
    pub(crate) fn wait(
        word: &AtomicU64,
        expected: u32,
        timeout: Duration,
    ) -> Result<bool, FutexError> {
        crate::sys::futex_wait_first_half(word, expected, Some(timeout)).map_err(|source| {
            FutexError::Os {
                op: "futex(FUTEX_WAIT)",
                source,
            }
        })
    }

    /// Wakes one waiter sleeping on the lock word of `word`, in any
    /// process.
    #[inline]
    pub(crate) fn wake_one(word: &AtomicU64) {
        crate::sys::futex_wake_first_half(word, 1);
    }
}

/// The model: loom's atomics and scheduler, a futex built from a loom mutex
/// and condition variables, and a clock that never moves.
#[cfg(loom)]
mod model {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
    /// A yield: loom ends an unbounded wait loop only if it yields, by
    /// running someone else.
    pub(crate) use loom::thread::yield_now;

    /// Nothing. Both locks spin a bounded number of times before they sleep
    /// or yield, so loom needs no yield here to terminate, and one would
    /// hide bugs: loom never reschedules a thread that yields while another
    /// can run, so a waiter could never get through its spin while the
    /// holder is preempted in the middle of `unlock`.
    #[inline]
    pub(crate) fn spin_loop() {}

    use crate::FutexError;
    use loom::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    loom::lazy_static! {
        /// The kernel's futex hash table, reduced to one bucket: its lock
        /// serialises every wait and wake (as the bucket lock does), and
        /// each word waited on gets a FIFO queue (a condvar), keyed by
        /// address as `FUTEX_WAIT` keys it. Fresh for every execution.
        static ref BUCKET: Mutex<Vec<(usize, Arc<Condvar>)>> = Mutex::new(Vec::new());
    }

    /// `FUTEX_WAIT`, without a timeout: under the bucket lock, re-check that
    /// `*word == expected` and only then sleep, so that a wake issued after
    /// the word changed cannot fall between the check and the sleep — the
    /// one guarantee a futex gives. A waker that ran first changed the word
    /// before taking the bucket lock, so the check here sees that change.
    ///
    /// The timeout is ignored (the model has no time: a wait ends only by a
    /// wake-up), so a lost wake-up leaves the thread asleep for good and
    /// loom reports the deadlock. Never returns `Ok(false)`.
    pub(crate) fn wait(
        word: &AtomicU64,
        expected: u32,
        _timeout: Duration,
    ) -> Result<bool, FutexError> {
        let key = std::ptr::from_ref(word) as usize;
        let mut bucket = BUCKET.lock().expect("futex model poisoned");
        // Relaxed, as the kernel's read: the bucket lock orders it after any
        // wake that already ran, and the word's own coherence does the rest.
        // Like the kernel, it compares the 32-bit value at the word's
        // address (its first four bytes: the lock word, not the generation
        // beside it).
        let raw = word.load(Ordering::Relaxed);
        let first4 = if cfg!(target_endian = "little") {
            raw as u32
        } else {
            (raw >> 32) as u32
        };
        if first4 != expected {
            return Ok(true); // EAGAIN
        }
        let queue = match bucket.iter().find(|(k, _)| *k == key) {
            Some((_, q)) => Arc::clone(q),
            None => {
                let q = Arc::new(Condvar::new());
                bucket.push((key, Arc::clone(&q)));
                q
            }
        };
        drop(queue.wait(bucket).expect("futex model poisoned"));
        Ok(true)
    }

    /// `FUTEX_WAKE` of one: wakes the longest sleeper on `word`, if any.
    pub(crate) fn wake_one(word: &AtomicU64) {
        let key = std::ptr::from_ref(word) as usize;
        let bucket = BUCKET.lock().expect("futex model poisoned");
        if let Some((_, q)) = bucket.iter().find(|(k, _)| *k == key) {
            q.notify_one();
        }
    }

    /// How many yielding rounds of one spin-wait loom explores.
    ///
    /// loom's scheduler is not fair: with two spinners, each can yield to
    /// the other forever while the holder, runnable, is never chosen, and
    /// every execution on such a path ends in "exceeded maximum number of
    /// branches". But a round that finds the lock still held changes
    /// nothing, not even the spinner's state, so an execution with more
    /// rounds reaches only states that one with fewer reaches too. After
    /// this many, stop branching in this execution (`skip_branch`) and let
    /// loom's default schedule, which runs the thread that yielded least
    /// (the holder), finish it.
    const SPIN_ROUNDS: u32 = 3;

    /// Called by a spin-wait after its `rounds`-th yielding round.
    pub(crate) fn spin_rounds(rounds: u32) {
        if rounds == SPIN_ROUNDS {
            loom::skip_branch();
        }
    }

    /// A clock that never moves: deadlines a positive time away never
    /// pass and owner checks never fall due, which keeps the model finite
    /// (a zero timeout is still already over).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) struct Instant(Duration);

    impl Instant {
        pub(crate) fn now() -> Self {
            Instant(Duration::ZERO)
        }

        pub(crate) fn checked_add(self, d: Duration) -> Option<Self> {
            self.0.checked_add(d).map(Instant)
        }
    }

    impl std::ops::Add<Duration> for Instant {
        type Output = Instant;
        fn add(self, d: Duration) -> Instant {
            Instant(self.0 + d)
        }
    }

    impl std::ops::Sub for Instant {
        type Output = Duration;
        fn sub(self, earlier: Instant) -> Duration {
            self.0.saturating_sub(earlier.0)
        }
    }
}
