//! Computing: the figures each table and the picture show, from criterion's
//! medians (a figure is `None` where a benchmark is missing).

use crate::criterion::{Measured, Results};
use shmlab_benches::{CONTENDERS, Case, HELD_CASES, ROUND_TRIPS, STREAMS, group};

/// The fewest contenders of a contended group.
pub const FEW: u32 = CONTENDERS[0];
/// The most contenders of a contended group.
pub const MANY: u32 = CONTENDERS[CONTENDERS.len() - 1];

/// The case every round trip and stream is compared with.
pub const PIPE: &str = "pipe";

/// a ÷ b, when both were measured.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

/// How fast one benchmark went.
#[derive(Clone, Copy, Debug)]
pub struct Speed {
    /// Time per element (increment, round trip), ns.
    pub ns_per_op: f64,
    /// Elements (or bytes) per second.
    pub per_sec: f64,
}

impl From<&Measured> for Speed {
    fn from(m: &Measured) -> Speed {
        Speed {
            ns_per_op: m.ns_per_op(),
            per_sec: m.per_sec(),
        }
    }
}

/// ns per increment of `case`, uncontended.
pub fn uncontended_ns(r: &Results, case: &str) -> Option<f64> {
    r.get(group::UNCONTENDED, case).map(Measured::ns_per_op)
}

/// ns per increment of `case` with `n` contenders in group `g`.
pub fn contended_ns(r: &Results, g: &str, case: &str, n: u32) -> Option<f64> {
    r.get_n(g, case, n).map(Measured::ns_per_op)
}

/// ns per round trip.
pub fn round_trip_ns(r: &Results, name: &str) -> Option<f64> {
    r.get(group::ROUND_TRIP, name).map(Measured::ns_per_op)
}

/// Bytes per second of a stream.
pub fn stream_per_sec(r: &Results, name: &str) -> Option<f64> {
    r.get(group::STREAM, name).map(Measured::per_sec)
}

/// Throughput with [`MANY`] contenders ÷ throughput with [`FEW`] (= time
/// per increment with few ÷ time with many).
pub fn keeps(r: &Results, g: &str, case: &str) -> Option<f64> {
    ratio(
        contended_ns(r, g, case, FEW),
        contended_ns(r, g, case, MANY),
    )
}

/// The cases a contended group runs.
fn cases(g: &str) -> impl Iterator<Item = Case> + '_ {
    let all: &[Case] = if g == group::PROCS_HELD {
        &HELD_CASES
    } else {
        &Case::ALL
    };
    all.iter()
        .copied()
        .filter(move |c| g != group::PROCS || c.cross_process())
}

/// A row of the uncontended table.
#[derive(Debug)]
pub struct UncontendedRow {
    pub case: &'static str,
    pub speed: Speed,
    /// Time ÷ `fetch_add`'s.
    pub over_fetch_add: Option<f64>,
    /// Time ÷ the robust pthread mutex's.
    pub over_pthread: Option<f64>,
}

/// A row of a contended table.
#[derive(Debug)]
pub struct ContendedRow {
    pub case: &'static str,
    /// One per [`CONTENDERS`].
    pub at: Vec<Option<Speed>>,
    /// See [`keeps`].
    pub keeps: Option<f64>,
}

/// A row of the processes ÷ threads table.
#[derive(Debug)]
pub struct ProcsOverThreadsRow {
    pub case: &'static str,
    /// Time per increment with processes ÷ with threads, one per
    /// [`CONTENDERS`].
    pub at: Vec<Option<f64>>,
}

/// A row of the round-trip table.
#[derive(Debug)]
pub struct RoundTripRow {
    pub name: &'static str,
    pub speed: Speed,
    /// Time ÷ the pipe's.
    pub over_pipe: Option<f64>,
}

/// A row of the stream table.
#[derive(Debug)]
pub struct StreamRow {
    pub name: &'static str,
    /// Bytes per run.
    pub bytes: u64,
    /// Time per run, ns.
    pub run_ns: f64,
    pub bytes_per_sec: f64,
    /// Throughput ÷ the pipe's.
    pub over_pipe: Option<f64>,
}

/// Every table's rows.
#[derive(Debug)]
pub struct Tables {
    pub uncontended: Vec<UncontendedRow>,
    pub threads: Vec<ContendedRow>,
    pub procs: Vec<ContendedRow>,
    /// Processes with a held critical section ([`group::PROCS_HELD`]).
    pub held: Vec<ContendedRow>,
    pub procs_over_threads: Vec<ProcsOverThreadsRow>,
    pub round_trips: Vec<RoundTripRow>,
    pub streams: Vec<StreamRow>,
}

impl Tables {
    pub fn compute(r: &Results) -> Tables {
        Tables {
            uncontended: uncontended(r),
            threads: contended(r, group::THREADS),
            procs: contended(r, group::PROCS),
            held: contended(r, group::PROCS_HELD),
            procs_over_threads: procs_over_threads(r),
            round_trips: round_trips(r),
            streams: streams(r),
        }
    }
}

fn uncontended(r: &Results) -> Vec<UncontendedRow> {
    let fetch_add = uncontended_ns(r, "fetch_add");
    let pthread = uncontended_ns(r, "pthread");
    Case::ALL
        .into_iter()
        .filter_map(|c| {
            let speed = Speed::from(r.get(group::UNCONTENDED, c.name())?);
            let ns = Some(speed.ns_per_op);
            Some(UncontendedRow {
                case: c.name(),
                speed,
                over_fetch_add: ratio(ns, fetch_add),
                over_pthread: ratio(ns, pthread),
            })
        })
        .collect()
}

fn contended(r: &Results, g: &str) -> Vec<ContendedRow> {
    cases(g)
        .map(|c| ContendedRow {
            case: c.name(),
            at: CONTENDERS
                .iter()
                .map(|&n| r.get_n(g, c.name(), n).map(Speed::from))
                .collect(),
            keeps: keeps(r, g, c.name()),
        })
        .collect()
}

fn procs_over_threads(r: &Results) -> Vec<ProcsOverThreadsRow> {
    cases(group::PROCS)
        .map(|c| ProcsOverThreadsRow {
            case: c.name(),
            at: CONTENDERS
                .iter()
                .map(|&n| {
                    ratio(
                        contended_ns(r, group::PROCS, c.name(), n),
                        contended_ns(r, group::THREADS, c.name(), n),
                    )
                })
                .collect(),
        })
        .collect()
}

fn round_trips(r: &Results) -> Vec<RoundTripRow> {
    let pipe = round_trip_ns(r, PIPE);
    ROUND_TRIPS
        .into_iter()
        .filter_map(|name| {
            let speed = Speed::from(r.get(group::ROUND_TRIP, name)?);
            Some(RoundTripRow {
                name,
                speed,
                over_pipe: ratio(Some(speed.ns_per_op), pipe),
            })
        })
        .collect()
}

fn streams(r: &Results) -> Vec<StreamRow> {
    let pipe = stream_per_sec(r, PIPE);
    STREAMS
        .into_iter()
        .filter_map(|(name, _)| {
            let m = r.get(group::STREAM, name)?;
            Some(StreamRow {
                name,
                bytes: m.per_iter,
                run_ns: m.median_ns,
                bytes_per_sec: m.per_sec(),
                over_pipe: ratio(Some(m.per_sec()), pipe),
            })
        })
        .collect()
}

/// One line of the picture: a case's throughput against contenders.
#[derive(Debug)]
pub struct Series {
    pub case: Case,
    /// (contending processes, increments per second), where measured.
    pub points: Vec<(u32, f64)>,
}

/// Every cross-process case measured in [`group::PROCS`].
pub fn procs_series(r: &Results) -> Vec<Series> {
    cases(group::PROCS)
        .map(|case| Series {
            case,
            points: CONTENDERS
                .into_iter()
                .filter_map(|n| Some((n, r.get_n(group::PROCS, case.name(), n)?.per_sec())))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}
