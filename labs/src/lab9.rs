//! `lab9-algorithms`: mutual exclusion built by hand — the flag lock,
//! Peterson, Dekker, the bakery, TAS, TTAS, the ticket lock, or a lock from
//! a C library — raced across processes on the real CPU, with every
//! critical section counting its occupants.
//!
//! The options, the per-trial report, the `--algo all` table, JSON lines
//! and the "what to notice" text live here; the algorithms and the race are
//! the `algos` crate's ([`algos::race()`]).

use crate::fmt::{self, duration_ns, group};
use algos::{Algo, CLock, Fence, RaceConfig, RaceResult, WorkerKind};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A flag's value: one thing, or every one (`all`, `both`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice<T> {
    /// This one.
    One(T),
    /// Every one.
    Every,
}

/// `--algo`: one algorithm, or `all` in one table.
pub type Selection = Choice<Algo>;
/// `--fence`: one setting, or `both`.
pub type FenceChoice = Choice<Fence>;

/// Reads `s` as `every` or as one of `names` (`parse` maps a name to its
/// value); otherwise says what the choices are.
fn choose<T>(
    s: &str,
    what: &str,
    every: &str,
    names: &[&str],
    parse: fn(&str) -> Option<T>,
) -> Result<Choice<T>, String> {
    match parse(s) {
        Some(one) => Ok(Choice::One(one)),
        None if s == every => Ok(Choice::Every),
        None => Err(format!(
            "unknown {what} {s:?}; choose one of {}, or {every}",
            names.join(", ")
        )),
    }
}

/// The `--algo` value parser.
pub fn parse_algo(s: &str) -> Result<Selection, String> {
    let names: Vec<&str> = Algo::ALL.iter().map(|a| a.name()).collect();
    choose(s, "algorithm", "all", &names, Algo::parse)
}

/// The `--fence` value parser.
pub fn parse_fence(s: &str) -> Result<FenceChoice, String> {
    let names: Vec<&str> = Fence::ALL.iter().map(|f| f.name()).collect();
    choose(s, "fence", "both", &names, Fence::parse)
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Algorithms (ignored with `lock_lib`).
    pub algo: Selection,
    /// `None`: the default (one algorithm: `none`, the textbook's code;
    /// `all`: both for the load/store algorithms, none for the others).
    pub fence: Option<FenceChoice>,
    /// A C lock library instead of the built-in algorithms.
    pub lock_lib: Option<PathBuf>,
    /// Processes or threads.
    pub kind: WorkerKind,
    /// Workers.
    pub workers: u32,
    /// Entries per worker.
    pub iters: u64,
    /// Trials per algorithm and fence.
    pub trials: u32,
    /// Most pauses outside the critical section between entries.
    pub outside: u32,
    /// Deadline per trial.
    pub timeout: Duration,
    /// JSON lines instead of text.
    pub json: bool,
    /// Exit 1 on any violation, lost update or unfinished run.
    pub check: bool,
}

/// One thing to race.
#[derive(Clone, Debug)]
enum Plan {
    /// A built-in algorithm with a fence setting.
    Builtin(Algo, Fence),
    /// The loaded C library.
    Lib(CLock),
}

/// The built-in runs in table order, and the algorithms skipped with why.
pub type Runs = (Vec<(Algo, Fence)>, Vec<(Algo, String)>);

impl Options {
    /// The built-in runs, in table order, and what `--algo all` skips with
    /// the reason. Fails (bad input) if one algorithm cannot take the
    /// worker count.
    pub fn runs(&self) -> anyhow::Result<Runs> {
        let fences = |a: Algo| -> Vec<Fence> {
            match (self.fence, self.algo) {
                (Some(Choice::One(f)), _) => vec![f],
                (Some(Choice::Every), _) => Fence::ALL.to_vec(),
                (None, Choice::One(_)) => vec![Fence::None],
                (None, Choice::Every) if a.uses_rmw() => vec![Fence::None],
                (None, Choice::Every) => Fence::ALL.to_vec(),
            }
        };
        match self.algo {
            Choice::One(a) => {
                if self.workers > a.max_workers() {
                    anyhow::bail!(
                        "{a} is for {} workers at most (it has one flag per worker and a turn between two); got {}: use --procs 2 or --threads 2, or --algo bakery for more",
                        a.max_workers(),
                        self.workers
                    );
                }
                Ok((fences(a).into_iter().map(|f| (a, f)).collect(), vec![]))
            }
            Choice::Every => {
                let mut run = vec![];
                let mut skipped = vec![];
                for a in Algo::ALL {
                    if self.workers > a.max_workers() {
                        skipped.push((a, format!("{} workers at most", a.max_workers())));
                    } else {
                        run.extend(fences(a).into_iter().map(|f| (a, f)));
                    }
                }
                Ok((run, skipped))
            }
        }
    }

    fn race_config(&self) -> RaceConfig {
        RaceConfig {
            kind: self.kind,
            workers: self.workers,
            iters: self.iters,
            deadline: self.timeout,
            outside: self.outside,
        }
    }
}

/// Runs the lab and prints its report; the exit code follows the
/// command-line contract (1 if `--check` saw a violation, a lost update or
/// a run that did not finish).
pub fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    if opts.trials == 0 {
        anyhow::bail!("--trials 0 runs nothing; use --trials 1 or more");
    }
    let (plans, skipped) = match &opts.lock_lib {
        Some(path) => {
            // SAFETY: loading runs the library's constructors and trusts its
            // symbols' types and behaviour (`CLock::load`'s contract), which
            // nothing can check. We accept that because the student asked
            // for exactly this file to be loaded and raced, by naming it with
            // `--lock-lib`: running their code in this process is what the
            // flag is for. The lab promises correct results only for a
            // library that keeps shmlab_lock.h's ABI (`load` still checks
            // that the symbols exist and the sizes are in range).
            let lib = unsafe { CLock::load(path) }?;
            (vec![Plan::Lib(lib)], vec![])
        }
        None => {
            let (runs, skipped) = opts.runs()?;
            let plans = runs.into_iter().map(|(a, f)| Plan::Builtin(a, f)).collect();
            (plans, skipped)
        }
    };
    let cfg = opts.race_config();
    // Before anything starts: what every race needs, and the library's
    // worker limit (the built-ins' were checked above).
    cfg.validate()?;
    if let Some(Plan::Lib(lib)) = plans.first() {
        cfg.validate_for(lib)?;
    }
    let table = opts.lock_lib.is_none() && opts.algo == Choice::Every;
    if !opts.json {
        print_intro(opts, &plans, table);
    }
    let mut all: Vec<RaceResult> = Vec::new();
    for plan in &plans {
        for trial in 1..=opts.trials {
            let res = match plan {
                Plan::Builtin(a, f) => a.race(*f, &cfg).with_context(|| format!("--algo {a}")),
                Plan::Lib(lib) => algos::race(lib.clone(), &cfg)
                    .with_context(|| format!("--lock-lib {}", lib.path().display())),
            };
            let mut res = res?;
            res.trial = trial;
            if opts.json {
                let line = serde_json::to_string(&res).context("encoding JSON")?;
                writeln!(std::io::stdout().lock(), "{line}").context("writing to stdout")?;
            } else if !table {
                print_trial(&res, opts.timeout, matches!(plan, Plan::Builtin(..)));
            }
            all.push(res);
        }
        if !opts.json && !table && opts.trials > 1 {
            print_summary(&all[all.len() - opts.trials as usize..]);
        }
    }
    if !opts.json {
        if table {
            print_table(&all, &plans, opts.timeout);
            for (a, why) in &skipped {
                println!("  ({a} skipped: {why}; use --procs 2 to include it)");
            }
        }
        print_notice(&all, &plans);
    }
    let failed = all.iter().any(|r| !clean(r));
    if opts.check && failed {
        if !opts.json {
            println!(
                "\ncheck failed: mutual exclusion was violated, updates were lost, or a run did not finish (exit 1)"
            );
        }
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// No violation, no lost update, finished.
fn clean(r: &RaceResult) -> bool {
    r.violations == 0 && r.lost == 0 && r.finished
}

fn who(kind: WorkerKind) -> &'static str {
    match kind {
        WorkerKind::Procs => "processes",
        WorkerKind::Threads => "threads",
    }
}

fn print_intro(opts: &Options, plans: &[Plan], table: bool) {
    let what = match plans {
        [Plan::Lib(lib)] => format!(
            "the lock in {} ({} bytes of state)",
            lib.path().display(),
            group(lib.state_size() as u64)
        ),
        [Plan::Builtin(a, f)] => format!("{a}, fence {f}"),
        _ if table => format!("every algorithm ({} runs)", plans.len()),
        _ => match plans.first() {
            Some(Plan::Builtin(a, _)) => format!("{a}, fence none and seqcst"),
            _ => String::new(),
        },
    };
    println!(
        "lab9-algorithms: {what}; {} {} x {} entries each, {} trial{}",
        opts.workers,
        who(opts.kind),
        group(opts.iters),
        opts.trials,
        if opts.trials == 1 { "" } else { "s" }
    );
    match opts.kind {
        WorkerKind::Procs => println!(
            "Each worker is a separate process that opens the region by name (shm_open + mmap); the lock's state lives in the region."
        ),
        WorkerKind::Threads => {
            println!("Each worker is a thread sharing the coordinator's mapping of the region.")
        }
    }
    println!(
        "Every entry counts itself into the critical section (fetch_add on an occupancy counter): finding another worker inside is a violation. Then counter++ (a load and a store), so a violation can also lose an update.\n"
    );
    if table {
        return;
    }
    let mut shown = Vec::new();
    for plan in plans {
        if let Plan::Builtin(a, f) = plan
            && !shown.contains(a)
        {
            shown.push(*a);
            println!("{a}: {}", a.summary());
            // Show the fence line as the first run sets it; a second run
            // (--fence both) differs only there.
            for line in a.pseudocode(*f) {
                println!("  {line}");
            }
            println!();
        }
    }
}

fn print_trial(r: &RaceResult, timeout: Duration, show_fence: bool) {
    let fence = if show_fence {
        format!(", fence {}", r.fence)
    } else {
        String::new()
    };
    println!(
        "trial {} ({}{fence}): expected {}  actual {}  lost {}  violations {}",
        r.trial,
        r.algorithm,
        group(r.expected),
        group(r.actual),
        group(r.lost),
        group(r.violations)
    );
    if !r.finished {
        println!(
            "  DID NOT FINISH within {}: {} of {} entries done when it was stopped (a deadlock, a livelock, or a lock that starves a worker)",
            fmt::secs(timeout),
            group(r.per_worker.iter().map(|w| w.done).sum()),
            group(r.expected)
        );
    }
    println!(
        "  elapsed {}  throughput {}  fairness (Jain) {:.3}  {:.1} entries per hand-off",
        duration_ns(r.elapsed_ns),
        fmt::ops_rate(r.ops_per_sec),
        r.fairness,
        r.mean_streak
    );
    for w in &r.per_worker {
        println!(
            "  worker {:>2} (pid {:>7}): share {:>6}  entries {:>11}  violations {:>9}  time {}",
            w.index,
            w.pid,
            fmt::percent(w.share * 100.0, 1),
            group(w.done),
            group(w.violations),
            duration_ns(w.elapsed_ns)
        );
    }
}

fn print_summary(trials: &[RaceResult]) {
    let bad = trials.iter().filter(|r| !clean(r)).count();
    println!(
        "\nover {} trials: violations {}, lost updates {}; {bad} of {} trials broke mutual exclusion or lost updates\n",
        trials.len(),
        group(trials.iter().map(|r| r.violations).sum()),
        group(trials.iter().map(|r| r.lost).sum()),
        trials.len()
    );
}

/// The plan a result came from.
fn same_plan(r: &RaceResult, plan: &Plan) -> bool {
    match plan {
        Plan::Builtin(a, f) => r.algorithm == a.name() && r.fence == *f,
        Plan::Lib(_) => true,
    }
}

fn print_table(all: &[RaceResult], plans: &[Plan], timeout: Duration) {
    let trials = all.iter().filter(|r| same_plan(r, &plans[0])).count();
    if trials > 1 {
        println!(
            "sums over {trials} trials per row; Mops/s, fairness and streak are the median trial's\n"
        );
    }
    println!(
        "{:<9} {:<6} {:>9} {:>11} {:>13} {:>8} {:>9} {:>8}  mutual exclusion",
        "algorithm",
        "fence",
        "workers",
        "violations",
        "lost updates",
        "Mops/s",
        "fairness",
        "streak",
    );
    for plan in plans {
        let mut rs: Vec<&RaceResult> = all.iter().filter(|r| same_plan(r, plan)).collect();
        let Some(first) = rs.first() else { continue };
        let (algorithm, fence, workers, kind) = (
            first.algorithm.clone(),
            first.fence,
            first.workers,
            first.kind,
        );
        let violations: u64 = rs.iter().map(|r| r.violations).sum();
        let lost: u64 = rs.iter().map(|r| r.lost).sum();
        let bad = rs.iter().filter(|r| !clean(r)).count();
        let unfinished = rs.iter().any(|r| !r.finished);
        rs.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        let median = rs[rs.len() / 2];
        let verdict = if unfinished {
            format!("did not finish within {}", fmt::secs(timeout))
        } else if bad == 0 {
            "held".to_string()
        } else if rs.len() > 1 {
            format!("VIOLATED in {bad} of {} trials", rs.len())
        } else {
            "VIOLATED".to_string()
        };
        let kind = match kind {
            WorkerKind::Procs => "procs",
            WorkerKind::Threads => "threads",
        };
        println!(
            "{:<9} {:<6} {:>9} {:>11} {:>13} {:>8.2} {:>9.3} {:>8.1}  {verdict}",
            algorithm,
            fence.name(),
            format!("{workers} {kind}"),
            group(violations),
            group(lost),
            median.ops_per_sec / 1e6,
            median.fairness,
            median.mean_streak,
        );
    }
}

fn print_notice(all: &[RaceResult], plans: &[Plan]) {
    println!("\nWhat to notice:");
    let bad = |a: Algo, f: Fence| {
        all.iter()
            .any(|r| r.algorithm == a.name() && r.fence == f && !clean(r))
    };
    if let Some(Plan::Lib(lib)) = plans.first() {
        let entries: u64 = all.iter().flat_map(|r| &r.per_worker).map(|w| w.done).sum();
        let violations: u64 = all.iter().map(|r| r.violations).sum();
        let lost: u64 = all.iter().map(|r| r.lost).sum();
        if all.iter().any(|r| !r.finished) {
            println!(
                "- The lock in {} did not let every worker finish before the deadline: it deadlocks, livelocks or starves a worker. Its worker processes were killed.",
                lib.path().display()
            );
        }
        if violations > 0 || lost > 0 {
            println!(
                "- {} of {} entries found another worker already inside, and {} updates were lost: the lock in {} does not provide mutual exclusion.",
                group(violations),
                group(entries),
                group(lost),
                lib.path().display()
            );
        } else {
            println!(
                "- No entry out of {} found another worker inside and no update was lost. That is evidence, not proof: a race can show a lock broken, never prove it correct. Run more trials, more workers (if the lock allows), and --threads.",
                group(entries)
            );
        }
        return;
    }
    let mut explained: Vec<&str> = Vec::new();
    for plan in plans {
        let Plan::Builtin(a, f) = *plan else { continue };
        let broken = bad(a, f);
        // Explain each failure, each fenced success, the RMW locks once;
        // an algorithm that should fail but did not is listed below.
        let text = a.explanation(f);
        if explained.contains(&text) || (!broken && !a.correct_with(f)) {
            continue;
        }
        if broken && a.correct_with(f) {
            println!(
                "- {a} with fence {f} broke mutual exclusion, which it should not: that is a bug; please report it."
            );
        } else {
            println!("- {text}");
        }
        explained.push(text);
    }
    let unlucky: Vec<String> = plans
        .iter()
        .filter_map(|p| match *p {
            Plan::Builtin(a, f) if !a.correct_with(f) && !bad(a, f) => {
                Some(format!("{a} (fence {f})"))
            }
            _ => None,
        })
        .collect();
    if !unlucky.is_empty() {
        println!(
            "- This time {} showed no violation: the failure needs two workers to arrive at the lock within a few nanoseconds of each other, on two CPUs at once. Run more --trials or --iters; a clean run is no proof of a correct lock.",
            unlucky.join(", ")
        );
    }
    if plans.len() > 1 {
        println!(
            "- The point: the algorithms made of plain loads and stores (peterson, dekker, bakery) fail on this CPU unless fenced, because x86 lets a load overtake an earlier store (the store buffer). The atomic read-modify-write locks (tas, ttas, ticket) never do: xchg and lock xadd are indivisible and are full barriers."
        );
    }
    let fair = |name: &str| {
        all.iter()
            .find(|r| r.algorithm == name)
            .map(|r| (r.fairness, r.mean_streak))
    };
    if let (Some((tas_j, tas_s)), Some((ticket_j, ticket_s))) = (fair("tas"), fair("ticket")) {
        let numbers = format!(
            "ticket: Jain {ticket_j:.3}, {ticket_s:.1} entries per hand-off; tas: Jain {tas_j:.3}, {tas_s:.1}"
        );
        if tas_s > 2.0 * ticket_s {
            println!(
                "- Fairness ({numbers}): the ticket lock serves workers in the order they took tickets, so the lock goes round them; test-and-set goes to whichever swap lands first, usually the worker that just released and still has the cache line, so it keeps the lock for streaks. FIFO costs throughput: every hand-off moves the lock to another CPU."
            );
        } else {
            println!(
                "- Fairness ({numbers}): here the two look alike, because the workers spend time outside the critical section and often find the lock free. Run --outside 0 (every worker always waiting) to see the ticket lock hand the lock round in turn (1.0 entries per hand-off with 2 workers) while test-and-set gives it to the worker that just released, in long streaks."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(algo: Selection, workers: u32, fence: Option<FenceChoice>) -> Options {
        Options {
            algo,
            fence,
            lock_lib: None,
            kind: WorkerKind::Procs,
            workers,
            iters: 10,
            trials: 1,
            outside: 0,
            timeout: Duration::from_secs(1),
            json: false,
            check: false,
        }
    }

    #[test]
    fn selections_parse() {
        assert_eq!(parse_algo("all").unwrap(), Choice::Every);
        assert_eq!(parse_algo("bakery").unwrap(), Choice::One(Algo::Bakery));
        assert!(parse_algo("mcs").unwrap_err().contains("ticket, or all"));
        assert_eq!(parse_fence("both").unwrap(), Choice::Every);
        assert_eq!(parse_fence("seqcst").unwrap(), Choice::One(Fence::SeqCst));
        assert!(
            parse_fence("mfence")
                .unwrap_err()
                .contains("none, seqcst, or both")
        );
    }

    #[test]
    fn all_fences_the_load_store_algorithms_both_ways() {
        let (runs, skipped) = opts(Choice::Every, 2, None).runs().unwrap();
        assert!(skipped.is_empty());
        assert_eq!(runs.len(), 4 * 2 + 3);
        assert!(runs.contains(&(Algo::Peterson, Fence::None)));
        assert!(runs.contains(&(Algo::Peterson, Fence::SeqCst)));
        assert!(!runs.contains(&(Algo::Tas, Fence::SeqCst)));
        let (runs, skipped) = opts(Choice::Every, 3, None).runs().unwrap();
        assert_eq!(skipped.len(), 2);
        assert!(runs.iter().all(|(a, _)| a.max_workers() >= 3));
    }

    #[test]
    fn peterson_refuses_three_workers() {
        let e = opts(Choice::One(Algo::Peterson), 3, None)
            .runs()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 workers at most") && e.contains("bakery"),
            "{e}"
        );
        let (runs, _) = opts(Choice::One(Algo::Peterson), 2, Some(Choice::Every))
            .runs()
            .unwrap();
        assert_eq!(runs.len(), 2);
    }
}
