//! `lab4-race --plot`: an SVG of the lost-update distribution over trials,
//! or, with `--sync all`, a bar chart comparing the modes.

use crate::lab4::{Options, Selection};
use plotters::prelude::*;
use race::{SyncMode, TrialResult};
use std::path::Path;

/// Draws the picture for this run into `path` (SVG).
pub fn draw(
    path: &Path,
    opts: &Options,
    all: &[TrialResult],
    modes: &[SyncMode],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    match opts.sync {
        Selection::All => modes_chart(&root, opts, all, modes)?,
        Selection::One(m) => lost_chart(&root, opts, all, m)?,
    }
    root.present()?;
    Ok(())
}

fn modes_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    opts: &Options,
    all: &[TrialResult],
    modes: &[SyncMode],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    // Median throughput per mode.
    let bars: Vec<(String, f64, u64)> = modes
        .iter()
        .filter_map(|&m| {
            let mut v: Vec<&TrialResult> = all.iter().filter(|r| r.sync == m).collect();
            v.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
            let med = v.get(v.len() / 2)?;
            let worst = v.iter().map(|r| r.lost).max().unwrap_or(0);
            Some((m.name().to_string(), med.ops_per_sec / 1e6, worst))
        })
        .collect();
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.15 + 1e-9;
    let caption = format!(
        "lab4-race: throughput by sync mode ({} {} x {} increments)",
        opts.workers, opts.kind, opts.iters
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..bars.len()).into_segmented(), 0.0..top)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("million increments per second (median trial)")
        .x_labels(bars.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, mops, lost))| {
        let color = if *lost > 0 {
            RED.mix(0.7)
        } else {
            BLUE.mix(0.6)
        };
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), *mops),
            ],
            color.filled(),
        );
        bar.set_margin(0, 0, 8, 8);
        bar
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, mops, lost))| {
        let label = if *lost > 0 {
            format!("{mops:.1} (lost {lost})")
        } else {
            format!("{mops:.1}")
        };
        Text::new(
            label,
            (SegmentValue::CenterOf(i), *mops + top * 0.02),
            ("sans-serif", 13),
        )
    }))?;
    Ok(())
}

fn lost_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    opts: &Options,
    all: &[TrialResult],
    mode: SyncMode,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let lost: Vec<u64> = all
        .iter()
        .filter(|r| r.sync == mode)
        .map(|r| r.lost)
        .collect();
    let top = lost.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.15;
    let caption = format!(
        "lab4-race --sync {mode}: lost updates per trial ({} {} x {} increments)",
        opts.workers, opts.kind, opts.iters
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((1..lost.len() + 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("trial")
        .y_desc("lost updates")
        .draw()?;
    chart.draw_series(lost.iter().enumerate().map(|(i, &l)| {
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i + 1), 0.0),
                (SegmentValue::Exact(i + 2), l as f64),
            ],
            RED.mix(0.6).filled(),
        );
        bar.set_margin(0, 0, 4, 4);
        bar
    }))?;
    if let Some(s) = race::summarise_lost(all) {
        chart.draw_series(std::iter::once(Text::new(
            format!(
                "min {}  median {}  max {}  ({} of {} trials lost some)",
                s.min, s.median, s.max, s.trials_with_loss, s.trials
            ),
            (SegmentValue::Exact(1), top * 0.97),
            ("sans-serif", 14),
        )))?;
    }
    Ok(())
}
