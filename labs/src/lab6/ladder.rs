//! `--ladder`: the round trip between two processes for every way one can
//! wake the other, as a distribution (p50 … max), pinned to two CPUs and
//! then unpinned; `--plot` draws the pinned histograms.

use crate::fmt;
use anyhow::Context;
use ipc::ladder::{self, Ladder, Mechanism, Options};
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

/// The percentiles the table shows.
pub const PERCENTILES: [f64; 4] = [50.0, 90.0, 99.0, 99.9];

/// What `--ladder` measured: the pinned run and the unpinned one.
#[derive(Clone, Debug)]
pub struct LadderReport {
    /// Pinned to two CPUs where allowed.
    pub pinned: Ladder,
    /// Left to the scheduler.
    pub unpinned: Ladder,
}

/// `--ladder`: runs every rung pinned, then unpinned, and prints both.
pub fn ladder(
    round_trips: u64,
    plot: Option<&Path>,
    out: &mut impl Write,
) -> anyhow::Result<LadderReport> {
    let opts = Options {
        round_trips,
        warmup: ladder::WARMUP,
        pin: true,
    };
    writeln!(
        out,
        "lab6-pipes --ladder: one round trip between two processes, for every way to signal"
    )?;
    writeln!(
        out,
        "{} timed round trips per row (after {} untimed), each timed on its own; every value checked",
        fmt::group(round_trips),
        fmt::group(opts.warmup)
    )?;
    let pinned = ladder::run_ladder(&Mechanism::ALL, &opts).context("the pinned ladder")?;
    match pinned.pinned {
        Some(p) => writeln!(
            out,
            "pinned: the timing process on CPU {}, the answering process on CPU {} (allowed CPUs: {:?})\n",
            p.parent, p.child, pinned.allowed_cpus
        )?,
        None => writeln!(
            out,
            "NOT pinned: only CPU(s) {:?} allowed, so both processes share a CPU and the spinning rows wait for time slices\n",
            pinned.allowed_cpus
        )?,
    }
    print_table(&pinned, out)?;
    let unpinned = ladder::run_ladder(&Mechanism::ALL, &Options { pin: false, ..opts })
        .context("the unpinned ladder")?;
    writeln!(
        out,
        "\nunpinned (the scheduler places both processes; same round trips):\n"
    )?;
    print_unpinned(&unpinned, &pinned, out)?;
    writeln!(out, "\nWhat to notice:")?;
    writeln!(
        out,
        "- The floor is two cache-line transfers between the CPUs; a spinning receiver gets within a small factor of it, because nobody enters the kernel."
    )?;
    writeln!(
        out,
        "- Every rung that sleeps pays a system call to wake the peer and a wake-up (scheduler) on the other CPU, per direction: that, not the bytes, is a pipe's cost, which is why futex, semaphores, eventfd and sockets land near it."
    )?;
    writeln!(
        out,
        "- spin-futex spins up to {} before it sleeps: when the peer answers within that, it costs what spinning costs; the pure futex row always sleeps.\n- Compare the sleeping rungs pinned and unpinned: pinned, every wake-up crosses to the other CPU (an inter-processor interrupt; on a virtual machine a halted vCPU the hypervisor must wake); unpinned, the kernel may run the woken process on the waker's CPU. The spinning rungs need two CPUs to themselves: unpinned, or with other load, their tails (p99.9, max) are time slices.",
        fmt::duration_ns(ladder::ADAPTIVE_SPIN.as_nanos() as u64)
    )?;
    if let Some(path) = plot {
        draw(path, &pinned).with_context(|| format!("drawing {}", path.display()))?;
        writeln!(out, "\nwrote {}", path.display())?;
    }
    Ok(LadderReport { pinned, unpinned })
}

fn ratio(l: &Ladder, m: Mechanism, base: Mechanism) -> String {
    l.ratio(m, base, 50.0).map_or("-".into(), fmt::times)
}

fn print_table(l: &Ladder, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}  how",
        "rung", "p50", "p90", "p99", "p99.9", "max", "÷ pipe", "÷ floor"
    )?;
    for r in &l.rows {
        let p: Vec<String> = PERCENTILES
            .iter()
            .map(|&p| fmt::duration_ns(r.percentile(p)))
            .collect();
        writeln!(
            out,
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}  {}",
            r.mechanism.name(),
            p[0],
            p[1],
            p[2],
            p[3],
            fmt::duration_ns(r.max()),
            ratio(l, r.mechanism, Mechanism::Pipe),
            ratio(l, r.mechanism, Mechanism::CacheLine),
            r.mechanism.what()
        )?;
    }
    writeln!(
        out,
        "(÷ pipe and ÷ floor compare medians (p50) of this run; the floor is the cache-line row)"
    )?;
    Ok(())
}

fn print_unpinned(l: &Ladder, pinned: &Ladder, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>14}",
        "rung", "p50", "p99", "p99.9", "max", "÷ pipe", "p50 ÷ pinned"
    )?;
    for r in &l.rows {
        let vs = pinned
            .row(r.mechanism)
            .map(|p| p.percentile(50.0))
            .filter(|&p| p > 0)
            .map_or("-".into(), |p| {
                fmt::times(r.percentile(50.0) as f64 / p as f64)
            });
        writeln!(
            out,
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>14}",
            r.mechanism.name(),
            fmt::duration_ns(r.percentile(50.0)),
            fmt::duration_ns(r.percentile(99.0)),
            fmt::duration_ns(r.percentile(99.9)),
            fmt::duration_ns(r.max()),
            ratio(l, r.mechanism, Mechanism::Pipe),
            vs
        )?;
    }
    Ok(())
}

/// Bins per decade of the histogram's log-scaled time axis.
const BINS_PER_DECADE: f64 = 20.0;

/// One histogram line per rung: the fraction of round trips in each
/// log-spaced bin, over a log time axis.
pub fn draw(path: &Path, l: &Ladder) -> anyhow::Result<()> {
    let lo = l
        .rows
        .iter()
        .filter_map(|r| r.samples.first())
        .min()
        .copied()
        .unwrap_or(1)
        .max(1) as f64;
    let hi = l.rows.iter().map(|r| r.max()).max().unwrap_or(2).max(2) as f64;
    let (llo, lhi) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10() + 1.0));
    let nbins = ((lhi - llo) * BINS_PER_DECADE) as usize;
    let hists: Vec<(String, Vec<(f64, f64)>)> = l
        .rows
        .iter()
        .map(|r| {
            let mut counts = vec![0u64; nbins];
            for &s in &r.samples {
                let b = (((s.max(1) as f64).log10() - llo) * BINS_PER_DECADE) as usize;
                counts[b.min(nbins - 1)] += 1;
            }
            let n = r.samples.len().max(1) as f64;
            let pts = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    let mid = 10f64.powf(llo + (i as f64 + 0.5) / BINS_PER_DECADE);
                    (mid, c as f64 / n)
                })
                .collect();
            (r.mechanism.name().to_string(), pts)
        })
        .collect();
    let top = hists
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(0.0, f64::max)
        * 1.1
        + 1e-9;
    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let where_ = match l.pinned {
        Some(p) => format!("pinned to CPUs {} and {}", p.parent, p.child),
        None => "unpinned".to_string(),
    };
    let n = l.rows.first().map_or(0, |r| r.samples.len());
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("round trip between two processes, {n} per rung, {where_}"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((10f64.powf(llo)..10f64.powf(lhi)).log_scale(), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("round-trip time, ns (log scale; 20 bins per decade)")
        .y_desc("fraction of round trips in the bin")
        .x_label_formatter(&|v| fmt::duration_ns(*v as u64))
        .draw()?;
    for (i, (name, pts)) in hists.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
