//! Named and unnamed semaphores as locks inside a real region: exact counts
//! across threads and processes, try_lock and the timed wait, the named
//! semaphore's file (mode, lifetime, clean failure), and the wedge a dead
//! holder leaves.
//!
//! Children never create objects: they open the region by name and
//! `_exit`; every object is created by the test and removed by a guard
//! (the region's drop, or [`Unlink`]), also when an assertion fails.

use shm::lock::{Lock, RawLock};
use shm::{Mode, Region, RegionOptions, ShmName};
use shm_sem::{NamedSem, NamedSemaphore, UnnamedSemaphore, sem_name_for, sem_path};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use testkit::{Payload, bump, child, create, reap, serial};

// Tests in this binary fork children that call `sem_open`; glibc's
// `sem_open` takes a process-wide lock (`sem_mappings_lock`) that `fork`
// does not reset, so a fork while another test thread is inside `sem_open`
// leaves the child deadlocked: the tests run one at a time (`serial()`).

/// Unlinks a named semaphore the test made by hand, however the test ends.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = NamedSem::unlink(&self.0);
    }
}

#[test]
fn named_semaphore_four_threads_count_exactly() {
    let _serial = serial();
    testkit::threads_count_exactly::<NamedSemaphore>();
}

#[test]
fn unnamed_semaphore_four_threads_count_exactly() {
    let _serial = serial();
    testkit::threads_count_exactly::<UnnamedSemaphore>();
}

#[test]
fn named_semaphore_processes_count_exactly() {
    let _serial = serial();
    testkit::processes_count_exactly::<NamedSemaphore>(20_000);
}

#[test]
fn unnamed_semaphore_processes_count_exactly() {
    let _serial = serial();
    testkit::processes_count_exactly::<UnnamedSemaphore>(20_000);
}

#[test]
fn named_semaphore_try_lock_sees_it_held() {
    let _serial = serial();
    let r = testkit::try_lock_sees_it_held::<NamedSemaphore>();
    // The pid recorded after each acquisition is this process's.
    let lock = Lock::<NamedSemaphore>::attach(&r.lock.0).unwrap();
    assert_eq!(lock.raw().last_holder(lock.state()), Some(shm::pid()));
}

#[test]
fn unnamed_semaphore_try_lock_sees_it_held() {
    let _serial = serial();
    let r = testkit::try_lock_sees_it_held::<UnnamedSemaphore>();
    // The pid recorded after each acquisition is this process's.
    let lock = Lock::<UnnamedSemaphore>::attach(&r.lock.0).unwrap();
    assert_eq!(lock.raw().last_holder(lock.state()), Some(shm::pid()));
}

/// Sets the umask, and puts the old one back however the test ends.
struct Umask(nix::sys::stat::Mode);

impl Umask {
    fn set(bits: u32) -> Self {
        Umask(nix::sys::stat::umask(
            nix::sys::stat::Mode::from_bits_truncate(bits),
        ))
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

#[test]
fn named_semaphore_file_has_the_region_mode_and_goes_with_it() {
    let _serial = serial();
    // sem_open applies the umask: without the chmod, 0640 & !077 = 0600.
    let _umask = Umask::set(0o077);
    for mode in ["0640", "0600"] {
        let name = ShmName::unique("sem-test-file");
        let path = sem_path(name.as_str());
        let opts = RegionOptions {
            mode: Mode::parse(mode).unwrap(),
            ..Default::default()
        };
        {
            let r = Region::<Payload<NamedSemaphore>>::create(&name, &opts, ()).unwrap();
            let md = std::fs::metadata(&path).expect("sem.NAME exists while the region lives");
            assert_eq!(md.permissions().mode() & 0o777, opts.mode.bits(), "{mode}");
            assert_eq!(r.lock.0.raw().name(), name.as_str());
            let lock = Lock::<NamedSemaphore>::attach(&r.lock.0).unwrap();
            assert_eq!(lock.raw().name(), name.as_str());
        }
        assert!(!path.exists(), "{} left behind", path.display());
        assert!(!name.path().exists());
    }
}

#[test]
fn a_long_region_name_gets_a_semaphore_name_that_fits() {
    let _serial = serial();
    // Two 255-byte region names that differ only in their last byte.
    let base = ShmName::unique("sem-test-long");
    let long = |last: char| {
        let mut body = format!("{}-", base.file_name());
        while body.len() < 254 {
            body.push('x');
        }
        body.push(last);
        ShmName::parse(&format!("/{body}")).unwrap()
    };
    let (long, other) = (long('x'), long('y'));
    assert_eq!(long.file_name().len(), 255);
    let sem = sem_name_for(&long);
    assert!(sem.len() - 1 <= shm_sem::SEM_NAME_MAX, "{sem}");
    assert!(sem.starts_with(&long.as_str()[..200]), "{sem}");
    assert_ne!(sem, sem_name_for(&other));
    let path = sem_path(&sem);
    {
        let r = Region::<Payload<NamedSemaphore>>::create(&long, &RegionOptions::default(), ())
            .unwrap();
        assert_eq!(r.lock.0.raw().name(), sem);
        assert!(path.exists());
        bump::<NamedSemaphore>(&r, 10);
    }
    assert!(!path.exists(), "{} left behind", path.display());
}

#[test]
fn an_existing_semaphore_fails_the_region_and_is_left_alone() {
    let _serial = serial();
    let name = ShmName::unique("sem-test-exists");
    let theirs = NamedSem::create(&sem_name_for(&name), Mode::DEFAULT, 1).unwrap();
    let _unlink = Unlink(theirs.name().to_string());
    let err = Region::<Payload<NamedSemaphore>>::create(&name, &RegionOptions::default(), ())
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    assert!(!name.path().exists(), "the failed region was left behind");
    assert!(
        sem_path(theirs.name()).exists(),
        "someone else's semaphore was removed"
    );
    assert!(theirs.try_wait().unwrap());
}

#[test]
fn a_dead_holder_wedges_the_semaphore_and_is_named() {
    let _serial = serial();
    let (name, r) = create::<NamedSemaphore>("wedge");
    let kid = child(move || {
        let r = Region::<Payload<NamedSemaphore>>::open(&name, &RegionOptions::default()).unwrap();
        let lock = Lock::<NamedSemaphore>::attach(&r.lock.0).unwrap();
        std::mem::forget(lock.lock().unwrap()); // die holding it
    });
    let kid_pid = kid.pid();
    reap(vec![kid]);
    let lock = Lock::<NamedSemaphore>::attach(&r.lock.0).unwrap();
    // A semaphore cannot know its holder died: the timed wait gives up...
    assert!(
        lock.lock_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none()
    );
    // ...and the region names the holder, which is gone.
    let holder = lock.raw().last_holder(lock.state()).unwrap();
    assert_eq!(holder, kid_pid);
    assert!(shm::process::liveness(holder, 0).is_dead());
    assert_eq!(lock.raw().value().unwrap(), 0);
    // The deliberate repair.
    lock.raw().repair().unwrap();
    assert!(
        lock.lock_timeout(Duration::from_millis(100))
            .unwrap()
            .is_some()
    );
}

#[test]
fn counting_semaphores_count() {
    let _serial = serial();
    let name = ShmName::unique("sem-test-count").as_str().to_string();
    let s = NamedSem::create(&name, Mode::DEFAULT, 3).unwrap();
    let unlink = Unlink(name.clone());
    for _ in 0..3 {
        assert!(s.try_wait().unwrap());
    }
    assert!(!s.try_wait().unwrap());
    assert!(!s.wait_timeout(Duration::from_millis(20)).unwrap());
    s.post().unwrap();
    assert_eq!(s.value().unwrap(), 1);
    let other = NamedSem::open(&name).unwrap();
    assert!(other.try_wait().unwrap());
    drop(unlink);
    assert!(!sem_path(&name).exists());
    assert!(NamedSem::open(&name).is_err());
}

#[test]
fn bad_semaphore_names_are_refused() {
    let _serial = serial();
    for bad in ["", "noslash", "/a/b", "/", &format!("/{}", "x".repeat(252))] {
        assert!(NamedSem::create(bad, Mode::DEFAULT, 1).is_err(), "{bad:?}");
    }
}
