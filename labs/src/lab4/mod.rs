//! `lab4-race`: the racing counter, under every sync mode.
//!
//! The options, the text report, the `--sync all` table, JSON lines and the
//! progress bar live here, the `--plot` SVG in the `plot` submodule (given
//! plain numbers, not this module's types), `--trace` (the race
//! microscope) in the `trace` submodule; the experiment itself is
//! [`race::run_trial`] / [`race::run_traced`].

mod bound;
mod plot;
mod trace;

use crate::fmt::{self, duration_ns, group};
use anyhow::Context;
use race::{Config, LostSummary, SyncMode, TrialResult, WorkerKind};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Which modes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// One mode.
    One(SyncMode),
    /// Every mode that can run with this kind of worker.
    All,
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "all" {
            return Ok(Selection::All);
        }
        SyncMode::parse(s).map(Selection::One).ok_or_else(|| {
            let names: Vec<&str> = SyncMode::ALL.iter().map(|m| m.name()).collect();
            format!(
                "unknown sync mode {s:?}; choose one of {}, or all",
                names.join(", ")
            )
        })
    }
}

/// `--sync`'s help: every mode of the registry, then `all`.
pub fn sync_help() -> String {
    let names: Vec<&str> = SyncMode::ALL.iter().map(|m| m.name()).collect();
    format!("{} | all", names.join(" | "))
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Modes.
    pub sync: Selection,
    /// Processes or threads.
    pub kind: WorkerKind,
    /// Workers.
    pub workers: u32,
    /// Increments per worker.
    pub iters: u64,
    /// `spin_loop` rounds inside each critical section ([`Config::hold`]).
    pub hold: u32,
    /// Trials per mode.
    pub trials: u32,
    /// JSON lines instead of text.
    pub json: bool,
    /// Exit 1 if any update was lost.
    pub check: bool,
    /// Write an SVG here.
    pub plot: Option<PathBuf>,
    /// Record every increment and show which ones were lost (one mode, one
    /// trial).
    pub trace: bool,
}

impl Options {
    /// The modes this run will race, and the ones it skips with the reason.
    pub fn modes(&self) -> (Vec<SyncMode>, Vec<(SyncMode, &'static str)>) {
        match self.sync {
            Selection::One(m) => (vec![m], vec![]),
            Selection::All => {
                let mut run = vec![];
                let mut skipped = vec![];
                for m in SyncMode::ALL {
                    match (self.kind, m.why_not_cross_process()) {
                        (WorkerKind::Procs, Some(why)) => skipped.push((m, why)),
                        _ => run.push(m),
                    }
                }
                (run, skipped)
            }
        }
    }
}

/// Runs the lab and prints its report; the exit code follows the
/// command-line contract (1 if `--check` saw lost updates).
pub fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    if opts.trials == 0 {
        anyhow::bail!("--trials 0 runs nothing; use --trials 1 or more");
    }
    let (modes, skipped) = opts.modes();
    // Validate every configuration before starting anything.
    for &sync in &modes {
        config(opts, sync).validate()?;
    }
    if opts.trace {
        let Selection::One(sync) = opts.sync else {
            anyhow::bail!(
                "--trace records one mode's run; choose one with --sync, e.g. --sync none"
            );
        };
        return trace::run(opts, &config(opts, sync));
    }
    if !opts.json {
        print_intro(opts, &modes);
    }
    for &sync in &modes {
        let cfg = config(opts, sync);
        if bound::oversubscribed(&cfg) {
            eprintln!("{}\n", bound::warning(&cfg));
        }
    }
    let show_bar = !opts.json && std::io::stderr().is_terminal();
    let mut all: Vec<TrialResult> = Vec::new();
    for &sync in &modes {
        let cfg = config(opts, sync);
        for trial in 1..=opts.trials {
            let bar = show_bar.then(|| progress_bar(&cfg, trial, opts.trials));
            let mut on_progress = |done: u64, total: u64| {
                if let Some(b) = &bar {
                    b.set_length(total);
                    b.set_position(done);
                }
            };
            let watchdog = bound::Watchdog::start(&cfg, trial);
            let res = race::run_trial(&cfg, trial, &mut on_progress);
            drop(watchdog);
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let res = res.with_context(|| format!("--sync {sync}"))?;
            if opts.json {
                let line = serde_json::to_string(&res).context("encoding JSON")?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").context("writing to stdout")?;
            } else if opts.sync != Selection::All {
                print_trial(&res);
            }
            all.push(res);
        }
        if !opts.json && opts.sync != Selection::All && opts.trials > 1 {
            print_lost_summary(&all);
        }
    }
    if !opts.json && opts.sync == Selection::All {
        print_table(&all, &modes, opts.trials);
        for (m, why) in &skipped {
            println!("  ({m} skipped: {why})");
        }
    }
    if !opts.json {
        print_notice(&all);
    }
    if let Some(path) = &opts.plot {
        plot::draw(path, &picture(opts, &all, &modes))
            .with_context(|| format!("drawing {}", path.display()))?;
        if !opts.json {
            println!("\nwrote {}", path.display());
        }
    }
    let lost_any = all.iter().any(|r| r.lost > 0);
    if opts.check && lost_any {
        if !opts.json {
            println!("\ncheck failed: updates were lost (exit 1)");
        }
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `--plot` draws for this run: a bar per mode with `--sync all`, the
/// lost updates of each trial with one mode.
fn picture(opts: &Options, all: &[TrialResult], modes: &[SyncMode]) -> plot::Picture {
    let run = plot::Run {
        workers: opts.workers,
        kind: opts.kind,
        iters: opts.iters,
    };
    let chart = match opts.sync {
        Selection::All => plot::Chart::Modes(
            mode_rows(all, modes)
                .iter()
                .map(|r| plot::Bar {
                    label: r.median.sync.name().to_string(),
                    mops: r.median.ops_per_sec / 1e6,
                    worst_lost: r.worst_lost,
                })
                .collect(),
        ),
        Selection::One(mode) => plot::Chart::Lost {
            mode,
            per_trial: all
                .iter()
                .filter(|r| r.sync == mode)
                .map(|r| r.lost)
                .collect(),
            summary: race::summarise_lost(all),
        },
    };
    plot::Picture { run, chart }
}

fn config(opts: &Options, sync: SyncMode) -> Config {
    Config {
        sync,
        kind: opts.kind,
        workers: opts.workers,
        iters: opts.iters,
        hold: opts.hold,
    }
}

fn progress_bar(cfg: &Config, trial: u32, trials: u32) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(cfg.iters * cfg.workers as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {percent:>3}% {human_pos}/{human_len} increments",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(if trials > 1 {
        format!("{} {trial}/{trials}", cfg.sync)
    } else {
        cfg.sync.to_string()
    });
    // Only runs that take more than a moment show a bar.
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn print_intro(opts: &Options, modes: &[SyncMode]) {
    let who = match opts.kind {
        WorkerKind::Procs => "processes",
        WorkerKind::Threads => "threads",
    };
    let what = match opts.sync {
        Selection::One(m) => format!("sync = {m}"),
        Selection::All => format!("every mode ({})", modes.len()),
    };
    println!(
        "lab4-race: {} {who} x {} increments each, {what}, {} trial{}",
        opts.workers,
        group(opts.iters),
        opts.trials,
        if opts.trials == 1 { "" } else { "s" }
    );
    println!(
        "{}",
        critical_section(opts.hold, modes.contains(&SyncMode::Atomic))
    );
    if opts.kind == WorkerKind::Procs {
        println!(
            "Each worker is a separate process that opens the region by name (shm_open + mmap) and waits at a start barrier.\n"
        );
    } else {
        println!(
            "Each worker is a thread sharing the coordinator's mapping; all wait at a start barrier.\n"
        );
    }
}

/// The header line that says what each increment's critical section is
/// (`--hold`): `critical section: load, 200 spin_loop rounds, store`, and
/// where the rounds go for `atomic` when it is among the modes.
pub(crate) fn critical_section(hold: u32, atomic: bool) -> String {
    let rounds = match hold {
        0 => String::new(),
        1 => "1 spin_loop round, ".to_string(),
        n => format!("{} spin_loop rounds, ", group(u64::from(n))),
    };
    let atomic = match (atomic, hold) {
        (false, _) => "",
        (true, 0) => " (atomic: one fetch_add)",
        (true, _) => " (atomic: one fetch_add, then the rounds, outside any critical section)",
    };
    format!("critical section: load, {rounds}store{atomic}")
}

fn print_trial(r: &TrialResult) {
    println!(
        "trial {}: expected {}  actual {}  lost {} ({})",
        r.trial,
        group(r.expected),
        group(r.actual),
        group(r.lost),
        fmt::percent(r.lost_pct, 2)
    );
    println!(
        "  elapsed {}  throughput {}  fairness (Jain) {:.3}",
        duration_ns(r.elapsed_ns),
        fmt::ops_rate(r.ops_per_sec),
        r.fairness
    );
    for w in &r.per_worker {
        let deaths = if w.owner_deaths > 0 {
            format!(
                "  took the lock from a dead owner {} time(s)",
                w.owner_deaths
            )
        } else {
            String::new()
        };
        println!(
            "  worker {:>2} (pid {:>7}): share {:>6}  time {}{deaths}",
            w.index,
            w.pid,
            fmt::percent(w.share * 100.0, 1),
            duration_ns(w.elapsed_ns)
        );
    }
}

fn print_lost_summary(results: &[TrialResult]) {
    if let Some(LostSummary {
        trials,
        min,
        median,
        max,
        trials_with_loss,
    }) = race::summarise_lost(results)
    {
        println!(
            "\nlost updates over {trials} trials: min {}  median {}  max {}; {trials_with_loss} of {trials} trials lost some",
            group(min),
            group(median),
            group(max)
        );
    }
}

/// One mode's row of the `--sync all` table (and bar of its plot).
struct ModeRow<'a> {
    /// The median trial by throughput.
    median: &'a TrialResult,
    /// The most updates any of the mode's trials lost.
    worst_lost: u64,
}

/// A row for each of `modes` that has results, in that order.
fn mode_rows<'a>(all: &'a [TrialResult], modes: &[SyncMode]) -> Vec<ModeRow<'a>> {
    modes
        .iter()
        .filter_map(|&m| {
            let mut rs: Vec<&TrialResult> = all.iter().filter(|r| r.sync == m).collect();
            rs.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
            let worst_lost = rs.iter().map(|r| r.lost).max().unwrap_or(0);
            rs.get(rs.len() / 2)
                .map(|&median| ModeRow { median, worst_lost })
        })
        .collect()
}

fn print_table(all: &[TrialResult], modes: &[SyncMode], trials: u32) {
    let w = SyncMode::name_width();
    let rows = mode_rows(all, modes);
    let atomic = rows
        .iter()
        .find(|r| r.median.sync == SyncMode::Atomic)
        .map(|r| r.median.ops_per_sec);
    if trials > 1 {
        println!("median trial of {trials} per mode (by throughput); lost = worst trial\n");
    }
    println!(
        "{:<w$} {:>13} {:>13} {:>12} {:>8} {:>11} {:>12} {:>9} {:>8}",
        "sync", "expected", "actual", "lost", "lost %", "elapsed", "Mops/s", "x atomic", "fairness"
    );
    for ModeRow {
        median: r,
        worst_lost,
    } in rows
    {
        let ratio = atomic.map_or("-".to_string(), |a| format!("{:.2}", r.ops_per_sec / a));
        println!(
            "{:<w$} {:>13} {:>13} {:>12} {:>8} {:>11} {:>12.2} {:>9} {:>8.3}",
            r.sync.name(),
            group(r.expected),
            group(r.actual),
            group(worst_lost),
            fmt::percent(worst_lost as f64 * 100.0 / r.expected as f64, 2),
            duration_ns(r.elapsed_ns),
            r.ops_per_sec / 1e6,
            ratio,
            r.fairness
        );
    }
}

fn print_notice(all: &[TrialResult]) {
    let lost_unsync = all.iter().any(|r| r.sync == SyncMode::None && r.lost > 0);
    let locked_lost = all.iter().any(|r| r.sync.synchronised() && r.lost > 0);
    println!("\nWhat to notice:");
    if all.iter().any(|r| r.sync == SyncMode::None) {
        if lost_unsync {
            println!(
                "- Without a lock, `counter++` is a load and a store: two workers load the same value, both store value+1, and one update is lost."
            );
        } else {
            println!(
                "- This time no update was lost without a lock: the workers barely overlapped (try more --iters or more workers). Absence of a lost update is not proof of safety."
            );
        }
    }
    if all.iter().any(|r| r.sync.synchronised()) {
        if locked_lost {
            println!(
                "- A synchronised mode LOST updates: that is a bug in the lock; please report it."
            );
        } else {
            println!(
                "- Every synchronised mode ends at exactly the expected count: the lock makes the load-add-store one indivisible step."
            );
        }
        println!(
            "- Compare the throughputs: protecting one increment costs more than the increment itself; sleeping locks (futex, pthread, sem) give the CPU away while they wait, a spin lock burns it."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_parses() {
        assert_eq!("all".parse::<Selection>().unwrap(), Selection::All);
        assert_eq!(
            "sem-unnamed".parse::<Selection>().unwrap(),
            Selection::One(SyncMode::SemUnnamed)
        );
        assert!(
            "mutex"
                .parse::<Selection>()
                .unwrap_err()
                .contains("parking_lot")
        );
    }

    #[test]
    fn all_with_procs_skips_thread_only_modes() {
        let o = Options {
            sync: Selection::All,
            kind: WorkerKind::Procs,
            workers: 2,
            iters: 10,
            hold: 0,
            trials: 1,
            json: false,
            check: false,
            plot: None,
            trace: false,
        };
        let (run, skipped) = o.modes();
        assert!(!run.contains(&SyncMode::Std) && !run.contains(&SyncMode::ParkingLot));
        assert_eq!(skipped.len(), 2);
        assert_eq!(run.len(), SyncMode::ALL.len() - 2);
    }
}
