//! `lab10-ordering`: the store-buffering litmus test, across two processes
//! or two threads.
//!
//! Side 0 stores 1 to `x` and then loads `y` into `r1`; side 1 stores 1 to
//! `y` and then loads `x` into `r2`. Under sequential consistency one of
//! the two stores comes first, so at least one load sees a 1 and
//! `r1 = r2 = 0` is impossible. Real CPUs keep a store in a store buffer
//! while the next load goes ahead, and the lab counts how often both sides
//! did that, with and without a `SeqCst` fence between store and load, and
//! with both sides on two CPUs or on one.
//!
//! The options, the tables, JSON lines and the notes live here; the
//! harness (region, barrier, pinning, processes and threads) in `litmus`,
//! the `--plot` SVG in `plot` (given plain numbers, not this module's
//! types).

mod litmus;
mod plot;

use crate::fmt::{self, duration_ns, group};
use anyhow::Context;
pub use litmus::{Fence, MAX_RUNS};
use race::WorkerKind;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Runs per configuration when `--runs` is not given: on the 2-core VM
/// this lab was written on, 0.3% to 7.5% of unfenced runs across two CPUs
/// ended in `r1 = r2 = 0` (thousands in a million), and a configuration
/// took one to two seconds in a release build.
pub const DEFAULT_RUNS: u64 = 1_000_000;

/// The four outcomes `(r1, r2)`, in the order the table, the JSON and the
/// counts use.
pub const OUTCOMES: [(u32, u32); 4] = [(0, 0), (1, 0), (0, 1), (1, 1)];

/// Which fences `--fence` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceChoice {
    /// No fence between store and load.
    None,
    /// `fence(SeqCst)` between store and load (`mfence` on x86).
    SeqCst,
    /// `none`, then `seqcst`: two tables.
    Both,
}

impl std::str::FromStr for FenceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(FenceChoice::None),
            "seqcst" => Ok(FenceChoice::SeqCst),
            "both" => Ok(FenceChoice::Both),
            _ => Err(format!(
                "unknown fence {s:?}; choose none, seqcst (a SeqCst fence, mfence on x86) or both"
            )),
        }
    }
}

impl FenceChoice {
    /// The configurations to run, in order.
    pub fn fences(self) -> Vec<Fence> {
        match self {
            FenceChoice::None => vec![Fence::None],
            FenceChoice::SeqCst => vec![Fence::SeqCst],
            FenceChoice::Both => vec![Fence::None, Fence::SeqCst],
        }
    }
}

/// Where the two sides are asked to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Two different CPUs (when at least two are allowed).
    TwoCpus,
    /// Both on one CPU (`--same-cpu`).
    SameCpu,
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Processes (default) or threads.
    pub kind: WorkerKind,
    /// Which fences.
    pub fence: FenceChoice,
    /// Runs per configuration.
    pub runs: u64,
    /// Two CPUs or one.
    pub placement: Placement,
    /// JSON lines instead of text.
    pub json: bool,
    /// Exit 1 if a fenced configuration saw `r1 = r2 = 0`.
    pub check: bool,
    /// Write an SVG here.
    pub plot: Option<PathBuf>,
}

/// How the sides ended up placed, as the report and the JSON say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pinning {
    /// Pinned to two different CPUs.
    TwoCpus,
    /// Pinned to one CPU together.
    SameCpu,
    /// Not pinned (not allowed, or the allowed CPUs could not be read):
    /// the scheduler placed them.
    Unpinned,
}

/// The four counts by outcome; the keys are `r1` then `r2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// `r1 = 0, r2 = 0`: forbidden under sequential consistency.
    #[serde(rename = "00")]
    pub both_zero: u64,
    /// `r1 = 1, r2 = 0`: side 1 ran first.
    #[serde(rename = "10")]
    pub r1_only: u64,
    /// `r1 = 0, r2 = 1`: side 0 ran first.
    #[serde(rename = "01")]
    pub r2_only: u64,
    /// `r1 = 1, r2 = 1`: the two overlapped, both stores visible.
    #[serde(rename = "11")]
    pub both_one: u64,
}

impl Counts {
    fn from_array([a, b, c, d]: [u64; 4]) -> Self {
        Counts {
            both_zero: a,
            r1_only: b,
            r2_only: c,
            both_one: d,
        }
    }

    /// In [`OUTCOMES`] order.
    pub fn as_array(&self) -> [u64; 4] {
        [self.both_zero, self.r1_only, self.r2_only, self.both_one]
    }

    /// Every run counted once.
    pub fn total(&self) -> u64 {
        self.as_array().iter().sum()
    }
}

/// One configuration's result: one JSON line, one table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// `procs` or `threads`.
    pub mode: WorkerKind,
    /// `none` or `seqcst`.
    pub fence: Fence,
    /// How the sides were placed.
    pub pinning: Pinning,
    /// The CPU each side was on when its runs began (`sched_getcpu`, after
    /// pinning): the pinned CPUs, or where the scheduler put them.
    pub cpus: [Option<usize>; 2],
    /// Why the sides are not placed as asked, if they are not.
    pub pin_note: Option<String>,
    /// Runs done.
    pub runs: u64,
    /// Runs per outcome.
    pub counts: Counts,
    /// Side 0's time for all the runs.
    pub elapsed_ns: u64,
    /// The sides' pids (processes) or tids (threads).
    #[serde(skip)]
    pub ids: [i32; 2],
}

impl Report {
    /// The forbidden outcome showed.
    pub fn saw_both_zero(&self) -> bool {
        self.counts.both_zero > 0
    }
}

/// Runs the lab and prints its report; the exit code follows the
/// command-line contract (1 if `--check` saw `r1 = r2 = 0` with a fence).
pub fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    if !(1..=MAX_RUNS).contains(&opts.runs) {
        anyhow::bail!(
            "--runs {} is out of range; use 1 to {}",
            opts.runs,
            group(MAX_RUNS)
        );
    }
    if let Some(path) = &opts.plot {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            anyhow::bail!(
                "--plot {}: the directory {} does not exist; create it or write the SVG elsewhere",
                path.display(),
                dir.display()
            );
        }
    }
    let plan = litmus::plan(opts.placement, litmus::allowed_cpus());
    if !opts.json {
        print_intro(opts);
    }
    let mut reports = Vec::new();
    for fence in opts.fence.fences() {
        let job = litmus::Job {
            kind: opts.kind,
            fence,
            runs: opts.runs,
            cpus: plan.cpus,
        };
        let out = litmus::run(&job).with_context(|| format!("--fence {}", fence.name()))?;
        let report = report(opts, &plan, fence, &out);
        if opts.json {
            let line = serde_json::to_string(&report).context("encoding JSON")?;
            writeln!(std::io::stdout().lock(), "{line}").context("writing to stdout")?;
        } else {
            print_table(&report);
        }
        reports.push(report);
    }
    if !opts.json {
        print_notice(opts, &reports);
    }
    if let Some(path) = &opts.plot {
        plot::draw(path, &picture(opts, &reports))
            .with_context(|| format!("drawing {}", path.display()))?;
        if !opts.json {
            println!("\nwrote {}", path.display());
        }
    }
    let broken = reports
        .iter()
        .any(|r| r.fence == Fence::SeqCst && r.saw_both_zero());
    if opts.check && broken {
        if !opts.json {
            println!("\ncheck failed: a fenced run saw r1 = r2 = 0 (exit 1)");
        }
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

fn report(opts: &Options, plan: &litmus::Plan, fence: Fence, out: &litmus::Outcome) -> Report {
    let pinned = out
        .sides
        .iter()
        .all(|s| s.asked.is_some() && s.pinned.is_ok());
    let pinning = match out.sides.map(|s| s.asked) {
        [Some(a), Some(b)] if pinned && a == b => Pinning::SameCpu,
        [Some(_), Some(_)] if pinned => Pinning::TwoCpus,
        _ => Pinning::Unpinned,
    };
    let refused = out.sides.iter().find_map(|s| match (s.asked, s.pinned) {
        (Some(cpu), Err(e)) => Some(format!(
            "pinning to CPU {cpu} was not allowed (sched_setaffinity: {}); the scheduler placed the sides",
            e.desc()
        )),
        _ => None,
    });
    Report {
        mode: opts.kind,
        fence,
        pinning,
        cpus: out.sides.map(|s| s.seen),
        pin_note: refused.or_else(|| plan.note.clone()),
        runs: opts.runs,
        counts: Counts::from_array(out.counts),
        elapsed_ns: out.elapsed_ns,
        ids: out.sides.map(|s| s.id),
    }
}

fn print_intro(opts: &Options) {
    let (who, how) = match opts.kind {
        WorkerKind::Procs => (
            "2 processes",
            "Each side is a separate process that opens the region by name (shm_open + mmap).",
        ),
        WorkerKind::Threads => (
            "2 threads",
            "Each side is a thread of this process, sharing its mapping of the region.",
        ),
    };
    let fences: Vec<&str> = opts.fence.fences().iter().map(|f| f.name()).collect();
    println!(
        "lab10-ordering: store buffering, {who}, {} runs per configuration, fence = {}",
        group(opts.runs),
        fences.join(" then ")
    );
    println!("  side 0:  x = 1;  [fence];  r1 = y        side 1:  y = 1;  [fence];  r2 = x");
    println!(
        "{how} x and y sit on cache lines of their own; a two-sided spin barrier starts both sides of every run together, and x = y = 0 again before the next."
    );
}

/// `side 0 (pid 12) on CPU 0, side 1 (pid 13) on CPU 1, pinned`.
fn placement_line(r: &Report) -> String {
    let id = match r.mode {
        WorkerKind::Procs => "pid",
        WorkerKind::Threads => "tid",
    };
    let cpu = |c: Option<usize>| c.map_or("an unknown CPU".to_string(), |c| format!("CPU {c}"));
    let how = match r.pinning {
        Pinning::TwoCpus => "pinned to two CPUs",
        Pinning::SameCpu => "pinned to one CPU",
        Pinning::Unpinned => "not pinned",
    };
    format!(
        "side 0 ({id} {}) on {}, side 1 ({id} {}) on {}; {how}",
        r.ids[0],
        cpu(r.cpus[0]),
        r.ids[1],
        cpu(r.cpus[1])
    )
}

fn print_table(r: &Report) {
    let rate = fmt::per_sec(r.runs, Duration::from_nanos(r.elapsed_ns));
    println!(
        "\nfence = {}: {} runs in {} ({rate}); {}",
        r.fence.name(),
        group(r.runs),
        duration_ns(r.elapsed_ns),
        placement_line(r)
    );
    if let Some(note) = &r.pin_note {
        println!("  note: {note}");
    }
    println!("  {:<10} {:>13} {:>9}", "(r1, r2)", "runs", "share");
    let total = r.counts.total().max(1) as f64;
    for ((r1, r2), n) in OUTCOMES.iter().zip(r.counts.as_array()) {
        let why = match (r1, r2) {
            (0, 0) => "  impossible under sequential consistency",
            (1, 0) => "  side 1 first",
            (0, 1) => "  side 0 first",
            _ => "  overlapped",
        };
        println!(
            "  {:<10} {:>13} {:>9}{why}",
            format!("({r1}, {r2})"),
            group(n),
            fmt::percent(n as f64 * 100.0 / total, 3)
        );
    }
}

fn print_notice(opts: &Options, reports: &[Report]) {
    let unfenced = reports.iter().find(|r| r.fence == Fence::None);
    let fenced = reports.iter().find(|r| r.fence == Fence::SeqCst);
    let one_cpu = reports.iter().any(|r| r.pinning == Pinning::SameCpu);
    println!("\nWhat to notice:");
    if let Some(u) = unfenced {
        if u.saw_both_zero() {
            println!(
                "- Without a fence, r1 = r2 = 0 happened {} times in {} runs: both loads ran before either store reached memory. In any one interleaving of the four steps some store comes first, and the load after it sees a 1.",
                group(u.counts.both_zero),
                group(u.runs)
            );
        } else if one_cpu {
            println!(
                "- With both sides on one CPU, r1 = r2 = 0 never showed in {} runs, fence or no fence.",
                group(u.runs)
            );
        } else {
            println!(
                "- This time r1 = r2 = 0 never showed in {} runs: try more --runs, and check the CPUs above. Not seeing it is no proof that it cannot happen.",
                group(u.runs)
            );
        }
    }
    println!(
        "- The store buffer: a core does not wait for a store to reach its cache but parks it in a private store buffer and goes on with the next instruction. A later load from another address is served from the cache at once, while that store is still parked and invisible to every other core. So each side's load can overtake its own store, and when both sides do it in the same run, both read 0."
    );
    if let Some(f) = fenced {
        if f.saw_both_zero() {
            println!(
                "- A FENCED configuration saw r1 = r2 = 0 {} times: the fence, the harness or the hardware is broken; please report it (--check exits 1).",
                group(f.counts.both_zero)
            );
        } else {
            println!(
                "- fence(SeqCst) between the store and the load (mfence on x86) makes the core drain its store buffer before it loads: r1 = r2 = 0 never happened in {} runs. The other three outcomes are still allowed, and still occur.",
                group(f.runs)
            );
        }
    }
    if one_cpu {
        println!(
            "- On one CPU it vanishes: a core forwards its own store buffer to its own later loads, and the two sides time-share that core, so a side runs only after the other was switched out, and a switch drains the stores. Each side sees every store the other made."
        );
    } else {
        println!(
            "- Run it with --same-cpu: both sides on one CPU share one store buffer, and r1 = r2 = 0 vanishes without any fence."
        );
    }
    println!(
        "- This is why Peterson's algorithm fails without a fence (lab 9: lab9-algorithms --algo peterson --fence none): each side sets its own flag (a store) and then reads the other's (a load); if both loads overtake both stores, both read \"not interested\" and both enter the critical section. r1 = r2 = 0 is two workers inside at once."
    );
    if opts.kind == WorkerKind::Procs {
        println!(
            "- These were two processes: the store buffer belongs to the core, not to the address space, so two processes mapping one page reorder exactly as two threads do (try --threads)."
        );
    }
}

/// What `--plot` draws: a panel of four bars per configuration.
fn picture(opts: &Options, reports: &[Report]) -> plot::Picture {
    let who = match opts.kind {
        WorkerKind::Procs => "2 processes",
        WorkerKind::Threads => "2 threads",
    };
    let cpus = match reports.first().map(|r| (r.pinning, r.cpus)) {
        Some((Pinning::Unpinned, _)) | None => "not pinned".to_string(),
        Some((_, [Some(a), Some(b)])) if a == b => format!("one CPU ({a})"),
        Some((_, [Some(a), Some(b)])) => format!("CPUs {a} and {b}"),
        Some(_) => "CPUs unknown".to_string(),
    };
    plot::Picture {
        caption: format!(
            "lab10-ordering: store buffering, {who}, {cpus}, {} runs each",
            group(opts.runs)
        ),
        panels: reports
            .iter()
            .map(|r| plot::Panel {
                title: format!("fence = {}", r.fence.name()),
                counts: r.counts.as_array(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_choices() {
        assert_eq!(FenceChoice::Both.fences(), [Fence::None, Fence::SeqCst]);
        assert_eq!(FenceChoice::SeqCst.fences(), [Fence::SeqCst]);
        assert_eq!("seqcst".parse(), Ok(FenceChoice::SeqCst));
        assert_eq!("both".parse(), Ok(FenceChoice::Both));
        assert!(
            "mfence"
                .parse::<FenceChoice>()
                .unwrap_err()
                .contains("seqcst")
        );
    }

    #[test]
    fn counts_keep_the_table_order() {
        let c = Counts::from_array([1, 2, 3, 4]);
        assert_eq!(c.as_array(), [1, 2, 3, 4]);
        assert_eq!(c.total(), 10);
        let v = serde_json::to_value(c).unwrap();
        assert_eq!(v["00"], 1);
        assert_eq!(v["10"], 2);
        assert_eq!(v["01"], 3);
        assert_eq!(v["11"], 4);
    }
}
