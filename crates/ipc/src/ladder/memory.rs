//! The rungs that wait on shared memory: `cache-line` (both sides spin on
//! one word), `spin` (a word per direction) and `spin-futex`/`futex` (a
//! futex word per direction, spinning first or not). Every wait is bounded
//! by [`STALL`].

use super::{CHILD, Endpoint, Line, PARENT, Pair, STALL, Side, stalled};
use crate::sys::SharedAnon;
use crate::{Error, Result};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::{Duration, Instant};

/// The flag a futex waiter sets in its word before it sleeps.
const WAITING: u32 = 0x8000_0000;
/// The value bits of a futex word.
const VALUE: u32 = !WAITING;

/// The words these rungs share, in one anonymous shared mapping (zeroed).
#[repr(C)]
struct Words {
    /// The floor's single word.
    floor: Line,
    /// `[parent → child, child → parent]`.
    words: [Line; 2],
}
shm::any_bits!(Words { floor, words });

type Mem = Rc<SharedAnon<Words>>;

fn mem() -> Result<Mem> {
    Ok(Rc::new(SharedAnon::zeroed().map_err(|e| {
        Error::io("mmap(MAP_SHARED | MAP_ANONYMOUS)", e)
    })?))
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
fn spin_for(word: &AtomicU32, last: u32, budget: Duration) -> Option<u32> {
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

/// `cache-line`: both sides on the floor's one word.
pub(super) fn cache_line() -> Result<Pair> {
    let a = mem()?;
    let a2 = a.clone();
    Ok(Pair::new(
        move || Ok(CacheLineEp { mem: a, last: 0 }),
        move || Ok(CacheLineEp { mem: a2, last: 0 }),
        (),
    ))
}

/// `spin`: a word per direction, busy-waited.
pub(super) fn spin() -> Result<Pair> {
    let a = mem()?;
    let a2 = a.clone();
    let ep = |mem, side| SpinEp { mem, side, last: 0 };
    Ok(Pair::new(
        move || Ok(ep(a, PARENT)),
        move || Ok(ep(a2, CHILD)),
        (),
    ))
}

/// `spin-futex` (`spin` = [`ADAPTIVE_SPIN`](super::ADAPTIVE_SPIN)) or
/// `futex` (`spin` = 0): a futex word per direction.
pub(super) fn futex(spin: Duration, what: &'static str) -> Result<Pair> {
    let a = mem()?;
    let a2 = a.clone();
    let ep = move |mem, side| FutexEp {
        mem,
        side,
        last: 0,
        spin,
        what,
    };
    Ok(Pair::new(
        move || Ok(ep(a, PARENT)),
        move || Ok(ep(a2, CHILD)),
        (),
    ))
}
