//! Both locks and the futex calls across forked processes that open the
//! region by name. Its own test binary, and every test here holds
//! `testkit::serial()`, so forks never copy another test mid-flight.

// These use real threads and processes; under `cfg(loom)` see `loom.rs`.
#![cfg(not(loom))]

use nix::sys::signal::Signal;
use shm::lock::{Acquired, Lock, RawLockTimed};
use shm_futex::{FutexLock, SpinLock, futex_wait, futex_wake};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use testkit::{create, expect_exit_ok, fork_child, increment, open, serial, wait_until};

const ITERS: u64 = 200_000;
const PATIENCE: Duration = Duration::from_secs(10);

fn counter_procs<L: RawLockTimed + 'static>(procs: u64) {
    let _serial = serial();
    let (name, region) = create::<L>("procs");
    let kids: Vec<_> = (0..procs)
        .map(|_| {
            fork_child(|| {
                let Some(r) = open::<L>(&name) else { return 10 };
                let Ok(lock) = Lock::<L>::attach(&r.lock) else {
                    return 11;
                };
                if r.gate.arrive_and_wait(|| true).is_err() {
                    return 13;
                }
                for _ in 0..ITERS {
                    match lock.lock() {
                        Ok(g) if g.acquired() == Acquired::Clean => increment(&r.counter),
                        _ => return 12,
                    }
                }
                0
            })
        })
        .collect();
    wait_until(PATIENCE, "children to attach", || {
        region.gate.arrived() == procs as u32
    });
    region.gate.open();
    for kid in kids {
        expect_exit_ok(kid);
    }
    assert_eq!(region.counter.load(Ordering::Relaxed), procs * ITERS);
    drop(region);
    assert!(!name.path().exists(), "{name} left in /dev/shm");
}

#[test]
fn futex_2_processes() {
    counter_procs::<FutexLock>(2);
}

#[test]
fn futex_4_processes() {
    counter_procs::<FutexLock>(4);
}

#[test]
fn spin_2_processes() {
    counter_procs::<SpinLock>(2);
}

#[test]
fn spin_4_processes() {
    counter_procs::<SpinLock>(4);
}

/// The tid cache is reset in a forked child: the child's lock word holds
/// the child's tid, not the (cached) tid of the thread that forked it.
fn child_uses_own_tid<L: RawLockTimed + 'static>() {
    let _serial = serial();
    let (_name, region) = create::<L>("forktid");
    let lock = Lock::<L>::attach(&region.lock).unwrap();
    drop(lock.lock().unwrap()); // fills this thread's cache
    let parent_tid = shm::gettid();
    let kid = fork_child(|| {
        let Some(r) = open::<L>(region.name()) else {
            return 10;
        };
        let Ok(lock) = Lock::<L>::attach(&r.lock) else {
            return 11;
        };
        let Ok(g) = lock.lock() else { return 12 };
        let in_word = lock.raw().last_holder(lock.state());
        drop(g);
        if in_word == Some(shm::gettid()) && in_word != Some(parent_tid) {
            0
        } else {
            13
        }
    });
    expect_exit_ok(kid);
}

#[test]
fn futex_child_uses_own_tid() {
    child_uses_own_tid::<FutexLock>();
}

#[test]
fn spin_child_uses_own_tid() {
    child_uses_own_tid::<SpinLock>();
}

/// How the holder leaves.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// SIGKILLed and not yet reaped when the parent locks: a zombie.
    Killed,
    /// `_exit`s holding the lock and is reaped before the parent locks.
    Exited,
}

/// A child takes the lock and dies holding it; the parent's next lock
/// reports the child's tid as a dead previous owner, within a second, and
/// the lock works normally afterwards.
fn owner_death<L: RawLockTimed + 'static>(how: Death) {
    let _serial = serial();
    let (name, region) = create::<L>("death");
    let mut kid = fork_child(|| {
        let Some(r) = open::<L>(&name) else { return 10 };
        let Ok(lock) = Lock::<L>::attach(&r.lock) else {
            return 11;
        };
        let Ok(g) = lock.lock() else { return 12 };
        std::mem::forget(g); // die holding it
        r.tid.store(shm::gettid(), Ordering::Release);
        r.gate.arrive();
        match how {
            Death::Exited => 0,
            Death::Killed => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
    });
    wait_until(PATIENCE, "the child to lock", || region.gate.arrived() == 1);
    let child_tid = region.tid.load(Ordering::Acquire);
    // A forked child is single-threaded: its one thread's tid is its pid.
    assert_eq!(child_tid, kid.pid());
    match how {
        Death::Killed => kid.signal(Signal::SIGKILL).unwrap(),
        Death::Exited => assert_eq!(kid.wait().unwrap(), shm::process::Exit::Code(0)),
    }

    // lock() in a thread with its own mapping, so a hang fails the test
    // after 5 s instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let thread_name = name.clone();
    std::thread::spawn(move || {
        let r = open::<L>(&thread_name).expect("open in thread");
        let lock = Lock::<L>::attach(&r.lock).unwrap();
        let t0 = Instant::now();
        let g = lock.lock().expect("lock");
        let took = t0.elapsed();
        increment(&r.counter);
        let acquired = g.acquired();
        drop(g);
        tx.send((acquired, took)).unwrap();
    });
    let (acquired, took) = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{}: lock() behind a dead holder hung", L::NAME));
    eprintln!("{} {how:?}: took over in {took:?}", L::NAME);
    assert_eq!(
        acquired,
        Acquired::PreviousOwnerDied {
            owner: Some(child_tid)
        }
    );
    assert!(took < Duration::from_secs(1), "takeover took {took:?}");
    if let Death::Killed = how {
        assert_eq!(
            kid.wait().unwrap(),
            shm::process::Exit::Signal(Signal::SIGKILL as i32)
        );
    }

    // Usable again, cleanly, by lock, try_lock and lock_timeout.
    let lock = Lock::<L>::attach(&region.lock).unwrap();
    assert_eq!(lock.lock().unwrap().acquired(), Acquired::Clean);
    assert_eq!(
        lock.try_lock().unwrap().unwrap().acquired(),
        Acquired::Clean
    );
    let g = lock.lock_timeout(Duration::from_secs(1)).unwrap().unwrap();
    assert_eq!(g.acquired(), Acquired::Clean);
    drop(g);
    assert_eq!(region.counter.load(Ordering::Relaxed), 1);
    drop(region);
    assert!(!name.path().exists(), "{name} left in /dev/shm");
}

#[test]
fn futex_owner_killed() {
    owner_death::<FutexLock>(Death::Killed);
}

#[test]
fn futex_owner_exited() {
    owner_death::<FutexLock>(Death::Exited);
}

#[test]
fn spin_owner_killed() {
    owner_death::<SpinLock>(Death::Killed);
}

#[test]
fn spin_owner_exited() {
    owner_death::<SpinLock>(Death::Exited);
}

/// `lock_timeout` also takes over from a dead holder.
#[test]
fn lock_timeout_takes_over() {
    let _serial = serial();
    let (name, region) = create::<FutexLock>("death-timeout");
    let kid = fork_child(|| {
        let Some(r) = open::<FutexLock>(&name) else {
            return 10;
        };
        let lock = Lock::<FutexLock>::attach(&r.lock).unwrap();
        let Ok(g) = lock.lock() else { return 12 };
        std::mem::forget(g);
        0
    });
    let kid_pid = kid.pid();
    expect_exit_ok(kid);
    let lock = Lock::<FutexLock>::attach(&region.lock).unwrap();
    let g = lock
        .lock_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("took over within 5 s");
    assert_eq!(
        g.acquired(),
        Acquired::PreviousOwnerDied {
            owner: Some(kid_pid)
        }
    );
}

/// futex_wait times out with `false`; a futex_wake from *another process*
/// wakes a sleeper on the same word of a shared mapping: the operations are
/// shared, not private.
#[test]
fn futex_wake_crosses_processes() {
    let _serial = serial();
    let (name, region) = create::<FutexLock>("wake");
    let t0 = Instant::now();
    assert!(!futex_wait(
        &region.word,
        0,
        Some(Duration::from_millis(30))
    ));
    assert!(t0.elapsed() >= Duration::from_millis(30));

    let kid = fork_child(|| {
        let Some(r) = open::<FutexLock>(&name) else {
            return 10;
        };
        r.gate.arrive();
        // One wait, long enough that only a wake-up (or the word having
        // changed already) can end it early.
        let woken = futex_wait(&r.word, 0, Some(Duration::from_secs(10)));
        match (woken, r.word.load(Ordering::Acquire)) {
            (true, 1) => 0,
            (false, _) => 2, // timed out: the wake never reached us
            _ => 3,
        }
    });
    wait_until(PATIENCE, "the child to arrive", || {
        region.gate.arrived() == 1
    });
    // Sleeping ('S') after `arrived` means sleeping in FUTEX_WAIT.
    wait_until(PATIENCE, "the child to sleep", || {
        shm::process::stat(kid.pid()).is_ok_and(|s| s.state == b'S')
    });
    region.word.store(1, Ordering::Release);
    let woke = futex_wake(&region.word, 1);
    expect_exit_ok(kid);
    assert_eq!(woke, 1, "futex_wake found no sleeper in the other process");
}

/// A waiter that only ever waits in timeouts shorter than the dead-owner
/// check interval still takes over from a dead holder. (The spin locks
/// checked the holder only after a full interval within one call, so a
/// caller polling with `lock_timeout(10 ms)` waited behind a dead holder
/// for ever: found by `shmlab torture`.)
fn short_timeouts_take_over<L: RawLockTimed + 'static>() {
    let _serial = serial();
    let (name, region) = create::<L>("short-timeouts");
    let kid = fork_child(|| {
        let Some(r) = open::<L>(&name) else { return 10 };
        let lock = Lock::<L>::attach(&r.lock).unwrap();
        let Ok(g) = lock.lock() else { return 12 };
        std::mem::forget(g);
        0
    });
    expect_exit_ok(kid);
    let lock = Lock::<L>::attach(&region.lock).unwrap();
    let t0 = Instant::now();
    let acquired = loop {
        match lock.lock_timeout(Duration::from_millis(10)).unwrap() {
            Some(g) => break g.acquired(),
            None => assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{}: 5 s of 10 ms waits behind a dead holder",
                L::NAME
            ),
        }
    };
    assert!(
        matches!(acquired, Acquired::PreviousOwnerDied { .. }),
        "{acquired:?}"
    );
}

#[test]
fn spin_short_timeouts_take_over_from_a_dead_holder() {
    short_timeouts_take_over::<SpinLock>();
}

#[test]
fn spin_pure_short_timeouts_take_over_from_a_dead_holder() {
    short_timeouts_take_over::<shm_futex::PureSpinLock>();
}

#[test]
fn futex_short_timeouts_take_over_from_a_dead_holder() {
    short_timeouts_take_over::<FutexLock>();
}
