//! `bench-report`: turns ONE `cargo bench` run into BENCHMARKS.md's tables.
//!
//! It only reads and renders; it measures nothing. It reads criterion's
//! `target/criterion/<group>/<bench>/new/{benchmark,estimates}.json` (the
//! median point estimate of each benchmark), the fairness bench's
//! `target/criterion/fairness/results.json` and the latency ladder's
//! `target/criterion/ladder/results.json`, describes the machine, works
//! out the ratios and the issue's aims, and writes:
//!
//! - `<out>/results.md`: the tables, in Markdown;
//! - `<out>/contended_procs.svg`: throughput against contending processes
//!   for each lock;
//! - `<out>/ladder.svg`: the latency ladder, p50, p99 and p99.9 of each
//!   rung, pinned and unpinned;
//! - `<out>/results.json`: every number the tables hold.
//!
//! ```sh
//! cargo bench -p shmlab-benches       # also runs the fairness and ladder benches
//! cargo run --release -p shmlab-benches --bin bench-report
//! ```
//!
//! What is missing (a group criterion has no results for, the fairness or
//! ladder results) is said in one line each on stderr, and the rest is rendered.
//!
//! Modules: [`criterion`] and [`machine`] read, [`figures`] and [`aims`]
//! compute, [`format`], [`markdown`] and [`svg`] render.

mod aims;
mod criterion;
mod figures;
mod format;
mod machine;
mod markdown;
mod svg;

use anyhow::{Result, bail};
use clap::Parser;
use shmlab_benches::{criterion_dir, fairness, group, ladder};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Turn one criterion run (and the fairness and ladder benches' results)
/// into BENCHMARKS.md's tables, ratios and pictures.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Criterion's output directory [default: the one criterion writes to,
    /// usually target/criterion].
    #[arg(long)]
    criterion: Option<PathBuf>,
    /// The fairness bench's results [default:
    /// <criterion>/fairness/results.json].
    #[arg(long)]
    fairness: Option<PathBuf>,
    /// The latency ladder bench's results [default:
    /// <criterion>/ladder/results.json].
    #[arg(long)]
    ladder: Option<PathBuf>,
    /// Where to write results.md, results.json, contended_procs.svg and
    /// ladder.svg.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
}

/// Results written over longer than this probably come from more than one
/// run.
const ONE_RUN: Duration = Duration::from_secs(30 * 60);

/// Says, in one line on stderr, what the report lacks.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("bench-report: {}", format_args!($($arg)*))
    };
}

/// A bench's own results (`loaded` from `path`), or `None` (said why) if
/// there are none: `what` names them, `command` produces them and
/// `left_out` is what the report then lacks.
fn read_results<T>(
    what: &str,
    path: &std::path::Path,
    loaded: Result<Option<T>>,
    quick: impl Fn(&T) -> bool,
    command: &str,
    left_out: &str,
) -> Option<T> {
    match loaded {
        Ok(Some(r)) => {
            if quick(&r) {
                note!(
                    "the {what} results in {} are from a quick run; rerun `{command}` without {}=1 for figures to publish",
                    path.display(),
                    shmlab_benches::QUICK_ENV
                );
            }
            Some(r)
        }
        Ok(None) => {
            note!(
                "no {what} results at {}: run `{command}` to measure them ({left_out})",
                path.display()
            );
            None
        }
        Err(e) => {
            note!("{e:#}: rerun `{command}` ({left_out})");
            None
        }
    }
}

/// The fairness bench's results, or `None` (said why) if there are none.
fn read_fairness(path: &std::path::Path) -> Option<fairness::Results> {
    read_results(
        "fairness",
        path,
        fairness::Results::load(path),
        |f| f.quick,
        fairness::COMMAND,
        "the fairness table is left out",
    )
}

/// The ladder bench's results, or `None` (said why) if there are none.
fn read_ladder(path: &std::path::Path) -> Option<ladder::Results> {
    read_results(
        "latency ladder",
        path,
        ladder::Results::load(path),
        |l| l.quick,
        ladder::COMMAND,
        "the latency ladder tables and ladder.svg are left out",
    )
}

fn run(args: &Args) -> Result<()> {
    let dir = args.criterion.clone().unwrap_or_else(criterion_dir);
    let res = criterion::Results::read(&dir)?;
    if res.is_empty() {
        bail!(
            "no criterion results under {}; run `{}` first",
            dir.display(),
            shmlab_benches::BENCH_COMMAND
        );
    }
    for g in res.missing_groups() {
        note!(
            "no {g} results under {}: run `{}` (its table is left empty)",
            dir.display(),
            group::bench_command(g)
        );
    }
    let span = res.written_span();
    if span > ONE_RUN {
        note!(
            "warning: criterion's results were written over {} minutes: they may come from more than one run",
            span.as_secs() / 60
        );
    }
    let fair_path = args
        .fairness
        .clone()
        .unwrap_or_else(|| fairness::results_path(&dir));
    let fair = read_fairness(&fair_path);
    let ladder_path = args
        .ladder
        .clone()
        .unwrap_or_else(|| ladder::results_path(&dir));
    let ladder = read_ladder(&ladder_path);
    let machine = machine::probe();

    let tables = figures::Tables::compute(&res);
    let ratios = aims::ratios(&res);
    let aims = aims::aims(&res, fair.as_ref(), ladder.as_ref());
    let series = figures::procs_series(&res);
    let md = markdown::render(&markdown::Page {
        machine: &machine,
        benchmarks: res.len(),
        span,
        tables: &tables,
        ratios: &ratios,
        fairness: fair.as_ref(),
        ladder: ladder.as_ref(),
        aims: &aims,
    });
    let json = serde_json::json!({
        "machine": machine,
        "benchmarks": res,
        "ratios": ratios,
        "fairness": fair.as_ref().map_or(&[][..], |f| &f.rows[..]),
        "ladder": ladder,
        "aims": aims,
    });

    std::fs::create_dir_all(&args.out)?;
    let md_path = args.out.join("results.md");
    std::fs::write(&md_path, &md)?;
    let json_path = args.out.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)? + "\n")?;
    let mut wrote = vec![md_path, json_path];
    let svg = args.out.join("contended_procs.svg");
    if series.is_empty() {
        note!(
            "no {} results to draw: {} left as it was",
            group::PROCS,
            svg.display()
        );
    } else {
        svg::draw(&series, &svg)?;
        wrote.push(svg);
    }
    let ladder_svg = args.out.join("ladder.svg");
    match &ladder {
        Some(l) if l.runs().any(|(_, run)| !run.rows.is_empty()) => {
            svg::draw_ladder(l, &ladder_svg)?;
            wrote.push(ladder_svg);
        }
        // Said above when read.
        None => {}
        Some(_) => note!(
            "no latency ladder rows to draw: {} left as it was",
            ladder_svg.display()
        ),
    }
    print!("{md}");
    let wrote: Vec<String> = wrote.iter().map(|p| p.display().to_string()).collect();
    eprintln!("wrote {}", wrote.join(", "));
    Ok(())
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-report: {e:#}");
            ExitCode::from(1)
        }
    }
}
