//! Lab 5: parallelism without data-sharing trouble.
//!
//! One job — add up `0 + 1 + ... + (work - 1)` — split into equal slices
//! over 1, 2, ... T threads, five ways:
//!
//! - `shared-mutex`: every step locks one `std::sync::Mutex<u64>`;
//! - `shared-atomic`: every step does one `fetch_add` on one `AtomicU64`;
//! - `local`: each thread adds into a local variable (a register); the
//!   totals are combined once, at the end;
//! - `sharded`: each thread adds into its own counter in memory, each
//!   counter on its own cache line (`CachePadded`); combined at the end;
//! - `false-sharing`: the same, but the counters are packed side by side,
//!   so several share one cache line.
//!
//! Every strategy gets the right answer; they differ only in how much the
//! threads touch the same memory while they work. The first two serialise
//! on one cache line (and the mutex adds a lock/unlock per step); the last
//! one shares a line without sharing any data, and pays almost as much.
//! `local` and `sharded` share nothing on the hot path and scale with the
//! cores.

use crate::fmt::{self, group, ratio, secs};
use shm::CachePadded;
use std::hint::black_box;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Most steps accepted: the answer must fit a u64 (`work² / 2 < 2⁶⁴`).
pub const MAX_WORK: u64 = 4_000_000_000;
/// Most threads accepted.
pub const MAX_THREADS: u32 = 256;
/// Steps done when `--work` is not given.
pub const DEFAULT_WORK: u64 = 100_000_000;

/// How the threads combine their work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Strategy {
    /// Every step takes one shared std Mutex
    SharedMutex,
    /// Every step does fetch_add on one shared AtomicU64
    SharedAtomic,
    /// Each thread keeps a local total; combined at the end
    Local,
    /// One counter per thread, each on its own cache line
    Sharded,
    /// One counter per thread, packed side by side (sharing cache lines)
    FalseSharing,
    /// Every strategy, then a comparison
    All,
}

impl Strategy {
    /// The five real strategies, best first.
    pub const EACH: [Strategy; 5] = [
        Strategy::Local,
        Strategy::Sharded,
        Strategy::FalseSharing,
        Strategy::SharedAtomic,
        Strategy::SharedMutex,
    ];

    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SharedMutex => "shared-mutex",
            Strategy::SharedAtomic => "shared-atomic",
            Strategy::Local => "local",
            Strategy::Sharded => "sharded",
            Strategy::FalseSharing => "false-sharing",
            Strategy::All => "all",
        }
    }

    /// What one step does, in a line.
    pub fn describe(self) -> &'static str {
        match self {
            Strategy::SharedMutex => {
                "every step: lock one shared Mutex<u64>, add, unlock (the lock and the total live on shared cache lines)"
            }
            Strategy::SharedAtomic => {
                "every step: one fetch_add on one shared AtomicU64 (a locked read-modify-write of one shared cache line)"
            }
            Strategy::Local => {
                "every step: add into a local variable; each thread's total is combined once, at the end"
            }
            Strategy::Sharded => {
                "every step: load, add, store this thread's own counter, alone on its 128-byte line; combined at the end"
            }
            Strategy::FalseSharing => {
                "every step: load, add, store this thread's own counter, packed next to the others' (8 bytes apart)"
            }
            Strategy::All => "all five strategies",
        }
    }
}

/// Flags of `lab5-threads`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lab5-threads",
    version,
    about = "Lab 5: split one job over threads five ways, and see which ways scale",
    after_help = "The job is to add up 0 + 1 + ... + (work-1). Watch how the time changes as threads are added: \
                  a strategy that shares nothing on the hot path gets faster up to the number of cores; one that \
                  shares a cache line — even without sharing any data — gets slower."
)]
pub struct Cli {
    /// How the threads combine their work
    #[arg(long, value_enum, default_value = "all")]
    pub strategy: Strategy,
    /// Run with 1, 2, ... up to this many threads [default: 2 × the cores]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_THREADS as i64))]
    pub threads: Option<u32>,
    /// Steps in the whole job (split over the threads): 100000000, 100_000_000 or 100M (K, M, G: powers of 1000)
    #[arg(long, default_value = "100M", value_parser = parse_work)]
    pub work: u64,
}

/// Parses a step count: digits with optional `_`, and an optional K, M or
/// G suffix (powers of 1000); 1 to [`MAX_WORK`].
pub fn parse_work(s: &str) -> Result<u64, String> {
    let t: String = s.trim().chars().filter(|&c| c != '_').collect();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1_000),
        Some((i, 'm' | 'M')) => (&t[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&t[..i], 1_000_000_000),
        _ => (&t[..], 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a step count; use e.g. 100000000 or 100M"))?;
    match n.checked_mul(mult) {
        Some(w) if (1..=MAX_WORK).contains(&w) => Ok(w),
        _ => Err(format!("{s:?} is out of range; use 1 to {MAX_WORK} steps")),
    }
}

/// The right answer: `0 + 1 + ... + (work - 1)`.
pub fn expected(work: u64) -> u64 {
    (work as u128 * (work as u128).saturating_sub(1) / 2) as u64
}

/// One timed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trial {
    /// The strategy.
    pub strategy: Strategy,
    /// Threads used.
    pub threads: usize,
    /// Steps in the whole job.
    pub work: u64,
    /// What the threads added up to.
    pub total: u64,
    /// From the moment all threads were released to the last one joined.
    pub elapsed: Duration,
}

impl Trial {
    /// Whether the total is the right answer.
    pub fn right(&self) -> bool {
        self.total == expected(self.work)
    }
}

/// Thread `t`'s slice of `0..work`.
fn slice(work: u64, threads: usize, t: usize) -> std::ops::Range<u64> {
    let at = |k: usize| (work as u128 * k as u128 / threads as u128) as u64;
    at(t)..at(t + 1)
}

/// Counters packed 8 bytes apart, starting at a line boundary so that
/// neighbours really share a line.
#[repr(C, align(128))]
struct Packed([AtomicU64; 16]);

/// Runs the job once with `threads` threads.
///
/// # Panics
/// If `strategy` is [`Strategy::All`] or `threads` is 0.
pub fn run_once(strategy: Strategy, threads: usize, work: u64) -> Trial {
    assert!(threads > 0, "at least one thread");
    let barrier = Barrier::new(threads + 1);
    let shared_mutex = Mutex::new(0u64);
    let shared_atomic = AtomicU64::new(0);
    let sharded: Vec<CachePadded<AtomicU64>> =
        (0..threads).map(|_| CachePadded::default()).collect();
    let packed: Vec<Packed> = (0..threads.div_ceil(16))
        .map(|_| Packed(std::array::from_fn(|_| AtomicU64::new(0))))
        .collect();
    let (total, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = slice(work, threads, t);
                let (barrier, shared_mutex, shared_atomic) =
                    (&barrier, &shared_mutex, &shared_atomic);
                let own_line: &AtomicU64 = &sharded[t];
                let packed_counter: &AtomicU64 = &packed[t / 16].0[t % 16];
                s.spawn(move || {
                    barrier.wait();
                    // Each worker times itself: the main thread may not get a
                    // core back until the workers are done, so its clock
                    // would start late.
                    let began = Instant::now();
                    let value = match strategy {
                        Strategy::SharedMutex => {
                            for i in range {
                                let mut g = shared_mutex.lock().unwrap_or_else(|e| e.into_inner());
                                *g = g.wrapping_add(black_box(i));
                            }
                            0
                        }
                        Strategy::SharedAtomic => {
                            for i in range {
                                shared_atomic.fetch_add(black_box(i), Ordering::Relaxed);
                            }
                            0
                        }
                        Strategy::Local => {
                            let mut sum = 0u64;
                            for i in range {
                                sum = sum.wrapping_add(black_box(i));
                            }
                            sum
                        }
                        Strategy::Sharded => add_into(own_line, range),
                        Strategy::FalseSharing => add_into(packed_counter, range),
                        Strategy::All => unreachable!("run_once takes one strategy"),
                    };
                    (value, began, Instant::now())
                })
            })
            .collect();
        barrier.wait();
        let mut locals = 0u64;
        let mut first: Option<Instant> = None;
        let mut last: Option<Instant> = None;
        for h in handles {
            let (value, began, ended) = h.join().expect("a worker thread panicked");
            locals = locals.wrapping_add(value);
            first = Some(first.map_or(began, |f| f.min(began)));
            last = Some(last.map_or(ended, |l| l.max(ended)));
        }
        // From the first worker's start to the last one's end.
        let elapsed = match (first, last) {
            (Some(f), Some(l)) => l.saturating_duration_since(f),
            _ => Duration::ZERO,
        };
        // Combine at the end: only now are the per-thread totals read.
        let total = match strategy {
            Strategy::SharedMutex => *shared_mutex.lock().unwrap_or_else(|e| e.into_inner()),
            Strategy::SharedAtomic => shared_atomic.load(Ordering::Relaxed),
            Strategy::Local | Strategy::All => locals,
            Strategy::Sharded => sum_of(sharded.iter().map(|c| &c.0)),
            Strategy::FalseSharing => sum_of(packed.iter().flat_map(|p| p.0.iter()).take(threads)),
        };
        (total, elapsed)
    });
    Trial {
        strategy,
        threads,
        work,
        total,
        elapsed,
    }
}

/// `*counter += i` for each step, as C's `counter[t] += i` compiles: a
/// load and a store (relaxed atomics, so it is not a data race; only the
/// owning thread writes, so nothing is lost).
#[inline(never)]
fn add_into(counter: &AtomicU64, range: std::ops::Range<u64>) -> u64 {
    for i in range {
        let v = counter.load(Ordering::Relaxed);
        counter.store(v.wrapping_add(black_box(i)), Ordering::Relaxed);
    }
    0
}

fn sum_of<'a>(it: impl Iterator<Item = &'a AtomicU64>) -> u64 {
    it.fold(0u64, |a, c| a.wrapping_add(c.load(Ordering::Relaxed)))
}

/// Times `strategy` with 1..=`max_threads` threads, fastest of a few
/// rounds. The rounds are interleaved (1, 2, ... threads, then again) so a
/// slow drift of the machine's speed hits every row alike; quick
/// strategies get more rounds (until [`STRATEGY_BUDGET`] is spent, at most
/// [`MAX_ROUNDS`]), slow ones one. Also whether every run was right.
pub fn measure(strategy: Strategy, max_threads: usize, work: u64) -> (Vec<Trial>, bool) {
    let mut best: Vec<Trial> = Vec::with_capacity(max_threads);
    let (mut spent, mut right) = (Duration::ZERO, true);
    for round in 0..MAX_ROUNDS {
        if round > 0 && spent >= STRATEGY_BUDGET {
            break;
        }
        for threads in 1..=max_threads {
            let t = run_once(strategy, threads, work);
            spent += t.elapsed;
            right &= t.right();
            match best.get_mut(threads - 1) {
                Some(b) if t.elapsed < b.elapsed => *b = t,
                Some(_) => {}
                None => best.push(t),
            }
        }
    }
    (best, right)
}

/// Time one strategy's table may take before it stops repeating rounds.
pub const STRATEGY_BUDGET: Duration = Duration::from_millis(1200);
/// Most rounds per strategy.
pub const MAX_ROUNDS: usize = 5;

/// The fraction of all CPU time that was busy over `window`, from
/// `/proc/stat` (this process sleeps meanwhile, so it is everyone else).
pub fn background_busy(window: Duration) -> Option<f64> {
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = v.get(3)? + v.get(4).unwrap_or(&0);
        let total: u64 = v.iter().take(8).sum();
        Some((idle, total))
    }
    let (i0, t0) = sample()?;
    std::thread::sleep(window);
    let (i1, t1) = sample()?;
    let total = t1.checked_sub(t0).filter(|&t| t > 0)?;
    let idle = i1.saturating_sub(i0).min(total);
    Some((total - idle) as f64 / total as f64)
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs lab 5, printing to stdout.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    run_to(cli, &mut std::io::stdout().lock())
}

fn run_to(cli: &Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let cores = cores();
    let max_threads = cli
        .threads
        .map_or((2 * cores).min(MAX_THREADS as usize), |t| t as usize);
    let strategies: Vec<Strategy> = if cli.strategy == Strategy::All {
        Strategy::EACH.to_vec()
    } else {
        vec![cli.strategy]
    };
    writeln!(
        out,
        "lab5-threads: add up 0 + 1 + ... + {} ({} steps) split over 1..={max_threads} threads",
        cli.work - 1,
        group(cli.work)
    )?;
    writeln!(
        out,
        "each time is the fastest of up to {MAX_ROUNDS} runs (as many as fit in about {:.1} s per strategy)",
        STRATEGY_BUDGET.as_secs_f64()
    )?;
    writeln!(
        out,
        "this machine: {cores} core{} available; right answer: {}",
        if cores == 1 { "" } else { "s" },
        group(expected(cli.work))
    )?;
    if let Some(busy) = background_busy(Duration::from_millis(250))
        && busy > 0.15
    {
        writeln!(
            out,
            "warning: other programs are keeping the CPUs {} busy; the timings will be noisy",
            fmt::percent(busy * 100.0, 0)
        )?;
    }
    let mut all_right = true;
    let mut results: Vec<Vec<Trial>> = Vec::new();
    for &strategy in &strategies {
        writeln!(out)?;
        writeln!(out, "strategy {}: {}", strategy.name(), strategy.describe())?;
        writeln!(
            out,
            "{:>7}  {:>10}  {:>9}  {:>12}  answer",
            "threads", "time", "speed-up", "steps/s"
        )?;
        out.flush()?;
        let (rows, right) = measure(strategy, max_threads, cli.work);
        all_right &= right;
        let base = rows[0].elapsed;
        for trial in &rows {
            let threads = trial.threads;
            writeln!(
                out,
                "{threads:>7}  {:>10}  {:>8.2}×  {:>12}  {}",
                secs(trial.elapsed),
                ratio(base, trial.elapsed),
                fmt::per_sec(cli.work, trial.elapsed),
                if trial.right() {
                    "right".to_owned()
                } else {
                    format!(
                        "WRONG: {} (lost {})",
                        trial.total,
                        expected(cli.work).wrapping_sub(trial.total)
                    )
                }
            )?;
        }
        writeln!(out, "  {}", notice(strategy, &rows, cores))?;
        results.push(rows);
    }
    if strategies.len() > 1 {
        compare(out, &results, max_threads)?;
    }
    writeln!(out)?;
    writeln!(out, "What to notice:")?;
    for line in SUMMARY {
        writeln!(out, "  {line}")?;
    }
    if !all_right {
        writeln!(
            out,
            "\nsome totals were WRONG: that is a bug in this lab, please report it"
        )?;
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The cross-strategy table: time per thread count, and how many times
/// slower than `local` with the same threads.
fn compare(
    out: &mut impl Write,
    results: &[Vec<Trial>],
    max_threads: usize,
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "comparison: time for the whole job (× slower than `local` with as many threads)"
    )?;
    write!(out, "{:<14}", "strategy")?;
    for t in 1..=max_threads {
        write!(
            out,
            "  {:>17}",
            format!("{t} thread{}", if t == 1 { "" } else { "s" })
        )?;
    }
    writeln!(out)?;
    let local = results.iter().find(|r| r[0].strategy == Strategy::Local);
    for rows in results {
        write!(out, "{:<14}", rows[0].strategy.name())?;
        for (i, trial) in rows.iter().enumerate() {
            let cell = match local {
                Some(l) if rows[0].strategy != Strategy::Local => {
                    let r = ratio(trial.elapsed, l[i].elapsed);
                    let digits = if r < 9.95 { 1 } else { 0 };
                    format!("{} ({r:.digits$}×)", secs(trial.elapsed))
                }
                _ => secs(trial.elapsed),
            };
            write!(out, "  {cell:>17}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// One line on what this strategy's numbers show.
fn notice(strategy: Strategy, rows: &[Trial], cores: usize) -> String {
    let one = rows[0].elapsed;
    let at = rows.len().min(cores).max(1);
    let best = rows
        .iter()
        .min_by_key(|t| t.elapsed)
        .expect("at least one row");
    let speedup = ratio(one, rows[at - 1].elapsed);
    match strategy {
        Strategy::Local | Strategy::Sharded if speedup >= 0.75 * at as f64 => format!(
            "→ {speedup:.1}× faster with {at} threads on {cores} cores: nothing is shared while working; \
             threads beyond the cores add nothing"
        ),
        Strategy::Local | Strategy::Sharded if speedup >= 1.2 => format!(
            "→ {speedup:.1}× faster with {at} threads (at best {at}×): nothing is shared, but a loop this tight \
             also competes for what the cores do share (on a virtual machine, perhaps a physical core)"
        ),
        Strategy::Local | Strategy::Sharded => format!(
            "→ only {speedup:.1}× with {at} threads, where close to {at}× was expected: \
             was something else using the CPU? Run it again on a quiet machine"
        ),
        Strategy::FalseSharing | Strategy::SharedAtomic | Strategy::SharedMutex => {
            let why = match strategy {
                Strategy::SharedMutex => {
                    "every step hands the lock's cache line to the other core, and a thread that finds the lock taken may sleep"
                }
                Strategy::FalseSharing => {
                    "the counters share a cache line, so the line moves between cores on every step"
                }
                _ => {
                    "every fetch_add needs the one shared cache line to itself, so the cores take turns"
                }
            };
            if best.threads == 1 {
                format!(
                    "→ one thread is the fastest: with {at} threads it takes {:.1}× as long: {why}",
                    1.0 / speedup
                )
            } else {
                format!("→ only {speedup:.1}× with {at} threads: {why}")
            }
        }
        Strategy::All => String::new(),
    }
}

const SUMMARY: [&str; 6] = [
    "- local and sharded share nothing on the hot path and speed up with each core, then flatten:",
    "  threads beyond the cores only take turns. Combining once at the end costs nothing measurable.",
    "- shared-atomic is always right but every step fights for one cache line; shared-mutex adds a",
    "  lock and unlock per step, and threads that find it taken sleep in the kernel: slowest of all.",
    "- false-sharing shares no data — each thread writes only its own counter — yet it is slow: the",
    "  counters sit on one cache line, and the hardware moves whole lines. False sharing is sharing too.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_parses_and_refuses() {
        assert_eq!(parse_work("100M"), Ok(100_000_000));
        assert_eq!(parse_work("1_000"), Ok(1000));
        assert_eq!(parse_work("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_work("4G"), Ok(MAX_WORK));
        for bad in ["0", "", "x", "5G", "-1", "1.5M", "99999999999999999999"] {
            assert!(parse_work(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slices_cover_the_range_exactly() {
        for (work, threads) in [(10, 3), (1, 4), (100_003, 7)] {
            let mut next = 0;
            for t in 0..threads {
                let r = slice(work, threads, t);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, work);
        }
    }

    #[test]
    fn expected_is_the_sum() {
        assert_eq!(expected(1), 0);
        assert_eq!(expected(5), 10);
        assert_eq!(expected(MAX_WORK), 7_999_999_998_000_000_000);
    }
}
