//! `lab12-rwlock`: a readers–writer lock in the region, readers that prove
//! a multi-word record is never torn, and writer starvation measured.
//!
//! The record is [`WORDS`] `u64` words that all hold the same version. A
//! writer, under the write lock, increments every word one at a time (so
//! between its first and last store the record is torn); a reader, under
//! the read lock, reads all the words again and again for `--read-us` and
//! counts every read where they differ. Readers run continuously, back to
//! back, overlapping one another; each writer asks for the lock `--writes`
//! times, a millisecond apart, and records how long each request waited.
//!
//! - `--impl pthread`: glibc's process-shared `pthread_rwlock_t`, of kind
//!   `PTHREAD_RWLOCK_PREFER_READER_NP` or
//!   `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`;
//! - `--impl futex`: shmlab's futex rwlock ([`shm_monitor::FutexRwLock`]);
//! - `--impl none`: no lock, to see torn reads.
//!
//! Under `--prefer reader` a new reader enters whenever no writer is
//! inside, so overlapping readers can keep the lock shared indefinitely and
//! a writer waits until the readers happen to all be out at once: its wait
//! times grow long-tailed, and some requests are not served before the run
//! ends (starvation). Under `--prefer writer` a waiting writer holds new
//! readers back and gets in once the readers inside finish.
//!
//! `--check` fails on a torn read, a lost write or a request never served,
//! and says which. Writer preference is the default, so that `--check`
//! with the defaults judges the lock (a correct one passes); starvation is
//! what `--prefer reader` is for, and `--check` then reports it as writer
//! starvation, not as a broken lock.

use crate::fmt::{duration_ns, group};
use anyhow::{Context, bail};
use shm::process::Crew;
use shm::{CachePadded, InitCtx, Region, RegionOptions, Shared, ShmName};
use shm_futex::Gate;
use shm_monitor::{FutexRwLock, Policy, PthreadRwLock, RwLock};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Words in the record.
pub const WORDS: usize = 8;
/// Most readers plus writers.
pub const MAX_WORKERS: u32 = 32;
/// Most write requests a run records (writers × writes each).
pub const MAX_WRITES: u64 = 1 << 16;
/// How long one lock wait lasts before a worker looks for `stop`.
const SLICE: Duration = Duration::from_millis(50);

/// Which lock guards the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impl {
    /// glibc's process-shared `pthread_rwlock_t`.
    Pthread,
    /// shmlab's futex rwlock.
    Futex,
    /// No lock at all: see torn reads.
    None,
}

impl Impl {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Pthread => "pthread",
            Impl::Futex => "futex",
            Impl::None => "none",
        }
    }
}

/// Whom the lock prefers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    /// Readers: new readers enter while others read (the writer starves).
    Reader,
    /// Writers: a waiting writer holds new readers back.
    Writer,
}

impl Prefer {
    fn policy(self) -> Policy {
        match self {
            Prefer::Reader => Policy::Reader,
            Prefer::Writer => Policy::Writer,
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Prefer::Reader => "reader",
            Prefer::Writer => "writer",
        }
    }
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Reader workers.
    pub readers: u32,
    /// Writer workers.
    pub writers: u32,
    /// Write requests per writer.
    pub writes: u64,
    /// How long a reader holds the read lock each time.
    pub read_hold: Duration,
    /// The lock.
    pub imp: Impl,
    /// Its policy.
    pub prefer: Prefer,
    /// Threads instead of processes.
    pub threads: bool,
    /// The run ends after this long even if writes are still waiting.
    pub limit: Duration,
}

impl Config {
    /// Checks the limits.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.readers == 0 || self.writers == 0 {
            bail!("the lab needs at least 1 reader and 1 writer");
        }
        if self.readers + self.writers > MAX_WORKERS {
            bail!(
                "{} readers + {} writers is more than this lab starts ({MAX_WORKERS}); use fewer",
                self.readers,
                self.writers
            );
        }
        let total = self.writes.checked_mul(self.writers as u64);
        if !matches!(total, Some(t) if t > 0 && t <= MAX_WRITES) {
            bail!("--writes x --writers must be between 1 and {MAX_WRITES}");
        }
        if self.read_hold > Duration::from_millis(100) {
            bail!("--read-us above 100000 makes every read last ages; use less");
        }
        if self.limit < Duration::from_millis(100) || self.limit > Duration::from_secs(600) {
            bail!("--secs must be between 0.1 and 600");
        }
        Ok(())
    }
}

shm::code_enum! {
    /// How a worker ends.
    enum WorkerExit: i32 {
        /// Did its share (or read until the writers were done).
        Done = 0,
        /// Stopped by the time limit or a gone parent.
        Stopped = 1,
        /// Could not open the region.
        NoRegion = 3,
    }
}

/// The region's payload.
#[repr(C)]
struct Record {
    /// The start gate: workers count themselves in and sleep on it.
    gate: CachePadded<Gate>,
    /// Set by the parent at the time limit.
    stop: CachePadded<AtomicU32>,
    /// Writers finished.
    writers_done: CachePadded<AtomicU32>,
    parent: AtomicI32,
    pthread: CachePadded<PthreadRwLock>,
    futex: CachePadded<FutexRwLock>,
    /// The record: every word holds the same version.
    words: CachePadded<[AtomicU64; WORDS]>,
    reads: CachePadded<AtomicU64>,
    torn: CachePadded<AtomicU64>,
    /// Write requests served, and each one's wait in ns.
    served: CachePadded<AtomicU64>,
    /// The longest wait of a request the time limit cut short, in ns.
    starved_ns: CachePadded<AtomicU64>,
    waits: [AtomicU64; MAX_WRITES as usize],
}
shm::any_bits!(Record {
    gate,
    stop,
    writers_done,
    parent,
    pthread,
    futex,
    words,
    reads,
    torn,
    served,
    starved_ns,
    waits,
});

// SAFETY: repr(C); atomics and two readers-writer locks, the pthread one
// initialised in place with PTHREAD_PROCESS_SHARED, the futex one written
// in place; all interior-mutable.
unsafe impl Shared for Record {
    type Init = (Prefer, i32);

    fn type_name() -> String {
        "lab12/rwlock-record".into()
    }

    unsafe fn init_in_place(
        this: *mut Self,
        (prefer, parent): Self::Init,
        _ctx: &InitCtx<'_>,
    ) -> Result<(), String> {
        // SAFETY: `this` is zeroed, aligned and ours alone (trait contract);
        // fields are reached through raw pointers before any reference.
        unsafe {
            (*this).parent.store(parent, Ordering::Relaxed);
            PthreadRwLock::init(&raw mut (*this).pthread.0, prefer.policy())
                .map_err(|e| e.to_string())?;
            FutexRwLock::init(&raw mut (*this).futex.0, prefer.policy());
        }
        Ok(())
    }
}

/// No lock: every acquisition succeeds at once.
struct NoLock;

impl RwLock for NoLock {
    const NAME: &'static str = "none";
    fn read(&self, _: Duration) -> bool {
        true
    }
    fn read_unlock(&self) {}
    fn write(&self, _: Duration) -> bool {
        true
    }
    fn write_unlock(&self) {}
}

/// Writer wait times, in ns.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Waits {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Longest.
    pub max_ns: u64,
}

/// The outcome of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The lock.
    #[serde(rename = "impl")]
    pub imp: Impl,
    /// Its policy.
    pub prefer: Prefer,
    /// `procs` or `threads`.
    pub kind: &'static str,
    /// Readers.
    pub readers: u32,
    /// Writers.
    pub writers: u32,
    /// Reads of the whole record.
    pub reads: u64,
    /// Reads that found the words different.
    pub torn: u64,
    /// Write requests asked for.
    pub writes_asked: u64,
    /// Write requests served before the time limit.
    pub writes_served: u64,
    /// The record's version at the end (must equal `writes_served`).
    pub final_version: u64,
    /// Whether every word held `final_version`.
    pub record_intact: bool,
    /// Waits of the served requests.
    pub writer_wait: Option<Waits>,
    /// How long the longest unserved request had waited when the time
    /// limit ended the run (0: none was cut short).
    pub starved_ns: u64,
    /// From the start to the end.
    pub elapsed_ns: u64,
}

impl Report {
    /// No torn read, no lost write, every write served.
    pub fn correct(&self) -> bool {
        self.failures().is_empty()
    }

    /// What went wrong, one `kind: details` phrase each, naming exactly
    /// what failed: torn reads, a torn record, lost writes, or writer
    /// starvation (requests the time limit found still waiting: what
    /// reader preference does by design, and what `--check` reports then).
    /// Empty if nothing did.
    pub fn failures(&self) -> Vec<String> {
        let mut failed = Vec::new();
        if self.torn > 0 {
            failed.push(format!(
                "torn reads: {} of {} reads saw the record half-written",
                group(self.torn),
                group(self.reads)
            ));
        }
        if !self.record_intact {
            failed.push("torn record: its words differ at the end".to_string());
        }
        if self.final_version != self.writes_served {
            failed.push(format!(
                "lost writes: {} write(s) served but the record's version is {}",
                group(self.writes_served),
                group(self.final_version)
            ));
        }
        if self.writes_served < self.writes_asked {
            let why = match self.prefer {
                Prefer::Reader if self.imp != Impl::None => {
                    "; reader preference lets overlapping readers keep the lock, --prefer writer serves every request"
                }
                _ => "",
            };
            failed.push(format!(
                "writer starvation: only {} of {} write requests served before the time limit, the one still waiting had waited {}{why}",
                group(self.writes_served),
                group(self.writes_asked),
                duration_ns(self.starved_ns)
            ));
        }
        failed
    }
}

#[derive(Clone, Copy)]
enum Role {
    Reader,
    Writer,
}

/// Runs one experiment.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    cfg.validate()?;
    let name = ShmName::unique("lab12-rwlock");
    let region =
        Region::<Record>::create(&name, &RegionOptions::default(), (cfg.prefer, shm::pid()))?;
    let roles: Vec<Role> = (0..cfg.writers)
        .map(|_| Role::Writer)
        .chain((0..cfg.readers).map(|_| Role::Reader))
        .collect();
    let n = roles.len() as u32;
    let elapsed_ns = if cfg.threads {
        std::thread::scope(|s| -> anyhow::Result<u64> {
            let r: &Record = &region;
            let handles: Vec<_> = roles
                .iter()
                .map(|&role| s.spawn(move || worker(r, role, cfg, false)))
                .collect();
            let t0 = crate::workers::open_gate(&r.gate, n)?;
            while !handles.iter().all(|h| h.is_finished()) {
                if t0.elapsed() > cfg.limit {
                    r.stop.store(1, Ordering::Release);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let elapsed = t0.elapsed().as_nanos() as u64;
            for h in handles {
                if h.join().is_err() {
                    bail!("a worker thread failed");
                }
            }
            Ok(elapsed)
        })?
    } else {
        let mut crew = Crew::new();
        let outcome = (|| -> anyhow::Result<u64> {
            for (w, &role) in roles.iter().enumerate() {
                let (name, cfg) = (name.clone(), *cfg);
                // SAFETY: a worker opens the record by name and works on it
                // with its rwlock and atomics; the lab's only other thread
                // is the signal thread, which holds no lock across the fork,
                // and the body uses nothing the parent owns.
                let child = unsafe {
                    shm::process::fork_child(move || {
                        let Ok(mine) = Region::<Record>::open(&name, &RegionOptions::default())
                        else {
                            return WorkerExit::NoRegion.into();
                        };
                        worker(&mine, role, &cfg, true).into()
                    })
                }
                .with_context(|| format!("starting worker {w}; use fewer"))?;
                crew.push_process(child);
            }
            let t0 = crate::workers::open_gate(&region.gate, n)?;
            loop {
                let all = crew.poll();
                let exited = crate::workers::statuses(&crew, -1);
                if exited.iter().flatten().any(|&c| {
                    !matches!(
                        WorkerExit::try_from(c),
                        Ok(WorkerExit::Done | WorkerExit::Stopped)
                    )
                }) {
                    bail!("a worker ended abnormally (killed, or it could not open the region)");
                }
                if all {
                    break;
                }
                if t0.elapsed() > cfg.limit {
                    region.stop.store(1, Ordering::Release);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(t0.elapsed().as_nanos() as u64)
        })();
        region.stop.store(1, Ordering::Release);
        crew.stop(Duration::from_secs(5));
        outcome?
    };
    let served = region.served.load(Ordering::Acquire);
    let mut waits: Vec<u64> = region.waits[..served as usize]
        .iter()
        .map(|w| w.load(Ordering::Relaxed))
        .collect();
    waits.sort_unstable();
    let pick = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    let writer_wait = (!waits.is_empty()).then(|| Waits {
        p50_ns: pick(0.50),
        p99_ns: pick(0.99),
        max_ns: *waits.last().unwrap_or(&0),
    });
    let words: Vec<u64> = region
        .words
        .0
        .iter()
        .map(|w| w.load(Ordering::Acquire))
        .collect();
    Ok(Report {
        imp: cfg.imp,
        prefer: cfg.prefer,
        kind: if cfg.threads { "threads" } else { "procs" },
        readers: cfg.readers,
        writers: cfg.writers,
        reads: region.reads.load(Ordering::Acquire),
        torn: region.torn.load(Ordering::Acquire),
        writes_asked: cfg.writes * cfg.writers as u64,
        writes_served: served,
        final_version: words[0],
        record_intact: words.iter().all(|&w| w == words[0]),
        writer_wait,
        starved_ns: region.starved_ns.load(Ordering::Acquire),
        elapsed_ns,
    })
}

fn worker(r: &Record, role: Role, cfg: &Config, process: bool) -> WorkerExit {
    // A worker process dies with the lab (the parent-death signal).
    if r.gate.arrive_and_wait(|| true).is_err() {
        return WorkerExit::Stopped;
    }
    // A process whose parent dies is killed by the kernel anyway
    // (`shm::process::fork_child`'s parent-death signal); the `getppid`
    // is a cheap second guard that ends it cleanly.
    let stopped = || {
        r.stop.load(Ordering::Acquire) != 0
            || (process && nix::unistd::getppid().as_raw() != r.parent.load(Ordering::Relaxed))
    };
    let done = match (cfg.imp, role) {
        (Impl::Pthread, Role::Reader) => reader(r, &r.pthread.0, cfg, &stopped),
        (Impl::Futex, Role::Reader) => reader(r, &r.futex.0, cfg, &stopped),
        (Impl::None, Role::Reader) => reader(r, &NoLock, cfg, &stopped),
        (Impl::Pthread, Role::Writer) => writer(r, &r.pthread.0, cfg, &stopped),
        (Impl::Futex, Role::Writer) => writer(r, &r.futex.0, cfg, &stopped),
        (Impl::None, Role::Writer) => writer(r, &NoLock, cfg, &stopped),
    };
    if done {
        WorkerExit::Done
    } else {
        WorkerExit::Stopped
    }
}

/// Reads back to back until every writer is done; `false` if stopped.
fn reader<L: RwLock>(r: &Record, l: &L, cfg: &Config, stopped: &dyn Fn() -> bool) -> bool {
    let (mut reads, mut torn) = (0u64, 0u64);
    let ok = loop {
        if r.writers_done.load(Ordering::Acquire) == cfg.writers {
            break true;
        }
        if stopped() {
            break false;
        }
        if !l.read(SLICE) {
            continue;
        }
        let t0 = Instant::now();
        loop {
            let v = r.words.0[0].load(Ordering::Relaxed);
            if r.words.0[1..]
                .iter()
                .any(|w| w.load(Ordering::Relaxed) != v)
            {
                torn += 1;
            }
            reads += 1;
            if t0.elapsed() >= cfg.read_hold {
                break;
            }
        }
        l.read_unlock();
    };
    r.reads.fetch_add(reads, Ordering::Relaxed);
    r.torn.fetch_add(torn, Ordering::Relaxed);
    ok
}

/// Asks for the write lock `cfg.writes` times, 1 ms apart, and records each
/// wait; `false` if stopped first.
fn writer<L: RwLock>(r: &Record, l: &L, cfg: &Config, stopped: &dyn Fn() -> bool) -> bool {
    let mut ok = true;
    'writes: for _ in 0..cfg.writes {
        std::thread::sleep(Duration::from_millis(1));
        let t0 = Instant::now();
        loop {
            let got = l.write(SLICE);
            if stopped() {
                // The time limit came first: this request starved (also if
                // it got in only because the readers were stopped).
                if got {
                    l.write_unlock();
                }
                let waited = t0.elapsed().as_nanos() as u64;
                r.starved_ns.fetch_max(waited, Ordering::AcqRel);
                ok = false;
                break 'writes;
            }
            if got {
                break;
            }
        }
        let waited = t0.elapsed().as_nanos() as u64;
        for w in r.words.0.iter() {
            // A load and a store, not fetch_add: without a lock, two
            // writers lose increments too.
            let v = w.load(Ordering::Relaxed);
            std::hint::spin_loop();
            w.store(v + 1, Ordering::Relaxed);
        }
        let i = r.served.fetch_add(1, Ordering::AcqRel);
        l.write_unlock();
        r.waits[i as usize].store(waited, Ordering::Relaxed);
    }
    r.writers_done.fetch_add(1, Ordering::AcqRel);
    ok
}

/// Runs, prints; `--check` exits 1 on a torn read, a lost write or an
/// unserved write request (writer starvation), and says which of them it
/// saw. The lab's defaults (writer preference) pass with a correct lock;
/// `--prefer reader` shows starvation, which `--check` then reports as
/// such.
pub fn main(cfg: &Config, check: bool, json: bool) -> anyhow::Result<ExitCode> {
    let r = run(cfg)?;
    crate::emit(json, &r, |r| print_report(cfg, r))?;
    let failures = r.failures();
    Ok(crate::check_exit(
        check && !failures.is_empty(),
        json,
        &failures.join("; "),
    ))
}

fn print_report(cfg: &Config, r: &Report) {
    let kind = if cfg.threads { "threads" } else { "processes" };
    println!(
        "lab12-rwlock: {} reader(s) and {} writer(s) ({kind}) on an {WORDS}-word record; --impl {} --prefer {}; readers hold the lock {} each time, back to back; each writer asks {} times, 1 ms apart; time limit {}",
        r.readers,
        r.writers,
        cfg.imp.name(),
        cfg.prefer.name(),
        duration_ns(cfg.read_hold.as_nanos() as u64),
        group(cfg.writes),
        duration_ns(cfg.limit.as_nanos() as u64)
    );
    println!();
    println!("reads            {:>12}", group(r.reads));
    println!(
        "torn reads       {:>12}   (words differed under the read lock)",
        group(r.torn)
    );
    println!(
        "writes served    {:>12}   of {}",
        group(r.writes_served),
        group(r.writes_asked)
    );
    println!(
        "final version    {:>12}   ({})",
        group(r.final_version),
        if r.record_intact && r.final_version == r.writes_served {
            "every word, one per write: no write lost"
        } else {
            "BROKEN: words differ or writes were lost"
        }
    );
    match &r.writer_wait {
        Some(w) => println!(
            "writer wait      p50 {}  p99 {}  max {}",
            duration_ns(w.p50_ns),
            duration_ns(w.p99_ns),
            duration_ns(w.max_ns)
        ),
        None => println!("writer wait      no write request was ever served"),
    }
    println!("elapsed          {:>12}", duration_ns(r.elapsed_ns));
    if r.writes_served < r.writes_asked {
        println!(
            "\nSTARVATION: only {} of {} write requests served before the time limit; the request still waiting then had waited {}",
            group(r.writes_served),
            group(r.writes_asked),
            duration_ns(r.starved_ns)
        );
    }
    let failures = r.failures();
    if failures.is_empty() {
        println!("\nverdict: no torn read, no lost write, every write served");
    } else {
        let kinds: Vec<&str> = failures
            .iter()
            .map(|f| f.split(':').next().unwrap_or(f))
            .collect();
        println!("\nverdict: {} (see above)", kinds.join(", "));
    }
    println!("\nWhat to notice:");
    match (cfg.imp, cfg.prefer) {
        (Impl::None, _) => println!(
            "- Without a lock, readers see the record half-updated (torn): the read lock is what keeps the words consistent. Writers that overlapped (load, then store) would lose increments too, and the final version would fall short."
        ),
        (_, Prefer::Reader) => println!(
            "- Readers overlap, so the lock is rarely free of readers: a writer waits until they all happen to be out at once. Its wait time is long-tailed, and with enough readers it never gets in (starvation)."
        ),
        (_, Prefer::Writer) => println!(
            "- A waiting writer holds new readers back: the readers inside finish and the writer gets in, so its wait is bounded by one read hold. The price: readers wait for writers."
        ),
    }
}
