//! The latency ladder: the round trip between two processes for every way
//! one can wake the other, as a distribution.
//!
//! One driver ([`run_mechanism`]) is generic over an endpoint that can
//! `send` a 32-bit value to the peer and `recv` the peer's. The parent sends
//! ping `2i + 1`, the child checks it and answers `2i + 2`, the parent checks
//! that; every round trip is timed on its own (`Instant`, a vDSO clock read
//! of some tens of ns, the same for every row), so the result is a list of
//! samples, not a mean. A wrong or missing value is an error (the child, on
//! a bad ping, answers with a poison value so the parent fails too, instead
//! of waiting). The memory-based rungs bound every wait by [`STALL`] (a peer
//! that stops answering is an error, not a hang); a pipe, FIFO or socket
//! reader sees end-of-file when the child dies (each side closes the other's
//! ends). An `eventfd` has no end-of-file: a child killed from outside in
//! the middle of that row leaves the parent's `read` waiting (Ctrl-C still
//! ends it; the child, for its part, dies with its parent:
//! `PR_SET_PDEATHSIG`).
//!
//! The same ping and pong are the crate's one round-trip exchange:
//! [`round_trips`](crate::round_trips) runs them untimed per trip (one clock
//! for the whole run) over this module's pipe and FIFO rungs, and over the
//! shared-memory ring.
//!
//! The rungs ([`Mechanism`]), from the physical floor up:
//!
//! | name | how the waiting side waits | how the sender wakes it |
//! |---|---|---|
//! | `cache-line` | spins on **one** shared word both sides write | store |
//! | `spin` | spins on its own word (one cache line per direction) | store |
//! | `spin-futex` | spins up to [`ADAPTIVE_SPIN`], then `FUTEX_WAIT` | swap; `FUTEX_WAKE` only if the waiter said it sleeps |
//! | `futex` | `FUTEX_WAIT` at once | swap + `FUTEX_WAKE` |
//! | `pthread-cond` | `pthread_cond_timedwait` (process-shared, `CLOCK_MONOTONIC`) | mutex, store, `pthread_cond_signal` |
//! | `sem` | `sem_clockwait` (`CLOCK_MONOTONIC`) on a named semaphore (`sem_open`) | store, `sem_post` |
//! | `sem-unnamed` | the same on `sem_init(pshared = 1)` in the mapping | store, `sem_post` |
//! | `eventfd` | `read` of an `eventfd` (one per direction) | `write` |
//! | `pipe` | `read` of a pipe (one per direction) | `write` |
//! | `fifo` | `read` of a named pipe opened by path | `write` |
//! | `unix-socket` | `read` of a `socketpair(AF_UNIX, SOCK_STREAM)` end | `write` |
//!
//! The rungs live in three files: `memory` (cache line, spinning, futex),
//! `locks` (the condition variable and the semaphores, which are
//! [`shm_monitor::RobustMonitor`], [`shm_sem::NamedSem`] and
//! [`shm_sem::SemCell`]) and `fds` (eventfd, pipes, FIFOs, the socket).
//!
//! The shared words live in an anonymous `MAP_SHARED` mapping made before
//! the fork (nothing in `/dev/shm`); the named semaphores and the FIFOs are
//! opened by name in the child and removed by the parent afterwards (and on
//! Ctrl-C). Futex operations are shared (never `FUTEX_PRIVATE_FLAG`).
//!
//! **Pinning.** With [`Options::pin`] and at least two CPUs allowed, the
//! parent runs on the first allowed CPU and the child on the second
//! (`sched_setaffinity`); [`Ladder::pinned`] says which. The parent's
//! affinity is restored after each row.

mod fds;
mod locks;
mod memory;

use crate::child::with_child;
use crate::sys;
use crate::{Error, Result};
use std::fmt;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

pub use crate::adaptive::ADAPTIVE_SPIN;
pub(crate) use fds::{fifo_pair, pipe_pair};

/// How long a waiting side waits for the peer before reporting it stalled.
pub const STALL: Duration = Duration::from_secs(10);

/// Round trips run before the timed ones (caches, page faults, the
/// scheduler's placement).
pub const WARMUP: u64 = 2_000;

/// What a child sends after a bad ping, so the parent stops waiting.
const POISON: u32 = 0x7fff_fffe;

/// The sequence numbers are taken modulo 2^31: the futex rungs keep the top
/// bit of their word for a waiter's flag.
const SEQ: u64 = 0x7fff_ffff;

/// One way for two processes to signal each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// The floor: one shared word, both sides spinning on it.
    CacheLine,
    /// Busy-spinning, one word (cache line) per direction.
    Spin,
    /// Spin up to [`ADAPTIVE_SPIN`], then `FUTEX_WAIT`.
    SpinFutex,
    /// `FUTEX_WAIT` at once, `FUTEX_WAKE` each message.
    Futex,
    /// A process-shared `pthread_mutex_t` and two `pthread_cond_t`.
    Cond,
    /// Two named POSIX semaphores.
    Sem,
    /// Two unnamed process-shared POSIX semaphores in the mapping.
    SemUnnamed,
    /// Two `eventfd`s.
    EventFd,
    /// Two anonymous pipes.
    Pipe,
    /// Two named pipes.
    Fifo,
    /// A Unix-domain stream socket pair.
    UnixSocket,
}

impl Mechanism {
    /// Every rung, in the ladder's order.
    pub const ALL: [Mechanism; 11] = [
        Mechanism::CacheLine,
        Mechanism::Spin,
        Mechanism::SpinFutex,
        Mechanism::Futex,
        Mechanism::Cond,
        Mechanism::Sem,
        Mechanism::SemUnnamed,
        Mechanism::EventFd,
        Mechanism::Pipe,
        Mechanism::Fifo,
        Mechanism::UnixSocket,
    ];

    /// The row's name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::CacheLine => "cache-line",
            Mechanism::Spin => "spin",
            Mechanism::SpinFutex => "spin-futex",
            Mechanism::Futex => "futex",
            Mechanism::Cond => "pthread-cond",
            Mechanism::Sem => "sem",
            Mechanism::SemUnnamed => "sem-unnamed",
            Mechanism::EventFd => "eventfd",
            Mechanism::Pipe => "pipe",
            Mechanism::Fifo => "fifo",
            Mechanism::UnixSocket => "unix-socket",
        }
    }

    /// One line on what the row measures.
    pub fn what(self) -> &'static str {
        match self {
            Mechanism::CacheLine => {
                "the floor: one shared cache line bouncing between the two CPUs"
            }
            Mechanism::Spin => "busy-spin, one cache line per direction",
            Mechanism::SpinFutex => "spin up to 50 us, then FUTEX_WAIT (adaptive)",
            Mechanism::Futex => "FUTEX_WAIT at once; FUTEX_WAKE every message",
            Mechanism::Cond => "process-shared pthread_cond_t + mutex",
            Mechanism::Sem => "named POSIX semaphores (sem_open)",
            Mechanism::SemUnnamed => "unnamed POSIX semaphores (sem_init pshared)",
            Mechanism::EventFd => "eventfd read/write",
            Mechanism::Pipe => "two pipes, 8-byte read/write",
            Mechanism::Fifo => "two named pipes, opened by path",
            Mechanism::UnixSocket => "socketpair(AF_UNIX, SOCK_STREAM)",
        }
    }

    /// Whether its waiters burn a CPU while they wait (the rows that need
    /// two CPUs to themselves to mean anything).
    pub fn spins(self) -> bool {
        matches!(
            self,
            Mechanism::CacheLine | Mechanism::Spin | Mechanism::SpinFutex
        )
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mechanism {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::Invalid(format!("unknown ladder rung {s:?}")))
    }
}

/// How to run the ladder.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Timed round trips per row.
    pub round_trips: u64,
    /// Untimed round trips before them.
    pub warmup: u64,
    /// Pin the two processes to two different CPUs, if allowed.
    pub pin: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            round_trips: 100_000,
            warmup: WARMUP,
            pin: true,
        }
    }
}

/// One row: every timed round trip, sorted, in nanoseconds.
#[derive(Clone, Debug)]
pub struct Row {
    /// The rung.
    pub mechanism: Mechanism,
    /// Round-trip times in ns, ascending.
    pub samples: Vec<u64>,
    /// Wall time of the timed part.
    pub elapsed: Duration,
}

impl Row {
    /// The `p`-th percentile (nearest rank), in ns; `p` in `0..=100`.
    pub fn percentile(&self, p: f64) -> u64 {
        percentile(&self.samples, p)
    }

    /// The slowest round trip, in ns.
    pub fn max(&self) -> u64 {
        self.samples.last().copied().unwrap_or(0)
    }

    /// The mean, in ns.
    pub fn mean(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().map(|&s| s as f64).sum::<f64>() / self.samples.len() as f64
    }
}

/// The nearest-rank `p`-th percentile of ascending `sorted`.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The small slack keeps 99.9 % of 1000 at rank 999 despite rounding.
    let rank = (p * sorted.len() as f64 / 100.0 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Where the two processes ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pinning {
    /// The timing (parent) process's CPU.
    pub parent: usize,
    /// The answering (child) process's CPU.
    pub child: usize,
}

/// A whole ladder: one [`Row`] per rung, from one run.
#[derive(Clone, Debug)]
pub struct Ladder {
    /// The rows, in the order run.
    pub rows: Vec<Row>,
    /// The CPUs this process was allowed to use.
    pub allowed_cpus: Vec<usize>,
    /// Where the two sides were pinned, or `None` (not asked, or fewer than
    /// two CPUs allowed).
    pub pinned: Option<Pinning>,
}

impl Ladder {
    /// The row of `m`, if run.
    pub fn row(&self, m: Mechanism) -> Option<&Row> {
        self.rows.iter().find(|r| r.mechanism == m)
    }

    /// `row`'s `p`-th percentile divided by `base`'s, if both ran.
    pub fn ratio(&self, row: Mechanism, base: Mechanism, p: f64) -> Option<f64> {
        let (r, b) = (self.row(row)?, self.row(base)?);
        let b = b.percentile(p);
        (b > 0).then(|| r.percentile(p) as f64 / b as f64)
    }
}

/// Where `opts` would pin the two sides, given the allowed CPUs.
pub fn pinning(opts: &Options, allowed: &[usize]) -> Option<Pinning> {
    (opts.pin && allowed.len() >= 2).then(|| Pinning {
        parent: allowed[0],
        child: allowed[1],
    })
}

/// Runs every rung of `mechanisms` in turn (each in a fresh child).
pub fn run_ladder(mechanisms: &[Mechanism], opts: &Options) -> Result<Ladder> {
    let allowed = sys::allowed_cpus().map_err(|e| Error::io("sched_getaffinity", e))?;
    let mut rows = Vec::with_capacity(mechanisms.len());
    for &m in mechanisms {
        rows.push(run_mechanism(m, opts)?);
    }
    Ok(Ladder {
        rows,
        pinned: pinning(opts, &allowed),
        allowed_cpus: allowed,
    })
}

/// One rung: `opts.warmup` untimed and `opts.round_trips` timed round trips
/// between this process and a forked child, every value checked.
pub fn run_mechanism(m: Mechanism, opts: &Options) -> Result<Row> {
    let total = opts.warmup + opts.round_trips;
    if total >= 1 << 29 {
        return Err(Error::Invalid(format!(
            "{total} round trips is too many for the 31-bit sequence numbers; use fewer than {}",
            1u64 << 29
        )));
    }
    let allowed = sys::allowed_cpus().map_err(|e| Error::io("sched_getaffinity", e))?;
    let pin = pinning(opts, &allowed);
    let mut samples = Vec::with_capacity(opts.round_trips as usize);
    let rounds = Rounds {
        warmup: opts.warmup,
        timed: opts.round_trips,
    };
    let elapsed = exchange(m.name(), pair(m)?, rounds, Some(&mut samples), pin);
    if pin.is_some() {
        let _ = sys::set_affinity(&allowed);
    }
    let elapsed = elapsed?;
    samples.sort_unstable();
    Ok(Row {
        mechanism: m,
        samples,
        elapsed,
    })
}

/// Builds `m`'s two ends.
fn pair(m: Mechanism) -> Result<Pair> {
    match m {
        Mechanism::CacheLine => memory::cache_line(),
        Mechanism::Spin => memory::spin(),
        Mechanism::SpinFutex => memory::futex(ADAPTIVE_SPIN, m.name()),
        Mechanism::Futex => memory::futex(Duration::ZERO, m.name()),
        Mechanism::Cond => locks::cond(),
        Mechanism::Sem => locks::named_sem(),
        Mechanism::SemUnnamed => locks::unnamed_sem(),
        Mechanism::EventFd => fds::eventfd(),
        Mechanism::Pipe => fds::pipe_pair(),
        Mechanism::Fifo => fds::fifo_pair("ladder"),
        Mechanism::UnixSocket => fds::unix_socket(),
    }
}

/// One side of a link: what the round trips need from every mechanism.
pub(crate) trait Endpoint {
    /// Hands `v` to the peer and wakes it.
    fn send(&mut self, v: u32) -> Result<()>;
    /// Waits for the peer's next value.
    fn recv(&mut self) -> Result<u32>;
}

type Build = Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>>;

/// A mechanism's two ends, built lazily in the process that uses each
/// (`child` runs in the child after the fork, `parent` in the parent; the
/// child drops `parent` unrun first thing, which closes the parent's
/// descriptors there), and what the parent keeps until the child is gone
/// (names to remove, objects to destroy).
pub(crate) struct Pair {
    parent: Build,
    child: Build,
    guard: Box<dyn std::any::Any>,
}

impl Pair {
    fn new<P, C>(
        parent: impl FnOnce() -> Result<P> + 'static,
        child: impl FnOnce() -> Result<C> + 'static,
        guard: impl std::any::Any,
    ) -> Pair
    where
        P: Endpoint + 'static,
        C: Endpoint + 'static,
    {
        Pair {
            parent: Box::new(move || Ok(Box::new(parent()?) as Box<dyn Endpoint>)),
            child: Box::new(move || Ok(Box::new(child()?) as Box<dyn Endpoint>)),
            guard: Box::new(guard),
        }
    }
}

/// How many round trips: `warmup` untimed, then `timed`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rounds {
    pub(crate) warmup: u64,
    pub(crate) timed: u64,
}

/// `rounds` round trips over `pair` between this process and a forked
/// child (see [`with_child`]); the time of the timed ones. With `samples`,
/// each timed round trip's own time (ns) is pushed there; with `pin`, each
/// side pins itself (the caller restores the parent's affinity).
pub(crate) fn exchange(
    what: &'static str,
    pair: Pair,
    rounds: Rounds,
    samples: Option<&mut Vec<u64>>,
    pin: Option<Pinning>,
) -> Result<Duration> {
    let Pair {
        parent,
        child,
        guard,
    } = pair;
    let Rounds { warmup, timed } = rounds;
    let elapsed = with_child(
        what,
        parent,
        move |ready| {
            if let Some(p) = pin {
                sys::set_affinity(&[p.child]).map_err(|e| Error::io("sched_setaffinity", e))?;
            }
            let mut ep = child()?;
            ready.signal()?;
            pong(&mut *ep, warmup + timed, what)
        },
        |parent, ctl| {
            if let Some(p) = pin {
                sys::set_affinity(&[p.parent]).map_err(|e| Error::io("sched_setaffinity", e))?;
            }
            let mut ep = parent()?;
            ctl.wait_ready()?;
            ping(&mut *ep, rounds, samples, what)
        },
    );
    drop(guard);
    elapsed
}

/// Ping `i`: `2i + 1` (modulo 2^31).
fn ping_value(i: u64) -> u32 {
    ((2 * i + 1) & SEQ) as u32
}

/// The answer to ping `i`: `2i + 2` (modulo 2^31): neither an echo nor the
/// previous answer, so a transport that hands a message straight back (or
/// a stale one) is caught.
fn pong_value(i: u64) -> u32 {
    ((2 * i + 2) & SEQ) as u32
}

/// The timing side: ping `2i + 1`, expect `2i + 2`; the time from the
/// first timed ping to the last answer. With `samples`, also each timed
/// round trip's own time in ns (two more clock reads per trip); without,
/// the loop reads no clock.
pub(crate) fn ping<E: Endpoint + ?Sized>(
    ep: &mut E,
    rounds: Rounds,
    mut samples: Option<&mut Vec<u64>>,
    what: &str,
) -> Result<Duration> {
    let Rounds { warmup, timed } = rounds;
    let mut start = Instant::now();
    for i in 0..warmup + timed {
        if i == warmup {
            start = Instant::now();
        }
        let (ping, want) = (ping_value(i), pong_value(i));
        let t0 = samples.is_some().then(Instant::now);
        ep.send(ping)?;
        let got = ep.recv()?;
        if let (Some(t0), Some(s)) = (t0, samples.as_deref_mut()) {
            let dt = t0.elapsed();
            if i >= warmup {
                s.push(dt.as_nanos() as u64);
            }
        }
        if got != want {
            return Err(corrupt(
                what,
                format!("reply {i} was {got}, expected {want}"),
            ));
        }
    }
    Ok(start.elapsed())
}

/// The answering side: expect `2i + 1`, answer `2i + 2`.
pub(crate) fn pong<E: Endpoint + ?Sized>(ep: &mut E, total: u64, what: &str) -> Result<()> {
    for i in 0..total {
        let want = ping_value(i);
        let got = ep.recv()?;
        if got != want {
            let _ = ep.send(POISON);
            return Err(corrupt(
                what,
                format!("ping {i} arrived as {got}, expected {want}"),
            ));
        }
        ep.send(pong_value(i))?;
    }
    Ok(())
}

fn corrupt(what: &str, detail: String) -> Error {
    Error::Corrupt {
        transport: what.to_owned(),
        detail,
    }
}

fn stalled(what: &str) -> Error {
    Error::Corrupt {
        transport: what.to_owned(),
        detail: format!("the peer did not answer for {STALL:?}"),
    }
}

/// A word on its own cache line.
#[repr(C, align(64))]
struct Line(AtomicU32);
shm::any_bits!(Line { 0 });

/// Which side an endpoint is: it sends on `words[tx]`, receives on
/// `words[1 - tx]`.
#[derive(Clone, Copy)]
struct Side {
    tx: usize,
}

const PARENT: Side = Side { tx: 0 };
const CHILD: Side = Side { tx: 1 };

impl Side {
    fn rx(self) -> usize {
        1 - self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past 2^31 the values wrap, and stay distinct from their neighbours
    /// (what the memory rungs compare with) and odd/even by direction.
    #[test]
    fn sequence_numbers_wrap_at_31_bits() {
        assert_eq!((ping_value(0), pong_value(0)), (1, 2));
        let i = (1u64 << 30) - 1;
        assert_eq!((ping_value(i), pong_value(i)), (0x7fff_ffff, 0));
        assert_eq!((ping_value(i + 1), pong_value(i + 1)), (1, 2));
        assert_ne!(pong_value(i - 1), pong_value(i));
    }
}
