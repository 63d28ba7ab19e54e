//! The words the tool decodes a region into ([`Decoded`]: its locks as
//! [`LockReport`]s, its workers, a counter, notes), and the trait a payload
//! type implements to be decoded ([`DecodePayload`]). Neither the tool nor
//! the payloads own this vocabulary: the payloads' decoders (beside their
//! types, in [`crate::payloads`]) write it, `shmlab ps` and `watch`
//! ([`crate::tool`]) read it.

use crate::snapshot::Snapshot;
use serde::Serialize;
use shm::Shared;
use shm::lock::{Ids, InspectLock, LockInfo};
use shm::process::Liveness;
use std::cell::RefCell;

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
    /// The thread or process `id`, whose liveness is `how`, as `/proc`
    /// shows it now.
    pub(crate) fn with(id: i32, how: Liveness) -> Self {
        let info = shm::users::process_info(id);
        Holder {
            id,
            pid: info.as_ref().map(|i| i.tgid),
            comm: info.map(|i| i.comm),
            liveness: how.as_str(),
            dead: how.is_dead(),
        }
    }

    /// `tid 4244 (pid 4242 lab4-race) alive`, `pid 17 gone` (the command
    /// escaped: a process names itself).
    pub fn words(&self, what: &str) -> String {
        let comm = self.comm.as_deref().map(crate::fmt::escape_str);
        let who = match (&self.pid, comm) {
            (Some(pid), Some(comm)) if *pid == self.id => format!(" ({comm})"),
            (Some(pid), Some(comm)) => format!(" (a thread of pid {pid} {comm})"),
            _ => String::new(),
        };
        format!("{what} {}{who} {}", self.id, self.liveness)
    }
}

/// The liveness of the threads and processes one decode names, asked of
/// `/proc` once per id: a lock's notes (from its [`InspectLock`] hook) and
/// the [`Holder`] the report shows then say the same.
#[derive(Debug, Default)]
pub(crate) struct Lookups(RefCell<Vec<(i32, Liveness)>>);

impl Lookups {
    /// Whether `id` is alive ([`shm::process::liveness`], remembered).
    pub(crate) fn liveness(&self, id: i32) -> Liveness {
        if let Some(&(_, how)) = self.0.borrow().iter().find(|(seen, _)| *seen == id) {
            return how;
        }
        let how = shm::process::liveness(id, 0);
        self.0.borrow_mut().push((id, how));
        how
    }

    /// The [`Holder`] `id`.
    pub(crate) fn holder(&self, id: i32) -> Holder {
        Holder::with(id, self.liveness(id))
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
    /// Named semaphores: the name the region stores (`/shmlab-…`), exact
    /// when it is UTF-8, else [`crate::fmt::escape`]d (and a note says it
    /// is invalid).
    pub semaphore: Option<String>,
    /// What else a reader should know (a dead holder, how to repair, ...).
    pub notes: Vec<String>,
    /// What the ids it names are (`tid`, `pid` in [`words`](Self::words)).
    #[serde(skip)]
    pub ids: Ids,
    /// What a set waiters flag means, in words (from the lock).
    #[serde(skip)]
    pub flag_means: &'static str,
}

impl LockReport {
    /// A free lock of kind `kind` that names nobody and records no
    /// waiters (for what is not a lock of the registry: lab 7's counting
    /// semaphores and fill-count word).
    pub(crate) fn new(kind: &'static str) -> Self {
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
            ids: Ids::Threads,
            flag_means: "",
        }
    }

    /// The lock `L` whose state (a private copy) is `state`, from the
    /// `bytes` it was copied from: what its [`InspectLock`] hook says.
    pub(crate) fn of<L: InspectLock>(
        name: impl Into<String>,
        state: &L::State,
        bytes: &[u8],
        who: &Lookups,
    ) -> Self {
        let info = L::inspect(state, bytes, &|id| who.liveness(id));
        Self::from_info(name, L::NAME, info, who)
    }

    /// A lock of kind `kind` as `info` describes it.
    pub(crate) fn from_info(
        name: impl Into<String>,
        kind: &'static str,
        info: LockInfo,
        who: &Lookups,
    ) -> Self {
        use shm::lock::Waiters as Recorded;
        let (waiters, flag_means) = match info.waiters {
            Recorded::Count(count) => (Waiters::Count { count }, ""),
            Recorded::Flag { any, means } => (Waiters::Flag { any }, means),
            Recorded::NotRecorded => (Waiters::No, ""),
        };
        LockReport {
            name: name.into(),
            kind,
            state: info.state,
            holder: info.holder.map(|id| who.holder(id)),
            last_taken_by: info.last_taken_by.map(|id| who.holder(id)),
            waiters,
            value: info.value,
            semaphore: info.object.map(|stored| {
                String::from_utf8(stored).unwrap_or_else(|e| crate::fmt::escape(e.as_bytes()))
            }),
            notes: info.notes,
            ids: info.ids,
            flag_means,
        }
    }

    /// One line: `futex: held by tid 12 (lab4-race) alive; waiters: yes (...)`.
    pub fn words(&self) -> String {
        let mut s = format!("{}: {}", self.kind, self.state);
        if let Some(v) = self.value {
            s.push_str(&format!(" (value {v})"));
        }
        if let Some(h) = &self.holder {
            s.push_str(&format!(" by {}", h.words(self.ids.word())));
        } else if let Some(h) = &self.last_taken_by {
            s.push_str(&format!(", last taken by {}", h.words(self.ids.word())));
        }
        s.push_str(&format!("; {}", self.waiters.words(self.flag_means)));
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
    pub(crate) fn note(n: impl Into<String>) -> Self {
        Decoded {
            note: Some(n.into()),
            ..Decoded::default()
        }
    }
}

/// A region payload the tool decodes (besides the race's): lab 3's, lab
/// 7's buffer and lab 13's table, each implemented beside its type in
/// [`crate::payloads`], and listed in [`decode_with`].
pub(crate) trait DecodePayload: Shared + shm::AnyBits + Sized {
    /// What a private copy of the payload says.
    fn report(copy: &Copied<Self>, who: &Lookups) -> Decoded;
}

/// A private copy of a payload (a [`Snapshot`]) and the bytes it was
/// copied from.
#[derive(Debug)]
pub(crate) struct Copied<T: shm::AnyBits> {
    pub(crate) copy: Snapshot<T>,
    pub(crate) bytes: Vec<u8>,
}

impl<T: shm::AnyBits> Copied<T> {
    /// The bytes the payload was copied from.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes a part of the copy (a lock's state in it) was copied
    /// from: the ones at its offset in the payload, `size_of::<S>()` of
    /// them; none if `part` does not lie in the copy.
    pub(crate) fn bytes_of<S>(&self, part: &S) -> &[u8] {
        let base = std::ptr::from_ref::<T>(&self.copy) as usize;
        let at = std::ptr::from_ref::<S>(part) as usize;
        at.checked_sub(base)
            .and_then(|off| {
                self.bytes
                    .get(off..off.checked_add(std::mem::size_of::<S>())?)
            })
            .unwrap_or(&[])
    }
}

impl<T: shm::AnyBits> std::ops::Deref for Copied<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.copy
    }
}

/// One link of a deadlock (wait-for) cycle: lab 13's philosophers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// The philosopher.
    pub philosopher: u32,
    /// Its pid (processes) or tid (threads).
    pub tid: i32,
    /// The fork it holds.
    pub holds: u32,
    /// The fork it waits for.
    pub waits_for: u32,
    /// Who holds that fork.
    pub held_by: u32,
}
