//! The one lock trait every shmlab lock implements, and the guard written
//! once over it.
//!
//! A lock has two halves:
//! - its **state**, `#[repr(C)]`, living inside a shared region and never
//!   moved (a futex word, a `pthread_mutex_t`, a `sem_t`, or a named
//!   semaphore's name);
//! - a per-process **handle** (`Self`), made by [`RawLock::attach`] once the
//!   region is mapped: for most locks it is empty, for a named semaphore it
//!   is the `sem_t *` that `sem_open` returned in this process.
//!
//! The race workload, the labs and the benches are generic over
//! [`RawLock`]; they take the lock through [`Lock::lock`], which returns a
//! [`Guard`] that unlocks on drop.

use std::fmt;
use std::marker::PhantomData;

/// How a lock was acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Acquired {
    /// The ordinary case.
    Clean,
    /// The previous owner died holding the lock; the lock has been made
    /// usable again, but the data it protected may be half-updated.
    PreviousOwnerDied {
        /// The dead owner's pid or tid, where the lock knows it.
        owner: Option<i32>,
    },
}

/// A lock whose state lives in shared memory.
///
/// # Safety
/// Implementations must provide mutual exclusion across every thread of
/// every process that attached to the same `State`: between a successful
/// `lock`/`try_lock` and the matching `unlock`, no other caller's
/// `lock`/`try_lock` may succeed, and `unlock` must release with at least
/// `Release` ordering and `lock` acquire with `Acquire`, so that writes made
/// under the lock are visible to the next holder.
pub unsafe trait RawLock: Sized + Send + Sync {
    /// What the lock keeps inside the region. `#[repr(C)]`, valid when
    /// zeroed (before `init`), interior-mutable.
    type State: Sync;
    /// What `lock` and friends report.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The sync mode's name, e.g. `futex`.
    const NAME: &'static str;
    /// Whether the lock works across processes (a thread-only baseline such
    /// as `std::sync::Mutex` says `false`).
    const CROSS_PROCESS: bool = true;

    /// Initialises the state in place. Only the region's creator calls this,
    /// once, before publishing the region.
    ///
    /// # Safety
    /// `state` points to zeroed, aligned memory inside a shared mapping that
    /// no other thread or process uses yet, and that will not move.
    unsafe fn init(state: *mut Self::State, ctx: &crate::InitCtx<'_>) -> Result<(), Self::Error>;

    /// Makes this process's handle to an initialised state (e.g. `sem_open`
    /// of the name stored in the state).
    fn attach(state: &Self::State) -> Result<Self, Self::Error>;

    /// Blocks until the lock is held.
    fn lock(&self, state: &Self::State) -> Result<Acquired, Self::Error>;

    /// Takes the lock if it is free; `Ok(None)` if it is held.
    fn try_lock(&self, state: &Self::State) -> Result<Option<Acquired>, Self::Error>;

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller holds the lock (it was acquired through this state, by
    /// this thread for locks that track their owner).
    unsafe fn unlock(&self, state: &Self::State);

    /// Like [`lock`](Self::lock), but gives up after `timeout` and returns
    /// `Ok(None)`: how a caller avoids hanging forever on a lock whose
    /// holder died (a semaphore cannot know that). The default polls
    /// `try_lock` with a short sleep; locks with a native timed wait
    /// override it.
    fn lock_timeout(
        &self,
        state: &Self::State,
        timeout: std::time::Duration,
    ) -> Result<Option<Acquired>, Self::Error> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(how) = self.try_lock(state)? {
                return Ok(Some(how));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// The pid (or tid) of the current or last holder, where the lock
    /// records one; used to tell a wedged lock from a busy one.
    fn last_holder(&self, _state: &Self::State) -> Option<i32> {
        None
    }

    /// Releases what `init` made (destroy a mutex, unlink a semaphore's
    /// name). Called once by the creator when the region is removed, after
    /// every other user is done.
    fn destroy(_state: &Self::State, _ctx: &crate::InitCtx<'_>) {}
}

/// A lock's state together with this process's handle: the thing workloads
/// hold and call [`lock`](Self::lock) on.
pub struct Lock<'a, L: RawLock> {
    state: &'a L::State,
    raw: L,
}

impl<'a, L: RawLock> Lock<'a, L> {
    /// Attaches to an initialised state in a mapped region.
    pub fn attach(state: &'a L::State) -> Result<Self, L::Error> {
        Ok(Lock {
            raw: L::attach(state)?,
            state,
        })
    }

    /// Blocks until held; the guard unlocks on drop.
    #[inline]
    pub fn lock(&self) -> Result<Guard<'_, 'a, L>, L::Error> {
        let how = self.raw.lock(self.state)?;
        Ok(Guard {
            lock: self,
            how,
            _not_send: PhantomData,
        })
    }

    /// Takes the lock if free.
    #[inline]
    pub fn try_lock(&self) -> Result<Option<Guard<'_, 'a, L>>, L::Error> {
        Ok(self.raw.try_lock(self.state)?.map(|how| Guard {
            lock: self,
            how,
            _not_send: PhantomData,
        }))
    }

    /// Blocks for at most `timeout`; `Ok(None)` if the lock stayed held.
    pub fn lock_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Option<Guard<'_, 'a, L>>, L::Error> {
        Ok(self
            .raw
            .lock_timeout(self.state, timeout)?
            .map(|how| Guard {
                lock: self,
                how,
                _not_send: PhantomData,
            }))
    }

    /// The per-process handle.
    pub fn raw(&self) -> &L {
        &self.raw
    }

    /// The shared state.
    pub fn state(&self) -> &'a L::State {
        self.state
    }
}

impl<L: RawLock> fmt::Debug for Lock<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("kind", &L::NAME).finish()
    }
}

/// Proof that the lock is held; unlocks on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard<'g, 'a, L: RawLock> {
    lock: &'g Lock<'a, L>,
    how: Acquired,
    /// `!Send`: a pthread mutex must be unlocked by the thread that locked it.
    _not_send: PhantomData<*const ()>,
}

impl<L: RawLock> Guard<'_, '_, L> {
    /// How the lock was acquired (did the previous owner die?).
    pub fn acquired(&self) -> Acquired {
        self.how
    }
}

impl<L: RawLock> Drop for Guard<'_, '_, L> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: a Guard exists only after a successful lock/try_lock on
        // this state, by this thread (Guard is !Send), and is dropped once.
        unsafe { self.lock.raw.unlock(self.lock.state) }
    }
}

impl<L: RawLock> fmt::Debug for Guard<'_, '_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("kind", &L::NAME)
            .field("acquired", &self.how)
            .finish()
    }
}
