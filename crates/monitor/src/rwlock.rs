//! A readers–writer lock inside a region: many readers at once, or one
//! writer alone, with a choice of whom to prefer when both wait.
//!
//! [`PthreadRwLock`] is glibc's `pthread_rwlock_t`, `PTHREAD_PROCESS_SHARED`,
//! of kind `PTHREAD_RWLOCK_PREFER_READER_NP` or
//! `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`; timed with
//! `pthread_rwlock_clock{rd,wr}lock` on `CLOCK_MONOTONIC`.
//!
//! [`FutexRwLock`] is shmlab's own, three words:
//! - `state`: the number of readers inside, plus [`WRITER`] while a writer
//!   is inside;
//! - `writers_waiting`: writers queued for the lock;
//! - `wake`: a sequence number every waiter sleeps on (`FUTEX_WAIT` while
//!   unchanged); whoever may have unblocked someone bumps it and wakes all.
//!
//! A waiter reads `wake` *before* re-checking whether it may enter, so a
//! release between the check and the sleep changes `wake` and the kernel
//! refuses the sleep: nothing is lost. The policies differ in one line:
//! under [`Policy::Reader`] a reader enters whenever no writer is inside
//! (so overlapping readers can keep `state` above zero forever: the writer
//! starves); under [`Policy::Writer`] a reader also stays out while a
//! writer waits, so the readers inside drain and the writer gets in.

use crate::{PthreadError, sys};
use shm_futex::{futex_wait, futex_wake};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Whom the lock lets in first when readers and a writer both wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// New readers enter while others read, even with a writer waiting.
    Reader,
    /// A waiting writer holds new readers back.
    Writer,
}

/// A readers–writer lock with bounded waits.
pub trait RwLock: Sync {
    /// The name the labs print.
    const NAME: &'static str;
    /// Takes the lock shared; `false` if `timeout` passed first.
    fn read(&self, timeout: Duration) -> bool;
    /// Releases a shared hold.
    fn read_unlock(&self);
    /// Takes the lock exclusively; `false` if `timeout` passed first.
    fn write(&self, timeout: Duration) -> bool;
    /// Releases the exclusive hold.
    fn write_unlock(&self);
}

/// glibc's process-shared `pthread_rwlock_t`, in place.
#[repr(C)]
pub struct PthreadRwLock {
    l: UnsafeCell<libc::pthread_rwlock_t>,
}
shm::any_bits!(PthreadRwLock { l });

// SAFETY: a process-shared pthread rwlock is made to be used concurrently
// from any thread of any process through its address; every access goes
// through glibc's pthread_rwlock_* calls.
unsafe impl Sync for PthreadRwLock {}

impl std::fmt::Debug for PthreadRwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PthreadRwLock").finish_non_exhaustive()
    }
}

impl PthreadRwLock {
    /// Initialises the lock where it lies, process-shared, of the kind that
    /// `policy` names.
    ///
    /// # Safety
    /// `this` points to zeroed, aligned memory (inside a shared mapping)
    /// that nobody uses yet and that will never move.
    pub unsafe fn init(this: *mut Self, policy: Policy) -> Result<(), PthreadError> {
        let kind = match policy {
            Policy::Reader => sys::RWLOCK_PREFER_READER,
            Policy::Writer => sys::RWLOCK_PREFER_WRITER,
        };
        // SAFETY: the caller's contract; UnsafeCell<T> has T's layout.
        unsafe { sys::rwlock_init(UnsafeCell::raw_get(&raw const (*this).l), kind) }
            .map_err(PthreadError::from)
    }
}

fn timed(op: &str, rc: libc::c_int) -> bool {
    match rc {
        0 => true,
        libc::ETIMEDOUT => false,
        rc => panic!("{op} failed: {}", std::io::Error::from_raw_os_error(rc)),
    }
}

impl RwLock for PthreadRwLock {
    const NAME: &'static str = "pthread";

    fn read(&self, timeout: Duration) -> bool {
        let deadline = shm::time::monotonic_deadline(timeout);
        loop {
            match sys::rwlock_rdlock(&self.l, &deadline) {
                libc::EAGAIN | libc::EINTR => continue,
                rc => return timed("pthread_rwlock_clockrdlock", rc),
            }
        }
    }

    fn read_unlock(&self) {
        let rc = sys::rwlock_unlock(&self.l);
        assert_eq!(rc, 0, "pthread_rwlock_unlock failed");
    }

    fn write(&self, timeout: Duration) -> bool {
        let deadline = shm::time::monotonic_deadline(timeout);
        loop {
            match sys::rwlock_wrlock(&self.l, &deadline) {
                libc::EINTR => continue,
                rc => return timed("pthread_rwlock_clockwrlock", rc),
            }
        }
    }

    fn write_unlock(&self) {
        let rc = sys::rwlock_unlock(&self.l);
        assert_eq!(rc, 0, "pthread_rwlock_unlock failed");
    }
}

/// The bit of [`FutexRwLock`]'s state that says a writer is inside.
pub const WRITER: u32 = 1 << 31;

/// How long one futex sleep lasts before the waiter looks at its deadline.
const SLICE: Duration = Duration::from_millis(20);

/// shmlab's futex readers–writer lock; see the module docs.
#[derive(Debug, Default)]
#[repr(C)]
pub struct FutexRwLock {
    state: AtomicU32,
    writers_waiting: AtomicU32,
    wake: AtomicU32,
    /// 0: reader-preferring, 1: writer-preferring.
    policy: AtomicU32,
}
shm::any_bits!(FutexRwLock {
    state,
    writers_waiting,
    wake,
    policy
});

impl FutexRwLock {
    /// Initialises the lock where it lies.
    ///
    /// # Safety
    /// `this` points to aligned memory that nobody uses yet.
    pub unsafe fn init(this: *mut Self, policy: Policy) {
        let l = FutexRwLock {
            policy: AtomicU32::new(u32::from(policy == Policy::Writer)),
            ..FutexRwLock::default()
        };
        // SAFETY: the caller's contract.
        unsafe { this.write(l) }
    }

    fn reader_may_enter(&self, s: u32) -> bool {
        s & WRITER == 0 && (self.policy.load(SeqCst) == 0 || self.writers_waiting.load(SeqCst) == 0)
    }

    fn release_waiters(&self) {
        self.wake.fetch_add(1, SeqCst);
        futex_wake(&self.wake, i32::MAX);
    }

    /// Sleeps on `wake` while it still reads `seen`, at most one slice and
    /// never past `deadline`; `false` once the deadline has passed.
    fn sleep(&self, seen: u32, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        futex_wait(&self.wake, seen, Some(SLICE.min(deadline - now)));
        true
    }
}

impl RwLock for FutexRwLock {
    const NAME: &'static str = "futex";

    fn read(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.wake.load(SeqCst);
            let s = self.state.load(SeqCst);
            if self.reader_may_enter(s) {
                if self
                    .state
                    .compare_exchange(s, s + 1, SeqCst, SeqCst)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if !self.sleep(seen, deadline) {
                return false;
            }
        }
    }

    fn read_unlock(&self) {
        if self.state.fetch_sub(1, SeqCst) == 1 {
            // The last reader out: a writer may enter now.
            self.release_waiters();
        }
    }

    fn write(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.writers_waiting.fetch_add(1, SeqCst);
        loop {
            let seen = self.wake.load(SeqCst);
            if self
                .state
                .compare_exchange(0, WRITER, SeqCst, SeqCst)
                .is_ok()
            {
                self.writers_waiting.fetch_sub(1, SeqCst);
                return true;
            }
            if !self.sleep(seen, deadline) {
                // Readers held back by this writer may enter again.
                self.writers_waiting.fetch_sub(1, SeqCst);
                self.release_waiters();
                return false;
            }
        }
    }

    fn write_unlock(&self) {
        self.state.fetch_and(!WRITER, SeqCst);
        self.release_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn never_torn<L: RwLock>(l: &L) {
        let words = [const { AtomicU64::new(0) }; 4];
        let torn = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..3000 {
                        assert!(l.read(Duration::from_secs(10)));
                        let v = words[0].load(std::sync::atomic::Ordering::Relaxed);
                        if words
                            .iter()
                            .any(|w| w.load(std::sync::atomic::Ordering::Relaxed) != v)
                        {
                            torn.fetch_add(1, SeqCst);
                        }
                        l.read_unlock();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..500 {
                    assert!(l.write(Duration::from_secs(10)));
                    for w in &words {
                        w.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    l.write_unlock();
                }
            });
        });
        assert_eq!(torn.load(SeqCst), 0);
        assert!(words.iter().all(|w| w.load(SeqCst) == 500));
    }

    #[test]
    fn futex_rwlock_never_tears_either_policy() {
        for p in [Policy::Reader, Policy::Writer] {
            let mut l = FutexRwLock::default();
            // SAFETY: our own, unshared storage.
            unsafe { FutexRwLock::init(&raw mut l, p) };
            never_torn(&l);
        }
    }

    #[test]
    fn pthread_rwlock_never_tears_either_policy() {
        for p in [Policy::Reader, Policy::Writer] {
            let mut l = Box::new(std::mem::MaybeUninit::<PthreadRwLock>::zeroed());
            // SAFETY: zeroed, aligned, boxed storage nobody else sees.
            unsafe { PthreadRwLock::init(l.as_mut_ptr(), p) }.unwrap();
            // SAFETY: initialised just above.
            never_torn(unsafe { l.assume_init_ref() });
        }
    }

    #[test]
    fn a_held_write_lock_times_out_others() {
        let mut l = FutexRwLock::default();
        // SAFETY: our own, unshared storage.
        unsafe { FutexRwLock::init(&raw mut l, Policy::Writer) };
        assert!(l.write(Duration::from_millis(10)));
        assert!(!l.read(Duration::from_millis(10)));
        assert!(!l.write(Duration::from_millis(10)));
        l.write_unlock();
        assert!(l.read(Duration::from_millis(10)));
        l.read_unlock();
    }
}
