//! What the week's notes compare: pipes against shared memory.
//!
//! - `ipc_round_trip/<how>`: one 8-byte message from a parent to a child
//!   process and back, for `pipe`, `fifo`, `shm-futex` (a shared-memory
//!   ring each way, the waiter sleeps on a shared futex) and `shm-spin`
//!   (the waiter spins). One iteration = one round trip.
//! - `ipc_stream/<how>`: a 1 GiB stream in 64 KiB messages from one process
//!   to another, `pipe` against the shared-memory ring: `ring` (1 MiB,
//!   futex signalled, the receiver checks in place), `ring-spin`,
//!   `ring-adaptive` (spin 50 µs, then the futex), `ring-copy-out` (the
//!   receiver copies out first) and `ring-256K`/`ring-4M` (other sizes);
//!   see `shmlab_benches::STREAMS`. One iteration = the whole stream;
//!   `Throughput::Bytes` makes criterion report bytes per second.
//!
//! The `ipc` helpers start their processes outside the time they return.
//! `SHMLAB_BENCH_QUICK=1` shrinks every group to a smoke check (and the
//! stream to 64 MiB).
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use ipc::Transport;
use shmlab_benches::{
    Budget, NRESAMPLES, STREAM_MSG, STREAMS, group, leftovers, quick, stream_bytes,
};

fn configure(g: &mut BenchmarkGroup<'_, WallTime>, name: &str) {
    let b = Budget::for_group(name);
    g.warm_up_time(b.warm_up)
        .measurement_time(b.measurement)
        .sample_size(b.samples)
        .sampling_mode(SamplingMode::Flat);
}

fn bench_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group(group::ROUND_TRIP);
    configure(&mut g, group::ROUND_TRIP);
    g.throughput(Throughput::Elements(1));
    for t in Transport::ALL {
        g.bench_function(t.name(), |b| {
            b.iter_custom(|iters| {
                ipc::round_trips(t, iters).unwrap_or_else(|e| panic!("{t} round trips: {e}"))
            })
        });
    }
    g.finish();
}

fn bench_stream(c: &mut Criterion) {
    let total = stream_bytes();
    let mut g = c.benchmark_group(group::STREAM);
    configure(&mut g, group::STREAM);
    g.throughput(Throughput::Bytes(total));
    for (name, how) in STREAMS {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        how.run(total, STREAM_MSG)
                            .unwrap_or_else(|e| panic!("{name} stream of {total} bytes: {e}"))
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

fn main() {
    // Ctrl-C or SIGTERM mid-run: kill the workers, remove the objects.
    shm::cleanup::install().expect("installing the clean-up signal handler");
    let mut c = Criterion::default().nresamples(NRESAMPLES);
    if quick() {
        c = c.without_plots();
    }
    let mut c = c.configure_from_args();
    bench_round_trip(&mut c);
    bench_stream(&mut c);
    c.final_summary();
    let left = leftovers();
    assert!(
        left.is_empty(),
        "benchmarks left objects in /dev/shm: {left:?}"
    );
}
