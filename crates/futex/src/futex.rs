//! [`FutexLock`]: std's three-state futex mutex with the owner's tid in the
//! word, shared futex operations, and dead-owner takeover.
//!
//! The word is an [`OwnerWord`] (`word.rs`: acquiring, examining, taking
//! over and releasing it, shared with the spin lock) whose flag is the
//! kernel's own `FUTEX_WAITERS` bit. What is here is how a waiter waits:
//! spin briefly, set the bit, sleep in `FUTEX_WAIT`; and that an unlock that
//! saw the bit makes one `FUTEX_WAKE`. The state's `new`/`holder` and the
//! `RawLock`/`RawLockTimed` impls are the ones both locks share, written by
//! `word::owner_word_lock!`.

use crate::OWNER_CHECK_INTERVAL;
use crate::owner::Me;
use crate::sync::{self, Instant};
use crate::word::{Attempt, OwnerWord, Seen, UNLOCKED, Wait};
use libc::FUTEX_WAITERS;
use shm::lock::Acquired;
use std::fmt;

/// How many times a waiter re-reads a word held by a running owner before
/// going to sleep (std's number: long enough to cover a short critical
/// section, short enough to cost less than a futex round trip). Under the
/// model, 2: enough to reach both "freed while we spun" and "gave up", where
/// 100 would only multiply the interleavings.
const SPIN_LIMIT: u32 = if cfg!(loom) { 2 } else { 100 };

/// The state a [`FutexLock`] keeps in a region: a futex word (its first
/// four bytes), the word's generation (the next four) and the holder's
/// record. 16 bytes, valid when zeroed; put it on its own cache line
/// ([`shm::CachePadded`]) if other hot data is near.
#[repr(C)]
pub struct FutexState {
    /// The futex word with its generation, and the owner record.
    ///
    /// | value | meaning |
    /// |---|---|
    /// | `0` | unlocked |
    /// | `tid` | locked by thread `tid`; nobody waits, so unlock makes no syscall |
    /// | `tid \| FUTEX_WAITERS` (`0x8000_0000`) | locked by `tid`; waiters may sleep, so unlock wakes one |
    ///
    /// Transitions (`W` = `FUTEX_WAITERS`): `0 → tid` (fast path),
    /// `tid → tid|W` (a waiter about to
    /// sleep), `0 → tid|W` (a waiter taking the lock, keeping the flag since
    /// others may still sleep), `dead|W → tid|W` (takeover), `any → 0`
    /// (unlock). The flag is conservative: a stale one costs one needless
    /// `FUTEX_WAKE`, never a lost wake-up. Every transition to a tid (fast
    /// path, a waiter's, takeover) also increments the generation, in the
    /// same compare-exchange; the others keep it.
    word: OwnerWord<FutexLock>,
}
shm::any_bits!(FutexState { word });

impl FutexState {
    /// Whether the word says someone may be asleep waiting.
    pub fn has_waiters(&self) -> bool {
        self.word.load().word() & FUTEX_WAITERS != 0
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

/// Load-only spin while the lock is held and nobody sleeps (if someone
/// sleeps, the holder will make a syscall anyway, so we may as well sleep
/// too). Returns the last value seen.
fn spin(word: &OwnerWord<FutexLock>) -> Seen {
    let mut spin = SPIN_LIMIT;
    loop {
        let state = word.load();
        if state.word() == UNLOCKED || state.word() & FUTEX_WAITERS != 0 || spin == 0 {
            return state;
        }
        sync::spin_loop();
        spin -= 1;
    }
}

/// The futex lock's waiting: spin briefly, then mark the word with the
/// kernel's `FUTEX_WAITERS` bit and sleep on it; unlock wakes one sleeper if
/// the bit was set.
impl Wait for FutexLock {
    const FLAG: u32 = FUTEX_WAITERS;

    /// Spin, then mark the word and sleep in bounded slices, checking the
    /// holder's liveness whenever a slice passes with no wake-up.
    #[cold]
    fn lock_contended(word: &OwnerWord<Self>, me: Me, deadline: Option<Instant>) -> Attempt {
        let mut state = spin(word);
        // Freed while we spun: take it without the flag, as if uncontended.
        if state.word() == UNLOCKED {
            match word.acquire_unlocked(state, me) {
                Ok(()) => return Ok(Some(Acquired::Clean)),
                Err(s) => state = s,
            }
        }
        loop {
            if state.word() == UNLOCKED {
                // Others may be asleep (we cannot know), so keep the flag:
                // our unlock will then wake the next one.
                match word.acquire_unlocked_flagged(state, me) {
                    Ok(()) => return Ok(Some(Acquired::Clean)),
                    Err(s) => {
                        state = s;
                        continue;
                    }
                }
            }
            if word.is_mine(state, me) {
                // Our own tid: either we hold it already, or a dead thread
                // that had our tid does. No need to wait to find out.
                match word.examine(state, me)? {
                    Some(how) => return Ok(Some(how)),
                    None => {
                        state = word.load();
                        continue;
                    }
                }
            }
            if state.word() & FUTEX_WAITERS == 0 {
                match word.set_flag(state) {
                    Ok(s) => state = s,
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
            if word.wait(state, slice)? {
                state = spin(word);
                continue;
            }
            // A whole slice without a wake-up while the word stayed `state`:
            // a holder that died can never wake us, so ask whether it lives.
            match word.examine(state, me)? {
                Some(how) => return Ok(Some(how)),
                None => state = word.load(),
            }
        }
    }

    #[inline]
    fn unlocked(word: &OwnerWord<Self>, old: u32) {
        if old & FUTEX_WAITERS != 0 {
            wake(word);
        }
    }
}

#[cold]
fn wake(word: &OwnerWord<FutexLock>) {
    word.wake_one();
}

/// A mutex whose whole state is a [`FutexState`] in shared memory; waiters
/// sleep in the kernel (`FUTEX_WAIT`, shared) and a dead holder is detected
/// and replaced. See the [crate docs](crate) for the design.
///
/// The handle is empty: every process
/// [`attach`](shm::lock::RawLock::attach)es for free, and any number of
/// handles may use one state.
#[derive(Clone, Copy, Debug, Default)]
pub struct FutexLock {
    _private: (),
}

crate::word::owner_word_lock! {
    lock: FutexLock,
    state: FutexState,
    name: "futex",
    /// Like [`RawLock::lock`](shm::lock::RawLock::lock), but gives up after
    /// `timeout`: `Ok(None)` if the lock stayed held by a live thread that
    /// long. Waits in the kernel with the remaining time, so it neither
    /// polls nor overshoots by more than a scheduling delay.
    fn lock_timeout;
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn has_waiters_reads_the_kernels_bit() {
        let s = FutexState::new();
        assert!(!s.has_waiters());
        s.word.fake(FUTEX_WAITERS | 7);
        assert!(s.has_waiters());
        assert_eq!(s.holder(), Some(7), "the bit is not part of the tid");
    }
}
