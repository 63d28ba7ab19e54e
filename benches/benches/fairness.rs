//! Fairness under contention: how evenly each lock shares itself between
//! 2 and 4 processes (see `shmlab_benches::fairness`).
//!
//! Criterion times things but does not record per-worker shares, so this
//! bench is not a criterion benchmark: it runs the race trials itself and
//! writes their summary, one row per `fairness/<lock>/<procs>`, to
//! `target/criterion/fairness/results.json` (next to criterion's own
//! results), where `bench-report` reads it:
//!
//! ```sh
//! cargo bench -p shmlab-benches --bench fairness
//! ```
//!
//! It takes criterion's command line, so `cargo bench -p shmlab-benches --
//! <filter>` treats it like the other benches: a filter (a regular
//! expression, or with `--exact` a whole name) selects rows, and rows it
//! skips keep their earlier results; `--list` lists the rows; `--ignored`
//! runs none; without `--bench` (`cargo test --benches`) each row runs one
//! short trial and nothing is written. Criterion's other options are
//! accepted and ignored. `SHMLAB_BENCH_QUICK=1` runs 2 short trials per row
//! instead of 7 of about 400 ms.
use regex::Regex;
use shmlab_benches::fairness::{self, PROCS, Results, Settings};
use shmlab_benches::{Case, criterion_dir, leftovers};
use std::process::ExitCode;

/// Criterion's options that take a value: what follows them is not a
/// filter.
const VALUE_OPTIONS: [&str; 19] = [
    "-c",
    "--color",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--format",
    "--profile-time",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// What to do, from the part of criterion's command line that matters here.
#[derive(Debug, Default)]
struct Args {
    filter: Option<String>,
    exact: bool,
    list: bool,
    ignored: bool,
    bench: bool,
    test: bool,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args::default();
        let mut argv = std::env::args().skip(1);
        while let Some(arg) = argv.next() {
            match arg.as_str() {
                "--exact" => a.exact = true,
                "--list" => a.list = true,
                "--ignored" => a.ignored = true,
                "--bench" => a.bench = true,
                "--test" => a.test = true,
                o if VALUE_OPTIONS.contains(&o) => {
                    argv.next();
                }
                o if o.starts_with('-') => {}
                _ if a.filter.is_none() => a.filter = Some(arg),
                _ => {}
            }
        }
        a
    }

    /// The rows this run selects.
    fn selected(&self) -> anyhow::Result<Vec<(Case, u32)>> {
        let re = match (&self.filter, self.exact) {
            (Some(f), false) => Some(Regex::new(f).map_err(|e| {
                anyhow::anyhow!("unable to parse '{f}' as a regular expression: {e}")
            })?),
            _ => None,
        };
        let rows = Case::locks()
            .flat_map(|l| PROCS.map(|n| (l, n)))
            .filter(|&(l, n)| {
                let id = fairness::id(l, n);
                !self.ignored
                    && match (&self.filter, &re) {
                        (_, Some(re)) => re.is_match(&id),
                        (Some(f), None) => *f == id,
                        (None, None) => true,
                    }
            })
            .collect();
        Ok(rows)
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let rows = args.selected()?;
    if args.list {
        for (l, n) in rows {
            println!("{}: benchmark", fairness::id(l, n));
        }
        return Ok(());
    }
    // Criterion's rule: `cargo bench` passes --bench; `cargo test --benches`
    // does not (and `--bench --test` asks for the test run).
    if !args.bench || args.test {
        for (l, n) in rows {
            println!("Testing {}", fairness::id(l, n));
            fairness::smoke(l, n)?;
            println!("Success");
        }
        return Ok(());
    }
    if rows.is_empty() {
        return Ok(());
    }
    let settings = Settings::for_run();
    let mut measured = Vec::new();
    for (l, n) in rows {
        let row = fairness::measure(l, n, settings)?;
        println!(
            "{:<28} {} trials of {} increments per process: Jain median {:.3}, worst {:.3}; shares {:.3} to {:.3}",
            fairness::id(l, n),
            row.trials,
            row.iters,
            row.jain_median,
            row.jain_min,
            row.min_share,
            row.max_share
        );
        measured.push(row);
    }
    let path = fairness::results_path(&criterion_dir());
    let earlier = Results::load(&path).unwrap_or_else(|e| {
        eprintln!("fairness: ignoring earlier results: {e:#}");
        None
    });
    Results::update(earlier, settings, measured).save(&path)?;
    println!("fairness: wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    // Ctrl-C or SIGTERM mid-run: kill the workers, remove the objects.
    shm::cleanup::install().expect("installing the clean-up signal handler");
    let result = run(&Args::parse());
    let left = leftovers();
    assert!(
        left.is_empty(),
        "benchmarks left objects in /dev/shm: {left:?}"
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fairness: {e:#}");
            ExitCode::FAILURE
        }
    }
}
