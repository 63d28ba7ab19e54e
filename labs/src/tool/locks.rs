//! What the locks inside a shmlab region say: free or held, by whom (and
//! whether that thread or process is alive), and who waits, where the lock
//! records it.
//!
//! Each region type the tool knows is decoded from a [`Snapshot`] of its
//! payload (read with `read(2)`, never mapped) through the lock crates' own
//! accessors:
//!
//! | lock | holder | waiters |
//! |---|---|---|
//! | `futex` | the tid in the lock word | the word's `FUTEX_WAITERS` bit: *that* someone waits, not how many |
//! | `spin` | the tid in the lock word | not recorded: spinners only read the word |
//! | `pthread`, `pthread-plain` | glibc's owner field (`last_holder`) | glibc's lock word: `FUTEX_WAITERS` (robust) or 2 (plain): a flag |
//! | `sem`, `sem-unnamed` | value 0: the last process that took it (a semaphore has no owner) | glibc's count of sleepers (`nwaiters`) |
//!
//! The regions it knows: the race's (`race/<lock>`: the lock, the counter,
//! the workers), lab 3's (counter, last writer), lab 7's bounded buffer
//! (head, tail, its semaphores or its futex lock and fill-count word) and
//! lab 13's table (every fork as a futex lock, who holds it and who waits
//! for it, and the wait-for cycle). Anything else is listed with its users
//! and a note that its payload is not decoded.
//!
//! Liveness of every pid and tid is [`shm::process::liveness`]'s.

use super::snapshot::{Plain, Snapshot};
use crate::payloads::buffer::{BUFFER_TYPE, Buffer, BufferSync};
use crate::payloads::philosophers::{Link, PHILOSOPHERS_TYPE, Table};
use crate::payloads::{LAB3_TYPE, Lab3Payload};
use race::WorkerState;
use race::shared::{ByLock, NoLock, RaceShared, RegionLock};
use serde::Serialize;
use shm::lock::RawLock;
use shm::{HeaderInfo, InitState, Region, Shared, ShmName, VERSION};
use std::sync::atomic::Ordering;

/// A thread or process named by a lock.
#[derive(Clone, Debug, Serialize)]
pub struct Holder {
    /// The id the lock stores: a thread id (futex, spin, pthread) or a pid
    /// (semaphores).
    pub id: i32,
    /// The process it belongs to (`Tgid` in `/proc/ID/status`), when `/proc`
    /// still shows it.
    pub pid: Option<i32>,
    /// Its command, when `/proc` still shows it.
    pub comm: Option<String>,
    /// `alive`, `zombie`, `gone` or `unknown`.
    pub liveness: &'static str,
    /// Dead for certain (zombie or gone); `unknown` is not dead.
    pub dead: bool,
}

impl Holder {
    /// The thread or process `id`, as `/proc` sees it now.
    pub fn of(id: i32) -> Self {
        let how = shm::process::liveness(id, 0);
        let info = shm::users::process_info(id);
        Holder {
            id,
            pid: info.as_ref().map(|i| i.tgid),
            comm: info.map(|i| i.comm),
            liveness: how.as_str(),
            dead: how.is_dead(),
        }
    }

    /// `tid 4244 (pid 4242 lab4-race) alive`, `pid 17 gone`.
    pub fn words(&self, what: &str) -> String {
        let who = match (&self.pid, &self.comm) {
            (Some(pid), Some(comm)) if *pid == self.id => format!(" ({comm})"),
            (Some(pid), Some(comm)) => format!(" (a thread of pid {pid} {comm})"),
            _ => String::new(),
        };
        format!("{what} {}{who} {}", self.id, self.liveness)
    }
}

/// What a lock records about who waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "recorded", rename_all = "snake_case")]
pub enum Waiters {
    /// An exact count of sleepers (glibc semaphores' `nwaiters`).
    Count {
        /// How many.
        count: u32,
    },
    /// A flag: someone waits (or waited: the flag may be stale), not how
    /// many.
    Flag {
        /// Whether it is set.
        any: bool,
    },
    /// The lock does not record its waiters.
    No,
}

impl Waiters {
    /// `waiters: 2`, `waiters: yes (…)`, `waiters: none recorded`, ...
    pub fn words(&self, flag_means: &str) -> String {
        match self {
            Waiters::Count { count } => {
                format!("waiters: {}", crate::fmt::group(u64::from(*count)))
            }
            Waiters::Flag { any: true } => format!("waiters: yes ({flag_means})"),
            Waiters::Flag { any: false } => "waiters: none (the waiters flag is clear)".into(),
            Waiters::No => "waiters: not recorded by this lock".into(),
        }
    }
}

/// One lock of a region, as read from a snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct LockReport {
    /// Which lock of the region (`lock`; `fork 3` at lab 13's table).
    pub name: String,
    /// The lock's kind: its sync-mode name (`futex`, `sem`, ...).
    pub kind: &'static str,
    /// `free`, `held`, or `owner died` (a robust mutex marked by the kernel).
    pub state: &'static str,
    /// Who holds it now, as the lock records it (for a semaphore at 0: the
    /// last process that took it, since a semaphore has no owner).
    pub holder: Option<Holder>,
    /// Semaphores: the last process that took it, held or not.
    pub last_taken_by: Option<Holder>,
    /// Who waits.
    pub waiters: Waiters,
    /// Semaphores: the value (`sem_getvalue`): 1 free, 0 held.
    pub value: Option<i32>,
    /// Named semaphores: the name the region stores (`/shmlab-…`).
    pub semaphore: Option<String>,
    /// What else a reader should know (a dead holder, how to repair, ...).
    pub notes: Vec<String>,
}

impl LockReport {
    fn new(kind: &'static str) -> Self {
        LockReport {
            name: "lock".into(),
            kind,
            state: "free",
            holder: None,
            last_taken_by: None,
            waiters: Waiters::No,
            value: None,
            semaphore: None,
            notes: Vec::new(),
        }
    }

    /// One line: `futex: held by tid 12 (lab4-race) alive; waiters: yes (...)`.
    pub fn words(&self) -> String {
        let mut s = format!("{}: {}", self.kind, self.state);
        if let Some(v) = self.value {
            s.push_str(&format!(" (value {v})"));
        }
        if let Some(h) = &self.holder {
            let what = if self.kind.starts_with("sem") {
                "pid"
            } else {
                "tid"
            };
            s.push_str(&format!(" by {}", h.words(what)));
        } else if let Some(h) = &self.last_taken_by {
            s.push_str(&format!(", last taken by {}", h.words("pid")));
        }
        let flag_means = match self.kind {
            "futex" => "FUTEX_WAITERS is set: the word records that someone waits, not how many",
            _ => "glibc's lock word records that someone waits, not how many",
        };
        s.push_str(&format!("; {}", self.waiters.words(flag_means)));
        s
    }
}

/// One worker slot of a race region.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerReport {
    /// Slot index.
    pub index: usize,
    /// The worker's pid (processes) or tid (threads).
    pub id: i32,
    /// `not-started`, `at the start barrier`, `running`, `done`, `failed`.
    pub state: &'static str,
    /// Increments published so far.
    pub done: u64,
    /// Whether it still runs.
    pub liveness: &'static str,
}

/// What the tool could read from a region's payload.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Decoded {
    /// Its locks.
    pub locks: Vec<LockReport>,
    /// The shared counter (race regions, lab 3).
    pub counter: Option<u64>,
    /// Race regions: the worker slots in use.
    pub workers: Vec<WorkerReport>,
    /// Why the payload was not decoded, or what it holds besides.
    pub note: Option<String>,
    /// Lab 13's table: the wait-for graph's cycle when there is one now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Vec<Link>>,
}

impl Decoded {
    fn note(n: impl Into<String>) -> Self {
        Decoded {
            note: Some(n.into()),
            ..Decoded::default()
        }
    }
}

/// Decodes a region's payload by its header's type tag.
pub fn decode(name: &ShmName, h: &HeaderInfo) -> Decoded {
    if h.version != VERSION {
        return Decoded::note(format!(
            "header version {} is not this build's ({VERSION}): payload not decoded",
            h.version
        ));
    }
    if h.init_state() != Some(InitState::Ready) {
        return Decoded::note(
            "not ready: the payload may be half-initialised, so it is not decoded",
        );
    }
    if h.type_name == LAB3_TYPE {
        return match payload_bytes::<Lab3Payload>(name, h)
            .and_then(|b| Lab3Payload::decode(&b).ok_or_else(|| "too short".into()))
        {
            Ok((counter, pid, steps)) => Decoded {
                counter: Some(counter),
                note: Some(format!(
                    "lab3: last written by pid {pid}, {steps} checkpoint(s) done; no lock"
                )),
                ..Decoded::default()
            },
            Err(why) => Decoded::note(why),
        };
    }
    if h.type_name == PHILOSOPHERS_TYPE {
        return philosophers(name, h);
    }
    if h.type_name == BUFFER_TYPE {
        return buffer(name, h);
    }
    let Some(lock) = h.type_name.strip_prefix("race/") else {
        return Decoded::note(format!(
            "payload {} is not one the tool decodes (it knows race/*, {LAB3_TYPE}, {BUFFER_TYPE} and {PHILOSOPHERS_TYPE})",
            h.type_name
        ));
    };
    use shm_futex::{FutexLock, SpinLock};
    use shm_pthread::{PlainMutex, RobustMutex};
    use shm_sem::{NamedSemaphore, UnnamedSemaphore};
    match lock {
        "nolock" => race::<NoLock>(name, h, |_, _| Vec::new()),
        FutexLock::NAME => race::<ByLock<FutexLock>>(name, h, |st, _| {
            let s = st.lock.0.raw();
            vec![owner_word(
                FutexLock::NAME,
                s.holder(),
                Waiters::Flag {
                    any: s.has_waiters(),
                },
            )]
        }),
        SpinLock::NAME => race::<ByLock<SpinLock>>(name, h, |st, _| {
            let mut r = owner_word(SpinLock::NAME, st.lock.0.raw().holder(), Waiters::No);
            r.notes.push(
                "a spin lock's waiters only re-read the word: it does not record them".into(),
            );
            vec![r]
        }),
        RobustMutex::NAME => race::<ByLock<RobustMutex>>(name, h, |st, bytes| {
            let owner = RobustMutex.last_holder(st.lock.0.raw());
            vec![pthread(
                RobustMutex::NAME,
                true,
                owner,
                word_at::<ByLock<RobustMutex>>(bytes),
            )]
        }),
        PlainMutex::NAME => race::<ByLock<PlainMutex>>(name, h, |st, bytes| {
            let owner = PlainMutex.last_holder(st.lock.0.raw());
            vec![pthread(
                PlainMutex::NAME,
                false,
                owner,
                word_at::<ByLock<PlainMutex>>(bytes),
            )]
        }),
        NamedSemaphore::NAME => {
            race::<ByLock<NamedSemaphore>>(name, h, |st, _| vec![named_sem(st.lock.0.raw())])
        }
        UnnamedSemaphore::NAME => race::<ByLock<UnnamedSemaphore>>(name, h, |st, bytes| {
            let s = st.lock.0.raw();
            let sem_at = std::mem::offset_of!(RaceShared<ByLock<UnnamedSemaphore>>, lock);
            let waiters = bytes.get(sem_at..sem_at + 8).and_then(glibc_sem_waiters);
            vec![semaphore(
                UnnamedSemaphore::NAME,
                s.sem().value().ok(),
                waiters,
                s.last_holder(),
            )]
        }),
        other => Decoded::note(format!(
            "race region with lock {other:?}, which this build does not know"
        )),
    }
}

/// The payload's bytes, if the header's layout is `T`'s.
fn payload_bytes<T: Shared>(name: &ShmName, h: &HeaderInfo) -> Result<Vec<u8>, String> {
    let size = std::mem::size_of::<T>();
    if h.payload_size != size as u64
        || h.payload_align != std::mem::align_of::<T>() as u32
        || h.payload_offset as usize != Region::<T>::payload_offset()
    {
        return Err(format!(
            "its layout ({} bytes, align {}) is not this build's {} ({size} bytes): payload not decoded",
            h.payload_size, h.payload_align, h.type_name
        ));
    }
    let bytes =
        super::read_at(name, u64::from(h.payload_offset), size).map_err(|e| format!("{e:#}"))?;
    if bytes.len() != size {
        return Err(format!(
            "it is shorter than its header says ({} of {size} payload bytes)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The payload read as a `T` (a private copy), with its bytes; or why not.
fn snapshot<T: Shared + Plain>(
    name: &ShmName,
    h: &HeaderInfo,
) -> Result<(Snapshot<T>, Vec<u8>), String> {
    let bytes = payload_bytes::<T>(name, h)?;
    let copy = Snapshot::<T>::from_bytes(&bytes)
        .ok_or_else(|| "payload size changed while reading".to_string())?;
    Ok((copy, bytes))
}

/// A race region: counter, workers, and what `locks` reads from the lock.
fn race<K: RegionLock>(
    name: &ShmName,
    h: &HeaderInfo,
    locks: impl FnOnce(&RaceShared<K>, &[u8]) -> Vec<LockReport>,
) -> Decoded
where
    RaceShared<K>: Plain,
{
    let (st, bytes) = match snapshot::<RaceShared<K>>(name, h) {
        Ok(got) => got,
        Err(why) => return Decoded::note(why),
    };
    let go = st.control.0.go.load(Ordering::Relaxed) != 0;
    let workers = st
        .workers
        .iter()
        .enumerate()
        .filter_map(|(index, w)| {
            let w = &w.0;
            let id = w.id.load(Ordering::Relaxed);
            (id > 0).then(|| WorkerReport {
                index,
                id,
                state: match w.state() {
                    WorkerState::NotStarted => "not-started",
                    WorkerState::Arrived if go => "running",
                    WorkerState::Arrived => "at the start barrier",
                    WorkerState::Done => "done",
                    WorkerState::Failed => "failed",
                },
                done: w.done.load(Ordering::Relaxed),
                liveness: shm::process::liveness(id, 0).as_str(),
            })
        })
        .collect();
    Decoded {
        locks: locks(&st, &bytes),
        counter: Some(st.counter.0.load(Ordering::Relaxed)),
        workers,
        ..Decoded::default()
    }
}

/// Lab 7's bounded buffer: where the ring stands (head, tail, items in
/// it) and its synchronisation: the three semaphores (`sem`), or the futex
/// lock and the fill-count word consumers sleep on (`futex`).
fn buffer(name: &ShmName, h: &HeaderInfo) -> Decoded {
    use crate::fmt::group;
    let (b, bytes) = match snapshot::<Buffer>(name, h) {
        Ok(got) => got,
        Err(why) => return Decoded::note(why),
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (head, tail) = (load(&b.head.0), load(&b.tail.0));
    let sync = b.sync_mode();
    let mut locks = Vec::new();
    let counting = |label: &str, value: Option<i32>, waiters: Waiters, note: &str| {
        let mut r = LockReport::new("sem-unnamed");
        r.name = label.into();
        r.state = "counting";
        r.value = value;
        r.waiters = waiters;
        r.notes.push(note.into());
        r
    };
    let sem_waiters = |off: usize| {
        bytes
            .get(off..off + 8)
            .and_then(glibc_sem_waiters)
            .map_or(Waiters::No, |count| Waiters::Count { count })
    };
    match sync {
        Some(BufferSync::Sem) => {
            use std::mem::offset_of;
            locks.push(counting(
                "empty",
                b.empty.value().ok(),
                sem_waiters(offset_of!(Buffer, empty)),
                "free slots: producers wait on it when it is 0",
            ));
            locks.push(counting(
                "full",
                b.full.value().ok(),
                sem_waiters(offset_of!(Buffer, full)),
                "filled slots: consumers wait on it when it is 0",
            ));
            let off = offset_of!(Buffer, mutex);
            let waiters = bytes.get(off..off + 8).and_then(glibc_sem_waiters);
            let mut m = semaphore("sem-unnamed", b.mutex.value().ok(), waiters, 0);
            m.name = "mutex".into();
            locks.push(m);
        }
        Some(BufferSync::Futex) => {
            let s = b.lock.0.raw();
            let mut l = owner_word(
                shm_futex::FutexLock::NAME,
                s.holder(),
                Waiters::Flag {
                    any: s.has_waiters(),
                },
            );
            l.name = "lock".into();
            locks.push(l);
            let mut c = LockReport::new("futex word");
            c.name = "count".into();
            c.state = "counting";
            c.value = Some(b.count.0.load(Ordering::Relaxed) as i32);
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
    let note = format!(
        "lab7: sync {}, a ring of {} slot(s); head {}, tail {} ({} item(s) in the ring); {} of {} item(s) claimed by consumers; producers {}; torn items so far {}",
        sync.map_or("unknown", BufferSync::name),
        group(u64::from(b.capacity.load(Ordering::Relaxed))),
        group(head),
        group(tail),
        group(head.saturating_sub(tail)),
        group(load(&b.claimed.0)),
        group(load(&b.total)),
        if b.producers_done.0.load(Ordering::Relaxed) {
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

/// Lab 13's table: every fork as a futex lock (holder, waiters flag), who
/// holds it and who waits for it by philosopher, and the wait-for graph's
/// cycle if it has one now.
fn philosophers(name: &ShmName, h: &HeaderInfo) -> Decoded {
    let (t, _) = match snapshot::<Table>(name, h) {
        Ok(got) => got,
        Err(why) => return Decoded::note(why),
    };
    let n = t.seated();
    let locks = (0..n)
        .map(|f| {
            let s = t.forks[f as usize].0.raw();
            let mut r = owner_word(
                shm_futex::FutexLock::NAME,
                s.holder(),
                Waiters::Flag {
                    any: s.has_waiters(),
                },
            );
            r.name = format!("fork {f}");
            if let Some(p) = t.fork_holder(f) {
                r.notes.push(format!("held by philosopher {p}"));
            }
            let waiting: Vec<String> = (0..n)
                .filter(|&p| t.waits_for(p) == Some(f))
                .map(|p| p.to_string())
                .collect();
            if !waiting.is_empty() {
                r.notes
                    .push(format!("waited for by philosopher {}", waiting.join(", ")));
            }
            r
        })
        .collect();
    let meals: Vec<String> = (0..n)
        .map(|p| crate::fmt::group(t.seats[p as usize].0.meals.load(Ordering::Relaxed)))
        .collect();
    let mut note = format!("lab13: {n} philosophers; meals {}", meals.join(", "));
    let cycle = t.find_cycle();
    match &cycle {
        Some(cycle) => {
            let walk: Vec<String> = cycle
                .iter()
                .map(|l| {
                    format!(
                        "philosopher {} (tid {}) holds fork {}, waits for fork {}",
                        l.philosopher, l.tid, l.holds, l.waits_for
                    )
                })
                .collect();
            note.push_str(&format!(
                "; the wait-for graph has a cycle: {} (a deadlock, if it is still there a moment later)",
                walk.join(" -> ")
            ));
        }
        None => note.push_str("; no cycle in the wait-for graph"),
    }
    if t.stop.load(Ordering::Relaxed) != 0 {
        note.push_str("; the philosophers were told to stop");
    }
    Decoded {
        locks,
        note: Some(note),
        cycle,
        ..Decoded::default()
    }
}

/// A futex or spin lock: the holder's tid is the word.
fn owner_word(kind: &'static str, holder: Option<i32>, waiters: Waiters) -> LockReport {
    let mut r = LockReport::new(kind);
    r.waiters = waiters;
    if let Some(tid) = holder {
        r.state = "held";
        let h = Holder::of(tid);
        if h.dead {
            r.notes.push(format!(
                "its holder tid {tid} is {}: the next lock() takes it over and reports the previous owner died",
                h.liveness
            ));
        }
        r.holder = Some(h);
    }
    r
}

/// The first 4 bytes of the region's lock state (glibc's `__data.__lock`
/// for a pthread mutex).
fn word_at<K: RegionLock>(payload: &[u8]) -> Option<u32> {
    let at = std::mem::offset_of!(RaceShared<K>, lock);
    Some(u32::from_le_bytes(
        payload.get(at..at + 4)?.try_into().ok()?,
    ))
}

/// glibc's `PTHREAD_MUTEX_INCONSISTENT`: the owner field of a robust mutex
/// whose new owner got `EOWNERDEAD` and has not called
/// `pthread_mutex_consistent` yet.
const PTHREAD_MUTEX_INCONSISTENT: i32 = i32::MAX;
/// glibc's `PTHREAD_MUTEX_NOTRECOVERABLE`.
const PTHREAD_MUTEX_NOTRECOVERABLE: i32 = i32::MAX - 1;
/// The kernel's mark on a robust futex whose owner died.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;

/// A pthread mutex: glibc's owner field (through the lock's
/// `last_holder`), and its lock word for the waiters flag. A robust mutex's
/// word is `tid | FUTEX_WAITERS | FUTEX_OWNER_DIED`; a plain one's is 0
/// (free), 1 (held) or 2 (held, and someone may sleep).
fn pthread(kind: &'static str, robust: bool, owner: Option<i32>, word: Option<u32>) -> LockReport {
    let mut r = LockReport::new(kind);
    r.waiters = match word {
        Some(w) if robust => Waiters::Flag {
            any: w & libc::FUTEX_WAITERS != 0,
        },
        Some(w) => Waiters::Flag { any: w == 2 },
        None => Waiters::No,
    };
    let owner_died = robust && word.is_some_and(|w| w & FUTEX_OWNER_DIED != 0);
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
            let h = Holder::of(tid);
            if owner_died {
                r.state = "owner died";
                r.notes.push(format!(
                    "the kernel marked it FUTEX_OWNER_DIED when tid {tid} died holding it: the next pthread_mutex_lock gets EOWNERDEAD and recovers it"
                ));
            } else {
                r.state = "held";
                if h.dead {
                    r.notes.push(if robust {
                        format!("its holder tid {tid} is {}: the kernel marks it when the holder's exit is complete, then the next locker recovers it", h.liveness)
                    } else {
                        format!("its holder tid {tid} is {}: a plain (non-robust) mutex stays held by a dead owner forever (wedged)", h.liveness)
                    });
                }
            }
            r.holder = Some(h);
        }
        None => {}
    }
    r
}

/// glibc's sleeper count in a `sem_t` on a 64-bit target: the `data` word
/// holds the value in its low 32 bits and `nwaiters` in its high 32.
fn glibc_sem_waiters(first8: &[u8]) -> Option<u32> {
    if cfg!(target_pointer_width = "64") {
        let data = u64::from_le_bytes(first8.try_into().ok()?);
        Some((data >> 32) as u32)
    } else {
        None
    }
}

/// A semaphore used as a lock: value, waiters, last holder.
fn semaphore(
    kind: &'static str,
    value: Option<i32>,
    waiters: Option<u32>,
    last: i32,
) -> LockReport {
    let mut r = LockReport::new(kind);
    r.value = value;
    r.waiters = waiters.map_or(Waiters::No, |count| Waiters::Count { count });
    let last = (last > 0).then(|| Holder::of(last));
    match value {
        Some(0) => {
            r.state = "held";
            r.holder = last.clone();
            r.notes.push(
                "a semaphore has no owner: the holder shown is the last process that took it"
                    .into(),
            );
            if let Some(h) = last.as_ref().filter(|h| h.dead) {
                r.notes.push(format!(
                    "its last holder pid {} is {}: nothing will post it, so it is wedged",
                    h.id, h.liveness
                ));
            }
        }
        Some(_) => r.state = "free",
        None => r.state = "unknown",
    }
    r.last_taken_by = last;
    r
}

/// A named semaphore: its name from the region, its value and waiters from
/// its own file, `/dev/shm/sem.NAME` (read, not opened with `sem_open`,
/// which would map it).
fn named_sem(st: &shm_sem::NamedState) -> LockReport {
    let name = st.name();
    let path = shm_sem::sem_path(&name);
    let bytes = std::fs::read(&path).ok().and_then(|mut b| {
        b.truncate(std::mem::size_of::<shm_sem::SemCell>());
        (b.len() == std::mem::size_of::<shm_sem::SemCell>()).then_some(b)
    });
    let value = bytes
        .as_deref()
        .and_then(Snapshot::<shm_sem::SemCell>::from_bytes)
        .and_then(|s| s.value().ok());
    let waiters = bytes.as_deref().and_then(|b| glibc_sem_waiters(&b[..8]));
    let mut r = semaphore(
        shm_sem::NamedSemaphore::NAME,
        value,
        waiters,
        st.last_holder(),
    );
    if bytes.is_none() {
        r.notes
            .push(format!("its file {} cannot be read", path.display()));
    } else if r.holder.as_ref().is_some_and(|h| h.dead) {
        r.notes.push(format!(
            "repair it, once sure: shmlab repair-sem {name} --holder {}",
            st.last_holder()
        ));
    }
    r.semaphore = Some(name);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sem_waiters_are_the_high_word() {
        let data: u64 = (3 << 32) | 1;
        assert_eq!(glibc_sem_waiters(&data.to_le_bytes()), Some(3));
    }

    #[test]
    fn pthread_words() {
        let me = shm::gettid();
        let r = pthread(
            "pthread",
            true,
            Some(me),
            Some(me as u32 | libc::FUTEX_WAITERS),
        );
        assert_eq!((r.state, r.waiters), ("held", Waiters::Flag { any: true }));
        assert_eq!(r.holder.as_ref().unwrap().id, me);
        let r = pthread("pthread-plain", false, None, Some(0));
        assert_eq!((r.state, r.waiters), ("free", Waiters::Flag { any: false }));
        let r = pthread("pthread", true, Some(me), Some(FUTEX_OWNER_DIED));
        assert_eq!(r.state, "owner died");
    }
}
