//! Rendering: results.md, every table in Markdown.

use crate::aims::{Aim, Ratio};
use crate::figures::{ContendedRow, FEW, MANY, Tables};
use crate::format::{self, DASH};
use crate::machine::Machine;
use shmlab_benches::{CONTENDERS, HOLD, QUICK_ENV, fairness, ladder};
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
    /// `None`: not measured.
    pub ladder: Option<&'a ladder::Results>,
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
        "\n### Contended, processes, critical section held: load, {HOLD} `spin_loop` rounds, store\n"
    )?;
    contended(md, &p.tables.held)?;
    writeln!(
        md,
        "\n### Processes ÷ threads (ns per increment; above 1: processes are slower)\n"
    )?;
    procs_over_threads(md, p.tables)?;
    writeln!(md, "\n### IPC\n")?;
    ipc(md, p.tables)?;
    ratios(md, p.ratios)?;
    fairness(md, p.fairness)?;
    latency_ladder(md, p.ladder)?;
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

/// The section `title` of results a bench's `command` would measure.
fn not_measured(md: &mut String, title: &str, command: &str) -> sfmt::Result {
    writeln!(
        md,
        "\n### {title}\n\nNot measured: run `{command}`, then bench-report again."
    )
}

fn fairness(md: &mut String, fair: Option<&fairness::Results>) -> sfmt::Result {
    let Some(f) = fair else {
        return not_measured(md, "Fairness", fairness::COMMAND);
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

fn latency_ladder(md: &mut String, l: Option<&ladder::Results>) -> sfmt::Result {
    let Some(l) = l else {
        return not_measured(md, "Latency ladder", ladder::COMMAND);
    };
    writeln!(
        md,
        "\n### Latency ladder (round trip between two processes, {} round trips per row)\n",
        l.round_trips_per_row
    )?;
    writeln!(
        md,
        "Percentiles of every round trip; p50 ÷ pipe and p50 ÷ floor divide by the `{}` and `{}` rows of the same run. Measured by `{}`.",
        ladder::PIPE,
        ladder::FLOOR,
        ladder::COMMAND
    )?;
    if l.quick {
        writeln!(
            md,
            "\nA quick run ({QUICK_ENV}=1): a smoke check whose tails mean little; rerun `{}` without it for figures to publish.",
            ladder::COMMAND
        )?;
    }
    for (pin_asked, run) in l.runs() {
        let mut heading = run.placement(pin_asked);
        if let Some(first) = heading.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        writeln!(md, "\n#### {heading}\n")?;
        writeln!(
            md,
            "| rung | p50 | p90 | p99 | p99.9 | max | p50 ÷ pipe | p50 ÷ floor |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for r in &run.rows {
            let ns = |x: u64| format::ns(x as f64);
            writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                r.rung,
                ns(r.p50_ns),
                ns(r.p90_ns),
                ns(r.p99_ns),
                ns(r.p99_9_ns),
                ns(r.max_ns),
                format::ratio(r.p50_vs_pipe),
                format::ratio(r.p50_vs_floor)
            )?;
        }
    }
    Ok(())
}

fn aims(md: &mut String, aims: &[Aim]) -> sfmt::Result {
    writeln!(
        md,
        "\n### Aims\n\n| aim | measured | status |\n|---|---|---|"
    )?;
    for a in aims {
        let status = match a.met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "not measured",
        };
        writeln!(md, "| {} | {} | {status} |", a.aim, a.measured)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ladder::{Pinning, Results, Row, Run};

    fn row(rung: &str, pinned: bool, p50_ns: u64, vs_pipe: Option<f64>) -> Row {
        let placement = if pinned { "pinned" } else { "unpinned" };
        Row {
            rung: rung.into(),
            id: format!("ladder/{rung}/{placement}"),
            round_trips: 1000,
            p50_ns,
            p90_ns: 2 * p50_ns,
            p99_ns: 3 * p50_ns,
            p99_9_ns: 40 * p50_ns,
            max_ns: 2_500_000,
            mean_ns: p50_ns as f64,
            p50_vs_pipe: vs_pipe,
            p50_vs_floor: Some(p50_ns as f64 / 150.0),
        }
    }

    /// A small hand-made ladder: pinned to CPUs 2 and 5, cache-line, futex
    /// (p50 0.5× the pipe's) and pipe; unpinned, futex alone (no pipe ratio).
    pub(crate) fn results(quick: bool) -> Results {
        Results {
            quick,
            round_trips_per_row: 1000,
            pinned_run: Some(Run {
                pinned: Some(Pinning {
                    parent_cpu: 2,
                    child_cpu: 5,
                }),
                allowed_cpus: vec![2, 5],
                rows: vec![
                    row("cache-line", true, 150, Some(0.04)),
                    row("futex", true, 3000, Some(0.5)),
                    row("pipe", true, 6000, Some(1.0)),
                ],
            }),
            unpinned_run: Some(Run {
                pinned: None,
                allowed_cpus: vec![2, 5],
                rows: vec![row("futex", false, 12_000, None)],
            }),
        }
    }

    fn rendered(l: Option<&Results>) -> String {
        let mut md = String::new();
        latency_ladder(&mut md, l).unwrap();
        md
    }

    #[test]
    fn ladder_tables_show_each_run_with_its_rows_and_ratios() {
        let md = rendered(Some(&results(false)));
        let lines: Vec<&str> = md.lines().collect();
        let pinned = "#### Pinned: timing process on CPU 2, answering process on CPU 5";
        let unpinned = "#### Unpinned (CPUs 2, 5 allowed)";
        let at = |l: &str| lines.iter().position(|x| *x == l);
        let (p, u) = (at(pinned).expect(&md), at(unpinned).expect(&md));
        assert!(p < u, "{md}");
        assert_eq!(
            lines[p + 2],
            "| rung | p50 | p90 | p99 | p99.9 | max | p50 ÷ pipe | p50 ÷ floor |"
        );
        assert_eq!(
            &lines[p + 4..p + 7],
            [
                "| `cache-line` | 150 ns | 300 ns | 450 ns | 6000 ns | 2.50 ms | 0.04× | 1.00× |",
                "| `futex` | 3000 ns | 6000 ns | 9000 ns | 120.0 µs | 2.50 ms | 0.50× | 20.00× |",
                "| `pipe` | 6000 ns | 12.0 µs | 18.0 µs | 240.0 µs | 2.50 ms | 1.00× | 40.00× |",
            ]
        );
        assert_eq!(
            lines[u + 4],
            "| `futex` | 12.0 µs | 24.0 µs | 36.0 µs | 480.0 µs | 2.50 ms | – | 80.00× |"
        );
        assert_eq!(lines.len(), u + 5, "{md}");
        assert!(md.contains(ladder::COMMAND), "{md}");
        assert!(!md.contains("quick run"), "{md}");
    }

    #[test]
    fn a_quick_ladder_says_so_and_a_missing_one_says_how_to_measure_it() {
        let md = rendered(Some(&results(true)));
        assert!(md.contains(&format!("A quick run ({QUICK_ENV}=1)")), "{md}");
        let md = rendered(None);
        assert!(
            md.contains(&format!("Not measured: run `{}`", ladder::COMMAND)),
            "{md}"
        );
        assert!(!md.contains("| rung |"), "{md}");
    }
}
