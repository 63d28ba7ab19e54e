//! `bench-report`: turns ONE `cargo bench` run into BENCHMARKS.md's tables.
//!
//! Reads criterion's `target/criterion/<group>/<bench>/new/{benchmark,estimates}.json`
//! (the median point estimate of each benchmark), describes the machine,
//! measures fairness itself (a few race trials per lock with 2 and 4
//! processes; criterion does not record per-worker shares), works out the
//! ratios and the issue's aims, and writes:
//!
//! - `<out>/results.md`: the tables, in Markdown;
//! - `<out>/contended_procs.svg`: throughput against contending processes
//!   for each lock;
//! - `<out>/results.json`: every number the tables hold.
//!
//! ```sh
//! cargo bench -p shmlab-benches
//! cargo run --release -p shmlab-benches --bin bench-report
//! ```

use anyhow::{Context, Result, bail};
use clap::Parser;
use race::Kind;
use shmlab_benches::{CONTENDERS, Case, ROUND_TRIPS, STREAMS, group};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Turn one criterion run into BENCHMARKS.md's tables, ratios and picture.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Criterion's output directory.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// Where to write results.md, results.json and contended_procs.svg.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
    /// Race trials per lock and contender count for the fairness table
    /// (0 skips it).
    #[arg(long, default_value_t = 7)]
    fairness_trials: u32,
    /// How long each fairness trial should last, in ms (increments per
    /// process are calibrated to it, so that every process gets scheduled
    /// many times).
    #[arg(long, default_value_t = 400)]
    fairness_ms: u64,
    /// Only measure fairness and print its table (no criterion results
    /// needed, nothing written).
    #[arg(long)]
    only_fairness: bool,
}

/// One benchmark's median, as criterion recorded it.
#[derive(Clone, Debug, serde::Serialize)]
struct Measured {
    /// Median time per iteration, ns.
    median_ns: f64,
    /// Elements (or bytes) one iteration processes.
    per_iter: u64,
    /// Whether `per_iter` counts bytes.
    bytes: bool,
    /// When criterion wrote it.
    #[serde(skip)]
    written: Option<SystemTime>,
}

impl Measured {
    /// Time per element (per increment, per round trip), ns.
    fn ns_per_op(&self) -> f64 {
        self.median_ns / self.per_iter.max(1) as f64
    }
    /// Elements (or bytes) per second.
    fn per_sec(&self) -> f64 {
        self.per_iter as f64 * 1e9 / self.median_ns
    }
}

/// Every benchmark of the run, by `group/function[/value]`.
type Results = BTreeMap<String, Measured>;

fn read_criterion(dir: &Path) -> Result<Results> {
    let mut out = Results::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    if let Some((id, m)) = read_one(&p)? {
                        out.insert(id, m);
                    }
                } else if p.file_name().is_none_or(|n| n != "base" && n != "report") {
                    stack.push(p);
                }
            }
        }
    }
    if out.is_empty() {
        bail!(
            "no criterion results under {}; run `cargo bench -p shmlab-benches` first",
            dir.display()
        );
    }
    Ok(out)
}

fn read_one(new_dir: &Path) -> Result<Option<(String, Measured)>> {
    let bj = new_dir.join("benchmark.json");
    let ej = new_dir.join("estimates.json");
    if !bj.exists() || !ej.exists() {
        return Ok(None);
    }
    let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bj)?)
        .with_context(|| format!("parsing {}", bj.display()))?;
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ej)?)
        .with_context(|| format!("parsing {}", ej.display()))?;
    let id = b["full_id"]
        .as_str()
        .with_context(|| format!("{}: no full_id", bj.display()))?
        .to_string();
    let median_ns = e["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{}: no median", ej.display()))?;
    let (per_iter, bytes) = match &b["throughput"] {
        serde_json::Value::Object(t) => {
            if let Some(n) = t.get("Elements").and_then(|v| v.as_u64()) {
                (n, false)
            } else if let Some(n) = t
                .get("Bytes")
                .or_else(|| t.get("BytesDecimal"))
                .and_then(|v| v.as_u64())
            {
                (n, true)
            } else {
                (1, false)
            }
        }
        _ => (1, false),
    };
    let written = std::fs::metadata(&ej).and_then(|m| m.modified()).ok();
    Ok(Some((
        id,
        Measured {
            median_ns,
            per_iter,
            bytes,
            written,
        },
    )))
}

/// The machine, as BENCHMARKS.md describes it.
#[derive(Debug, serde::Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    hypervisor_flag: bool,
    virt: String,
    kernel: String,
    glibc: String,
    rustc: String,
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            s.lines().next().unwrap_or("").to_string()
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown")
        .to_string();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let hypervisor_flag = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "hypervisor"));
    let virt = command_line("systemd-detect-virt", &[]);
    Machine {
        cpu,
        cores,
        hypervisor_flag,
        virt: if virt.is_empty() {
            "unknown".into()
        } else {
            virt
        },
        kernel: command_line("uname", &["-r"]),
        glibc: command_line("ldd", &["--version"]),
        rustc: command_line("rustc", &["--version"]),
    }
}

/// Fairness of one lock with N contending processes, over several trials.
#[derive(Debug, serde::Serialize)]
struct Fairness {
    lock: &'static str,
    procs: u32,
    trials: usize,
    /// Increments per process in each trial.
    iters: u64,
    /// Median of the trials' Jain indices.
    jain_median: f64,
    /// Lowest Jain index of any trial.
    jain_min: f64,
    /// Smallest share any worker got in any trial.
    min_share: f64,
    /// Largest share any worker got in any trial.
    max_share: f64,
    /// The smallest share divided by the mean share (1/N): 1 is fair, below
    /// 1/3 fails the issue's aim.
    min_over_mean: f64,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Increments per worker that make one trial of `lock` with `procs`
/// processes last about `target`: a share means little if the first worker
/// finishes inside one scheduler time slice, before the others ran at all.
fn calibrate(lock: Case, procs: u32, start: u64, target: Duration) -> Result<u64> {
    let mut iters = start;
    for _ in 0..4 {
        let r = lock.contend(Kind::Procs, procs, iters)?;
        let took = Duration::from_nanos(r.elapsed_ns);
        if took >= target / 2 {
            break;
        }
        let scale = (target.as_secs_f64() / took.as_secs_f64().max(1e-6)).min(100.0);
        iters = ((iters as f64 * scale) as u64).clamp(start, 100_000_000);
    }
    Ok(iters)
}

fn fairness(trials: u32, start_iters: u64, target: Duration) -> Result<Vec<Fairness>> {
    let mut out = Vec::new();
    for lock in Case::locks() {
        for procs in [2u32, 4] {
            let iters = calibrate(lock, procs, start_iters, target)?;
            let mut jains = Vec::new();
            let mut shares = Vec::new();
            for _ in 0..trials {
                let r = lock.contend(Kind::Procs, procs, iters)?;
                jains.push(r.fairness);
                shares.extend(r.per_worker.iter().map(|w| w.share));
            }
            eprintln!(
                "fairness: {} with {procs} processes: {trials} trials of {iters} increments each",
                lock.name()
            );
            let min_share = shares.iter().copied().fold(f64::INFINITY, f64::min);
            out.push(Fairness {
                lock: lock.name(),
                procs,
                trials: jains.len(),
                iters,
                jain_min: jains.iter().copied().fold(f64::INFINITY, f64::min),
                jain_median: median(jains),
                min_share,
                max_share: shares.iter().copied().fold(0.0, f64::max),
                min_over_mean: min_share * procs as f64,
            });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- formatting

fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "–".into()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

fn fmt_rate(per_sec: f64) -> String {
    if !per_sec.is_finite() {
        "–".into()
    } else if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} /s")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => "–".into(),
    }
}

struct Report<'a> {
    res: &'a Results,
}

impl Report<'_> {
    fn get(&self, id: &str) -> Option<&Measured> {
        self.res.get(id)
    }
    fn unc(&self, case: &str) -> Option<f64> {
        self.get(&format!("{}/{case}", group::UNCONTENDED))
            .map(Measured::ns_per_op)
    }
    fn cont(&self, g: &str, case: &str, n: u32) -> Option<f64> {
        self.get(&format!("{g}/{case}/{n}"))
            .map(Measured::ns_per_op)
    }
    /// Time ratio a ÷ b (ns per op).
    fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
        Some(a? / b?)
    }
}

fn table_uncontended(r: &Report<'_>, md: &mut String) {
    let _ = writeln!(
        md,
        "| case | ns/op | ops/s | ÷ fetch_add | ÷ pthread |\n|---|---:|---:|---:|---:|"
    );
    for case in Case::ALL {
        let Some(m) = r.get(&format!("{}/{}", group::UNCONTENDED, case.name())) else {
            continue;
        };
        let ns = m.ns_per_op();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            case.name(),
            fmt_ns(ns),
            fmt_rate(m.per_sec()),
            fmt_ratio(Report::ratio(Some(ns), r.unc("fetch_add"))),
            fmt_ratio(Report::ratio(Some(ns), r.unc("pthread"))),
        );
    }
}

fn table_contended(r: &Report<'_>, g: &str, md: &mut String) {
    let _ = write!(md, "| case |");
    for n in CONTENDERS {
        let _ = write!(md, " {n}: ns/op | {n}: ops/s |");
    }
    let _ = writeln!(md, " 8 ÷ 2 throughput |");
    let _ = write!(md, "|---|");
    for _ in CONTENDERS {
        let _ = write!(md, "---:|---:|");
    }
    let _ = writeln!(md, "---:|");
    for case in Case::ALL {
        if g == group::PROCS && !case.cross_process() {
            continue;
        }
        let _ = write!(md, "| `{}` |", case.name());
        for n in CONTENDERS {
            match r.get(&format!("{g}/{}/{n}", case.name())) {
                Some(m) => {
                    let _ = write!(
                        md,
                        " {} | {} |",
                        fmt_ns(m.ns_per_op()),
                        fmt_rate(m.per_sec())
                    );
                }
                None => {
                    let _ = write!(md, " – | – |");
                }
            }
        }
        // Throughput at 8 over throughput at 2 = time at 2 ÷ time at 8.
        let keep = Report::ratio(r.cont(g, case.name(), 2), r.cont(g, case.name(), 8));
        let _ = writeln!(md, " {} |", fmt_ratio(keep));
    }
}

fn table_procs_over_threads(r: &Report<'_>, md: &mut String) {
    let _ = writeln!(md, "| case | 2 | 4 | 8 |\n|---|---:|---:|---:|");
    for case in Case::ALL.into_iter().filter(|c| c.cross_process()) {
        let _ = write!(md, "| `{}` |", case.name());
        for n in CONTENDERS {
            let q = Report::ratio(
                r.cont(group::PROCS, case.name(), n),
                r.cont(group::THREADS, case.name(), n),
            );
            let _ = write!(md, " {} |", fmt_ratio(q));
        }
        let _ = writeln!(md);
    }
}

/// A named ratio for the headline table and results.json.
#[derive(Debug, serde::Serialize)]
struct Ratio {
    what: String,
    value: Option<f64>,
    meaning: &'static str,
}

fn ratios(r: &Report<'_>) -> Vec<Ratio> {
    let mut v = Vec::new();
    let time = "time ratio (ns/op): below 1 means the first is faster";
    let thr = "throughput ratio: above 1 means the first moves more";
    let mut push = |what: String, value: Option<f64>, meaning| {
        v.push(Ratio {
            what,
            value,
            meaning,
        })
    };
    push(
        "futex ÷ pthread, uncontended".into(),
        Report::ratio(r.unc("futex"), r.unc("pthread")),
        time,
    );
    push(
        "futex ÷ fetch_add, uncontended".into(),
        Report::ratio(r.unc("futex"), r.unc("fetch_add")),
        time,
    );
    push(
        "sem ÷ pthread, uncontended".into(),
        Report::ratio(r.unc("sem"), r.unc("pthread")),
        time,
    );
    push(
        "robust ÷ plain pthread, uncontended".into(),
        Report::ratio(r.unc("pthread"), r.unc("pthread-plain")),
        time,
    );
    push(
        "futex ÷ parking_lot, uncontended".into(),
        Report::ratio(r.unc("futex"), r.unc("parking_lot")),
        time,
    );
    for n in CONTENDERS {
        let p = |c: &str| r.cont(group::PROCS, c, n);
        let t = |c: &str| r.cont(group::THREADS, c, n);
        push(
            format!("futex ÷ pthread, {n} processes"),
            Report::ratio(p("futex"), p("pthread")),
            time,
        );
        push(
            format!("sem ÷ pthread, {n} processes"),
            Report::ratio(p("sem"), p("pthread")),
            time,
        );
        push(
            format!("robust ÷ plain pthread, {n} processes"),
            Report::ratio(p("pthread"), p("pthread-plain")),
            time,
        );
        push(
            format!("futex ÷ parking_lot, {n} threads"),
            Report::ratio(t("futex"), t("parking_lot")),
            time,
        );
        push(
            format!("futex ÷ fetch_add, {n} processes"),
            Report::ratio(p("futex"), p("fetch_add")),
            time,
        );
    }
    let rt = |c: &str| {
        r.get(&format!("{}/{c}", group::ROUND_TRIP))
            .map(Measured::ns_per_op)
    };
    push(
        "shm+futex round trip ÷ pipe round trip".into(),
        Report::ratio(rt("shm-futex"), rt("pipe")),
        time,
    );
    push(
        "shm+spin round trip ÷ pipe round trip".into(),
        Report::ratio(rt("shm-spin"), rt("pipe")),
        time,
    );
    push(
        "FIFO round trip ÷ pipe round trip".into(),
        Report::ratio(rt("fifo"), rt("pipe")),
        time,
    );
    let st = |c: &str| {
        r.get(&format!("{}/{c}", group::STREAM))
            .map(Measured::per_sec)
    };
    push(
        "ring throughput ÷ pipe throughput (stream)".into(),
        Report::ratio(st("ring"), st("pipe")),
        thr,
    );
    push(
        "spinning ring throughput ÷ pipe throughput (stream)".into(),
        Report::ratio(st("ring-spin"), st("pipe")),
        thr,
    );
    v
}

fn table_ipc(r: &Report<'_>, md: &mut String) {
    let _ = writeln!(
        md,
        "| round trip | ns/round trip | round trips/s | ÷ pipe |\n|---|---:|---:|---:|"
    );
    let pipe = r
        .get(&format!("{}/pipe", group::ROUND_TRIP))
        .map(Measured::ns_per_op);
    for name in ROUND_TRIPS {
        let Some(m) = r.get(&format!("{}/{name}", group::ROUND_TRIP)) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| `{name}` | {} | {} | {} |",
            fmt_ns(m.ns_per_op()),
            fmt_rate(m.per_sec()),
            fmt_ratio(Report::ratio(Some(m.ns_per_op()), pipe))
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| stream | bytes per run | time per run | GiB/s | ÷ pipe |\n|---|---:|---:|---:|---:|"
    );
    let pipe = r
        .get(&format!("{}/pipe", group::STREAM))
        .map(Measured::per_sec);
    for (name, _) in STREAMS {
        let Some(m) = r.get(&format!("{}/{name}", group::STREAM)) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| `{name}` | {} MiB | {} | {:.2} | {} |",
            m.per_iter >> 20,
            fmt_ns(m.median_ns),
            m.per_sec() / (1u64 << 30) as f64,
            fmt_ratio(Report::ratio(Some(m.per_sec()), pipe))
        );
    }
}

/// Where an aim stands.
#[derive(Debug, serde::Serialize)]
struct Aim {
    aim: &'static str,
    measured: String,
    met: Option<bool>,
}

fn aims(r: &Report<'_>, fair: &[Fairness]) -> Vec<Aim> {
    let mut v = Vec::new();
    let fut_pth = Report::ratio(r.unc("futex"), r.unc("pthread"));
    v.push(Aim {
        aim: "futex uncontended ≤ 1.0× pthread (robust, process-shared)",
        measured: fmt_ratio(fut_pth),
        met: fut_pth.map(|x| x <= 1.0),
    });
    let fut_fa = Report::ratio(r.unc("futex"), r.unc("fetch_add"));
    v.push(Aim {
        aim: "futex uncontended ≤ 2.5× fetch_add",
        measured: fmt_ratio(fut_fa),
        met: fut_fa.map(|x| x <= 2.5),
    });
    // Throughput futex ÷ pthread = time pthread ÷ time futex.
    let thr2 = Report::ratio(
        r.cont(group::PROCS, "pthread", 2),
        r.cont(group::PROCS, "futex", 2),
    );
    v.push(Aim {
        aim: "futex, 2 processes: throughput ≥ pthread's",
        measured: format!("{} of pthread's throughput", fmt_ratio(thr2)),
        met: thr2.map(|x| x >= 1.0),
    });
    let f2 = fair.iter().find(|f| f.lock == "futex" && f.procs == 2);
    v.push(Aim {
        aim: "futex, 2 processes: every contender ≥ 1/3 of the mean share",
        measured: f2.map_or("not measured".into(), |f| {
            format!(
                "smallest share {:.3} = {:.2}× the mean (Jain median {:.3})",
                f.min_share, f.min_over_mean, f.jain_median
            )
        }),
        met: f2.map(|f| f.min_over_mean >= 1.0 / 3.0),
    });
    for lock in ["futex", "pthread"] {
        let keep = Report::ratio(r.cont(group::PROCS, lock, 2), r.cont(group::PROCS, lock, 8));
        v.push(Aim {
            aim: if lock == "futex" {
                "futex: 8 processes keep ≥ 0.5× the throughput of 2"
            } else {
                "pthread: 8 processes keep ≥ 0.5× the throughput of 2"
            },
            measured: fmt_ratio(keep),
            met: keep.map(|x| x >= 0.5),
        });
    }
    let spin = Report::ratio(
        r.cont(group::PROCS, "spin", 2),
        r.cont(group::PROCS, "spin", 8),
    );
    v.push(Aim {
        aim: "spin: shown collapsing from 2 to 8 processes",
        measured: format!("keeps {} of its 2-process throughput", fmt_ratio(spin)),
        met: None,
    });
    let st = |c: &str| {
        r.get(&format!("{}/{c}", group::STREAM))
            .map(Measured::per_sec)
    };
    let ring = Report::ratio(st("ring"), st("pipe"));
    v.push(Aim {
        aim: "ring throughput ≥ 3× pipe throughput",
        measured: fmt_ratio(ring),
        met: ring.map(|x| x >= 3.0),
    });
    let rt = |c: &str| {
        r.get(&format!("{}/{c}", group::ROUND_TRIP))
            .map(Measured::ns_per_op)
    };
    let shm_rt = Report::ratio(rt("shm-futex"), rt("pipe"));
    v.push(Aim {
        aim: "shm+futex round trip faster than a pipe's",
        measured: format!("{} of the pipe's time", fmt_ratio(shm_rt)),
        met: shm_rt.map(|x| x < 1.0),
    });
    v
}

fn table_fairness(args: &Args, fair: &[Fairness], md: &mut String) {
    if !fair.is_empty() {
        let _ = writeln!(
            md,
            "\n### Fairness ({} race trials per row of about {} ms each, run by bench-report after the benches)\n",
            args.fairness_trials, args.fairness_ms
        );
        let _ = writeln!(
            md,
            "| lock | processes | increments each | Jain (median) | Jain (worst) | min share | max share | min ÷ mean |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for f in fair {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |",
                f.lock,
                f.procs,
                f.iters,
                f.jain_median,
                f.jain_min,
                f.min_share,
                f.max_share,
                f.min_over_mean
            );
        }
    }
}

// ------------------------------------------------------------------- picture

fn draw_svg(r: &Report<'_>, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    // x is log2(contenders), so 2, 4 and 8 sit evenly spaced.
    let series: Vec<(&str, Vec<(f64, f64)>)> = Case::ALL
        .into_iter()
        .filter(|c| c.cross_process())
        .map(|c| {
            let pts = CONTENDERS
                .into_iter()
                .filter_map(|n| {
                    r.get(&format!("{}/{}/{n}", group::PROCS, c.name()))
                        .map(|m| (f64::from(n).log2(), m.per_sec() / 1e6))
                })
                .collect();
            (c.name(), pts)
        })
        .filter(|(_, p): &(_, Vec<_>)| !p.is_empty())
        .collect();
    if series.is_empty() {
        bail!("no {} results to draw", group::PROCS);
    }
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let lo = ys.clone().fold(f64::INFINITY, f64::min).max(1e-6) / 1.6;
    let hi = ys.fold(0.0, f64::max) * 1.6;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Contended increments across processes (medians, one cargo bench run)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.8f64..3.2f64, (lo..hi).log_scale())?;
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
    for (name, pts) in &series {
        let color = match *name {
            "futex" => RGBColor(214, 39, 40),
            "spin" => RGBColor(255, 127, 14),
            "pthread" => RGBColor(31, 119, 180),
            "pthread-plain" => RGBColor(23, 190, 207),
            "sem" => RGBColor(44, 160, 44),
            "sem-unnamed" => RGBColor(148, 103, 189),
            _ => RGBColor(127, 127, 127),
        };
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(*name)
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

// ---------------------------------------------------------------------- main

fn run(args: &Args) -> Result<()> {
    let fairness_ms = Duration::from_millis(args.fairness_ms);
    if args.only_fairness {
        let fair = fairness(args.fairness_trials.max(1), 100_000, fairness_ms)?;
        let mut md = String::new();
        table_fairness(args, &fair, &mut md);
        print!("{md}");
        return Ok(());
    }
    let res = read_criterion(&args.criterion)?;
    let r = Report { res: &res };
    let times: Vec<SystemTime> = res.values().filter_map(|m| m.written).collect();
    let span = match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) => b.duration_since(*a).unwrap_or_default(),
        _ => Default::default(),
    };
    if span.as_secs() > 30 * 60 {
        eprintln!(
            "warning: criterion's results were written over {} minutes: they may come from more than one run",
            span.as_secs() / 60
        );
    }
    let fair = if args.fairness_trials > 0 {
        fairness(args.fairness_trials, 100_000, fairness_ms)?
    } else {
        Vec::new()
    };
    let m = machine();
    std::fs::create_dir_all(&args.out)?;

    let mut md = String::new();
    let _ = writeln!(
        md,
        "<!-- written by bench-report; numbers are medians from one `cargo bench` run -->\n"
    );
    let _ = writeln!(md, "### Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", m.cpu);
    let _ = writeln!(md, "| cores | {} |", m.cores);
    let _ = writeln!(
        md,
        "| virtualised | {} (`hypervisor` CPU flag: {}; `systemd-detect-virt`: {}) |",
        if m.hypervisor_flag {
            "yes"
        } else {
            "no flag seen"
        },
        if m.hypervisor_flag {
            "present"
        } else {
            "absent"
        },
        m.virt
    );
    let _ = writeln!(md, "| kernel | {} |", m.kernel);
    let _ = writeln!(md, "| glibc | {} |", m.glibc);
    let _ = writeln!(md, "| rustc | {} |", m.rustc);
    let _ = writeln!(
        md,
        "| results | {} benchmarks, written over {} s |\n",
        res.len(),
        span.as_secs()
    );
    let _ = writeln!(
        md,
        "### Uncontended: one lock/unlock around one increment\n"
    );
    table_uncontended(&r, &mut md);
    let _ = writeln!(
        md,
        "\n### Contended, threads (ns per increment; ops/s = increments per second, all contenders together)\n"
    );
    table_contended(&r, group::THREADS, &mut md);
    let _ = writeln!(md, "\n### Contended, processes\n");
    table_contended(&r, group::PROCS, &mut md);
    let _ = writeln!(
        md,
        "\n### Processes ÷ threads (ns per increment; above 1: processes are slower)\n"
    );
    table_procs_over_threads(&r, &mut md);
    let _ = writeln!(md, "\n### IPC\n");
    table_ipc(&r, &mut md);
    let rat = ratios(&r);
    let _ = writeln!(
        md,
        "\n### Ratios\n\n| ratio | value | reads as |\n|---|---:|---|"
    );
    for x in &rat {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            x.what,
            fmt_ratio(x.value),
            x.meaning
        );
    }
    table_fairness(args, &fair, &mut md);
    let aim = aims(&r, &fair);
    let _ = writeln!(
        md,
        "\n### Aims\n\n| aim | measured | status |\n|---|---|---|"
    );
    for a in &aim {
        let status = match a.met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "see text",
        };
        let _ = writeln!(md, "| {} | {} | {status} |", a.aim, a.measured);
    }

    let svg = args.out.join("contended_procs.svg");
    draw_svg(&r, &svg)?;
    std::fs::write(args.out.join("results.md"), &md)?;
    let json = serde_json::json!({
        "machine": m,
        "benchmarks": res,
        "ratios": rat,
        "fairness": fair,
        "aims": aim,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    print!("{md}");
    eprintln!(
        "wrote {}, {} and {}",
        args.out.join("results.md").display(),
        args.out.join("results.json").display(),
        svg.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = shm::cleanup::install() {
        eprintln!("bench-report: installing the clean-up signal handler: {e}");
        return ExitCode::from(1);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-report: {e:#}");
            ExitCode::from(1)
        }
    }
}
