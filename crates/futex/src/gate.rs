//! [`Gate`]: the start gate every multi-worker run uses. Workers count
//! themselves in and sleep on a futex word; the coordinator waits until
//! all have arrived, then opens the gate with one `FUTEX_WAKE` of everyone,
//! so they start together instead of one by one as they were forked.
//!
//! It uses `std`'s atomics and the real futex even under `cfg(loom)`: it
//! is not part of the lock algorithms loom checks, only of the harnesses
//! around them.

use crate::{futex_wait, futex_wake};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The word's value while workers must wait.
const CLOSED: u32 = 0;
/// The word's value once the coordinator has released the workers.
const OPEN: u32 = 1;
/// The word's value once the coordinator has called the run off: waiters
/// return [`Cancelled`]. (Any other value a peer writes reads as this.)
const CANCELLED: u32 = 2;

/// How long a waiting worker sleeps before it asks its `alive` check again.
pub const GATE_SLICE: Duration = Duration::from_millis(50);

/// How many times a waiting worker re-reads the word before its first
/// sleep: a gate opened within microseconds is seen without a system call.
const SPINS: u32 = 1000;

/// A start gate in shared memory: an arrival count, a futex word, and the
/// `CLOCK_MONOTONIC` time it opened. All zero is a closed gate nobody has
/// reached, so a region's zero-filled payload starts with one.
///
/// Shared bytes: a peer may write any value into any field. A word that is
/// neither closed nor open reads as cancelled (waiters stop), and an
/// arrival count past the expected number only opens the gate early; no
/// value makes a call misbehave.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Gate {
    arrived: AtomicU32,
    word: AtomicU32,
    opened_ns: AtomicU64,
}
shm::any_bits!(Gate {
    arrived,
    word,
    opened_ns
});

/// The run was called off before the gate opened (or its coordinator
/// died).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl Gate {
    /// A worker counts itself in. Call it once, when ready to start.
    pub fn arrive(&self) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
    }

    /// A worker waits until the gate opens: re-reads the word a while, then
    /// sleeps on it (`FUTEX_WAIT`, shared) in [`GATE_SLICE`]s, asking
    /// `alive()` after every slice that passed without news (e.g. "is the
    /// coordinator still there?"); `Err(Cancelled)` when the run was
    /// called off or `alive()` said no.
    pub fn wait(&self, mut alive: impl FnMut() -> bool) -> Result<(), Cancelled> {
        let mut spins = 0u32;
        loop {
            match self.word.load(Ordering::Acquire) {
                OPEN => return Ok(()),
                CLOSED => {}
                _ => return Err(Cancelled),
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else if !futex_wait(&self.word, CLOSED, Some(GATE_SLICE)) && !alive() {
                return Err(Cancelled);
            }
        }
    }

    /// [`arrive`](Self::arrive) then [`wait`](Self::wait).
    pub fn arrive_and_wait(&self, alive: impl FnMut() -> bool) -> Result<(), Cancelled> {
        self.arrive();
        self.wait(alive)
    }

    /// The coordinator waits until `n` workers have arrived, polling every
    /// 200 µs and calling `check` each time (e.g. "has a worker died?",
    /// whose error ends the wait). `Ok(false)` if `timeout` passed first.
    pub fn await_arrivals<E>(
        &self,
        n: u32,
        timeout: Duration,
        mut check: impl FnMut() -> Result<(), E>,
    ) -> Result<bool, E> {
        let start = Instant::now();
        while self.arrived() < n {
            check()?;
            if start.elapsed() > timeout {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(true)
    }

    /// Opens the gate: records the time, sets the word and wakes every
    /// waiter. Returns the moment it opened.
    pub fn open(&self) -> Instant {
        let now = Instant::now();
        self.opened_ns
            .store(shm::time::monotonic_ns(), Ordering::Relaxed);
        self.word.store(OPEN, Ordering::Release);
        futex_wake(&self.word, i32::MAX);
        now
    }

    /// Calls the run off: every waiter, present or future, gets
    /// `Err(Cancelled)`. (A gate already open stays open.)
    pub fn cancel(&self) {
        let _ = self
            .word
            .compare_exchange(CLOSED, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
        futex_wake(&self.word, i32::MAX);
    }

    /// How many workers have arrived.
    pub fn arrived(&self) -> u32 {
        self.arrived.load(Ordering::Acquire)
    }

    /// Whether it has opened.
    pub fn is_open(&self) -> bool {
        self.word.load(Ordering::Acquire) == OPEN
    }

    /// `CLOCK_MONOTONIC` ns when it opened (0 before).
    pub fn opened_ns(&self) -> u64 {
        self.opened_ns.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn waiters_start_when_it_opens_and_not_before() {
        let gate = Gate::default();
        let started = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    gate.arrive_and_wait(|| true).unwrap();
                    started.fetch_add(1, Ordering::SeqCst);
                });
            }
            assert_eq!(
                gate.await_arrivals(3, Duration::from_secs(10), || Ok::<_, ()>(())),
                Ok(true)
            );
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(
                started.load(Ordering::SeqCst),
                0,
                "started before the gate opened"
            );
            assert!(!gate.is_open());
            gate.open();
        });
        assert_eq!(started.load(Ordering::SeqCst), 3);
        assert!(gate.opened_ns() > 0);
    }

    #[test]
    fn a_cancelled_gate_or_a_dead_coordinator_releases_waiters_with_an_error() {
        let gate = Gate::default();
        std::thread::scope(|s| {
            let w = s.spawn(|| gate.arrive_and_wait(|| true));
            assert_eq!(
                gate.await_arrivals(1, Duration::from_secs(10), || Ok::<_, ()>(())),
                Ok(true)
            );
            gate.cancel();
            assert_eq!(w.join().unwrap(), Err(Cancelled));
        });
        let closed = Gate::default();
        assert_eq!(closed.wait(|| false), Err(Cancelled));
    }

    #[test]
    fn arrivals_time_out_and_checks_end_the_wait() {
        let gate = Gate::default();
        assert_eq!(
            gate.await_arrivals(1, Duration::from_millis(5), || Ok::<_, ()>(())),
            Ok(false)
        );
        assert_eq!(
            gate.await_arrivals(1, Duration::from_secs(10), || Err("dead")),
            Err("dead")
        );
    }

    #[test]
    fn any_word_a_peer_writes_is_open_closed_or_cancelled() {
        for v in [3u32, 7, u32::MAX] {
            let gate = Gate::default();
            gate.word.store(v, Ordering::Relaxed);
            assert_eq!(gate.wait(|| true), Err(Cancelled));
            assert!(!gate.is_open());
        }
    }
}
