//! The owner word: what both locks do with a lock word of the form
//! `[flag | tid]`, the generation beside it, and the owner record.
//!
//! Every lock built here keeps the same 16 bytes in a region, an
//! [`OwnerWord`]: one 64-bit atomic holding the *lock word* (its first four
//! bytes, whatever the byte order: the futex word) and the *generation*
//! (the other four), then the 64-bit owner record.
//!
//! | lock word | meaning |
//! |---|---|
//! | `0` | unlocked |
//! | `tid` | locked by thread `tid` |
//! | `tid \| FLAG` | locked by `tid`, with the lock's own flag set |
//!
//! The generation counts acquisitions (wrapping): every compare-exchange
//! that takes the lock, from 0 or from a dead holder, writes `generation +
//! 1` along with the new lock word; setting the flag and unlocking keep it.
//! A (lock word, generation) pair therefore names one acquisition, and that
//! is what closes the takeover's ABA window: a waiter reads `/proc` about
//! the holder of the pair it saw, then compare-exchanges *that pair*; had
//! the dead holder's tid been reused by a thread that took the same lock in
//! between (from 0, after someone else's takeover and unlock, or by taking
//! it over itself from its dead namesake, which leaves the lock word
//! unchanged), the generation has moved and the takeover fails instead of
//! stealing a live lock. The owner record carries the generation of the
//! acquisition that wrote it, so that a record a dead holder left behind is
//! never read as the record of whoever took its place (see `owner`).
//!
//! Everything that reads or writes the word as an owner word is here,
//! written once: acquiring an unlocked word (one `Acquire`
//! compare-exchange, then the record), examining a held one (whose tid, is
//! it the caller, alive or dead: [`owner::check`]), taking over a dead
//! holder's word, and releasing (clear the record, one `Release` swap). A
//! lock adds only what differs, through [`Wait`]: its flag bit (the
//! kernel's `FUTEX_WAITERS` for the futex lock, none for the spin locks),
//! how a waiter waits, and what an unlock must do after the swap.
//!
//! The lock-trait plumbing the locks share is written once too, by
//! [`owner_word_lock!`]: the state's `new`, `holder` and `Default`, the
//! handle's `new` and `lock_timeout`, and the handle's `RawLock` and
//! `RawLockTimed` impls, each a one-line call into the word. The fast path
//! of `lock` stays one compare-exchange (after a plain load, which reads the
//! generation the compare-exchange must name), plus the owner record's
//! store; `unlock` stays one read-modify-write (a `fetch_and` that clears
//! the lock word and keeps the generation), plus the record's clearing.

use crate::FutexError;
use crate::owner::{self, Holder, Me};
use crate::sync::{self, AtomicU64, Instant, Ordering::*};
use shm::lock::Acquired;
use std::marker::PhantomData;
use std::time::Duration;

/// Lock word: nobody holds the lock.
pub(crate) const UNLOCKED: u32 = 0;

/// Where the lock word sits in the 64-bit value: in its first four bytes in
/// memory, so that the futex address is the state's own address on either
/// byte order (and the word the tool decodes is the state's first four
/// bytes).
const WORD_SHIFT: u32 = if cfg!(target_endian = "little") {
    0
} else {
    32
};

/// Where the generation sits: the other half.
const GENERATION_SHIFT: u32 = 32 - WORD_SHIFT;

/// One value of an owner word's 64-bit atomic: a lock word and its
/// generation, read or written together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen(u64);

impl Seen {
    /// A lock word and a generation.
    #[inline]
    pub(crate) const fn new(word: u32, generation: u32) -> Seen {
        Seen(((word as u64) << WORD_SHIFT) | ((generation as u64) << GENERATION_SHIFT))
    }

    /// The lock word: `0`, `tid` or `tid | FLAG`.
    #[inline]
    pub(crate) const fn word(self) -> u32 {
        (self.0 >> WORD_SHIFT) as u32
    }

    /// How many acquisitions (wrapping) the word has seen.
    #[inline]
    pub(crate) const fn generation(self) -> u32 {
        (self.0 >> GENERATION_SHIFT) as u32
    }

    /// The same generation with another lock word (setting the flag,
    /// unlocking).
    #[inline]
    const fn with_word(self, word: u32) -> Seen {
        Seen::new(word, self.generation())
    }

    /// The value an acquisition from this one writes: the lock word `word`
    /// and the next generation.
    #[inline]
    const fn acquired(self, word: u32) -> Seen {
        Seen::new(word, self.generation().wrapping_add(1))
    }
}

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
    /// [`OwnerWord::acquire_unlocked`] and friends) or taken over
    /// ([`OwnerWord::examine`]). `Ok(None)` only if `deadline` passed.
    fn lock_contended(word: &OwnerWord<Self>, me: Me, deadline: Option<Instant>) -> Attempt;

    /// After an unlock swapped the lock word `old` out (e.g. wake a sleeper
    /// if `old` has the flag). Default: nothing.
    #[inline]
    fn unlocked(_word: &OwnerWord<Self>, _old: u32) {}
}

/// A lock word `[W::FLAG | tid]` with its generation, and the owner
/// record; 16 bytes, valid when zeroed. `W` is the lock whose word it is
/// (see [`Wait`]).
#[repr(C)]
pub(crate) struct OwnerWord<W> {
    /// The lock word (`0`, `tid` or `tid | W::FLAG`: what a futex waiter
    /// sleeps on, in the first four bytes) and the generation (see the
    /// module docs and [`Seen`]).
    word: AtomicU64,
    /// The owner record: the generation of the acquisition that wrote it
    /// (high 32 bits) and the holder's stamp (low 32 bits, never 0; see
    /// `owner`), written right after acquiring and zeroed right before
    /// releasing; 0 while unlocked, and a previous acquisition's (or 0)
    /// between a holder's compare-exchange and its record.
    owner: AtomicU64,
    _lock: PhantomData<fn() -> W>,
}
#[cfg(not(loom))]
shm::any_bits!([W] OwnerWord<W> { word, owner, _lock });
// SAFETY: only under the model checker (`cfg(loom)`), whose atomics are
// loom's: nothing is placed in shared memory or rebuilt from bytes there, and
// the impl only satisfies `RawLock::State: AnyBits`. Every other build
// checks the fields above.
#[cfg(loom)]
unsafe impl<W> shm::AnyBits for OwnerWord<W> {}

#[cfg(all(test, not(loom)))]
thread_local! {
    /// For tests: code to run in [`OwnerWord::examine`] between the
    /// liveness check and the takeover's compare-exchange, where another
    /// thread may act.
    static BEFORE_TAKEOVER: std::cell::Cell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::Cell::new(None) };
}

impl<W> OwnerWord<W> {
    sync::const_fn_unless_loom! {
        /// An unlocked word (all zeroes).
        pub(crate) fn new() -> Self {
            OwnerWord {
                word: AtomicU64::new(0),
                owner: AtomicU64::new(0),
                _lock: PhantomData,
            }
        }
    }

    /// `FUTEX_WAKE` of one sleeper in [`wait`](OwnerWord::wait), in any
    /// process.
    #[inline]
    pub(crate) fn wake_one(&self) {
        sync::wake_one(&self.word);
    }

    /// Stores a lock word (keeping the generation), for tests that fake a
    /// holder.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn fake(&self, word: u32) {
        self.word.store(self.load().with_word(word).0, Relaxed);
    }

    /// A `Relaxed` snapshot of the word and its generation, for a waiter's
    /// loop.
    #[inline]
    pub(crate) fn load(&self) -> Seen {
        Seen(self.word.load(Relaxed))
    }

    /// The owner record (tests check what it holds).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn record(&self) -> u64 {
        self.owner.load(Relaxed)
    }
}

impl<W: Wait> OwnerWord<W> {
    /// `FUTEX_WAIT` on the lock word (shared): sleeps while it reads
    /// `seen.word()`, at most `timeout`; `Ok(false)` if the timeout passed.
    /// For a lock whose waiters sleep. (The generation is not compared: it
    /// changes only with an acquisition, and a sleeper behind a word that
    /// changed hands without changing its lock word, tid and flag alike, is
    /// still behind a holder that will wake it.)
    #[inline]
    pub(crate) fn wait(&self, seen: Seen, timeout: Duration) -> Result<bool, FutexError> {
        // The model's futex never times out, and its clock never moves; a
        // slice behind a holder that is already dead would time out in the
        // end, though, so under the model it does so at once. The holder is
        // judged as `examine` judges it, through the owner record, but only
        // if its tid may be dead at all (a thread that died or a reused
        // tid; see `owner::modelled`): the record's load is one more atomic
        // access for loom to interleave, which models without deaths skip.
        #[cfg(loom)]
        if owner::may_be_dead(self.tid_in(seen)) {
            let stamp = owner::stamp_of(self.owner.load(Relaxed), seen.generation());
            if owner::is_dead(self.tid_in(seen), stamp) {
                return Ok(false);
            }
        }
        sync::wait(&self.word, seen.word(), timeout)
    }

    /// The tid in a lock word value.
    #[inline]
    pub(crate) fn tid_in(&self, seen: Seen) -> u32 {
        seen.word() & !W::FLAG
    }

    /// Whether the value `seen` names the calling thread: it holds the lock
    /// already, or a dead thread that had its tid does ([`examine`] tells
    /// which, without waiting).
    ///
    /// [`examine`]: OwnerWord::examine
    #[inline]
    pub(crate) fn is_mine(&self, seen: Seen, me: Me) -> bool {
        self.tid_in(seen) == me.tid()
    }

    /// The tid in the word: the current holder, live or dead.
    pub(crate) fn holder(&self) -> Option<i32> {
        match self.tid_in(self.load()) {
            0 => None,
            tid => Some(tid as i32),
        }
    }

    /// The fast path: takes an unlocked word for `me` (`(0, g) → (tid,
    /// g+1)`, `Acquire`) and records the owner; `Err` with the value seen
    /// otherwise.
    #[inline]
    pub(crate) fn try_acquire(&self, me: Me) -> Result<(), Seen> {
        let seen = self.load();
        if seen.word() != UNLOCKED {
            return Err(seen);
        }
        self.acquire_from(seen, me.tid(), me)
    }

    /// Takes the word from `seen`, which read unlocked (`(0, g) → (tid,
    /// g+1)`); `Err` with the current value if it no longer reads `seen`.
    #[inline]
    pub(crate) fn acquire_unlocked(&self, seen: Seen, me: Me) -> Result<(), Seen> {
        debug_assert_eq!(seen.word(), UNLOCKED);
        self.acquire_from(seen, me.tid(), me)
    }

    /// As [`acquire_unlocked`](OwnerWord::acquire_unlocked), but sets the
    /// flag (`(0, g) → (tid | FLAG, g+1)`): for a waiter that cannot know
    /// whether others still wait.
    #[inline]
    pub(crate) fn acquire_unlocked_flagged(&self, seen: Seen, me: Me) -> Result<(), Seen> {
        debug_assert_eq!(seen.word(), UNLOCKED);
        self.acquire_from(seen, me.tid() | W::FLAG, me)
    }

    /// Sets the flag on a held word that still reads `seen` (`Relaxed`: it
    /// publishes nothing but "someone waits"; the generation stays); the
    /// new or the current value.
    #[inline]
    pub(crate) fn set_flag(&self, seen: Seen) -> Result<Seen, Seen> {
        let flagged = seen.with_word(seen.word() | W::FLAG);
        self.word
            .compare_exchange(seen.0, flagged.0, Relaxed, Relaxed)
            .map(|_| flagged)
            .map_err(Seen)
    }

    /// `seen → (word, next generation)` by one `Acquire` compare-exchange,
    /// then the owner record for that generation.
    #[inline]
    fn acquire_from(&self, seen: Seen, word: u32, me: Me) -> Result<(), Seen> {
        let new = seen.acquired(word);
        match self.word.compare_exchange(seen.0, new.0, Acquire, Relaxed) {
            Ok(_) => {
                owner::record(&self.owner, new.generation(), me);
                Ok(())
            }
            Err(current) => Err(Seen(current)),
        }
    }

    /// Checks the holder of `seen` (a locked value). Takes the lock over
    /// (`seen → (my tid | FLAG, next generation)`) if the holder is dead and
    /// the word still reads `seen`; reports our own acquisition as a
    /// deadlock; `Ok(None)` if the holder lives or the word changed.
    ///
    /// The check and the compare-exchange are not one atomic step: between
    /// them, the word may change hands and come back to the same lock word
    /// (the dead holder's tid, reused by a thread that takes this lock).
    /// The generation in `seen` makes the compare-exchange fail then: it
    /// succeeds only if no acquisition at all came after the one checked.
    #[cold]
    pub(crate) fn examine(&self, seen: Seen, me: Me) -> Attempt {
        // Acquire: pairs with the Release unlock that preceded the current
        // holder's compare-exchange, so the record we read next is not an
        // older holder's unless that holder never released (a dead one):
        // the generation in the record tells those apart.
        if Seen(self.word.load(Acquire)) != seen {
            return Ok(None);
        }
        let dead = self.tid_in(seen);
        let stamp = owner::stamp_of(self.owner.load(Relaxed), seen.generation());
        match owner::check(dead, stamp, me) {
            Holder::Alive => Ok(None),
            Holder::Me => Err(FutexError::Deadlock {
                tid: me.tid() as i32,
            }),
            Holder::Dead => {
                #[cfg(all(test, not(loom)))]
                if let Some(meanwhile) = BEFORE_TAKEOVER.take() {
                    meanwhile();
                }
                // Set the flag (a futex lock keeps it): others may wait
                // behind the dead holder, and our unlock must tell them.
                match self.acquire_from(seen, me.tid() | W::FLAG, me) {
                    Ok(()) => Ok(Some(Acquired::PreviousOwnerDied {
                        owner: Some(dead as i32),
                    })),
                    Err(_) => Ok(None),
                }
            }
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
    /// clears the lock word keeping the generation (one `Release`
    /// `fetch_and`), and hands the old lock word to [`Wait::unlocked`].
    ///
    /// # Safety
    /// The calling thread holds the lock.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        owner::clear(&self.owner);
        // One read-modify-write, whatever a waiter's `set_flag` did to the
        // lock word meanwhile (x86 has no `and` that returns the old value,
        // so it compiles to a load and one compare-exchange, looping only if
        // a waiter set the flag in between; ARMv8.1 has `ldclral`).
        let old = Seen(
            self.word
                .fetch_and(Seen::new(UNLOCKED, u32::MAX).0, Release),
        );
        debug_assert_eq!(
            self.tid_in(old),
            owner::me().tid(),
            "{} unlocked by a thread that does not hold it",
            std::any::type_name::<W>()
        );
        W::unlocked(self, old.word());
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
        // word only its own methods change: its lock word goes from 0, or
        // from a dead holder's acquisition (whose thread can no longer touch
        // it), to the caller's tid only by a successful `Acquire`
        // compare-exchange of the whole (lock word, generation) pair that
        // also moves the generation on (`try_acquire`, `acquire_unlocked*`,
        // `examine`), and back to 0 only by the holder's `Release` swap in
        // `unlock`; `set_flag` keeps the tid and the generation. A live
        // holder's acquisition is never replaced: takeover requires
        // `owner::check` to find the thread of the acquisition it examined
        // gone, and its compare-exchange fails if any acquisition (a new
        // thread with the same tid included) came after that one. The state
        // is `#[repr(C)]` atomics, valid when zeroed.
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
    use crate::{FutexLock, FutexState, PureSpinLock, SpinLock, SpinState};
    use std::mem::{align_of, size_of};
    use std::sync::Arc;

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
        // The lock word is the first four bytes in memory (the futex
        // address, and what the tool decodes), the generation the next four.
        let v = Seen::new(0x8000_1234, 7);
        assert_eq!(v.0.to_ne_bytes()[..4], 0x8000_1234u32.to_ne_bytes());
        assert_eq!(v.0.to_ne_bytes()[4..], 7u32.to_ne_bytes());
        assert_eq!((v.word(), v.generation()), (0x8000_1234, 7));
        assert_eq!(Seen::new(0, u32::MAX).acquired(5), Seen::new(5, 0), "wraps");
    }

    /// The stamp the owner record holds for the current generation.
    fn recorded<W: Wait>(w: &OwnerWord<W>) -> Option<u32> {
        owner::stamp_of(w.record(), w.load().generation())
    }

    /// Lock, record, relock (reported, not hung), unlock, for either lock's
    /// word; each acquisition moves the generation on, unlock keeps it.
    fn acquire_and_release<W: Wait>() {
        let w = OwnerWord::<W>::new();
        let me = owner::me();
        assert_eq!(w.lock().unwrap(), Acquired::Clean);
        assert_eq!(w.holder(), Some(shm::gettid()));
        assert_eq!(
            w.load(),
            Seen::new(me.tid(), 1),
            "the fast path sets no flag"
        );
        assert_eq!(recorded(&w), Some(me.stamp()));
        assert!(w.try_lock().unwrap().is_none());
        assert!(matches!(w.lock(), Err(FutexError::Deadlock { tid }) if tid == shm::gettid()));
        // SAFETY: this thread holds it.
        unsafe { w.unlock() };
        assert_eq!((w.load(), w.record()), (Seen::new(UNLOCKED, 1), 0));
        assert_eq!(w.try_lock().unwrap(), Some(Acquired::Clean));
        assert_eq!(w.load().generation(), 2);
        // SAFETY: as above.
        unsafe { w.unlock() };
        assert_eq!(w.load(), Seen::new(UNLOCKED, 2));
    }

    /// A word left by a thread that has exited (threads are reaped at once,
    /// so its tid is gone) is taken over by `lock`, never by `try_lock`.
    fn dead_holder_is_taken_over<W: Wait>() {
        let gone = std::thread::spawn(shm::gettid).join().unwrap();
        let w = OwnerWord::<W>::new();
        w.fake(gone as u32);
        assert!(w.try_lock().unwrap().is_none(), "try_lock never takes over");
        let t0 = std::time::Instant::now();
        assert_eq!(
            w.lock().unwrap(),
            Acquired::PreviousOwnerDied { owner: Some(gone) }
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(
            w.load(),
            Seen::new(owner::me().tid() | W::FLAG, 1),
            "takeover sets the flag and moves the generation on"
        );
        assert_eq!(recorded(&w), Some(owner::me().stamp()));
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
        assert_eq!(w.load(), Seen::new(owner::me().tid() | W::FLAG, 1));
        // SAFETY: this thread holds it.
        unsafe { w.unlock() };
        assert_eq!(w.load(), Seen::new(UNLOCKED, 1));
    }

    /// The ABA of a takeover, forced: a thread locks and exits holding the
    /// lock; a waiter (this thread) examines the word, finds the holder
    /// dead, and — between that check and its compare-exchange — a new
    /// thread that got the dead one's tid takes the lock over from its
    /// namesake, leaving the lock word exactly as the waiter saw it. The
    /// waiter's compare-exchange must fail: the lock is the new thread's,
    /// and it is alive.
    fn takeover_does_not_steal_from_a_reused_tid<W: Wait + 'static>() {
        let w = Arc::new(OwnerWord::<W>::new());
        let dead = {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                assert_eq!(w.lock().unwrap(), Acquired::Clean);
                owner::me() // and exits holding it
            })
            .join()
            .unwrap()
        };
        let seen = match w.set_flag(w.load()) {
            Ok(s) | Err(s) => s,
        };
        assert_eq!(w.tid_in(seen), dead.tid());
        // The new thread: the dead one's tid, another start time. (It has to
        // be played by this process's threads, so it is a made-up identity
        // that `owner::check` treats as the caller, exactly as the real one
        // would be treated.)
        let reused = owner::Me::fake(dead.tid(), u64::from(dead.stamp() ^ 1), 0);
        let meanwhile = {
            let w = Arc::clone(&w);
            move || {
                assert_eq!(
                    w.examine(seen, reused).unwrap(),
                    Some(Acquired::PreviousOwnerDied {
                        owner: Some(dead.tid() as i32)
                    }),
                    "the new thread takes over from its dead namesake"
                );
                assert_eq!(w.tid_in(w.load()), dead.tid(), "same lock word");
            }
        };
        BEFORE_TAKEOVER.set(Some(Box::new(meanwhile)));
        let r = w.examine(seen, owner::me()).unwrap();
        assert!(BEFORE_TAKEOVER.take().is_none(), "the hook ran");
        assert_eq!(
            r, None,
            "stole the lock a live thread with the reused tid holds"
        );
        assert_eq!(
            w.load(),
            seen.acquired(seen.word()),
            "still the new thread's"
        );
        assert_eq!(recorded(&*w), Some(reused.stamp()));
    }

    /// A dead holder that had the caller's tid, when start times cannot be
    /// read (both stamps are nonces): taken over, not reported as the
    /// caller's own lock (which would be a `Deadlock` error).
    fn same_tid_unknown_start_is_taken_over<W: Wait>() {
        let w = OwnerWord::<W>::new();
        let tid = owner::me().tid();
        let predecessor = owner::Me::fake(tid, 0, 11);
        let caller = owner::Me::fake(tid, 0, 12);
        w.acquire_unlocked(w.load(), predecessor).unwrap();
        let seen = w.load();
        assert!(w.is_mine(seen, caller));
        assert_eq!(
            w.examine(seen, caller).unwrap(),
            Some(Acquired::PreviousOwnerDied {
                owner: Some(tid as i32)
            })
        );
        assert_eq!(w.load(), seen.acquired(tid | W::FLAG));
        // And the caller's own acquisition is still a deadlock.
        assert!(matches!(
            w.examine(w.load(), caller),
            Err(FutexError::Deadlock { .. })
        ));
    }

    /// A taker that has not yet written its record leaves the dead
    /// holder's record in place; with the same tid in both (a self-takeover
    /// after tid reuse), that record must not make the live taker look
    /// dead: it belongs to the previous generation.
    fn a_stale_record_is_not_the_new_holders<W: Wait>() {
        let w = OwnerWord::<W>::new();
        let me = owner::me();
        // The "dead predecessor": this thread's tid, another start time.
        let predecessor = owner::Me::fake(me.tid(), u64::from(me.stamp() ^ 1), 0);
        w.acquire_unlocked(w.load(), predecessor).unwrap();
        let stale = w.record();
        // This thread takes it over, and (as if preempted before its record
        // store) the record is still the predecessor's.
        assert!(w.examine(w.load(), me).unwrap().is_some());
        w.owner.store(stale, Relaxed);
        // Another waiter looks: the tid (this thread) is alive, and the
        // record is not this generation's, so it says nothing.
        let other = std::thread::spawn(owner::me).join().unwrap();
        assert_eq!(
            w.examine(w.load(), other).unwrap(),
            None,
            "the dead predecessor's record made the live holder look dead"
        );
        assert_eq!(recorded(&w), None, "the record is an older generation's");
        assert_eq!(w.tid_in(w.load()), me.tid());
        owner::record(&w.owner, w.load().generation(), me);
        // SAFETY: this thread took it over.
        unsafe { w.unlock() };
    }

    fn all<W: Wait + 'static>() {
        acquire_and_release::<W>();
        dead_holder_is_taken_over::<W>();
        live_holder_times_out_a_waiter::<W>();
        takeover_does_not_steal_from_a_reused_tid::<W>();
        same_tid_unknown_start_is_taken_over::<W>();
        a_stale_record_is_not_the_new_holders::<W>();
    }

    #[test]
    fn futex_word() {
        assert_eq!(FutexLock::FLAG, libc::FUTEX_WAITERS);
        all::<FutexLock>();
    }

    #[test]
    fn spin_word() {
        assert_eq!(SpinLock::FLAG, 0);
        all::<SpinLock>();
    }

    #[test]
    fn pure_spin_word() {
        assert_eq!(PureSpinLock::FLAG, 0);
        all::<PureSpinLock>();
    }
}
