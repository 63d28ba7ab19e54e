//! The process-shared pthread mutexes inside a real region: exact counts
//! across threads and processes, owner-death recovery, try_lock and the
//! timed lock.
//!
//! Children never create objects: they open the region by name and
//! `_exit`; every region is created by the test and unlinked when its
//! `Region` drops, also when an assertion fails.

use shm::lock::{Acquired, Lock, RawLockTimed};
use shm::{Region, RegionOptions};
use shm_pthread::{PlainMutex, RobustMutex};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use testkit::{Payload, bump, child, create, die_holding, reap};

fn threads_count_exactly<L: RawLockTimed + 'static>() {
    let (_, r) = create::<L>("threads");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| bump::<L>(&r, 100_000));
        }
    });
    assert_eq!(r.counter.load(Ordering::Relaxed), 400_000);
}

fn processes_count_exactly<L: RawLockTimed + 'static>() {
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

fn try_lock_sees_it_held<L: RawLockTimed + 'static>() {
    let (_, r) = create::<L>("try");
    let lock = Lock::<L>::attach(&r.lock.0).unwrap();
    let g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let other = Lock::<L>::attach(&r.lock.0).unwrap();
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
            let other = Lock::<L>::attach(&r.lock.0).unwrap();
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
    let lock = Lock::<RobustMutex>::attach(&r.lock.0).unwrap();
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
        let lock = Lock::<RobustMutex>::attach(&r.lock.0).unwrap();
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
