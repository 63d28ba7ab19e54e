//! Rendering: contended_procs.svg, throughput against contending processes
//! for each lock.

use crate::figures::{FEW, MANY, Series};
use anyhow::Result;
use plotters::prelude::*;
use race::SyncMode;
use shmlab_benches::Case;
use std::path::Path;

/// The picture's size, in pixels.
const SIZE: (u32, u32) = (900, 560);
/// Room above the highest point and below the lowest, as a factor (the y
/// axis is logarithmic).
const HEADROOM: f64 = 1.6;
/// The y axis counts millions of increments per second.
const PER_MILLION: f64 = 1e6;
/// Room left and right of the first and last contender count, in log2
/// units.
const X_MARGIN: f64 = 0.2;

/// Each case's colour (from matplotlib's `tab10`).
fn color(case: Case) -> RGBColor {
    match case {
        Case(SyncMode::Futex) => RGBColor(214, 39, 40),
        Case(SyncMode::Spin) => RGBColor(255, 127, 14),
        Case(SyncMode::Pthread) => RGBColor(31, 119, 180),
        Case(SyncMode::PthreadPlain) => RGBColor(23, 190, 207),
        Case(SyncMode::Sem) => RGBColor(44, 160, 44),
        Case(SyncMode::SemUnnamed) => RGBColor(148, 103, 189),
        _ => RGBColor(127, 127, 127),
    }
}

/// Draws `series` (not empty) to `path`.
pub fn draw(series: &[Series], path: &Path) -> Result<()> {
    // x is log2(contenders), so 2, 4 and 8 sit evenly spaced.
    let x = |n: u32| f64::from(n).log2();
    let pts = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .map(|&(n, per_sec)| (x(n), per_sec / PER_MILLION))
            .collect()
    };
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(_, y)| y / PER_MILLION));
    let lo = ys.clone().fold(f64::INFINITY, f64::min).max(1e-6) / HEADROOM;
    let hi = ys.fold(0.0, f64::max) * HEADROOM;
    let xs = (x(FEW) - X_MARGIN)..(x(MANY) + X_MARGIN);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Contended increments across processes (medians, one cargo bench run)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(xs, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("contending processes")
        .y_desc("million increments per second (log scale)")
        .x_labels(13)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{}", 2f64.powf(x.round()) as u32)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .draw()?;
    for s in series {
        let color = color(s.case);
        let pts = pts(s);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(s.case.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
