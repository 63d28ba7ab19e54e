//! `shmlab torture`: the command line of [`race::torture`] — which locks,
//! the progress bar, the `locktorture`-like table, `--json`, `--check`,
//! and the report so far when Ctrl-C ends a run.

use crate::fmt;
use anyhow::bail;
use race::SyncMode;
use race::torture::{Report, Setup};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;

/// The report so far, for the Ctrl-C hook (which cannot take arguments).
static SO_FAR: Mutex<Vec<Report>> = Mutex::new(Vec::new());

/// Runs on the clean-up thread when a signal ends the process: prints
/// the reports so far (the clean-up then kills the workers and removes the
/// region).
fn print_so_far() {
    let reports = SO_FAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\ninterrupted: the report so far");
    for l in table(&reports) {
        let _ = writeln!(err, "{l}");
    }
}

/// The locks `list` names (`all`: every lock of the registry that lives in
/// the region).
fn locks(list: &str) -> anyhow::Result<Vec<SyncMode>> {
    let lockable: Vec<SyncMode> = SyncMode::ALL
        .iter()
        .copied()
        .filter(|&m| race::torture::lockable(m))
        .collect();
    if list == "all" {
        return Ok(lockable);
    }
    let names = || {
        lockable
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    list.split(',')
        .map(|n| {
            let n = n.trim();
            match SyncMode::ALL.iter().find(|m| m.name() == n) {
                Some(&m) if race::torture::lockable(m) => Ok(m),
                Some(_) => bail!(
                    "--lock {n:?} has no lock that processes share; use one of {}",
                    names()
                ),
                None => bail!(
                    "--lock {:?} is not a lock; use one of {} or all",
                    fmt::escape_str(n),
                    names()
                ),
            }
        })
        .collect()
}

/// Nanoseconds as µs or ms, or `-`.
fn lat(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".into(), fmt::duration_ns)
}

/// The table, one line per lock (like `locktorture`'s summary lines).
fn table(reports: &[Report]) -> Vec<String> {
    let mut out = vec![format!(
        "{:<13} {:>9} {:>13} {:>6} {:>6} {:>6} {:>6} {:>8} {:>7} {:>9} {:>9} {:>9} {:>5} {:>6} {:>7}",
        "lock",
        "acq",
        "min/max",
        "kills",
        "holder",
        "stops",
        "moves",
        "recover",
        "repair",
        "p50",
        "p99",
        "max",
        "lost",
        "incons",
        "wedged"
    )];
    for r in reports {
        out.push(format!(
            "{:<13} {:>9} {:>13} {:>6} {:>6} {:>6} {:>6} {:>8} {:>7} {:>9} {:>9} {:>9} {:>5} {:>6} {:>7}",
            r.lock,
            r.acquisitions,
            format!("{}/{}", r.per_worker_min, r.per_worker_max),
            r.kills,
            r.holder_kills,
            r.stops,
            r.moves,
            r.recoveries,
            r.repairs,
            lat(r.recovery_p50_ns),
            lat(r.recovery_p99_ns),
            lat(r.recovery_max_ns),
            r.lost,
            r.inconsistent,
            if r.wedged { "yes" } else { "no" }
        ));
    }
    for r in reports.iter().filter(|r| !r.verdict.is_empty()) {
        out.push(format!("{}: {}", r.lock, r.verdict));
    }
    out
}

/// Runs the torture of each lock in `list`.
pub fn torture(
    out: &mut impl Write,
    list: &str,
    setup: &Setup,
    json: bool,
    check: bool,
) -> anyhow::Result<ExitCode> {
    let modes = locks(list)?;
    shm::cleanup::on_signal(print_so_far);
    let mut reports = Vec::new();
    if !json {
        writeln!(
            out,
            "torture: {} processes, {} per lock, a kill every ~{}, a stop every ~{} for {}, a CPU move every ~{}, holds up to {} spin_loop rounds, seed {}",
            setup.procs,
            fmt::duration_ns(setup.duration.as_nanos() as u64),
            fmt::duration_ns(setup.kill_every.as_nanos() as u64),
            fmt::duration_ns(setup.stop_every.as_nanos() as u64),
            fmt::duration_ns(setup.stop_for.as_nanos() as u64),
            fmt::duration_ns(setup.move_every.as_nanos() as u64),
            setup.hold,
            setup.seed
        )?;
    }
    for mode in modes {
        let bar = (!json && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new(setup.duration.as_millis() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>13} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(mode.name());
            bar
        });
        let done = reports.clone();
        let mut progress =
            |so_far: &Report, elapsed: std::time::Duration, _total: std::time::Duration| {
                if let Some(b) = &bar {
                    b.set_position(elapsed.as_millis() as u64);
                    b.set_message(format!(
                        "{} acquisitions, {} kills, {} recoveries",
                        so_far.acquisitions, so_far.kills, so_far.recoveries
                    ));
                }
                let mut all = done.clone();
                all.push(so_far.clone());
                *SO_FAR.lock().unwrap_or_else(|e| e.into_inner()) = all;
            };
        let report = race::torture::run(mode, setup, &mut progress)?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        reports.push(report);
        *SO_FAR.lock().unwrap_or_else(|e| e.into_inner()) = reports.clone();
    }
    shm::cleanup::clear_on_signal();
    if json {
        writeln!(
            out,
            "{}",
            fmt::json_pretty(&serde_json::json!({ "setup": setup, "locks": reports }))?
        )?;
    } else {
        for l in table(&reports) {
            writeln!(out, "{l}")?;
        }
    }
    Ok(if check && reports.iter().any(|r| !r.pass) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
