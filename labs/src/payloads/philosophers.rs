//! Lab 13's table (the dining philosophers), shared by the lab that seats
//! them and by `shmlab ps`, which reads it from a copy: the forks (futex
//! locks whose words hold their holders' tids), each philosopher's seat
//! (its tid, the fork it waits for, its meals), and the wait-for graph the
//! two of them build from those; and its decoder for `shmlab ps`
//! (its `DecodePayload` impl).

use crate::decoded::{Copied, DecodePayload, Decoded, LockReport, Lookups};
use shm::lock::{Lock, LockState, RawLock};
use shm::{CachePadded, InitCtx, Shared};
use shm_futex::FutexLock;
use shm_monitor::{FutexBarrier, PthreadBarrier};
use shm_sem::SemCell;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Most philosophers a table seats.
pub const MAX_PHILOSOPHERS: u32 = 16;

/// The type tag in lab 13's region header.
pub const PHILOSOPHERS_TYPE: &str = "lab13/philosophers";

/// One philosopher's line in the region.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Seat {
    /// Its kernel thread id (its pid, for a process), the id the forks'
    /// words hold.
    pub tid: AtomicI32,
    /// The fork it is waiting for, or -1.
    pub waiting_for: AtomicI32,
    /// Meals eaten.
    pub meals: AtomicU64,
    /// Second forks it failed to get and put the first back (trylock).
    pub retries: AtomicU64,
}
shm::any_bits!(Seat {
    tid,
    waiting_for,
    meals,
    retries
});

/// The table: forks, seats, the arbiter and the barriers.
#[repr(C)]
pub struct Table {
    /// Fork `f` is a futex lock; philosopher `i` needs forks `i` and
    /// `(i + 1) % n`.
    pub forks: [CachePadded<LockState<FutexLock>>; MAX_PHILOSOPHERS as usize],
    /// One seat per philosopher.
    pub seats: [CachePadded<Seat>; MAX_PHILOSOPHERS as usize],
    /// `--order waiter`: at most n − 1 seated.
    pub arbiter: SemCell,
    /// The barrier between rounds (shmlab's).
    pub barrier: CachePadded<FutexBarrier>,
    /// The barrier between rounds (glibc's).
    pub pthread_barrier: CachePadded<PthreadBarrier>,
    /// Set when the philosophers must stop (a deadlock was found).
    pub stop: AtomicU32,
    /// Philosophers at the table (`n`): forks and seats past it are unused.
    pub philosophers: AtomicU32,
}
shm::any_bits!(Table {
    forks,
    seats,
    arbiter,
    barrier,
    pthread_barrier,
    stop,
    philosophers,
});

// SAFETY: repr(C); futex lock states, atomics, a process-shared semaphore
// and barriers, all valid zeroed and interior-mutable; `init_in_place`
// initialises every lock state, the semaphore and both barriers.
unsafe impl Shared for Table {
    type Init = u32;

    fn type_name() -> String {
        PHILOSOPHERS_TYPE.into()
    }

    unsafe fn init_in_place(this: *mut Self, n: u32, ctx: &InitCtx<'_>) -> Result<(), String> {
        if !(2..=MAX_PHILOSOPHERS).contains(&n) {
            return Err(format!("a table seats 2 to {MAX_PHILOSOPHERS}, not {n}"));
        }
        // SAFETY: `this` is zeroed, aligned and ours alone (trait contract);
        // fields are reached through raw pointers before any reference.
        unsafe {
            for f in 0..MAX_PHILOSOPHERS as usize {
                LockState::init(&raw mut (*this).forks[f].0, ctx).map_err(|e| e.to_string())?;
                (*this).seats[f].0.waiting_for = AtomicI32::new(-1);
            }
            SemCell::init(&raw mut (*this).arbiter, n - 1).map_err(|e| e.to_string())?;
            FutexBarrier::init(&raw mut (*this).barrier.0, n);
            PthreadBarrier::init(&raw mut (*this).pthread_barrier.0, n)
                .map_err(|e| e.to_string())?;
            (*this).philosophers = AtomicU32::new(n);
        }
        Ok(())
    }
}

/// One link of a deadlock cycle (the decoders' vocabulary).
pub use crate::decoded::Link;

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("philosophers", &self.seated())
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Philosophers at the table, clamped to what it can seat (a copy may
    /// hold anything).
    pub fn seated(&self) -> u32 {
        self.philosophers
            .load(Ordering::Acquire)
            .min(MAX_PHILOSOPHERS)
    }

    /// The tid in fork `f`'s word: who holds it now, if anyone.
    pub fn fork_holder_tid(&self, f: u32) -> Option<i32> {
        let lock = Lock::<FutexLock>::attach(&self.forks[f as usize].0).ok()?;
        lock.raw().last_holder(lock.state())
    }

    /// The philosopher holding fork `f`, if one of this table's does.
    pub fn fork_holder(&self, f: u32) -> Option<u32> {
        let tid = self.fork_holder_tid(f)?;
        (0..self.seated()).find(|&p| self.seats[p as usize].0.tid.load(Ordering::Acquire) == tid)
    }

    /// The fork philosopher `p` waits for, if any.
    pub fn waits_for(&self, p: u32) -> Option<u32> {
        let f = self.seats[p as usize].0.waiting_for.load(Ordering::Acquire);
        u32::try_from(f).ok().filter(|&f| f < self.seated())
    }

    /// A cycle in the wait-for graph (philosopher p → the philosopher
    /// holding the fork p waits for), if there is one. With one outgoing
    /// edge per waiting philosopher, a cycle is found by walking from each.
    pub fn find_cycle(&self) -> Option<Vec<Link>> {
        let n = self.seated();
        // Edge p -> (fork it waits for, who holds it).
        let edge = |p: u32| -> Option<(u32, u32)> {
            let f = self.waits_for(p)?;
            Some((f, self.fork_holder(f)?))
        };
        for start in 0..n {
            let mut path: Vec<u32> = Vec::new();
            let mut p = start;
            while let Some((_, q)) = edge(p) {
                if let Some(at) = path.iter().position(|&x| x == p) {
                    return Some(
                        path[at..]
                            .iter()
                            .map(|&p| {
                                let (f, q) = edge(p).unwrap_or((u32::MAX, u32::MAX));
                                // What p holds that the previous one waits for.
                                let holds = (0..n)
                                    .find(|&g| g != f && self.fork_holder(g) == Some(p))
                                    .unwrap_or(u32::MAX);
                                Link {
                                    philosopher: p,
                                    tid: self.seats[p as usize].0.tid.load(Ordering::Acquire),
                                    holds,
                                    waits_for: f,
                                    held_by: q,
                                }
                            })
                            .collect(),
                    );
                }
                path.push(p);
                p = q;
                if path.len() > n as usize {
                    break;
                }
            }
        }
        None
    }
}

/// What `shmlab ps` reads from a copy of the table: every fork as a futex
/// lock (holder, waiters flag), who holds it and who waits for it by
/// philosopher, and the wait-for graph's cycle if it has one now.
impl DecodePayload for Table {
    fn report(t: &Copied<Self>, who: &Lookups) -> Decoded {
        let n = t.seated();
        let locks = (0..n)
            .map(|f| {
                let state = t.forks[f as usize].0.raw();
                let mut r =
                    LockReport::of::<FutexLock>(format!("fork {f}"), state, t.bytes_of(state), who);
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
}
