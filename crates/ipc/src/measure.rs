//! Timing IPC between two processes: round trips of a small message, and a
//! one-way stream of many bytes.
//!
//! Every helper forks a child that opens its side **by name** (a FIFO's
//! path, a ring's shared-memory name; an anonymous pipe is inherited, the
//! only way to share one), claims it, and says "ready" on a control pipe.
//! Only then does the parent start the clock, so process start-up is never
//! timed. The child checks every message and reports a mismatch as an
//! error, so a broken transport fails loudly instead of looking fast. Round
//! trips are the latency ladder's exchange (`ladder::ping`/`pong`: ping
//! `2i + 1`, answer `2i + 2`, both checked), over the ladder's own pipe and
//! FIFO rungs or over two rings, timed as a whole rather than trip by trip;
//! streams carry a pattern stamped with a sequence number. Each helper
//! takes `iters` (or bytes) and returns the elapsed time, the shape
//! criterion's `iter_custom` wants.

use crate::child::{Control, with_child};
use crate::fifo::Fifo;
use crate::ladder::{self, Endpoint, Rounds};
use crate::ring::{Receiver, Ring, Sender, Signal};
use crate::{Error, Result};
use shm::ShmName;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Bytes in one round-trip message (a counter).
pub const ROUND_TRIP_BYTES: usize = 8;
/// The stream helpers' usual message size: 64 KiB.
pub const STREAM_MSG: usize = 64 * 1024;
/// The largest stream message accepted.
pub const MAX_STREAM_MSG: usize = 64 << 20;
/// How long a side waits for the other to open a FIFO.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A way to move bytes between two processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// An anonymous pipe (`pipe(2)`) inherited across `fork`; round trips
    /// use two, one per direction.
    Pipe,
    /// A named pipe (`mkfifo(3)`) opened by path in each process.
    Fifo,
    /// The shared-memory [`Ring`], waiting on a futex.
    ShmFutex,
    /// The shared-memory [`Ring`], busy-waiting.
    ShmSpin,
    /// The shared-memory [`Ring`], spinning up to
    /// [`ADAPTIVE_SPIN`](crate::adaptive::ADAPTIVE_SPIN) before it sleeps on
    /// the futex ([`Signal::Adaptive`]).
    ShmAdaptive,
}

impl Transport {
    /// Every transport, in the order the labs print them.
    pub const ALL: [Transport; 5] = [
        Transport::Pipe,
        Transport::Fifo,
        Transport::ShmFutex,
        Transport::ShmSpin,
        Transport::ShmAdaptive,
    ];

    /// Short name: `pipe`, `fifo`, `shm-futex`, `shm-spin`, `shm-adaptive`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Pipe => "pipe",
            Transport::Fifo => "fifo",
            Transport::ShmFutex => "shm-futex",
            Transport::ShmSpin => "shm-spin",
            Transport::ShmAdaptive => "shm-adaptive",
        }
    }

    /// How a shared-memory transport's ends wait; `None` for a pipe or FIFO.
    pub fn signal(self) -> Option<Signal> {
        match self {
            Transport::Pipe | Transport::Fifo => None,
            Transport::ShmFutex => Some(Signal::Futex),
            Transport::ShmSpin => Some(Signal::Spin),
            Transport::ShmAdaptive => Some(Signal::Adaptive),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Transport::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown transport {s:?}; use pipe, fifo, shm-futex, shm-spin or shm-adaptive"
                ))
            })
    }
}

/// `iters` round trips of an 8-byte message over `transport`; the time of
/// the exchange alone.
pub fn round_trips(transport: Transport, iters: u64) -> Result<Duration> {
    match (transport, transport.signal()) {
        (_, Some(signal)) => shm_round_trips(iters, signal),
        (Transport::Fifo, None) => fifo_round_trips(iters),
        (_, None) => pipe_round_trips(iters),
    }
}

/// `total_bytes` streamed one way in messages of `msg` bytes over
/// `transport`; the time from the first byte sent to the receiver's report
/// that it has checked the last.
pub fn stream(transport: Transport, total_bytes: u64, msg: usize) -> Result<Duration> {
    match (transport, transport.signal()) {
        (_, Some(signal)) => shm_stream(total_bytes, msg, signal),
        (Transport::Fifo, None) => fifo_stream(total_bytes, msg),
        (_, None) => pipe_stream(total_bytes, msg),
    }
}

/// Round trips through two anonymous pipes (parent → child, child → parent):
/// the latency ladder's `pipe` rung, untimed trip by trip.
pub fn pipe_round_trips(iters: u64) -> Result<Duration> {
    if iters == 0 {
        return Ok(Duration::ZERO);
    }
    ladder::exchange("pipe", ladder::pipe_pair()?, untimed(iters), None, None)
}

/// Round trips through two FIFOs in the temporary directory, each opened
/// by path in both processes; both are removed afterwards. The latency
/// ladder's `fifo` rung, untimed trip by trip.
pub fn fifo_round_trips(iters: u64) -> Result<Duration> {
    if iters == 0 {
        return Ok(Duration::ZERO);
    }
    ladder::exchange("fifo", ladder::fifo_pair("rt")?, untimed(iters), None, None)
}

/// `iters` timed round trips, no warm-up.
fn untimed(iters: u64) -> Rounds {
    Rounds {
        warmup: 0,
        timed: iters,
    }
}

/// A ring per direction as a round-trip [`Endpoint`]: 8-byte messages.
struct RingEp<'r> {
    tx: Sender<'r>,
    rx: Receiver<'r>,
}

impl Endpoint for RingEp<'_> {
    fn send(&mut self, v: u32) -> Result<()> {
        self.tx.send(&u64::from(v).to_le_bytes())
    }
    fn recv(&mut self) -> Result<u32> {
        let mut b = [0u8; ROUND_TRIP_BYTES];
        self.rx.recv_exact(&mut b)?;
        Ok(u64::from_le_bytes(b) as u32)
    }
}

/// Round trips through two shared-memory [`Ring`]s, waiting by `signal`.
pub fn shm_round_trips(iters: u64, signal: Signal) -> Result<Duration> {
    if iters == 0 {
        return Ok(Duration::ZERO);
    }
    let what = shm_label(signal);
    let down = Ring::create(&ShmName::unique("rt-down"), signal)?;
    let up = Ring::create(&ShmName::unique("rt-up"), signal)?;
    // Claim our ends before forking, so the child can tell if we die. They
    // stay out of `with_child`'s `keep` (which the child drops: a dropped
    // end closes the ring).
    let mut ep = RingEp {
        tx: down.sender()?,
        rx: up.receiver()?,
    };
    let (down_name, up_name) = (down.name().clone(), up.name().clone());
    let elapsed = with_child(
        what,
        (),
        move |ready| {
            let (down, up) = (Ring::open(&down_name)?, Ring::open(&up_name)?);
            let mut ep = RingEp {
                rx: down.receiver()?,
                tx: up.sender()?,
            };
            ready.signal()?;
            ladder::pong(&mut ep, iters, what)
        },
        |(), ctl| {
            ctl.wait_ready()?;
            ladder::ping(&mut ep, untimed(iters), None, what)
        },
    );
    drop(ep);
    elapsed
}

/// `total_bytes` through one anonymous pipe in `msg`-byte writes.
pub fn pipe_stream(total_bytes: u64, msg: usize) -> Result<Duration> {
    check_msg(msg)?;
    if total_bytes == 0 {
        return Ok(Duration::ZERO);
    }
    let (r, w) = crate::pipe()?;
    with_child(
        "pipe",
        w,
        move |ready| {
            let mut rx = File::from(r);
            ready.signal()?;
            verify_stream(&mut FdLink(&mut rx), total_bytes, msg, "pipe")
        },
        |w, ctl| {
            let mut tx = File::from(w);
            ctl.wait_ready()?;
            feed_stream(&mut FdLink(&mut tx), total_bytes, msg, ctl)
        },
    )
}

/// `total_bytes` through one FIFO in `msg`-byte writes.
pub fn fifo_stream(total_bytes: u64, msg: usize) -> Result<Duration> {
    check_msg(msg)?;
    if total_bytes == 0 {
        return Ok(Duration::ZERO);
    }
    let fifo = Fifo::create_temp("stream")?;
    let path = fifo.path().to_path_buf();
    with_child(
        "fifo",
        (),
        move |ready| {
            let mut rx = Fifo::open_read(&path)?;
            ready.signal()?;
            verify_stream(&mut FdLink(&mut rx), total_bytes, msg, "fifo")
        },
        |(), ctl| {
            let mut tx = Fifo::open_write(fifo.path(), OPEN_TIMEOUT)?;
            ctl.wait_ready()?;
            feed_stream(&mut FdLink(&mut tx), total_bytes, msg, ctl)
        },
    )
}

/// How the receiving end of a shared-memory stream takes its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Receive {
    /// Check each message where it lies in the ring
    /// ([`Receiver::recv_in_place`]): each byte is copied once, by the
    /// sender.
    InPlace,
    /// Copy each message out into the receiver's own buffer, then check it
    /// ([`Receiver::recv`]): two copies, as a pipe makes.
    CopyOut,
}

/// The ring a shared-memory stream goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmStream {
    /// How its ends wait.
    pub signal: Signal,
    /// Its capacity in bytes ([`crate::RingConfig::check`]).
    pub capacity: usize,
    /// How the receiver takes the bytes.
    pub receive: Receive,
}

impl ShmStream {
    /// A [`crate::DEFAULT_CAPACITY`] ring checked in place.
    pub fn new(signal: Signal) -> ShmStream {
        ShmStream {
            signal,
            capacity: crate::DEFAULT_CAPACITY,
            receive: Receive::InPlace,
        }
    }
}

/// `total_bytes` through one shared-memory [`Ring`] (of the default size)
/// in `msg`-byte sends; the receiver checks every byte **in place** in the
/// ring ([`Receiver::recv_in_place`]), so each byte is copied once (by the
/// sender). [`shm_stream_with`] takes any ring, and the two-copy receiver
/// ([`Receive::CopyOut`]).
pub fn shm_stream(total_bytes: u64, msg: usize, signal: Signal) -> Result<Duration> {
    shm_stream_with(total_bytes, msg, &ShmStream::new(signal))
}

/// `total_bytes` in `msg`-byte sends through a ring as `how` says; a ring
/// size it cannot have is [`Error::Invalid`] before anything is created.
pub fn shm_stream_with(total_bytes: u64, msg: usize, how: &ShmStream) -> Result<Duration> {
    check_msg(msg)?;
    if total_bytes == 0 {
        return Ok(Duration::ZERO);
    }
    let what = shm_label(how.signal);
    let ring = Ring::with_capacity(&ShmName::unique("stream"), how.signal, how.capacity)?;
    let mut tx = ring.sender()?;
    let name = ring.name().clone();
    let receive = how.receive;
    let elapsed = with_child(
        what,
        (),
        move |ready| {
            let ring = Ring::open(&name)?;
            let mut rx = ring.receiver()?;
            ready.signal()?;
            match receive {
                Receive::CopyOut => verify_stream(&mut rx, total_bytes, msg, what),
                Receive::InPlace => verify_in_place(&mut rx, total_bytes, msg, what),
            }
        },
        |(), ctl| {
            ctl.wait_ready()?;
            feed_stream(&mut tx, total_bytes, msg, ctl)
        },
    );
    drop(tx);
    elapsed
}

fn shm_label(signal: Signal) -> &'static str {
    match signal {
        Signal::Futex => "shm-futex",
        Signal::Spin => "shm-spin",
        Signal::Adaptive => "shm-adaptive",
    }
}

fn check_msg(msg: usize) -> Result<()> {
    if msg == 0 || msg > MAX_STREAM_MSG {
        return Err(Error::Invalid(format!(
            "message size {msg} is outside 1..={MAX_STREAM_MSG} bytes"
        )));
    }
    Ok(())
}

/// One direction of a link: what the helpers need from a pipe or a ring.
trait Tx {
    fn send(&mut self, buf: &[u8]) -> Result<()>;
}

/// The other direction.
trait Rx {
    fn recv_exact(&mut self, buf: &mut [u8]) -> Result<()>;
}

/// A pipe or FIFO end as a [`Tx`]/[`Rx`].
struct FdLink<'a>(&'a mut File);

impl Tx for FdLink<'_> {
    fn send(&mut self, buf: &[u8]) -> Result<()> {
        self.0.write_all(buf).map_err(|e| Error::io("write", e))
    }
}

impl Rx for FdLink<'_> {
    fn recv_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.0.read_exact(buf).map_err(|e| Error::io("read", e))
    }
}

impl Tx for Sender<'_> {
    fn send(&mut self, buf: &[u8]) -> Result<()> {
        Sender::send(self, buf)
    }
}

impl Rx for Receiver<'_> {
    fn recv_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        Receiver::recv_exact(self, buf)
    }
}

/// A fixed pseudo-random block (xorshift), so a shifted or repeated chunk
/// does not match by accident.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Message `seq` of a stream: the pattern with the sequence number written
/// over its first (up to) eight bytes.
fn stamp(buf: &mut [u8], seq: u64) {
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
}

/// The timed sending side of a stream; stops the clock when the child
/// reports it has checked every byte.
fn feed_stream(tx: &mut impl Tx, total: u64, msg: usize, done: &mut Control) -> Result<Duration> {
    let mut buf = pattern(msg);
    let start = Instant::now();
    let (mut sent, mut seq) = (0u64, 0u64);
    while sent < total {
        let n = (total - sent).min(msg as u64) as usize;
        stamp(&mut buf, seq);
        tx.send(&buf[..n])?;
        sent += n as u64;
        seq += 1;
    }
    done.wait_done()?;
    Ok(start.elapsed())
}

/// The checking receiving side of a stream.
fn verify_stream(rx: &mut impl Rx, total: u64, msg: usize, what: &str) -> Result<()> {
    let mut want = pattern(msg);
    let mut got = vec![0u8; msg];
    let (mut seen, mut seq) = (0u64, 0u64);
    while seen < total {
        let n = (total - seen).min(msg as u64) as usize;
        rx.recv_exact(&mut got[..n])?;
        stamp(&mut want, seq);
        if got[..n] != want[..n] {
            let at = (0..n).find(|&i| got[i] != want[i]).unwrap_or(0);
            return Err(corrupt(
                what,
                format!(
                    "byte {} of the stream (message {seq}, offset {at}) is {:#04x}, expected {:#04x}",
                    seen + at as u64,
                    got[at],
                    want[at]
                ),
            ));
        }
        seen += n as u64;
        seq += 1;
    }
    Ok(())
}

/// [`verify_stream`] without the copy: each message is compared with the
/// expected pattern where it lies in the ring, run by run.
fn verify_in_place(rx: &mut Receiver<'_>, total: u64, msg: usize, what: &str) -> Result<()> {
    let mut want = pattern(msg);
    let (mut seen, mut seq) = (0u64, 0u64);
    while seen < total {
        let n = (total - seen).min(msg as u64) as usize;
        stamp(&mut want, seq);
        let mut off = 0;
        while off < n {
            let expect = &want[off..n];
            // SAFETY: the sender end is this crate's `Sender`, in the
            // process that created this ring (0600, a unique name) and
            // forked us to read it: a conforming sender, which never
            // writes the bytes it published until we hand them back.
            let Some((got, bad)) = unsafe {
                rx.recv_in_place(n - off, |run| {
                    (run != &expect[..run.len()])
                        .then(|| {
                            (0..run.len())
                                .find(|&i| run[i] != expect[i])
                                .map(|i| (i, run[i]))
                        })
                        .flatten()
                })
            }?
            else {
                return Err(corrupt(
                    what,
                    format!(
                        "the stream ended at byte {}, expected {total}",
                        seen + off as u64
                    ),
                ));
            };
            if let Some((i, b)) = bad {
                let at = off + i;
                return Err(corrupt(
                    what,
                    format!(
                        "byte {} of the stream (message {seq}, offset {at}) is {b:#04x}, expected {:#04x}",
                        seen + at as u64,
                        want[at]
                    ),
                ));
            }
            off += got;
        }
        seen += n as u64;
        seq += 1;
    }
    Ok(())
}

fn corrupt(what: &str, detail: String) -> Error {
    Error::Corrupt {
        transport: what.to_owned(),
        detail,
    }
}
