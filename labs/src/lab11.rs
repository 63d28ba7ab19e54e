//! `lab11-condvar`: the bounded buffer of `lab7-buffer` again, now guarded
//! by a **monitor** — one mutex and two condition variables, *not-full* and
//! *not-empty* — inside the region, and the two classic condition-variable
//! bugs on purpose.
//!
//! - `--impl pthread`: glibc's process-shared `pthread_mutex_t` and two
//!   process-shared `pthread_cond_t` on `CLOCK_MONOTONIC`;
//! - `--impl futex`: shmlab's own futex mutex and sequence-number futex
//!   condition variables ([`shm_monitor::FutexMonitor`]).
//!
//! The correct buffer: a producer waits `while` the ring is full on
//! not-full, puts, and **broadcasts** not-empty (so more consumers wake than
//! there are items: each re-checks and the losers wait again — counted as
//! "woke to an empty buffer, waited again"); a consumer waits `while` the
//! ring is empty on not-empty, takes, and signals not-full. Items, receipts
//! and checksums are [`crate::items`]'s, so delivery is proved exactly once
//! as in `lab7-buffer`.
//!
//! - `--bug if`: consumers wait with `if` instead of `while`. Woken by the
//!   broadcast with the item already taken by another consumer, a consumer
//!   goes on and takes from an **empty** ring: each such event is counted
//!   (the count is read under the mutex, so it is exact), and its damage
//!   shows in the receipts (a stale item read twice, a blank slot torn, a
//!   later item overwritten and lost).
//! - `--bug one-cv`: one condition variable for both conditions, and
//!   `signal` instead of `broadcast`. A consumer's signal meant for a
//!   producer can wake another consumer, which finds the ring empty and
//!   sleeps again: the wake-up is lost, and soon everybody sleeps. A
//!   watchdog (the parent) sees no progress for `--stall-ms` while every
//!   worker is waiting, reports who waits on what, and stops the run.
//!
//! Every wait is a timed wait in slices; a slice that times out re-checks
//! only whether the run was stopped (or the parent died), not the
//! condition — so a lost wake-up stays lost, as with an untimed wait, but
//! nothing ever hangs.

use crate::fmt::{duration_ns, group};
use crate::items::{self, Slot};
use anyhow::{Context, bail};
use shm::process::Crew;
use shm::{CachePadded, InitCtx, Region, RegionOptions, Shared, ShmName};
use shm_futex::Gate;
use shm_monitor::{FutexMonitor, Monitor, PthreadMonitor, Wait};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most slots a ring can have.
pub const MAX_SLOTS: u32 = 1024;
/// Most items a run can track (producers × items each).
pub const MAX_ITEMS: u64 = 1 << 20;
/// Most producers plus consumers.
pub const MAX_WORKERS: u32 = 32;
/// How long one timed wait lasts before a waiter looks for `stop`.
const SLICE: Duration = Duration::from_millis(50);
/// The status recorded for a worker the lab itself had to kill because it
/// did not end within 5 s of `stop` (wedged in a pthread call by another
/// worker's death): not the culprit.
const WEDGED_AND_KILLED: i32 = -9;
/// How long a run may take before the watchdog gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Condition variable 0 (one-cv: the only one).
const NOT_FULL: usize = 0;
/// Condition variable 1.
const NOT_EMPTY: usize = 1;

/// Which monitor guards the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impl {
    /// glibc's process-shared pthread mutex and condition variables.
    Pthread,
    /// shmlab's futex mutex and sequence-number condition variables.
    Futex,
}

impl Impl {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Pthread => "pthread",
            Impl::Futex => "futex",
        }
    }
}

/// The bug to put in, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Correct: `while` loops, two condition variables.
    None,
    /// Consumers wait with `if` instead of `while`.
    If,
    /// One condition variable for both conditions, `signal` not `broadcast`.
    OneCv,
}

impl Bug {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Bug::None => "none",
            Bug::If => "if",
            Bug::OneCv => "one-cv",
        }
    }
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Producers.
    pub producers: u32,
    /// Consumers.
    pub consumers: u32,
    /// Items per producer.
    pub items: u64,
    /// Slots in the ring.
    pub slots: u32,
    /// The monitor.
    pub imp: Impl,
    /// The bug.
    pub bug: Bug,
    /// Threads of this process instead of processes.
    pub threads: bool,
    /// No progress for this long with everyone waiting is a stall.
    pub stall: Duration,
}

impl Config {
    /// Checks the limits; returns the total number of items.
    pub fn validate(&self) -> anyhow::Result<u64> {
        if self.slots == 0 || self.slots > MAX_SLOTS {
            bail!("--slots must be between 1 and {MAX_SLOTS}");
        }
        if self.producers == 0 || self.consumers == 0 {
            bail!("a bounded buffer needs at least 1 producer and 1 consumer");
        }
        if self.producers + self.consumers > MAX_WORKERS {
            bail!(
                "{} producers + {} consumers is more than this lab starts ({MAX_WORKERS}); use fewer",
                self.producers,
                self.consumers
            );
        }
        if self.stall < Duration::from_millis(100) || self.stall > Duration::from_secs(60) {
            bail!("--stall-ms must be between 100 and 60000");
        }
        self.items
            .checked_mul(self.producers as u64)
            .filter(|&t| t > 0 && t <= MAX_ITEMS)
            .with_context(|| {
                format!(
                    "--items x --producers must be between 1 and {MAX_ITEMS}; use fewer --items"
                )
            })
    }
}

shm::code_enum! {
    /// What a worker is doing, in [`Buffer::state`], for the watchdog.
    enum State: u32 {
        /// Working (or waiting for the mutex).
        Running = 0,
        /// Waiting on not-full (one-cv: on the one condition variable, as a producer).
        WaitNotFull = 1,
        /// Waiting on not-empty (one-cv: on the one condition variable, as a consumer).
        WaitNotEmpty = 2,
        /// Finished its share.
        Done = 3,
    }
}

shm::code_enum! {
    /// How a worker ends.
    enum WorkerExit: i32 {
        /// Did its share.
        Done = 0,
        /// Told to stop (the watchdog found a stall) or the parent is gone.
        Stopped = 1,
        /// Could not open the region.
        NoRegion = 3,
    }
}

/// The region's payload.
#[repr(C)]
struct Buffer {
    /// The start gate: workers count themselves in and sleep on it.
    gate: CachePadded<Gate>,
    /// Set by the watchdog: every worker ends at its next look.
    stop: CachePadded<AtomicU32>,
    /// The parent's pid; a worker process whose parent changed stops.
    parent: AtomicI32,
    pthread: CachePadded<PthreadMonitor>,
    futex: CachePadded<FutexMonitor>,
    /// Next slot to write / read (index = value % capacity) and the fill
    /// count, all under the mutex; the count is signed so that `--bug if`
    /// can take it below zero, as the C program would.
    head: AtomicU64,
    tail: AtomicU64,
    count: AtomicI64,
    /// Items put plus items taken: the watchdog's progress counter.
    progress: CachePadded<AtomicU64>,
    /// Items put into the ring.
    put: CachePadded<AtomicU64>,
    /// Consumption tickets handed out.
    claimed: CachePadded<AtomicU64>,
    capacity: AtomicU32,
    total: AtomicU64,
    per: AtomicU64,
    torn: AtomicU64,
    /// Woke, found the ring empty, waited again (`while`: harmless).
    rewaited: AtomicU64,
    /// Woke, found the ring empty, took anyway (`--bug if`).
    took_from_empty: AtomicU64,
    /// Per worker: a [`State`] and its pid (or tid).
    state: [AtomicU32; MAX_WORKERS as usize],
    tid: [AtomicI32; MAX_WORKERS as usize],
    ring: [CachePadded<Slot>; MAX_SLOTS as usize],
    receipts: [AtomicU8; MAX_ITEMS as usize],
}
shm::any_bits!(Buffer {
    gate,
    stop,
    parent,
    pthread,
    futex,
    head,
    tail,
    count,
    progress,
    put,
    claimed,
    capacity,
    total,
    per,
    torn,
    rewaited,
    took_from_empty,
    state,
    tid,
    ring,
    receipts,
});

// SAFETY: repr(C); atomics, item slots and two monitors, the pthread one
// initialised in place with PTHREAD_PROCESS_SHARED by `init_in_place`, the
// futex one valid zeroed; all interior-mutable.
unsafe impl Shared for Buffer {
    type Init = (u32, u64, u64, i32);

    fn type_name() -> String {
        "lab11/condvar-buffer".into()
    }

    unsafe fn init_in_place(
        this: *mut Self,
        (slots, total, per, parent): Self::Init,
        _ctx: &InitCtx<'_>,
    ) -> Result<(), String> {
        // SAFETY: `this` is zeroed, aligned and ours alone (trait contract);
        // fields are reached through raw pointers before any reference.
        unsafe {
            (*this).capacity.store(slots, Ordering::Relaxed);
            (*this).total.store(total, Ordering::Relaxed);
            (*this).per.store(per, Ordering::Relaxed);
            (*this).parent.store(parent, Ordering::Relaxed);
            PthreadMonitor::init(&raw mut (*this).pthread.0).map_err(|e| e.to_string())?;
            FutexMonitor::init(&raw mut (*this).futex.0);
        }
        Ok(())
    }
    // No `destroy`: glibc's pthread_cond_destroy waits for the waiters it
    // has counted to leave, and a worker killed inside a wait never leaves.
    // Unmapping a process-shared condition variable is enough.
}

/// One waiting worker, as the watchdog saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Waiter {
    /// `producer` or `consumer`.
    pub role: &'static str,
    /// Its index among its role.
    pub index: u32,
    /// Its pid (processes) or tid (threads).
    pub tid: i32,
    /// The condition variable it sleeps on.
    pub waits_on: &'static str,
}

/// A stall the watchdog found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stall {
    /// From the start to the detection.
    pub after_ns: u64,
    /// Items in the ring then.
    pub count: i64,
    /// Everyone still working, all waiting.
    pub waiting: Vec<Waiter>,
}

/// The outcome of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The monitor.
    #[serde(rename = "impl")]
    pub imp: Impl,
    /// The bug.
    pub bug: Bug,
    /// `procs` or `threads`.
    pub kind: &'static str,
    /// Producers, consumers, slots.
    pub producers: u32,
    /// Consumers.
    pub consumers: u32,
    /// Slots.
    pub slots: u32,
    /// Items asked for (producers × items).
    pub asked: u64,
    /// Items producers put into the ring (fewer than asked after a stall).
    pub produced: u64,
    /// Items consumers took out (with duplicates and torn ones).
    pub consumed: u64,
    /// Consumed exactly once and intact.
    pub exactly_once: u64,
    /// Produced but never consumed (after a stall: the items left in the ring).
    pub lost: u64,
    /// Extra copies consumed.
    pub duplicated: u64,
    /// Read with a bad checksum (a blank or half-written slot).
    pub torn: u64,
    /// Consumer wake-ups that found the ring empty and waited again.
    pub rewaited: u64,
    /// Consumer wake-ups that found the ring empty and took anyway.
    pub took_from_empty: u64,
    /// The stall the watchdog found, if any.
    pub stall: Option<Stall>,
    /// From the start to the end (or the detection).
    pub elapsed_ns: u64,
}

impl Report {
    /// Every item exactly once, nothing torn, nothing taken from an empty
    /// ring, no stall.
    pub fn correct(&self) -> bool {
        self.exactly_once == self.asked
            && self.duplicated == 0
            && self.torn == 0
            && self.took_from_empty == 0
            && self.stall.is_none()
    }
}

#[derive(Clone, Copy)]
enum Role {
    Producer(u32),
    Consumer,
}

/// Runs one buffer and checks every item.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    let total = cfg.validate()?;
    let name = ShmName::unique("lab11-condvar");
    let region = Region::<Buffer>::create(
        &name,
        &RegionOptions::default(),
        (cfg.slots, total, cfg.items, shm::pid()),
    )?;
    let roles: Vec<Role> = (0..cfg.producers)
        .map(Role::Producer)
        .chain((0..cfg.consumers).map(|_| Role::Consumer))
        .collect();
    let n = roles.len() as u32;
    let (stall, elapsed_ns) = if cfg.threads {
        std::thread::scope(|s| -> anyhow::Result<_> {
            let b: &Buffer = &region;
            let handles: Vec<_> = roles
                .iter()
                .enumerate()
                .map(|(w, &role)| s.spawn(move || worker(b, w, role, cfg.bug, cfg.imp, false)))
                .collect();
            let t0 = crate::workers::open_gate(&b.gate, n)?;
            let stall = watch(b, cfg, n, t0, || handles.iter().all(|h| h.is_finished()));
            let elapsed = t0.elapsed().as_nanos() as u64;
            b.stop.store(1, Ordering::Release);
            for h in handles {
                match h.join() {
                    Ok(WorkerExit::Done | WorkerExit::Stopped) => {}
                    _ => bail!("a worker thread failed"),
                }
            }
            Ok((stall, elapsed))
        })?
    } else {
        let mut crew = Crew::new();
        let outcome = (|| -> anyhow::Result<_> {
            for (w, &role) in roles.iter().enumerate() {
                let (name, bug, imp) = (name.clone(), cfg.bug, cfg.imp);
                // SAFETY: a worker opens the buffer by name and works on it
                // with its monitor and atomics; the lab's only other thread
                // is the signal thread, which holds no lock across the fork,
                // and the body uses nothing the parent owns.
                let child = unsafe {
                    shm::process::fork_child(move || {
                        let Ok(mine) = Region::<Buffer>::open(&name, &RegionOptions::default())
                        else {
                            return WorkerExit::NoRegion.into();
                        };
                        worker(&mine, w, role, bug, imp, true).into()
                    })
                }
                .with_context(|| format!("starting worker {w}; use fewer"))?;
                crew.push_process(child);
            }
            let t0 = crate::workers::open_gate(&region.gate, n)?;
            let mut failed = false;
            let stall = watch(&region, cfg, n, t0, || {
                let all = crew.poll();
                failed |= crate::workers::statuses(&crew, WEDGED_AND_KILLED)
                    .iter()
                    .flatten()
                    .any(|&c| WorkerExit::try_from(c) != Ok(WorkerExit::Done));
                failed || all
            });
            let elapsed = t0.elapsed().as_nanos() as u64;
            Ok((stall, elapsed))
        })();
        region.stop.store(1, Ordering::Release);
        // Only the futex condition variables are woken from here. glibc's
        // process-shared pthread_cond_t keeps an internal lock in the
        // condition variable: a worker killed inside pthread_cond_wait or
        // _signal can leave it taken, and then pthread_cond_broadcast
        // blocks forever. pthread waiters see `stop` within a slice instead,
        // and whoever is wedged is killed below.
        region.futex.0.broadcast(0);
        region.futex.0.broadcast(1);
        crew.stop(Duration::from_secs(5));
        let exited = crate::workers::statuses(&crew, WEDGED_AND_KILLED);
        let out = outcome?;
        let exit = |w: usize| exited[w].and_then(|c| WorkerExit::try_from(c).ok());
        // The culprit first: a worker killed (or that never opened the
        // region); the others were only stopped because of it.
        let culprit = (0..crew.len()).find(|&w| {
            exited[w] != Some(WEDGED_AND_KILLED)
                && !matches!(exit(w), Some(WorkerExit::Done | WorkerExit::Stopped))
        });
        if let Some(w) = culprit {
            let how = match exit(w) {
                Some(WorkerExit::NoRegion) => "could not open the region",
                _ => "was killed",
            };
            bail!(
                "worker {w} (pid {}) {how}; the run was stopped and the others ended",
                crew.pid(w).unwrap_or(0)
            );
        }
        if out.0.is_none() && (0..crew.len()).any(|w| exit(w) == Some(WorkerExit::Stopped)) {
            bail!("a worker stopped early although nothing stalled (was the parent replaced?)");
        }
        out
    };
    let t = items::tally(&region.receipts[..total as usize]);
    let torn = region.torn.load(Ordering::Relaxed);
    let produced = region.put.load(Ordering::Acquire);
    if stall.is_none() && t.consumed + torn != total {
        bail!(
            "the run neither finished nor stalled within {}s",
            RUN_DEADLINE.as_secs()
        );
    }
    Ok(Report {
        imp: cfg.imp,
        bug: cfg.bug,
        kind: if cfg.threads { "threads" } else { "procs" },
        producers: cfg.producers,
        consumers: cfg.consumers,
        slots: cfg.slots,
        asked: total,
        produced,
        consumed: t.consumed + torn,
        exactly_once: t.exactly_once,
        // Receipts of items never made are not lost items.
        lost: t.lost.saturating_sub(total - produced),
        duplicated: t.duplicated,
        torn,
        rewaited: region.rewaited.load(Ordering::Relaxed),
        took_from_empty: region.took_from_empty.load(Ordering::Relaxed),
        stall,
        elapsed_ns,
    })
}

/// The watchdog: until `done()`, looks every 2 ms; no progress for
/// `cfg.stall` while every unfinished worker waits on a condition variable
/// is a stall: it is reported and the run stopped.
fn watch(
    b: &Buffer,
    cfg: &Config,
    n: u32,
    t0: Instant,
    mut done: impl FnMut() -> bool,
) -> Option<Stall> {
    let mut last = b.progress.load(Ordering::Acquire);
    let mut since = Instant::now();
    while !done() {
        std::thread::sleep(Duration::from_millis(2));
        if t0.elapsed() > RUN_DEADLINE {
            return None;
        }
        let now = b.progress.load(Ordering::Acquire);
        if now != last {
            (last, since) = (now, Instant::now());
            continue;
        }
        if since.elapsed() < cfg.stall {
            continue;
        }
        let states: Vec<State> = (0..n as usize)
            .map(|w| State::try_from(b.state[w].load(Ordering::Acquire)).unwrap_or(State::Running))
            .collect();
        let all_wait = states
            .iter()
            .all(|s| matches!(s, State::WaitNotFull | State::WaitNotEmpty | State::Done))
            && states.iter().any(|s| *s != State::Done);
        if !all_wait {
            continue;
        }
        let waiting = states
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != State::Done)
            .map(|(w, s)| {
                let (role, index) = if (w as u32) < cfg.producers {
                    ("producer", w as u32)
                } else {
                    ("consumer", w as u32 - cfg.producers)
                };
                Waiter {
                    role,
                    index,
                    tid: b.tid[w].load(Ordering::Acquire),
                    waits_on: match (cfg.bug, s) {
                        (Bug::OneCv, _) => "the one condition variable",
                        (_, State::WaitNotFull) => "not-full",
                        _ => "not-empty",
                    },
                }
            })
            .collect();
        b.stop.store(1, Ordering::Release);
        return Some(Stall {
            after_ns: t0.elapsed().as_nanos() as u64,
            count: b.count.load(Ordering::Acquire),
            waiting,
        });
    }
    None
}

/// One worker (process or thread), on the chosen monitor.
fn worker(b: &Buffer, w: usize, role: Role, bug: Bug, imp: Impl, process: bool) -> WorkerExit {
    match imp {
        Impl::Pthread => work(b, &b.pthread.0, w, role, bug, process),
        Impl::Futex => work(b, &b.futex.0, w, role, bug, process),
    }
}

fn work<M: Monitor>(
    b: &Buffer,
    m: &M,
    w: usize,
    role: Role,
    bug: Bug,
    process: bool,
) -> WorkerExit {
    b.tid[w].store(shm::gettid(), Ordering::Release);
    // A worker process dies with the lab (the parent-death signal).
    if b.gate.arrive_and_wait(|| true).is_err() {
        return WorkerExit::Stopped;
    }
    let ctx = Ctx {
        b,
        m,
        w,
        bug,
        process,
    };
    let finished = match role {
        // `stopped` before each item too: a busy worker whose parent was
        // killed must end without ever timing out.
        Role::Producer(p) => {
            (0..b.per.load(Ordering::Relaxed)).all(|seq| !ctx.stopped() && ctx.put(p, seq))
        }
        Role::Consumer => {
            let total = b.total.load(Ordering::Relaxed);
            let mut ok = true;
            while ok && b.claimed.fetch_add(1, Ordering::AcqRel) < total {
                ok = !ctx.stopped() && ctx.take();
            }
            ok
        }
    };
    b.state[w].store(State::Done.into(), Ordering::Release);
    if finished {
        WorkerExit::Done
    } else {
        WorkerExit::Stopped
    }
}

struct Ctx<'a, M> {
    b: &'a Buffer,
    m: &'a M,
    w: usize,
    bug: Bug,
    process: bool,
}

impl<M: Monitor> Ctx<'_, M> {
    /// The condition variable to use for `cv` (one-cv: always the same).
    fn cv(&self, cv: usize) -> usize {
        if self.bug == Bug::OneCv { 0 } else { cv }
    }

    /// Whether to give up: the watchdog said stop, or (a process) the
    /// parent is gone. (A process whose parent dies is killed by the
    /// kernel anyway, [`shm::process::fork_child`]'s parent-death signal;
    /// this cheap `getppid` is a second guard that ends it cleanly.)
    fn stopped(&self) -> bool {
        self.b.stop.load(Ordering::Acquire) != 0
            || (self.process
                && nix::unistd::getppid().as_raw() != self.b.parent.load(Ordering::Relaxed))
    }

    /// Waits on `cv` (mutex held) until woken — timed slices that only look
    /// for `stop`, like an untimed wait that cannot hang; `false` if
    /// stopped.
    fn wait(&self, cv: usize, state: State) -> bool {
        self.b.state[self.w].store(state.into(), Ordering::Release);
        let woken = loop {
            match self.m.wait(self.cv(cv), SLICE) {
                Wait::Woken => break true,
                Wait::TimedOut if self.stopped() => break false,
                Wait::TimedOut => {}
            }
        };
        self.b.state[self.w].store(State::Running.into(), Ordering::Release);
        woken
    }

    fn put(&self, p: u32, seq: u64) -> bool {
        let b = self.b;
        let k = b.capacity.load(Ordering::Relaxed) as u64;
        self.m.lock();
        while b.count.load(Ordering::Relaxed) >= k as i64 {
            if !self.wait(NOT_FULL, State::WaitNotFull) {
                self.m.unlock();
                return false;
            }
        }
        let h = b.head.load(Ordering::Relaxed);
        b.ring[(h % k) as usize].write(p, seq);
        b.head.store(h + 1, Ordering::Relaxed);
        b.count.fetch_add(1, Ordering::Relaxed);
        b.put.fetch_add(1, Ordering::Relaxed);
        b.progress.fetch_add(1, Ordering::Release);
        match self.bug {
            Bug::OneCv => self.m.signal(self.cv(NOT_EMPTY)),
            Bug::None | Bug::If => self.m.broadcast(NOT_EMPTY),
        }
        self.m.unlock();
        true
    }

    fn take(&self) -> bool {
        let b = self.b;
        let k = b.capacity.load(Ordering::Relaxed) as u64;
        self.m.lock();
        if self.bug == Bug::If {
            if b.count.load(Ordering::Relaxed) <= 0 {
                if !self.wait(NOT_EMPTY, State::WaitNotEmpty) {
                    self.m.unlock();
                    return false;
                }
                if b.count.load(Ordering::Relaxed) <= 0 {
                    // The bug: another consumer took the item we were woken
                    // for, and `if` does not look again.
                    b.took_from_empty.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else {
            while b.count.load(Ordering::Relaxed) <= 0 {
                if !self.wait(NOT_EMPTY, State::WaitNotEmpty) {
                    self.m.unlock();
                    return false;
                }
                if b.count.load(Ordering::Relaxed) <= 0 {
                    b.rewaited.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let t = b.tail.load(Ordering::Relaxed);
        let got = b.ring[(t % k) as usize].read();
        match got.and_then(|(p, seq)| {
            items::receipt_index(
                p,
                seq,
                b.per.load(Ordering::Relaxed),
                b.total.load(Ordering::Relaxed),
            )
        }) {
            Some(i) => {
                b.receipts[i].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                b.torn.fetch_add(1, Ordering::Relaxed);
            }
        }
        b.tail.store(t + 1, Ordering::Relaxed);
        b.count.fetch_sub(1, Ordering::Relaxed);
        b.progress.fetch_add(1, Ordering::Release);
        self.m.signal(self.cv(NOT_FULL));
        self.m.unlock();
        true
    }
}

/// Runs, prints; with `--check`, exit 1 unless the buffer was correct.
pub fn main(cfg: &Config, check: bool, json: bool) -> anyhow::Result<ExitCode> {
    cfg.validate()?;
    let r = run(cfg)?;
    crate::emit(json, &r, |r| print_report(cfg, r))?;
    Ok(crate::check_exit(
        check && !r.correct(),
        json,
        "the buffer lost, duplicated or tore items",
    ))
}

fn print_report(cfg: &Config, r: &Report) {
    let kind = if cfg.threads { "threads" } else { "processes" };
    println!(
        "lab11-condvar: {} producer(s) and {} consumer(s) ({kind}), a ring of {} slot(s), {} items each; --impl {}, --bug {}",
        cfg.producers,
        cfg.consumers,
        cfg.slots,
        group(cfg.items),
        cfg.imp.name(),
        cfg.bug.name()
    );
    println!(
        "One region holds the ring, a mutex and {} (process-shared, every wait timed).\n",
        if cfg.bug == Bug::OneCv {
            "ONE condition variable for both conditions, signalled"
        } else {
            "two condition variables, not-full and not-empty"
        }
    );
    println!("asked            {:>12}", group(r.asked));
    println!("produced         {:>12}", group(r.produced));
    println!("consumed         {:>12}", group(r.consumed));
    println!("exactly once     {:>12}", group(r.exactly_once));
    println!(
        "lost             {:>12}   (produced, never consumed)",
        group(r.lost)
    );
    println!("duplicated       {:>12}", group(r.duplicated));
    println!(
        "torn             {:>12}   (checksum did not match: a blank or half-written slot)",
        group(r.torn)
    );
    println!(
        "woke to empty    {:>12}   (and waited again: `while` re-checks)",
        group(r.rewaited)
    );
    println!(
        "took from empty  {:>12}   (woke to an empty ring and took anyway: `if`)",
        group(r.took_from_empty)
    );
    println!("elapsed          {:>12}", duration_ns(r.elapsed_ns));
    if let Some(s) = &r.stall {
        println!(
            "\nSTALL after {}: no progress for {} and everyone still working is asleep ({} item(s) in the ring):",
            duration_ns(s.after_ns),
            duration_ns(cfg.stall.as_nanos() as u64),
            s.count
        );
        for w in &s.waiting {
            println!(
                "  {} {} (pid {}) waits on {}",
                w.role, w.index, w.tid, w.waits_on
            );
        }
        println!("the watchdog stopped the run; nothing hangs");
    }
    println!(
        "\nverdict: {}",
        if r.correct() {
            "every item was consumed exactly once and intact"
        } else {
            "BROKEN: see the counts above"
        }
    );
    println!("\nWhat to notice:");
    match cfg.bug {
        Bug::None => println!(
            "- A broadcast wakes every waiting consumer for one item; one takes it and the others find the ring empty. `while` makes them look again and wait: that is why the rule is \"always wait in a loop\" (spurious wake-ups are allowed too)."
        ),
        Bug::If => println!(
            "- With `if`, a consumer woken for an item another consumer already took goes on and takes from an empty ring: it reads a stale or blank slot, the count goes negative, and producers overwrite items nobody read."
        ),
        Bug::OneCv => println!(
            "- One condition variable for two conditions: a consumer's signal meant for a producer woke another consumer (or a producer's meant for a consumer woke a producer), which went back to sleep. The wake-up is lost, and one by one everybody ends up asleep. broadcast, or two condition variables, fixes it."
        ),
    }
}
