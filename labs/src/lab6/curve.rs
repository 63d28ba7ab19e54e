//! `--curve`: stream throughput against message size, 64 B to 1 MiB, a
//! pipe against the shared-memory ring (receiver checking in place, and
//! copying out); `--plot` draws it. Where shared memory starts to win, and
//! by how much, is the lesson: a pipe pays two system calls per message,
//! the ring nothing per message but the copy (and a wake-up when its peer
//! sleeps), so small messages favour the ring by the system calls and large
//! ones by the copy it saves.

use crate::fmt;
use anyhow::Context;
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Message sizes of the curve: 64 B × 4^k up to 1 MiB.
pub const SIZES: [usize; 8] = [
    64,
    256,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
];

/// The curve's series, in table order.
pub const SERIES: [&str; 4] = [
    "pipe",
    "ring (futex, in place)",
    "ring (adaptive, in place)",
    "ring (futex, copy-out)",
];

/// One message size's throughputs, bytes per second, in [`SERIES`] order.
#[derive(Clone, Debug)]
pub struct Point {
    /// Message size in bytes.
    pub msg: usize,
    /// Bytes streamed per run.
    pub bytes: u64,
    /// Bytes per second for each series (best of the runs).
    pub per_sec: [f64; 4],
}

/// Bytes streamed at message size `msg`: 100 000 messages, at least 16 MiB
/// and at most `max_bytes`.
fn bytes_for(msg: usize, max_bytes: u64) -> u64 {
    (msg as u64 * 100_000).clamp(16 << 20, max_bytes.max(16 << 20))
}

fn best(runs: usize, mut f: impl FnMut() -> ipc::Result<Duration>) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        best = best.min(f()?);
    }
    Ok(best)
}

/// `--curve`: measures, prints and (with `plot`) draws the curve, the
/// rings holding `ring` bytes.
pub fn curve(
    max_bytes: u64,
    ring: usize,
    plot: Option<&Path>,
    out: &mut impl Write,
) -> anyhow::Result<Vec<Point>> {
    const RUNS: usize = 3;
    writeln!(
        out,
        "lab6-pipes --curve: one-way stream throughput against message size, pipe against the shared-memory ring ({} ring)",
        fmt::bytes(ring as u64)
    )?;
    writeln!(
        out,
        "each point streams 100,000 messages (16 MiB to {} per run), best of {RUNS} runs; every byte is checked by the receiver\n",
        fmt::bytes(max_bytes.max(16 << 20))
    )?;
    writeln!(
        out,
        "{:>8} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "message",
        "bytes/run",
        "pipe",
        "ring",
        "ring adapt",
        "ring copy",
        "ring ÷ pipe",
        "copy ÷ pipe"
    )?;
    let mut points = Vec::new();
    for msg in SIZES {
        let bytes = bytes_for(msg, max_bytes);
        use ipc::Receive::{CopyOut, InPlace};
        use ipc::Signal::{Adaptive, Futex};
        let ring_stream = |signal, receive| {
            let how = ipc::ShmStream {
                signal,
                capacity: ring,
                receive,
            };
            best(RUNS, || ipc::shm_stream_with(bytes, msg, &how))
        };
        let times = [
            best(RUNS, || ipc::pipe_stream(bytes, msg)).context("pipe stream")?,
            ring_stream(Futex, InPlace).context("ring stream")?,
            ring_stream(Adaptive, InPlace).context("adaptive ring stream")?,
            ring_stream(Futex, CopyOut).context("copy-out ring stream")?,
        ];
        let per_sec = times.map(|d| bytes as f64 / d.as_secs_f64().max(1e-12));
        let rate = |b: f64| format!("{:.2} GiB/s", b / (1u64 << 30) as f64);
        writeln!(
            out,
            "{:>8} {:>10} {:>11} {:>11} {:>11} {:>11} {:>10.2}x {:>10.2}x",
            fmt::bytes(msg as u64),
            fmt::bytes(bytes),
            rate(per_sec[0]),
            rate(per_sec[1]),
            rate(per_sec[2]),
            rate(per_sec[3]),
            per_sec[1] / per_sec[0],
            per_sec[3] / per_sec[0]
        )?;
        points.push(Point {
            msg,
            bytes,
            per_sec,
        });
    }
    writeln!(out, "\nWhat to notice:")?;
    writeln!(
        out,
        "- A pipe pays a write and a read system call per message, so small messages are slow; the ring pays for a message only the copy (and a wake-up when the other side sleeps)."
    )?;
    writeln!(
        out,
        "- For large messages both are bound by copying: the pipe copies each byte twice (into the kernel, out of it), the in-place ring once; copying out again (ring copy) gives back part of the gain."
    )?;
    for series in [1, 3] {
        writeln!(out, "- This run: {}.", where_it_wins(&points, series))?;
    }
    if let Some(path) = plot {
        draw(path, &points).with_context(|| format!("drawing {}", path.display()))?;
        writeln!(out, "\nwrote {}", path.display())?;
    }
    Ok(points)
}

/// Where series `series` (an index into [`SERIES`], not the pipe) beat the
/// pipe, in words: at every size, at none, or at which sizes, and the
/// crossover — the smallest size from which it won at every larger one.
pub fn where_it_wins(points: &[Point], series: usize) -> String {
    let name = SERIES[series];
    let ratios: Vec<f64> = points
        .iter()
        .map(|p| p.per_sec[series] / p.per_sec[0])
        .collect();
    if ratios.is_empty() {
        return format!("{name}: no sizes measured");
    }
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    let span = format!("{lo:.2}x to {hi:.2}x the pipe");
    let won = |i: usize| ratios[i] > 1.0;
    let sizes = |keep: &dyn Fn(usize) -> bool| {
        let v: Vec<String> = (0..points.len())
            .filter(|&i| keep(i))
            .map(|i| fmt::bytes(points[i].msg as u64))
            .collect();
        v.join(", ")
    };
    if (0..ratios.len()).all(won) {
        return format!("{name} beat the pipe at every size ({span}): no crossover in this range");
    }
    if !(0..ratios.len()).any(won) {
        return format!("the pipe beat {name} at every size ({span})");
    }
    let mut text = format!(
        "{name} beat the pipe at {} ({span}); the pipe was ahead at {}",
        sizes(&won),
        sizes(&|i| !won(i))
    );
    // The crossover: the first size from which every larger one is won.
    let from = (0..ratios.len()).rev().take_while(|&i| won(i)).last();
    if let Some(from) = from {
        text += &format!(
            "; from {} up it always won (the crossover)",
            fmt::bytes(points[from].msg as u64)
        );
    }
    text
}

/// GiB/s against message size (both log scales), one line per series.
pub fn draw(path: &Path, points: &[Point]) -> anyhow::Result<()> {
    let gib = (1u64 << 30) as f64;
    let lo = points
        .iter()
        .flat_map(|p| p.per_sec)
        .fold(f64::MAX, f64::min)
        / gib;
    let hi = points.iter().flat_map(|p| p.per_sec).fold(0.0, f64::max) / gib;
    let (xlo, xhi) = (
        points.first().map_or(64, |p| p.msg) as f64,
        points.last().map_or(1 << 20, |p| p.msg) as f64,
    );
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "stream throughput against message size: pipe vs shared-memory ring",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (xlo / 1.2..xhi * 1.2).log_scale(),
            (lo / 1.5..hi * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("message size (log scale)")
        .y_desc("GiB/s, every byte checked (log scale)")
        .x_label_formatter(&|v| fmt::bytes(*v as u64))
        .draw()?;
    for (i, name) in SERIES.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.msg as f64, p.per_sec[i] / gib)),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new((p.msg as f64, p.per_sec[i] / gib), 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points at 64 B, 256 B, 1 KiB, 4 KiB with the pipe at 1 and the
    /// in-place ring at `ring`.
    fn points(ring: [f64; 4]) -> Vec<Point> {
        SIZES[..4]
            .iter()
            .zip(ring)
            .map(|(&msg, r)| Point {
                msg,
                bytes: 1,
                per_sec: [1.0, r, 1.0, 1.0],
            })
            .collect()
    }

    #[test]
    fn the_words_name_where_the_ring_won_and_the_crossover() {
        assert_eq!(
            where_it_wins(&points([2.0, 3.0, 4.0, 5.0]), 1),
            "ring (futex, in place) beat the pipe at every size (2.00x to 5.00x the pipe): no crossover in this range"
        );
        assert_eq!(
            where_it_wins(&points([0.5, 0.8, 0.9, 0.25]), 1),
            "the pipe beat ring (futex, in place) at every size (0.25x to 0.90x the pipe)"
        );
        assert_eq!(
            where_it_wins(&points([0.5, 2.0, 0.9, 3.0]), 1),
            "ring (futex, in place) beat the pipe at 256 B, 4 KiB (0.50x to 3.00x the pipe); the pipe was ahead at 64 B, 1 KiB; from 4 KiB up it always won (the crossover)"
        );
        assert_eq!(
            where_it_wins(&points([2.0, 0.5, 3.0, 0.9]), 1),
            "ring (futex, in place) beat the pipe at 64 B, 1 KiB (0.50x to 3.00x the pipe); the pipe was ahead at 256 B, 4 KiB"
        );
    }
}
