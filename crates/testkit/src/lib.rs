//! What the lock crates' integration tests share (a dev-dependency only):
//! a region payload holding a lock and a counter, a fork helper whose child
//! never returns into the test harness, reaping that asserts a clean exit,
//! and a guard that keeps forking tests from running at the same time.
//!
//! Children never create objects: they open the region by name and end
//! with `_exit` ([`shm::process::fork_child`]); every region is created by
//! the test and unlinked when its `Region` drops, also when an assertion
//! fails.

use shm::lock::{Acquired, Lock, LockState, RawLock, RawLockTimed};
use shm::process::{Child, Exit};
use shm::{CachePadded, InitCtx, Region, RegionOptions, Shared, ShmName};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The test region's payload: the lock on its own line, the counter on its
/// own line, then a few control words.
#[repr(C)]
pub struct Payload<L: RawLock> {
    /// The lock under test.
    pub lock: CachePadded<LockState<L>>,
    /// Incremented under the lock as a separate load and store.
    pub counter: CachePadded<AtomicU64>,
    /// The start gate: children count themselves in (or say they are
    /// ready) and wait until the parent opens it.
    pub gate: shm_futex::Gate,
    /// A child's tid, reported to the parent.
    pub tid: AtomicI32,
    /// A spare futex word.
    pub word: AtomicU32,
}
shm::any_bits!([L: RawLock] Payload<L> { lock, counter, gate, tid, word });

// SAFETY: #[repr(C)], no pointers; every field is an atomic or a lock state,
// which `RawLock` requires to be #[repr(C)], valid when zeroed and
// interior-mutable; `init_in_place` initialises the lock state.
unsafe impl<L: RawLock + 'static> Shared for Payload<L> {
    type Init = ();

    fn type_name() -> String {
        format!("testkit/{}", L::NAME)
    }

    unsafe fn init_in_place(this: *mut Self, _: (), ctx: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: `this` is aligned, zeroed and not yet shared (our caller's
        // promise), so its `lock` field is too.
        unsafe { LockState::init(&raw mut (*this).lock.0, ctx) }.map_err(|e| e.to_string())
    }

    unsafe fn destroy(&self, ctx: &InitCtx<'_>) {
        // SAFETY: forwarded from our caller (Shared::destroy).
        unsafe { self.lock.0.destroy(ctx) };
    }

    fn before_unmap(&self) {
        self.lock.0.before_unmap();
    }
}

impl<L: RawLock> std::fmt::Debug for Payload<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("lock", &L::NAME)
            .field("counter", &self.counter.0)
            .finish_non_exhaustive()
    }
}

/// Creates a fresh region for lock `L`, named for `purpose` and the lock.
pub fn create<L: RawLock + 'static>(purpose: &str) -> (ShmName, Region<Payload<L>>) {
    let name = ShmName::unique(&format!("test-{purpose}-{}", L::NAME));
    let region = Region::create(&name, &RegionOptions::default(), ()).expect("create region");
    (name, region)
}

/// Opens an existing region by name (what a child does).
pub fn open<L: RawLock + 'static>(name: &ShmName) -> Option<Region<Payload<L>>> {
    Region::open(name, &RegionOptions::default()).ok()
}

/// The C `counter++`: a separate load and store, so only the lock keeps
/// updates from being lost.
#[inline]
pub fn increment(counter: &AtomicU64) {
    let v = counter.load(Ordering::Relaxed);
    counter.store(v + 1, Ordering::Relaxed);
}

/// `n` locked increments of the payload's counter.
pub fn bump<L: RawLock + 'static>(p: &Payload<L>, n: u64) {
    let lock = Lock::<L>::attach(&p.lock.0).expect("attach");
    for _ in 0..n {
        let _g = lock.lock().expect("lock");
        increment(&p.counter.0);
    }
}

/// One forking test at a time in a test binary: a fork while another test
/// thread holds an allocator, `Once` or glibc `sem_open` lock would copy it
/// locked into the child.
pub fn serial() -> MutexGuard<'static, ()> {
    static FORK: Mutex<()> = Mutex::new(());
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forks; the child runs `body` and `_exit`s with its return value (101 if
/// it panicked), never returning into the test harness. Dropping the
/// handle kills and reaps the child (a failed test leaves none behind).
pub fn fork_child(body: impl FnOnce() -> i32) -> Child {
    // SAFETY: test children only open the region by name and use the lock
    // and atomics; forking tests hold `serial()`, so no other test thread is
    // inside a lock the child would need.
    unsafe { shm::process::fork_child(body) }.expect("fork")
}

/// [`fork_child`] for a body that reports failure by panicking: status 0
/// if it returned.
pub fn child(body: impl FnOnce()) -> Child {
    fork_child(|| {
        body();
        0
    })
}

/// Waits for `child` and asserts it exited with status 0.
pub fn expect_exit_ok(mut child: Child) {
    match child.wait().expect("waitpid") {
        Exit::Code(0) => {}
        other => panic!("child {} {other}", child.pid()),
    }
}

/// [`expect_exit_ok`] for each.
pub fn reap(kids: Vec<Child>) {
    kids.into_iter().for_each(expect_exit_ok);
}

/// How a child run by [`run_child_capturing`] ended, and what it wrote to
/// stderr.
#[derive(Debug)]
pub struct ChildEnd {
    /// From `waitpid`.
    pub status: Exit,
    /// Everything the child wrote to file descriptor 2.
    pub stderr: String,
}

impl ChildEnd {
    /// Asserts that the child was killed by `SIGABRT` (what a fatal error in
    /// shmlab's locks does) and returns its stderr. The panic message
    /// quotes what the child did instead, stderr included.
    pub fn expect_abort(self) -> String {
        match self.status {
            Exit::Signal(libc::SIGABRT) => self.stderr,
            other => panic!(
                "expected the child to abort (SIGABRT), it ended with {other:?}; its stderr:\n{}",
                self.stderr
            ),
        }
    }

    /// Asserts that the child exited with status 0.
    pub fn expect_exit_ok(self) {
        assert!(
            self.status.success(),
            "expected the child to exit with 0, it ended with {:?}; its stderr:\n{}",
            self.status,
            self.stderr
        );
    }
}

/// A child forked by [`spawn_capturing`]: wait for it with
/// [`wait`](Self::wait).
#[derive(Debug)]
pub struct CapturedChild {
    child: Child,
    path: std::path::PathBuf,
}

/// [`fork_child`] for a child that may abort: its stderr goes to a private
/// file (so the abort message can be checked and stays out of the test's
/// output) and it dumps no core. Hold [`serial`] around it, as around every
/// fork.
pub fn spawn_capturing(body: impl FnOnce() -> i32) -> CapturedChild {
    use std::sync::atomic::AtomicU32;
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "shmlab-testkit-stderr-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).expect("create the child's stderr file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let child = fork_child(move || {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on a valid rlimit and on a descriptor
        // this process owns (fork duplicated the parent's `file` into us).
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::dup2(fd, 2);
        }
        // The test harness captures this thread's output, and the child
        // inherited that: a panic's message would vanish into the capture
        // buffer. Write it to the file instead.
        std::panic::set_hook(Box::new(|info| {
            let line = format!("child panicked: {info}\n");
            // SAFETY: a valid buffer for its length, written to fd 2.
            let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
        }));
        body()
    });
    CapturedChild { child, path }
}

impl CapturedChild {
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Waits at most `limit` for the child to end (then kills it, and the
    /// test fails: a child that should have aborted must not hang the
    /// suite); returns how it ended and its stderr.
    pub fn wait(mut self, limit: Duration) -> ChildEnd {
        let (exit, killed) = self.child.stop_by(Instant::now() + limit).expect("waitpid");
        let status = (!killed).then_some(exit);
        let stderr = std::fs::read(&self.path).unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let Some(status) = status else {
            panic!(
                "child {} still running after {limit:?}: killed; its stderr:\n{stderr}",
                self.child.pid()
            );
        };
        ChildEnd { status, stderr }
    }
}

/// [`spawn_capturing`], then [`CapturedChild::wait`].
pub fn run_child_capturing(limit: Duration, body: impl FnOnce() -> i32) -> ChildEnd {
    spawn_capturing(body).wait(limit)
}

/// In a child: takes the lock and `_exit`s at once, still holding it and
/// still mapping the region, as a crash inside the critical section would.
pub fn die_holding<L: RawLock + 'static>(p: &Payload<L>) -> ! {
    let lock = Lock::<L>::attach(&p.lock.0).expect("attach");
    std::mem::forget(lock.lock().expect("lock"));
    shm::process::exit_now(0)
}

/// Polls `cond` every millisecond for up to `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < limit,
            "gave up waiting for {what} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every lock's first promise, with threads: 4 threads x 100,000 locked
/// increments end at exactly 400,000.
pub fn threads_count_exactly<L: RawLock + 'static>() {
    let (_, r) = create::<L>("threads");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| bump::<L>(&r, 100_000));
        }
    });
    assert_eq!(r.counter.load(Ordering::Relaxed), 400_000);
}

/// The same with 2 and then 4 separate processes that open the region by
/// name, `per_worker` increments each: exactly `procs x per_worker`.
pub fn processes_count_exactly<L: RawLock + 'static>(per_worker: u64) {
    for procs in [2u64, 4] {
        let (name, r) = create::<L>("procs");
        let kids = (0..procs)
            .map(|_| {
                let name = name.clone();
                child(move || {
                    let r = open::<L>(&name).expect("open the region by name");
                    bump::<L>(&r, per_worker);
                })
            })
            .collect();
        reap(kids);
        assert_eq!(r.counter.load(Ordering::Relaxed), procs * per_worker);
    }
}

/// While one thread holds the lock, another's `try_lock` fails at once and
/// its `lock_timeout` gives up after (not before) the timeout; once it is
/// released, both succeed cleanly. Returns the region for further checks.
pub fn try_lock_sees_it_held<L: RawLockTimed + 'static>() -> Region<Payload<L>> {
    let (_, r) = create::<L>("try");
    let lock = Lock::<L>::attach(&r.lock.0).expect("attach");
    let g = lock.lock().expect("lock");
    let wait = Duration::from_millis(50);
    std::thread::scope(|s| {
        s.spawn(|| {
            let other = Lock::<L>::attach(&r.lock.0).expect("attach");
            assert!(other.try_lock().expect("try_lock").is_none());
            let t0 = Instant::now();
            assert!(other.lock_timeout(wait).expect("lock_timeout").is_none());
            assert!(t0.elapsed() >= wait, "gave up early");
        });
    });
    drop(g);
    std::thread::scope(|s| {
        s.spawn(|| {
            let other = Lock::<L>::attach(&r.lock.0).expect("attach");
            let g = other
                .try_lock()
                .expect("try_lock")
                .expect("free after unlock");
            assert_eq!(g.acquired(), Acquired::Clean);
            drop(g);
            let g = other.lock_timeout(wait).expect("lock_timeout");
            assert_eq!(g.map(|g| g.acquired()), Some(Acquired::Clean));
        });
    });
    drop(lock);
    r
}
