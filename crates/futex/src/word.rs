//! The owner word: what both locks do with a lock word of the form
//! `[flag | tid]` and the owner record beside it.
//!
//! Both locks keep the same 16 bytes in a region, an [`OwnerWord`]:
//!
//! | value of the word | meaning |
//! |---|---|
//! | `0` | unlocked |
//! | `tid` | locked by thread `tid` |
//! | `tid \| FLAG` | locked by `tid`, with the lock's own flag set |
//!
//! and, next to it, the holder's *owner record* (see `owner`). Everything
//! that reads or writes the word as an owner word is here, written once:
//! acquiring an unlocked word (one `Acquire` compare-exchange, then the
//! record), examining a held one (whose tid, is it the caller, alive or
//! dead: [`owner::check`]), taking over a dead holder's word, and releasing
//! (clear the record, one `Release` swap). A lock adds only what differs,
//! through [`Wait`]: its flag bit (the kernel's `FUTEX_WAITERS` for the
//! futex lock, none for the spin lock), how a waiter waits, and what an
//! unlock must do after the swap.
//!
//! The lock-trait plumbing the two locks share is written once too, by
//! [`owner_word_lock!`]: the state's `new`, `holder` and `Default`, the
//! handle's `new` and `lock_timeout`, and the handle's `RawLock` and
//! `RawLockTimed` impls, each a one-line call into the word. The fast path
//! of `lock` stays one compare-exchange (and the owner record's store).

use crate::FutexError;
use crate::owner::{self, Holder, Me};
use crate::sync::{self, AtomicU32, AtomicU64, Instant, Ordering::*};
use shm::lock::Acquired;
use std::marker::PhantomData;
use std::time::Duration;

/// Word value: nobody holds the lock.
pub(crate) const UNLOCKED: u32 = 0;

/// What an attempt to take a lock returns: `Ok(Some(how))` if it took it,
/// `Ok(None)` if not (held by a live thread, or a deadline passed).
pub(crate) type Attempt = Result<Option<Acquired>, FutexError>;

/// What a lock adds to an [`OwnerWord`]: the part where the locks differ.
pub(crate) trait Wait: Sized {
    /// The flag bit this lock keeps above the tid, or 0 for none. Tids stay
    /// below 2^22 (the largest `pid_max`), so the top bits are free. A
    /// waiter that takes over from a dead holder sets it (others may wait
    /// behind the dead holder, and they must be told in turn).
    const FLAG: u32;

    /// The contended path, entered once the fast path's compare-exchange
    /// failed: wait until the word can be taken (through
    /// [`OwnerWord::try_acquire`] and friends) or taken over
    /// ([`OwnerWord::examine`]). `Ok(None)` only if `deadline` passed.
    fn lock_contended(word: &OwnerWord<Self>, me: Me, deadline: Option<Instant>) -> Attempt;

    /// After an unlock swapped `old` out of the word (e.g. wake a sleeper
    /// if `old` has the flag). Default: nothing.
    #[inline]
    fn unlocked(_word: &OwnerWord<Self>, _old: u32) {}
}

/// A lock word `[W::FLAG | tid]` and its owner record; 16 bytes, valid when
/// zeroed. `W` is the lock whose word it is (see [`Wait`]).
#[repr(C)]
pub(crate) struct OwnerWord<W> {
    /// `0`, `tid` or `tid | W::FLAG` (see the module docs); what a futex
    /// waiter sleeps on.
    word: AtomicU32,
    /// Unused; keeps `owner` 8-byte aligned and the layout explicit.
    _reserved: AtomicU32,
    /// The holder's tid (low 32 bits) and start time (high 32 bits), written
    /// right after acquiring and zeroed right before releasing; 0 while
    /// unlocked or between a holder's compare-exchange and its record.
    owner: AtomicU64,
    _lock: PhantomData<fn() -> W>,
}

impl<W> OwnerWord<W> {
    sync::const_fn_unless_loom! {
        /// An unlocked word (all zeroes).
        pub(crate) fn new() -> Self {
            OwnerWord {
                word: AtomicU32::new(UNLOCKED),
                _reserved: AtomicU32::new(0),
                owner: AtomicU64::new(0),
                _lock: PhantomData,
            }
        }
    }

    /// `FUTEX_WAIT` on the word (shared): sleeps while it reads `expected`,
    /// at most `timeout`; `Ok(false)` if the timeout passed. For a lock
    /// whose waiters sleep.
    #[inline]
    pub(crate) fn wait(&self, expected: u32, timeout: Duration) -> Result<bool, FutexError> {
        sync::wait(&self.word, expected, timeout)
    }

    /// `FUTEX_WAKE` of one sleeper in [`wait`](OwnerWord::wait), in any
    /// process.
    #[inline]
    pub(crate) fn wake_one(&self) {
        sync::wake_one(&self.word);
    }

    /// The word itself, for tests that fake a holder.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn atomic(&self) -> &AtomicU32 {
        &self.word
    }

    /// A `Relaxed` snapshot of the word, for a waiter's loop.
    #[inline]
    pub(crate) fn load(&self) -> u32 {
        self.word.load(Relaxed)
    }

    /// The owner record (tests check that unlock cleared it).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn record(&self) -> u64 {
        self.owner.load(Relaxed)
    }
}

impl<W: Wait> OwnerWord<W> {
    /// The tid in a word value.
    #[inline]
    pub(crate) fn tid_in(&self, seen: u32) -> u32 {
        seen & !W::FLAG
    }

    /// Whether the word value `seen` names the calling thread: it holds the
    /// lock already, or a dead thread that had its tid does ([`examine`]
    /// tells which, without waiting).
    ///
    /// [`examine`]: OwnerWord::examine
    #[inline]
    pub(crate) fn is_mine(&self, seen: u32, me: Me) -> bool {
        self.tid_in(seen) == me.tid()
    }

    /// The tid in the word: the current holder, live or dead.
    pub(crate) fn holder(&self) -> Option<i32> {
        match self.tid_in(self.load()) {
            0 => None,
            tid => Some(tid as i32),
        }
    }

    /// Takes an unlocked word for `me` (`0 → tid`, `Acquire`) and records
    /// the owner; `Err` with the word seen otherwise.
    #[inline]
    pub(crate) fn try_acquire(&self, me: Me) -> Result<(), u32> {
        self.acquire_from(UNLOCKED, me.tid(), me).map(drop)
    }

    /// As [`try_acquire`](OwnerWord::try_acquire), but sets the flag
    /// (`0 → tid | FLAG`): for a waiter that cannot know whether others
    /// still wait.
    #[inline]
    pub(crate) fn try_acquire_flagged(&self, me: Me) -> Result<(), u32> {
        self.acquire_from(UNLOCKED, me.tid() | W::FLAG, me)
            .map(drop)
    }

    /// Sets the flag on a held word that still reads `seen` (`Relaxed`: it
    /// publishes nothing but "someone waits"); the new or the current value.
    #[inline]
    pub(crate) fn set_flag(&self, seen: u32) -> Result<u32, u32> {
        self.word
            .compare_exchange(seen, seen | W::FLAG, Relaxed, Relaxed)
            .map(|_| seen | W::FLAG)
    }

    /// `seen → to` by one `Acquire` compare-exchange, then the owner record.
    #[inline]
    fn acquire_from(&self, seen: u32, to: u32, me: Me) -> Result<u32, u32> {
        let r = self.word.compare_exchange(seen, to, Acquire, Relaxed);
        if r.is_ok() {
            owner::record(&self.owner, me);
        }
        r
    }

    /// Checks the holder in `seen` (a locked word value). Takes the lock over
    /// (`seen → my tid | FLAG`) if the holder is dead and the word still
    /// reads `seen`; reports our own tid as a deadlock; `Ok(None)` if the
    /// holder lives or the word changed.
    #[cold]
    pub(crate) fn examine(&self, seen: u32, me: Me) -> Attempt {
        // Acquire: pairs with the Release unlock that preceded the current
        // holder's compare-exchange, so the record we read next is not an
        // older holder's.
        if self.word.load(Acquire) != seen {
            return Ok(None);
        }
        let dead = self.tid_in(seen);
        match owner::check(dead, self.owner.load(Relaxed), me) {
            Holder::Alive => Ok(None),
            Holder::Me => Err(FutexError::Deadlock {
                tid: me.tid() as i32,
            }),
            // Set the flag (a futex lock keeps it): others may wait behind
            // the dead holder, and our unlock must tell them.
            Holder::Dead => match self.acquire_from(seen, me.tid() | W::FLAG, me) {
                Ok(_) => Ok(Some(Acquired::PreviousOwnerDied {
                    owner: Some(dead as i32),
                })),
                Err(_) => Ok(None),
            },
        }
    }

    /// [`RawLock::lock`](shm::lock::RawLock::lock): one compare-exchange,
    /// else the lock's contended path.
    #[inline]
    pub(crate) fn lock(&self) -> Result<Acquired, FutexError> {
        match self.acquire(|| None)? {
            Some(how) => Ok(how),
            None => unreachable!("a wait without a deadline cannot time out"),
        }
    }

    /// [`RawLockTimed::lock_timeout`](shm::lock::RawLockTimed::lock_timeout):
    /// as [`lock`](OwnerWord::lock), giving up after `timeout`.
    #[inline]
    pub(crate) fn lock_timeout(&self, timeout: Duration) -> Attempt {
        // An unrepresentable deadline is "never".
        self.acquire(|| Instant::now().checked_add(timeout))
    }

    /// The fast path, then (only if it fails, so the clock is read only
    /// then) the contended path with the deadline.
    #[inline]
    fn acquire(&self, deadline: impl FnOnce() -> Option<Instant>) -> Attempt {
        let me = owner::me();
        if self.try_acquire(me).is_ok() {
            return Ok(Some(Acquired::Clean));
        }
        W::lock_contended(self, me, deadline())
    }

    /// [`RawLock::try_lock`](shm::lock::RawLock::try_lock): never takes
    /// over from a dead holder.
    #[inline]
    pub(crate) fn try_lock(&self) -> Attempt {
        Ok(self
            .try_acquire(owner::me())
            .is_ok()
            .then_some(Acquired::Clean))
    }

    /// [`RawLock::unlock`](shm::lock::RawLock::unlock): clears the record,
    /// swaps the word to 0 (`Release`), and hands the old word to
    /// [`Wait::unlocked`].
    ///
    /// # Safety
    /// The calling thread holds the lock.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        owner::clear(&self.owner);
        let old = self.word.swap(UNLOCKED, Release);
        debug_assert_eq!(
            self.tid_in(old),
            owner::me().tid(),
            "{} unlocked by a thread that does not hold it",
            std::any::type_name::<W>()
        );
        W::unlocked(self, old);
    }
}

/// Writes what every lock built on an [`OwnerWord`] has in common, each
/// item a call into the word: the state's `new`, `holder` and `Default`;
/// the handle's `new` and `lock_timeout` (documented by the caller, since
/// how long it may overshoot depends on how the lock waits); and the
/// handle's `RawLock` and `RawLockTimed` impls.
///
/// `$state` must be a struct whose only field is `word: OwnerWord<$lock>`,
/// and `$lock` an empty handle `{ _private: () }` that implements [`Wait`].
macro_rules! owner_word_lock {
    (
        lock: $lock:ident,
        state: $state:ident,
        name: $name:literal,
        $(#[$timeout_doc:meta])*
        fn lock_timeout;
    ) => {
        impl $state {
            $crate::sync::const_fn_unless_loom! {
                /// An unlocked state (all zeroes).
                pub fn new() -> Self {
                    $state {
                        word: $crate::word::OwnerWord::new(),
                    }
                }
            }

            /// The tid in the lock word: the current holder, live or dead.
            pub fn holder(&self) -> Option<i32> {
                self.word.holder()
            }
        }

        impl Default for $state {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $lock {
            /// A handle (what [`RawLock::attach`](shm::lock::RawLock::attach)
            /// returns).
            pub const fn new() -> Self {
                $lock { _private: () }
            }

            $(#[$timeout_doc])*
            pub fn lock_timeout(
                &self,
                state: &$state,
                timeout: ::std::time::Duration,
            ) -> Result<Option<::shm::lock::Acquired>, $crate::FutexError> {
                state.word.lock_timeout(timeout)
            }
        }

        // SAFETY: mutual exclusion, all of it in `OwnerWord` (word.rs), whose
        // word only its own methods change: it goes from 0, or from a dead
        // holder's value (whose thread can no longer touch it), to the
        // caller's tid only by a successful `Acquire` compare-exchange
        // (`try_acquire`, `try_acquire_flagged`, `examine`), and back to 0
        // only by the holder's `Release` swap in `unlock`; `set_flag` keeps
        // the tid; a live holder's tid is never replaced, because takeover
        // requires `owner::check` to find its thread gone. The state is
        // `#[repr(C)]` atomics, valid when zeroed.
        unsafe impl ::shm::lock::RawLock for $lock {
            type State = $state;
            type Error = $crate::FutexError;
            const NAME: &'static str = $name;

            unsafe fn init(
                state: *mut $state,
                _ctx: &::shm::InitCtx<'_>,
            ) -> Result<(), $crate::FutexError> {
                // SAFETY: the caller promises `state` is aligned, writable
                // and not yet shared; writing a fresh value over zeroes
                // drops nothing.
                unsafe { state.write(<$state>::new()) };
                Ok(())
            }

            unsafe fn attach(_state: &$state) -> Result<Self, $crate::FutexError> {
                Ok(<$lock>::new())
            }

            #[inline]
            fn lock(&self, state: &$state) -> Result<::shm::lock::Acquired, $crate::FutexError> {
                state.word.lock()
            }

            #[inline]
            fn try_lock(
                &self,
                state: &$state,
            ) -> Result<Option<::shm::lock::Acquired>, $crate::FutexError> {
                state.word.try_lock()
            }

            #[inline]
            unsafe fn unlock(&self, state: &$state) {
                // SAFETY: the caller holds the lock (this method's contract).
                unsafe { state.word.unlock() }
            }

            fn last_holder(&self, state: &$state) -> Option<i32> {
                state.holder()
            }
        }

        impl ::shm::lock::RawLockTimed for $lock {
            fn lock_timeout(
                &self,
                state: &$state,
                timeout: ::std::time::Duration,
            ) -> Result<Option<::shm::lock::Acquired>, $crate::FutexError> {
                <$lock>::lock_timeout(self, state, timeout)
            }
        }
    };
}
pub(crate) use owner_word_lock;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{FutexLock, FutexState, SpinLock, SpinState};
    use std::mem::{align_of, size_of};

    #[test]
    fn layout_is_fixed() {
        let layout = |size, align| (size, align);
        assert_eq!(
            layout(size_of::<FutexState>(), align_of::<FutexState>()),
            (16, 8)
        );
        assert_eq!(
            layout(size_of::<SpinState>(), align_of::<SpinState>()),
            (16, 8)
        );
    }

    /// Lock, record, relock (reported, not hung), unlock, for either lock's
    /// word.
    fn acquire_and_release<W: Wait>() {
        let w = OwnerWord::<W>::new();
        let me = owner::me();
        assert_eq!(w.lock().unwrap(), Acquired::Clean);
        assert_eq!(w.holder(), Some(shm::gettid()));
        assert_eq!(w.load(), me.tid(), "the fast path sets no flag");
        assert_eq!(w.record(), me.record());
        assert!(w.try_lock().unwrap().is_none());
        assert!(matches!(w.lock(), Err(FutexError::Deadlock { tid }) if tid == shm::gettid()));
        // SAFETY: this thread holds it.
        unsafe { w.unlock() };
        assert_eq!((w.load(), w.record()), (UNLOCKED, 0));
        assert_eq!(w.try_lock().unwrap(), Some(Acquired::Clean));
        // SAFETY: as above.
        unsafe { w.unlock() };
    }

    /// A word left by a thread that has exited (threads are reaped at once,
    /// so its tid is gone) is taken over by `lock`, never by `try_lock`.
    fn dead_holder_is_taken_over<W: Wait>() {
        let gone = std::thread::spawn(shm::gettid).join().unwrap();
        let w = OwnerWord::<W>::new();
        w.atomic().store(gone as u32, Relaxed);
        assert!(w.try_lock().unwrap().is_none(), "try_lock never takes over");
        let t0 = std::time::Instant::now();
        assert_eq!(
            w.lock().unwrap(),
            Acquired::PreviousOwnerDied { owner: Some(gone) }
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(
            w.load(),
            owner::me().tid() | W::FLAG,
            "takeover sets the flag"
        );
        assert_eq!(w.record(), owner::me().record());
        // SAFETY: we took it over.
        unsafe { w.unlock() };
        assert_eq!(w.lock().unwrap(), Acquired::Clean);
        // SAFETY: as above.
        unsafe { w.unlock() };
    }

    /// A waiter behind a live holder gives up in time, leaving the word
    /// `tid | FLAG`: a futex waiter marks it before it sleeps, and the flag
    /// stays (stale, so unlock makes one needless wake, never a missing one).
    fn live_holder_times_out_a_waiter<W: Wait>() {
        let w = OwnerWord::<W>::new();
        assert_eq!(w.lock().unwrap(), Acquired::Clean);
        std::thread::scope(|sc| {
            let t = sc.spawn(|| {
                let t0 = std::time::Instant::now();
                (w.lock_timeout(Duration::from_millis(150)), t0.elapsed())
            });
            let (r, waited) = t.join().unwrap();
            assert_eq!(r.unwrap(), None, "held by a live thread");
            assert!(waited >= Duration::from_millis(150), "{waited:?}");
        });
        assert_eq!(w.load(), owner::me().tid() | W::FLAG);
        // SAFETY: this thread holds it.
        unsafe { w.unlock() };
        assert_eq!(w.load(), UNLOCKED);
    }

    #[test]
    fn futex_word() {
        assert_eq!(FutexLock::FLAG, libc::FUTEX_WAITERS);
        acquire_and_release::<FutexLock>();
        dead_holder_is_taken_over::<FutexLock>();
        live_holder_times_out_a_waiter::<FutexLock>();
    }

    #[test]
    fn spin_word() {
        assert_eq!(SpinLock::FLAG, 0);
        acquire_and_release::<SpinLock>();
        dead_holder_is_taken_over::<SpinLock>();
        live_holder_times_out_a_waiter::<SpinLock>();
    }
}
