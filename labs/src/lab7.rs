//! `lab7-buffer`: the bounded buffer (producer/consumer) in shared memory,
//! with producers and consumers in separate processes.
//!
//! One region holds a ring of `K` slots, the ring's head and tail, and the
//! synchronisation:
//! - `sem`: the classic solution, three unnamed process-shared semaphores
//!   in the region: `empty` (free slots, starts at K), `full` (filled slots,
//!   starts at 0) and `mutex` (starts at 1);
//! - `futex`: shmlab's futex lock around the ring, and waits on the fill
//!   count itself with `futex_wait`/`futex_wake` (a condition variable made
//!   of one word);
//! - `none`: no synchronisation at all, to see what goes wrong.
//!
//! Every item carries its producer, its sequence number, a payload and a
//! checksum over all three, written field by field. Consumers check each
//! item and tick a receipt per (producer, sequence) in the region, so at the
//! end the lab proves every item was consumed exactly once and intact, or
//! counts the lost, duplicated and torn ones.

use crate::fmt::{duration_ns, group};
use crate::items::{self, Slot};
use anyhow::{Context, bail};
use shm::lock::Lock;
use shm::{Region, RegionOptions, ShmName};
use shm_futex::{FutexLock, futex_wait, futex_wake};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::payloads::buffer::Buffer;
pub use crate::payloads::buffer::{BufferSync, MAX_ITEMS, MAX_SLOTS};

/// Most producers plus consumers.
pub const MAX_WORKERS: u32 = 64;

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Producer processes.
    pub producers: u32,
    /// Consumer processes.
    pub consumers: u32,
    /// Items per producer.
    pub items: u64,
    /// Slots in the ring.
    pub slots: u32,
    /// Synchronisation.
    pub sync: BufferSync,
}

impl Config {
    /// Checks the limits; the error says how to fix it.
    pub fn validate(&self) -> anyhow::Result<u64> {
        if self.slots == 0 || self.slots > MAX_SLOTS {
            bail!(
                "--slots must be between 1 and {MAX_SLOTS} (a ring with 0 slots can hold nothing)"
            );
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
        let total = self
            .items
            .checked_mul(self.producers as u64)
            .filter(|&t| t > 0 && t <= MAX_ITEMS);
        total.with_context(|| {
            format!("--items x --producers must be between 1 and {MAX_ITEMS}; use fewer --items")
        })
    }
}

shm::code_enum! {
    /// How a worker process exits; the parent reads it with `waitpid`.
    enum WorkerExit: i32 {
        /// It did all its work.
        Done = 0,
        /// It could not open the region by name.
        NoRegion = 3,
        /// It could not attach to, take or release the synchronisation.
        SyncFailed = 4,
    }
}

/// Forks a producer or consumer process ([`shm::process::fork_child`]:
/// it dies with this thread, which reaps it, so a lab killed with SIGKILL
/// leaves no worker blocked on a semaphore or producing on).
fn spawn_worker(body: impl FnOnce() -> i32) -> std::io::Result<shm::process::Child> {
    // SAFETY: a worker opens the buffer by name and works on it with atomics,
    // its semaphores or its futex lock; the lab's only other thread is the
    // signal thread, which holds no lock across the fork, and the body uses
    // nothing the parent owns.
    unsafe { shm::process::fork_child(body) }
}

/// The outcome of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Synchronisation used.
    pub sync: BufferSync,
    /// Items produced (producers × items).
    pub produced: u64,
    /// Items consumers took out (including duplicates and torn ones).
    pub consumed: u64,
    /// Consumed exactly once and intact.
    pub exactly_once: u64,
    /// Never consumed.
    pub lost: u64,
    /// Consumed more than once (extra copies).
    pub duplicated: u64,
    /// Read with a bad checksum (a mix of two items).
    pub torn: u64,
    /// From the start signal to the last consumer's exit.
    pub elapsed_ns: u64,
}

impl Report {
    /// Every item exactly once, none torn.
    pub fn correct(&self) -> bool {
        self.exactly_once == self.produced && self.duplicated == 0 && self.torn == 0
    }
}

/// Runs the bounded buffer with separate processes and checks every item.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    let total = cfg.validate()?;
    let name = ShmName::unique("lab7-buffer");
    let region = Region::<Buffer>::create(
        &name,
        &RegionOptions::default(),
        (cfg.sync, cfg.slots, total, cfg.items),
    )?;
    // Dropped on an error path: every worker still running is killed and
    // reaped.
    let mut kids = Vec::new();
    let result = (|| -> anyhow::Result<Report> {
        for p in 0..cfg.producers {
            let name = name.clone();
            let pid = spawn_worker(move || worker(&name, Role::Producer(p), *cfg).into())
                .with_context(|| format!("starting producer {p}; use fewer workers"))?;
            kids.push(pid);
        }
        for c in 0..cfg.consumers {
            let name = name.clone();
            let pid = spawn_worker(move || worker(&name, Role::Consumer, *cfg).into())
                .with_context(|| format!("starting consumer {c}; use fewer workers"))?;
            kids.push(pid);
        }
        let n = cfg.producers + cfg.consumers;
        let t0 = crate::workers::open_gate(&region.gate, n)?;
        for (i, kid) in kids.iter_mut().enumerate() {
            let st = kid.wait()?;
            if i < cfg.producers as usize {
                // Producers done: tell the consumers (none mode needs it to stop).
                if i + 1 == cfg.producers as usize {
                    region.producers_done.store(1, Ordering::Release);
                }
            }
            let done = st
                .code()
                .is_some_and(|code| WorkerExit::try_from(code) == Ok(WorkerExit::Done));
            if !done {
                bail!("worker {i} (pid {}) {st}", kid.pid());
            }
        }
        let elapsed_ns = t0.elapsed().as_nanos() as u64;
        let t = items::tally(&region.receipts[..total as usize]);
        let torn = region.torn.load(Ordering::Relaxed);
        Ok(Report {
            sync: cfg.sync,
            produced: total,
            consumed: t.consumed + torn,
            exactly_once: t.exactly_once,
            lost: t.lost,
            duplicated: t.duplicated,
            torn,
            elapsed_ns,
        })
    })();
    drop(kids);
    result
}

#[derive(Clone, Copy)]
enum Role {
    Producer(u32),
    Consumer,
}

/// A worker process: opens the region by name and produces or consumes.
fn worker(name: &ShmName, role: Role, cfg: Config) -> WorkerExit {
    let Ok(region) = Region::<Buffer>::open(name, &RegionOptions::default()) else {
        return WorkerExit::NoRegion;
    };
    let b: &Buffer = &region;
    let Ok(lock) = Lock::<FutexLock>::attach(&b.lock.0) else {
        return WorkerExit::SyncFailed;
    };
    // A worker dies with the lab (the parent-death signal).
    if b.gate.arrive_and_wait(|| true).is_err() {
        return WorkerExit::SyncFailed;
    }
    let ok = match role {
        Role::Producer(p) => (0..cfg.items).all(|seq| produce(b, &lock, cfg.sync, p, seq)),
        Role::Consumer => {
            let total = b.total.load(Ordering::Relaxed);
            while b.claimed.fetch_add(1, Ordering::AcqRel) < total {
                if !consume(b, &lock, cfg.sync) {
                    break;
                }
            }
            true
        }
    };
    if ok {
        WorkerExit::Done
    } else {
        WorkerExit::SyncFailed
    }
}

/// Reads a slot and records the receipt, or counts it torn.
fn read_slot(b: &Buffer, s: &Slot) {
    match s.read().and_then(|(p, seq)| receipt(b, p, seq)) {
        Some(r) => {
            let _ = r.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            b.torn.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The receipt of item `seq` of producer `p`; `None` for a (producer,
/// seq) no producer made (garbage read from a torn slot).
fn receipt(b: &Buffer, p: u32, seq: u64) -> Option<&AtomicU8> {
    let per = b.per.load(Ordering::Relaxed);
    items::receipt_index(p, seq, per, b.total.load(Ordering::Relaxed)).map(|i| &b.receipts[i])
}

fn produce(b: &Buffer, lock: &Lock<'_, FutexLock>, sync: BufferSync, p: u32, seq: u64) -> bool {
    let k = b.capacity.load(Ordering::Relaxed) as u64;
    match sync {
        BufferSync::Sem => {
            if b.empty.wait().is_err() || b.mutex.wait().is_err() {
                return false;
            }
            let h = b.head.load(Ordering::Relaxed);
            b.ring[(h % k) as usize].write(p, seq);
            b.head.store(h + 1, Ordering::Relaxed);
            b.mutex.post().is_ok() && b.full.post().is_ok()
        }
        BufferSync::Futex => loop {
            let Ok(g) = lock.lock() else { return false };
            let c = b.count.load(Ordering::SeqCst);
            if (c as u64) < k {
                let h = b.head.load(Ordering::Relaxed);
                b.ring[(h % k) as usize].write(p, seq);
                b.head.store(h + 1, Ordering::Relaxed);
                b.count.store(c + 1, Ordering::SeqCst);
                drop(g);
                wake(b);
                return true;
            }
            drop(g);
            sleep_while(b, c);
        },
        BufferSync::None => {
            // No lock: check for space and write, racing everyone. After a
            // while without space, write anyway (as a buggy C program would
            // once it stops waiting).
            let mut waits = 0u32;
            loop {
                let h = b.head.load(Ordering::Relaxed);
                let t = b.tail.load(Ordering::Relaxed);
                if h.wrapping_sub(t) < k || waits > 1000 {
                    b.ring[(h % k) as usize].write(p, seq);
                    b.head.store(h + 1, Ordering::Relaxed);
                    return true;
                }
                waits += 1;
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

fn consume(b: &Buffer, lock: &Lock<'_, FutexLock>, sync: BufferSync) -> bool {
    let k = b.capacity.load(Ordering::Relaxed) as u64;
    match sync {
        BufferSync::Sem => {
            if b.full.wait().is_err() || b.mutex.wait().is_err() {
                return false;
            }
            let t = b.tail.load(Ordering::Relaxed);
            read_slot(b, &b.ring[(t % k) as usize]);
            b.tail.store(t + 1, Ordering::Relaxed);
            b.mutex.post().is_ok() && b.empty.post().is_ok()
        }
        BufferSync::Futex => loop {
            let Ok(g) = lock.lock() else { return false };
            let c = b.count.load(Ordering::SeqCst);
            if c > 0 {
                let t = b.tail.load(Ordering::Relaxed);
                read_slot(b, &b.ring[(t % k) as usize]);
                b.tail.store(t + 1, Ordering::Relaxed);
                b.count.store(c - 1, Ordering::SeqCst);
                drop(g);
                wake(b);
                return true;
            }
            drop(g);
            sleep_while(b, c);
        },
        BufferSync::None => {
            let mut idle_since: Option<Instant> = None;
            loop {
                let t = b.tail.load(Ordering::Relaxed);
                let h = b.head.load(Ordering::Relaxed);
                if t < h {
                    read_slot(b, &b.ring[(t % k) as usize]);
                    b.tail.store(t + 1, Ordering::Relaxed);
                    return true;
                }
                // Producers finished and nothing arrives: what is missing is lost.
                if b.producers_done.load(Ordering::Acquire) != 0 {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(100) {
                        return false;
                    }
                }
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

/// Futex mode: sleep until the fill count is no longer `seen`. The waiter
/// count is raised before the kernel re-checks the word, so a change made
/// before the check is seen and one made after it finds a waiter to wake:
/// no lost wake-up. The timeout is only a safety net.
fn sleep_while(b: &Buffer, seen: u32) {
    b.waiters.fetch_add(1, Ordering::SeqCst);
    futex_wait(&b.count, seen, Some(Duration::from_millis(100)));
    b.waiters.fetch_sub(1, Ordering::SeqCst);
}

fn wake(b: &Buffer) {
    if b.waiters.load(Ordering::SeqCst) > 0 {
        futex_wake(&b.count, i32::MAX);
    }
}

/// Runs and prints; exit 1 with `--check` if the buffer lost, duplicated
/// or tore items.
pub fn main(cfg: &Config, check: bool, json: bool) -> anyhow::Result<ExitCode> {
    cfg.validate()?;
    if !json {
        println!(
            "lab7-buffer: {} producer(s) and {} consumer(s), separate processes, share a ring of {} slot(s) in one region; {} items each; sync = {}\n",
            cfg.producers,
            cfg.consumers,
            cfg.slots,
            group(cfg.items),
            match cfg.sync {
                BufferSync::None => "none",
                BufferSync::Sem => "sem",
                BufferSync::Futex => "futex",
            }
        );
    }
    let r = run(cfg)?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("produced      {:>12}", group(r.produced));
        println!("consumed      {:>12}", group(r.consumed));
        println!("exactly once  {:>12}", group(r.exactly_once));
        println!("lost          {:>12}", group(r.lost));
        println!("duplicated    {:>12}", group(r.duplicated));
        println!(
            "torn          {:>12}   (checksum did not match: a mix of two items)",
            group(r.torn)
        );
        println!("elapsed       {:>12}", duration_ns(r.elapsed_ns));
        println!(
            "\nverdict: {}",
            if r.correct() {
                "every item was consumed exactly once and intact"
            } else {
                "BROKEN: see the counts above"
            }
        );
        println!("\nWhat to notice:");
        match cfg.sync {
            BufferSync::None => println!(
                "- Without synchronisation producers overwrite slots not yet read (lost), consumers read the same slot twice (duplicated) or while it is half written (torn). Each of these is a bug a test can miss on a lucky run."
            ),
            BufferSync::Sem => println!(
                "- empty counts free slots and full counts filled ones, so producers sleep when the ring is full and consumers when it is empty; mutex makes the head/tail update one step. Order matters: waiting on mutex before empty can deadlock."
            ),
            BufferSync::Futex => println!(
                "- One futex lock guards the ring; the fill count doubles as a futex word, so a producer sleeps in the kernel until a consumer changes it (and vice versa): a condition variable made of one word."
            ),
        }
    }
    if check && !r.correct() {
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
