//! Who holds a lock, and whether they are still alive.
//!
//! Both locks store the holder's kernel thread id in their lock word, with
//! a *generation* beside it that every acquisition increments (see
//! `word.rs`), and next to those an *owner record*: the generation of the
//! acquisition that wrote it plus the holder's *stamp*, the low 31 bits of
//! its start time (clock ticks since boot, field 22 of `/proc/TID/stat`).
//! The tid says who to ask about; the stamp tells a dead holder from an
//! unrelated thread that later got the same tid; the generation says which
//! acquisition the record belongs to, so that a record left by an earlier
//! holder (a dead one, whose tid a new holder may share) is never read as
//! the current holder's.
//!
//! A thread whose own start time cannot be read stamps itself with a random
//! *nonce* instead, marked by the stamp's top bit: nobody can compare it
//! with `/proc`, but it still tells the thread from a dead one that had its
//! tid, which is all the thread itself needs to know (is the lock in my
//! name mine, or a dead predecessor's?).

use crate::sync::{AtomicU64, Ordering};
#[cfg(not(loom))]
use std::cell::Cell;
#[cfg(not(loom))]
use std::sync::OnceLock;

/// The stamp's top bit: the other 31 are a random nonce, not a start time.
const NONCE: u32 = 1 << 31;

/// The bits of a start time a stamp keeps.
const START_BITS: u32 = !NONCE;

/// The calling thread, as a lock records it: its tid in the low 32 bits and
/// its stamp (start time, or a marked nonce; never 0) in the high 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Me(u64);

impl Me {
    /// A thread with this tid and start time (ticks since boot; 0: could
    /// not be read, and then `nonce` is drawn instead).
    fn new(tid: u32, start: u64, nonce: impl FnOnce() -> u32) -> Me {
        let stamp = match start as u32 & START_BITS {
            0 => nonce() | NONCE,
            start => start,
        };
        Me((u64::from(stamp) << 32) | u64::from(tid))
    }

    /// A made-up thread, for tests: `start` 0 draws the stamp from `nonce`.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn fake(tid: u32, start: u64, nonce: u32) -> Me {
        Me::new(tid, start, || nonce)
    }

    /// The kernel thread id (never 0, always below 2^22 = the largest
    /// `pid_max`, so the top bit of a `u32` stays free for a flag).
    #[inline]
    pub(crate) fn tid(self) -> u32 {
        self.0 as u32
    }

    /// What the owner record keeps of this thread (never 0).
    #[inline]
    pub(crate) fn stamp(self) -> u32 {
        (self.0 >> 32) as u32
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
    let me = Me::new(tid, start_time(tid), || nonce(tid));
    if can_cache {
        ME.set(me.0);
    }
    me
}

/// A random 32-bit value for a thread that cannot read its own start time.
/// It only has to differ from the nonce of a dead thread that had the same
/// tid: std's per-thread random hash keys, the tid and the wall clock in
/// nanoseconds (the dead one drew its nonce earlier) see to that.
#[cfg(not(loom))]
fn nonce(tid: u32) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(tid);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    h.finish() as u32
}

/// Stores the owner record right after the acquisition that made the word's
/// generation `generation`.
#[inline]
pub(crate) fn record(slot: &AtomicU64, generation: u32, me: Me) {
    slot.store(
        (u64::from(generation) << 32) | u64::from(me.stamp()),
        Ordering::Relaxed,
    );
}

/// Clears the owner record before releasing a lock, so that the record a
/// waiter reads belongs to the current holder or to nobody (see
/// [`stamp_of`]).
#[inline]
pub(crate) fn clear(slot: &AtomicU64) {
    slot.store(0, Ordering::Relaxed);
}

/// The stamp in the owner record `record` if the acquisition that made the
/// word's generation `generation` wrote it; `None` if the record is empty
/// (not written yet, or cleared by a holder releasing) or is another
/// acquisition's: a dead holder's that a taker has not overwritten yet, or
/// a later holder's.
#[inline]
pub(crate) fn stamp_of(record: u64, generation: u32) -> Option<u32> {
    let stamp = record as u32;
    (stamp != 0 && (record >> 32) as u32 == generation).then_some(stamp)
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
/// `stamp` is the current acquisition's stamp ([`stamp_of`] the owner
/// record, loaded after the word was loaded with `Acquire`), `None` if its
/// holder has not recorded it yet (or is releasing).
pub(crate) fn check(tid: u32, stamp: Option<u32>, me: Me) -> Holder {
    if tid == me.tid() {
        // Two live threads never share a tid, so the holder is either this
        // thread or a dead one whose tid we inherited. This thread records
        // its stamp before `lock` returns, so only its own stamp means it;
        // none, or another (a start time or a nonce), is a dead
        // predecessor's acquisition.
        return if stamp == Some(me.stamp()) {
            Holder::Me
        } else {
            Holder::Dead
        };
    }
    live_holder(tid, stamp)
}

/// The start time a stamp holds, or 0 if it holds none (unknown, or a
/// nonce).
#[cfg(not(loom))]
fn recorded_start(stamp: Option<u32>) -> u32 {
    match stamp {
        Some(s) if s & NONCE == 0 => s,
        _ => 0,
    }
}

/// [`check`] for a tid that is not the caller's, through
/// [`shm::process::liveness_matching`] (`/proc/TID/stat` exists for every
/// thread id): a zombie or a tid now naming another thread is dead; a tid
/// whose liveness cannot be known is treated as alive, so a lock is never
/// taken from a holder that may still run. Without a recorded start time,
/// only a tid that no longer exists (or is a zombie) is dead.
#[cfg(not(loom))]
fn live_holder(tid: u32, stamp: Option<u32>) -> Holder {
    let recorded = recorded_start(stamp);
    let same = |start: u64| recorded == 0 || start as u32 & START_BITS == recorded;
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

/// The model's threads: made-up tids and start times, and what `/proc`
/// would say about them.
///
/// Every model thread gets a fresh tid (1, 2, 3, ...; unique among the
/// threads of all executions so far, wrapping below 2^22) and a fresh start
/// time on its first lock, and stays alive unless it calls
/// [`model::die`]; one thread per execution may instead take a dead
/// thread's tid with [`model::reuse_tid`], as the kernel may.
///
/// What is deterministic is kept out of loom's sight, so that it adds no
/// interleavings: the counters, and the registry of fresh threads that live
/// (a thread registers before its tid can appear in any lock word, and a
/// model lets a thread die only before others look at what it held, joined,
/// so every look at the registry finds the same answer whatever the
/// schedule). What races is a tid's reuse, against a waiter asking whether
/// that tid is dead: that goes through a loom atomic, [`REUSED`], which a
/// check reads only for a tid that the registry does not list, so models
/// without deaths never touch it. (A plain mutex there would hide the race
/// from loom, which explores only reorderings of what it sees.)
#[cfg(loom)]
mod modelled {
    use super::{Holder, Me};
    use std::cell::Cell;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

    static NEXT_TID: AtomicU32 = AtomicU32::new(0);
    static NEXT_START: AtomicU32 = AtomicU32::new(0);

    loom::lazy_static! {
        /// The live threads with fresh tids, as (tid, start). Fresh for
        /// every execution.
        static ref LIVE: Mutex<Vec<(u32, u32)>> = Mutex::new(Vec::new());
        /// The one thread of this execution that took a dead thread's tid,
        /// as `start << 32 | tid`, or 0.
        static ref REUSED: loom::sync::atomic::AtomicU64 =
            loom::sync::atomic::AtomicU64::new(0);
    }

    loom::thread_local! {
        static ME: Cell<Option<Me>> = Cell::new(None);
    }

    fn fresh_start() -> u32 {
        NEXT_START.fetch_add(1, Relaxed) % (1 << 30) + 1
    }

    /// This thread, with `tid` and `start`.
    fn set_me(tid: u32, start: u32) -> Me {
        let me = Me::new(tid, u64::from(start), || unreachable!("start known"));
        ME.with(|m| m.set(Some(me)));
        me
    }

    pub(crate) fn me() -> Me {
        ME.with(Cell::get).unwrap_or_else(|| {
            let tid = NEXT_TID.fetch_add(1, Relaxed) % ((1 << 22) - 1) + 1;
            let start = fresh_start();
            LIVE.lock().expect("model registry").push((tid, start));
            set_me(tid, start)
        })
    }

    /// `/proc` in the model: `tid` is dead unless a live thread has it, and,
    /// if `stamp` holds a start time, has that one.
    pub(super) fn live_holder(tid: u32, stamp: Option<u32>) -> Holder {
        let matches = |t: u32, s: u32| t == tid && stamp.is_none_or(|st| st == s);
        let listed = LIVE
            .lock()
            .expect("model registry")
            .iter()
            .any(|&(t, s)| matches(t, s));
        // Only a tid the registry does not list may have been reused: ask
        // the atomic then, by a read-modify-write that changes nothing. An
        // RMW reads the newest value, as a `/proc` read sees the kernel's
        // current state; a plain load could read a value from before the
        // reuse even after seeing the reusing thread's lock word (whose
        // Acquire-only compare-exchange orders nothing), and so find dead a
        // thread that had run already, which no kernel would report.
        let alive = listed || {
            let reused = REUSED.fetch_or(0, loom::sync::atomic::Ordering::SeqCst);
            reused != 0 && matches(reused as u32, (reused >> 32) as u32)
        };
        if alive { Holder::Alive } else { Holder::Dead }
    }

    /// Whether no live model thread has `tid`.
    fn tid_is_free(tid: u32) -> bool {
        live_holder(tid, None) == Holder::Dead
    }

    /// Whether the registry of fresh threads does not list `tid` alive, so
    /// that the thread holding it may be dead (or be a reused tid's). A
    /// lookup loom does not see, and deterministic (see above).
    pub(crate) fn may_be_dead(tid: u32) -> bool {
        !LIVE
            .lock()
            .expect("model registry")
            .iter()
            .any(|&(t, _)| t == tid)
    }

    /// Whether the holder of an acquisition by `tid` with `stamp` is dead.
    pub(crate) fn is_dead(tid: u32, stamp: Option<u32>) -> bool {
        live_holder(tid, stamp) == Holder::Dead
    }

    pub(crate) fn tid() -> u32 {
        me().tid()
    }

    pub(crate) fn reuse_tid(tid: u32) {
        assert!(
            ME.with(Cell::get).is_none(),
            "reuse_tid must come before the thread's first lock"
        );
        assert!(tid_is_free(tid), "tid {tid} still names a live thread");
        let start = fresh_start();
        let was = REUSED.swap(
            (u64::from(start) << 32) | u64::from(tid),
            loom::sync::atomic::Ordering::SeqCst,
        );
        assert_eq!(was, 0, "one reused tid per execution");
        set_me(tid, start);
    }

    pub(crate) fn die() {
        let me = me();
        let mut live = LIVE.lock().expect("model registry");
        let before = live.len();
        live.retain(|&(t, s)| (t, s) != (me.tid(), me.stamp()));
        assert_eq!(
            live.len() + 1,
            before,
            "only a thread with a fresh tid may die in a model"
        );
    }
}

/// The calling loom thread's identity (see [`modelled`]).
#[cfg(loom)]
pub(crate) use modelled::me;

#[cfg(loom)]
use modelled::live_holder;

/// The model's liveness, for its futex's timeouts (see [`modelled`]).
#[cfg(loom)]
pub(crate) use modelled::{is_dead, may_be_dead};

/// Hooks for the loom models (`tests/loom.rs`) to play the kernel's part in
/// a holder's death and in tid reuse. Only under `cfg(loom)`.
#[cfg(loom)]
pub mod model {
    /// The calling model thread's tid.
    pub fn tid() -> u32 {
        super::modelled::tid()
    }

    /// Gives the calling model thread the tid of a dead one, with a new
    /// start time, as the kernel may once a tid is free. Call it before the
    /// thread's first lock; at most one thread per execution may.
    ///
    /// # Panics
    /// If the thread has locked already, `tid` names a live thread, or
    /// another thread of this execution reused a tid.
    pub fn reuse_tid(tid: u32) {
        super::modelled::reuse_tid(tid);
    }

    /// The calling model thread dies: from now on it is dead to every
    /// liveness check, and locks it holds may be taken over. It must not
    /// touch a lock again. Let it die before the threads that look at what
    /// it held start (join it): a waiter already asleep behind it would not
    /// be woken (the model's futex never times out), and its death is not
    /// something loom sees, so it must be ordered by a join.
    pub fn die() {
        super::modelled::die();
    }
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
        assert_eq!(s.start_time as u32 & START_BITS, m.stamp());
        assert_eq!(m.stamp() & NONCE, 0, "a start time, not a nonce");
        assert_eq!(s.state, b'R');
    }

    #[test]
    fn an_unknown_start_time_stamps_a_marked_nonce() {
        let m = Me::fake(77, 0, 5);
        assert_eq!((m.tid(), m.stamp()), (77, 5 | NONCE));
        // A start time whose 31 kept bits are zero is unknown too.
        assert_eq!(Me::fake(77, 1 << 31, 6).stamp(), 6 | NONCE);
        assert_eq!(Me::fake(77, 12345, 6).stamp(), 12345);
        assert_ne!(nonce(1), nonce(1), "drawn afresh");
    }

    #[test]
    fn records_belong_to_one_generation() {
        let slot = AtomicU64::new(0);
        assert_eq!(stamp_of(slot.load(Ordering::Relaxed), 0), None, "empty");
        let m = me();
        record(&slot, 9, m);
        let r = slot.load(Ordering::Relaxed);
        assert_eq!(stamp_of(r, 9), Some(m.stamp()));
        assert_eq!(stamp_of(r, 10), None, "a later acquisition's");
        assert_eq!(stamp_of(r, 8), None, "an earlier acquisition's");
        clear(&slot);
        assert_eq!(stamp_of(slot.load(Ordering::Relaxed), 9), None);
    }

    #[test]
    fn liveness() {
        let m = me();
        assert_eq!(check(m.tid(), Some(m.stamp()), m), Holder::Me);
        assert_eq!(check(m.tid(), None, m), Holder::Dead);
        // A live thread of this process, with and without its record.
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(me()).unwrap();
            done_rx.recv().ok();
        });
        let other = rx.recv().unwrap();
        assert_eq!(check(other.tid(), Some(other.stamp()), m), Holder::Alive);
        assert_eq!(check(other.tid(), None, m), Holder::Alive);
        // A nonce cannot be compared with /proc: only existence counts.
        assert_eq!(check(other.tid(), Some(NONCE | 3), m), Holder::Alive);
        // Same tid, different start time: a reused tid, so the holder died.
        let reused = other.stamp() ^ (1 << 20);
        assert_eq!(check(other.tid(), Some(reused), m), Holder::Dead);
        done_tx.send(()).unwrap();
        t.join().unwrap();
        // Exited (a non-leader thread is reaped at once).
        assert_eq!(check(other.tid(), Some(other.stamp()), m), Holder::Dead);
        assert_eq!(check(other.tid(), None, m), Holder::Dead);
    }

    /// A dead thread that had the caller's tid, when neither could read its
    /// start time: the stamps are nonces, and they differ, so the lock is
    /// the dead one's to take over, not the caller's own (a deadlock).
    #[test]
    fn same_tid_unknown_start_times_is_a_dead_predecessor() {
        let tid = me().tid();
        let predecessor = Me::fake(tid, 0, 1);
        let caller = Me::fake(tid, 0, 2);
        assert_eq!(check(tid, Some(predecessor.stamp()), caller), Holder::Dead);
        assert_eq!(check(tid, Some(caller.stamp()), caller), Holder::Me);
    }
}
