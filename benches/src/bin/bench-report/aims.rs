//! Computing: the headline ratios, and where the aims stand.

use crate::criterion::Results;
use crate::figures::{
    FEW, MANY, PIPE, contended_ns, keeps, ratio, round_trip_ns, stream_per_sec, uncontended_ns,
};
use crate::format;
use shmlab_benches::{CONTENDERS, fairness, group};

/// What a time ratio means.
const TIME: &str = "time ratio (ns/op): below 1 means the first is faster";
/// What a throughput ratio means.
const THROUGHPUT: &str = "throughput ratio: above 1 means the first moves more";

/// A named ratio for the headline table and results.json.
#[derive(Debug, serde::Serialize)]
pub struct Ratio {
    pub what: String,
    pub value: Option<f64>,
    pub meaning: &'static str,
}

/// Every headline ratio, in table order.
pub fn ratios(r: &Results) -> Vec<Ratio> {
    let mut v = Vec::new();
    let mut push = |what: String, value: Option<f64>, meaning| {
        v.push(Ratio {
            what,
            value,
            meaning,
        })
    };
    let unc = |a: &str, b: &str| ratio(uncontended_ns(r, a), uncontended_ns(r, b));
    push(
        "futex ÷ pthread, uncontended".into(),
        unc("futex", "pthread"),
        TIME,
    );
    push(
        "futex ÷ fetch_add, uncontended".into(),
        unc("futex", "fetch_add"),
        TIME,
    );
    push(
        "sem ÷ pthread, uncontended".into(),
        unc("sem", "pthread"),
        TIME,
    );
    push(
        "robust ÷ plain pthread, uncontended".into(),
        unc("pthread", "pthread-plain"),
        TIME,
    );
    push(
        "futex ÷ parking_lot, uncontended".into(),
        unc("futex", "parking_lot"),
        TIME,
    );
    for n in CONTENDERS {
        let p = |a: &str, b: &str| {
            ratio(
                contended_ns(r, group::PROCS, a, n),
                contended_ns(r, group::PROCS, b, n),
            )
        };
        let t = |a: &str, b: &str| {
            ratio(
                contended_ns(r, group::THREADS, a, n),
                contended_ns(r, group::THREADS, b, n),
            )
        };
        push(
            format!("futex ÷ pthread, {n} processes"),
            p("futex", "pthread"),
            TIME,
        );
        push(
            format!("sem ÷ pthread, {n} processes"),
            p("sem", "pthread"),
            TIME,
        );
        push(
            format!("robust ÷ plain pthread, {n} processes"),
            p("pthread", "pthread-plain"),
            TIME,
        );
        push(
            format!("futex ÷ parking_lot, {n} threads"),
            t("futex", "parking_lot"),
            TIME,
        );
        push(
            format!("futex ÷ fetch_add, {n} processes"),
            p("futex", "fetch_add"),
            TIME,
        );
    }
    let rt = |c: &str| ratio(round_trip_ns(r, c), round_trip_ns(r, PIPE));
    push(
        "shm+futex round trip ÷ pipe round trip".into(),
        rt("shm-futex"),
        TIME,
    );
    push(
        "shm+spin round trip ÷ pipe round trip".into(),
        rt("shm-spin"),
        TIME,
    );
    push(
        "shm+adaptive round trip ÷ pipe round trip".into(),
        rt("shm-adaptive"),
        TIME,
    );
    push("FIFO round trip ÷ pipe round trip".into(), rt("fifo"), TIME);
    let st = |c: &str| ratio(stream_per_sec(r, c), stream_per_sec(r, PIPE));
    push(
        "ring throughput ÷ pipe throughput (stream)".into(),
        st("ring"),
        THROUGHPUT,
    );
    push(
        "spinning ring throughput ÷ pipe throughput (stream)".into(),
        st("ring-spin"),
        THROUGHPUT,
    );
    push(
        "adaptive ring throughput ÷ pipe throughput (stream)".into(),
        st("ring-adaptive"),
        THROUGHPUT,
    );
    v
}

/// Where an aim stands.
#[derive(Debug, serde::Serialize)]
pub struct Aim {
    pub aim: String,
    pub measured: String,
    /// `None`: not measured, or an aim no number settles.
    pub met: Option<bool>,
    /// Whether a number settles it (`false`: the text does).
    #[serde(skip)]
    pub judged: bool,
}

/// What a figure must be for an aim to be met.
#[derive(Clone, Copy, Debug)]
enum Bound {
    AtMost(f64),
    AtLeast(f64),
    Below(f64),
}

impl Bound {
    fn holds(self, x: f64) -> bool {
        match self {
            Bound::AtMost(b) => x <= b,
            Bound::AtLeast(b) => x >= b,
            Bound::Below(b) => x < b,
        }
    }
}

fn aim(aim: impl Into<String>, measured: String, value: Option<f64>, bound: Bound) -> Aim {
    Aim {
        aim: aim.into(),
        measured,
        met: value.map(|x| bound.holds(x)),
        judged: true,
    }
}

/// Every aim, in table order. `fair` is `None` if fairness was not measured.
pub fn aims(r: &Results, fair: Option<&fairness::Results>) -> Vec<Aim> {
    let mut v = Vec::new();
    let fut_pth = ratio(uncontended_ns(r, "futex"), uncontended_ns(r, "pthread"));
    v.push(aim(
        "futex uncontended ≤ 1.0× pthread (robust, process-shared)",
        format::ratio(fut_pth),
        fut_pth,
        Bound::AtMost(1.0),
    ));
    let fut_fa = ratio(uncontended_ns(r, "futex"), uncontended_ns(r, "fetch_add"));
    v.push(aim(
        "futex uncontended ≤ 2.5× fetch_add",
        format::ratio(fut_fa),
        fut_fa,
        Bound::AtMost(2.5),
    ));
    // Throughput futex ÷ pthread = time pthread ÷ time futex.
    let thr = ratio(
        contended_ns(r, group::PROCS, "pthread", FEW),
        contended_ns(r, group::PROCS, "futex", FEW),
    );
    v.push(aim(
        format!("futex, {FEW} processes: throughput ≥ pthread's"),
        format!("{} of pthread's throughput", format::ratio(thr)),
        thr,
        Bound::AtLeast(1.0),
    ));
    let f = fair.and_then(|f| f.find("futex", FEW));
    v.push(aim(
        format!("futex, {FEW} processes: every contender ≥ 1/3 of the mean share"),
        f.map_or("not measured".into(), |f| {
            format!(
                "smallest share {} = {} the mean (Jain median {})",
                format::fraction(f.min_share),
                format::ratio(Some(f.min_over_mean)),
                format::fraction(f.jain_median)
            )
        }),
        f.map(|f| f.min_over_mean),
        Bound::AtLeast(1.0 / 3.0),
    ));
    for lock in ["futex", "pthread"] {
        let k = keeps(r, group::PROCS, lock);
        v.push(aim(
            format!("{lock}: {MANY} processes keep ≥ 0.5× the throughput of {FEW}"),
            format::ratio(k),
            k,
            Bound::AtLeast(0.5),
        ));
    }
    let spin = keeps(r, group::PROCS, "spin");
    v.push(Aim {
        aim: format!("spin: shown collapsing from {FEW} to {MANY} processes"),
        measured: format!(
            "keeps {} of its {FEW}-process throughput",
            format::ratio(spin)
        ),
        met: None,
        judged: false,
    });
    let ring = ratio(stream_per_sec(r, "ring"), stream_per_sec(r, PIPE));
    v.push(aim(
        "ring throughput ≥ 3× pipe throughput",
        format::ratio(ring),
        ring,
        Bound::AtLeast(3.0),
    ));
    let shm_rt = ratio(round_trip_ns(r, "shm-futex"), round_trip_ns(r, PIPE));
    v.push(aim(
        "shm+futex round trip faster than a pipe's",
        format!("{} of the pipe's time", format::ratio(shm_rt)),
        shm_rt,
        Bound::Below(1.0),
    ));
    v
}
