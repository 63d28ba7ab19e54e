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
use std::time::Duration;
use testkit::{Payload, bump, child, create, die_holding, reap};

#[test]
fn robust_mutex_four_threads_count_exactly() {
    testkit::threads_count_exactly::<RobustMutex>();
}

#[test]
fn plain_mutex_four_threads_count_exactly() {
    testkit::threads_count_exactly::<PlainMutex>();
}

#[test]
fn robust_mutex_processes_count_exactly() {
    testkit::processes_count_exactly::<RobustMutex>(50_000);
}

#[test]
fn plain_mutex_processes_count_exactly() {
    testkit::processes_count_exactly::<PlainMutex>(50_000);
}

#[test]
fn robust_mutex_try_lock_sees_it_held() {
    testkit::try_lock_sees_it_held::<RobustMutex>();
}

/// glibc's owner field names the holding thread, and nobody once free: what
/// tells a wedged plain mutex from a busy one.
#[test]
fn last_holder_is_the_holding_thread() {
    fn check<L: RawLockTimed + 'static>() {
        let (_, r) = create::<L>("owner");
        let lock = Lock::<L>::attach(&r.lock.0).unwrap();
        assert_eq!(lock.raw().last_holder(lock.state()), None);
        let g = lock.lock().unwrap();
        assert_eq!(lock.raw().last_holder(lock.state()), Some(shm::gettid()));
        drop(g);
        assert_eq!(lock.raw().last_holder(lock.state()), None);
    }
    check::<RobustMutex>();
    check::<PlainMutex>();
}

#[test]
fn plain_mutex_try_lock_sees_it_held() {
    testkit::try_lock_sees_it_held::<PlainMutex>();
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
