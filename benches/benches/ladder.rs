//! The latency ladder (`ipc::ladder`): the round trip between two processes
//! for every way to signal, as a distribution, pinned to two CPUs and
//! unpinned. Criterion records means; a user choosing a mechanism needs the
//! tail, so this bench runs the ladder itself and writes every row's
//! percentiles (p50, p90, p99, p99.9, max, over 100 000 round trips; 20 000
//! with `SHMLAB_BENCH_QUICK=1`) and its ratios to the pipe and to the
//! cache-line floor *of the same run* to `target/criterion/ladder/results.json`
//! (`shmlab_benches::ladder::Results`, which `bench-report` reads).
//!
//! ```text
//! cargo bench -p shmlab-benches --bench ladder [-- <regex on ladder/<rung>/<pinned|unpinned>>]
//! ```
//!
//! `--list` lists the rows; without `--bench` (`cargo test --benches`) each
//! rung runs 300 round trips as a smoke test. Every round trip's sequence
//! number is checked by both sides; a wrong one fails the bench.

use ipc::ladder::{self, Mechanism, Options};
use shmlab_benches::ladder::{FLOOR, PIPE, Results, Run, id, results_path, round_trips_for_run};
use shmlab_benches::{criterion_dir, leftovers, quick};
use std::process::ExitCode;

fn run() -> anyhow::Result<()> {
    let (mut filter, mut list, mut bench, mut test) = (None, false, false, false);
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--list" => list = true,
            "--bench" => bench = true,
            "--test" => test = true,
            o if o.starts_with('-') => {}
            _ if filter.is_none() => filter = Some(regex::Regex::new(&a)?),
            _ => {}
        }
    }
    let wanted =
        |m: Mechanism, pinned: bool| filter.as_ref().is_none_or(|re| re.is_match(&id(m, pinned)));
    if list {
        for pinned in [true, false] {
            for m in Mechanism::ALL.into_iter().filter(|&m| wanted(m, pinned)) {
                println!("{}: benchmark", id(m, pinned));
            }
        }
        return Ok(());
    }
    if !bench || test {
        for m in Mechanism::ALL.into_iter().filter(|&m| wanted(m, true)) {
            println!("Testing {}", id(m, true));
            ladder::run_mechanism(
                m,
                &Options {
                    round_trips: 300,
                    warmup: 10,
                    pin: true,
                },
            )?;
            println!("Success");
        }
        return Ok(());
    }
    let round_trips = round_trips_for_run();
    let mut results = Results {
        quick: quick(),
        round_trips_per_row: round_trips,
        pinned_run: None,
        unpinned_run: None,
    };
    for pinned in [true, false] {
        let selected: Vec<Mechanism> = Mechanism::ALL
            .into_iter()
            .filter(|&m| wanted(m, pinned))
            .collect();
        if selected.is_empty() {
            continue;
        }
        // The pipe and the floor always run: every ratio is within one run.
        let mut run_these = selected.clone();
        for base in [FLOOR, PIPE] {
            if !run_these.contains(&base) {
                run_these.push(base);
            }
        }
        let l = ladder::run_ladder(
            &run_these,
            &Options {
                round_trips,
                warmup: ladder::WARMUP,
                pin: pinned,
            },
        )?;
        let run = Run::from_ladder(&l, pinned, &selected);
        for r in &run.rows {
            println!(
                "{:<32} p50 {:>8} ns  p99 {:>8} ns  p99.9 {:>8} ns  max {:>9} ns  ÷ pipe {:.2}",
                r.id,
                r.p50_ns,
                r.p99_ns,
                r.p99_9_ns,
                r.max_ns,
                r.p50_vs_pipe.unwrap_or(f64::NAN)
            );
        }
        if pinned {
            results.pinned_run = Some(run);
        } else {
            results.unpinned_run = Some(run);
        }
    }
    let path = results_path(&criterion_dir());
    results.save(&path)?;
    println!("ladder: wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    shm::cleanup::install().expect("installing the clean-up signal handler");
    let result = run();
    let left = leftovers();
    assert!(
        left.is_empty(),
        "the ladder left objects in /dev/shm: {left:?}"
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ladder: {e:#}");
            ExitCode::FAILURE
        }
    }
}
