//! Named and unnamed semaphores as locks inside a real region.

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use shm::lock::{Lock, RawLock};
use shm::{InitCtx, Mode, Region, RegionOptions, Shared, ShmName};
use shm_sem::{NamedSem, NamedSemaphore, UnnamedSemaphore, sem_path};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

fn child(body: impl FnOnce()) -> nix::unistd::Pid {
    // SAFETY: the child runs `body` (opening objects by name, no output)
    // and _exits without the parent's destructors.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).map_or(1, |_| 0);
            // SAFETY: see above.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    }
}

fn exact<L: RawLock + 'static>() {
    for workers in [2u32, 4] {
        let name = ShmName::unique(&format!("sem-test-{}", L::NAME));
        let r = Region::<Payload<L>>::create(&name, &RegionOptions::default(), ()).unwrap();
        let kids: Vec<_> = (0..workers)
            .map(|_| {
                let name = name.clone();
                child(move || {
                    let r = Region::<Payload<L>>::open(&name, &RegionOptions::default()).unwrap();
                    bump::<L>(&r, 20_000);
                })
            })
            .collect();
        for k in kids {
            assert_eq!(waitpid(k, None).unwrap(), WaitStatus::Exited(k, 0));
        }
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| bump::<L>(&r, 20_000));
            }
        });
        assert_eq!(
            r.counter.load(Ordering::Relaxed),
            2 * workers as u64 * 20_000
        );
    }
}

#[test]
fn named_semaphore_counts_exactly() {
    exact::<NamedSemaphore>();
}

#[test]
fn unnamed_semaphore_counts_exactly() {
    exact::<UnnamedSemaphore>();
}

#[test]
fn named_semaphore_file_has_the_region_mode_and_goes_with_it() {
    let name = ShmName::unique("sem-test-file");
    let path = sem_path(name.as_str());
    // sem_open applies the umask: 0640 & !077 would be 0600 without forcing.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let opts = RegionOptions {
        mode: Mode::parse("0640").unwrap(),
        ..Default::default()
    };
    {
        let r = Region::<Payload<NamedSemaphore>>::create(&name, &opts, ()).unwrap();
        let md = std::fs::metadata(&path).expect("sem.NAME exists while the region lives");
        assert_eq!(md.permissions().mode() & 0o777, 0o640);
        assert_eq!(r.lock.name(), name.as_str());
    }
    assert!(!path.exists(), "{} left behind", path.display());
    assert!(!name.path().exists());
}

#[test]
fn a_dead_holder_wedges_the_semaphore_and_is_named() {
    let name = ShmName::unique("sem-test-wedge");
    let r =
        Region::<Payload<NamedSemaphore>>::create(&name, &RegionOptions::default(), ()).unwrap();
    let n2 = name.clone();
    let kid = child(move || {
        let r = Region::<Payload<NamedSemaphore>>::open(&n2, &RegionOptions::default()).unwrap();
        let lock = Lock::<NamedSemaphore>::attach(&r.lock).unwrap();
        std::mem::forget(lock.lock().unwrap()); // die holding it
    });
    assert_eq!(waitpid(kid, None).unwrap(), WaitStatus::Exited(kid, 0));
    let lock = Lock::<NamedSemaphore>::attach(&r.lock).unwrap();
    // A semaphore cannot know its holder died: the timed wait gives up...
    assert!(
        lock.lock_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none()
    );
    // ...and the region names the holder, which is gone.
    let holder = lock.raw().last_holder(&r.lock).unwrap();
    assert_eq!(holder, kid.as_raw());
    assert!(!shm::process_alive(holder));
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
    let name = format!("/shmlab-sem-test-count-{}", std::process::id());
    let s = NamedSem::create(&name, Mode::DEFAULT, 3).unwrap();
    for _ in 0..3 {
        assert!(s.try_wait().unwrap());
    }
    assert!(!s.try_wait().unwrap());
    assert!(!s.wait_timeout(Duration::from_millis(20)).unwrap());
    s.post().unwrap();
    assert_eq!(s.value().unwrap(), 1);
    let other = NamedSem::open(&name).unwrap();
    assert!(other.try_wait().unwrap());
    NamedSem::unlink(&name).unwrap();
    assert!(!sem_path(&name).exists());
    assert!(NamedSem::open(&name).is_err());
}

#[test]
fn bad_semaphore_names_are_refused() {
    for bad in ["", "noslash", "/a/b", "/", &format!("/{}", "x".repeat(252))] {
        assert!(NamedSem::create(bad, Mode::DEFAULT, 1).is_err(), "{bad:?}");
    }
}
