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
//! The rungs ([`Mechanism`]), from the physical floor up:
//!
//! | name | how the waiting side waits | how the sender wakes it |
//! |---|---|---|
//! | `cache-line` | spins on **one** shared word both sides write | store |
//! | `spin` | spins on its own word (one cache line per direction) | store |
//! | `spin-futex` | spins up to [`ADAPTIVE_SPIN`], then `FUTEX_WAIT` | swap; `FUTEX_WAKE` only if the waiter said it sleeps |
//! | `futex` | `FUTEX_WAIT` at once | swap + `FUTEX_WAKE` |
//! | `pthread-cond` | `pthread_cond_timedwait` (process-shared) | mutex, store, `pthread_cond_signal` |
//! | `sem` | `sem_timedwait` on a named semaphore (`sem_open`) | store, `sem_post` |
//! | `sem-unnamed` | the same on `sem_init(pshared = 1)` in the mapping | store, `sem_post` |
//! | `eventfd` | `read` of an `eventfd` (one per direction) | `write` |
//! | `pipe` | `read` of a pipe (one per direction) | `write` |
//! | `fifo` | `read` of a named pipe opened by path | `write` |
//! | `unix-socket` | `read` of a `socketpair(AF_UNIX, SOCK_STREAM)` end | `write` |
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

use crate::child::with_child;
use crate::fifo::Fifo;
use crate::ladder_sys::{self as sys, NamedSem, SharedAnon};
use crate::{Error, Result};
use std::cell::UnsafeCell;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::{Duration, Instant};

pub use crate::adaptive::ADAPTIVE_SPIN;

/// How long a waiting side waits for the peer before reporting it stalled.
pub const STALL: Duration = Duration::from_secs(10);

/// Round trips run before the timed ones (caches, page faults, the
/// scheduler's placement).
pub const WARMUP: u64 = 2_000;

/// The flag a futex waiter sets in its word before it sleeps.
const WAITING: u32 = 0x8000_0000;
/// The value bits of a futex word.
const VALUE: u32 = !WAITING;
/// What a child sends after a bad ping, so the parent stops waiting.
const POISON: u32 = 0x7fff_fffe;

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
    let pair = pair(m)?;
    let Pair {
        parent,
        child,
        guard,
    } = pair;
    let mut samples = Vec::with_capacity(opts.round_trips as usize);
    let (warmup, timed) = (opts.warmup, opts.round_trips);
    let what = m.name();
    let restore = |r: Result<Duration>| {
        if pin.is_some() {
            let _ = sys::set_affinity(&allowed);
        }
        r
    };
    let elapsed = restore(with_child(
        what,
        parent,
        move |ready| {
            sys::die_with_parent();
            if let Some(p) = pin {
                sys::set_affinity(&[p.child]).map_err(|e| Error::io("sched_setaffinity", e))?;
            }
            let mut ep = child()?;
            ready.signal()?;
            pong(ep.as_mut(), warmup + timed, what)
        },
        |parent, ctl| {
            if let Some(p) = pin {
                sys::set_affinity(&[p.parent]).map_err(|e| Error::io("sched_setaffinity", e))?;
            }
            let mut ep = parent()?;
            ctl.wait_ready()?;
            ping(ep.as_mut(), warmup, timed, &mut samples, what)
        },
    ));
    drop(guard);
    let elapsed = elapsed?;
    samples.sort_unstable();
    Ok(Row {
        mechanism: m,
        samples,
        elapsed,
    })
}

/// One side of a link: what the driver needs from every mechanism.
trait Endpoint {
    /// Hands `v` to the peer and wakes it.
    fn send(&mut self, v: u32) -> Result<()>;
    /// Waits for the peer's next value.
    fn recv(&mut self) -> Result<u32>;
}

type Build = Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>>;

/// A mechanism's two ends, built lazily in the process that uses each
/// (`child` runs in the child after the fork, `parent` in the parent), and
/// what the parent keeps until the child is gone (names to remove, objects
/// to destroy).
struct Pair {
    parent: Build,
    child: Build,
    guard: Box<dyn std::any::Any>,
}

/// The timing side: ping `2i + 1`, expect `2i + 2`.
fn ping(
    ep: &mut dyn Endpoint,
    warmup: u64,
    timed: u64,
    samples: &mut Vec<u64>,
    what: &str,
) -> Result<Duration> {
    let mut start = Instant::now();
    for i in 0..warmup + timed {
        if i == warmup {
            start = Instant::now();
        }
        let (ping, want) = (2 * i as u32 + 1, 2 * i as u32 + 2);
        let t0 = Instant::now();
        ep.send(ping)?;
        let got = ep.recv()?;
        let dt = t0.elapsed();
        if got != want {
            return Err(corrupt(
                what,
                format!("reply {i} was {got}, expected {want}"),
            ));
        }
        if i >= warmup {
            samples.push(dt.as_nanos() as u64);
        }
    }
    Ok(start.elapsed())
}

/// The answering side: expect `2i + 1`, answer `2i + 2`.
fn pong(ep: &mut dyn Endpoint, total: u64, what: &str) -> Result<()> {
    for i in 0..total {
        let want = 2 * i as u32 + 1;
        let got = ep.recv()?;
        if got != want {
            let _ = ep.send(POISON);
            return Err(corrupt(
                what,
                format!("ping {i} arrived as {got}, expected {want}"),
            ));
        }
        ep.send(want + 1)?;
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

/// Everything the memory-based rungs share, in one anonymous shared
/// mapping (zeroed; each rung initialises what it uses).
#[repr(C)]
struct Shared {
    /// The floor's single word.
    floor: Line,
    /// `[parent → child, child → parent]`.
    words: [Line; 2],
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    conds: [UnsafeCell<libc::pthread_cond_t>; 2],
    sems: [UnsafeCell<libc::sem_t>; 2],
}
shm::any_bits!(Shared {
    floor,
    words,
    mutex,
    conds,
    sems
});

// SAFETY: the cells hold process-shared libc synchronisation objects that
// are only used through their own functions (which synchronise), never
// through references; the rest is atomics.
unsafe impl Sync for Shared {}

type Mem = Rc<SharedAnon<Shared>>;

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

/// Spins until `word` differs from `last`; bounded by [`STALL`].
fn spin_until_changed(word: &AtomicU32, last: u32, what: &str) -> Result<u32> {
    let mut n: u32 = 0;
    let mut since: Option<Instant> = None;
    loop {
        let v = word.load(Acquire);
        if v != last {
            return Ok(v);
        }
        std::hint::spin_loop();
        n = n.wrapping_add(1);
        if n % 4096 == 0 {
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() > STALL {
                return Err(stalled(what));
            }
        }
    }
}

struct CacheLineEp {
    mem: Mem,
    last: u32,
}

impl Endpoint for CacheLineEp {
    fn send(&mut self, v: u32) -> Result<()> {
        self.mem.floor.0.store(v, Release);
        self.last = v;
        Ok(())
    }
    fn recv(&mut self) -> Result<u32> {
        self.last = spin_until_changed(&self.mem.floor.0, self.last, "cache-line")?;
        Ok(self.last)
    }
}

struct SpinEp {
    mem: Mem,
    side: Side,
    last: u32,
}

impl Endpoint for SpinEp {
    fn send(&mut self, v: u32) -> Result<()> {
        self.mem.words[self.side.tx].0.store(v, Release);
        Ok(())
    }
    fn recv(&mut self) -> Result<u32> {
        self.last = spin_until_changed(&self.mem.words[self.side.rx()].0, self.last, "spin")?;
        Ok(self.last)
    }
}

/// A futex word per direction: the value in the low 31 bits, [`WAITING`]
/// set by a receiver about to sleep. Spins up to `spin` first (zero: the
/// pure futex row).
struct FutexEp {
    mem: Mem,
    side: Side,
    last: u32,
    spin: Duration,
    what: &'static str,
}

/// Spins on `word` for up to `budget` while its value bits equal `last`;
/// returns the first other value seen, or `None` when the budget is spent.
/// The clock is read every 64 rounds.
pub(crate) fn spin_for(word: &AtomicU32, last: u32, budget: Duration) -> Option<u32> {
    if budget.is_zero() {
        return None;
    }
    let start = Instant::now();
    let mut n: u32 = 0;
    loop {
        let s = word.load(Acquire);
        if s & VALUE != last {
            return Some(s & VALUE);
        }
        std::hint::spin_loop();
        n = n.wrapping_add(1);
        if n % 64 == 0 && start.elapsed() >= budget {
            return None;
        }
    }
}

impl Endpoint for FutexEp {
    fn send(&mut self, v: u32) -> Result<()> {
        let w = &self.mem.words[self.side.tx].0;
        if w.swap(v & VALUE, Release) & WAITING != 0 {
            shm_futex::futex_wake(w, 1);
        }
        Ok(())
    }
    fn recv(&mut self) -> Result<u32> {
        let w = &self.mem.words[self.side.rx()].0;
        if let Some(v) = spin_for(w, self.last, self.spin) {
            self.last = v;
            return Ok(v);
        }
        let deadline = Instant::now() + STALL;
        loop {
            let s = w.load(Acquire);
            if s & VALUE != self.last {
                self.last = s & VALUE;
                return Ok(self.last);
            }
            if s & WAITING == 0
                && w.compare_exchange(s, s | WAITING, Relaxed, Relaxed)
                    .is_err()
            {
                continue;
            }
            shm_futex::futex_wait(w, s | WAITING, Some(Duration::from_millis(100)));
            if Instant::now() > deadline {
                return Err(stalled(self.what));
            }
        }
    }
}

struct CondEp {
    mem: Mem,
    side: Side,
    last: u32,
}

impl CondEp {
    /// Takes the mutex within [`STALL`]; a peer that died holding it (the
    /// mutex is robust) is an error, after the mutex is given back.
    ///
    /// # Safety
    /// The mutex was initialised in place before the fork (`pair`) and is
    /// never destroyed while either process may use it.
    unsafe fn lock(&self) -> Result<()> {
        let m = self.mem.mutex.get();
        // SAFETY: per this function's contract.
        match unsafe { sys::mutex_lock_for(m, STALL) } {
            Ok(sys::Held::Clean) => Ok(()),
            Ok(sys::Held::OwnerDied) => {
                // SAFETY: we hold it (made consistent).
                unsafe { sys::mutex_unlock(m) };
                Err(owner_died())
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(stalled("pthread-cond")),
            Err(e) => Err(Error::io("pthread_mutex_clocklock", e)),
        }
    }
}

fn owner_died() -> Error {
    Error::Corrupt {
        transport: "pthread-cond".into(),
        detail: "the peer died holding the mutex (EOWNERDEAD)".into(),
    }
}

impl Endpoint for CondEp {
    fn send(&mut self, v: u32) -> Result<()> {
        let m = self.mem.mutex.get();
        // SAFETY: the mutex and conds were initialised in place before the
        // fork (`pair`) and are never destroyed (see `Destroy`).
        unsafe {
            self.lock()?;
            self.mem.words[self.side.tx].0.store(v, Relaxed);
            sys::cond_signal(self.mem.conds[self.side.tx].get());
            sys::mutex_unlock(m);
        }
        Ok(())
    }
    fn recv(&mut self) -> Result<u32> {
        let m = self.mem.mutex.get();
        let c = self.mem.conds[self.side.rx()].get();
        let deadline = Instant::now() + STALL;
        // SAFETY: as in `send`; we hold the mutex around the wait, and on
        // every way out of the loop we give it back.
        unsafe {
            self.lock()?;
            loop {
                let v = self.mem.words[self.side.rx()].0.load(Relaxed);
                if v != self.last {
                    sys::mutex_unlock(m);
                    self.last = v;
                    return Ok(v);
                }
                match sys::cond_wait_for(c, m, Duration::from_millis(100)) {
                    Ok(Some(sys::Held::Clean)) => {}
                    Ok(None) if Instant::now() <= deadline => {}
                    Ok(None) => {
                        sys::mutex_unlock(m);
                        return Err(stalled("pthread-cond"));
                    }
                    Ok(Some(sys::Held::OwnerDied)) => {
                        sys::mutex_unlock(m);
                        return Err(owner_died());
                    }
                    Err(e) => {
                        // No mutex held after a failed wait other than
                        // EOWNERDEAD (handled above) is not promised; glibc
                        // re-acquires before returning an error.
                        sys::mutex_unlock(m);
                        return Err(Error::io("pthread_cond_timedwait", e));
                    }
                }
            }
        }
    }
}

/// Two semaphores, either named (opened in each process) or in the mapping.
struct SemEp {
    mem: Mem,
    side: Side,
    named: Option<[NamedSem; 2]>,
    what: &'static str,
}

impl SemEp {
    fn sem(&self, i: usize) -> *mut libc::sem_t {
        match &self.named {
            Some(s) => s[i].as_ptr(),
            None => self.mem.sems[i].get(),
        }
    }
}

impl Endpoint for SemEp {
    fn send(&mut self, v: u32) -> Result<()> {
        self.mem.words[self.side.tx].0.store(v, Release);
        // SAFETY: the semaphore is open (named) or was initialised before
        // the fork and is destroyed only after the child is gone.
        unsafe { sys::sem_post(self.sem(self.side.tx)) }.map_err(|e| Error::io("sem_post", e))
    }
    fn recv(&mut self) -> Result<u32> {
        let deadline = Instant::now() + STALL;
        // SAFETY: as in `send`.
        while !unsafe { sys::sem_wait_for(self.sem(self.side.rx()), Duration::from_millis(100)) }
            .map_err(|e| Error::io("sem_timedwait", e))?
        {
            if Instant::now() > deadline {
                return Err(stalled(self.what));
            }
        }
        Ok(self.mem.words[self.side.rx()].0.load(Acquire))
    }
}

/// A descriptor per direction (or one socket both ways), 8 bytes a message.
struct FdEp {
    tx: File,
    rx: File,
    what: &'static str,
}

impl Endpoint for FdEp {
    fn send(&mut self, v: u32) -> Result<()> {
        self.tx
            .write_all(&u64::from(v).to_le_bytes())
            .map_err(|e| Error::io(format!("{} write", self.what), e))
    }
    fn recv(&mut self) -> Result<u32> {
        let mut b = [0u8; 8];
        self.rx
            .read_exact(&mut b)
            .map_err(|e| Error::io(format!("{} read", self.what), e))?;
        Ok(u64::from_le_bytes(b) as u32)
    }
}

/// Destroys the mapping's unnamed semaphores once the child is gone.
///
/// The condition variables and the mutex are **never** destroyed: a child
/// killed inside `pthread_cond_timedwait` leaves glibc's condvar with a
/// waiter that will never leave, and `pthread_cond_destroy` then waits for
/// it for ever (lab 11 found this; see `labs/src/lab11.rs`). They hold no
/// resource outside the anonymous mapping, which goes when the last process
/// unmaps it, so not destroying them leaks nothing. The mutex is robust
/// and every lock of it is bounded, so a child killed while holding it
/// costs the parent an error, not a hang.
struct Destroy {
    mem: Mem,
    sems: bool,
}

impl Drop for Destroy {
    fn drop(&mut self) {
        // SAFETY: the child has exited or been killed (the guard is dropped
        // after `with_child` returns) and the parent's endpoint is gone, so
        // nobody uses these objects any more; glibc's `sem_destroy` never
        // waits.
        unsafe {
            if self.sems {
                sys::sem_destroy(self.mem.sems[0].get());
                sys::sem_destroy(self.mem.sems[1].get());
            }
        }
    }
}

/// Removes two named semaphores (and forgets them in the Ctrl-C clean-up).
struct Unlink(Vec<String>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = sys::sem_unlink(n);
            shm::cleanup::unregister_path(sem_path(n));
        }
    }
}

fn sem_path(name: &str) -> String {
    format!("/dev/shm/sem.{}", name.trim_start_matches('/'))
}

fn mem() -> Result<Mem> {
    Ok(Rc::new(SharedAnon::zeroed().map_err(|e| {
        Error::io("mmap(MAP_SHARED | MAP_ANONYMOUS)", e)
    })?))
}

/// The shared mapping with its robust mutex and two condition variables
/// initialised in place, for the pthread-cond rung.
fn cond_mem() -> Result<Mem> {
    let a = mem()?;
    // SAFETY: fresh zeroed objects in a shared mapping that lives until
    // the last `Rc` (the guard's, dropped after the child).
    unsafe {
        sys::mutex_init_shared(a.mutex.get())
            .and_then(|()| sys::cond_init_shared(a.conds[0].get()))
            .and_then(|()| sys::cond_init_shared(a.conds[1].get()))
    }
    .map_err(|e| Error::io("initialising the pthread objects", e))?;
    Ok(a)
}

fn boxed(ep: impl Endpoint + 'static) -> Result<Box<dyn Endpoint>> {
    Ok(Box::new(ep))
}

fn files(tx: std::os::fd::OwnedFd, rx: std::os::fd::OwnedFd, what: &'static str) -> FdEp {
    FdEp {
        tx: File::from(tx),
        rx: File::from(rx),
        what,
    }
}

fn dup(f: &std::os::fd::OwnedFd) -> Result<std::os::fd::OwnedFd> {
    f.try_clone().map_err(|e| Error::io("dup", e))
}

/// Builds `m`'s two ends.
fn pair(m: Mechanism) -> Result<Pair> {
    let none = || Box::new(()) as Box<dyn std::any::Any>;
    Ok(match m {
        Mechanism::CacheLine => {
            let a = mem()?;
            let a2 = a.clone();
            Pair {
                parent: Box::new(move || boxed(CacheLineEp { mem: a, last: 0 })),
                child: Box::new(move || boxed(CacheLineEp { mem: a2, last: 0 })),
                guard: none(),
            }
        }
        Mechanism::Spin => {
            let a = mem()?;
            let a2 = a.clone();
            Pair {
                parent: Box::new(move || {
                    boxed(SpinEp {
                        mem: a,
                        side: PARENT,
                        last: 0,
                    })
                }),
                child: Box::new(move || {
                    boxed(SpinEp {
                        mem: a2,
                        side: CHILD,
                        last: 0,
                    })
                }),
                guard: none(),
            }
        }
        Mechanism::SpinFutex | Mechanism::Futex => {
            let spin = if m == Mechanism::SpinFutex {
                ADAPTIVE_SPIN
            } else {
                Duration::ZERO
            };
            let what = m.name();
            let a = mem()?;
            let a2 = a.clone();
            let ep = move |mem, side| FutexEp {
                mem,
                side,
                last: 0,
                spin,
                what,
            };
            Pair {
                parent: Box::new(move || boxed(ep(a, PARENT))),
                child: Box::new(move || boxed(ep(a2, CHILD))),
                guard: none(),
            }
        }
        Mechanism::Cond => {
            let a = cond_mem()?;
            let (a2, a3) = (a.clone(), a.clone());
            Pair {
                parent: Box::new(move || {
                    boxed(CondEp {
                        mem: a,
                        side: PARENT,
                        last: 0,
                    })
                }),
                child: Box::new(move || {
                    boxed(CondEp {
                        mem: a2,
                        side: CHILD,
                        last: 0,
                    })
                }),
                guard: Box::new(Destroy {
                    mem: a3,
                    sems: false,
                }),
            }
        }
        Mechanism::SemUnnamed => {
            let a = mem()?;
            // SAFETY: as for the cond row.
            unsafe {
                sys::sem_init_shared(a.sems[0].get())
                    .and_then(|()| sys::sem_init_shared(a.sems[1].get()))
            }
            .map_err(|e| Error::io("sem_init", e))?;
            let (a2, a3) = (a.clone(), a.clone());
            let what = m.name();
            Pair {
                parent: Box::new(move || {
                    boxed(SemEp {
                        mem: a,
                        side: PARENT,
                        named: None,
                        what,
                    })
                }),
                child: Box::new(move || {
                    boxed(SemEp {
                        mem: a2,
                        side: CHILD,
                        named: None,
                        what,
                    })
                }),
                guard: Box::new(Destroy {
                    mem: a3,
                    sems: true,
                }),
            }
        }
        Mechanism::Sem => {
            let a = mem()?;
            let names: Vec<String> = ["ladder-down", "ladder-up"]
                .iter()
                .map(|p| format!("/{}", shm::unique_tag(p)))
                .collect();
            let mut made = Vec::new();
            for n in &names {
                shm::cleanup::register_path(sem_path(n));
                made.push(NamedSem::create(n).map_err(|e| Error::io(format!("sem_open({n})"), e))?);
            }
            let guard = Unlink(names.clone());
            let [down, up]: [NamedSem; 2] = made.try_into().ok().expect("two semaphores");
            let a2 = a.clone();
            let what = m.name();
            Pair {
                parent: Box::new(move || {
                    boxed(SemEp {
                        mem: a,
                        side: PARENT,
                        named: Some([down, up]),
                        what,
                    })
                }),
                child: Box::new(move || {
                    let open = |n: &String| {
                        NamedSem::open(n).map_err(|e| Error::io(format!("sem_open({n})"), e))
                    };
                    let s = [open(&names[0])?, open(&names[1])?];
                    boxed(SemEp {
                        mem: a2,
                        side: CHILD,
                        named: Some(s),
                        what,
                    })
                }),
                guard: Box::new(guard),
            }
        }
        Mechanism::EventFd => {
            let ev = |_| sys::eventfd().map_err(|e| Error::io("eventfd", e));
            let (down, up) = (ev(0)?, ev(1)?);
            let (down2, up2) = (dup(&down)?, dup(&up)?);
            Pair {
                parent: Box::new(move || boxed(files(down, up, "eventfd"))),
                child: Box::new(move || boxed(files(up2, down2, "eventfd"))),
                guard: none(),
            }
        }
        Mechanism::Pipe => {
            let (down_r, down_w) = crate::pipe()?;
            let (up_r, up_w) = crate::pipe()?;
            Pair {
                parent: Box::new(move || boxed(files(down_w, up_r, "pipe"))),
                child: Box::new(move || boxed(files(up_w, down_r, "pipe"))),
                guard: none(),
            }
        }
        Mechanism::UnixSocket => {
            let (a, b) = sys::socketpair().map_err(|e| Error::io("socketpair", e))?;
            let (a2, b2) = (dup(&a)?, dup(&b)?);
            Pair {
                parent: Box::new(move || boxed(files(a, a2, "unix-socket"))),
                child: Box::new(move || boxed(files(b, b2, "unix-socket"))),
                guard: none(),
            }
        }
        Mechanism::Fifo => {
            let down = Fifo::create_temp("ladder-down")?;
            let up = Fifo::create_temp("ladder-up")?;
            // As in `fifo_round_trips`: our read end first, so the child's
            // open for writing finds a reader.
            let up_r = Fifo::open_read_now(up.path())?;
            let (down_p, up_p) = (down.path().to_path_buf(), up.path().to_path_buf());
            let down_p2 = down_p.clone();
            Pair {
                parent: Box::new(move || {
                    let tx = Fifo::open_write(&down_p, STALL)?;
                    boxed(FdEp {
                        tx,
                        rx: up_r,
                        what: "fifo",
                    })
                }),
                child: Box::new(move || {
                    let rx = Fifo::open_read(&down_p2)?;
                    let tx = Fifo::open_write(&up_p, STALL)?;
                    boxed(FdEp {
                        tx,
                        rx,
                        what: "fifo",
                    })
                }),
                guard: Box::new((down, up)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ends the whole test process if the test is not done within `secs`:
    /// a regression to a hang fails (the harness sees the abort) instead
    /// of stalling CI for ever.
    fn watchdog(secs: u64, what: &'static str) -> std::sync::mpsc::Sender<()> {
        let (done, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(secs))
            {
                eprintln!("HUNG: {what} did not finish within {secs} s");
                std::process::abort();
            }
        });
        done
    }

    /// Forks a child that runs `body` on a child-side endpoint, waits until
    /// it stored `ready` in its word, SIGKILLs and reaps it.
    fn kill_child_when_ready(mem: &Mem, body: impl FnOnce(CondEp)) {
        let word = &mem.words[CHILD.tx].0;
        let m2 = mem.clone();
        // SAFETY: the child only uses the shared mapping and then sleeps
        // until killed; it takes no lock another thread of the test
        // process could hold.
        let mut child = unsafe {
            shm::process::fork_child(move || {
                body(CondEp {
                    mem: m2,
                    side: CHILD,
                    last: 0,
                });
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        }
        .unwrap();
        let start = Instant::now();
        while word.load(Acquire) != 99 {
            assert!(start.elapsed() < Duration::from_secs(10), "child not ready");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(50));
        child.kill().unwrap();
    }

    /// Finding 11 of "Trust nothing that is shared": the rung's mutex was
    /// plain and locked without a deadline, so a child killed while
    /// holding it wedged the parent for ever. Now the mutex is robust:
    /// the parent's next call is an error naming the dead owner.
    #[test]
    fn a_child_killed_holding_the_mutex_is_an_error_not_a_hang() {
        let done = watchdog(30, "the parent after its child died holding the mutex");
        let mem = cond_mem().unwrap();
        kill_child_when_ready(&mem, |ep| {
            // SAFETY: the mutex was initialised by `cond_mem`.
            unsafe { ep.lock() }.unwrap();
            ep.mem.words[CHILD.tx].0.store(99, Release);
        });
        let mut parent = CondEp {
            mem: mem.clone(),
            side: PARENT,
            last: 0,
        };
        let err = parent.send(1).unwrap_err();

        assert!(err.to_string().contains("EOWNERDEAD"), "{err}");
        // The mutex works again afterwards.
        parent.send(2).unwrap();
        drop(done);
    }

    /// Finding 11: a child killed inside `pthread_cond_timedwait` left a
    /// waiter glibc waits for in `pthread_cond_destroy`, so the rung's
    /// clean-up never returned. Now nothing destroys the condvars.
    #[test]
    fn clean_up_after_a_child_killed_inside_a_wait_returns() {
        let done = watchdog(30, "the ladder's clean-up after a child died in a wait");
        let mem = cond_mem().unwrap();
        kill_child_when_ready(&mem, |mut ep| {
            ep.mem.words[CHILD.tx].0.store(99, Release);
            // Waits (in 100 ms slices) for a value that never comes.
            let _ = ep.recv();
        });
        drop(Destroy {
            mem: mem.clone(),
            sems: false,
        });
        let mut parent = CondEp {
            mem,
            side: PARENT,
            last: 0,
        };
        parent.send(3).unwrap();
        drop(done);
    }
}
