//! What this crate's locks say about themselves ([`InspectLock`]), read
//! from a copy of their state: the holder is the tid in the owner word;
//! the futex lock's word also carries the kernel's `FUTEX_WAITERS` bit
//! (*that* someone waits, not how many); the spin locks' waiters only
//! re-read the word, so nothing records them.

use crate::{FutexLock, FutexState, PureSpinLock, PureSpinState, SpinLock, SpinState};
use shm::lock::{Ids, InspectLock, LockInfo, Waiters};
use shm::process::Liveness;

/// What a set `FUTEX_WAITERS` bit means, for a reader.
const FLAG_MEANS: &str = "FUTEX_WAITERS is set: the word records that someone waits, not how many";

/// What a spin lock cannot say.
const SPIN_WAITERS: &str = "a spin lock's waiters only re-read the word: it does not record them";

/// An owner word: held by the tid it names (live or dead: a dead one is
/// taken over by the next `lock()`), with the waiters the lock records.
fn owner_word(
    holder: Option<i32>,
    waiters: Waiters,
    liveness: &dyn Fn(i32) -> Liveness,
) -> LockInfo {
    let mut r = LockInfo::free(Ids::Threads);
    r.waiters = waiters;
    if let Some(tid) = holder {
        r.state = "held";
        let how = liveness(tid);
        if how.is_dead() {
            r.notes.push(format!(
                "its holder tid {tid} is {how}: the next lock() takes it over and reports the previous owner died"
            ));
        }
        r.holder = Some(tid);
    }
    r
}

/// A spin lock's word: a holder, no waiters recorded, and a note saying so.
fn spin_word(holder: Option<i32>, liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
    let mut r = owner_word(holder, Waiters::NotRecorded, liveness);
    r.notes.push(SPIN_WAITERS.into());
    r
}

impl InspectLock for FutexLock {
    const RECOVERS_OWNER_DEATH: bool = true;

    fn inspect(state: &FutexState, _bytes: &[u8], liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
        let waiters = Waiters::Flag {
            any: state.has_waiters(),
            means: FLAG_MEANS,
        };
        owner_word(state.holder(), waiters, liveness)
    }
}

impl InspectLock for SpinLock {
    const RECOVERS_OWNER_DEATH: bool = true;

    fn inspect(state: &SpinState, _bytes: &[u8], liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
        spin_word(state.holder(), liveness)
    }
}

impl InspectLock for PureSpinLock {
    const RECOVERS_OWNER_DEATH: bool = true;

    fn inspect(
        state: &PureSpinState,
        _bytes: &[u8],
        liveness: &dyn Fn(i32) -> Liveness,
    ) -> LockInfo {
        spin_word(state.holder(), liveness)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use shm::lock::RawLockTimed;

    fn alive(_: i32) -> Liveness {
        Liveness::Running
    }
    fn gone(_: i32) -> Liveness {
        Liveness::Gone
    }

    /// Free, then held by this thread with the futex lock's flag clear;
    /// a dead holder gets the takeover note.
    fn reads_its_own_word<L: InspectLock + RawLockTimed + Default>(state: &L::State) {
        let free = L::inspect(state, &[], &alive);
        assert_eq!((free.state, free.holder), ("free", None));
        let l = L::default();
        let _ = l.lock(state).unwrap();
        let held = L::inspect(state, &[], &alive);
        assert_eq!(held.state, "held");
        assert_eq!(held.holder, Some(shm::gettid()));
        assert_eq!(held.ids, Ids::Threads);
        let dead = L::inspect(state, &[], &gone);
        assert!(
            dead.notes[0].starts_with(&format!("its holder tid {} is gone", shm::gettid())),
            "{:?}",
            dead.notes
        );
        // SAFETY: locked just above, by this thread.
        unsafe { l.unlock(state) };
    }

    #[test]
    fn each_lock_reads_its_word() {
        reads_its_own_word::<FutexLock>(&FutexState::new());
        reads_its_own_word::<SpinLock>(&SpinState::new());
        reads_its_own_word::<PureSpinLock>(&PureSpinState::new());
    }

    #[test]
    fn the_futex_lock_has_a_flag_the_spin_locks_none() {
        let s = FutexState::new();
        assert!(matches!(
            FutexLock::inspect(&s, &[], &alive).waiters,
            Waiters::Flag { any: false, .. }
        ));
        let r = PureSpinLock::inspect(&PureSpinState::new(), &[], &alive);
        assert_eq!(r.waiters, Waiters::NotRecorded);
        assert_eq!(r.notes, [SPIN_WAITERS]);
    }
}
