//! A monitor: one mutex and two condition variables (0 and 1), inside a
//! region, usable by every process that maps it.
//!
//! [`PthreadMonitor`] is glibc's: a `PTHREAD_PROCESS_SHARED`, error-checking
//! `pthread_mutex_t` and two `PTHREAD_PROCESS_SHARED` `pthread_cond_t` whose
//! clock is `CLOCK_MONOTONIC`.
//!
//! [`FutexMonitor`] is shmlab's own, in the shape of the first Linux
//! `pthread_cond` (before glibc 2.25's rewrite): the mutex is Drepper's
//! three-state futex mutex (0 free, 1 held, 2 held with sleepers), and a
//! condition variable is one 32-bit **sequence number**. `wait` reads the
//! number *while holding the mutex*, unlocks, and sleeps in `FUTEX_WAIT`
//! only while the number is unchanged; `signal`/`broadcast` bump the number
//! and wake one/all. A signal sent between the unlock and the sleep changed
//! the number, so the kernel refuses to sleep: no wake-up is lost in that
//! window. What it cannot do (why glibc replaced it): after 2^32 signals
//! between a read and the sleep the number is back where it was (ABA), and
//! a `signal` may wake a waiter that started waiting *after* it (a "stolen"
//! wake-up) — both allowed by POSIX, since every waiter must re-check its
//! condition in a `while` loop anyway.

use crate::{PthreadError, sys};
use shm_futex::{futex_wait, futex_wake};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How a timed wait on a condition variable ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Woken by a signal or broadcast (or spuriously): re-check the condition.
    Woken,
    /// The timeout passed without a wake-up.
    TimedOut,
}

/// A mutex with two condition variables, as the bounded buffer needs
/// (not-full, not-empty). Condition variable indices are 0 and 1.
///
/// `wait`, `signal` and `broadcast` are called with the mutex held.
pub trait Monitor: Sync {
    /// The name the labs print (`pthread`, `futex`).
    const NAME: &'static str;
    /// Takes the mutex (waits as long as it takes).
    fn lock(&self);
    /// Releases the mutex, which the caller holds.
    fn unlock(&self);
    /// Atomically releases the mutex and sleeps on condition variable `cv`
    /// until woken or `timeout` passes; holds the mutex again on return.
    fn wait(&self, cv: usize, timeout: Duration) -> Wait;
    /// Wakes (at least) one waiter of `cv`, if any.
    fn signal(&self, cv: usize);
    /// Wakes every waiter of `cv`.
    fn broadcast(&self, cv: usize);
}

/// glibc's process-shared mutex and two condition variables, in place.
#[repr(C)]
pub struct PthreadMonitor {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    cond: [UnsafeCell<libc::pthread_cond_t>; 2],
}
shm::any_bits!(PthreadMonitor { mutex, cond });

// SAFETY: process-shared pthread objects are made to be used concurrently
// from any thread of any process through their address; every access goes
// through glibc's pthread_* calls.
unsafe impl Sync for PthreadMonitor {}

impl std::fmt::Debug for PthreadMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PthreadMonitor").finish_non_exhaustive()
    }
}

impl PthreadMonitor {
    /// Initialises the mutex and both condition variables where they lie,
    /// process-shared, the condition variables on `CLOCK_MONOTONIC`.
    ///
    /// # Safety
    /// `this` points to zeroed, aligned memory (inside a shared mapping)
    /// that nobody uses yet and that will never move.
    pub unsafe fn init(this: *mut Self) -> Result<(), PthreadError> {
        // SAFETY: the caller's contract; UnsafeCell<T> has T's layout, so the
        // cast pointers address the objects themselves.
        unsafe {
            sys::mutex_init(UnsafeCell::raw_get(&raw const (*this).mutex))?;
            for i in 0..2 {
                sys::cond_init(UnsafeCell::raw_get(&raw const (*this).cond[i]))?;
            }
        }
        Ok(())
    }
}

/// Panics on an error number no correct use can cause: going on would break
/// the mutual exclusion the caller relies on.
fn ok(op: &str, rc: libc::c_int) {
    assert!(
        rc == 0,
        "{op} failed: {}",
        std::io::Error::from_raw_os_error(rc)
    );
}

impl Monitor for PthreadMonitor {
    const NAME: &'static str = "pthread";

    fn lock(&self) {
        ok("pthread_mutex_lock", sys::mutex_lock(&self.mutex));
    }

    fn unlock(&self) {
        ok("pthread_mutex_unlock", sys::mutex_unlock(&self.mutex));
    }

    fn wait(&self, cv: usize, timeout: Duration) -> Wait {
        let deadline = shm::time::monotonic_deadline(timeout);
        match sys::cond_timedwait(&self.cond[cv], &self.mutex, &deadline) {
            0 => Wait::Woken,
            libc::ETIMEDOUT => Wait::TimedOut,
            rc => {
                ok("pthread_cond_timedwait", rc);
                Wait::Woken
            }
        }
    }

    fn signal(&self, cv: usize) {
        ok("pthread_cond_signal", sys::cond_signal(&self.cond[cv]));
    }

    fn broadcast(&self, cv: usize) {
        ok(
            "pthread_cond_broadcast",
            sys::cond_broadcast(&self.cond[cv]),
        );
    }
}

/// How long one sleep of the futex mutex lasts before it looks again (a
/// bound on every kernel wait, never a correctness device).
const MUTEX_SLICE: Duration = Duration::from_millis(100);

/// shmlab's futex mutex and two sequence-number condition variables.
#[derive(Debug, Default)]
#[repr(C)]
pub struct FutexMonitor {
    /// 0 free, 1 held, 2 held and someone may sleep on it.
    mutex: AtomicU32,
    /// One sequence number per condition variable.
    seq: [AtomicU32; 2],
}
shm::any_bits!(FutexMonitor { mutex, seq });

impl FutexMonitor {
    /// Initialises the monitor where it lies (all zero: free, sequence 0).
    ///
    /// # Safety
    /// `this` points to aligned memory that nobody uses yet.
    pub unsafe fn init(this: *mut Self) {
        // SAFETY: the caller's contract.
        unsafe { this.write(FutexMonitor::default()) }
    }

    /// The current sequence number of `cv` (how many signals and broadcasts
    /// it has seen, modulo 2^32).
    pub fn sequence(&self, cv: usize) -> u32 {
        self.seq[cv].load(Ordering::Relaxed)
    }
}

impl Monitor for FutexMonitor {
    const NAME: &'static str = "futex";

    fn lock(&self) {
        if self
            .mutex
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        // Drepper, "Futexes are tricky", mutex 3: mark contended, sleep
        // while it stays contended.
        while self.mutex.swap(2, Ordering::Acquire) != 0 {
            futex_wait(&self.mutex, 2, Some(MUTEX_SLICE));
        }
    }

    fn unlock(&self) {
        if self.mutex.swap(0, Ordering::Release) == 2 {
            futex_wake(&self.mutex, 1);
        }
    }

    fn wait(&self, cv: usize, timeout: Duration) -> Wait {
        // Read under the mutex: a signal can only come after this read.
        let seen = self.seq[cv].load(Ordering::Acquire);
        self.unlock();
        // `false` only when the timeout passed. A signal meant for another
        // waiter also changes the number, but does not make this sleeper
        // return early: judging by the number after a timeout would turn
        // every timeout into a wake-up and hide lost wake-ups.
        let woken = futex_wait(&self.seq[cv], seen, Some(timeout));
        self.lock();
        if woken { Wait::Woken } else { Wait::TimedOut }
    }

    fn signal(&self, cv: usize) {
        self.seq[cv].fetch_add(1, Ordering::Release);
        futex_wake(&self.seq[cv], 1);
    }

    fn broadcast(&self, cv: usize) {
        self.seq[cv].fetch_add(1, Ordering::Release);
        futex_wake(&self.seq[cv], i32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn ping_pong<M: Monitor>(m: &M) {
        // A one-slot mailbox: 0 empty, otherwise a value; cv 0 not-full,
        // cv 1 not-empty.
        let slot = AtomicU64::new(0);
        let sum = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for v in 1..=2000u64 {
                    m.lock();
                    while slot.load(Ordering::Relaxed) != 0 {
                        m.wait(0, Duration::from_millis(50));
                    }
                    slot.store(v, Ordering::Relaxed);
                    m.signal(1);
                    m.unlock();
                }
            });
            s.spawn(|| {
                for _ in 0..2000 {
                    m.lock();
                    while slot.load(Ordering::Relaxed) == 0 {
                        m.wait(1, Duration::from_millis(50));
                    }
                    sum.fetch_add(slot.swap(0, Ordering::Relaxed), Ordering::Relaxed);
                    m.signal(0);
                    m.unlock();
                }
            });
        });
        assert_eq!(sum.load(Ordering::Relaxed), 2000 * 2001 / 2);
    }

    #[test]
    fn futex_monitor_hands_every_value_over() {
        let m = FutexMonitor::default();
        ping_pong(&m);
    }

    #[test]
    fn pthread_monitor_hands_every_value_over() {
        let mut m = Box::new(std::mem::MaybeUninit::<PthreadMonitor>::zeroed());
        // SAFETY: zeroed, aligned boxed storage nobody else sees; never moves
        // (boxed) while used.
        unsafe { PthreadMonitor::init(m.as_mut_ptr()) }.unwrap();
        // SAFETY: initialised just above.
        let m = unsafe { m.assume_init_ref() };
        ping_pong(m);
    }

    #[test]
    fn waits_time_out() {
        let m = FutexMonitor::default();
        m.lock();
        assert_eq!(m.wait(0, Duration::from_millis(10)), Wait::TimedOut);
        m.unlock();
        let mut p = Box::new(std::mem::MaybeUninit::<PthreadMonitor>::zeroed());
        // SAFETY: as in the test above.
        unsafe { PthreadMonitor::init(p.as_mut_ptr()) }.unwrap();
        // SAFETY: initialised just above.
        let p = unsafe { p.assume_init_ref() };
        p.lock();
        assert_eq!(p.wait(1, Duration::from_millis(10)), Wait::TimedOut);
        p.unlock();
    }
}
