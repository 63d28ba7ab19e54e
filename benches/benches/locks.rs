//! Every shmlab lock against glibc, parking_lot and the atomic floor.
//!
//! Groups (see `shmlab_benches::group`):
//! - `uncontended/<case>`: one lock/unlock pair around one increment on one
//!   thread, the lock's state inside a real shared region, taken through
//!   `shm::lock::Lock` and its guard. One iteration = one increment.
//! - `contended_threads/<case>/<N>` and `contended_procs/<case>/<N>`: N
//!   threads, or N separate processes that map the region by name, each
//!   doing `iters` increments under the lock. Workers are started outside
//!   the timed region and released by the race's start barrier; the time
//!   runs from the start signal to the last worker's last increment. One
//!   iteration = one increment by each contender, so
//!   `Throughput::Elements(N)` makes criterion report increments per
//!   second.
//! - `contended_procs_held/<case>/<N>`: the same with processes, for
//!   `spin-pure`, `spin` and `futex` only, each critical section lengthened
//!   by `HOLD` `spin_loop` rounds between the load and the store
//!   (`lab4-race --hold 200`), so that with N > 2 on two CPUs a holder is
//!   often preempted while holding: the lock that never yields collapses.
//!
//! Every measurement checks the final count and panics if an update was
//! lost. `SHMLAB_BENCH_QUICK=1` shrinks every group to a smoke check.
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use race::WorkerKind;
use shmlab_benches::{
    Budget, CONTENDERS, Case, HELD_CASES, HOLD, NRESAMPLES, group, leftovers, quick, uncontended,
};
use std::time::Duration;

fn configure(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mode: SamplingMode) {
    let b = Budget::for_group(name);
    g.warm_up_time(b.warm_up)
        .measurement_time(b.measurement)
        .sample_size(b.samples)
        .sampling_mode(mode);
}

fn bench_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group(group::UNCONTENDED);
    configure(&mut g, group::UNCONTENDED, SamplingMode::Auto);
    g.throughput(Throughput::Elements(1));
    for case in Case::ALL {
        let mut work =
            uncontended(case).unwrap_or_else(|e| panic!("setting up {}: {e:#}", case.name()));
        g.bench_function(case.name(), |b| b.iter_custom(|iters| work.run(iters)));
    }
    g.finish();
}

/// A contended group: each case with each of [`CONTENDERS`] contenders of
/// `kind`, every critical section held `hold` `spin_loop` rounds.
fn bench_group(
    c: &mut Criterion,
    name: &str,
    cases: impl IntoIterator<Item = Case>,
    kind: WorkerKind,
    hold: u32,
) {
    let mut g = c.benchmark_group(name);
    // Flat: every sample does the same number of iterations, so no sample
    // is a handful of increments dominated by the barrier's release.
    configure(&mut g, name, SamplingMode::Flat);
    for case in cases {
        for n in CONTENDERS {
            g.throughput(Throughput::Elements(n.into()));
            g.bench_with_input(BenchmarkId::new(case.name(), n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    let r = case
                        .contend_held(kind, n, iters, hold)
                        .unwrap_or_else(|e| panic!("{e:#}"));
                    Duration::from_nanos(r.elapsed_ns)
                })
            });
        }
    }
    g.finish();
}

fn bench_contended(c: &mut Criterion, kind: WorkerKind) {
    let name = match kind {
        WorkerKind::Threads => group::THREADS,
        WorkerKind::Procs => group::PROCS,
    };
    let cases = Case::ALL
        .into_iter()
        .filter(|c| kind == WorkerKind::Threads || c.cross_process());
    bench_group(c, name, cases, kind, 0);
}

fn main() {
    // Ctrl-C or SIGTERM mid-run: kill the workers, remove the objects.
    shm::cleanup::install().expect("installing the clean-up signal handler");
    let mut c = Criterion::default().nresamples(NRESAMPLES);
    if quick() {
        c = c.without_plots();
    }
    let mut c = c.configure_from_args();
    bench_uncontended(&mut c);
    bench_contended(&mut c, WorkerKind::Threads);
    bench_contended(&mut c, WorkerKind::Procs);
    bench_group(
        &mut c,
        group::PROCS_HELD,
        HELD_CASES,
        WorkerKind::Procs,
        HOLD,
    );
    c.final_summary();
    let left = leftovers();
    assert!(
        left.is_empty(),
        "benchmarks left objects in /dev/shm: {left:?}"
    );
}
