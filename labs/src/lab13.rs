//! `lab13-deadlock`: the dining philosophers as processes, each fork a
//! futex lock in one shared region, and a detector that finds the deadlock
//! across processes and names it.
//!
//! Philosopher `i` needs fork `i` (left) and fork `(i + 1) % n` (right).
//! Every round starts at a barrier in the region (shmlab's futex barrier,
//! or with `--barrier pthread` glibc's process-shared `pthread_barrier_t`;
//! both from `shm_monitor`), so all
//! philosophers reach for their forks together; each holds its first fork
//! for `--hold-us` before reaching for the second.
//!
//! - `--order naive`: left, then right. All take their left fork, all wait
//!   for their right one, held by their neighbour: a cycle, a deadlock.
//! - `--order global`: the lower-numbered fork first (one global order of
//!   the locks). The last philosopher reaches for fork 0 first, like the
//!   first: one of them waits with empty hands, so no cycle can close.
//! - `--order waiter`: naive order, but an arbiter semaphore (initially
//!   n − 1) lets at most n − 1 philosophers sit at once.
//! - `--order trylock`: naive order, but the second fork is only *tried*;
//!   on failure the philosopher puts the first fork down and backs off a
//!   random time before trying again (livelock avoided by the randomness).
//!
//! **Finding the deadlock.** The futex lock keeps its holder's thread id in
//! its word ([`shm::lock::RawLock::last_holder`]), and each philosopher
//! writes into the region which fork it waits for before it waits. The
//! coordinator, every 50 ms, builds the wait-for graph — philosopher p waits
//! for fork f, which is held by the philosopher whose tid is in f's word —
//! and looks for a cycle. A cycle seen twice in a row, with nobody having
//! eaten in between, is a deadlock: it prints it, tells every philosopher to
//! stop (they wait with a bounded `lock_timeout`, so they see it), and
//! everything is removed.

use crate::fmt::{self, group};
pub use crate::payloads::philosophers::{Link, MAX_PHILOSOPHERS};
use crate::payloads::philosophers::{Seat, Table};
use anyhow::Context;
use shm::lock::Lock;
use shm::process::Crew;
use shm::{Region, RegionOptions, ShmName};
use shm_futex::FutexLock;
use shm_monitor::Barrier;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest `--linger`.
pub const MAX_LINGER: Duration = Duration::from_secs(600);
/// How often a waiting philosopher looks up from its fork (to see `stop`).
const WAIT_SLICE: Duration = Duration::from_millis(20);
/// How often the coordinator looks for a cycle.
const DETECT_EVERY: Duration = Duration::from_millis(50);
/// How long a run may take before the coordinator gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// How philosophers pick up their forks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Left fork, then right: deadlocks.
    Naive,
    /// The lower-numbered fork first: one global lock order, no cycle.
    Global,
    /// Naive order, at most n − 1 seated (an arbiter semaphore).
    Waiter,
    /// Naive order, the second fork only tried; back off and retry.
    Trylock,
}

impl Order {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Order::Naive => "naive",
            Order::Global => "global",
            Order::Waiter => "waiter",
            Order::Trylock => "trylock",
        }
    }
}

/// One run's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Philosophers (and forks).
    pub philosophers: u32,
    /// How they pick up forks.
    pub order: Order,
    /// Meals each must eat.
    pub rounds: u32,
    /// How long a philosopher holds its first fork before reaching for the
    /// second.
    pub hold: Duration,
    /// Threads instead of processes.
    pub threads: bool,
    /// Which barrier separates the rounds.
    pub barrier: BarrierKind,
    /// After a deadlock is found, how long to leave the table deadlocked
    /// (for `shmlab ps`) before stopping the philosophers.
    pub linger: Duration,
}

/// The barrier between rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BarrierKind {
    /// shmlab's futex barrier (waiters can be told to stop).
    Futex,
    /// glibc's process-shared `pthread_barrier_t` (no timed wait).
    Pthread,
}

impl Config {
    /// Checks the configuration.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(2..=MAX_PHILOSOPHERS).contains(&self.philosophers) {
            anyhow::bail!(
                "--philosophers {} is outside 2..={MAX_PHILOSOPHERS}: a table needs at least two, and this one seats {MAX_PHILOSOPHERS}",
                self.philosophers
            );
        }
        if self.rounds == 0 {
            anyhow::bail!("--rounds 0 eats nothing; use --rounds 1 or more");
        }
        if self.barrier == BarrierKind::Pthread && self.threads {
            anyhow::bail!(
                "--barrier pthread has no timed wait, so a thread stuck in it could never be stopped; use --barrier futex with --threads"
            );
        }
        if self.linger > MAX_LINGER {
            anyhow::bail!(
                "--linger {} s is more than {} s; a deadlocked table is seen in a few seconds, use less",
                self.linger.as_secs(),
                MAX_LINGER.as_secs()
            );
        }
        if self.hold > Duration::from_secs(1) {
            anyhow::bail!("--hold-us above 1,000,000 makes every round last seconds; use less");
        }
        Ok(())
    }
}

shm::code_enum! {
    /// How a philosopher process ends.
    enum PhilosopherExit: i32 {
        /// Ate every meal.
        Done = 0,
        /// Told to stop (a deadlock was found).
        Stopped = 1,
        /// Could not open the table.
        NoTable = 3,
        /// A lock or semaphore operation failed.
        SyncFailed = 4,
    }
}

/// A run's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Fork order.
    pub order: Order,
    /// Philosophers.
    pub philosophers: u32,
    /// `procs` or `threads`.
    pub kind: &'static str,
    /// Meals each was to eat.
    pub rounds: u32,
    /// The barrier between rounds.
    pub barrier: BarrierKind,
    /// Meals each ate.
    pub meals: Vec<u64>,
    /// Times a philosopher put its first fork back (trylock).
    pub retries: u64,
    /// The cycle, if a deadlock was found.
    pub deadlock: Option<Vec<Link>>,
    /// From the start to the detection, or to the last meal.
    pub elapsed_ns: u64,
}

/// Runs one table.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    cfg.validate()?;
    let n = cfg.philosophers;
    let name = ShmName::unique(&format!("lab13-{}", cfg.order.name()));
    let table = Region::<Table>::create(&name, &RegionOptions::default(), n)?;
    let start = Instant::now();
    let (deadlock, finished, detected_at) = if cfg.threads {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let t: &Table = &table;
                    s.spawn(move || philosopher(t, i, cfg))
                })
                .collect();
            let found = watch(&table, n, || handles.iter().all(|h| h.is_finished()));
            let at = start.elapsed();
            if found.is_some() {
                linger(cfg, &name);
                table.stop.store(1, Ordering::Release);
            }
            let ok = handles
                .into_iter()
                .map(|h| h.join().ok())
                .all(|r| matches!(r, Some(PhilosopherExit::Done | PhilosopherExit::Stopped)));
            (found, ok, at)
        })
    } else {
        let mut crew = Crew::new();
        let started = (|| -> anyhow::Result<()> {
            for i in 0..n {
                let name = name.clone();
                let cfg = *cfg;
                // SAFETY: a philosopher opens the table by name and works on
                // it with its futex locks, semaphore and atomics; the lab's
                // only other thread is the signal thread, which holds no
                // lock across the fork, and the body uses nothing the parent
                // owns. A philosopher dies with this thread (which reaps
                // it), also one asleep on a fork or in glibc's barrier,
                // which has no timed wait.
                let child = unsafe {
                    shm::process::fork_child(move || {
                        let Ok(mine) = Region::<Table>::open(&name, &RegionOptions::default())
                        else {
                            return PhilosopherExit::NoTable.into();
                        };
                        philosopher(&mine, i, &cfg).into()
                    })
                }
                .with_context(|| format!("starting philosopher {i}; use fewer"))?;
                crew.push_process(child);
            }
            Ok(())
        })();
        let found = if started.is_ok() {
            watch(&table, n, || {
                let all = crew.poll();
                // All done, or one failed: the others may wait for it (at
                // a pthread barrier, for good) and are stopped below.
                all || crate::workers::statuses(&crew, -1)
                    .iter()
                    .flatten()
                    .any(|&c| {
                        !matches!(
                            PhilosopherExit::try_from(c),
                            Ok(PhilosopherExit::Done | PhilosopherExit::Stopped)
                        )
                    })
            })
        } else {
            None
        };
        let at = start.elapsed();
        if found.is_some() {
            linger(cfg, &name);
        }
        table.stop.store(1, Ordering::Release);
        table.barrier.0.wake_all();
        // Philosophers at a pthread barrier cannot see `stop`: they are
        // killed after this grace period.
        crew.stop(Duration::from_secs(5));
        started?;
        let ok = crate::workers::statuses(&crew, -1).iter().all(|e| {
            matches!(
                e.and_then(|c| PhilosopherExit::try_from(c).ok()),
                Some(PhilosopherExit::Done | PhilosopherExit::Stopped)
            )
        });
        (found, ok, at)
    };
    // A deadlock's time is when it was found, not when the linger ended.
    let elapsed_ns = if deadlock.is_some() {
        detected_at
    } else {
        start.elapsed()
    }
    .as_nanos() as u64;
    let meals: Vec<u64> = (0..n as usize)
        .map(|i| table.seats[i].0.meals.load(Ordering::Acquire))
        .collect();
    if !finished {
        anyhow::bail!(
            "a philosopher failed (could not open the table or a lock failed); meals so far {meals:?}"
        );
    }
    if deadlock.is_none() && meals.iter().any(|&m| m != u64::from(cfg.rounds)) {
        anyhow::bail!(
            "the table neither finished nor deadlocked within {}s; meals {meals:?}",
            RUN_DEADLINE.as_secs()
        );
    }
    let retries = (0..n as usize)
        .map(|i| table.seats[i].0.retries.load(Ordering::Acquire))
        .sum();
    Ok(Report {
        order: cfg.order,
        philosophers: n,
        kind: if cfg.threads { "threads" } else { "procs" },
        rounds: cfg.rounds,
        barrier: cfg.barrier,
        meals,
        retries,
        deadlock,
        elapsed_ns,
    })
}

/// `--linger`: leaves a deadlocked table as it is for a while, saying so on
/// stderr (stdout may be JSON), so that `shmlab ps` can be pointed at it.
/// Ctrl-C ends it sooner, through the clean-up that removes everything.
fn linger(cfg: &Config, name: &ShmName) {
    if cfg.linger.is_zero() {
        return;
    }
    eprintln!(
        "lab13-deadlock: deadlocked; the table stays as it is for {} s. In another terminal: shmlab ps {}   (Ctrl-C ends it sooner)",
        cfg.linger.as_secs(),
        name.as_str()
    );
    std::thread::sleep(cfg.linger);
}

/// Watches the table until `done()` or a deadlock; returns the cycle found.
/// `done` is asked every 2 ms (so the run's time is measured closely), the
/// wait-for graph looked at every [`DETECT_EVERY`].
fn watch(table: &Table, n: u32, mut done: impl FnMut() -> bool) -> Option<Vec<Link>> {
    let start = Instant::now();
    let mut last_look = Instant::now();
    let mut suspect: Option<(Vec<Link>, u64)> = None;
    while !done() {
        if start.elapsed() > RUN_DEADLINE {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
        if last_look.elapsed() < DETECT_EVERY {
            continue;
        }
        last_look = Instant::now();
        let eaten: u64 = (0..n as usize)
            .map(|i| table.seats[i].0.meals.load(Ordering::Acquire))
            .sum();
        match (table.find_cycle(), suspect.take()) {
            // The same cycle twice, and nobody ate in between: deadlock.
            (Some(c), Some((prev, was))) if was == eaten && same_cycle(&c, &prev) => {
                return Some(c);
            }
            (Some(c), _) => suspect = Some((c, eaten)),
            (None, _) => {}
        }
    }
    None
}

fn same_cycle(a: &[Link], b: &[Link]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.philosopher, x.waits_for, x.held_by) == (y.philosopher, y.waits_for, y.held_by)
        })
}

/// One philosopher: `rounds` meals, each after the barrier.
fn philosopher(table: &Table, i: u32, cfg: &Config) -> PhilosopherExit {
    let n = cfg.philosophers;
    let seat = &table.seats[i as usize].0;
    seat.tid.store(shm::gettid(), Ordering::Release);
    let (left, right) = (i, (i + 1) % n);
    let (first, second) = match cfg.order {
        Order::Global => (left.min(right), left.max(right)),
        _ => (left, right),
    };
    let (Ok(a), Ok(b)) = (
        Lock::<FutexLock>::attach(&table.forks[first as usize].0),
        Lock::<FutexLock>::attach(&table.forks[second as usize].0),
    ) else {
        return PhilosopherExit::SyncFailed;
    };
    let stop = &table.stop;
    let mut rng = u64::from(shm::gettid() as u32) | 1;
    for _ in 0..cfg.rounds {
        let passed = match cfg.barrier {
            BarrierKind::Futex => table.barrier.0.wait(stop),
            BarrierKind::Pthread => table.pthread_barrier.0.wait(stop),
        };
        if !passed || stop.load(Ordering::Acquire) != 0 {
            return PhilosopherExit::Stopped;
        }
        if cfg.order == Order::Waiter {
            loop {
                match table.arbiter.wait_timeout(WAIT_SLICE) {
                    Ok(true) => break,
                    Ok(false) if stop.load(Ordering::Acquire) != 0 => {
                        return PhilosopherExit::Stopped;
                    }
                    Ok(false) => {}
                    Err(_) => return PhilosopherExit::SyncFailed,
                }
            }
        }
        let ate = loop {
            let Some(g1) = take(&a, first, seat, stop) else {
                break None;
            };
            std::thread::sleep(cfg.hold);
            if cfg.order == Order::Trylock {
                match b.try_lock() {
                    Ok(Some(g2)) => break Some((g1, g2)),
                    Ok(None) => {
                        drop(g1);
                        seat.retries.fetch_add(1, Ordering::Relaxed);
                        // xorshift: a random back-off of up to 2 x hold.
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let max = cfg.hold.as_micros().max(1) as u64 * 2;
                        std::thread::sleep(Duration::from_micros(rng % max));
                        continue;
                    }
                    Err(_) => return PhilosopherExit::SyncFailed,
                }
            }
            match take(&b, second, seat, stop) {
                Some(g2) => break Some((g1, g2)),
                None => break None,
            }
        };
        let Some((g1, g2)) = ate else {
            return PhilosopherExit::Stopped;
        };
        // Told to stop while it waited: a deadlock was found and the others
        // are putting their forks down, which is how it got its second one.
        // That meal would be eaten after the deadlock, so it does not count.
        if stop.load(Ordering::Acquire) != 0 {
            return PhilosopherExit::Stopped;
        }
        seat.meals.fetch_add(1, Ordering::Release);
        drop(g2);
        drop(g1);
        if cfg.order == Order::Waiter && table.arbiter.post().is_err() {
            return PhilosopherExit::SyncFailed;
        }
    }
    PhilosopherExit::Done
}

/// Takes fork `f` with bounded waits, saying in the seat what it waits for;
/// `None` if told to stop (or a lock error, which stops it too).
fn take<'g, 'a>(
    lock: &'g Lock<'a, FutexLock>,
    f: u32,
    seat: &Seat,
    stop: &AtomicU32,
) -> Option<shm::lock::Guard<'g, 'a, FutexLock>> {
    seat.waiting_for.store(f as i32, Ordering::Release);
    let got = loop {
        match lock.lock_timeout(WAIT_SLICE) {
            Ok(Some(g)) => break Some(g),
            Ok(None) if stop.load(Ordering::Acquire) == 0 => {}
            _ => break None,
        }
    };
    seat.waiting_for.store(-1, Ordering::Release);
    got
}

/// Runs the lab and prints its report.
pub fn main(cfg: &Config, check: bool, json: bool) -> anyhow::Result<ExitCode> {
    let r = run(cfg)?;
    crate::emit(json, &r, |r| print_report(cfg, r))?;
    Ok(crate::check_exit(
        check && r.deadlock.is_some(),
        json,
        "the table deadlocked",
    ))
}

fn print_report(cfg: &Config, r: &Report) {
    let kind = if cfg.threads { "threads" } else { "processes" };
    println!(
        "lab13-deadlock: {} philosophers ({kind}), --order {}, {} rounds, {} barrier, first fork held {} before reaching for the second",
        r.philosophers,
        r.order.name(),
        group(u64::from(r.rounds)),
        match r.barrier {
            BarrierKind::Futex => "futex",
            BarrierKind::Pthread => "pthread",
        },
        fmt::duration_ns(cfg.hold.as_nanos() as u64)
    );
    println!(
        "Each fork is a futex lock in one shared region; its word holds the holder's tid, and each philosopher writes which fork it waits for.\n"
    );
    match &r.deadlock {
        Some(cycle) => {
            println!(
                "DEADLOCK after {}: a cycle in the wait-for graph, seen twice 50 ms apart with no meal in between:",
                fmt::duration_ns(r.elapsed_ns)
            );
            for l in cycle {
                println!(
                    "  philosopher {} (pid {}) holds fork {}, waits for fork {}, held by philosopher {}",
                    l.philosopher, l.tid, l.holds, l.waits_for, l.held_by
                );
            }
            println!(
                "everyone was told to stop; meals eaten before: {}",
                r.meals
                    .iter()
                    .map(|m| group(*m))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        None => {
            println!(
                "no deadlock: every philosopher ate {} meals in {}",
                group(u64::from(r.rounds)),
                fmt::duration_ns(r.elapsed_ns)
            );
            if r.order == Order::Trylock {
                println!(
                    "  {} times a philosopher found its second fork taken, put the first back and backed off",
                    group(r.retries)
                );
            }
        }
    }
    println!("\nWhat to notice:");
    match r.order {
        Order::Naive => println!(
            "- Each philosopher holds one fork and waits for the next: every condition for deadlock holds at once (mutual exclusion, hold and wait, no preemption, circular wait). Nobody is wrong alone; the cycle is."
        ),
        Order::Global => println!(
            "- One global order (lower fork first) breaks the circular wait: the last philosopher reaches for fork 0 first, like the first one, so one of them waits holding nothing and the cycle cannot close."
        ),
        Order::Waiter => println!(
            "- With at most n - 1 seated, some philosopher always has both neighbours' forks within reach: the arbiter breaks hold-and-wait for the table as a whole."
        ),
        Order::Trylock => println!(
            "- Trying instead of waiting breaks hold-and-wait: a philosopher that cannot get its second fork puts the first back. Without the random back-off all could retry in lock step forever (livelock)."
        ),
    }
    println!(
        "- The detector needs to know who holds each lock: the futex lock's word holds its owner's tid. A semaphore could not tell you that."
    );
}
