//! Computing: the headline ratios, and where the aims stand.

use crate::criterion::Results;
use crate::figures::{
    FEW, MANY, PIPE, contended_ns, keeps, ratio, round_trip_ns, stream_per_sec, uncontended_ns,
};
use crate::format;
use ipc::ladder::Mechanism;
use shmlab_benches::{CONTENDERS, HOLD, fairness, group, ladder};

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
    /// `None`: not measured.
    pub met: Option<bool>,
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

/// An aim a number settles; `measured` says what `value` is, and is
/// replaced by "not measured" where there is no value.
fn aim(aim: impl Into<String>, measured: String, value: Option<f64>, bound: Bound) -> Aim {
    Aim {
        aim: aim.into(),
        measured: if value.is_some() {
            measured
        } else {
            NOT_MEASURED.into()
        },
        met: value.map(|x| bound.holds(x)),
    }
}

/// What an aim whose figures are missing shows.
const NOT_MEASURED: &str = "not measured";

/// The aim that a round trip signalled one way beats the pipe's: `rung`'s
/// p50 ÷ the pipe's p50 in the first run of the latency ladder (pinned if
/// there is one), else, without that row, `criterion_case`'s median ÷ the
/// pipe's median from criterion's round-trip group.
fn round_trip_aim(
    aim_text: &str,
    r: &Results,
    run: Option<(bool, &ladder::Run)>,
    rung: Mechanism,
    criterion_case: &str,
) -> Aim {
    let from_ladder = run.and_then(|(pin_asked, run)| {
        let x = run.row(rung)?.p50_vs_pipe?;
        Some((x, pin_asked, run))
    });
    let (value, measured) = match from_ladder {
        Some((x, pin_asked, run)) => (
            Some(x),
            format!(
                "`{rung}` p50 {} the pipe's (latency ladder, {})",
                format::ratio(Some(x)),
                run.placement(pin_asked)
            ),
        ),
        None => {
            let x = ratio(round_trip_ns(r, criterion_case), round_trip_ns(r, PIPE));
            (
                x,
                format!(
                    "`{criterion_case}` {} of the pipe's time (criterion medians)",
                    format::ratio(x)
                ),
            )
        }
    };
    aim(aim_text, measured, value, Bound::Below(1.0))
}

/// Every aim, in table order. `fair` and `ladder` are `None` if fairness or
/// the latency ladder were not measured.
pub fn aims(
    r: &Results,
    fair: Option<&fairness::Results>,
    ladder: Option<&ladder::Results>,
) -> Vec<Aim> {
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
        f.map_or(NOT_MEASURED.into(), |f| {
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
    // The collapse: the lock that never yields, its critical section long
    // enough to be preempted in, beside the yielding spin lock and futex.
    let held = |lock| keeps(r, group::PROCS_HELD, lock);
    let pure = held("spin-pure");
    v.push(aim(
        format!(
            "spin-pure (never yields): {MANY} processes keep < 0.5× the throughput of {FEW}, critical section held {HOLD} `spin_loop` rounds"
        ),
        format!(
            "keeps {} (spin {}, futex {}; with the bare increment spin-pure keeps {})",
            format::ratio(pure),
            format::ratio(held("spin")),
            format::ratio(held("futex")),
            format::ratio(keeps(r, group::PROCS, "spin-pure"))
        ),
        pure,
        Bound::Below(0.5),
    ));
    let ring = ratio(stream_per_sec(r, "ring"), stream_per_sec(r, PIPE));
    v.push(aim(
        "ring throughput ≥ 3× pipe throughput",
        format::ratio(ring),
        ring,
        Bound::AtLeast(3.0),
    ));
    // Both round-trip aims from one ladder run, so that they compare alike.
    let run = ladder.and_then(|l| l.runs().next());
    v.push(round_trip_aim(
        "shm+futex round trip faster than a pipe's",
        r,
        run,
        Mechanism::Futex,
        "shm-futex",
    ));
    v.push(round_trip_aim(
        "shm+adaptive (spin, then futex) round trip faster than a pipe's",
        r,
        run,
        Mechanism::SpinFutex,
        "shm-adaptive",
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markdown::tests::results as small_ladder;

    fn round_trip_aims(l: Option<&ladder::Results>) -> Vec<(String, String, Option<bool>)> {
        let none = Results::read(std::path::Path::new("/nonexistent/criterion")).unwrap();
        aims(&none, None, l)
            .into_iter()
            .filter(|a| a.aim.contains("round trip"))
            .map(|a| (a.aim, a.measured, a.met))
            .collect()
    }

    /// The collapse aim, given spin-pure's time per increment with 8 held
    /// processes (2 processes: 500 ns; spin: 500 ns at both).
    fn collapse_aim(pure_at_8_ns: f64) -> Aim {
        let per_iter = |n: u64, ns: f64| ns * n as f64;
        let r = Results::made_up(&[
            ("contended_procs_held/spin-pure/2", per_iter(2, 500.0), 2),
            (
                "contended_procs_held/spin-pure/8",
                per_iter(8, pure_at_8_ns),
                8,
            ),
            ("contended_procs_held/spin/2", per_iter(2, 500.0), 2),
            ("contended_procs_held/spin/8", per_iter(8, 500.0), 8),
            ("contended_procs/spin-pure/2", per_iter(2, 100.0), 2),
            ("contended_procs/spin-pure/8", per_iter(8, 125.0), 8),
        ]);
        aims(&r, None, None)
            .into_iter()
            .find(|a| a.aim.starts_with("spin-pure"))
            .expect("a spin-pure aim")
    }

    #[test]
    fn spin_pure_collapses_only_below_half_its_two_process_throughput() {
        let a = collapse_aim(1500.0);
        assert_eq!(a.met, Some(true));
        assert_eq!(
            a.measured,
            format!(
                "keeps 0.33× (spin 1.00×, futex {}; with the bare increment spin-pure keeps 0.80×)",
                format::ratio(None)
            )
        );
        assert_eq!(collapse_aim(800.0).met, Some(false));
        let none = Results::made_up(&[]);
        let a = aims(&none, None, None);
        let a = a.iter().find(|a| a.aim.starts_with("spin-pure")).unwrap();
        assert_eq!((a.measured.as_str(), a.met), (NOT_MEASURED, None));
    }

    #[test]
    fn round_trip_aims_use_the_ladder_s_first_run() {
        let got = round_trip_aims(Some(&small_ladder(false)));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0].1,
            "`futex` p50 0.50× the pipe's (latency ladder, pinned: timing process on CPU 2, answering process on CPU 5)"
        );
        assert_eq!(got[0].2, Some(true));
        // The small ladder has no spin-futex row and criterion none of
        // shm-adaptive: not measured, no figure.
        assert_eq!(got[1].1, NOT_MEASURED);
        assert_eq!(got[1].2, None);
    }

    #[test]
    fn without_any_round_trip_figures_the_aims_are_not_measured() {
        for (aim, measured, met) in round_trip_aims(None) {
            assert_eq!(measured, NOT_MEASURED, "{aim}");
            assert_eq!(met, None, "{aim}");
        }
        let mut unpinned_only = small_ladder(false);
        unpinned_only.pinned_run = None;
        // The unpinned run's futex row has no pipe ratio.
        let got = round_trip_aims(Some(&unpinned_only));
        assert_eq!(got[0].1, NOT_MEASURED);
    }
}
