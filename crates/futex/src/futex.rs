//! [`FutexLock`]: std's three-state futex mutex with the owner's tid in the
//! word, shared futex operations, and dead-owner takeover.

use crate::owner::{self, Holder, Me};
use crate::sync::{self, AtomicU32, AtomicU64, Instant, Ordering::*};
use crate::{FutexError, OWNER_CHECK_INTERVAL};
use shm::InitCtx;
use shm::lock::{Acquired, RawLock, RawLockTimed};
use std::fmt;
use std::time::Duration;

/// Lock word value: nobody holds the lock.
const UNLOCKED: u32 = 0;
/// Lock word flag: someone may be asleep in `FUTEX_WAIT`; unlock must wake.
const WAITERS: u32 = 0x8000_0000;
/// The holder's tid in a locked word.
const TID: u32 = !WAITERS;

/// How many times a waiter re-reads a word held by a running owner before
/// going to sleep (std's number: long enough to cover a short critical
/// section, short enough to cost less than a futex round trip). Under the
/// model, 2: enough to reach both "freed while we spun" and "gave up", where
/// 100 would only multiply the interleavings.
const SPIN_LIMIT: u32 = if cfg!(loom) { 2 } else { 100 };

/// The state a [`FutexLock`] keeps in a region: a futex word and the
/// holder's record. 16 bytes, valid when zeroed; put it on its own cache
/// line ([`shm::CachePadded`]) if other hot data is near.
#[repr(C)]
pub struct FutexState {
    /// The futex word.
    ///
    /// | value | meaning |
    /// |---|---|
    /// | `0` | unlocked |
    /// | `tid` | locked by thread `tid`; nobody waits, so unlock makes no syscall |
    /// | `tid \| 0x8000_0000` | locked by `tid`; waiters may sleep, so unlock wakes one |
    ///
    /// Transitions: `0 → tid` (fast path), `tid → tid|W` (a waiter about to
    /// sleep), `0 → tid|W` (a waiter taking the lock, keeping the flag since
    /// others may still sleep), `dead|W → tid|W` (takeover), `any → 0`
    /// (unlock). The flag is conservative: a stale one costs one needless
    /// `FUTEX_WAKE`, never a lost wake-up.
    word: AtomicU32,
    /// Unused; keeps `owner` 8-byte aligned and the layout explicit.
    _reserved: AtomicU32,
    /// The holder's tid (low 32 bits) and start time (high 32 bits), written
    /// right after acquiring and zeroed right before releasing; 0 while
    /// unlocked or between a holder's CAS and its record.
    owner: AtomicU64,
}

impl FutexState {
    sync::const_fn_unless_loom! {
        /// An unlocked state (all zeroes).
        pub fn new() -> Self {
            FutexState {
                word: AtomicU32::new(UNLOCKED),
                _reserved: AtomicU32::new(0),
                owner: AtomicU64::new(0),
            }
        }
    }

    /// The tid in the lock word: the current holder, live or dead.
    pub fn holder(&self) -> Option<i32> {
        match self.word.load(Relaxed) & TID {
            0 => None,
            tid => Some(tid as i32),
        }
    }

    /// Whether the word says someone may be asleep waiting.
    pub fn has_waiters(&self) -> bool {
        self.word.load(Relaxed) & WAITERS != 0
    }

    /// Takes an unlocked word for `me`.
    #[inline]
    fn try_acquire(&self, me: Me) -> bool {
        if self
            .word
            .compare_exchange(UNLOCKED, me.tid(), Acquire, Relaxed)
            .is_ok()
        {
            owner::record(&self.owner, me);
            true
        } else {
            false
        }
    }

    /// Load-only spin while the lock is held and nobody sleeps (if someone
    /// sleeps, the holder will make a syscall anyway, so we may as well
    /// sleep too). Returns the last word seen.
    fn spin(&self) -> u32 {
        let mut spin = SPIN_LIMIT;
        loop {
            let state = self.word.load(Relaxed);
            if state == UNLOCKED || state & WAITERS != 0 || spin == 0 {
                return state;
            }
            sync::spin_loop();
            spin -= 1;
        }
    }

    /// The contended path: spin, then mark the word and sleep in bounded
    /// slices, checking the holder's liveness whenever a slice passes with
    /// no wake-up. `Ok(None)` only if `deadline` passed.
    #[cold]
    fn lock_contended(
        &self,
        me: Me,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired>, FutexError> {
        let mut state = self.spin();
        // Freed while we spun: take it without the flag, as if uncontended.
        if state == UNLOCKED {
            match self
                .word
                .compare_exchange(UNLOCKED, me.tid(), Acquire, Relaxed)
            {
                Ok(_) => {
                    owner::record(&self.owner, me);
                    return Ok(Some(Acquired::Clean));
                }
                Err(s) => state = s,
            }
        }
        loop {
            if state == UNLOCKED {
                // Others may be asleep (we cannot know), so keep the flag:
                // our unlock will then wake the next one.
                match self
                    .word
                    .compare_exchange(UNLOCKED, me.tid() | WAITERS, Acquire, Relaxed)
                {
                    Ok(_) => {
                        owner::record(&self.owner, me);
                        return Ok(Some(Acquired::Clean));
                    }
                    Err(s) => {
                        state = s;
                        continue;
                    }
                }
            }
            if state & TID == me.tid() {
                // Our own tid: either we hold it already, or a dead thread
                // that had our tid does. No need to wait to find out.
                match self.examine(state, me)? {
                    Some(how) => return Ok(Some(how)),
                    None => {
                        state = self.word.load(Relaxed);
                        continue;
                    }
                }
            }
            if state & WAITERS == 0 {
                match self
                    .word
                    .compare_exchange(state, state | WAITERS, Relaxed, Relaxed)
                {
                    Ok(_) => state |= WAITERS,
                    Err(s) => {
                        state = s;
                        continue;
                    }
                }
            }
            let mut slice = OWNER_CHECK_INTERVAL;
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                slice = slice.min(deadline - now);
            }
            if sync::wait(&self.word, state, slice)? {
                state = self.spin();
                continue;
            }
            // A whole slice without a wake-up while the word stayed `state`:
            // a holder that died can never wake us, so ask whether it lives.
            match self.examine(state, me)? {
                Some(how) => return Ok(Some(how)),
                None => state = self.word.load(Relaxed),
            }
        }
    }

    /// Checks the holder in `seen` (a locked word value). Takes the lock over
    /// if the holder is dead and the word still reads `seen`; `Ok(None)` if
    /// the holder lives or the word changed.
    #[cold]
    fn examine(&self, seen: u32, me: Me) -> Result<Option<Acquired>, FutexError> {
        // Acquire: pairs with the Release unlock that preceded the current
        // holder's CAS, so the record we read next is not an older holder's.
        if self.word.load(Acquire) != seen {
            return Ok(None);
        }
        let dead = seen & TID;
        match owner::check(dead, self.owner.load(Relaxed), me) {
            Holder::Alive => Ok(None),
            Holder::Me => Err(FutexError::Deadlock {
                tid: me.tid() as i32,
            }),
            Holder::Dead => {
                // Keep (or set) the flag: others may sleep behind the dead
                // holder, and our unlock must wake them.
                match self
                    .word
                    .compare_exchange(seen, me.tid() | WAITERS, Acquire, Relaxed)
                {
                    Ok(_) => {
                        owner::record(&self.owner, me);
                        Ok(Some(Acquired::PreviousOwnerDied {
                            owner: Some(dead as i32),
                        }))
                    }
                    Err(_) => Ok(None),
                }
            }
        }
    }

    #[cold]
    fn wake(&self) {
        sync::wake_one(&self.word);
    }
}

impl Default for FutexState {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FutexState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FutexState")
            .field("holder", &self.holder())
            .field("waiters", &self.has_waiters())
            .finish()
    }
}

/// A mutex whose whole state is a [`FutexState`] in shared memory; waiters
/// sleep in the kernel (`FUTEX_WAIT`, shared) and a dead holder is detected
/// and replaced. See the [crate docs](crate) for the design.
///
/// The handle is empty: every process [`attach`](RawLock::attach)es for
/// free, and any number of handles may use one state.
#[derive(Clone, Copy, Debug, Default)]
pub struct FutexLock {
    _private: (),
}

impl FutexLock {
    /// A handle (what [`RawLock::attach`] returns).
    pub const fn new() -> Self {
        FutexLock { _private: () }
    }

    /// Like [`RawLock::lock`], but gives up after `timeout`: `Ok(None)` if
    /// the lock stayed held by a live thread that long. Waits in the kernel
    /// with the remaining time, so it neither polls nor overshoots by more
    /// than a scheduling delay.
    pub fn lock_timeout(
        &self,
        state: &FutexState,
        timeout: Duration,
    ) -> Result<Option<Acquired>, FutexError> {
        let me = owner::me();
        if state.try_acquire(me) {
            return Ok(Some(Acquired::Clean));
        }
        // An unrepresentable deadline is "never".
        state.lock_contended(me, Instant::now().checked_add(timeout))
    }
}

// SAFETY: mutual exclusion: the word goes from 0 (or from a dead holder's
// value, whose thread can no longer touch it) to our tid only by a
// successful compare-exchange, and back to 0 only in `unlock` by the holder;
// a live holder's tid is never replaced, because takeover requires
// `owner::check` to find the thread gone. Every acquiring CAS is `Acquire`
// and the releasing swap is `Release`.
unsafe impl RawLock for FutexLock {
    type State = FutexState;
    type Error = FutexError;
    const NAME: &'static str = "futex";

    unsafe fn init(state: *mut FutexState, _ctx: &InitCtx<'_>) -> Result<(), FutexError> {
        // SAFETY: the caller promises `state` is aligned, writable and not
        // yet shared; writing a fresh value over zeroes drops nothing.
        unsafe { state.write(FutexState::new()) };
        Ok(())
    }

    unsafe fn attach(_state: &FutexState) -> Result<Self, FutexError> {
        Ok(FutexLock::new())
    }

    #[inline]
    fn lock(&self, state: &FutexState) -> Result<Acquired, FutexError> {
        let me = owner::me();
        if state.try_acquire(me) {
            return Ok(Acquired::Clean);
        }
        match state.lock_contended(me, None)? {
            Some(how) => Ok(how),
            None => unreachable!("a wait without a deadline cannot time out"),
        }
    }

    #[inline]
    fn try_lock(&self, state: &FutexState) -> Result<Option<Acquired>, FutexError> {
        Ok(state.try_acquire(owner::me()).then_some(Acquired::Clean))
    }

    #[inline]
    unsafe fn unlock(&self, state: &FutexState) {
        owner::clear(&state.owner);
        let old = state.word.swap(UNLOCKED, Release);
        debug_assert_eq!(
            old & TID,
            owner::me().tid(),
            "FutexLock unlocked by a thread that does not hold it"
        );
        if old & WAITERS != 0 {
            state.wake();
        }
    }

    fn last_holder(&self, state: &FutexState) -> Option<i32> {
        state.holder()
    }
}

impl RawLockTimed for FutexLock {
    fn lock_timeout(
        &self,
        state: &FutexState,
        timeout: Duration,
    ) -> Result<Option<Acquired>, FutexError> {
        FutexLock::lock_timeout(self, state, timeout)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_is_fixed() {
        assert_eq!(std::mem::size_of::<FutexState>(), 16);
        assert_eq!(std::mem::align_of::<FutexState>(), 8);
    }

    #[test]
    fn word_holds_tid_then_flag() {
        let s = FutexState::new();
        let l = FutexLock::new();
        assert_eq!(l.lock(&s).unwrap(), Acquired::Clean);
        assert_eq!(s.holder(), Some(shm::gettid()));
        assert!(!s.has_waiters());
        assert_eq!(s.word.load(Relaxed), shm::gettid() as u32);
        std::thread::scope(|sc| {
            let t = sc.spawn(|| l.lock_timeout(&s, Duration::from_millis(120)).unwrap());
            assert_eq!(t.join().unwrap(), None, "held by a live thread");
        });
        assert!(s.has_waiters(), "the timed-out waiter set the flag");
        // SAFETY: this thread locked it above.
        unsafe { l.unlock(&s) };
        assert_eq!(s.word.load(Relaxed), 0);
        assert_eq!(s.owner.load(Relaxed), 0);
    }

    #[test]
    fn relocking_is_reported_not_hung() {
        let s = FutexState::new();
        let l = FutexLock::new();
        assert_eq!(l.lock(&s).unwrap(), Acquired::Clean);
        assert!(l.try_lock(&s).unwrap().is_none());
        assert!(matches!(l.lock(&s), Err(FutexError::Deadlock { tid }) if tid == shm::gettid()));
        // SAFETY: this thread holds it.
        unsafe { l.unlock(&s) };
        assert_eq!(l.try_lock(&s).unwrap(), Some(Acquired::Clean));
        // SAFETY: as above.
        unsafe { l.unlock(&s) };
    }

    #[test]
    fn dead_thread_in_word_is_taken_over() {
        // A word left by a thread that has exited (threads are reaped at
        // once, so its tid is gone).
        let gone = std::thread::spawn(shm::gettid).join().unwrap() as u32;
        let s = FutexState::new();
        s.word.store(gone, Relaxed);
        let l = FutexLock::new();
        assert!(
            l.try_lock(&s).unwrap().is_none(),
            "try_lock never takes over"
        );
        let t0 = std::time::Instant::now();
        assert_eq!(
            l.lock(&s).unwrap(),
            Acquired::PreviousOwnerDied {
                owner: Some(gone as i32)
            }
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(s.has_waiters(), "takeover keeps the flag");
        // SAFETY: we took it over.
        unsafe { l.unlock(&s) };
        assert_eq!(l.lock(&s).unwrap(), Acquired::Clean);
        // SAFETY: as above.
        unsafe { l.unlock(&s) };
    }
}
