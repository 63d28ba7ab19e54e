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
//! The split follows `lock_api`: an `unsafe trait` [`RawLock`] for the raw
//! operations, a separate [`RawLockTimed`] for locks with a native bounded
//! wait, and one [`Lock`]/[`Guard`] pair written once over them. The race
//! workload, the labs and the benches are generic over [`RawLock`]; they
//! take the lock through [`Lock::lock`], which returns a [`Guard`] that
//! unlocks on drop.
//!
//! A lock also describes itself to readers that do not use it:
//! [`InspectLock::inspect`] reads a private copy of its state into a
//! lock-agnostic [`LockInfo`] (holder, waiters, value, notes), which is
//! what `shmlab ps` reports, whatever the lock.
//!
//! **No attaching before init.** An all-zero `pthread_mutex_t` or `sem_t` is
//! a valid *process-private* object: attaching to one across processes
//! would use private futex operations and lose wake-ups. So payloads hold a
//! lock's state as a [`LockState<L>`], which has no public constructor: safe
//! code can only reach one through a [`Region`](crate::Region), which hands
//! out its payload only after the creator initialised it and published
//! "ready" (or to the creator itself, after `init`). [`Lock::attach`] takes
//! a `&LockState<L>` and is therefore safe; [`RawLock::attach`], which takes
//! the bare state, is `unsafe`.
//!
//! ```compile_fail
//! // A bare state cannot be attached to through the safe API...
//! fn attach<L: shm::lock::RawLock>(state: &L::State) {
//!     let _ = shm::lock::Lock::<L>::attach(state);
//! }
//! ```
//!
//! ```compile_fail
//! // ...the raw attach is `unsafe`...
//! fn attach<L: shm::lock::RawLock>(state: &L::State) {
//!     let _ = L::attach(state);
//! }
//! ```
//!
//! ```compile_fail
//! // ...and so is destroying a state others may still use.
//! fn destroy<L: shm::lock::RawLock>(state: &L::State, ctx: &shm::InitCtx<'_>) {
//!     L::destroy(state, ctx);
//! }
//! ```

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
/// `lock`/`try_lock` (or [`RawLockTimed::lock_timeout`]) and the matching
/// `unlock`, no other caller's acquisition may succeed, and `unlock` must
/// release with at least `Release` ordering and every acquisition acquire
/// with `Acquire`, so that writes made under the lock are visible to the
/// next holder.
///
/// `State` must be laid out for sharing: `#[repr(C)]` (the same layout in
/// every process mapping it), free of pointers into one process's memory,
/// interior-mutable (atomics, `UnsafeCell`, or C objects made to be shared,
/// such as a process-shared `pthread_mutex_t`), valid when all zeroes (a
/// region is zero-filled before `init`) and after `init` returned `Ok`, and
/// usable where it lies: it is never moved or copied.
pub unsafe trait RawLock: Sized + Send + Sync {
    /// What the lock keeps inside the region (see the trait's `# Safety`);
    /// [`AnyBits`](crate::AnyBits), since a peer may write any bytes there.
    type State: Sync + crate::AnyBits;
    /// What `lock` and friends report.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The sync mode's name, e.g. `futex`: the one place a lock's name is
    /// written (the race registry, tables and JSON take it from here).
    const NAME: &'static str;

    /// Initialises the state in place. Only the region's creator calls this,
    /// once, before publishing the region.
    ///
    /// # Safety
    /// `state` points to zeroed, aligned memory inside a shared mapping that
    /// no other thread or process uses yet, and that will not move.
    unsafe fn init(state: *mut Self::State, ctx: &crate::InitCtx<'_>) -> Result<(), Self::Error>;

    /// Makes this process's handle to an initialised state (e.g. `sem_open`
    /// of the name stored in the state). Safe code calls [`Lock::attach`].
    ///
    /// # Safety
    /// `init` has returned `Ok` for `state`, and that is visible to this
    /// thread (the region's "ready" was observed with `Acquire`, or this
    /// thread ran `init`); `destroy` has not been called.
    unsafe fn attach(state: &Self::State) -> Result<Self, Self::Error>;

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

    /// The pid (or tid) of the current or last holder, where the lock
    /// records one; used to tell a wedged lock from a busy one.
    fn last_holder(&self, _state: &Self::State) -> Option<i32> {
        None
    }

    /// Releases what `init` made (destroy a mutex, unlink a semaphore's
    /// name). Default: nothing.
    ///
    /// Safe code can get here while the lock is still held (a region's
    /// creator handle dropped while another handle to it, in this process
    /// or a peer's, holds the lock; a peer that breaks the protocol), so an
    /// implementation for which destroying a held lock would be unsound
    /// must check instead of trusting the contract below, and leave such a
    /// lock as it is: the region is being unlinked anyway, and the holder
    /// must still be able to unlock it.
    ///
    /// # Safety
    /// Called at most once, by the creator, when the region is removed, after
    /// every other user — every thread and process that attached — is done
    /// with the state and none holds the lock: a destroyed mutex or
    /// semaphore is undefined to use.
    unsafe fn destroy(_state: &Self::State, _ctx: &crate::InitCtx<'_>) {}

    /// Runs in every process, for every handle of a region (creator or
    /// not), just before that handle unmaps the state — before
    /// [`destroy`](Self::destroy) where the handle is the creator's. A lock
    /// whose state some thread of this process may still reference from
    /// outside the region must not let the mapping go: glibc's robust
    /// pthread mutex sits on its holder's *robust list* (a list that glibc
    /// and the kernel follow through the mutex's address), so unmapping it
    /// while a thread of this process holds it — a forgotten or leaked
    /// guard — would leave glibc writing into whatever is mapped there
    /// next. Such a lock aborts the process here instead (it cannot unlock
    /// on another thread's behalf, and returning would be unsound).
    /// Default: nothing (a lock that nothing outside the region points
    /// into).
    fn before_unmap(_state: &Self::State) {}
}

/// A lock with a native bounded wait: how a caller avoids hanging forever on
/// a lock whose holder died (a semaphore cannot know that). A separate trait,
/// as in `lock_api`'s `RawMutexTimed`, so that no lock gets a polling
/// imitation by default.
pub trait RawLockTimed: RawLock {
    /// Like [`RawLock::lock`], but gives up after `timeout` (measured on the
    /// monotonic clock) and returns `Ok(None)`.
    fn lock_timeout(
        &self,
        state: &Self::State,
        timeout: std::time::Duration,
    ) -> Result<Option<Acquired>, Self::Error>;
}

/// A lock's state as a payload holds it: [`RawLock::State`] that can only
/// be reached once initialised (see the module docs). `#[repr(transparent)]`,
/// so it has exactly the state's layout; no public constructor, no `Default`,
/// no `Clone`.
#[repr(transparent)]
pub struct LockState<L: RawLock>(L::State);

impl<L: RawLock> LockState<L> {
    /// Initialises the state in place ([`RawLock::init`]), from a payload's
    /// [`Shared::init_in_place`](crate::Shared::init_in_place).
    ///
    /// # Safety
    /// As [`RawLock::init`]: `this` points to zeroed, aligned memory inside a
    /// shared mapping that no other thread or process uses yet, and that will
    /// not move.
    pub unsafe fn init(this: *mut Self, ctx: &crate::InitCtx<'_>) -> Result<(), L::Error> {
        // SAFETY: repr(transparent): `this` addresses the state itself; the
        // caller upholds RawLock::init's contract.
        unsafe { L::init(this.cast::<L::State>(), ctx) }
    }

    /// The raw state, for reading what the lock exposes about itself.
    pub fn raw(&self) -> &L::State {
        &self.0
    }

    /// Releases what `init` made ([`RawLock::destroy`]), from a payload's
    /// [`Shared::destroy`](crate::Shared::destroy).
    ///
    /// # Safety
    /// As [`RawLock::destroy`].
    pub unsafe fn destroy(&self, ctx: &crate::InitCtx<'_>) {
        // SAFETY: forwarded to our caller.
        unsafe { L::destroy(&self.0, ctx) }
    }

    /// [`RawLock::before_unmap`], from a payload's
    /// [`Shared::before_unmap`](crate::Shared::before_unmap): every payload
    /// that holds a `LockState` forwards to this for each one.
    pub fn before_unmap(&self) {
        L::before_unmap(&self.0);
    }
}

impl<L: RawLock> fmt::Debug for LockState<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockState").field("kind", &L::NAME).finish()
    }
}

/// A lock's state together with this process's handle: the thing workloads
/// hold and call [`lock`](Self::lock) on.
pub struct Lock<'a, L: RawLock> {
    state: &'a L::State,
    raw: L,
}

impl<'a, L: RawLock> Lock<'a, L> {
    /// Attaches to a lock state in a mapped region. Safe: a
    /// [`LockState`] is only reachable once initialised.
    pub fn attach(state: &'a LockState<L>) -> Result<Self, L::Error> {
        // SAFETY: a `&LockState` exists only inside a payload that its
        // region handed out after init (see the module docs), and `destroy`
        // runs only when the region is dropped, after this borrow ends.
        let raw = unsafe { L::attach(&state.0) }?;
        Ok(Lock {
            raw,
            state: &state.0,
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
    ) -> Result<Option<Guard<'_, 'a, L>>, L::Error>
    where
        L: RawLockTimed,
    {
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

    /// Releases the lock without running `Drop` twice: the same as dropping
    /// the guard, spelled out where the release is the point.
    pub fn unlock(self) {
        drop(self);
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

/// What a lock's state says about the lock, as someone who does not use it
/// reads it (`shmlab ps`): one lock-agnostic description that every lock
/// fills in through [`InspectLock`], so that a reader needs no list of
/// locks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// In a word: `free`, `held`, `owner died`, `not recoverable`, or
    /// `unknown` (the state does not say).
    pub state: &'static str,
    /// Who holds it now, as the lock records it (an id of the kind
    /// [`ids`](Self::ids) says). For a lock with no owner (a semaphore at
    /// 0), the last process that took it.
    pub holder: Option<i32>,
    /// What the lock's ids name: threads or processes.
    pub ids: Ids,
    /// The last process that took it, held or not, for a lock that records
    /// that apart from a holder (the semaphores).
    pub last_taken_by: Option<i32>,
    /// Who waits, as far as the lock records it.
    pub waiters: Waiters,
    /// A counting lock's value (a semaphore's: 1 free, 0 held); `None`
    /// when the lock has none or it could not be read.
    pub value: Option<i32>,
    /// The name of the object outside the region that holds the lock (a
    /// named semaphore's), exactly the bytes the state stores: a peer may
    /// have stored any bytes, so check them before using them as a name
    /// and escape them before printing them.
    pub object: Option<Vec<u8>>,
    /// What else a reader should know (a dead holder, how to repair, what
    /// the lock cannot record), in sentences. Every byte in them that came
    /// from shared memory or from outside is escaped
    /// ([`escape_bytes`](crate::listing::escape_bytes)): they hold no
    /// control character.
    pub notes: Vec<String>,
}

impl LockInfo {
    /// A free lock that names nobody, records no waiters and has no value:
    /// what an implementation starts from.
    pub fn free(ids: Ids) -> Self {
        LockInfo {
            state: "free",
            holder: None,
            ids,
            last_taken_by: None,
            waiters: Waiters::NotRecorded,
            value: None,
            object: None,
            notes: Vec::new(),
        }
    }
}

/// What the ids a lock records name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// Kernel thread ids (the futex and spin locks, pthread mutexes).
    Threads,
    /// Process ids (the semaphores, which record the last taker's pid).
    Processes,
}

impl Ids {
    /// `tid` or `pid`.
    pub fn word(self) -> &'static str {
        match self {
            Ids::Threads => "tid",
            Ids::Processes => "pid",
        }
    }
}

/// What a lock records about who waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiters {
    /// An exact count of sleepers (glibc semaphores' `nwaiters`).
    Count(u32),
    /// A flag: someone waits (or waited: the flag may be stale), not how
    /// many.
    Flag {
        /// Whether it is set.
        any: bool,
        /// What a set flag is, in words (`FUTEX_WAITERS is set: ...`).
        means: &'static str,
    },
    /// The lock does not record its waiters.
    NotRecorded,
}

/// A lock that can say what its state records (holder, waiters, value)
/// from a copy of that state: what `shmlab ps` shows for it. Every lock of
/// the race registry implements it, beside the lock, since
/// `race::ModeVisitor::region_lock` requires it; a lock added there is
/// then decoded by the tool with no other change.
pub trait InspectLock: RawLock {
    /// Whether the lock tells the next locker that its holder died
    /// ([`Acquired::PreviousOwnerDied`]) instead of staying held by the
    /// dead: what the torture expects of it (recover every time, or wedge
    /// and be caught).
    const RECOVERS_OWNER_DEATH: bool;

    /// Describes the lock from `state`, a private copy of a region's state
    /// (a peer may have stored any bytes in it: nothing read from it is
    /// trusted, counts are checked, nothing panics), and `bytes`, the bytes
    /// it was copied from (`size_of::<Self::State>()` of them, or fewer if
    /// the caller could not read them: missing bytes are unknown), for the
    /// C library's internals that the state's type does not expose.
    /// `liveness` says whether a thread or process the state names is
    /// alive, for the notes about a dead holder (a caller asks `/proc`
    /// once per id, so that its report and the notes agree).
    ///
    /// It only reads: it never calls the lock, and opens nothing but what
    /// the state names inside `/dev/shm` (a named semaphore's file), the
    /// safe way ([`read_entry`](crate::listing::read_entry)), after
    /// checking the name.
    fn inspect(
        state: &Self::State,
        bytes: &[u8],
        liveness: &dyn Fn(i32) -> crate::process::Liveness,
    ) -> LockInfo;
}
