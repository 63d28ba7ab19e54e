//! Reading: criterion's results, one median per benchmark.
//!
//! Criterion writes `<dir>/<group>/<bench>[/<N>]/new/{benchmark,estimates}.json`;
//! this reads the median point estimate and the throughput of each.

use anyhow::{Context, Result};
use shmlab_benches::group;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One benchmark's median, as criterion recorded it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measured {
    /// Median time per iteration, ns.
    pub median_ns: f64,
    /// Elements (or bytes) one iteration processes.
    pub per_iter: u64,
    /// Whether `per_iter` counts bytes.
    pub bytes: bool,
    /// When criterion wrote it.
    #[serde(skip)]
    written: Option<SystemTime>,
}

impl Measured {
    /// Time per element (per increment, per round trip), ns.
    pub fn ns_per_op(&self) -> f64 {
        self.median_ns / self.per_iter.max(1) as f64
    }
    /// Elements (or bytes) per second.
    pub fn per_sec(&self) -> f64 {
        self.per_iter as f64 * 1e9 / self.median_ns
    }
}

/// Every benchmark of the run, by `group/function[/value]`.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Results(BTreeMap<String, Measured>);

impl Results {
    /// Reads every benchmark under `dir` (none is not an error: see
    /// [`Results::missing_groups`]).
    pub fn read(dir: &Path) -> Result<Results> {
        let mut out = BTreeMap::new();
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
        Ok(Results(out))
    }

    /// How many benchmarks there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `<group>/<case>`.
    pub fn get(&self, group: &str, case: &str) -> Option<&Measured> {
        self.0.get(&format!("{group}/{case}"))
    }

    /// `<group>/<case>/<n>`.
    pub fn get_n(&self, group: &str, case: &str, n: u32) -> Option<&Measured> {
        self.0.get(&format!("{group}/{case}/{n}"))
    }

    /// Results made up in a test: `(id, median ns per iteration, elements
    /// per iteration)`.
    #[cfg(test)]
    pub fn made_up(rows: &[(&str, f64, u64)]) -> Results {
        let m = |&(id, median_ns, per_iter): &(&str, f64, u64)| {
            let m = Measured {
                median_ns,
                per_iter,
                bytes: false,
                written: None,
            };
            (id.to_string(), m)
        };
        Results(rows.iter().map(m).collect())
    }

    /// The groups of [`group::ALL`] with no benchmark at all.
    pub fn missing_groups(&self) -> Vec<&'static str> {
        group::ALL
            .into_iter()
            .filter(|g| !self.0.keys().any(|id| id.starts_with(&format!("{g}/"))))
            .collect()
    }

    /// From the first result written to the last: over a long span they
    /// probably come from more than one run.
    pub fn written_span(&self) -> Duration {
        let times = || self.0.values().filter_map(|m| m.written);
        match (times().min(), times().max()) {
            (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
            _ => Duration::default(),
        }
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn read_one(new_dir: &Path) -> Result<Option<(String, Measured)>> {
    let bj = new_dir.join("benchmark.json");
    let ej = new_dir.join("estimates.json");
    if !bj.exists() || !ej.exists() {
        return Ok(None);
    }
    let b = read_json(&bj)?;
    let e = read_json(&ej)?;
    let id = b["full_id"]
        .as_str()
        .with_context(|| format!("{}: no full_id", bj.display()))?
        .to_string();
    let median_ns = e["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{}: no median", ej.display()))?;
    let t = &b["throughput"];
    let (per_iter, bytes) = if let Some(n) = t["Elements"].as_u64() {
        (n, false)
    } else if let Some(n) = t["Bytes"].as_u64().or_else(|| t["BytesDecimal"].as_u64()) {
        (n, true)
    } else {
        (1, false)
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
