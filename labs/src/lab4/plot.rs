//! `lab4-race --plot`: an SVG of the lost-update distribution over trials,
//! or, with `--sync all`, a bar chart comparing the modes.
//!
//! It draws a [`Picture`] of plain numbers that the parent module computed,
//! so it knows nothing of the lab's options or report.

use plotters::prelude::*;
use race::{LostSummary, SyncMode, WorkerKind};
use std::path::Path;

/// The run a picture is of, for its caption.
#[derive(Clone, Copy, Debug)]
pub(super) struct Run {
    /// Workers.
    pub workers: u32,
    /// Processes or threads.
    pub kind: WorkerKind,
    /// Increments per worker.
    pub iters: u64,
}

/// One mode's bar in the comparison chart.
#[derive(Clone, Debug)]
pub(super) struct Bar {
    /// The mode's name, under the bar.
    pub label: String,
    /// Its median trial's throughput, million increments per second.
    pub mops: f64,
    /// The most updates one of its trials lost (a red bar if any).
    pub worst_lost: u64,
}

/// Which chart to draw.
#[derive(Clone, Debug)]
pub(super) enum Chart {
    /// `--sync all`: a bar per mode.
    Modes(Vec<Bar>),
    /// One mode: the updates each trial lost, and their summary.
    Lost {
        /// The mode raced.
        mode: SyncMode,
        /// Lost updates of trial 1, 2, ...
        per_trial: Vec<u64>,
        /// Min, median and max over the trials.
        summary: Option<LostSummary>,
    },
}

/// A run and the chart to draw of it.
#[derive(Clone, Debug)]
pub(super) struct Picture {
    /// For the caption.
    pub run: Run,
    /// What to draw.
    pub chart: Chart,
}

/// Draws `picture` into `path` (SVG).
pub(super) fn draw(path: &Path, picture: &Picture) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    match &picture.chart {
        Chart::Modes(bars) => modes_chart(&root, &picture.run, bars)?,
        Chart::Lost {
            mode,
            per_trial,
            summary,
        } => lost_chart(&root, &picture.run, *mode, per_trial, summary.as_ref())?,
    }
    root.present()?;
    Ok(())
}

fn modes_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    run: &Run,
    bars: &[Bar],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let top = bars.iter().map(|b| b.mops).fold(0.0, f64::max) * 1.15 + 1e-9;
    let caption = format!(
        "lab4-race: throughput by sync mode ({} {} x {} increments)",
        run.workers, run.kind, run.iters
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..bars.len()).into_segmented(), 0.0..top)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
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
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let color = if b.worst_lost > 0 {
            RED.mix(0.7)
        } else {
            BLUE.mix(0.6)
        };
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), b.mops),
            ],
            color.filled(),
        );
        bar.set_margin(0, 0, 8, 8);
        bar
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let (mops, lost) = (b.mops, b.worst_lost);
        let label = if lost > 0 {
            format!("{mops:.1} (lost {lost})")
        } else {
            format!("{mops:.1}")
        };
        Text::new(
            label,
            (SegmentValue::CenterOf(i), mops + top * 0.02),
            ("sans-serif", 13),
        )
    }))?;
    Ok(())
}

fn lost_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    run: &Run,
    mode: SyncMode,
    lost: &[u64],
    summary: Option<&LostSummary>,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let top = lost.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.15;
    let caption = format!(
        "lab4-race --sync {mode}: lost updates per trial ({} {} x {} increments)",
        run.workers, run.kind, run.iters
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
    if let Some(s) = summary {
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
