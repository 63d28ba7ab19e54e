//! A single-producer single-consumer byte ring in a shared region.
//!
//! Two counters only ever grow: `head`, the bytes ever written (stored by
//! the sender alone), and `tail`, the bytes ever read (stored by the receiver
//! alone); byte `i` of the stream lives at `data[i % capacity]`. The sender
//! copies bytes into the free part, then publishes them by storing `head`
//! with `Release`; the receiver loads `head` with `Acquire`, so those bytes
//! are visible to it, copies them out, then hands the space back by storing
//! `tail` with `Release`, which the sender loads with `Acquire` before it
//! overwrites anything. Each byte is thus owned by exactly one side at any
//! time, and the two counters sit on separate cache lines so the sides do
//! not fight over one line on every update.
//!
//! When a side finds nothing to do (ring empty, or full) it either spins
//! ([`Signal::Spin`]) or sleeps on a futex word ([`Signal::Futex`]). The
//! sleeper announces itself by setting its word to 1, then re-checks the
//! counter; the other side, after publishing, checks the word and wakes only
//! if it is set. A `SeqCst` fence on both sides between "store mine" and
//! "load theirs" (the Dekker pattern) guarantees that at least one of them
//! sees the other's store, so a wake-up is never lost; a side that runs
//! steadily never makes a system call.
//!
//! A sleeper also wakes every [`PEER_CHECK`] to see whether the process at
//! the other end has died, so a crashed peer is an error, not a hang.
//!
//! **What the peer may do.** The ring's region is shared memory: the
//! process at the other end (or anyone who can write the region) may store
//! anything in it at any moment. A conforming peer only stores its own
//! counter forward, by at most what the protocol allows, and only touches
//! the bytes it owns. A peer that does anything else can make the stream
//! *wrong* (bytes garbled, an end waiting until its check finds the peer
//! dead) but never unsound: every counter loaded from the region is checked
//! (`0 <= head - tail <= capacity`, else [`Error::RingCorrupt`] and nothing
//! is copied), and [`Sender::send`] and [`Receiver::recv`] copy bytes with
//! relaxed atomic loads and stores, so a peer writing the same bytes at the
//! same time is no data race. Only [`Receiver::recv_in_place`] hands out
//! `&[u8]` over the ring's bytes, and it is `unsafe` for that reason: its
//! caller vouches that the sender conforms.
//!
//! The capacity is chosen at creation ([`Ring::with_capacity`], default
//! [`DEFAULT_CAPACITY`], 1 MiB): the bytes are the region's trailing bytes
//! ([`shm::Shared::trailing_len`]), and the control block records how many
//! so an opener can check it mapped them all. A ring that holds only a few
//! messages makes its sides wait for each other (and, with the futex, sleep
//! and wake) about as often as a pipe's; BENCHMARKS.md measures 256 KiB,
//! 1 MiB and 4 MiB.

use crate::error::End;
use crate::{Error, Result, sys};
use shm::{CachePadded, InitCtx, Region, RegionOptions, Shared, ShmName};
use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

/// Bytes a ring holds unless told otherwise: 1 MiB.
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// The smallest ring: one page.
pub const MIN_CAPACITY: usize = 4096;
/// The largest ring: 1 GiB (what a region's trailing bytes may be).
pub const MAX_CAPACITY: usize = shm::MAX_TRAILING;

/// What a ring is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// How its ends wait.
    pub signal: Signal,
    /// Bytes it holds: a multiple of 4096 in
    /// [`MIN_CAPACITY`]..=[`MAX_CAPACITY`].
    pub capacity: usize,
}

impl RingConfig {
    /// `Ok` if the capacity is one a ring can have; otherwise what is wrong
    /// and what to ask for instead.
    pub fn check(&self) -> Result<()> {
        let c = self.capacity;
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&c) || c % 4096 != 0 {
            return Err(Error::Invalid(format!(
                "a ring of {c} bytes: the size must be a multiple of 4096 between 4K and 1G (64K, 256K, 1M ...)"
            )));
        }
        Ok(())
    }
}

/// How often a sleeping end checks that its peer is still alive.
pub const PEER_CHECK: Duration = Duration::from_millis(50);

/// How an end waits when the ring is empty (receiver) or full (sender).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Sleep in `futex_wait`; the other side calls `futex_wake` only when
    /// the sleeper said it sleeps. Costs two system calls and a context
    /// switch per wait, and no CPU while waiting.
    Futex,
    /// Busy-wait on the counter (yielding the CPU after a while): the
    /// lowest latency when each side has a core of its own, a burnt core
    /// otherwise.
    Spin,
    /// Adaptive: spin on the counter for up to
    /// [`ADAPTIVE_SPIN`](crate::adaptive::ADAPTIVE_SPIN) (50 µs), then sleep
    /// as [`Signal::Futex`] does; the other side wakes it the same way. A
    /// peer that is running answers within the spin, with no system call on
    /// either side; one that is not costs at most the spin.
    Adaptive,
}

impl Signal {
    fn to_u32(self) -> u32 {
        match self {
            Signal::Futex => 0,
            Signal::Spin => 1,
            Signal::Adaptive => 2,
        }
    }

    fn from_u32(v: u32) -> Signal {
        match v {
            1 => Signal::Spin,
            2 => Signal::Adaptive,
            _ => Signal::Futex,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Futex => "futex",
            Signal::Spin => "spin",
            Signal::Adaptive => "adaptive",
        })
    }
}

/// Who holds the ends, and whether they closed. Touched only when an end
/// is claimed or closed, and by a waiter checking on its peer.
#[repr(C)]
#[derive(Debug)]
struct Control {
    /// [`Signal`] as a number; fixed at creation.
    signal: AtomicU32,
    /// Bytes the ring holds (the region's trailing bytes); fixed at
    /// creation.
    capacity: AtomicU64,
    /// Pid holding the sender end, 0 if none yet.
    sender_pid: AtomicI32,
    /// Pid holding the receiver end, 0 if none yet.
    receiver_pid: AtomicI32,
    /// 1 once the sender closed: after the bytes already in the ring the
    /// receiver sees end-of-file.
    sender_closed: AtomicU32,
    /// 1 once the receiver closed: further sends fail.
    receiver_closed: AtomicU32,
}
shm::any_bits!(Control {
    signal,
    capacity,
    sender_pid,
    receiver_pid,
    sender_closed,
    receiver_closed
});

/// The ring's shared layout (the payload of its region).
///
/// | field | written by | meaning |
/// |---|---|---|
/// | `head` | sender | bytes ever written; `Release` publishes them |
/// | `tail` | receiver | bytes ever read; `Release` returns the space |
/// | `data_wait` | receiver sets 1, sender clears | futex word: "receiver sleeps, wake me on data" |
/// | `space_wait` | sender sets 1, receiver clears | futex word: "sender sleeps, wake me on space" |
/// | `ctl` | claims and closes | see `Control` |
///
/// The bytes themselves follow as the region's trailing bytes
/// ([`Region::trailing`]): a byte is written only by the one sender while
/// it lies in the free part (`head..tail + capacity`) and read only by the
/// one receiver while it lies in the filled part (`tail..head`); the two
/// parts change hands only through the Release/Acquire pairs on `head` and
/// `tail`, and [`Sender`]/[`Receiver`] (each claimed by at most one holder)
/// are the only code touching them.
#[repr(C)]
pub struct RingShared {
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    data_wait: CachePadded<AtomicU32>,
    space_wait: CachePadded<AtomicU32>,
    ctl: CachePadded<Control>,
}
shm::any_bits!(RingShared {
    head,
    tail,
    data_wait,
    space_wait,
    ctl
});

// SAFETY: `#[repr(C)]`, no pointers, atomics only (so `Sync`, and written
// by several processes only through atomics); all zeroes is a valid empty
// ring (counters 0, nobody waiting, futex signalling, no holders) apart
// from `capacity`, which `init_in_place` stores before the region is
// published.
unsafe impl Shared for RingShared {
    type Init = RingConfig;

    fn type_name() -> String {
        "ipc/ring".into()
    }

    fn trailing_len(init: &RingConfig) -> usize {
        init.capacity
    }

    unsafe fn init_in_place(
        this: *mut Self,
        init: RingConfig,
        ctx: &InitCtx<'_>,
    ) -> std::result::Result<(), String> {
        init.check().map_err(|e| e.to_string())?;
        if ctx.trailing_len != init.capacity {
            return Err(format!(
                "the region has {} bytes for a ring of {}",
                ctx.trailing_len, init.capacity
            ));
        }
        // SAFETY: the caller guarantees `this` is valid, aligned, zeroed and
        // not yet shared; we only store through atomics.
        let ring = unsafe { &*this };
        ring.ctl
            .signal
            .store(init.signal.to_u32(), Ordering::Relaxed);
        ring.ctl
            .capacity
            .store(init.capacity as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl fmt::Debug for RingShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingShared")
            .field("head", &self.head.load(Ordering::Relaxed))
            .field("tail", &self.tail.load(Ordering::Relaxed))
            .field("data_wait", &self.data_wait.load(Ordering::Relaxed))
            .field("space_wait", &self.space_wait.load(Ordering::Relaxed))
            .field("ctl", &self.ctl.0)
            .finish_non_exhaustive()
    }
}

impl RingShared {
    /// After publishing: wake the other side if it said it sleeps on `word`.
    #[inline]
    fn wake_if_waiting(word: &AtomicU32) {
        // Pairs with the waiter's fence between setting `word` and
        // re-checking the counter we just stored.
        fence(Ordering::SeqCst);
        if word.load(Ordering::Relaxed) != 0 && word.swap(0, Ordering::Relaxed) != 0 {
            sys::futex_wake_one(word);
        }
    }
}

/// A handle on a shared ring. The creator's handle removes the name when
/// dropped.
pub struct Ring {
    region: Region<RingShared>,
    /// The ring's byte count (the region's trailing bytes), read once.
    capacity: usize,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.shared();
        f.debug_struct("Ring")
            .field("name", self.name())
            .field("signal", &self.signal())
            .field("capacity", &self.capacity)
            .field("head", &r.head.load(Ordering::Relaxed))
            .field("tail", &r.tail.load(Ordering::Relaxed))
            .field("ctl", &r.ctl.0)
            .finish()
    }
}

impl Ring {
    /// Creates the region `name` holding an empty ring of
    /// [`DEFAULT_CAPACITY`] bytes whose ends wait by `signal`.
    pub fn create(name: &ShmName, signal: Signal) -> Result<Ring> {
        Ring::with_capacity(name, signal, DEFAULT_CAPACITY)
    }

    /// Creates the region `name` holding an empty ring of `capacity` bytes
    /// (see [`RingConfig::check`]); a size it cannot have is
    /// [`Error::Invalid`] and creates nothing.
    pub fn with_capacity(name: &ShmName, signal: Signal, capacity: usize) -> Result<Ring> {
        let config = RingConfig { signal, capacity };
        config.check()?;
        let region = Region::create(name, &RegionOptions::default(), config)?;
        Ok(Ring { region, capacity })
    }

    /// Opens the ring another process (or thread) created, and checks that
    /// the bytes it mapped are the ring's capacity.
    pub fn open(name: &ShmName) -> Result<Ring> {
        let region: Region<RingShared> = Region::open(name, &RegionOptions::default())?;
        let recorded = region.ctl.capacity.load(Ordering::Relaxed);
        let capacity = region.trailing_len();
        if recorded != capacity as u64 || capacity < MIN_CAPACITY {
            return Err(Error::Invalid(format!(
                "{name}: the ring records {recorded} bytes but its region has {capacity} after the control block"
            )));
        }
        Ok(Ring { region, capacity })
    }

    /// Bytes the ring holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Copies `src` into the ring at stream position `pos`.
    ///
    /// # Safety
    /// `src.len() <= capacity`, so the copy stays inside the ring. The
    /// protocol further wants it only for bytes in the free part (`tail <=
    /// pos` and `pos + src.len() <= tail + capacity`), but a peer that
    /// breaks that only garbles data: the copy is atomic.
    unsafe fn write_at(&self, pos: u64, src: &[u8]) {
        let start = (pos % self.capacity as u64) as usize;
        let first = src.len().min(self.capacity - start);
        let base = self.region.trailing().as_ptr();
        debug_assert!(src.len() <= self.capacity);
        // SAFETY: `start + first <= capacity` and `src.len() - first <=
        // start` (the caller keeps `src.len() <= capacity`), so both runs
        // stay inside the ring's bytes (the region's `capacity` trailing
        // bytes, checked at open); the copy is atomic, so a peer touching
        // them anyway races nothing.
        unsafe {
            copy_in(base.add(start), &src[..first]);
            copy_in(base, &src[first..]);
        }
    }

    /// Copies bytes at stream position `pos` out into `dst`.
    ///
    /// # Safety
    /// `dst.len() <= capacity`, so the copy stays inside the ring (as the
    /// protocol has it, the bytes are in the filled part: `pos + dst.len()
    /// <= head` for a `head` loaded with `Acquire`).
    unsafe fn read_at(&self, pos: u64, dst: &mut [u8]) {
        let start = (pos % self.capacity as u64) as usize;
        let first = dst.len().min(self.capacity - start);
        let base = self.region.trailing().as_ptr().cast_const();
        debug_assert!(dst.len() <= self.capacity);
        // SAFETY: as in `write_at`, with the roles swapped: both runs stay
        // inside the ring's bytes, and the copy is atomic.
        unsafe {
            copy_out(base.add(start), &mut dst[..first]);
            copy_out(base, &mut dst[first..]);
        }
    }

    /// The `len` bytes at stream position `pos`, in place (no copy).
    ///
    /// # Safety
    /// As [`read_at`](Self::read_at) for those bytes, which must not wrap
    /// (`pos % self.capacity + len <= self.capacity`); and the slice must be
    /// dropped before the receiver stores a `tail` past them (after which
    /// the sender may overwrite them).
    unsafe fn filled_at(&self, pos: u64, len: usize) -> &[u8] {
        let start = (pos % self.capacity as u64) as usize;
        debug_assert!(start + len <= self.capacity);
        // SAFETY: inside the ring's bytes (no wrap, per the contract); published and
        // owned by the receiver until its next tail store, so nobody writes
        // them while the slice lives.
        unsafe { std::slice::from_raw_parts(self.region.trailing().as_ptr().add(start), len) }
    }

    /// Bytes in flight, `head - tail`, from one counter of ours and one
    /// the peer stored (`what`: which, with its value `theirs`): an
    /// impossible distance (negative, or more than the ring holds) is
    /// [`Error::RingCorrupt`], never a size to copy.
    fn in_flight(&self, head: u64, tail: u64, what: &'static str, theirs: u64) -> Result<usize> {
        match head.checked_sub(tail) {
            Some(d) if d <= self.capacity as u64 => Ok(d as usize),
            _ => Err(Error::RingCorrupt {
                ring: self.name().to_string(),
                what,
                theirs,
                mine: if what == "head" { tail } else { head },
                capacity: self.capacity,
            }),
        }
    }

    /// Its name.
    pub fn name(&self) -> &ShmName {
        self.region.name()
    }

    /// How its ends wait.
    pub fn signal(&self) -> Signal {
        Signal::from_u32(self.shared().ctl.signal.load(Ordering::Relaxed))
    }

    fn shared(&self) -> &RingShared {
        &self.region
    }

    /// Claims the sender end for this process.
    pub fn sender(&self) -> Result<Sender<'_>> {
        let r = self.shared();
        if r.ctl.sender_closed.load(Ordering::Acquire) != 0 {
            return Err(self.closed(End::Sender));
        }
        self.claim(&r.ctl.sender_pid, End::Sender)?;
        Ok(Sender {
            ring: self,
            head: r.head.load(Ordering::Relaxed),
            tail: r.tail.load(Ordering::Acquire),
            signal: self.signal(),
            sleeps: 0,
        })
    }

    /// Claims the receiver end for this process.
    pub fn receiver(&self) -> Result<Receiver<'_>> {
        let r = self.shared();
        if r.ctl.receiver_closed.load(Ordering::Acquire) != 0 {
            return Err(self.closed(End::Receiver));
        }
        self.claim(&r.ctl.receiver_pid, End::Receiver)?;
        Ok(Receiver {
            ring: self,
            tail: r.tail.load(Ordering::Relaxed),
            head: r.head.load(Ordering::Acquire),
            signal: self.signal(),
            sleeps: 0,
        })
    }

    /// One holder per end: take the word if it is free or its holder died.
    fn claim(&self, word: &AtomicI32, end: End) -> Result<()> {
        let me = std::process::id() as i32;
        loop {
            let cur = word.load(Ordering::Acquire);
            let takeable = cur == 0 || (cur != me && sys::process_gone(cur));
            if !takeable {
                return Err(Error::Busy {
                    ring: self.name().to_string(),
                    end,
                    pid: cur,
                });
            }
            if word
                .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(());
            }
        }
    }

    fn closed(&self, end: End) -> Error {
        Error::Closed {
            ring: self.name().to_string(),
            end,
        }
    }

    /// `Err(PeerDied)` if the process holding `end` has died.
    fn check_peer(&self, end: End) -> Result<()> {
        let ctl = &self.shared().ctl;
        let pid = match end {
            End::Sender => ctl.sender_pid.load(Ordering::Acquire),
            End::Receiver => ctl.receiver_pid.load(Ordering::Acquire),
        };
        if pid != 0 && sys::process_gone(pid) {
            return Err(Error::PeerDied {
                ring: self.name().to_string(),
                end,
                pid,
            });
        }
        Ok(())
    }
}

/// Waits until `ready()` gives `Some` (or an error): spinning, or sleeping
/// on `word`. `ready` must be cheap (it runs on every wake-up); the costlier
/// `peer_alive` runs only after a futex timeout or every few thousand spins.
fn wait_until<T>(
    signal: Signal,
    word: &AtomicU32,
    sleeps: &mut u64,
    mut ready: impl FnMut() -> Result<Option<T>>,
    mut peer_alive: impl FnMut() -> Result<()>,
) -> Result<T> {
    let spin = signal == Signal::Spin;
    if signal == Signal::Adaptive {
        // Spin first, for a bounded time (the clock is read every 64
        // rounds); then sleep below as the futex signalling does.
        let start = std::time::Instant::now();
        while start.elapsed() < crate::adaptive::ADAPTIVE_SPIN {
            for _ in 0..64 {
                if let Some(v) = ready()? {
                    return Ok(v);
                }
                std::hint::spin_loop();
            }
        }
    }
    let mut rounds: u32 = 0;
    loop {
        if let Some(v) = ready()? {
            return Ok(v);
        }
        if spin {
            rounds = rounds.wrapping_add(1);
            if rounds < 256 {
                std::hint::spin_loop();
            } else {
                // Give the CPU to the peer if it shares ours; check on it
                // now and then.
                std::thread::yield_now();
                if rounds % 4096 == 0 {
                    peer_alive()?;
                }
            }
            continue;
        }
        word.store(1, Ordering::Relaxed);
        // Dekker: our "I sleep" store, then their counter; they store the
        // counter, then read our word. See the module docs.
        fence(Ordering::SeqCst);
        match ready() {
            Ok(None) => {}
            other => {
                word.store(0, Ordering::Relaxed);
                if let Some(v) = other? {
                    return Ok(v);
                }
            }
        }
        *sleeps += 1;
        if !sys::futex_wait(word, 1, PEER_CHECK) {
            peer_alive()?;
        }
    }
}

/// The sending end of a [`Ring`]; dropping it closes the ring for sending
/// (the receiver sees end-of-file after the bytes already sent).
pub struct Sender<'a> {
    ring: &'a Ring,
    /// Our copy of `head` (we are its only writer).
    head: u64,
    /// The last `tail` we loaded; the receiver may have moved on since.
    tail: u64,
    signal: Signal,
    sleeps: u64,
}

impl fmt::Debug for Sender<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("ring", self.ring.name())
            .field("sent", &self.head)
            .field("sleeps", &self.sleeps)
            .finish()
    }
}

impl Sender<'_> {
    /// Writes all of `buf`, waiting for space as needed. Bytes are published
    /// as each contiguous run is copied, so a message larger than the ring
    /// streams through it.
    pub fn send(&mut self, buf: &[u8]) -> Result<()> {
        let r = self.ring.shared();
        let mut off = 0;
        while off < buf.len() {
            let cap = self.ring.capacity;
            let mut free = cap
                - self
                    .ring
                    .in_flight(self.head, self.tail, "tail", self.tail)?;
            if free == 0 {
                self.tail = self.wait_for_space()?;
                free = cap
                    - self
                        .ring
                        .in_flight(self.head, self.tail, "tail", self.tail)?;
            }
            let n = free.min(buf.len() - off);
            // SAFETY: we are the only sender (claimed), and
            // `head + n <= tail + capacity` for a `tail` loaded with
            // Acquire: these bytes are free.
            unsafe { self.ring.write_at(self.head, &buf[off..off + n]) };
            self.head += n as u64;
            r.head.store(self.head, Ordering::Release);
            if self.signal != Signal::Spin {
                RingShared::wake_if_waiting(&r.data_wait);
            }
            off += n;
        }
        Ok(())
    }

    #[cold]
    fn wait_for_space(&mut self) -> Result<u64> {
        let ring = self.ring;
        let r = ring.shared();
        let head = self.head;
        let cap = ring.capacity as u64;
        wait_until(
            self.signal,
            &r.space_wait,
            &mut self.sleeps,
            || {
                if r.ctl.receiver_closed.load(Ordering::Acquire) != 0 {
                    return Err(ring.closed(End::Receiver));
                }
                let tail = r.tail.load(Ordering::Acquire);
                let used = ring.in_flight(head, tail, "tail", tail)?;
                Ok(((used as u64) < cap).then_some(tail))
            },
            || ring.check_peer(End::Receiver),
        )
    }

    /// Bytes sent through this ring so far (its stream position).
    pub fn sent(&self) -> u64 {
        self.head
    }

    /// How many times this end went to sleep on the futex.
    pub fn sleeps(&self) -> u64 {
        self.sleeps
    }
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        let r = self.ring.shared();
        // Release: a receiver that sees "closed" also sees the last head.
        r.ctl.sender_closed.store(1, Ordering::Release);
        RingShared::wake_if_waiting(&r.data_wait);
    }
}

/// The receiving end of a [`Ring`]; dropping it closes the ring for
/// receiving (the sender's next wait for space fails).
pub struct Receiver<'a> {
    ring: &'a Ring,
    /// Our copy of `tail` (we are its only writer).
    tail: u64,
    /// The last `head` we loaded; the sender may have published more since.
    head: u64,
    signal: Signal,
    sleeps: u64,
}

impl fmt::Debug for Receiver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("ring", self.ring.name())
            .field("received", &self.tail)
            .field("sleeps", &self.sleeps)
            .finish()
    }
}

impl Receiver<'_> {
    /// Reads up to `buf.len()` bytes, waiting until at least one is there.
    /// Returns 0 only for an empty `buf` or at end-of-file (the sender
    /// closed and every byte it sent has been read).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.head == self.tail {
            self.head = self.wait_for_data()?;
            if self.head == self.tail {
                return Ok(0);
            }
        }
        let r = self.ring.shared();
        let ready = self
            .ring
            .in_flight(self.head, self.tail, "head", self.head)?;
        let n = buf.len().min(ready);
        // SAFETY: we are the only receiver (claimed), and
        // `tail + n <= head` for a `head` loaded with Acquire: these bytes
        // are published and the sender will not reuse them before we store
        // the new tail below.
        unsafe { self.ring.read_at(self.tail, &mut buf[..n]) };
        self.tail += n as u64;
        r.tail.store(self.tail, Ordering::Release);
        if self.signal != Signal::Spin {
            RingShared::wake_if_waiting(&r.space_wait);
        }
        Ok(n)
    }

    /// Waits until data is there, then calls `f` on up to `max` bytes of it
    /// **where they lie in the ring** (no copy out): the longest contiguous
    /// run, which stops at the ring's end, so it may be shorter than what
    /// is there. Only after `f` returns is the space handed back to the
    /// sender. Returns `(bytes, f's result)`, or `None` at end-of-file (or
    /// for `max == 0`).
    ///
    /// # Safety
    /// `f` gets a `&[u8]` over bytes of the shared region, which promises
    /// that nobody writes them while it lives. The protocol gives the
    /// receiver those bytes until it hands them back, so a *conforming*
    /// sender does not write them; the caller must know that the process
    /// at the sender end is one (this crate's [`Sender`], in a process the
    /// caller started, say). A sender that writes the filled part anyway
    /// makes this a data race. With a sender you do not trust, use
    /// [`recv`](Self::recv), which copies atomically. The counters are
    /// checked either way.
    pub unsafe fn recv_in_place<R>(
        &mut self,
        max: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<(usize, R)>> {
        if max == 0 {
            return Ok(None);
        }
        if self.head == self.tail {
            self.head = self.wait_for_data()?;
            if self.head == self.tail {
                return Ok(None);
            }
        }
        let r = self.ring.shared();
        let cap = self.ring.capacity;
        let to_end = cap - (self.tail % cap as u64) as usize;
        let ready = self
            .ring
            .in_flight(self.head, self.tail, "head", self.head)?;
        let n = max.min(ready).min(to_end);
        // SAFETY: `n <= to_end`, so the run stays inside the ring without
        // wrapping; we are the only receiver, `tail + n <= head` (loaded
        // with Acquire, checked above), and our caller vouches that the
        // sender does not write these published bytes (see `# Safety`);
        // the slice is dropped when `f` returns, before the tail store
        // below hands them back.
        let out = f(unsafe { self.ring.filled_at(self.tail, n) });
        self.tail += n as u64;
        r.tail.store(self.tail, Ordering::Release);
        if self.signal != Signal::Spin {
            RingShared::wake_if_waiting(&r.space_wait);
        }
        Ok(Some((n, out)))
    }

    /// Fills all of `buf`; end-of-file first is [`Error::Closed`].
    pub fn recv_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut off = 0;
        while off < buf.len() {
            match self.recv(&mut buf[off..])? {
                0 => return Err(self.ring.closed(End::Sender)),
                n => off += n,
            }
        }
        Ok(())
    }

    /// Waits for `head != tail`, or for the sender to close (then returns
    /// the final head, which may equal `tail`: end-of-file).
    #[cold]
    fn wait_for_data(&mut self) -> Result<u64> {
        let ring = self.ring;
        let r = ring.shared();
        let tail = self.tail;
        wait_until(
            self.signal,
            &r.data_wait,
            &mut self.sleeps,
            || {
                let head = r.head.load(Ordering::Acquire);
                if head != tail {
                    return Ok(Some(head));
                }
                // Acquire on "closed" makes the sender's last head visible.
                if r.ctl.sender_closed.load(Ordering::Acquire) != 0 {
                    return Ok(Some(r.head.load(Ordering::Acquire)));
                }
                Ok(None)
            },
            || ring.check_peer(End::Sender),
        )
    }

    /// Bytes received from this ring so far (its stream position).
    pub fn received(&self) -> u64 {
        self.tail
    }

    /// How many times this end went to sleep on the futex.
    pub fn sleeps(&self) -> u64 {
        self.sleeps
    }
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        let r = self.ring.shared();
        r.ctl.receiver_closed.store(1, Ordering::Release);
        RingShared::wake_if_waiting(&r.space_wait);
    }
}

/// Copies `src` to `dst` in shared memory with relaxed atomic stores: 8
/// bytes at a time where `dst` is aligned, single bytes at the edges. A
/// peer writing or reading the same bytes at the same time is no data
/// race (it may see or leave a mix, which the ring's protocol excludes for
/// a conforming peer); on x86-64 each store is a plain `mov`.
///
/// # Safety
/// `dst` is valid for `src.len()` bytes of shared memory that is only ever
/// accessed atomically or by other processes.
unsafe fn copy_in(dst: *mut u8, src: &[u8]) {
    use std::sync::atomic::AtomicU8;
    let lead = dst.align_offset(8).min(src.len());
    let words = (src.len() - lead) / 8;
    for (i, &b) in src[..lead].iter().enumerate() {
        // SAFETY: in bounds (i < len); AtomicU8 has u8's layout.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(b, Ordering::Relaxed);
    }
    for w in 0..words {
        let at = lead + w * 8;
        let v = u64::from_ne_bytes(src[at..at + 8].try_into().expect("8 bytes"));
        // SAFETY: `dst + at` is 8-aligned (past `lead`) and in bounds.
        unsafe { AtomicU64::from_ptr(dst.add(at).cast()) }.store(v, Ordering::Relaxed);
    }
    let tail = lead + words * 8;
    for (i, &b) in src.iter().enumerate().skip(tail) {
        // SAFETY: in bounds.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(b, Ordering::Relaxed);
    }
}

/// Copies `dst.len()` bytes from shared memory at `src` with relaxed atomic
/// loads (see [`copy_in`]).
///
/// # Safety
/// `src` is valid for `dst.len()` bytes of shared memory that is only ever
/// accessed atomically or by other processes.
unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    use std::sync::atomic::AtomicU8;
    let src = src.cast_mut();
    let lead = src.align_offset(8).min(dst.len());
    let words = (dst.len() - lead) / 8;
    for (i, d) in dst[..lead].iter_mut().enumerate() {
        // SAFETY: in bounds; AtomicU8 has u8's layout.
        *d = unsafe { AtomicU8::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
    }
    for w in 0..words {
        let at = lead + w * 8;
        // SAFETY: `src + at` is 8-aligned (past `lead`) and in bounds.
        let v = unsafe { AtomicU64::from_ptr(src.add(at).cast()) }.load(Ordering::Relaxed);
        dst[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }
    let tail = lead + words * 8;
    for (i, d) in dst.iter_mut().enumerate().skip(tail) {
        // SAFETY: in bounds.
        *d = unsafe { AtomicU8::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 KiB spinning ring whose region this test removes (its handle
    /// created it).
    fn small() -> Ring {
        Ring::with_capacity(&ShmName::unique("ring-hostile"), Signal::Spin, MIN_CAPACITY).unwrap()
    }

    fn corrupt<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(Error::RingCorrupt { .. }))
    }

    /// Finding 1 of "Trust nothing that is shared": a `head` the peer set
    /// more than the ring's capacity past our `tail`. The old `recv`
    /// copied `head - tail` bytes (up to the buffer) from the ring's start
    /// on, past its end: a neighbouring page's bytes came back (in debug
    /// builds nothing got that far: the subtraction panicked).
    #[test]
    fn a_head_too_far_ahead_is_corruption_and_nothing_is_read() {
        let ring = small();
        let mut rx = ring.receiver().unwrap();
        ring.shared()
            .head
            .store(MIN_CAPACITY as u64 + 100, Ordering::Release);
        let mut buf = vec![0xAAu8; 3 * MIN_CAPACITY];
        let r = rx.recv(&mut buf);
        assert!(matches!(r, Err(Error::RingCorrupt { .. })), "{r:?}");
        assert!(buf.iter().all(|&b| b == 0xAA), "bytes were copied");
        // SAFETY: nobody else holds the sender end of this test's ring.
        let r = unsafe { rx.recv_in_place(usize::MAX, |run| run.len()) };
        assert!(corrupt(r), "in place too");
        assert_eq!(ring.shared().tail.load(Ordering::Relaxed), 0, "tail moved");
    }

    /// A `head` behind our `tail`: `head - tail` is negative.
    #[test]
    fn a_head_behind_the_tail_is_corruption() {
        let ring = small();
        ring.shared().tail.store(5000, Ordering::Release);
        let mut rx = ring.receiver().unwrap();
        ring.shared().head.store(10, Ordering::Release);
        let mut buf = [0u8; 64];
        assert!(corrupt(rx.recv(&mut buf)));
    }

    /// Finding 1, the sending side: a `tail` the peer set so that the
    /// bytes in flight exceed the capacity. The old `send` computed a
    /// "free" space of nearly 2^64 and wrote the whole buffer, wrapping
    /// past the ring's end into whatever was mapped next (768 bytes of a
    /// neighbouring page, in the reproduction).
    #[test]
    fn a_tail_too_far_behind_is_corruption_and_nothing_is_written() {
        let ring = small();
        ring.shared().head.store(10_000, Ordering::Release);
        let mut tx = ring.sender().unwrap();
        let r = tx.send(&[7u8; 2 * MIN_CAPACITY]);
        assert!(corrupt(r), "send past the ring");
        assert_eq!(ring.shared().head.load(Ordering::Relaxed), 10_000);
        let mut rx = vec![0u8; MIN_CAPACITY];
        // SAFETY: the ring's bytes, read while no end writes them.
        unsafe { copy_out(ring.region.trailing().as_ptr(), &mut rx) };
        assert!(rx.iter().all(|&b| b == 0), "the ring was written");
        // And a tail ahead of the head.
        ring.shared().tail.store(20_000, Ordering::Release);
        assert!(corrupt(tx.send(&[1])));
    }

    /// The atomic copies are exact at every alignment and length.
    #[test]
    fn atomic_copies_round_trip() {
        let ring = small();
        let base = ring.region.trailing().as_ptr();
        for off in 0..9 {
            for len in [0, 1, 7, 8, 9, 63, 64, 65, 1000] {
                let src: Vec<u8> = (0..len).map(|i| (i * 31 + off) as u8).collect();
                let mut back = vec![0u8; len];
                // SAFETY: `off + len` bytes fit in the 4 KiB ring, which
                // only this thread touches.
                unsafe {
                    copy_in(base.add(off), &src);
                    copy_out(base.add(off), &mut back);
                }
                assert_eq!(back, src, "offset {off} length {len}");
            }
        }
    }

    proptest::proptest! {
        /// Any counters a peer could store: a receive copies at most what
        /// is in flight and never more than the ring holds, or reports
        /// corruption; never a panic or an out-of-ring copy.
        #[test]
        fn any_counters(head in proptest::num::u64::ANY, tail in proptest::num::u64::ANY, want in 1usize..3 * MIN_CAPACITY) {
            let ring = small();
            ring.shared().tail.store(tail, Ordering::Release);
            ring.shared().head.store(head, Ordering::Release);
            let valid = head.checked_sub(tail).is_some_and(|d| d <= MIN_CAPACITY as u64);
            if head != tail {
                let mut rx = ring.receiver().unwrap();
                let mut buf = vec![0u8; want];
                match rx.recv(&mut buf) {
                    Ok(n) => {
                        proptest::prop_assert!(valid);
                        proptest::prop_assert!(n <= want && n as u64 <= head - tail);
                    }
                    Err(Error::RingCorrupt { .. }) => proptest::prop_assert!(!valid),
                    Err(e) => proptest::prop_assert!(false, "{e}"),
                }
            }
            let full = valid && head - tail == MIN_CAPACITY as u64;
            if !full {
                let mut tx = ring.sender().unwrap();
                match tx.send(&vec![1u8; want.min(64)]) {
                    // Closed: the receiver above was dropped while the
                    // send waited for space it had no room for.
                    Ok(()) | Err(Error::Closed { .. }) => proptest::prop_assert!(valid),
                    Err(Error::RingCorrupt { .. }) => proptest::prop_assert!(!valid),
                    Err(e) => proptest::prop_assert!(false, "{e}"),
                }
            }
        }
    }
}
