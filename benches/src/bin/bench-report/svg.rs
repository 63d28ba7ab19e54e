//! Rendering: contended_procs.svg, throughput against contending processes
//! for each lock; ladder.svg, the latency ladder's percentiles per rung.

use crate::figures::{FEW, MANY, Series};
use crate::format;
use anyhow::Result;
use ipc::ladder::Mechanism;
use plotters::coord::Shift;
use plotters::prelude::*;
use race::SyncMode;
use shmlab_benches::{Case, ladder};
use std::ops::Range;
use std::path::Path;

/// The pictures' width, in pixels.
const WIDTH: u32 = 900;
/// contended_procs.svg's size, in pixels.
const SIZE: (u32, u32) = (WIDTH, 560);
/// Room above the highest point and below the lowest, as a factor (the y
/// axis is logarithmic).
const HEADROOM: f64 = 1.6;
/// The y axis counts millions of increments per second.
const PER_MILLION: f64 = 1e6;
/// Room left and right of the first and last contender count, in log2
/// units.
const X_MARGIN: f64 = 0.2;

/// The colours, from matplotlib's `tab10`.
mod tab10 {
    use plotters::style::RGBColor;
    pub const BLUE: RGBColor = RGBColor(31, 119, 180);
    pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
    pub const GREEN: RGBColor = RGBColor(44, 160, 44);
    pub const RED: RGBColor = RGBColor(214, 39, 40);
    pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
    pub const GREY: RGBColor = RGBColor(127, 127, 127);
    pub const CYAN: RGBColor = RGBColor(23, 190, 207);
}

/// Each case's colour.
fn color(case: Case) -> RGBColor {
    match case {
        Case(SyncMode::Futex) => tab10::RED,
        Case(SyncMode::Spin) => tab10::ORANGE,
        Case(SyncMode::Pthread) => tab10::BLUE,
        Case(SyncMode::PthreadPlain) => tab10::CYAN,
        Case(SyncMode::Sem) => tab10::GREEN,
        Case(SyncMode::SemUnnamed) => tab10::PURPLE,
        _ => tab10::GREY,
    }
}

/// A white picture of `size` pixels to be written to `path`.
fn canvas(path: &Path, size: (u32, u32)) -> Result<DrawingArea<SVGBackend<'_>, Shift>> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// A chart on `root` with every picture's caption font, margin and x label
/// room; `y_label_area`: the room for the y labels, in pixels.
fn chart_on<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(y_label_area);
    b
}

/// The span of a logarithmic axis that shows every one of `values`, with
/// [`HEADROOM`] either side.
fn log_span(values: &[f64]) -> Range<f64> {
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-6)
        / HEADROOM;
    let hi = values.iter().copied().fold(0.0, f64::max) * HEADROOM;
    lo..hi
}

/// Every picture's legend, at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Whether `y` is (about) a whole number: where a label goes on an axis
/// whose whole numbers stand for something.
fn whole(y: f64) -> Option<i64> {
    ((y - y.round()).abs() < 1e-6).then_some(y.round() as i64)
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
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(_, y)| y / PER_MILLION))
        .collect();
    let xs = (x(FEW) - X_MARGIN)..(x(MANY) + X_MARGIN);
    let root = canvas(path, SIZE)?;
    let mut chart = chart_on(
        &root,
        "Contended increments across processes (medians, one cargo bench run)",
        70,
    )
    .build_cartesian_2d(xs, log_span(&ys).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("contending processes")
        .y_desc("million increments per second (log scale)")
        .x_labels(13)
        .x_label_formatter(&|x| whole(*x).map_or(String::new(), |n| (1u64 << n).to_string()))
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
    legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    root.present()?;
    Ok(())
}

/// ladder.svg's height per rung, and around them, in pixels.
const LADDER_ROW_PX: u32 = 44;
const LADDER_FRAME_PX: u32 = 140;
/// How far the pinned run's marks sit above a rung's line, and the
/// unpinned run's below, in rungs.
const LADDER_OFFSET: f64 = 0.17;
/// Marker sizes, in pixels.
const MARK: i32 = 5;

/// Each ladder run's colour: pinned, unpinned.
fn run_color(pin_asked: bool) -> RGBColor {
    if pin_asked {
        tab10::BLUE
    } else {
        tab10::ORANGE
    }
}

/// Draws the latency ladder `l` (with at least one row) to `path`: one
/// line per rung, the first at the top; per run a bar from p50 to p99.9
/// with a dot at p50, a triangle at p99 and a cross at p99.9, on a log
/// time axis.
pub fn draw_ladder(l: &ladder::Results, path: &Path) -> Result<()> {
    let rungs: Vec<&str> = Mechanism::ALL
        .into_iter()
        .map(Mechanism::name)
        .filter(|&n| {
            l.runs()
                .any(|(_, run)| run.rows.iter().any(|r| r.rung == n))
        })
        .collect();
    let n = rungs.len();
    let level = |rung: &str| {
        let i = rungs.iter().position(|&r| r == rung).unwrap_or(0);
        (n - 1 - i) as f64
    };
    let times = l
        .runs()
        .flat_map(|(_, run)| run.rows.iter())
        .flat_map(|r| [r.p50_ns, r.p99_9_ns])
        .map(|ns| ns.max(1) as f64)
        .collect::<Vec<_>>();
    let height = LADDER_FRAME_PX + LADDER_ROW_PX * n as u32;
    let root = canvas(path, (WIDTH, height))?;
    let mut chart = chart_on(
        &root,
        "Latency ladder: round trip between two processes (one run)",
        110,
    )
    .build_cartesian_2d(log_span(&times).log_scale(), -0.5..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .x_desc("round trip (log scale): dot p50, triangle p99, cross p99.9")
        .x_label_formatter(&|x| format::ns(*x))
        .y_labels(n)
        .y_label_formatter(&|y| {
            whole(*y)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| n.checked_sub(i + 1))
                .and_then(|i| rungs.get(i))
                .map_or(String::new(), |r| r.to_string())
        })
        .draw()?;
    for (pin_asked, run) in l.runs() {
        let color = run_color(pin_asked);
        let y = |r: &ladder::Row| {
            level(&r.rung)
                + if pin_asked {
                    LADDER_OFFSET
                } else {
                    -LADDER_OFFSET
                }
        };
        let at = |ns: u64, r: &ladder::Row| (ns.max(1) as f64, y(r));
        chart
            .draw_series(run.rows.iter().map(|r| {
                PathElement::new(
                    vec![at(r.p50_ns, r), at(r.p99_9_ns, r)],
                    color.stroke_width(2),
                )
            }))?
            .label(run.placement(pin_asked))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            run.rows
                .iter()
                .map(|r| Circle::new(at(r.p50_ns, r), MARK, color.filled())),
        )?;
        chart.draw_series(
            run.rows
                .iter()
                .map(|r| TriangleMarker::new(at(r.p99_ns, r), MARK + 1, color.filled())),
        )?;
        chart.draw_series(
            run.rows
                .iter()
                .map(|r| Cross::new(at(r.p99_9_ns, r), MARK, color.stroke_width(2))),
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}
