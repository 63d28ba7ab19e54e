//! Lab 7's bounded buffer, shared by the lab that runs producers and
//! consumers on it and by `shmlab ps`, which reads it from a copy: the
//! ring's head, tail and fill count, and the synchronisation the run chose
//! (three process-shared semaphores, or a futex lock and a futex word).
//! Its decoder for `shmlab ps` is here too (its `DecodePayload` impl).

use crate::decoded::{Copied, DecodePayload, Decoded, LockReport, Lookups, Waiters};
use crate::items::Slot;
use shm::lock::{LockState, RawLock};
use shm::{CachePadded, InitCtx, Shared};
use shm_futex::FutexLock;
use shm_sem::inspect::{glibc_sem_waiters, semaphore};
use shm_sem::{SemCell, UnnamedSemaphore};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Most slots a ring can have.
pub const MAX_SLOTS: u32 = 4096;
/// Most items a run can track (producers × items each).
pub const MAX_ITEMS: u64 = 1 << 20;

/// The type tag in lab 7's region header.
pub const BUFFER_TYPE: &str = "lab7/bounded-buffer";

/// How the ring is synchronised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferSync {
    /// Nothing: see it break.
    None,
    /// Two counting semaphores and a mutex semaphore.
    Sem,
    /// A futex lock, and futex waits on the fill count.
    Futex,
}

impl BufferSync {
    /// The number stored in the region (`Buffer::sync`).
    fn code(self) -> u32 {
        match self {
            BufferSync::None => 1,
            BufferSync::Sem => 2,
            BufferSync::Futex => 3,
        }
    }

    /// The mode a stored number names, if any.
    pub fn from_code(c: u32) -> Option<BufferSync> {
        [BufferSync::None, BufferSync::Sem, BufferSync::Futex]
            .into_iter()
            .find(|m| m.code() == c)
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            BufferSync::None => "none",
            BufferSync::Sem => "sem",
            BufferSync::Futex => "futex",
        }
    }
}

/// The region's payload.
#[repr(C)]
pub struct Buffer {
    /// The start gate: workers count themselves in and sleep on it.
    pub gate: CachePadded<shm_futex::Gate>,
    /// Next slot to write (monotonic; index = value % capacity).
    pub head: CachePadded<AtomicU64>,
    /// Next slot to read (monotonic).
    pub tail: CachePadded<AtomicU64>,
    /// Filled slots (futex mode's futex word).
    pub count: CachePadded<AtomicU32>,
    /// How many sleep on `count` (futex mode).
    pub waiters: CachePadded<AtomicU32>,
    /// Consumption tickets handed out (stops consumers at the total).
    pub claimed: CachePadded<AtomicU64>,
    /// Non-zero once every producer has exited (none mode's consumers stop
    /// on it). A byte read as `!= 0`, not an `AtomicBool`: any process that
    /// can write the region may store any byte here, and `shmlab ps` reads
    /// it from a copy of whatever the bytes are (see [`shm::AnyBits`]).
    pub producers_done: CachePadded<AtomicU8>,
    /// Slots in use in `ring` (the `--slots` asked for).
    pub capacity: AtomicU32,
    /// Items to move in all.
    pub total: AtomicU64,
    /// Items per producer.
    pub per: AtomicU64,
    /// Torn items consumers found.
    pub torn: AtomicU64,
    /// `sem`: free slots.
    pub empty: SemCell,
    /// `sem`: filled slots.
    pub full: SemCell,
    /// `sem`: the ring's mutex (a semaphore at 1).
    pub mutex: SemCell,
    /// `futex`: the lock around the ring.
    pub lock: CachePadded<LockState<FutexLock>>,
    /// The synchronisation of this run ([`BufferSync`], as its code).
    pub sync: AtomicU32,
    /// The ring; only its first `capacity` slots are used.
    pub ring: [CachePadded<Slot>; MAX_SLOTS as usize],
    /// Receipts: how often each (producer, seq) was consumed.
    pub receipts: [AtomicU8; MAX_ITEMS as usize],
}
shm::any_bits!(Buffer {
    gate,
    head,
    tail,
    count,
    waiters,
    claimed,
    producers_done,
    capacity,
    total,
    per,
    torn,
    empty,
    full,
    mutex,
    lock,
    sync,
    ring,
    receipts,
});

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("sync", &self.sync_mode())
            .field("capacity", &self.capacity)
            .field("head", &self.head.0)
            .field("tail", &self.tail.0)
            .finish_non_exhaustive()
    }
}

impl Buffer {
    /// The run's synchronisation, if the stored code is one.
    pub fn sync_mode(&self) -> Option<BufferSync> {
        BufferSync::from_code(self.sync.load(Ordering::Relaxed))
    }
}

// SAFETY: repr(C); atomics, process-shared semaphores and a futex lock
// state, all valid zeroed and interior-mutable.
unsafe impl Shared for Buffer {
    type Init = (BufferSync, u32, u64, u64);

    fn type_name() -> String {
        BUFFER_TYPE.into()
    }

    unsafe fn init_in_place(
        this: *mut Self,
        (sync, slots, total, per): Self::Init,
        ctx: &InitCtx<'_>,
    ) -> Result<(), String> {
        // SAFETY: `this` is zeroed, aligned and ours alone (trait contract);
        // fields are reached through raw pointers before any reference.
        unsafe {
            (*this).capacity.store(slots, Ordering::Relaxed);
            (*this).total.store(total, Ordering::Relaxed);
            (*this).per.store(per, Ordering::Relaxed);
            (*this).sync.store(sync.code(), Ordering::Relaxed);
            // Initialised in every mode: a payload hands out only
            // initialised lock states (only `futex` takes it).
            LockState::init(&raw mut (*this).lock.0, ctx).map_err(|e| e.to_string())?;
            match sync {
                BufferSync::Sem => {
                    SemCell::init(&raw mut (*this).empty, slots).map_err(|e| e.to_string())?;
                    SemCell::init(&raw mut (*this).full, 0).map_err(|e| e.to_string())?;
                    SemCell::init(&raw mut (*this).mutex, 1).map_err(|e| e.to_string())?;
                }
                BufferSync::Futex | BufferSync::None => {}
            }
        }
        Ok(())
    }
}

/// What `shmlab ps` reads from a copy of the buffer: where the ring stands
/// (head, tail, items in it) and its synchronisation: the three semaphores
/// (`sem`), or the futex lock and the fill-count word consumers sleep on
/// (`futex`).
impl DecodePayload for Buffer {
    fn report(b: &Copied<Self>, who: &Lookups) -> Decoded {
        use crate::fmt::group;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (head, tail) = (load(&b.head.0), load(&b.tail.0));
        let sync = b.sync_mode();
        let mut locks = Vec::new();
        let counting = |label: &str, value: Option<i32>, waiters: Waiters, note: &str| {
            let mut r = LockReport::new(UnnamedSemaphore::NAME);
            r.name = label.into();
            r.state = "counting";
            r.value = value;
            r.waiters = waiters;
            r.notes.push(note.into());
            r
        };
        let sem_waiters = |cell: &SemCell| glibc_sem_waiters(b.bytes_of(cell).get(..8)?);
        match sync {
            Some(BufferSync::Sem) => {
                let count =
                    |cell| sem_waiters(cell).map_or(Waiters::No, |count| Waiters::Count { count });
                locks.push(counting(
                    "empty",
                    b.empty.value().ok(),
                    count(&b.empty),
                    "free slots: producers wait on it when it is 0",
                ));
                locks.push(counting(
                    "full",
                    b.full.value().ok(),
                    count(&b.full),
                    "filled slots: consumers wait on it when it is 0",
                ));
                let info = semaphore(b.mutex.value().ok(), sem_waiters(&b.mutex), 0, &|id| {
                    who.liveness(id)
                });
                locks.push(LockReport::from_info(
                    "mutex",
                    UnnamedSemaphore::NAME,
                    info,
                    who,
                ));
            }
            Some(BufferSync::Futex) => {
                let state = b.lock.0.raw();
                locks.push(LockReport::of::<FutexLock>(
                    "lock",
                    state,
                    b.bytes_of(state),
                    who,
                ));
                let mut c = LockReport::new("futex word");
                c.name = "count".into();
                c.state = "counting";
                let count = b.count.0.load(Ordering::Relaxed);
                c.value = i32::try_from(count).ok();
                if c.value.is_none() {
                    c.notes.push(format!(
                        "the word holds {}, more than any count: the region is corrupt",
                        group(u64::from(count))
                    ));
                }
                c.waiters = Waiters::Count {
                    count: b.waiters.0.load(Ordering::Relaxed),
                };
                c.notes.push(
                    "filled slots: consumers sleep on this word (futex_wait) while it is 0, producers while it is the ring's size; the lab counts the sleepers"
                        .into(),
                );
                locks.push(c);
            }
            Some(BufferSync::None) | None => {}
        }
        let capacity = b.capacity.load(Ordering::Relaxed);
        // head - tail is the ring's fill, 0 to its size; anything else is a
        // corrupt region (or one written by something else), said as such.
        let in_ring = match head.checked_sub(tail) {
            Some(n) if n <= u64::from(capacity) => format!("{} item(s) in the ring", group(n)),
            Some(n) => format!(
                "{} apart: more than the ring holds, the region is inconsistent",
                group(n)
            ),
            None => "the tail is past the head: the region is inconsistent".into(),
        };
        let note = format!(
            "lab7: sync {}, a ring of {} slot(s){}; head {}, tail {} ({in_ring}); {} of {} item(s) claimed by consumers; producers {}; torn items so far {}",
            sync.map_or("unknown", BufferSync::name),
            group(u64::from(capacity)),
            if capacity > MAX_SLOTS {
                format!(" (more than the {MAX_SLOTS} a region has: inconsistent)")
            } else {
                String::new()
            },
            group(head),
            group(tail),
            group(load(&b.claimed.0)),
            group(load(&b.total)),
            if b.producers_done.0.load(Ordering::Relaxed) != 0 {
                "all done"
            } else {
                "still producing"
            },
            group(load(&b.torn)),
        );
        Decoded {
            locks,
            note: Some(note),
            ..Decoded::default()
        }
    }
}
