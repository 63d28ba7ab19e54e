//! The process-shared pthread mutexes inside a real region: exact counts
//! across threads and processes, owner-death recovery, try_lock and the
//! timed lock.
//!
//! Children never create objects: they open the region by name and
//! `_exit`; every region is created by the test and unlinked when its
//! `Region` drops, also when an assertion fails.

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use shm::lock::{Acquired, Lock, RawLock};
use shm::{InitCtx, Region, RegionOptions, Shared, ShmName};
use shm_pthread::{PlainMutex, RobustMutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The lock state plus the counter it guards.
#[repr(C)]
struct Payload<L: RawLock> {
    lock: L::State,
    counter: AtomicU64,
}

// SAFETY: repr(C), no pointers; the lock state follows RawLock's rules
// (valid zeroed, interior-mutable) and the counter is atomic.
unsafe impl<L: RawLock> Shared for Payload<L> {
    type Init = ();
    fn type_name() -> String {
        format!("test/{}", L::NAME)
    }
    unsafe fn init_in_place(this: *mut Self, _: (), ctx: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: forwarded from the caller (zeroed, aligned, unshared).
        unsafe { L::init(&raw mut (*this).lock, ctx) }.map_err(|e| e.to_string())
    }
    fn destroy(&self, ctx: &InitCtx<'_>) {
        L::destroy(&self.lock, ctx);
    }
}

fn create<L: RawLock>(purpose: &str) -> (ShmName, Region<Payload<L>>) {
    let name = ShmName::unique(&format!("pthread-test-{purpose}-{}", L::NAME));
    let r = Region::<Payload<L>>::create(&name, &RegionOptions::default(), ()).unwrap();
    (name, r)
}

/// `n` increments as C's `counter++`: a separate load and store, so only
/// the lock keeps them from being lost.
fn bump<L: RawLock>(p: &Payload<L>, n: u64) {
    let lock = Lock::<L>::attach(&p.lock).unwrap();
    for _ in 0..n {
        let _g = lock.lock().unwrap();
        let v = p.counter.load(Ordering::Relaxed);
        p.counter.store(v + 1, Ordering::Relaxed);
    }
}

/// Forks a child that runs `body` and `_exit`s: 0 if it returned, 1 if it
/// panicked.
fn child(body: impl FnOnce()) -> Pid {
    // SAFETY: the child only runs `body` (which opens existing objects by
    // name and never creates any) and then `_exit`s, so it runs none of the
    // parent's destructors and never returns into the test harness.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).map_or(1, |_| 0);
            // SAFETY: ends the child at once, without atexit handlers or
            // the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    }
}

fn reap(kids: Vec<Pid>) {
    for k in kids {
        assert_eq!(waitpid(k, None).unwrap(), WaitStatus::Exited(k, 0));
    }
}

/// Locks and `_exit`s at once, still holding the mutex and still mapping
/// the region, as a crash would: the kernel marks the mutex `OWNER_DIED`
/// when it walks the dying thread's robust list at exit, and it can only do
/// that for a mutex that is still mapped (a holder that unmapped the region
/// first would leave it wedged).
fn die_holding(r: &Payload<RobustMutex>) -> ! {
    let lock = Lock::<RobustMutex>::attach(&r.lock).unwrap();
    std::mem::forget(lock.lock().unwrap());
    // SAFETY: ends the child at once, without the parent's destructors.
    unsafe { libc::_exit(0) }
}

fn threads_count_exactly<L: RawLock>() {
    let (_, r) = create::<L>("threads");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| bump::<L>(&r, 100_000));
        }
    });
    assert_eq!(r.counter.load(Ordering::Relaxed), 400_000);
}

fn processes_count_exactly<L: RawLock + 'static>() {
    for procs in [2u64, 4] {
        let (name, r) = create::<L>("procs");
        let kids = (0..procs)
            .map(|_| {
                let name = name.clone();
                child(move || {
                    let r = Region::<Payload<L>>::open(&name, &RegionOptions::default()).unwrap();
                    bump::<L>(&r, 50_000);
                })
            })
            .collect();
        reap(kids);
        assert_eq!(r.counter.load(Ordering::Relaxed), procs * 50_000);
    }
}

fn try_lock_sees_it_held<L: RawLock>() {
    let (_, r) = create::<L>("try");
    let lock = Lock::<L>::attach(&r.lock).unwrap();
    let g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let other = Lock::<L>::attach(&r.lock).unwrap();
            assert!(other.try_lock().unwrap().is_none());
            let t0 = Instant::now();
            assert!(
                other
                    .lock_timeout(Duration::from_millis(50))
                    .unwrap()
                    .is_none()
            );
            assert!(t0.elapsed() >= Duration::from_millis(50), "gave up early");
        });
    });
    drop(g);
    std::thread::scope(|s| {
        s.spawn(|| {
            let other = Lock::<L>::attach(&r.lock).unwrap();
            let g = other.try_lock().unwrap().expect("free after unlock");
            assert_eq!(g.acquired(), Acquired::Clean);
            drop(g);
            let g = other.lock_timeout(Duration::from_millis(50)).unwrap();
            assert_eq!(g.map(|g| g.acquired()), Some(Acquired::Clean));
        });
    });
}

#[test]
fn robust_mutex_four_threads_count_exactly() {
    threads_count_exactly::<RobustMutex>();
}

#[test]
fn plain_mutex_four_threads_count_exactly() {
    threads_count_exactly::<PlainMutex>();
}

#[test]
fn robust_mutex_processes_count_exactly() {
    processes_count_exactly::<RobustMutex>();
}

#[test]
fn plain_mutex_processes_count_exactly() {
    processes_count_exactly::<PlainMutex>();
}

#[test]
fn robust_mutex_try_lock_sees_it_held() {
    try_lock_sees_it_held::<RobustMutex>();
}

#[test]
fn plain_mutex_try_lock_sees_it_held() {
    try_lock_sees_it_held::<PlainMutex>();
}

#[test]
fn a_dead_owner_is_reported_and_the_mutex_recovers() {
    let (name, r) = create::<RobustMutex>("owner-death");
    let kid = child(move || {
        let r = Region::<Payload<RobustMutex>>::open(&name, &RegionOptions::default()).unwrap();
        die_holding(&r);
    });
    reap(vec![kid]);
    let lock = Lock::<RobustMutex>::attach(&r.lock).unwrap();
    let g = lock.lock().unwrap();
    assert_eq!(g.acquired(), Acquired::PreviousOwnerDied { owner: None });
    drop(g);
    // Made consistent: it keeps working, cleanly, for threads and processes.
    assert_eq!(lock.lock().unwrap().acquired(), Acquired::Clean);
    bump::<RobustMutex>(&r, 1000);
    assert_eq!(r.counter.load(Ordering::Relaxed), 1000);
}

#[test]
fn a_dead_owner_is_reported_by_try_lock_and_lock_timeout_too() {
    for via_timeout in [false, true] {
        let (name, r) = create::<RobustMutex>("owner-death-try");
        let kid = child(move || {
            let r = Region::<Payload<RobustMutex>>::open(&name, &RegionOptions::default()).unwrap();
            die_holding(&r);
        });
        reap(vec![kid]);
        let lock = Lock::<RobustMutex>::attach(&r.lock).unwrap();
        let g = if via_timeout {
            lock.lock_timeout(Duration::from_secs(5)).unwrap()
        } else {
            lock.try_lock().unwrap()
        };
        let how = g.map(|g| g.acquired());
        assert_eq!(how, Some(Acquired::PreviousOwnerDied { owner: None }));
        assert_eq!(
            lock.try_lock().unwrap().map(|g| g.acquired()),
            Some(Acquired::Clean)
        );
    }
}
