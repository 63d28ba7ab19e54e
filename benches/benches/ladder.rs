//! The latency ladder (`ipc::ladder`): the round trip between two processes
//! for every way to signal, as a distribution, pinned to two CPUs and
//! unpinned. Criterion records means; a user choosing a mechanism needs the
//! tail, so this bench runs the ladder itself and writes every row's
//! percentiles (p50, p90, p99, p99.9, max, over 100 000 round trips; 20 000
//! with `SHMLAB_BENCH_QUICK=1`) and its ratios to the pipe and to the
//! cache-line floor *of the same run* to `target/criterion/ladder/results.json`.
//!
//! ```text
//! cargo bench -p shmlab-benches --bench ladder [-- <regex on ladder/<rung>/<pinned|unpinned>>]
//! ```
//!
//! `--list` lists the rows; without `--bench` (`cargo test --benches`) each
//! rung runs 300 round trips as a smoke test. Every round trip's sequence
//! number is checked by both sides; a wrong one fails the bench.

use ipc::ladder::{self, Ladder, Mechanism, Options};
use shmlab_benches::{criterion_dir, leftovers, quick};
use std::process::ExitCode;

const PERCENTILES: [(&str, f64); 4] =
    [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)];

fn id(m: Mechanism, pinned: bool) -> String {
    format!(
        "ladder/{}/{}",
        m.name(),
        if pinned { "pinned" } else { "unpinned" }
    )
}

fn json(l: &Ladder, pinned: bool, selected: &[Mechanism]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = l
        .rows
        .iter()
        .filter(|r| selected.contains(&r.mechanism))
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("rung".into(), r.mechanism.name().into());
            o.insert("id".into(), id(r.mechanism, pinned).into());
            o.insert("round_trips".into(), (r.samples.len() as u64).into());
            for (k, p) in PERCENTILES {
                o.insert(format!("{k}_ns"), r.percentile(p).into());
            }
            o.insert("max_ns".into(), r.max().into());
            o.insert("mean_ns".into(), r.mean().into());
            for (k, base) in [
                ("p50_vs_pipe", Mechanism::Pipe),
                ("p50_vs_floor", Mechanism::CacheLine),
            ] {
                o.insert(
                    k.into(),
                    l.ratio(r.mechanism, base, 50.0)
                        .map_or(serde_json::Value::Null, Into::into),
                );
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::json!({
        "pinned": l.pinned.map(|p| serde_json::json!({"parent_cpu": p.parent, "child_cpu": p.child})),
        "allowed_cpus": l.allowed_cpus,
        "rows": rows,
    })
}

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
    let round_trips = if quick() { 20_000 } else { 100_000 };
    let mut out = serde_json::Map::new();
    out.insert("quick".into(), quick().into());
    out.insert("round_trips_per_row".into(), round_trips.into());
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
        for base in [Mechanism::CacheLine, Mechanism::Pipe] {
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
        for r in l.rows.iter().filter(|r| selected.contains(&r.mechanism)) {
            println!(
                "{:<32} p50 {:>8} ns  p99 {:>8} ns  p99.9 {:>8} ns  max {:>9} ns  ÷ pipe {:.2}",
                id(r.mechanism, pinned),
                r.percentile(50.0),
                r.percentile(99.0),
                r.percentile(99.9),
                r.max(),
                l.ratio(r.mechanism, Mechanism::Pipe, 50.0)
                    .unwrap_or(f64::NAN)
            );
        }
        out.insert(
            if pinned { "pinned_run" } else { "unpinned_run" }.into(),
            json(&l, pinned, &selected),
        );
    }
    let dir = criterion_dir().join("ladder");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out)?)?;
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
