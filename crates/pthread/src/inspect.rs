//! What a pthread mutex says about itself ([`InspectLock`]), read from a
//! copy of its state: glibc's owner field (`__data.__owner`, the holder's
//! tid, or glibc's marks for a robust mutex whose owner died) and its lock
//! word (`__data.__lock`): a robust mutex's is `tid | FUTEX_WAITERS |
//! FUTEX_OWNER_DIED`, a plain one's 0 (free), 1 (held) or 2 (held, and
//! someone may sleep). Both are read by the crate's own accessors of
//! glibc's layout (`sys::owner_tid`, `sys::lock_word`).

use crate::{MutexState, PlainMutex, RobustMutex, sys};
use shm::lock::{Ids, InspectLock, LockInfo, Waiters};
use shm::process::Liveness;

/// glibc's `PTHREAD_MUTEX_INCONSISTENT`: the owner field of a robust mutex
/// whose new owner got `EOWNERDEAD` and has not called
/// `pthread_mutex_consistent` yet.
const PTHREAD_MUTEX_INCONSISTENT: i32 = i32::MAX;
/// glibc's `PTHREAD_MUTEX_NOTRECOVERABLE`.
const PTHREAD_MUTEX_NOTRECOVERABLE: i32 = i32::MAX - 1;

/// What a set waiters flag means, for a reader.
const FLAG_MEANS: &str = "glibc's lock word records that someone waits, not how many";

impl InspectLock for RobustMutex {
    const RECOVERS_OWNER_DEATH: bool = true;

    fn inspect(state: &MutexState, _bytes: &[u8], liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
        describe(
            true,
            owner(state),
            Some(sys::lock_word(state.m.cell())),
            liveness,
        )
    }
}

impl InspectLock for PlainMutex {
    const RECOVERS_OWNER_DEATH: bool = false;

    fn inspect(state: &MutexState, _bytes: &[u8], liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
        describe(
            false,
            owner(state),
            Some(sys::lock_word(state.m.cell())),
            liveness,
        )
    }
}

/// glibc's owner field, `None` when it names nobody.
fn owner(state: &MutexState) -> Option<i32> {
    Some(sys::owner_tid(state.m.cell())).filter(|&t| t > 0)
}

/// A pthread mutex from its owner field and (if known) its lock word.
fn describe(
    robust: bool,
    owner: Option<i32>,
    word: Option<u32>,
    liveness: &dyn Fn(i32) -> Liveness,
) -> LockInfo {
    let mut r = LockInfo::free(Ids::Threads);
    r.waiters = match word {
        Some(w) if robust => Waiters::Flag {
            any: w & libc::FUTEX_WAITERS != 0,
            means: FLAG_MEANS,
        },
        Some(w) => Waiters::Flag {
            any: w == 2,
            means: FLAG_MEANS,
        },
        None => Waiters::NotRecorded,
    };
    let owner_died = robust && word.is_some_and(|w| w & libc::FUTEX_OWNER_DIED != 0);
    match owner {
        Some(PTHREAD_MUTEX_INCONSISTENT) => {
            r.state = "held";
            r.notes
                .push("taken after its owner died (EOWNERDEAD); not yet made consistent".into());
        }
        Some(PTHREAD_MUTEX_NOTRECOVERABLE) => {
            r.state = "not recoverable";
            r.notes.push("an owner died and the next one unlocked it without pthread_mutex_consistent: it can never be locked again".into());
        }
        Some(tid) => {
            if owner_died {
                r.state = "owner died";
                r.notes.push(format!(
                    "the kernel marked it FUTEX_OWNER_DIED when tid {tid} died holding it: the next pthread_mutex_lock gets EOWNERDEAD and recovers it"
                ));
            } else {
                r.state = "held";
                let how = liveness(tid);
                if how.is_dead() {
                    r.notes.push(if robust {
                        format!("its holder tid {tid} is {how}: the kernel marks it when the holder's exit is complete, then the next locker recovers it")
                    } else {
                        format!("its holder tid {tid} is {how}: a plain (non-robust) mutex stays held by a dead owner forever (wedged)")
                    });
                }
            }
            r.holder = Some(tid);
        }
        None => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm::lock::RawLock;

    fn alive(_: i32) -> Liveness {
        Liveness::Running
    }
    fn gone(_: i32) -> Liveness {
        Liveness::Gone
    }

    #[test]
    fn words() {
        let me = shm::gettid();
        let r = describe(
            true,
            Some(me),
            Some(me as u32 | libc::FUTEX_WAITERS),
            &alive,
        );
        assert_eq!(r.state, "held");
        assert!(matches!(r.waiters, Waiters::Flag { any: true, .. }));
        assert_eq!(r.holder, Some(me));
        let r = describe(false, None, Some(0), &alive);
        assert_eq!(r.state, "free");
        assert!(matches!(r.waiters, Waiters::Flag { any: false, .. }));
        let r = describe(true, Some(me), Some(libc::FUTEX_OWNER_DIED), &alive);
        assert_eq!(r.state, "owner died");
        let r = describe(false, Some(7), Some(1), &gone);
        assert!(r.notes[0].ends_with("stays held by a dead owner forever (wedged)"));
        assert_eq!(describe(true, Some(i32::MAX), None, &alive).state, "held");
        assert_eq!(
            describe(true, Some(i32::MAX - 1), None, &alive).state,
            "not recoverable"
        );
    }

    /// A real mutex, held by this thread, read by the inspect hook.
    #[test]
    fn a_held_mutex_names_this_thread() {
        let mut state = std::mem::MaybeUninit::<MutexState>::zeroed();
        let ctx_name = shm::ShmName::parse("/shmlab-pthread-inspect").unwrap();
        let ctx = shm::InitCtx {
            name: &ctx_name,
            mode: shm::Mode::from_bits_truncate(0o600),
            trailing_len: 0,
        };
        // SAFETY: zeroed, aligned, on this frame only and never moved
        // while in use.
        unsafe { <RobustMutex as RawLock>::init(state.as_mut_ptr(), &ctx) }.unwrap();
        // SAFETY: initialised just above.
        let state = unsafe { state.assume_init_ref() };
        let r = RobustMutex::inspect(state, &[], &alive);
        assert_eq!((r.state, r.holder), ("free", None));
        let _ = RobustMutex.lock(state).unwrap();
        let r = RobustMutex::inspect(state, &[], &alive);
        assert_eq!((r.state, r.holder), ("held", Some(shm::gettid())));
        // SAFETY: locked just above, by this thread.
        unsafe { RobustMutex.unlock(state) };
        // SAFETY: unlocked, and nobody else has it.
        unsafe { <RobustMutex as RawLock>::destroy(state, &ctx) };
    }
}
