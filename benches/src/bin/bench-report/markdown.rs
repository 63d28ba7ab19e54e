//! Rendering: results.md, every table in Markdown.

use crate::aims::{Aim, Ratio};
use crate::figures::{ContendedRow, FEW, MANY, Tables};
use crate::format::{self, DASH};
use crate::machine::Machine;
use shmlab_benches::{CONTENDERS, fairness};
use std::fmt::{self as sfmt, Write as _};
use std::time::Duration;

/// Everything results.md shows.
#[derive(Debug)]
pub struct Page<'a> {
    pub machine: &'a Machine,
    /// How many benchmarks criterion's results hold.
    pub benchmarks: usize,
    /// Over how long they were written.
    pub span: Duration,
    pub tables: &'a Tables,
    pub ratios: &'a [Ratio],
    /// `None`: not measured.
    pub fairness: Option<&'a fairness::Results>,
    pub aims: &'a [Aim],
}

/// results.md.
pub fn render(p: &Page<'_>) -> String {
    let mut md = String::new();
    page(&mut md, p).expect("writing to a String cannot fail");
    md
}

fn page(md: &mut String, p: &Page<'_>) -> sfmt::Result {
    writeln!(
        md,
        "<!-- written by bench-report; numbers are medians from one `cargo bench` run -->\n"
    )?;
    machine(md, p)?;
    writeln!(
        md,
        "### Uncontended: one lock/unlock around one increment\n"
    )?;
    uncontended(md, p.tables)?;
    writeln!(
        md,
        "\n### Contended, threads (ns per increment; ops/s = increments per second, all contenders together)\n"
    )?;
    contended(md, &p.tables.threads)?;
    writeln!(md, "\n### Contended, processes\n")?;
    contended(md, &p.tables.procs)?;
    writeln!(
        md,
        "\n### Processes ÷ threads (ns per increment; above 1: processes are slower)\n"
    )?;
    procs_over_threads(md, p.tables)?;
    writeln!(md, "\n### IPC\n")?;
    ipc(md, p.tables)?;
    ratios(md, p.ratios)?;
    fairness(md, p.fairness)?;
    aims(md, p.aims)
}

fn machine(md: &mut String, p: &Page<'_>) -> sfmt::Result {
    let m = p.machine;
    writeln!(md, "### Machine\n")?;
    writeln!(md, "| | |\n|---|---|")?;
    writeln!(md, "| CPU | {} |", m.cpu)?;
    writeln!(md, "| cores | {} |", m.cores)?;
    let (virtualised, flag) = if m.hypervisor_flag {
        ("yes", "present")
    } else {
        ("no flag seen", "absent")
    };
    writeln!(
        md,
        "| virtualised | {virtualised} (`hypervisor` CPU flag: {flag}; `systemd-detect-virt`: {}) |",
        m.virt
    )?;
    writeln!(md, "| kernel | {} |", m.kernel)?;
    writeln!(md, "| glibc | {} |", m.glibc)?;
    writeln!(md, "| rustc | {} |", m.rustc)?;
    writeln!(
        md,
        "| results | {} benchmarks, written over {} s |\n",
        p.benchmarks,
        p.span.as_secs()
    )?;
    Ok(())
}

fn uncontended(md: &mut String, t: &Tables) -> sfmt::Result {
    writeln!(
        md,
        "| case | ns/op | ops/s | ÷ fetch_add | ÷ pthread |\n|---|---:|---:|---:|---:|"
    )?;
    for r in &t.uncontended {
        writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            r.case,
            format::ns(r.speed.ns_per_op),
            format::rate(r.speed.per_sec),
            format::ratio(r.over_fetch_add),
            format::ratio(r.over_pthread),
        )?;
    }
    Ok(())
}

fn contended(md: &mut String, rows: &[ContendedRow]) -> sfmt::Result {
    write!(md, "| case |")?;
    for n in CONTENDERS {
        write!(md, " {n}: ns/op | {n}: ops/s |")?;
    }
    writeln!(md, " {MANY} ÷ {FEW} throughput |")?;
    write!(md, "|---|")?;
    for _ in CONTENDERS {
        write!(md, "---:|---:|")?;
    }
    writeln!(md, "---:|")?;
    for r in rows {
        write!(md, "| `{}` |", r.case)?;
        for s in &r.at {
            match s {
                Some(s) => write!(
                    md,
                    " {} | {} |",
                    format::ns(s.ns_per_op),
                    format::rate(s.per_sec)
                )?,
                None => write!(md, " {DASH} | {DASH} |")?,
            }
        }
        writeln!(md, " {} |", format::ratio(r.keeps))?;
    }
    Ok(())
}

fn procs_over_threads(md: &mut String, t: &Tables) -> sfmt::Result {
    write!(md, "| case |")?;
    for n in CONTENDERS {
        write!(md, " {n} |")?;
    }
    write!(md, "\n|---|")?;
    for _ in CONTENDERS {
        write!(md, "---:|")?;
    }
    writeln!(md)?;
    for r in &t.procs_over_threads {
        write!(md, "| `{}` |", r.case)?;
        for q in &r.at {
            write!(md, " {} |", format::ratio(*q))?;
        }
        writeln!(md)?;
    }
    Ok(())
}

fn ipc(md: &mut String, t: &Tables) -> sfmt::Result {
    writeln!(
        md,
        "| round trip | ns/round trip | round trips/s | ÷ pipe |\n|---|---:|---:|---:|"
    )?;
    for r in &t.round_trips {
        writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            r.name,
            format::ns(r.speed.ns_per_op),
            format::rate(r.speed.per_sec),
            format::ratio(r.over_pipe)
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "| stream | bytes per run | time per run | GiB/s | ÷ pipe |\n|---|---:|---:|---:|---:|"
    )?;
    for r in &t.streams {
        writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            r.name,
            format::mib(r.bytes),
            format::ns(r.run_ns),
            format::gib_per_sec(r.bytes_per_sec),
            format::ratio(r.over_pipe)
        )?;
    }
    Ok(())
}

fn ratios(md: &mut String, ratios: &[Ratio]) -> sfmt::Result {
    writeln!(
        md,
        "\n### Ratios\n\n| ratio | value | reads as |\n|---|---:|---|"
    )?;
    for x in ratios {
        writeln!(
            md,
            "| {} | {} | {} |",
            x.what,
            format::ratio(x.value),
            x.meaning
        )?;
    }
    Ok(())
}

fn fairness(md: &mut String, fair: Option<&fairness::Results>) -> sfmt::Result {
    let Some(f) = fair else {
        writeln!(
            md,
            "\n### Fairness\n\nNot measured: run `{}`, then bench-report again.",
            fairness::COMMAND
        )?;
        return Ok(());
    };
    writeln!(
        md,
        "\n### Fairness ({} race trials per row of about {} ms each, measured by `{}`{})\n",
        f.settings.trials,
        f.settings.trial_ms,
        fairness::COMMAND,
        if f.quick { ", a quick run" } else { "" }
    )?;
    writeln!(
        md,
        "| lock | processes | increments each | Jain (median) | Jain (worst) | min share | max share | min ÷ mean |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for r in &f.rows {
        writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            r.lock,
            r.procs,
            r.iters,
            format::fraction(r.jain_median),
            format::fraction(r.jain_min),
            format::fraction(r.min_share),
            format::fraction(r.max_share),
            format::factor(r.min_over_mean)
        )?;
    }
    Ok(())
}

fn aims(md: &mut String, aims: &[Aim]) -> sfmt::Result {
    writeln!(
        md,
        "\n### Aims\n\n| aim | measured | status |\n|---|---|---|"
    )?;
    for a in aims {
        let status = match (a.judged, a.met) {
            (false, _) => "see text",
            (true, Some(true)) => "met",
            (true, Some(false)) => "missed",
            (true, None) => "not measured",
        };
        writeln!(md, "| {} | {} | {status} |", a.aim, a.measured)?;
    }
    Ok(())
}
