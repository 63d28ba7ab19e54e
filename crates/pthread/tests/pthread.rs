//! The process-shared pthread mutexes inside a real region: exact counts
//! across processes and threads, owner-death recovery, try_lock.

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use shm::lock::{Acquired, Lock, RawLock};
use shm::{InitCtx, Region, RegionOptions, Shared, ShmName};
use shm_pthread::{PlainMutex, RobustMutex};
use std::sync::atomic::{AtomicU64, Ordering};

#[repr(C)]
struct Payload<L: RawLock> {
    lock: L::State,
    counter: AtomicU64,
}

// SAFETY: repr(C), the lock state follows RawLock's rules, the counter is atomic.
unsafe impl<L: RawLock> Shared for Payload<L> {
    type Init = ();
    fn type_name() -> String {
        format!("test/{}", L::NAME)
    }
    unsafe fn init_in_place(this: *mut Self, _: (), ctx: &InitCtx<'_>) -> Result<(), String> {
        // SAFETY: forwarded from the caller.
        unsafe { L::init(&raw mut (*this).lock, ctx) }.map_err(|e| e.to_string())
    }
    fn destroy(&self, ctx: &InitCtx<'_>) {
        L::destroy(&self.lock, ctx);
    }
}

fn bump<L: RawLock>(p: &Payload<L>, n: u64) {
    let lock = Lock::<L>::attach(&p.lock).unwrap();
    for _ in 0..n {
        let _g = lock.lock().unwrap();
        let v = p.counter.load(Ordering::Relaxed);
        p.counter.store(v + 1, Ordering::Relaxed);
    }
}

/// Forks `procs` children that open the region by name and bump it.
fn in_processes<L: RawLock>(name: &ShmName, procs: u32, n: u64) {
    let mut kids = vec![];
    for _ in 0..procs {
        // SAFETY: the child only opens the region, runs the loop and _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let code = std::panic::catch_unwind(|| {
                    let r = Region::<Payload<L>>::open(name, &RegionOptions::default()).unwrap();
                    bump::<L>(&r, n);
                })
                .map_or(1, |_| 0);
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(code) };
            }
            ForkResult::Parent { child } => kids.push(child),
        }
    }
    for k in kids {
        assert_eq!(waitpid(k, None).unwrap(), WaitStatus::Exited(k, 0));
    }
}

fn exact<L: RawLock>() {
    for workers in [2u32, 4] {
        let name = ShmName::unique(&format!("pthread-test-{}", L::NAME));
        let r = Region::<Payload<L>>::create(&name, &RegionOptions::default(), ()).unwrap();
        in_processes::<L>(&name, workers, 50_000);
        assert_eq!(r.counter.load(Ordering::Relaxed), workers as u64 * 50_000);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| bump::<L>(&r, 50_000));
            }
        });
        assert_eq!(
            r.counter.load(Ordering::Relaxed),
            2 * workers as u64 * 50_000
        );
    }
}

#[test]
fn robust_mutex_counts_exactly() {
    exact::<RobustMutex>();
}

#[test]
fn plain_mutex_counts_exactly() {
    exact::<PlainMutex>();
}

#[test]
fn try_lock_sees_a_held_mutex() {
    let name = ShmName::unique("pthread-test-try");
    let r = Region::<Payload<RobustMutex>>::create(&name, &RegionOptions::default(), ()).unwrap();
    let lock = Lock::<RobustMutex>::attach(&r.lock).unwrap();
    let g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let other = Lock::<RobustMutex>::attach(&r.lock).unwrap();
            assert!(other.try_lock().unwrap().is_none());
            assert!(
                other
                    .lock_timeout(std::time::Duration::from_millis(50))
                    .unwrap()
                    .is_none()
            );
        });
    });
    drop(g);
    assert!(lock.try_lock().unwrap().is_some());
}

#[test]
fn a_dead_owner_is_reported_and_the_mutex_recovers() {
    let name = ShmName::unique("pthread-test-owner-death");
    let r = Region::<Payload<RobustMutex>>::create(&name, &RegionOptions::default(), ()).unwrap();
    // SAFETY: the child only locks through the region and _exits.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let r = Region::<Payload<RobustMutex>>::open(&name, &RegionOptions::default()).unwrap();
            let lock = Lock::<RobustMutex>::attach(&r.lock).unwrap();
            std::mem::forget(lock.lock().unwrap()); // die holding it
            // SAFETY: ends the child at once, still holding the mutex.
            unsafe { libc::_exit(0) };
        }
        ForkResult::Parent { child } => {
            assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
        }
    }
    let lock = Lock::<RobustMutex>::attach(&r.lock).unwrap();
    let g = lock.lock().unwrap();
    assert_eq!(g.acquired(), Acquired::PreviousOwnerDied { owner: None });
    drop(g);
    // Made consistent: it keeps working, cleanly.
    assert_eq!(lock.lock().unwrap().acquired(), Acquired::Clean);
    bump::<RobustMutex>(&r, 1000);
    assert_eq!(r.counter.load(Ordering::Relaxed), 1000);
}
