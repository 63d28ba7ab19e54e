//! `lab10-ordering --plot`: an SVG bar chart of the four outcomes, one
//! panel per configuration (`--fence both`: unfenced and fenced side by
//! side), on a shared logarithmic scale so that a few hundred `(0, 0)` runs
//! show next to half a million of the others.
//!
//! It draws a [`Picture`] of plain numbers that the parent module computed.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One configuration's bars.
#[derive(Clone, Debug)]
pub(super) struct Panel {
    /// Above the panel, e.g. `fence = none`.
    pub title: String,
    /// Runs per outcome, `(0,0)`, `(1,0)`, `(0,1)`, `(1,1)`.
    pub counts: [u64; 4],
}

/// The whole chart.
#[derive(Clone, Debug)]
pub(super) struct Picture {
    /// The line on top.
    pub caption: String,
    /// Left to right.
    pub panels: Vec<Panel>,
}

const LABELS: [&str; 4] = ["(0, 0)", "(1, 0)", "(0, 1)", "(1, 1)"];
/// Where the log axis starts: a count of 1 still gets a visible bar.
const FLOOR: f64 = 0.5;

/// Draws `picture` into `path` (SVG).
pub(super) fn draw(path: &Path, picture: &Picture) -> anyhow::Result<()> {
    let width = 520 * picture.panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&picture.caption, ("sans-serif", 20))?;
    let most = picture
        .panels
        .iter()
        .flat_map(|p| p.counts)
        .max()
        .unwrap_or(1)
        .max(1);
    let top = most as f64 * 4.0;
    let areas = root.split_evenly((1, picture.panels.len().max(1)));
    for (area, panel) in areas.iter().zip(&picture.panels) {
        draw_panel(area, panel, top)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    top: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        // 0..3: the segmented range covers 0 to 3 inclusive, a segment each.
        .build_cartesian_2d((0..3usize).into_segmented(), (FLOOR..top).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("(r1, r2); red: impossible under sequential consistency")
        .y_desc("runs (log scale)")
        .x_labels(4)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => LABELS.get(*i).copied().unwrap_or("").to_string(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| {
            if *v < 1.0 {
                String::new()
            } else {
                crate::fmt::group(v.round() as u64)
            }
        })
        .draw()?;
    chart.draw_series(
        panel
            .counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, &n)| {
                // (0, 0) is the forbidden outcome: red.
                let color = if i == 0 { RED.mix(0.7) } else { BLUE.mix(0.55) };
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), FLOOR),
                        (SegmentValue::Exact(i + 1), n as f64),
                    ],
                    color.filled(),
                );
                bar.set_margin(0, 0, 12, 12);
                bar
            }),
    )?;
    let above = TextStyle::from(("sans-serif", 13)).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(panel.counts.iter().enumerate().map(|(i, &n)| {
        Text::new(
            crate::fmt::group(n),
            (SegmentValue::CenterOf(i), (n as f64).max(FLOOR) * 1.1),
            above.clone(),
        )
    }))?;
    Ok(())
}
