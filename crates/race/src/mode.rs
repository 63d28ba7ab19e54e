//! The sync modes a race can run under.

use std::fmt;

/// How each increment of the shared counter is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// No synchronisation: C's `counter++` as the hardware runs it, a
    /// separate load and store. Updates get lost.
    None,
    /// One atomic read-modify-write (`lock xadd` on x86_64): the floor.
    Atomic,
    /// Test-and-test-and-set spin lock with backoff, in the region.
    Spin,
    /// Three-state futex lock (shared futex operations), in the region.
    Futex,
    /// glibc's `pthread_mutex_t`, process-shared and robust, in the region.
    Pthread,
    /// A POSIX named semaphore (`sem_open`) whose name the region stores.
    Sem,
    /// An unnamed process-shared semaphore (`sem_init(pshared = 1)`) in the region.
    #[serde(rename = "sem-unnamed")]
    SemUnnamed,
    /// `std::sync::Mutex` in the coordinator's memory: threads only.
    Std,
    /// `parking_lot::Mutex` in the coordinator's memory: threads only.
    ParkingLot,
}

impl SyncMode {
    /// Every mode, in the order tables show them.
    pub const ALL: [SyncMode; 9] = [
        SyncMode::None,
        SyncMode::Atomic,
        SyncMode::Spin,
        SyncMode::Futex,
        SyncMode::Pthread,
        SyncMode::Sem,
        SyncMode::SemUnnamed,
        SyncMode::Std,
        SyncMode::ParkingLot,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::None => "none",
            SyncMode::Atomic => "atomic",
            SyncMode::Spin => "spin",
            SyncMode::Futex => "futex",
            SyncMode::Pthread => "pthread",
            SyncMode::Sem => "sem",
            SyncMode::SemUnnamed => "sem-unnamed",
            SyncMode::Std => "std",
            SyncMode::ParkingLot => "parking_lot",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether the mode works between separate processes.
    pub fn cross_process(self) -> bool {
        !matches!(self, SyncMode::Std | SyncMode::ParkingLot)
    }

    /// Why a thread-only mode cannot work across processes.
    pub fn why_not_cross_process(self) -> Option<&'static str> {
        match self {
            SyncMode::Std => Some(
                "std::sync::Mutex lives in one process's memory and parks waiters with private futexes (FUTEX_PRIVATE_FLAG), so another process can neither see it nor be woken by it; use --threads",
            ),
            SyncMode::ParkingLot => Some(
                "parking_lot::Mutex keeps its waiters in a per-process parking table (and its word in this process's memory), so other processes cannot queue on it; use --threads",
            ),
            _ => None,
        }
    }

    /// Whether the mode promises no lost updates.
    pub fn synchronised(self) -> bool {
        self != SyncMode::None
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether workers are processes or threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Separate processes (fork), each mapping the region by name.
    Procs,
    /// Threads of the coordinator, sharing its mapping.
    Threads,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Procs => "procs",
            Kind::Threads => "threads",
        })
    }
}
