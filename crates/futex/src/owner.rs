//! Who holds a lock, and whether they are still alive.
//!
//! Both locks store the holder's kernel thread id in their lock word, and
//! next to it an *owner record*: the same tid plus the low 32 bits of the
//! thread's start time (clock ticks since boot, field 22 of
//! `/proc/TID/stat`). The tid says who to ask about; the start time tells a
//! dead holder from an unrelated thread that later got the same tid.

use crate::sync::{AtomicU64, Ordering};
#[cfg(not(loom))]
use std::cell::Cell;
#[cfg(not(loom))]
use std::sync::OnceLock;

/// The calling thread, as a lock stores it: its tid in the low 32 bits and
/// the low 32 bits of its start time in the high 32 (0 if unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Me(u64);

impl Me {
    /// The kernel thread id (never 0, always below 2^22 = the largest
    /// `pid_max`, so the top bit of a `u32` stays free for a flag).
    #[inline]
    pub(crate) fn tid(self) -> u32 {
        self.0 as u32
    }

    /// The value for the owner record.
    #[inline]
    pub(crate) fn record(self) -> u64 {
        self.0
    }
}

#[cfg(not(loom))]
thread_local! {
    /// This thread's [`Me`], or 0 before the first lock and in a forked
    /// child. `const`-initialised and without a destructor, so reading it is
    /// one TLS load, and the fork handler may write it.
    static ME: Cell<u64> = const { Cell::new(0) };
}

/// The calling thread's identity: a TLS read after the first call.
#[cfg(not(loom))]
#[inline]
pub(crate) fn me() -> Me {
    let v = ME.get();
    if v != 0 { Me(v) } else { me_slow() }
}

/// The calling loom thread's identity: a made-up tid, unique among the
/// threads of all executions so far (1, 2, 3, ...; wrapping below 2^22), and
/// an unknown start time. Drawn from a plain counter, not a loom atomic, so
/// that it adds no interleavings: tids are only ever compared.
#[cfg(loom)]
pub(crate) fn me() -> Me {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loom::thread_local! {
        static ME: Me = Me(u64::from(NEXT.fetch_add(1, Relaxed) % ((1 << 22) - 1) + 1));
    }
    ME.with(|me| *me)
}

/// Runs in the child after `fork`: the child's only thread is a copy of the
/// forking one, with its cache, but a new tid.
#[cfg(not(loom))]
extern "C" fn forget_me() {
    ME.set(0);
}

#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn me_slow() -> Me {
    // Registered before any thread caches its identity: a cached value
    // therefore implies the handler will run in any child forked later.
    static FORK_HANDLER: OnceLock<bool> = OnceLock::new();
    let can_cache = *FORK_HANDLER.get_or_init(|| crate::sys::on_fork_child(forget_me).is_ok());
    let tid = shm::gettid() as u32;
    let start = start_time(tid) as u32;
    let me = Me((u64::from(start) << 32) | u64::from(tid));
    if can_cache {
        ME.set(me.0);
    }
    me
}

/// Stores the owner record after acquiring a lock.
#[inline]
pub(crate) fn record(slot: &AtomicU64, me: Me) {
    slot.store(me.record(), Ordering::Relaxed);
}

/// Clears the owner record before releasing a lock, so that the record a
/// waiter reads belongs to the current holder or is 0 (see
/// [`check`]).
#[inline]
pub(crate) fn clear(slot: &AtomicU64) {
    slot.store(0, Ordering::Relaxed);
}

/// What a waiter learns about the tid in a lock word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Still running: keep waiting.
    Alive,
    /// Gone (exited, killed, a zombie, or its tid now names another
    /// thread): the lock may be taken over.
    Dead,
    /// The calling thread itself: locking again would never return.
    Me,
}

/// Whether the thread `tid`, found in a lock word, still holds the lock.
///
/// `record` is the owner record, loaded (`Relaxed`) *after* the word was
/// loaded with `Acquire`: the previous holder cleared it before its
/// `Release` unlock, so it is either 0, or this holder's own record, or the
/// record of a dead holder someone is taking over (a different tid). Only a
/// record with the same tid is compared.
pub(crate) fn check(tid: u32, record: u64, me: Me) -> Holder {
    if tid == me.tid() {
        // Two live threads never share a tid, so the holder is either this
        // thread or a dead one whose tid we inherited; the record says which.
        return if record == me.record() {
            Holder::Me
        } else {
            Holder::Dead
        };
    }
    live_holder(tid, record)
}

/// Under the model every other holder is alive: reading `/proc` is not
/// something loom can explore, and a holder that never dies keeps the model
/// finite. Takeover is therefore not model-checked; mutual exclusion and
/// wake-ups are.
#[cfg(loom)]
fn live_holder(_tid: u32, _record: u64) -> Holder {
    Holder::Alive
}

/// [`check`] for a tid that is not the caller's, through
/// [`shm::process::liveness_matching`] (`/proc/TID/stat` exists for every
/// thread id): a zombie or a tid now naming another thread is dead; a tid
/// whose liveness cannot be known is treated as alive, so a lock is never
/// taken from a holder that may still run.
#[cfg(not(loom))]
fn live_holder(tid: u32, record: u64) -> Holder {
    let recorded_start = if record as u32 == tid {
        (record >> 32) as u32
    } else {
        0
    };
    let same = |start: u64| recorded_start == 0 || start as u32 == recorded_start;
    if shm::process::liveness_matching(tid as i32, same).is_dead() {
        Holder::Dead
    } else {
        Holder::Alive
    }
}

/// This thread's start time, clock ticks since boot (0 if unknown).
#[cfg(not(loom))]
fn start_time(tid: u32) -> u64 {
    shm::process::start_time(tid as i32).unwrap_or(0)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn me_is_cached_and_matches_gettid() {
        let a = me();
        assert_eq!(a.tid() as i32, shm::gettid());
        assert_eq!(ME.get(), a.0);
        assert_eq!(me(), a);
        let other = std::thread::spawn(me).join().unwrap();
        assert_ne!(other.tid(), a.tid());
    }

    #[test]
    fn start_time_matches_proc() {
        let m = me();
        let s = shm::process::stat(m.tid() as i32).expect("/proc/self readable");
        assert_eq!(s.start_time as u32, (m.0 >> 32) as u32);
        assert_eq!(s.state, b'R');
    }

    #[test]
    fn liveness() {
        let m = me();
        assert_eq!(check(m.tid(), m.record(), m), Holder::Me);
        assert_eq!(check(m.tid(), 0, m), Holder::Dead);
        // A live thread of this process, with and without its record.
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(me()).unwrap();
            done_rx.recv().ok();
        });
        let other = rx.recv().unwrap();
        assert_eq!(check(other.tid(), other.record(), m), Holder::Alive);
        assert_eq!(check(other.tid(), 0, m), Holder::Alive);
        // Same tid, different start time: a reused tid, so the holder died.
        let reused = other.record() ^ (1 << 40);
        assert_eq!(check(other.tid(), reused, m), Holder::Dead);
        done_tx.send(()).unwrap();
        t.join().unwrap();
        // Exited (a non-leader thread is reaped at once).
        assert_eq!(check(other.tid(), other.record(), m), Holder::Dead);
    }
}
