//! The lock registry: every sync mode, and how each one runs, in one list.
//!
//! [`SyncMode`] is generated from the single `sync_modes!` list below. Each
//! entry names its variant and *what it is*: no synchronisation, one
//! `fetch_add`, a lock whose state lives in the region (a [`RawLockTimed`]
//! type), or a lock in one process's memory ([`LocalLock`], threads only).
//! Code that must do something per mode — run a race trial, run the crash
//! experiment, benchmark a lock — implements [`ModeVisitor`] once, generic
//! over the lock type, and calls [`SyncMode::visit`]; names, the list of
//! modes, which ones cross processes and why not all come from the same
//! list and from the locks themselves ([`RawLock::NAME`],
//! [`LocalLock::NAME`]). Adding a lock means adding one line here: the
//! lock itself, beside it in its own crate, implements [`RawLockTimed`]
//! and [`InspectLock`] (what its state says: holder, waiters), which
//! [`ModeVisitor::region_lock`] requires, so a line naming a lock that
//! cannot describe itself does not compile. The race, the crash
//! experiment, the benches and `shmlab ps` — which decodes a
//! `race/<lock>` region by visiting this list — take the new mode from
//! here with no other change; the tool's tests walk [`SyncMode::ALL`] to
//! check that the region of every mode is decoded and its lock named.

use shm::lock::{InspectLock, RawLock, RawLockTimed};
use std::fmt;

/// Code that does something for one sync mode, written once, generic over
/// the lock: [`SyncMode::visit`] calls the method that matches the mode.
pub trait ModeVisitor {
    /// What the visit produces.
    type Output;
    /// `none`: the bare `counter++`, a separate load and store.
    fn unsynchronised(self) -> Self::Output;
    /// `atomic`: one atomic read-modify-write (`fetch_add`).
    fn fetch_add(self) -> Self::Output;
    /// A lock whose state lives inside the shared region: works across
    /// processes. It can describe itself from a copy of its state
    /// ([`InspectLock`]): how `shmlab ps` decodes its region.
    fn region_lock<L: RawLockTimed + InspectLock + 'static>(self) -> Self::Output;
    /// A lock in one process's memory: threads only.
    fn local_lock<M: LocalLock>(self) -> Self::Output;
}

/// A lock that lives in one process's memory (`std`, `parking_lot`): the
/// thread-only baselines. They cannot run across processes, and say why.
pub trait LocalLock: Default + Send + Sync + 'static {
    /// The sync mode's name.
    const NAME: &'static str;
    /// Why it cannot work between processes (shown when `--procs` asks).
    const WHY_NOT_CROSS_PROCESS: &'static str;
    /// Runs `f` holding the lock.
    fn with<R>(&self, f: impl FnOnce() -> R) -> R;
}

/// `std::sync::Mutex<()>` as a [`LocalLock`].
#[derive(Debug, Default)]
pub struct StdMutex(std::sync::Mutex<()>);

impl LocalLock for StdMutex {
    const NAME: &'static str = "std";
    const WHY_NOT_CROSS_PROCESS: &'static str = "std::sync::Mutex lives in one process's memory and parks waiters with private futexes (FUTEX_PRIVATE_FLAG), so another process can neither see it nor be woken by it; use --threads";
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }
}

/// `parking_lot::Mutex<()>` as a [`LocalLock`].
#[derive(Debug, Default)]
pub struct ParkingLotMutex(parking_lot::Mutex<()>);

impl LocalLock for ParkingLotMutex {
    const NAME: &'static str = "parking_lot";
    const WHY_NOT_CROSS_PROCESS: &'static str = "parking_lot::Mutex keeps its waiters in a per-process parking table (and its word in this process's memory), so other processes cannot queue on it; use --threads";
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.0.lock();
        f()
    }
}

/// Generates [`SyncMode`], its `ALL` list and [`SyncMode::visit`] from one
/// list of `Variant => what` lines.
macro_rules! sync_modes {
    ($( $(#[$doc:meta])* $variant:ident => $how:ident $(($ty:ty))? ),* $(,)?) => {
        /// How each increment of the shared counter is protected.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum SyncMode {
            $( $(#[$doc])* $variant, )*
        }

        impl SyncMode {
            /// Every mode, in the order tables show them.
            pub const ALL: [SyncMode; [$(stringify!($variant)),*].len()] =
                [$(SyncMode::$variant),*];

            /// Calls the visitor's method for this mode, with the mode's
            /// lock type: the one dispatch over the modes.
            pub fn visit<V: ModeVisitor>(self, v: V) -> V::Output {
                match self {
                    $( SyncMode::$variant => sync_modes!(@call v $how $($ty)?), )*
                }
            }
        }
    };
    (@call $v:ident unsynchronised) => { $v.unsynchronised() };
    (@call $v:ident fetch_add) => { $v.fetch_add() };
    (@call $v:ident region_lock $ty:ty) => { $v.region_lock::<$ty>() };
    (@call $v:ident local_lock $ty:ty) => { $v.local_lock::<$ty>() };
}

sync_modes! {
    /// No synchronisation: C's `counter++` as the hardware runs it, a
    /// separate load and store. Updates get lost.
    None => unsynchronised,
    /// One atomic read-modify-write (`lock xadd` on x86_64): the floor.
    Atomic => fetch_add,
    /// Test-and-test-and-set spin lock with backoff, in the region.
    Spin => region_lock(shm_futex::SpinLock),
    /// Test-and-test-and-set spin lock that never yields: collapses when oversubscribed.
    SpinPure => region_lock(shm_futex::PureSpinLock),
    /// Three-state futex lock (shared futex operations), in the region.
    Futex => region_lock(shm_futex::FutexLock),
    /// glibc's `pthread_mutex_t`, process-shared and robust, in the region.
    Pthread => region_lock(shm_pthread::RobustMutex),
    /// glibc's `pthread_mutex_t`, process-shared but not robust: what
    /// robustness costs, and a lock a dead holder wedges.
    PthreadPlain => region_lock(shm_pthread::PlainMutex),
    /// A POSIX named semaphore (`sem_open`) whose name the region stores.
    Sem => region_lock(shm_sem::NamedSemaphore),
    /// An unnamed process-shared semaphore (`sem_init(pshared = 1)`) in the region.
    SemUnnamed => region_lock(shm_sem::UnnamedSemaphore),
    /// `std::sync::Mutex` in the coordinator's memory: threads only.
    Std => local_lock(StdMutex),
    /// `parking_lot::Mutex` in the coordinator's memory: threads only.
    ParkingLot => local_lock(ParkingLotMutex),
}

/// What kind of protection a mode is (a visitor's answer, for callers that
/// only need to know).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Unsynchronised,
    FetchAdd,
    RegionLock,
    LocalLock(&'static str),
}

struct Describe;
impl ModeVisitor for Describe {
    type Output = (&'static str, Class);
    fn unsynchronised(self) -> Self::Output {
        ("none", Class::Unsynchronised)
    }
    fn fetch_add(self) -> Self::Output {
        ("atomic", Class::FetchAdd)
    }
    fn region_lock<L: RawLockTimed + InspectLock + 'static>(self) -> Self::Output {
        (<L as RawLock>::NAME, Class::RegionLock)
    }
    fn local_lock<M: LocalLock>(self) -> Self::Output {
        (M::NAME, Class::LocalLock(M::WHY_NOT_CROSS_PROCESS))
    }
}

impl SyncMode {
    /// The name used on the command line and in JSON: the lock's own
    /// [`RawLock::NAME`] or [`LocalLock::NAME`].
    pub fn name(self) -> &'static str {
        self.visit(Describe).0
    }

    fn class(self) -> Class {
        self.visit(Describe).1
    }

    /// The longest mode name: the width of a table's `sync` column.
    pub fn name_width() -> usize {
        Self::ALL.iter().map(|m| m.name().len()).max().unwrap_or(0)
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether the mode works between separate processes.
    pub fn cross_process(self) -> bool {
        self.why_not_cross_process().is_none()
    }

    /// Why a thread-only mode cannot work across processes.
    pub fn why_not_cross_process(self) -> Option<&'static str> {
        match self.class() {
            Class::LocalLock(why) => Some(why),
            _ => None,
        }
    }

    /// Whether the mode promises no lost updates.
    pub fn synchronised(self) -> bool {
        self.class() != Class::Unsynchronised
    }

    /// Whether the mode is a lock whose state lives in the region (what the
    /// crash experiment and the lock benchmarks take).
    pub fn is_region_lock(self) -> bool {
        self.class() == Class::RegionLock
    }

    /// The modes that are region locks, in table order.
    pub fn region_locks() -> impl Iterator<Item = SyncMode> {
        Self::ALL.into_iter().filter(|m| m.is_region_lock())
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for SyncMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for SyncMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SyncMode::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown sync mode {s:?}")))
    }
}

/// Whether workers are processes or threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// Separate processes (fork), each mapping the region by name.
    Procs,
    /// Threads of the coordinator, sharing its mapping.
    Threads,
}

impl fmt::Display for WorkerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkerKind::Procs => "procs",
            WorkerKind::Threads => "threads",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name is unique and round-trips through the command line and
    /// JSON; the names scripts and saved results already use stay what
    /// they were (a mode added to the registry needs no change here).
    #[test]
    fn names_are_unique_and_round_trip() {
        let names: std::collections::HashSet<&str> =
            SyncMode::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), SyncMode::ALL.len(), "a name is used twice");
        for (m, name) in [
            (SyncMode::None, "none"),
            (SyncMode::Atomic, "atomic"),
            (SyncMode::Spin, "spin"),
            (SyncMode::SpinPure, "spin-pure"),
            (SyncMode::Futex, "futex"),
            (SyncMode::Pthread, "pthread"),
            (SyncMode::PthreadPlain, "pthread-plain"),
            (SyncMode::Sem, "sem"),
            (SyncMode::SemUnnamed, "sem-unnamed"),
            (SyncMode::Std, "std"),
            (SyncMode::ParkingLot, "parking_lot"),
        ] {
            assert_eq!(m.name(), name);
        }
        for m in SyncMode::ALL {
            assert_eq!(SyncMode::parse(m.name()), Some(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<SyncMode>(&json).unwrap(), m);
        }
        assert!(serde_json::from_str::<SyncMode>("\"mutex\"").is_err());
    }

    #[test]
    fn classes() {
        let thread_only: Vec<SyncMode> = SyncMode::ALL
            .into_iter()
            .filter(|m| !m.cross_process())
            .collect();
        assert_eq!(thread_only, [SyncMode::Std, SyncMode::ParkingLot]);
        assert_eq!(
            SyncMode::region_locks().count(),
            SyncMode::ALL.len() - 4,
            "every mode but none, atomic, std and parking_lot is a region lock"
        );
        assert!(!SyncMode::None.synchronised());
        assert!(SyncMode::PthreadPlain.is_region_lock());
    }
}

#[cfg(test)]
mod spin_pure_tests {
    use super::*;
    use crate::{Config, run_trial};

    /// The pure spin lock is exact with as many workers as CPUs (at most 2
    /// here), processes and threads; more would be the collapse, which the
    /// benches measure and tests do not wait for.
    #[test]
    fn spin_pure_is_a_cross_process_region_lock_and_exact() {
        let m = SyncMode::parse("spin-pure").unwrap();
        assert_eq!(m, SyncMode::SpinPure);
        assert!(m.is_region_lock() && m.cross_process() && m.synchronised());
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(2) as u32;
        for kind in [WorkerKind::Procs, WorkerKind::Threads] {
            let cfg = Config {
                sync: m,
                kind,
                workers,
                iters: 50_000,
                hold: 0,
            };
            let r = run_trial(&cfg, 1, &mut |_, _| {}).unwrap();
            assert_eq!(r.actual, r.expected, "{kind}: lost updates");
            assert_eq!(r.expected, u64::from(workers) * 50_000);
        }
    }
}
