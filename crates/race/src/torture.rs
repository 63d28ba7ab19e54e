//! The torture: every process-shared lock of the registry under sustained
//! faults, as the kernel's `locktorture` runs its locks, plus what a lock
//! in shared memory must survive and `locktorture` never needs: its holder
//! killed (SIGKILL) at any instruction, or stopped (SIGSTOP) for a while.
//!
//! N worker processes loop: take the lock, update a **journaled
//! multi-word record** in the region, release; they hold for random
//! lengths between and *inside* the update, so deaths land in the middle
//! of it. The torturer (the calling thread) kills a victim — the current
//! holder when there is one — and starts a replacement, stops one for a
//! while, and moves one to another CPU, at seeded random intervals.
//!
//! **The record.** `words[i]` must equal `f(seq, i)`; `per_worker[w]`
//! counts the updates worker slot `w` completed, so their sum must equal
//! `seq`. An update writes its intent to the journal first (target
//! `seq`, slot, the slot's target count), then the words, the slot's
//! count and `seq`, and clears the journal last. A holder that finds the
//! journal set took the lock from a holder that died mid-update: it
//! **repairs** the record by rolling the update forward, then checks it.
//! Every acquisition checks the record: a mismatch is an *inconsistent*
//! update; a sum of counts above `seq` is a *lost* update (two holders
//! at once); either is a failure for a recovering lock.
//!
//! **Wedges.** A lock that cannot tell that its holder died
//! (`pthread-plain`, the semaphores) stays held by the dead; the torturer
//! notices that nobody has acquired it for [`Setup::wedge_after`] and
//! reports the wedge (and how many kills it took) instead of hanging.
//! For a lock that recovers, a wedge is a failure.
//!
//! One deviation from the textbook order: glibc's robust mutex is made
//! consistent (`pthread_mutex_consistent`) inside shmlab's `lock` call,
//! before the repair; nobody else can take the lock in between, so the
//! record is repaired before anyone else sees it all the same.

use crate::RaceError;
use crate::mode::{LocalLock, ModeVisitor, SyncMode};
use nix::sys::signal::Signal;
use shm::lock::{Acquired, InspectLock, Lock, LockState, RawLockTimed};
use shm::process::Child;
use shm::{CachePadded, InitCtx, Region, RegionOptions, Shared, ShmName};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

/// Words in the record.
pub const WORDS: usize = 4;
/// The most worker processes.
pub const MAX_PROCS: u32 = 32;
/// Recovery latencies kept (the last ones, for the percentiles).
const LATENCIES: usize = 4096;
/// Kill times remembered (by pid modulo this).
const KILLED: usize = 256;
/// How long the torturer waits for a holder to kill before it kills
/// another worker.
const HOLDER_WAIT: Duration = Duration::from_millis(2);
/// No acquisition for this long: the faults pause, to see whether the
/// lock recovers when left alone.
const QUIET_AFTER: Duration = Duration::from_millis(500);

/// What `words[i]` holds after update `seq` (0 for every word of update
/// 0: the zero-filled region is a consistent record).
fn word(seq: u64, i: usize) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(8 * i as u32 + 1)
}

/// The journaled record the lock protects.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Record {
    /// Updates completed.
    pub seq: AtomicU64,
    /// `word(seq, i)` each.
    pub words: [AtomicU64; WORDS],
    /// Updates completed per worker slot (their sum is `seq`).
    pub per_worker: [AtomicU64; MAX_PROCS as usize],
    /// The update in progress: its target `seq` (0: none).
    pub journal_seq: AtomicU64,
    /// Its worker slot.
    pub journal_slot: AtomicU32,
    /// That slot's count once it is done.
    pub journal_count: AtomicU64,
}
shm::any_bits!(Record {
    seq,
    words,
    per_worker,
    journal_seq,
    journal_slot,
    journal_count
});

/// One worker slot (reused by the replacements of a killed worker).
#[derive(Debug, Default)]
#[repr(C)]
pub struct Slot {
    /// The pid now working in it.
    pub pid: AtomicI32,
    /// Acquisitions made from this slot.
    pub acquisitions: AtomicU64,
}
shm::any_bits!(Slot { pid, acquisitions });

/// The torture's region.
#[repr(C)]
pub struct Arena<L: RawLockTimed> {
    lock: CachePadded<LockState<L>>,
    record: CachePadded<Record>,
    /// Set by the torturer: workers end.
    stop: CachePadded<AtomicU32>,
    /// The pid holding the lock (written right after acquiring, cleared
    /// right before releasing): whom the torturer kills first.
    holder: CachePadded<AtomicI32>,
    /// Holders at this moment, by the workers' own count: more than one is
    /// a failure of mutual exclusion.
    inside: AtomicU32,
    /// Hold bounds (`spin_loop` rounds) inside and outside the update.
    hold: AtomicU32,
    /// When the torturer last killed a holder (`CLOCK_MONOTONIC` ns): the
    /// recovery latency when the lock does not say who died.
    kill_ns: AtomicU64,
    /// When each victim was killed, by pid modulo [`KILLED`]: the
    /// recovery latency when the lock names the dead owner.
    killed_pid: [AtomicI32; KILLED],
    killed_ns: [AtomicU64; KILLED],
    recoveries: AtomicU64,
    repairs: AtomicU64,
    inconsistent: AtomicU64,
    lost: AtomicU64,
    overlaps: AtomicU64,
    latency_max: AtomicU64,
    latency: [AtomicU64; LATENCIES],
    slots: [CachePadded<Slot>; MAX_PROCS as usize],
}
shm::any_bits!([L: RawLockTimed] Arena<L> {
    lock, record, stop, holder, inside, hold, kill_ns,
    killed_pid,
    killed_ns, recoveries, repairs,
    inconsistent, lost, overlaps, latency_max, latency, slots
});

impl<L: RawLockTimed> std::fmt::Debug for Arena<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("lock", &L::NAME)
            .field("record", &self.record.0)
            .finish_non_exhaustive()
    }
}

// SAFETY: #[repr(C)], no pointers; every field is an atomic or a lock state,
// which `RawLock` requires to be #[repr(C)], valid when zeroed and
// interior-mutable; `init_in_place` initialises the lock state.
unsafe impl<L: RawLockTimed + 'static> Shared for Arena<L> {
    type Init = u32;

    fn type_name() -> String {
        format!("torture/{}", L::NAME)
    }

    unsafe fn init_in_place(this: *mut Self, hold: u32, ctx: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: `this` is aligned, zeroed and not yet shared (our
        // caller's promise).
        unsafe {
            (*this).hold.store(hold, Relaxed);
            LockState::init(&raw mut (*this).lock.0, ctx).map_err(|e| e.to_string())
        }
    }

    unsafe fn destroy(&self, ctx: &InitCtx<'_>) {
        // SAFETY: forwarded from our caller (Shared::destroy).
        unsafe { self.lock.0.destroy(ctx) };
    }

    fn before_unmap(&self) {
        self.lock.0.before_unmap();
    }
}

/// A small seeded generator (xorshift64*): the same seed, the same faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x2545_F491_4F6C_DD1D | 1)
    }
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// `d` scaled by a factor in [0.5, 1.5).
    pub fn jitter(&mut self, d: Duration) -> Duration {
        d.mul_f64(0.5 + (self.below(1000) as f64) / 1000.0)
    }
}

/// A duration as whole nanoseconds, for `--json` (as every other time in
/// the report).
fn as_ns<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One torture run's settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setup {
    /// Worker processes.
    pub procs: u32,
    /// How long.
    #[serde(rename = "duration_ns", serialize_with = "as_ns")]
    pub duration: Duration,
    /// Mean interval between kills (0: none).
    #[serde(rename = "kill_every_ns", serialize_with = "as_ns")]
    pub kill_every: Duration,
    /// Mean interval between stops (0: none).
    #[serde(rename = "stop_every_ns", serialize_with = "as_ns")]
    pub stop_every: Duration,
    /// How long a stopped worker stays stopped.
    #[serde(rename = "stop_for_ns", serialize_with = "as_ns")]
    pub stop_for: Duration,
    /// Mean interval between CPU moves (0: none).
    #[serde(rename = "move_every_ns", serialize_with = "as_ns")]
    pub move_every: Duration,
    /// Most `spin_loop` rounds held between the record's writes (and
    /// outside the lock).
    pub hold: u32,
    /// The seed of the faults.
    pub seed: u64,
    /// No acquisition for this long after the faults paused (see
    /// [`Report::pauses`]) is a wedge.
    #[serde(rename = "wedge_after_ns", serialize_with = "as_ns")]
    pub wedge_after: Duration,
}

/// What a torture of one lock found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// The lock.
    pub lock: String,
    /// Whether the lock says it detects a dead holder.
    pub recovers: bool,
    /// Worker processes.
    pub procs: u32,
    /// How long it ran.
    pub elapsed_ns: u64,
    /// Acquisitions, all workers.
    pub acquisitions: u64,
    /// Fewest and most acquisitions by one worker slot.
    pub per_worker_min: u64,
    /// See `per_worker_min`.
    pub per_worker_max: u64,
    /// Updates completed (the record's `seq`).
    pub updates: u64,
    /// SIGKILLs sent.
    pub kills: u64,
    /// Of which killed a process that was holding the lock (stopped
    /// first, it was seen holding it).
    pub holder_kills: u64,
    /// SIGSTOPs sent (each followed by a SIGCONT).
    pub stops: u64,
    /// CPU moves (`sched_setaffinity`) made.
    pub moves: u64,
    /// Times the faults paused because nobody had acquired the lock for
    /// 500 ms (to tell a slow recovery from a wedge).
    pub pauses: u64,
    /// Acquisitions that reported a dead previous owner.
    pub recoveries: u64,
    /// Updates a dead holder left half written, rolled forward.
    pub repairs: u64,
    /// Kill of a holder → next acquisition, ns: p50, p99, max.
    pub recovery_p50_ns: Option<u64>,
    /// See `recovery_p50_ns`.
    pub recovery_p99_ns: Option<u64>,
    /// See `recovery_p50_ns`.
    pub recovery_max_ns: Option<u64>,
    /// Acquisitions that found the record inconsistent.
    pub inconsistent: u64,
    /// Updates lost (two holders at once).
    pub lost: u64,
    /// Acquisitions that found another holder inside.
    pub overlaps: u64,
    /// Whether the lock wedged (held by a dead process, nobody got it).
    pub wedged: bool,
    /// Kills (and holder kills) sent when the wedge was found.
    pub kills_to_wedge: Option<u64>,
    /// See `kills_to_wedge`.
    pub holder_kills_to_wedge: Option<u64>,
    /// Whether it passed: a recovering lock recovered every holder death
    /// with nothing lost or inconsistent and never wedged; a
    /// non-recovering lock's wedge was detected (and nothing lost).
    pub pass: bool,
    /// One line.
    pub verdict: String,
}

/// A worker's exit statuses.
const EXIT_DONE: i32 = 0;
const EXIT_NO_REGION: i32 = 3;
const EXIT_LOCK_FAILED: i32 = 4;

fn spin(rounds: u64) {
    for _ in 0..rounds {
        std::hint::spin_loop();
    }
}

/// Repairs (rolls forward) a half-written update, then checks the record;
/// counts what it finds. Called holding the lock.
fn repair_and_check(r: &Record, a: &AtomicU64, inconsistent: &AtomicU64, lost: &AtomicU64) {
    let target = r.journal_seq.load(Relaxed);
    if target != 0 {
        let slot = r.journal_slot.load(Relaxed) as usize;
        for (i, w) in r.words.iter().enumerate() {
            w.store(word(target, i), Relaxed);
        }
        if let Some(c) = r.per_worker.get(slot) {
            c.store(r.journal_count.load(Relaxed), Relaxed);
        }
        r.seq.store(target, Relaxed);
        r.journal_seq.store(0, Relaxed);
        a.fetch_add(1, Relaxed);
    }
    let seq = r.seq.load(Relaxed);
    let words_ok = r
        .words
        .iter()
        .enumerate()
        .all(|(i, w)| w.load(Relaxed) == word(seq, i));
    let sum: u64 = r.per_worker.iter().map(|c| c.load(Relaxed)).sum();
    if sum > seq {
        lost.fetch_add(sum - seq, Relaxed);
        // Make it agree again, so one overlap is counted once.
        r.seq.store(sum, Relaxed);
        for (i, w) in r.words.iter().enumerate() {
            w.store(word(sum, i), Relaxed);
        }
    } else if !words_ok || sum != seq {
        inconsistent.fetch_add(1, Relaxed);
        for (i, w) in r.words.iter().enumerate() {
            w.store(word(sum, i), Relaxed);
        }
        r.seq.store(sum, Relaxed);
    }
}

/// The worker process's loop, in slot `me`.
fn worker<L: RawLockTimed + 'static>(name: &ShmName, me: usize, seed: u64) -> i32 {
    let Ok(region) = Region::<Arena<L>>::open(name, &RegionOptions::default()) else {
        return EXIT_NO_REGION;
    };
    let a: &Arena<L> = &region;
    let Ok(lock) = Lock::<L>::attach(&a.lock.0) else {
        return EXIT_LOCK_FAILED;
    };
    let pid = shm::pid();
    a.slots[me].0.pid.store(pid, Relaxed);
    let hold = u64::from(a.hold.load(Relaxed));
    let mut rng = Rng::new(seed ^ (pid as u64) << 17 ^ me as u64);
    let r = &a.record.0;
    while a.stop.0.load(Acquire) == 0 {
        let g = match lock.lock_timeout(Duration::from_millis(50)) {
            Ok(Some(g)) => g,
            Ok(None) => continue,
            Err(_) => return EXIT_LOCK_FAILED,
        };
        // Counted before the holder field names us: a kill in between is
        // then not a holder kill whose recovery nobody counted.
        if let Acquired::PreviousOwnerDied { owner } = g.acquired() {
            a.recoveries.fetch_add(1, Relaxed);
            // The dead holder's own count of holders.
            a.inside.store(0, Relaxed);
            // When was it killed? By its pid if the lock names it.
            let killed = owner
                .and_then(|o| {
                    let i = o.rem_euclid(KILLED as i32) as usize;
                    (a.killed_pid[i].load(Relaxed) == o).then(|| a.killed_ns[i].load(Relaxed))
                })
                .unwrap_or_else(|| a.kill_ns.load(Relaxed));
            let now = shm::time::monotonic_ns();
            if killed != 0 && now > killed {
                let ns = now - killed;
                a.latency_max.fetch_max(ns, Relaxed);
                let n = a.recoveries.load(Relaxed).saturating_sub(1) as usize;
                a.latency[n % LATENCIES].store(ns, Relaxed);
            }
        }
        a.holder.0.store(pid, Relaxed);
        if a.inside.fetch_add(1, AcqRel) != 0 {
            a.overlaps.fetch_add(1, Relaxed);
        }
        a.slots[me].0.acquisitions.fetch_add(1, Relaxed);
        repair_and_check(r, &a.repairs, &a.inconsistent, &a.lost);
        // The update, journaled, with holds between its writes.
        let n = r.seq.load(Relaxed);
        let count = r.per_worker[me].load(Relaxed) + 1;
        r.journal_slot.store(me as u32, Relaxed);
        r.journal_count.store(count, Relaxed);
        r.journal_seq.store(n + 1, Relaxed);
        for (i, w) in r.words.iter().enumerate() {
            spin(rng.below(hold + 1));
            w.store(word(n + 1, i), Relaxed);
        }
        spin(rng.below(hold + 1));
        r.per_worker[me].store(count, Relaxed);
        r.seq.store(n + 1, Relaxed);
        r.journal_seq.store(0, Relaxed);
        a.inside.fetch_sub(1, AcqRel);
        a.holder.0.store(0, Relaxed);
        drop(g);
        spin(rng.below(hold + 1));
    }
    EXIT_DONE
}

/// What the torture reports as it goes: the report so far (counts read
/// from the region), the time run and the time asked.
pub type Progress<'a> = &'a mut dyn FnMut(&Report, Duration, Duration);

/// Runs the torture of lock `L`; `progress` is called every 100 ms or so.
pub fn torture<L: RawLockTimed + InspectLock + 'static>(
    setup: &Setup,
    progress: Progress<'_>,
) -> Result<Report, RaceError> {
    if setup.procs < 2 || setup.procs > MAX_PROCS {
        return Err(RaceError::Config(format!(
            "--procs must be between 2 and {MAX_PROCS}"
        )));
    }
    let name = ShmName::unique(&format!("torture-{}", L::NAME));
    let region = Region::<Arena<L>>::create(&name, &RegionOptions::default(), setup.hold)?;
    let a: &Arena<L> = &region;
    let mut rng = Rng::new(setup.seed);
    let mut generation = 0u64;
    // SAFETY (for every fork below): the child opens the region by name
    // and uses its lock and atomics; the torturer's process has no thread
    // that holds a lock across the fork but the progress printing of the
    // caller, which happens on this thread.
    let spawn = |me: usize, generation: u64| -> Result<Child, RaceError> {
        let n = name.clone();
        let seed = setup.seed ^ generation.wrapping_mul(0x9E37_79B9);
        // SAFETY: see above.
        unsafe { shm::process::fork_child(move || worker::<L>(&n, me, seed)) }.map_err(|source| {
            RaceError::Spawn {
                index: me as u32,
                source,
            }
        })
    };
    let mut kids: Vec<Child> = Vec::new();
    for me in 0..setup.procs as usize {
        generation += 1;
        kids.push(spawn(me, generation)?);
    }
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut report = Report {
        lock: L::NAME.to_string(),
        recovers: L::RECOVERS_OWNER_DEATH,
        procs: setup.procs,
        ..Report::default()
    };
    let start = Instant::now();
    let never = start + Duration::from_secs(365 * 24 * 3600);
    let next = |rng: &mut Rng, every: Duration| {
        if every.is_zero() {
            never
        } else {
            Instant::now() + rng.jitter(every)
        }
    };
    let mut next_kill = next(&mut rng, setup.kill_every);
    let mut next_stop = next(&mut rng, setup.stop_every);
    let mut next_move = next(&mut rng, setup.move_every);
    let mut stopped: Option<(usize, Instant)> = None;
    let mut last_acq = 0u64;
    let mut quiet_since: Option<Instant> = None;
    let mut last_progress = Instant::now();
    let mut last_report = Instant::now();
    let acquisitions = |a: &Arena<L>| -> u64 {
        a.slots[..setup.procs as usize]
            .iter()
            .map(|s| s.0.acquisitions.load(Relaxed))
            .sum()
    };
    // The victim: the holder if it is one of ours, else one at random.
    // The victim: the holder, waiting up to HOLDER_WAIT for one of ours
    // to hold the lock; else one at random.
    let pick = |a: &Arena<L>, kids: &[Child], rng: &mut Rng, wait: Duration| -> (usize, bool) {
        let t = Instant::now();
        loop {
            let holder = a.holder.0.load(Relaxed);
            if let Some(i) = kids.iter().position(|k| holder != 0 && k.pid() == holder) {
                return (i, true);
            }
            if t.elapsed() >= wait {
                return (rng.below(kids.len() as u64) as usize, false);
            }
            std::hint::spin_loop();
        }
    };
    while start.elapsed() < setup.duration && !shm::cleanup::interrupted() {
        let now = Instant::now();
        if let Some((i, until)) = stopped {
            if now >= until {
                let _ = kids[i].signal(Signal::SIGCONT);
                stopped = None;
            }
        }
        if now >= next_kill && stopped.is_none() && quiet_since.is_none() {
            let (i, holder) = pick(a, &kids, &mut rng, HOLDER_WAIT);
            let victim = kids[i].pid();
            // Stop it first, so that whether it holds the lock cannot
            // change between the look and the kill: it sets the holder
            // field after acquiring and clears it before unlocking.
            let _ = kids[i].signal(Signal::SIGSTOP);
            let t = Instant::now();
            while shm::process::stat(victim).is_ok_and(|st| st.state != b'T')
                && t.elapsed() < Duration::from_millis(100)
            {
                std::thread::yield_now();
            }
            let held = a.holder.0.load(Relaxed) == victim;
            let now_ns = shm::time::monotonic_ns();
            let slot = victim.rem_euclid(KILLED as i32) as usize;
            a.killed_ns[slot].store(now_ns, Relaxed);
            a.killed_pid[slot].store(victim, Relaxed);
            if held || holder {
                a.kill_ns.store(now_ns, Relaxed);
            }
            let _ = kids[i].kill();
            report.kills += 1;
            if held {
                report.holder_kills += 1;
            }
            generation += 1;
            kids[i] = spawn(i, generation)?;
            next_kill = next(&mut rng, setup.kill_every);
        }
        if now >= next_stop && stopped.is_none() && quiet_since.is_none() {
            let (i, _) = pick(a, &kids, &mut rng, Duration::ZERO);
            if kids[i].signal(Signal::SIGSTOP).is_ok() {
                report.stops += 1;
                stopped = Some((i, Instant::now() + setup.stop_for));
            }
            next_stop = next(&mut rng, setup.stop_every);
        }
        if now >= next_move && cpus.len() > 1 && quiet_since.is_none() {
            let i = rng.below(kids.len() as u64) as usize;
            let mut set = nix::sched::CpuSet::new();
            if set.set(cpus[rng.below(cpus.len() as u64) as usize]).is_ok()
                && nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(kids[i].pid()), &set)
                    .is_ok()
            {
                report.moves += 1;
            }
            next_move = next(&mut rng, setup.move_every);
        }
        // Wedge watch. A lock nobody has acquired for QUIET_AFTER may only
        // be recovering while its survivors keep being killed (a futex
        // waiter checks its holder every 50 ms): the faults pause (a
        // stopped worker is continued). If nobody acquires it for
        // `wedge_after` more, left alone, it is wedged.
        let acq = acquisitions(a);
        if acq != last_acq {
            last_acq = acq;
            last_progress = Instant::now();
            quiet_since = None;
        } else if quiet_since.is_none() && last_progress.elapsed() >= QUIET_AFTER {
            if let Some((i, _)) = stopped.take() {
                let _ = kids[i].signal(Signal::SIGCONT);
            }
            quiet_since = Some(Instant::now());
            report.pauses += 1;
        } else if quiet_since.is_some_and(|q| q.elapsed() >= setup.wedge_after) {
            report.wedged = true;
            report.kills_to_wedge = Some(report.kills);
            report.holder_kills_to_wedge = Some(report.holder_kills);
            break;
        }
        if last_report.elapsed() >= Duration::from_millis(100) {
            let mut so_far = report.clone();
            read_counts(a, setup.procs, &mut so_far);
            so_far.elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            progress(&so_far, start.elapsed(), setup.duration);
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    // The end: workers stop at their next look (a stopped one is
    // continued first); whoever is stuck behind a wedged lock is killed.
    if let Some((i, _)) = stopped {
        let _ = kids[i].signal(Signal::SIGCONT);
    }
    a.stop.0.store(1, Release);
    let deadline = Instant::now() + Duration::from_secs(2);
    for k in &mut kids {
        let _ = k.stop_by(deadline);
    }
    report.elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    // The last word: take the lock once more (a dead holder's update is
    // repaired) and check the record.
    if !report.wedged {
        if let Ok(lock) = Lock::<L>::attach(&a.lock.0) {
            if let Ok(Some(g)) = lock.lock_timeout(Duration::from_secs(2)) {
                if let Acquired::PreviousOwnerDied { .. } = g.acquired() {
                    a.recoveries.fetch_add(1, Relaxed);
                }
                repair_and_check(&a.record.0, &a.repairs, &a.inconsistent, &a.lost);
                drop(g);
            } else {
                report.wedged = true;
                report.kills_to_wedge = Some(report.kills);
                report.holder_kills_to_wedge = Some(report.holder_kills);
            }
        }
    }
    read_counts(a, setup.procs, &mut report);
    judge(&mut report);
    drop(kids);
    drop(region);
    Ok(report)
}

/// Fills `report`'s counts from the region.
fn read_counts<L: RawLockTimed>(a: &Arena<L>, procs: u32, report: &mut Report) {
    let per: Vec<u64> = a.slots[..procs as usize]
        .iter()
        .map(|s| s.0.acquisitions.load(Relaxed))
        .collect();
    report.acquisitions = per.iter().sum();
    report.per_worker_min = per.iter().copied().min().unwrap_or(0);
    report.per_worker_max = per.iter().copied().max().unwrap_or(0);
    report.updates = a.record.0.seq.load(Relaxed);
    report.recoveries = a.recoveries.load(Relaxed);
    report.repairs = a.repairs.load(Relaxed);
    report.inconsistent = a.inconsistent.load(Relaxed);
    report.lost = a.lost.load(Relaxed);
    report.overlaps = a.overlaps.load(Relaxed);
    let kept = (report.recoveries as usize).min(LATENCIES);
    let mut lat: Vec<u64> = a.latency[..kept]
        .iter()
        .map(|x| x.load(Relaxed))
        .filter(|&x| x > 0)
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round().max(0.0) as usize)
            .copied()
    };
    report.recovery_p50_ns = pct(0.5);
    report.recovery_p99_ns = pct(0.99);
    let max = a.latency_max.load(Relaxed);
    report.recovery_max_ns = (max > 0).then_some(max);
}

/// The verdict.
fn judge(r: &mut Report) {
    let damage = r.lost + r.inconsistent + r.overlaps;
    (r.pass, r.verdict) = if damage > 0 {
        (
            false,
            format!(
                "FAIL: {} lost, {} inconsistent, {} overlapping acquisitions",
                r.lost, r.inconsistent, r.overlaps
            ),
        )
    } else if r.recovers && r.wedged {
        (
            false,
            "FAIL: a lock that recovers from a dead holder wedged".into(),
        )
    } else if r.recovers && r.holder_kills == 0 {
        (
            false,
            "INCONCLUSIVE: no holder was killed; run longer or kill more often".into(),
        )
    } else if r.recovers && r.recoveries < r.holder_kills {
        (
            false,
            format!(
                "FAIL: {} holders died holding it but only {} acquisitions reported a dead owner",
                r.holder_kills, r.recoveries
            ),
        )
    } else if r.recovers {
        (
            true,
            format!(
                "PASS: {} holders killed holding it, every death recovered ({} acquisitions reported a dead owner, {} half-written updates repaired), 0 lost, 0 inconsistent",
                r.holder_kills, r.recoveries, r.repairs
            ),
        )
    } else if r.wedged {
        (
            true,
            format!(
                "PASS (wedges by design): it cannot tell that its holder died; the wedge was detected after {} kills ({} of a holder), 0 lost, 0 inconsistent",
                r.kills_to_wedge.unwrap_or(0),
                r.holder_kills_to_wedge.unwrap_or(0)
            ),
        )
    } else {
        (false, "INCONCLUSIVE: it never wedged (no holder died holding it); run longer or kill more often".into())
    };
}

/// Which locks the torture runs: the registry's locks that live in the
/// region (the others cannot be shared by processes).
pub fn lockable(mode: SyncMode) -> bool {
    struct IsRegionLock;
    impl ModeVisitor for IsRegionLock {
        type Output = bool;
        fn unsynchronised(self) -> bool {
            false
        }
        fn fetch_add(self) -> bool {
            false
        }
        fn region_lock<L: RawLockTimed + InspectLock + 'static>(self) -> bool {
            true
        }
        fn local_lock<M: LocalLock>(self) -> bool {
            false
        }
    }
    mode.visit(IsRegionLock)
}

/// Runs the torture of `mode`'s lock (one of [`lockable`]).
pub fn run(mode: SyncMode, setup: &Setup, progress: Progress<'_>) -> Result<Report, RaceError> {
    struct Run<'a, 'p> {
        setup: &'a Setup,
        progress: Progress<'p>,
        name: &'static str,
    }
    impl ModeVisitor for Run<'_, '_> {
        type Output = Result<Report, RaceError>;
        fn unsynchronised(self) -> Self::Output {
            Err(RaceError::Config(format!(
                "{} has no lock to torture",
                self.name
            )))
        }
        fn fetch_add(self) -> Self::Output {
            Err(RaceError::Config(format!(
                "{} has no lock to torture",
                self.name
            )))
        }
        fn region_lock<L: RawLockTimed + InspectLock + 'static>(self) -> Self::Output {
            torture::<L>(self.setup, self.progress)
        }
        fn local_lock<M: LocalLock>(self) -> Self::Output {
            Err(RaceError::Config(format!(
                "{} lives in one process's memory; the torture kills processes",
                self.name
            )))
        }
    }
    mode.visit(Run {
        setup,
        progress,
        name: mode.name(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.below(1000)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
        assert_ne!(
            xs,
            (0..100)
                .map(|_| Rng::new(8).below(1000))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_half_written_update_is_rolled_forward_and_overlaps_are_lost_updates() {
        let r = Record::default();
        let (repairs, inconsistent, lost) =
            (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        // A holder died after two of four words of update 1.
        r.journal_slot.store(3, Relaxed);
        r.journal_count.store(1, Relaxed);
        r.journal_seq.store(1, Relaxed);
        r.words[0].store(word(1, 0), Relaxed);
        r.words[1].store(word(1, 1), Relaxed);
        repair_and_check(&r, &repairs, &inconsistent, &lost);
        assert_eq!(
            (
                repairs.load(Relaxed),
                inconsistent.load(Relaxed),
                lost.load(Relaxed)
            ),
            (1, 0, 0)
        );
        assert_eq!(r.seq.load(Relaxed), 1);
        assert_eq!(r.per_worker[3].load(Relaxed), 1);
        assert!((0..WORDS).all(|i| r.words[i].load(Relaxed) == word(1, i)));
        // Two holders at once: both wrote update 2.
        r.per_worker[0].store(1, Relaxed);
        r.per_worker[1].store(1, Relaxed);
        r.seq.store(2, Relaxed);
        for i in 0..WORDS {
            r.words[i].store(word(2, i), Relaxed);
        }
        repair_and_check(&r, &repairs, &inconsistent, &lost);
        assert_eq!(lost.load(Relaxed), 1);
        // A torn record without a journal: inconsistent.
        r.words[2].store(12345, Relaxed);
        repair_and_check(&r, &repairs, &inconsistent, &lost);
        assert_eq!(inconsistent.load(Relaxed), 1);
    }
}
