//! Both locks inside a real region, used by threads of one process.

// These use real threads and processes; under `cfg(loom)` see `loom.rs`.
#![cfg(not(loom))]

use shm::lock::{Acquired, Lock, RawLockTimed};
use shm_futex::{FutexLock, SpinLock};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use testkit::{Payload, create, increment};

const ITERS: u64 = 200_000;

fn counter_threads<L: RawLockTimed + 'static>(threads: u64) {
    let (name, region) = create::<L>("threads");
    let payload: &Payload<L> = &region;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let lock = Lock::<L>::attach(&payload.lock).expect("attach");
                for _ in 0..ITERS {
                    let g = lock.lock().expect("lock");
                    assert_eq!(g.acquired(), Acquired::Clean);
                    increment(&payload.counter);
                }
            });
        }
    });
    assert_eq!(payload.counter.load(Ordering::Relaxed), threads * ITERS);
    drop(region);
    assert!(!name.path().exists(), "{name} left in /dev/shm");
}

#[test]
fn futex_2_threads() {
    counter_threads::<FutexLock>(2);
}

#[test]
fn futex_4_threads() {
    counter_threads::<FutexLock>(4);
}

#[test]
fn spin_2_threads() {
    counter_threads::<SpinLock>(2);
}

#[test]
fn spin_4_threads() {
    counter_threads::<SpinLock>(4);
}

/// This thread's CPU time (user + system) and voluntary context switches,
/// from `getrusage(RUSAGE_THREAD)`.
fn thread_usage() -> (Duration, i64) {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `ru` is valid for writes of one `rusage`; RUSAGE_THREAD is a
    // valid `who` on Linux.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    // SAFETY: getrusage succeeded, so it filled `ru` in.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_nvcsw)
}

/// A waiter behind a lock held for 300 ms gets it only after the release,
/// and sleeps meanwhile: little CPU time, few voluntary context switches
/// (one per timed-out owner check, about six).
#[test]
fn futex_waiter_sleeps() {
    let (_name, region) = create::<FutexLock>("sleeps");
    let payload: &Payload<FutexLock> = &region;
    let lock = Lock::<FutexLock>::attach(&payload.lock).unwrap();
    let hold = Duration::from_millis(300);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let released = std::sync::Mutex::new(None::<Instant>);
    std::thread::scope(|s| {
        s.spawn(|| {
            let g = lock.lock().unwrap();
            held_tx.send(()).unwrap();
            std::thread::sleep(hold);
            *released.lock().unwrap() = Some(Instant::now());
            drop(g);
        });
        let lock = &lock;
        let waiter = s.spawn(move || {
            held_rx.recv().unwrap();
            let (cpu0, csw0) = thread_usage();
            let t0 = Instant::now();
            let g = lock.lock().unwrap();
            let got = Instant::now();
            let (cpu1, csw1) = thread_usage();
            assert_eq!(g.acquired(), Acquired::Clean);
            drop(g);
            (got, got - t0, cpu1 - cpu0, csw1 - csw0)
        });
        let (got, wall, cpu, switches) = waiter.join().unwrap();
        let released = released.lock().unwrap().expect("holder released");
        eprintln!("waiter: wall {wall:?}, cpu {cpu:?}, {switches} voluntary switches");
        assert!(
            got >= released,
            "lock() returned before the holder released"
        );
        assert!(
            wall >= hold - Duration::from_millis(50),
            "waited only {wall:?}"
        );
        assert!(
            cpu * 10 < wall,
            "waiter used {cpu:?} CPU in {wall:?}: it spun"
        );
        assert!(
            (1..=30).contains(&switches),
            "{switches} voluntary switches"
        );
    });
}

/// `lock_timeout` on a lock held by a live thread gives up in time, and the
/// trait method (what `Lock::lock_timeout` calls) is the native one.
#[test]
fn lock_timeout_gives_up_on_live_holder() {
    fn check<L: RawLockTimed + 'static>() {
        let (_name, region) = create::<L>("timeout");
        let payload: &Payload<L> = &region;
        let lock = Lock::<L>::attach(&payload.lock).unwrap();
        let g = lock.lock().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let t0 = Instant::now();
                let r = lock.lock_timeout(Duration::from_millis(200)).unwrap();
                let waited = t0.elapsed();
                assert!(r.is_none(), "{}: got a held lock", L::NAME);
                assert!(
                    waited >= Duration::from_millis(200),
                    "{}: {waited:?}",
                    L::NAME
                );
                assert!(waited < Duration::from_secs(2), "{}: {waited:?}", L::NAME);
                assert!(lock.try_lock().unwrap().is_none());
            });
        });
        assert_eq!(lock.raw().last_holder(lock.state()), Some(shm::gettid()));
        drop(g);
        assert_eq!(lock.raw().last_holder(lock.state()), None);
        let g = lock
            .lock_timeout(Duration::ZERO)
            .unwrap()
            .expect("free lock");
        assert_eq!(g.acquired(), Acquired::Clean);
    }
    check::<FutexLock>();
    check::<SpinLock>();
}
