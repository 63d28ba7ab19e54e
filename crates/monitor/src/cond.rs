//! A monitor: one mutex and two condition variables (0 and 1), inside a
//! region, usable by every process that maps it.
//!
//! [`PthreadMonitor`] is glibc's: a `PTHREAD_PROCESS_SHARED`, error-checking
//! `pthread_mutex_t` and two `PTHREAD_PROCESS_SHARED` `pthread_cond_t` whose
//! clock is `CLOCK_MONOTONIC`.
//! [`RobustMonitor`] is the same objects with a **robust** mutex, every
//! lock and wait bounded and a dead holder reported (the latency ladder's
//! `pthread-cond` rung, whose peer may be killed from outside).
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
use shm::lock::Acquired;
use shm_futex::{futex_wait, futex_wake};
use shm_pthread::MutexCell;
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

/// glibc's process-shared mutex (shm-pthread's [`MutexCell`]) and two
/// condition variables, in place.
#[repr(C)]
pub struct PthreadMonitor {
    mutex: MutexCell,
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
        // SAFETY: the caller's contract; the field pointers address the
        // objects inside it (UnsafeCell<T> has T's layout).
        unsafe {
            MutexCell::init(&raw mut (*this).mutex, false)?;
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
        // The mutex is not robust: no previous owner is reported dead.
        if let Err((op, rc)) = self.mutex.lock() {
            ok(op, rc);
        }
    }

    /// `pthread_mutex_unlock`; if glibc refuses (the caller does not hold
    /// the mutex), the process aborts, as [`MutexCell::unlock`] does.
    fn unlock(&self) {
        self.mutex.unlock();
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

/// [`PthreadMonitor`]'s objects with a **robust** mutex, for processes
/// that may die holding it (a peer killed from outside): every lock and
/// wait is bounded, and a holder that died is reported, never waited for.
///
/// It has no [`Monitor`] impl, whose `lock` waits as long as it takes and
/// cannot report a dead holder. Instead [`lock_timeout`](Self::lock_timeout)
/// (`pthread_mutex_clocklock` on `CLOCK_MONOTONIC`) returns a
/// [`RobustGuard`] that waits and signals, and unlocks when dropped. On
/// `EOWNERDEAD`, from the lock or from the re-lock at the end of a wait, the
/// mutex is made consistent again (`pthread_mutex_consistent`) and the
/// caller is told [`Acquired::PreviousOwnerDied`]: the mutex works, but
/// what it guarded may be half-updated.
///
/// The mutex is shm-pthread's [`MutexCell`], so, as for
/// `shm_pthread::RobustMutex`, a failed unlock aborts the process:
/// glibc keeps a held robust mutex on the holder's robust list, through the
/// mutex's own memory, so going on after a failed unlock could leave glibc
/// writing into that memory once it is unmapped.
///
/// **Never destroyed.** A process killed inside `pthread_cond_timedwait`
/// leaves glibc's condition variable counting a waiter that will never
/// leave, and `pthread_cond_destroy` then waits for it for ever; the mutex
/// may be held by a dead process. So this type has no `destroy`: the
/// objects hold nothing outside the memory they lie in.
#[repr(C)]
pub struct RobustMonitor {
    mutex: MutexCell,
    cond: [UnsafeCell<libc::pthread_cond_t>; 2],
}
shm::any_bits!(RobustMonitor { mutex, cond });

// SAFETY: as for PthreadMonitor: process-shared pthread objects, used only
// through glibc's pthread_* calls.
unsafe impl Sync for RobustMonitor {}

impl std::fmt::Debug for RobustMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobustMonitor").finish_non_exhaustive()
    }
}

impl RobustMonitor {
    /// Initialises the mutex (process-shared, error-checking, robust) and
    /// both condition variables (process-shared, `CLOCK_MONOTONIC`) where
    /// they lie: in a region, or in any other shared mapping, such as an
    /// anonymous `MAP_SHARED` one made before a `fork`.
    ///
    /// # Safety
    /// `this` points to zeroed, aligned memory (inside a shared mapping)
    /// that nobody uses yet and that will never move.
    pub unsafe fn init(this: *mut Self) -> Result<(), PthreadError> {
        // SAFETY: the caller's contract; the field pointers address the
        // objects inside it (UnsafeCell<T> has T's layout).
        unsafe {
            MutexCell::init(&raw mut (*this).mutex, true)?;
            for i in 0..2 {
                sys::cond_init(UnsafeCell::raw_get(&raw const (*this).cond[i]))?;
            }
        }
        Ok(())
    }

    /// Takes the mutex, waiting at most `timeout` (`CLOCK_MONOTONIC`):
    /// `None` if it did not get it in time. A holder that died is reported
    /// by the guard's [`acquired`](RobustGuard::acquired).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<RobustGuard<'_>>, PthreadError> {
        Ok(self
            .mutex
            .lock_timeout(timeout)?
            .map(|acquired| RobustGuard {
                monitor: self,
                acquired,
                held: true,
                _not_send: std::marker::PhantomData,
            }))
    }
}

/// [`RobustMonitor`]'s mutex, held by this thread; unlocked on drop. Not
/// `Send`: glibc tracks the holding thread.
#[must_use = "the mutex is unlocked when the guard is dropped"]
pub struct RobustGuard<'a> {
    monitor: &'a RobustMonitor,
    acquired: Acquired,
    /// False after a wait that returned without the mutex.
    held: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl std::fmt::Debug for RobustGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobustGuard")
            .field("acquired", &self.acquired)
            .finish_non_exhaustive()
    }
}

impl RobustGuard<'_> {
    /// How the lock was taken: [`Acquired::PreviousOwnerDied`] if the last
    /// holder died holding it (the mutex has been made consistent).
    pub fn acquired(&self) -> Acquired {
        self.acquired
    }

    /// Atomically releases the mutex and sleeps on condition variable `cv`
    /// (0 or 1) until woken (perhaps spuriously) or `timeout` passes
    /// (`CLOCK_MONOTONIC`); holds the mutex again on return. The
    /// [`Acquired`] says how the mutex was taken back:
    /// [`PreviousOwnerDied`](Acquired::PreviousOwnerDied) if a process that
    /// took it during the wait died holding it.
    pub fn wait(&mut self, cv: usize, timeout: Duration) -> Result<(Wait, Acquired), PthreadError> {
        let m = self.monitor;
        let deadline = shm::time::monotonic_deadline(timeout);
        let wait = match sys::cond_timedwait(&m.cond[cv], &m.mutex, &deadline) {
            0 => Wait::Woken,
            libc::ETIMEDOUT => Wait::TimedOut,
            libc::EOWNERDEAD => match m.mutex.recover() {
                Ok(a) => return Ok((Wait::Woken, a)),
                Err(e) => {
                    // `recover` gave the mutex back.
                    self.held = false;
                    return Err(e.into());
                }
            },
            rc => {
                // ENOTRECOVERABLE: glibc could not take the mutex back.
                // Other errors (EINVAL, EPERM) come before the mutex is
                // released, and a guard cannot cause them.
                if rc == libc::ENOTRECOVERABLE {
                    self.held = false;
                }
                return Err(("pthread_cond_timedwait", rc).into());
            }
        };
        Ok((wait, Acquired::Clean))
    }

    /// `pthread_cond_signal`: wakes (at least) one waiter of `cv`, if any.
    pub fn signal(&self, cv: usize) {
        ok(
            "pthread_cond_signal",
            sys::cond_signal(&self.monitor.cond[cv]),
        );
    }

    /// `pthread_cond_broadcast`: wakes every waiter of `cv`.
    pub fn broadcast(&self, cv: usize) {
        ok(
            "pthread_cond_broadcast",
            sys::cond_broadcast(&self.monitor.cond[cv]),
        );
    }
}

impl Drop for RobustGuard<'_> {
    /// `pthread_mutex_unlock`; a failure aborts (see [`RobustMonitor`]).
    fn drop(&mut self) {
        if self.held {
            self.monitor.mutex.unlock();
        }
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

    /// A robust monitor, initialised in zeroed boxed memory (which never
    /// moves while the test uses it).
    fn robust() -> Box<std::mem::MaybeUninit<RobustMonitor>> {
        let mut m = Box::new(std::mem::MaybeUninit::<RobustMonitor>::zeroed());
        // SAFETY: zeroed, aligned boxed storage nobody else sees yet.
        unsafe { RobustMonitor::init(m.as_mut_ptr()) }.unwrap();
        m
    }

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn robust_monitor_hands_every_value_over_and_times_out() {
        let m = robust();
        // SAFETY: initialised by `robust`.
        let m = unsafe { m.assume_init_ref() };
        let slot = AtomicU64::new(0);
        let sum = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for v in 1..=2000u64 {
                    let mut g = m.lock_timeout(LONG).unwrap().unwrap();
                    while slot.load(Ordering::Relaxed) != 0 {
                        let (_, a) = g.wait(0, Duration::from_millis(50)).unwrap();
                        assert_eq!(a, Acquired::Clean);
                    }
                    slot.store(v, Ordering::Relaxed);
                    g.signal(1);
                }
            });
            s.spawn(|| {
                for _ in 0..2000 {
                    let mut g = m.lock_timeout(LONG).unwrap().unwrap();
                    assert_eq!(g.acquired(), Acquired::Clean);
                    while slot.load(Ordering::Relaxed) == 0 {
                        let (_, a) = g.wait(1, Duration::from_millis(50)).unwrap();
                        assert_eq!(a, Acquired::Clean);
                    }
                    sum.fetch_add(slot.swap(0, Ordering::Relaxed), Ordering::Relaxed);
                    g.signal(0);
                }
            });
        });
        assert_eq!(sum.load(Ordering::Relaxed), 2000 * 2001 / 2);
        let mut g = m.lock_timeout(LONG).unwrap().unwrap();
        assert_eq!(
            g.wait(0, Duration::from_millis(10)).unwrap(),
            (Wait::TimedOut, Acquired::Clean)
        );
        // Held here, so another thread's lock gives up.
        std::thread::scope(|s| {
            s.spawn(|| assert!(m.lock_timeout(Duration::from_millis(20)).unwrap().is_none()));
        });
        drop(g);
    }

    /// A thread that ends holding the mutex (its guard forgotten) leaves it
    /// to the kernel's robust-list walk: the next lock says so, once, and
    /// the mutex works afterwards.
    #[test]
    fn robust_monitor_reports_a_holder_that_died() {
        let m = robust();
        // SAFETY: initialised by `robust`.
        let m = unsafe { m.assume_init_ref() };
        std::thread::scope(|s| {
            s.spawn(|| std::mem::forget(m.lock_timeout(LONG).unwrap().unwrap()));
        });
        let g = m.lock_timeout(LONG).unwrap().unwrap();
        assert_eq!(g.acquired(), Acquired::PreviousOwnerDied { owner: None });
        drop(g);
        let g = m.lock_timeout(LONG).unwrap().unwrap();
        assert_eq!(g.acquired(), Acquired::Clean);
    }

    /// The holder dies while we wait: taking the mutex back at the end of
    /// the wait reports it.
    #[test]
    fn robust_wait_reports_a_holder_that_died_during_it() {
        let m = robust();
        // SAFETY: initialised by `robust`.
        let m = unsafe { m.assume_init_ref() };
        let mut g = m.lock_timeout(LONG).unwrap().unwrap();
        std::thread::scope(|s| {
            // Gets the mutex while this thread waits, and ends holding it.
            s.spawn(|| std::mem::forget(m.lock_timeout(LONG).unwrap().unwrap()));
            // (Until it has: this thread may take the mutex back first.)
            let start = std::time::Instant::now();
            loop {
                let (_, a) = g.wait(0, Duration::from_millis(50)).unwrap();
                if a != Acquired::Clean {
                    assert_eq!(a, Acquired::PreviousOwnerDied { owner: None });
                    break;
                }
                assert!(
                    start.elapsed() < LONG,
                    "the other thread never got the mutex"
                );
            }
        });
        drop(g);
        assert_eq!(
            m.lock_timeout(LONG).unwrap().unwrap().acquired(),
            Acquired::Clean
        );
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
