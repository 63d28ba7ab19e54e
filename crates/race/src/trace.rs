//! The race microscope: every increment of a run, recorded, and the lost
//! ones found.
//!
//! With tracing on, each worker writes one record per increment into its
//! own part of a trace object (a plain shared-memory object beside the
//! race's region, mapped by every worker): the value it **read**, a
//! timestamp taken just before the load and one just after the store, both
//! from `CLOCK_MONOTONIC_RAW`, which every process on the machine shares.
//! The value it wrote is always read + 1.
//!
//! **Finding the lost updates.** The counter's final value F was written by
//! some increment, which read F − 1, written by an earlier increment, which
//! read F − 2, ... back to the initial 0. That chain of F increments is the
//! history that survived; every other increment's store was overwritten
//! before anyone built on it: it is **lost**, so the lost count is exactly
//! N − F. Which store a load read from is decided by the timestamps: the
//! latest store of that value that ended before the load began (or, when
//! clocks cannot tell, the latest that began before it). Each lost
//! increment is then shown with what took its place: a *twin* that read
//! the same value (both read 41, both wrote 42: one 42 is lost), or else
//! the first later store that set the counter back to at most its value (a
//! worker that had read long before and wrote back late, undoing several
//! updates at once).
//!
//! Tracing costs two clock reads per increment (vDSO, tens of nanoseconds),
//! which widens each increment's window; the race it shows is the same
//! race, slowed down.

use shm::{Access, ShmName, ShmObject, ShmOptions};
use std::sync::atomic::{AtomicU64, Ordering};

/// Words per record: read value, time before the load, time after the
/// store.
const WORDS: usize = 3;
/// Bytes one recorded increment takes.
pub const RECORD_BYTES: u64 = (WORDS * 8) as u64;
/// Most increments one traced run records, all workers together: 2^21
/// records are 48 MiB of `/dev/shm`.
pub const MAX_TRACED: u64 = 1 << 21;
/// Collisions kept for the report (all are counted).
const KEEP: usize = 16;

/// What a worker does around each increment: nothing, or record it.
pub(crate) trait Recorder {
    /// Runs the increment `f` (which returns the value it read).
    fn record(&mut self, f: impl FnOnce() -> u64);
}

/// No tracing: the increment alone.
pub(crate) struct NoRecord;

impl Recorder for NoRecord {
    #[inline(always)]
    fn record(&mut self, f: impl FnOnce() -> u64) {
        f();
    }
}

/// Tracing into this worker's part of the trace object.
pub(crate) struct Tracer<'a> {
    words: &'a [AtomicU64],
    next: usize,
}

impl<'a> Tracer<'a> {
    /// Worker `index`'s records, `iters` of them, in `words`.
    pub(crate) fn new(words: &'a [AtomicU64], index: u32, iters: u64) -> Self {
        let per = iters as usize * WORDS;
        let start = index as usize * per;
        Tracer {
            words: &words[start..start + per],
            next: 0,
        }
    }
}

impl Recorder for Tracer<'_> {
    #[inline(always)]
    fn record(&mut self, f: impl FnOnce() -> u64) {
        let before = shm::time::monotonic_raw_ns();
        let read = f();
        let after = shm::time::monotonic_raw_ns();
        let w = &self.words[self.next..self.next + WORDS];
        w[0].store(read, Ordering::Relaxed);
        w[1].store(before, Ordering::Relaxed);
        w[2].store(after, Ordering::Relaxed);
        self.next += WORDS;
    }
}

/// The trace object of one run: created by the coordinator, sized for
/// `workers × iters` records, unlinked when dropped.
#[derive(Debug)]
pub(crate) struct TraceObject {
    obj: ShmObject,
    len: usize,
}

impl TraceObject {
    /// Creates it (`O_CREAT | O_EXCL`, mode 0600) and reserves its pages.
    pub(crate) fn create(workers: u32, iters: u64) -> shm::Result<Self> {
        let name = ShmName::unique("race-trace");
        let obj = ShmOptions::new().create_new(true).open(&name)?;
        let len = workers as u64 * iters * RECORD_BYTES;
        obj.set_len(len)?;
        Ok(TraceObject {
            obj,
            len: len as usize,
        })
    }

    /// Its name, for workers that open it.
    pub(crate) fn name(&self) -> &ShmName {
        self.obj.name()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Maps it (the coordinator's own view).
    pub(crate) fn map(&self) -> shm::Result<shm::Mapping> {
        self.obj.map(Access::ReadWrite, self.len)
    }
}

/// Opens a run's trace object by name and maps it (what a worker process
/// does).
pub(crate) fn open(name: &ShmName, len: usize) -> shm::Result<shm::Mapping> {
    ShmOptions::new().open(name)?.map(Access::ReadWrite, len)
}

/// One recorded increment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Increment {
    /// The worker.
    pub worker: u32,
    /// Its position in that worker's sequence, from 0.
    pub seq: u64,
    /// The value it loaded (it stored this + 1).
    pub read: u64,
    /// `CLOCK_MONOTONIC_RAW` just before the load, in ns.
    pub t_read: u64,
    /// `CLOCK_MONOTONIC_RAW` just after the store, in ns.
    pub t_write: u64,
}

impl Increment {
    /// The value it stored.
    pub fn wrote(&self) -> u64 {
        self.read + 1
    }
}

/// A lost increment and the one that took its place.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Collision {
    /// The increment whose update was lost.
    pub lost: Increment,
    /// What took its place: a twin that read the same value (the one that
    /// survived, if one did), else the first later store that set the
    /// counter back to at most its value. `None` if the timestamps show
    /// neither.
    pub overwritten_by: Option<Increment>,
}

/// What the trace says about one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TraceReport {
    /// Increments recorded (workers × iters).
    pub recorded: u64,
    /// The counter's final value.
    pub final_value: u64,
    /// Increments off the surviving chain: their updates were lost. Equal
    /// to expected − actual whenever the trace is complete.
    pub lost_found: u64,
    /// Lost increments that read a value another worker read too: the
    /// classic collision (both read 41, both wrote 42).
    pub same_value: u64,
    /// The other lost increments: built on a value that a late store of an
    /// older value then undid (a worker that read long before wrote back,
    /// wiping out several updates at once).
    pub stale_overwrites: u64,
    /// The first collisions in time, for the timeline.
    pub collisions: Vec<Collision>,
    /// Every recorded increment from shortly before the first collision to
    /// shortly after it, for pictures (at most 64).
    pub window: Vec<Increment>,
}

/// Reads every record of a run (`workers × iters`) from the trace words.
pub(crate) fn collect(words: &[AtomicU64], workers: u32, iters: u64) -> Vec<Increment> {
    let mut out = Vec::with_capacity((workers as u64 * iters) as usize);
    for w in 0..workers {
        let base = w as usize * iters as usize * WORDS;
        for seq in 0..iters {
            let at = base + seq as usize * WORDS;
            out.push(Increment {
                worker: w,
                seq,
                read: words[at].load(Ordering::Relaxed),
                t_read: words[at + 1].load(Ordering::Relaxed),
                t_write: words[at + 2].load(Ordering::Relaxed),
            });
        }
    }
    out
}

/// Finds the surviving chain, the lost increments and what overwrote each
/// (see the module docs).
pub fn analyse(incs: &[Increment], final_value: u64) -> TraceReport {
    use std::collections::HashMap;
    // Stores of each value, by the time they ended.
    let mut by_value: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, inc) in incs.iter().enumerate() {
        by_value.entry(inc.wrote()).or_default().push(i);
    }
    for v in by_value.values_mut() {
        v.sort_by_key(|&i| (incs[i].t_write, incs[i].t_read));
    }
    // The store a load of `value` that began at `t` read from.
    let source = |value: u64, t: u64| -> Option<usize> {
        let stores = by_value.get(&value)?;
        let ended_before = stores.partition_point(|&i| incs[i].t_write <= t);
        if ended_before > 0 {
            return Some(stores[ended_before - 1]);
        }
        // Clocks cannot order them: the latest store that began before the
        // load, else the earliest store of the value.
        stores
            .iter()
            .rev()
            .find(|&&i| incs[i].t_read <= t)
            .or(stores.first())
            .copied()
    };
    // Which store each load read from (None: the initial 0).
    let parent: Vec<Option<usize>> = incs
        .iter()
        .map(|x| {
            if x.read == 0 {
                None
            } else {
                source(x.read, x.t_read)
            }
        })
        .collect();
    // The surviving chain, from the final store back to the initial 0.
    let mut on_chain = vec![false; incs.len()];
    let mut at = by_value
        .get(&final_value)
        .and_then(|v| v.last().copied())
        .filter(|_| final_value > 0);
    while let Some(i) = at {
        if on_chain[i] {
            break; // a cycle can only come from broken timestamps
        }
        on_chain[i] = true;
        at = parent[i];
    }
    // Every store in time order, to find what overwrote each lost one.
    let mut order: Vec<usize> = (0..incs.len()).collect();
    order.sort_by_key(|&i| (incs[i].t_write, incs[i].worker, incs[i].seq));
    let mut rank = vec![0usize; incs.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    // Who read each value: a lost increment's twins.
    let mut readers: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, x) in incs.iter().enumerate() {
        readers.entry(x.read).or_default().push(i);
    }
    let mut lost: Vec<usize> = (0..incs.len()).filter(|&i| !on_chain[i]).collect();
    lost.sort_by_key(|&i| rank[i]);
    // Another worker's increment that read the same value.
    let twins = |i: usize| {
        readers[&incs[i].read]
            .iter()
            .copied()
            .filter(move |&j| incs[j].worker != incs[i].worker)
    };
    let same_value = lost.iter().filter(|&&i| twins(i).next().is_some()).count() as u64;
    let took_its_place = |i: usize| -> Option<usize> {
        // A twin (another worker's increment that read the same value), the
        // one that survived if there is one, else the nearest in time...
        // (A worker that reads a value twice was set back by someone else's
        // late store: that store is what the fallback below finds.)
        let twins = twins(i);
        let twin = twins
            .clone()
            .find(|&j| on_chain[j])
            .or_else(|| twins.min_by_key(|&j| incs[j].t_write.abs_diff(incs[i].t_write)));
        // ...else the first later store by another worker that set the
        // counter back to at most its value: what undid it and whatever was
        // built on it.
        // (Another worker's store: a worker's own later stores build on what
        // it read, they never undo its earlier one.)
        twin.or_else(|| {
            order[rank[i] + 1..]
                .iter()
                .copied()
                .find(|&j| incs[j].worker != incs[i].worker && incs[j].wrote() <= incs[i].wrote())
        })
    };
    let collisions: Vec<Collision> = lost
        .iter()
        .take(KEEP)
        .map(|&i| Collision {
            lost: incs[i],
            overwritten_by: took_its_place(i).map(|j| incs[j]),
        })
        .collect();
    let window = collisions
        .first()
        .map(|c| {
            let t = c.lost.t_read;
            let mut w: Vec<Increment> = incs
                .iter()
                .filter(|x| x.t_write + 2_000 >= t && x.t_read <= t + 2_000)
                .copied()
                .collect();
            w.sort_by_key(|x| x.t_read);
            w.truncate(64);
            w
        })
        .unwrap_or_default();
    TraceReport {
        recorded: incs.len() as u64,
        final_value,
        lost_found: lost.len() as u64,
        same_value,
        stale_overwrites: lost.len() as u64 - same_value,
        collisions,
        window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(worker: u32, seq: u64, read: u64, t_read: u64, t_write: u64) -> Increment {
        Increment {
            worker,
            seq,
            read,
            t_read,
            t_write,
        }
    }

    #[test]
    fn no_overlap_loses_nothing() {
        let incs: Vec<_> = (0..10)
            .map(|i| inc(i as u32 % 2, i / 2, i, i * 10, i * 10 + 5))
            .collect();
        let r = analyse(&incs, 10);
        assert_eq!(r.lost_found, 0);
        assert!(r.collisions.is_empty());
    }

    #[test]
    fn two_reads_of_41_lose_one() {
        // 0..=40 by worker 0, then both read 41 and both write 42.
        let mut incs: Vec<_> = (0..41).map(|i| inc(0, i, i, i * 10, i * 10 + 5)).collect();
        incs.push(inc(0, 41, 41, 500, 520));
        incs.push(inc(1, 0, 41, 505, 530));
        let r = analyse(&incs, 42);
        assert_eq!(r.lost_found, 1);
        assert_eq!(r.same_value, 1);
        let c = r.collisions[0];
        assert_eq!((c.lost.worker, c.lost.read), (0, 41));
        let k = c.overwritten_by.unwrap();
        assert_eq!((k.worker, k.read), (1, 41));
    }

    #[test]
    fn a_late_stale_store_undoes_several() {
        // Worker 1 reads 0 early and writes 1 late, after worker 0 went
        // 0 -> 1 -> 2 -> 3; then worker 0 goes on from 1: final 3 of 5.
        let incs = vec![
            inc(1, 0, 0, 0, 100),
            inc(0, 0, 0, 10, 15),
            inc(0, 1, 1, 20, 25),
            inc(0, 2, 2, 30, 35),
            inc(0, 3, 1, 110, 115),
            inc(0, 4, 2, 120, 125),
        ];
        let r = analyse(&incs, 3);
        assert_eq!(r.lost_found, 6 - 3);
        // Worker 0's first three are lost: its 0 -> 1 was built on by its
        // next two, and the whole branch was undone by worker 1's late 1.
        let lost: Vec<u64> = r.collisions.iter().map(|c| c.lost.seq).collect();
        assert_eq!(lost, [0, 1, 2]);
        // Worker 1's late 0 -> 1 undid all three: the first had a twin in
        // it (both read 0), the other two were set back by it.
        let took: Vec<(u32, u64)> = r
            .collisions
            .iter()
            .map(|c| c.overwritten_by.map(|k| (k.worker, k.seq)).unwrap())
            .collect();
        assert_eq!(took, [(1, 0), (1, 0), (1, 0)]);
        assert_eq!((r.same_value, r.stale_overwrites), (1, 2));
    }
}
