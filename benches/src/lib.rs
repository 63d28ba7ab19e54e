//! Shared pieces of the shmlab benchmarks and of `bench-report`: the list
//! of cases (every lock, and the references run beside them), the criterion
//! group and benchmark names both sides agree on, where criterion writes,
//! the timing budget (full or quick), and the workloads themselves; in
//! [`fairness`], the fairness experiment and the results file it writes; in
//! [`ladder`], the latency ladder's results file.
//!
//! Every measurement here checks its own result: a lock benchmark that loses
//! an update panics instead of reporting a number.

pub mod fairness;
pub mod ladder;

use anyhow::Context as _;
use race::shared::{ByLock, RaceShared};
use race::{Config, LocalLock, ModeVisitor, SyncMode, TrialResult, WorkerKind};
use shm::lock::{Lock, RawLock, RawLockTimed};
use shm::{Region, RegionOptions, ShmName};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to run every benchmark briefly (a smoke check of about a
/// minute) instead of the full set (under 15 minutes on 2 cores).
pub const QUICK_ENV: &str = "SHMLAB_BENCH_QUICK";

/// Whether [`QUICK_ENV`] asks for the quick run.
pub fn quick() -> bool {
    std::env::var_os(QUICK_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The command that runs every bench of this crate.
pub const BENCH_COMMAND: &str = concat!("cargo bench -p ", env!("CARGO_PKG_NAME"));

/// Criterion group names (directories under `target/criterion`).
pub mod group {
    /// One lock/unlock around one increment, one thread, lock in a region.
    pub const UNCONTENDED: &str = "uncontended";
    /// N threads of one process hammering one lock.
    pub const THREADS: &str = "contended_threads";
    /// N separate processes hammering one lock in a region they all map.
    pub const PROCS: &str = "contended_procs";
    /// As [`PROCS`], for the spin locks and the futex lock only, with a
    /// critical section lengthened by [`HOLD`](super::HOLD) `spin_loop`
    /// rounds: long enough that a holder is preempted while holding.
    pub const PROCS_HELD: &str = "contended_procs_held";
    /// One small message there and back between two processes.
    pub const ROUND_TRIP: &str = "ipc_round_trip";
    /// A stream of bytes in fixed-size messages from one process to another.
    pub const STREAM: &str = "ipc_stream";

    /// Every group, in report order.
    pub const ALL: [&str; 6] = [UNCONTENDED, THREADS, PROCS, PROCS_HELD, ROUND_TRIP, STREAM];

    /// The bench target (`cargo bench --bench <target>`) that measures a
    /// group.
    pub fn bench_target(group: &str) -> &'static str {
        match group {
            ROUND_TRIP | STREAM => "ipc",
            _ => "locks",
        }
    }

    /// The command that measures just `group`.
    pub fn bench_command(group: &str) -> String {
        format!(
            "{} --bench {} -- {group}",
            super::BENCH_COMMAND,
            bench_target(group)
        )
    }
}

/// Where criterion writes its results, found the way criterion finds it:
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the target
/// directory `cargo metadata` names (under `cargo bench` and `cargo run`,
/// `$CARGO` is set), else `target/criterion`.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let out = std::process::Command::new(std::env::var_os("CARGO")?)
                .args(["metadata", "--format-version", "1", "--no-deps"])
                .output()
                .ok()?;
            let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            meta["target_directory"].as_str().map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("criterion")
}

/// The round-trip benchmarks (`ipc::Transport` names), in table order.
pub const ROUND_TRIPS: [&str; 5] = ["pipe", "fifo", "shm-futex", "shm-spin", "shm-adaptive"];

/// How a stream benchmark moves its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// A pipe or FIFO (`ipc::stream`).
    Fd(ipc::Transport),
    /// The shared-memory ring, of this size, waiting and received this way.
    Ring(ipc::ShmStream),
}

impl Stream {
    /// `total` bytes in `msg`-byte messages, every byte checked by the
    /// receiver; the time of the stream alone.
    pub fn run(self, total: u64, msg: usize) -> ipc::Result<Duration> {
        match self {
            Stream::Fd(t) => ipc::stream(t, total, msg),
            Stream::Ring(how) => ipc::shm_stream_with(total, msg, &how),
        }
    }
}

/// A ring stream case (a `const` `ipc::ShmStream`).
const fn ring(signal: ipc::Signal, capacity: usize, receive: ipc::Receive) -> Stream {
    Stream::Ring(ipc::ShmStream {
        signal,
        capacity,
        receive,
    })
}

/// The stream benchmarks, in table order: their names and how they move
/// bytes. `ring*` without a size hold [`ipc::DEFAULT_CAPACITY`] (1 MiB)
/// and check in place; `ring-copy-out` copies each message out first (two
/// copies, as a pipe); `ring-256K` and `ring-4M` show what the ring's size
/// does (four messages in flight, or 64).
pub const STREAMS: [(&str, Stream); 7] = {
    use ipc::Receive::{CopyOut, InPlace};
    use ipc::Signal::{Adaptive, Futex, Spin};
    const MIB: usize = 1 << 20;
    [
        ("pipe", Stream::Fd(ipc::Transport::Pipe)),
        ("ring", ring(Futex, ipc::DEFAULT_CAPACITY, InPlace)),
        ("ring-spin", ring(Spin, ipc::DEFAULT_CAPACITY, InPlace)),
        (
            "ring-adaptive",
            ring(Adaptive, ipc::DEFAULT_CAPACITY, InPlace),
        ),
        ("ring-copy-out", ring(Futex, ipc::DEFAULT_CAPACITY, CopyOut)),
        ("ring-256K", ring(Futex, MIB / 4, InPlace)),
        ("ring-4M", ring(Futex, 4 * MIB, InPlace)),
    ]
};

/// Contender counts for the contended groups.
pub const CONTENDERS: [u32; 3] = [2, 4, 8];

/// `spin_loop` rounds inside every critical section of
/// [`group::PROCS_HELD`] (`lab4-race --hold 200`): about 2 µs on the
/// machines of BENCHMARKS.md, some hundred times the bare increment, so that
/// with more processes than CPUs a holder is often preempted while holding.
pub const HOLD: u32 = 200;

/// The cases of [`group::PROCS_HELD`]: the spin lock that never yields
/// beside the one that yields and the futex lock that sleeps.
pub const HELD_CASES: [Case; 3] = [
    Case(SyncMode::SpinPure),
    Case(SyncMode::Spin),
    Case(SyncMode::Futex),
];

/// A benchmark case: a sync mode of the race's registry ([`SyncMode`]),
/// every one but `none` (which loses updates by design). The lock, its name
/// and how it runs all come from the registry; the benches add nothing per
/// lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Case(pub SyncMode);

const N_CASES: usize = SyncMode::ALL.len() - 1;

impl Case {
    /// Every case, in table order: the region locks, then the references
    /// measured beside them (a bare `fetch_add`, the thread-only mutexes).
    pub const ALL: [Case; N_CASES] = {
        let mut out = [Case(SyncMode::Atomic); N_CASES];
        let mut n = 0;
        // Two passes over the registry: region locks first (everything but
        // none, atomic and the thread-only locks), then the references.
        let mut pass = 0;
        while pass < 2 {
            let mut i = 0;
            while i < SyncMode::ALL.len() {
                let m = SyncMode::ALL[i];
                let reference =
                    matches!(m, SyncMode::Atomic | SyncMode::Std | SyncMode::ParkingLot);
                if !matches!(m, SyncMode::None) && reference == (pass == 1) {
                    out[n] = Case(m);
                    n += 1;
                }
                i += 1;
            }
            pass += 1;
        }
        assert!(n == N_CASES);
        out
    };

    /// The benchmark name: the mode's name, except that `atomic` is measured
    /// as `fetch_add` (the name of the instruction-level reference).
    pub fn name(self) -> &'static str {
        match self.0 {
            SyncMode::Atomic => "fetch_add",
            m => m.name(),
        }
    }

    /// Parses a benchmark name.
    pub fn parse(s: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether it can run between processes.
    pub fn cross_process(self) -> bool {
        self.0.cross_process()
    }

    /// Whether it is one of shmlab's locks (state in the region).
    pub fn is_lock(self) -> bool {
        self.0.is_region_lock()
    }

    /// The cases that are shmlab's locks, in table order.
    pub fn locks() -> impl Iterator<Item = Case> {
        Case::ALL.into_iter().filter(|c| c.is_lock())
    }

    /// One race trial: `workers` contenders of `kind`, `iters` increments
    /// each, released together by the race's start barrier. Fails if any
    /// update was lost.
    pub fn contend(
        self,
        kind: WorkerKind,
        workers: u32,
        iters: u64,
    ) -> anyhow::Result<TrialResult> {
        self.contend_held(kind, workers, iters, 0)
    }

    /// [`contend`](Case::contend) with each critical section lengthened by
    /// `hold` `spin_loop` rounds between the increment's load and store
    /// (`race::Config::hold`, `lab4-race --hold`).
    pub fn contend_held(
        self,
        kind: WorkerKind,
        workers: u32,
        iters: u64,
        hold: u32,
    ) -> anyhow::Result<TrialResult> {
        let cfg = Config {
            sync: self.0,
            kind,
            workers,
            iters,
            hold,
        };
        let r = race::run_trial(&cfg, 1, &mut |_, _| {})
            .map_err(|e| anyhow::anyhow!("{} with {workers} {kind}: {e}", self.name()))?;
        if r.lost != 0 || r.actual != r.expected {
            anyhow::bail!(
                "{} with {workers} {kind} lost {} of {} updates: the lock does not exclude",
                self.name(),
                r.lost,
                r.expected
            );
        }
        Ok(r)
    }
}

/// C's `counter++` as the race does it: a separate load and store, made safe
/// only by the lock around it.
#[inline(always)]
fn increment(counter: &AtomicU64) {
    let v = counter.load(Ordering::Relaxed);
    counter.store(v.wrapping_add(1), Ordering::Relaxed);
}

/// An uncontended-lock workload: a region (the race's layout: lock state and
/// counter each on their own cache line) created once, then measured any
/// number of times, attaching to the lock before each timed loop.
pub struct Uncontended {
    run: Box<dyn FnMut(u64) -> Duration>,
}

impl std::fmt::Debug for Uncontended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Uncontended")
    }
}

impl Uncontended {
    fn new<L: RawLock + 'static>() -> anyhow::Result<Self> {
        let name = ShmName::unique(&format!("bench-{}", L::NAME));
        let region = Region::<RaceShared<ByLock<L>>>::create(&name, &RegionOptions::default(), 1)?;
        let run = move |iters: u64| -> Duration {
            // Attached per measurement, outside the timed loop (for a named
            // semaphore this is its `sem_open`).
            let lock = Lock::<L>::attach(&region.lock.0)
                .unwrap_or_else(|e| panic!("attach {}: {e}", L::NAME));
            let counter = &region.counter.0;
            counter.store(0, Ordering::Relaxed);
            let start = Instant::now();
            for _ in 0..iters {
                let g = lock
                    .lock()
                    .unwrap_or_else(|e| panic!("lock {}: {e}", L::NAME));
                increment(counter);
                drop(black_box(g));
            }
            let elapsed = start.elapsed();
            let got = counter.load(Ordering::Relaxed);
            assert_eq!(
                got,
                iters,
                "{}: counter is {got} after {iters} locked increments",
                L::NAME
            );
            elapsed
        };
        Ok(Uncontended { run: Box::new(run) })
    }

    /// A reference case measured uncontended on one thread: `body` does
    /// `iters` increments of the counter in a region (race layout, no lock
    /// state), timed and checked.
    fn reference(case: Case, body: impl Fn(&AtomicU64, u64) + 'static) -> anyhow::Result<Self> {
        let name = ShmName::unique("bench-ref");
        let region = Region::<RaceShared<race::shared::NoLock>>::create(
            &name,
            &RegionOptions::default(),
            1,
        )?;
        let run = move |iters: u64| -> Duration {
            let counter = &region.counter.0;
            counter.store(0, Ordering::Relaxed);
            let start = Instant::now();
            body(counter, iters);
            let elapsed = start.elapsed();
            let got = counter.load(Ordering::Relaxed);
            assert_eq!(
                got,
                iters,
                "{}: counter is {got} after {iters} increments",
                case.name()
            );
            elapsed
        };
        Ok(Uncontended { run: Box::new(run) })
    }

    /// Runs `iters` lock/increment/unlock steps; returns their time.
    pub fn run(&mut self, iters: u64) -> Duration {
        (self.run)(iters)
    }
}

/// The uncontended workload for any case (through the registry's visit).
pub fn uncontended(case: Case) -> anyhow::Result<Uncontended> {
    case.0.visit(UncontendedCase(case))
}

struct UncontendedCase(Case);

impl ModeVisitor for UncontendedCase {
    type Output = anyhow::Result<Uncontended>;
    fn unsynchronised(self) -> Self::Output {
        anyhow::bail!("`none` is not a benchmark case: it loses updates")
    }
    fn fetch_add(self) -> Self::Output {
        Uncontended::reference(self.0, |counter, iters| {
            for _ in 0..iters {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    }
    fn region_lock<L: RawLockTimed + 'static>(self) -> Self::Output {
        Uncontended::new::<L>()
    }
    fn local_lock<M: LocalLock>(self) -> Self::Output {
        let m = M::default();
        Uncontended::reference(self.0, move |counter, iters| {
            for _ in 0..iters {
                black_box(&m).with(|| increment(counter));
            }
        })
    }
}

/// Bootstrap resamples per statistic. Criterion's default, 100 000, costs
/// about 8 s of analysis and plotting per benchmark on this 2-core machine
/// (each distribution plot is a kernel density estimate over every
/// resample); 20 000 gives the same medians with confidence intervals that
/// are a little rougher, and about 1 s.
pub const NRESAMPLES: usize = 20_000;

/// How long criterion spends on each benchmark of a group.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Warm-up per benchmark.
    pub warm_up: Duration,
    /// Measurement per benchmark.
    pub measurement: Duration,
    /// Samples per benchmark (criterion's minimum is 10).
    pub samples: usize,
}

impl Budget {
    /// The budget for a group, full or quick (see [`QUICK_ENV`]). The full
    /// set is sized to finish well inside 15 minutes on 2 cores, including
    /// criterion's analysis and plots; the quick set in about a minute.
    pub fn for_group(group: &str) -> Budget {
        let ms = Duration::from_millis;
        let (warm_up, measurement, samples) = match (quick(), group) {
            (true, group::STREAM) => (ms(100), ms(300), 10),
            (true, _) => (ms(150), ms(300), 10),
            (false, group::UNCONTENDED) => (ms(1000), ms(3000), 50),
            (false, group::THREADS | group::PROCS | group::PROCS_HELD) => (ms(1000), ms(4000), 20),
            (false, group::ROUND_TRIP) => (ms(1000), ms(4000), 30),
            (false, group::STREAM) => (ms(1000), ms(5000), 10),
            (false, _) => (ms(1000), ms(3000), 20),
        };
        Budget {
            warm_up,
            measurement,
            samples,
        }
    }
}

/// Bytes in the stream benchmark: 1 GiB (64 MiB in the quick run).
pub fn stream_bytes() -> u64 {
    if quick() { 64 << 20 } else { 1 << 30 }
}

/// Message size in the stream benchmark: 64 KiB.
pub const STREAM_MSG: usize = ipc::STREAM_MSG;

/// Lists `/dev/shm` entries that this process made (`shmlab-*-<pid>-*`,
/// and named semaphores derived from them): after a benchmark this should
/// be empty.
pub fn leftovers() -> Vec<String> {
    let pid = format!("-{}-", std::process::id());
    std::fs::read_dir(shm::SHM_DIR)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("shmlab") && n.contains(&pid))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a results file a bench wrote as JSON; `Ok(None)` if there is none.
fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("parsing {}", path.display()))
}

/// Writes a results file as JSON (creating its directory), replacing any
/// earlier one in one rename.
fn save_json<T: serde::Serialize>(value: &T, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
