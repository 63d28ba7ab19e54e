//! [`MutexCell`]: the process-shared `pthread_mutex_t` itself, for a crate
//! that keeps one beside other pthread objects in shared memory (the
//! monitor crate's condition variables wait on one), and the storage of
//! this crate's own [`MutexState`](crate::MutexState).
//!
//! Everything about the mutex lives here, once: initialisation in place,
//! the robust recovery (`EOWNERDEAD` → `pthread_mutex_consistent` →
//! [`Acquired::PreviousOwnerDied`]) and the abort on a failed unlock (see
//! the crate docs for why it is fatal). The calls themselves are in
//! `sys.rs`.
//!
//! Errors are pthread's own: the call that failed and the error number it
//! returned, `(op, errno)`, for the caller to type as it likes.

use crate::sys;
use libc::{c_int, pthread_mutex_t};
use shm::lock::Acquired;
use std::cell::UnsafeCell;
use std::time::Duration;

/// A process-shared pthread mutex as it lies in shared memory: glibc's
/// 40-byte `pthread_mutex_t` (the same size, alignment and bytes),
/// initialised **in place** by [`init`](Self::init) and never moved,
/// because the mutex's identity (its futex, and the robust-list entry
/// that points at it) is its address.
///
/// Every method is one glibc call (or two, for the recovery) on the mutex
/// where it lies, so it works from any thread of any process that maps it.
/// Any bytes are a valid value (glibc reads all zeroes as
/// `PTHREAD_MUTEX_INITIALIZER`), but only a cell passed to `init` before
/// anyone else used it is process-shared, error-checking and, if asked,
/// robust.
///
/// A robust cell's holder that dies (its thread ends, or its process)
/// makes the next locker get `EOWNERDEAD`; the lock calls here then call
/// `pthread_mutex_consistent` and return
/// [`Acquired::PreviousOwnerDied`]: the mutex works again, but what it
/// guarded may be half-updated. [`unlock`](Self::unlock) aborts the process
/// if glibc refuses, because a robust mutex that could not be unlocked may
/// still be on this thread's robust list (see the crate docs).
#[repr(C)]
pub struct MutexCell {
    m: UnsafeCell<pthread_mutex_t>,
}
shm::any_bits!(MutexCell { m });

// SAFETY: a process-shared pthread mutex is designed to be used
// concurrently from any thread of any process through its address; every
// access goes through glibc's pthread_mutex_* calls (sys.rs).
unsafe impl Sync for MutexCell {}

impl std::fmt::Debug for MutexCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexCell").finish_non_exhaustive()
    }
}

impl MutexCell {
    /// `pthread_mutex_init` in place: process-shared
    /// (`PTHREAD_PROCESS_SHARED`), error-checking
    /// (`PTHREAD_MUTEX_ERRORCHECK`: a relock by the holder is `EDEADLK`, an
    /// unlock by another thread `EPERM`, instead of undefined) and, with
    /// `robust`, `PTHREAD_MUTEX_ROBUST`. The attribute object is destroyed
    /// on every path. On failure, the call that failed and its error number.
    ///
    /// # Safety
    /// `this` points to writable, aligned storage (inside a shared mapping,
    /// for use across processes) that no thread or process uses yet and
    /// that will never move.
    pub unsafe fn init(this: *mut Self, robust: bool) -> Result<(), (&'static str, c_int)> {
        // SAFETY: our caller's contract.
        unsafe { Self::init_kind(this, robust, true) }
    }

    /// [`init`](Self::init), and without `errorcheck` glibc's normal kind
    /// (what [`RobustMutex`](crate::RobustMutex) and
    /// [`PlainMutex`](crate::PlainMutex) have always used).
    ///
    /// # Safety
    /// As for [`init`](Self::init).
    pub(crate) unsafe fn init_kind(
        this: *mut Self,
        robust: bool,
        errorcheck: bool,
    ) -> Result<(), (&'static str, c_int)> {
        let mut attr = sys::Attr::new()?;
        attr.set_process_shared()?;
        if errorcheck {
            attr.set_errorcheck()?;
        }
        if robust {
            attr.set_robust()?;
        }
        // SAFETY: `this` per our caller's contract (writable, aligned,
        // unused, never moving); `UnsafeCell<pthread_mutex_t>` has
        // `pthread_mutex_t`'s layout and `MutexCell` is `repr(C)` around
        // it, so the cast pointer addresses the mutex itself, which is
        // initialised in place; the attribute outlives the call.
        unsafe { sys::mutex_init(UnsafeCell::raw_get(&raw const (*this).m), &mut attr) }
            .map_err(|e| ("pthread_mutex_init", e))
    }

    /// `pthread_mutex_lock`: waits as long as it takes. `EOWNERDEAD` →
    /// [`recover`](Self::recover).
    #[inline]
    pub fn lock(&self) -> Result<Acquired, (&'static str, c_int)> {
        match sys::lock(&self.m) {
            0 => Ok(Acquired::Clean),
            libc::EOWNERDEAD => self.recover(),
            rc => Err(("pthread_mutex_lock", rc)),
        }
    }

    /// `pthread_mutex_trylock`: `None` if it is held (`EBUSY`, an answer,
    /// not an error). `EOWNERDEAD` → [`recover`](Self::recover).
    pub fn try_lock(&self) -> Result<Option<Acquired>, (&'static str, c_int)> {
        match sys::try_lock(&self.m) {
            0 => Ok(Some(Acquired::Clean)),
            libc::EBUSY => Ok(None),
            libc::EOWNERDEAD => self.recover().map(Some),
            rc => Err(("pthread_mutex_trylock", rc)),
        }
    }

    /// `pthread_mutex_clocklock` with a `CLOCK_MONOTONIC` deadline
    /// `timeout` from now (monotonic, because a wall-clock deadline moves
    /// when the clock is set): `None` if the deadline passed (`ETIMEDOUT`).
    /// `EOWNERDEAD` → [`recover`](Self::recover): `Some` of
    /// [`Acquired::PreviousOwnerDied`] says the previous owner died.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<Acquired>, (&'static str, c_int)> {
        let deadline = shm::time::monotonic_deadline(timeout);
        loop {
            match sys::clock_lock(&self.m, &deadline) {
                0 => return Ok(Some(Acquired::Clean)),
                libc::ETIMEDOUT => return Ok(None),
                libc::EOWNERDEAD => return self.recover().map(Some),
                // Not expected from glibc; same absolute deadline.
                libc::EINTR => continue,
                rc => return Err(("pthread_mutex_clocklock", rc)),
            }
        }
    }

    /// After `EOWNERDEAD` from a call that took the mutex (this thread
    /// holds it then: the lock calls here, or `pthread_cond_timedwait`
    /// taking it back): `pthread_mutex_consistent`, which must come before
    /// the next unlock or that unlock makes the mutex unrecoverable, and
    /// [`Acquired::PreviousOwnerDied`]. If it fails, the mutex is
    /// [unlocked](Self::unlock) again, so that the error leaves nothing
    /// held, and the error returned.
    #[cold]
    pub fn recover(&self) -> Result<Acquired, (&'static str, c_int)> {
        match sys::consistent(&self.m) {
            0 => Ok(Acquired::PreviousOwnerDied { owner: None }),
            rc => {
                self.unlock();
                Err(("pthread_mutex_consistent", rc))
            }
        }
    }

    /// `pthread_mutex_unlock`, by the thread that holds it; if glibc
    /// refuses (not held by this thread, or destroyed or overwritten while
    /// held), the process **aborts** with one line on stderr: the mutex
    /// may still be on this thread's robust list, and nothing may go on as
    /// if it were released (see the crate docs).
    #[inline]
    pub fn unlock(&self) {
        let rc = sys::unlock(&self.m);
        if rc != 0 {
            unlock_failed(rc);
        }
    }

    /// The mutex itself, for a pthread call that takes it beside another
    /// object (`pthread_cond_timedwait`, `pthread_cond_clockwait`). The
    /// pointer is valid for as long as the cell is borrowed; glibc may
    /// write through it although it comes from a shared borrow (it is an
    /// `UnsafeCell`).
    #[inline]
    pub fn as_ptr(&self) -> *mut pthread_mutex_t {
        self.m.get()
    }

    /// The cell, for this crate's own calls on it (`sys.rs`).
    #[inline]
    pub(crate) fn cell(&self) -> &UnsafeCell<pthread_mutex_t> {
        &self.m
    }
}

#[cold]
#[inline(never)]
fn unlock_failed(rc: c_int) -> ! {
    sys::fatal(&format!(
        "shmlab: fatal: pthread_mutex_unlock failed ({}): the mutex was destroyed or overwritten while held, or this thread does not hold it; going on could leave it on glibc's robust list after its memory is unmapped",
        std::io::Error::from_raw_os_error(rc)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const LONG: Duration = Duration::from_secs(10);

    /// A cell initialised in zeroed boxed memory, which never moves while
    /// the test uses it.
    fn cell(robust: bool) -> Box<std::mem::MaybeUninit<MutexCell>> {
        let mut m = Box::new(std::mem::MaybeUninit::<MutexCell>::zeroed());
        // SAFETY: zeroed, aligned boxed storage that nobody else sees yet.
        unsafe { MutexCell::init(m.as_mut_ptr(), robust) }.unwrap();
        m
    }

    #[test]
    fn it_is_glibcs_mutex_exactly() {
        assert_eq!(
            std::mem::size_of::<MutexCell>(),
            std::mem::size_of::<pthread_mutex_t>()
        );
        assert_eq!(
            std::mem::align_of::<MutexCell>(),
            std::mem::align_of::<pthread_mutex_t>()
        );
    }

    /// Threads taking turns through every lock call: a load and a store
    /// (no read-modify-write) lose no increment only under mutual
    /// exclusion.
    #[test]
    fn threads_take_turns() {
        for robust in [false, true] {
            let m = cell(robust);
            // SAFETY: initialised by `cell`.
            let m = unsafe { m.assume_init_ref() };
            let n = AtomicU64::new(0);
            std::thread::scope(|s| {
                for t in 0..4 {
                    let (m, n) = (m, &n);
                    s.spawn(move || {
                        for i in 0..5_000u32 {
                            let a = match (t + i) % 3 {
                                0 => m.lock().unwrap(),
                                1 => m.lock_timeout(LONG).unwrap().unwrap(),
                                _ => loop {
                                    if let Some(a) = m.try_lock().unwrap() {
                                        break a;
                                    }
                                    std::thread::yield_now();
                                },
                            };
                            assert_eq!(a, Acquired::Clean);
                            n.store(n.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                            m.unlock();
                        }
                    });
                }
            });
            assert_eq!(n.load(Ordering::Relaxed), 20_000, "robust: {robust}");
        }
    }

    /// Held by one thread: another's timed lock gives up, its try_lock
    /// sees it busy, and the holder's relock is refused (error-checking).
    #[test]
    fn a_held_cell_times_out_elsewhere() {
        let m = cell(true);
        // SAFETY: initialised by `cell`.
        let m = unsafe { m.assume_init_ref() };
        assert_eq!(m.lock().unwrap(), Acquired::Clean);
        assert_eq!(
            m.lock_timeout(Duration::from_millis(10)),
            Err(("pthread_mutex_clocklock", libc::EDEADLK))
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                let start = std::time::Instant::now();
                assert_eq!(m.lock_timeout(Duration::from_millis(20)), Ok(None));
                assert!(start.elapsed() >= Duration::from_millis(20));
                assert_eq!(m.try_lock(), Ok(None));
            });
        });
        m.unlock();
    }

    /// A thread that ends holding a robust cell is reported, once, to the
    /// next locker (through each lock call), and the cell works afterwards.
    #[test]
    fn a_holder_that_ended_is_a_dead_owner() {
        let m = cell(true);
        // SAFETY: initialised by `cell`.
        let m = unsafe { m.assume_init_ref() };
        let died = Acquired::PreviousOwnerDied { owner: None };
        let die_holding = || {
            std::thread::scope(|s| {
                s.spawn(|| assert_eq!(m.lock(), Ok(Acquired::Clean)));
            });
        };
        die_holding();
        assert_eq!(m.lock_timeout(LONG), Ok(Some(died)));
        m.unlock();
        assert_eq!(m.lock_timeout(LONG), Ok(Some(Acquired::Clean)));
        m.unlock();
        die_holding();
        assert_eq!(m.lock(), Ok(died));
        m.unlock();
        die_holding();
        // The scope ends when the thread's closure has returned; the
        // kernel marks the mutex only once the thread's exit is complete,
        // a moment later: until then the mutex is busy.
        let start = std::time::Instant::now();
        let a = loop {
            if let Some(a) = m.try_lock().unwrap() {
                break a;
            }
            assert!(start.elapsed() < LONG, "the holder never ended");
            std::thread::yield_now();
        };
        assert_eq!(a, died);
        m.unlock();
        assert_eq!(m.lock(), Ok(Acquired::Clean));
        m.unlock();
    }
}
