//! `lab4-race --trace`: the race microscope. One traced trial
//! ([`race::run_traced`]); then the lost updates it found, the first
//! collisions as two-column timelines, and with `--plot` an SVG timeline of
//! the increments around the first collision.

use super::{Options, print_trial};
use crate::fmt::{self, group};
use anyhow::Context;
use plotters::prelude::*;
use race::trace::{Collision, Increment};
use race::{TraceReport, TrialResult};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Collisions printed as timelines.
const SHOWN: usize = 3;

/// Runs one traced trial and prints (or writes as JSON) what the trace
/// shows.
pub(super) fn run(opts: &Options, cfg: &race::Config) -> anyhow::Result<ExitCode> {
    if opts.trials != 1 {
        anyhow::bail!("--trace runs one trial and records all of it; drop --trials");
    }
    let (res, report) =
        race::run_traced(cfg, &mut |_, _| {}).with_context(|| format!("--sync {}", cfg.sync))?;
    if opts.json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(flatten)]
            result: &'a TrialResult,
            trace: &'a TraceReport,
        }
        let line = serde_json::to_string(&Line {
            result: &res,
            trace: &report,
        })
        .context("encoding JSON")?;
        writeln!(std::io::stdout().lock(), "{line}").context("writing to stdout")?;
    } else {
        let kind = match cfg.kind {
            race::WorkerKind::Procs => "processes",
            race::WorkerKind::Threads => "threads",
        };
        println!(
            "lab4-race: {} {kind} x {} increments each, sync = {}, traced",
            cfg.workers,
            group(cfg.iters),
            cfg.sync
        );
        println!(
            "{}",
            super::critical_section(cfg.hold, cfg.sync == race::SyncMode::Atomic)
        );
        println!(
            "Each worker records every increment in its own part of a trace object beside the region: the value it read, and CLOCK_MONOTONIC_RAW (one clock for every process) just before the load and just after the store.\n"
        );
        print_trial(&res);
        print_report(&res, &report);
    }
    if let Some(path) = &opts.plot {
        draw(path, &report).with_context(|| format!("drawing {}", path.display()))?;
        if !opts.json {
            println!("\nwrote {}", path.display());
        }
    }
    if opts.check && res.lost > 0 {
        if !opts.json {
            println!("\ncheck failed: updates were lost (exit 1)");
        }
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(res: &TrialResult, t: &TraceReport) {
    println!(
        "\ntrace: {} increments recorded; the history that survived is the chain of {} increments that built the final value, each reading what the one before it wrote.",
        group(t.recorded),
        group(t.final_value)
    );
    if t.lost_found == 0 {
        println!("  no collisions: every increment read the value the one before it wrote.");
    } else {
        let exact = if t.lost_found == res.lost {
            "exactly expected - actual"
        } else {
            "NOT expected - actual: the trace is incomplete"
        };
        println!(
            "  lost: {} ({exact}); {} collided with a twin that read the same value, {} were undone by a late store of an older value.",
            group(t.lost_found),
            group(t.same_value),
            group(t.stale_overwrites)
        );
        let first = &t.collisions[0];
        let t0 = first
            .overwritten_by
            .map_or(first.lost.t_read, |k| k.t_read.min(first.lost.t_read));
        println!("\nthe first collisions (times from the first one):");
        for (n, c) in t.collisions.iter().take(SHOWN).enumerate() {
            print_collision(n + 1, c, t0);
        }
    }
    println!("\nWhat to notice:");
    if t.lost_found > 0 {
        println!(
            "- A lost update is two increments that loaded the same value: each adds 1 to what it saw, and the second store simply replaces the first. Nothing fails, nothing warns: one increment's work is gone."
        );
        if t.stale_overwrites > 0 {
            println!(
                "- Worse, a worker that loaded long ago and stores late sets the counter back, undoing every update made in between: one late store can lose many increments."
            );
        }
        println!(
            "- The window is the time between the load and the store. Tracing adds two clock reads to every increment, so the workers spend most of their time outside the window and fewer increments collide than in an untraced run (compare without --trace): the same race, slowed down."
        );
    } else {
        println!(
            "- Under a lock (or one atomic instruction) the load and the store are one indivisible step, so no two increments can see the same value: the chain of reads and writes has no branches."
        );
    }
}

fn print_collision(n: usize, c: &Collision, t0: u64) {
    let l = c.lost;
    let Some(k) = c.overwritten_by else {
        println!(
            "  #{n} worker {} read {} ... wrote {}: lost (the timestamps do not show what replaced it)",
            l.worker,
            group(l.read),
            group(l.wrote())
        );
        return;
    };
    let (theirs, verdict) = if k.read == l.read {
        (format!("read {}", group(k.read)), "one update lost")
    } else {
        (
            format!("(which had read {})", group(k.read)),
            "the counter went back, this update and what was built on it lost",
        )
    };
    println!(
        "  #{n} worker {} read {} ... wrote {}; worker {} {theirs} ... wrote {}: {verdict}",
        l.worker,
        group(l.read),
        group(l.wrote()),
        k.worker,
        group(k.wrote())
    );
    // Two columns: the lost increment's worker on the left.
    let mut events = [
        (l.t_read, &l, format!("read {}", group(l.read))),
        (l.t_write, &l, format!("wrote {}", group(l.wrote()))),
        (k.t_read, &k, format!("read {}", group(k.read))),
        (k.t_write, &k, format!("wrote {}", group(k.wrote()))),
    ];
    events.sort_by_key(|e| e.0);
    println!(
        "      {:>10}  {:<22}worker {}",
        "time",
        format!("worker {} (lost)", l.worker),
        k.worker
    );
    for (t, who, what) in &events {
        let at = format!("+{}", fmt::duration_ns(t.saturating_sub(t0)));
        if std::ptr::eq(*who, &l) {
            println!("      {at:>10}  {what}");
        } else {
            println!("      {at:>10}  {:<22}{what}", "");
        }
    }
}

/// The increments around the first collision as bars on one lane per
/// worker, from load to store; lost ones red.
fn draw(path: &Path, t: &TraceReport) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let window: &[Increment] = &t.window;
    if window.is_empty() {
        root.titled(
            "lab4-race --trace: no collisions to draw (every increment read what the one before it wrote)",
            ("sans-serif", 18),
        )?;
        root.present()?;
        return Ok(());
    }
    let lost: Vec<(u32, u64)> = t
        .collisions
        .iter()
        .map(|c| (c.lost.worker, c.lost.seq))
        .collect();
    let t0 = window.iter().map(|i| i.t_read).min().unwrap_or(0);
    let t1 = window.iter().map(|i| i.t_write).max().unwrap_or(t0 + 1);
    let lanes = window.iter().map(|i| i.worker).max().unwrap_or(0) + 1;
    let span = (t1 - t0).max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "lab4-race --trace: each increment from its load to its store (red: its update was lost)",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..span, -0.5f64..(lanes as f64 - 0.5))?;
    chart
        .configure_mesh()
        .x_desc("ns since the window's first load")
        .y_labels(lanes as usize)
        .y_label_formatter(&|y| format!("worker {}", y.round() as i64))
        .disable_y_mesh()
        .draw()?;
    for inc in window {
        let y = f64::from(inc.worker);
        let x0 = (inc.t_read - t0) as f64;
        let x1 = ((inc.t_write - t0) as f64).max(x0 + span / 500.0);
        let color = if lost.contains(&(inc.worker, inc.seq)) {
            RED.mix(0.8)
        } else {
            BLUE.mix(0.4)
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x0, y - 0.3), (x1, y + 0.3)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{}", inc.read),
            (x0, y + 0.38),
            ("sans-serif", 11),
        )))?;
    }
    root.present()?;
    Ok(())
}
