//! What the integration tests share: a region payload holding a lock and a
//! counter, a fork helper whose child never returns into the harness, and a
//! lock that keeps forking tests from running at the same time.

#![allow(dead_code)] // each test binary uses a different part

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use shm::lock::RawLock;
use shm::{CachePadded, InitCtx, Region, RegionOptions, Shared, ShmName};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The test region's payload: the lock on its own line, the counter on its
/// own line, then a few control words.
#[repr(C)]
pub struct Payload<L: RawLock> {
    /// The lock under test.
    pub lock: CachePadded<L::State>,
    /// Incremented under the lock as a separate load and store.
    pub counter: CachePadded<AtomicU64>,
    /// Workers that are ready.
    pub arrived: AtomicU32,
    /// 0 until the parent releases the workers; a futex word.
    pub go: AtomicU32,
    /// A child's tid, reported to the parent.
    pub tid: AtomicI32,
    /// A spare futex word.
    pub word: AtomicU32,
}

// SAFETY: #[repr(C)], no pointers; every field is an atomic or a lock state,
// which `RawLock` requires to be #[repr(C)], valid when zeroed and
// interior-mutable.
unsafe impl<L: RawLock + 'static> Shared for Payload<L> {
    type Init = ();

    fn type_name() -> String {
        format!("futex-test/{}", L::NAME)
    }

    unsafe fn init_in_place(this: *mut Self, _: (), ctx: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: `this` is aligned, zeroed and not yet shared (our caller's
        // promise), so its `lock` field is too.
        unsafe { L::init(&raw mut (*this).lock.0, ctx) }.map_err(|e| e.to_string())
    }
}

/// Creates a fresh region for lock `L`.
pub fn create<L: RawLock + 'static>(purpose: &str) -> (ShmName, Region<Payload<L>>) {
    let name = ShmName::unique(&format!("{purpose}-{}", L::NAME));
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

/// One forking test at a time in this binary: a fork while another test
/// thread holds an allocator or `Once` lock would copy it locked.
pub fn serial() -> MutexGuard<'static, ()> {
    static FORK: Mutex<()> = Mutex::new(());
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forks; the child runs `body` and `_exit`s with its return value (101 if
/// it panicked), never returning into the test harness.
pub fn fork_child(body: impl FnOnce() -> i32) -> Pid {
    // SAFETY: the child only runs `body` (which opens the region by name,
    // uses the lock and atomics) and then `_exit`s; forking tests are
    // serialised by `serial()`, so no other test thread is mid-allocation or
    // mid-initialisation when the child is copied.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: ends the child at once: no atexit handlers, no
            // destructors of the parent's objects (the child did not create
            // any shared-memory object, so nothing is unlinked twice).
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    }
}

/// Waits for `pid` and asserts it exited with status 0.
pub fn expect_exit_ok(pid: Pid) {
    match waitpid(pid, None).expect("waitpid") {
        WaitStatus::Exited(_, 0) => {}
        other => panic!("child {pid} ended with {other:?}"),
    }
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
