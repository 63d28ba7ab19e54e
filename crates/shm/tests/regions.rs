//! Region::open: waits for "ready", times out when it never comes, and
//! refuses what is not the region it expects, with a clear error and never a
//! SIGBUS.

mod common;
use common::*;
use shm::{Error, HEADER_SIZE, HeaderInfo, InitCtx, Region, RegionOptions, Shared};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A payload whose initialiser blocks until the test hands it a value.
#[repr(C)]
struct Slow {
    value: AtomicU64,
}
shm::any_bits!(Slow { value });

// SAFETY: repr(C), one atomic, valid when zeroed.
unsafe impl Shared for Slow {
    type Init = mpsc::Receiver<u64>;
    fn type_name() -> String {
        "test/slow".into()
    }
    unsafe fn init_in_place(
        this: *mut Self,
        rx: Self::Init,
        _: &InitCtx<'_>,
    ) -> Result<(), String> {
        let v = rx
            .recv()
            .map_err(|_| "the test dropped the sender".to_string())?;
        // SAFETY: the caller gives us aligned, zeroed memory for Self that no
        // one else uses yet; we only take a shared reference to an atomic.
        unsafe { &*this }.value.store(v, Ordering::Relaxed);
        Ok(())
    }
}

#[repr(C)]
struct Eight {
    words: [AtomicU64; 8],
}
shm::any_bits!(Eight { words });

// SAFETY: repr(C), atomics only, valid when zeroed.
unsafe impl Shared for Eight {
    type Init = ();
    fn type_name() -> String {
        "test/eight".into()
    }
    unsafe fn init_in_place(_: *mut Self, _: (), _: &InitCtx<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// Same tag as `Eight`, different layout.
#[repr(C)]
struct EightImpostor {
    word: AtomicU64,
}
shm::any_bits!(EightImpostor { word });

// SAFETY: repr(C), one atomic, valid when zeroed.
unsafe impl Shared for EightImpostor {
    type Init = ();
    fn type_name() -> String {
        "test/eight".into()
    }
    unsafe fn init_in_place(_: *mut Self, _: (), _: &InitCtx<'_>) -> Result<(), String> {
        Ok(())
    }
}

fn opts(wait_ms: u64) -> RegionOptions {
    RegionOptions {
        wait: Duration::from_millis(wait_ms),
        ..RegionOptions::default()
    }
}

/// Starts creating a `Slow` region in a thread and returns once its header
/// says "initialising".
fn start_slow(
    name: &shm::ShmName,
) -> (
    mpsc::Sender<u64>,
    std::thread::JoinHandle<shm::Result<Region<Slow>>>,
) {
    let (tx, rx) = mpsc::channel();
    let n = name.clone();
    let creator =
        std::thread::spawn(move || Region::<Slow>::create(&n, &RegionOptions::default(), rx));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(h)) = shm::probe_header(name)
            && h.init_state() == Some(shm::InitState::Initialising)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the creator never started initialising"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (tx, creator)
}

#[test]
fn open_waits_for_the_creator_to_publish() {
    let (_guard, name) = Unlink::new("region-wait");
    let (tx, creator) = start_slow(&name);
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        tx.send(42).unwrap();
    });
    let t = Instant::now();
    let opened = Region::<Slow>::open(&name, &opts(5000)).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "open did not wait: {:?}",
        t.elapsed()
    );
    // Published with Release, observed with Acquire: the payload is there.
    assert_eq!(opened.value.load(Ordering::Relaxed), 42);
    assert!(!opened.is_creator());
    publisher.join().unwrap();
    let made = creator.join().unwrap().unwrap();
    assert!(made.is_creator());
    drop(opened);
    drop(made);
    assert!(!name.path().exists());
}

#[test]
fn open_times_out_with_not_ready_and_a_failed_init_leaves_nothing() {
    let (_guard, name) = Unlink::new("region-never");
    let (tx, creator) = start_slow(&name);
    let t = Instant::now();
    let err = Region::<Slow>::open(&name, &opts(300)).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, Error::NotReady { .. }), "{err}");
    assert!(err.to_string().contains("initialising"), "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drop(tx); // the initialiser fails
    let err = creator.join().unwrap().unwrap_err();
    assert!(matches!(err, Error::Init { .. }), "{err}");
    assert!(!name.path().exists(), "a failed create must unlink");
}

#[test]
fn a_header_stuck_uninitialised_is_not_ready() {
    let (_guard, name) = Unlink::new("region-uninit");
    plain_object(&name, 4096, &fake_header(shm::VERSION, 0));
    let err = Region::<Eight>::open(&name, &opts(200)).unwrap_err();
    assert!(matches!(err, Error::NotReady { .. }), "{err}");
    assert!(err.to_string().contains("uninitialised"), "{err}");
}

#[test]
fn another_type_or_layout_is_a_type_mismatch() {
    let (_guard, name) = Unlink::new("region-type");
    let _made = Region::<Eight>::create(&name, &RegionOptions::default(), ()).unwrap();
    let err = Region::<Slow>::open(&name, &opts(200)).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("test/eight") && err.to_string().contains("test/slow"),
        "{err}"
    );
    let err = Region::<EightImpostor>::open(&name, &opts(200)).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("64 bytes") && err.to_string().contains("8 bytes"),
        "{err}"
    );
    assert!(Region::<Eight>::open(&name, &opts(200)).is_ok());
}

#[test]
fn another_format_version_is_a_version_mismatch() {
    let (_guard, name) = Unlink::new("region-version");
    plain_object(&name, 4096, &fake_header(99, 2));
    let err = Region::<Eight>::open(&name, &opts(200)).unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { found: 99, .. }),
        "{err}"
    );
    let h = shm::probe_header(&name).unwrap().unwrap();
    assert_eq!(h.version, 99);
}

/// The header publish race: an opener that sees the magic while the creator
/// is still writing the header (version still 0, state "initialising") must
/// wait for "ready" and only then read the version and layout, not fail with
/// a spurious version mismatch.
#[test]
fn a_header_seen_half_written_is_waited_for_not_a_version_mismatch() {
    let (_guard, name) = Unlink::new("region-halfwritten");
    // What a creator's header looks like once complete.
    let (_g2, model) = Unlink::new("region-model");
    let complete = {
        let r = Region::<Eight>::create(&model, &RegionOptions::default(), ()).unwrap();
        let mut b = std::fs::read(model.path()).unwrap();
        b.truncate(HEADER_SIZE);
        drop(r);
        b
    };
    let len = Region::<Eight>::total_len();
    // Half-written: magic present, version 0, state "initialising".
    plain_object(&name, len as u64, &fake_header(0, 1));
    let n = name.clone();
    let opener = std::thread::spawn(move || Region::<Eight>::open(&n, &opts(5000)).map(|_| ()));
    std::thread::sleep(Duration::from_millis(100));
    // The creator finishes: every field, then the state last.
    let obj = shm::ShmOptions::new().open(&name).unwrap();
    let map = obj.map(shm::Access::ReadWrite, len).unwrap();
    map.write(8, &complete[8..12]).unwrap();
    map.write(16, &complete[16..]).unwrap();
    std::sync::atomic::fence(Ordering::SeqCst);
    map.write(12, &complete[12..16]).unwrap();
    let res = opener.join().unwrap();
    assert!(res.is_ok(), "open failed: {}", res.unwrap_err());
}

#[test]
fn plain_objects_are_not_regions() {
    let (_g1, text) = Unlink::new("region-text");
    plain_object(&text, 4096, b"Studying Operating Systems Is Fun!\0");
    let err = Region::<Eight>::open(&text, &opts(200)).unwrap_err();
    assert!(matches!(err, Error::NotARegion { .. }), "{err}");
    assert_eq!(shm::probe_header(&text).unwrap(), None);

    let (_g2, zeros) = Unlink::new("region-zeros");
    plain_object(&zeros, 4096, b"");
    let t = Instant::now();
    let err = Region::<Eight>::open(&zeros, &opts(200)).unwrap_err();
    assert!(matches!(err, Error::NotARegion { .. }), "{err}");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "gave up before its wait"
    );

    let (_g3, tiny) = Unlink::new("region-tiny");
    plain_object(&tiny, 16, b"tiny");
    let err = Region::<Eight>::open(&tiny, &opts(100)).unwrap_err();
    assert!(matches!(err, Error::NotARegion { .. }), "{err}");
    assert!(
        err.to_string().contains("shorter than a shmlab header"),
        "{err}"
    );
}

/// Creates an `Eight` region, lets go of it, and truncates its file.
fn truncated(name: &shm::ShmName, len: u64) {
    let mut r = Region::<Eight>::create(name, &RegionOptions::default(), ()).unwrap();
    r.keep();
    drop(r);
    std::fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn a_truncated_region_is_a_clean_error_not_a_sigbus() {
    let total = Region::<Eight>::total_len() as u64;
    let (_g1, cut_payload) = Unlink::new("region-cut-payload");
    truncated(&cut_payload, HEADER_SIZE as u64 + 8);
    let err = Region::<Eight>::open(&cut_payload, &opts(200)).unwrap_err();
    assert!(
        matches!(err, Error::TooSmall { actual, needed, .. } if actual == HEADER_SIZE as u64 + 8 && needed == total),
        "{err}"
    );
    let h = shm::probe_header(&cut_payload).unwrap().unwrap();
    assert_eq!(h.needed_len(), Some(total));

    let (_g2, cut_header) = Unlink::new("region-cut-header");
    truncated(&cut_header, 64);
    let err = Region::<Eight>::open(&cut_header, &opts(200)).unwrap_err();
    assert!(matches!(err, Error::NotARegion { .. }), "{err}");
    assert_eq!(
        shm::probe_header(&cut_header).unwrap(),
        None,
        "64 bytes cannot hold a header"
    );
}

#[test]
fn probe_header_reads_a_live_region_without_mapping() {
    let (_guard, name) = Unlink::new("region-probe");
    let made = Region::<Eight>::create(&name, &RegionOptions::default(), ()).unwrap();
    let h = shm::probe_header(&name).unwrap().unwrap();
    assert_eq!(h.type_name, "test/eight");
    assert_eq!(h.init_state(), Some(shm::InitState::Ready));
    assert_eq!(h.creator_pid, std::process::id() as i32);
    assert_eq!(h.creator_liveness(), shm::process::Liveness::Running);
    assert_eq!(h.payload_size, 64);
    assert_eq!(h, made.header().info());
    let bytes = std::fs::read(name.path()).unwrap();
    assert_eq!(HeaderInfo::from_bytes(&bytes), Some(h));
    assert_eq!(HeaderInfo::from_bytes(&bytes[..HEADER_SIZE - 1]), None);
    let missing = shm::ShmName::unique("region-missing");
    assert!(matches!(
        shm::probe_header(&missing),
        Err(Error::NotFound { .. })
    ));
}

/// A payload with trailing bytes: one word saying how many.
#[repr(C)]
struct Tailed {
    len: AtomicU64,
}
shm::any_bits!(Tailed { len });

// SAFETY: repr(C), one atomic, valid when zeroed (and after init).
unsafe impl Shared for Tailed {
    type Init = usize;
    fn type_name() -> String {
        "test/tailed".into()
    }
    fn trailing_len(n: &usize) -> usize {
        *n
    }
    unsafe fn init_in_place(this: *mut Self, n: usize, ctx: &InitCtx<'_>) -> Result<(), String> {
        assert_eq!(ctx.trailing_len, n);
        // SAFETY: aligned, zeroed, not yet shared; an atomic store.
        unsafe { &*this }.len.store(n as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn trailing_bytes_are_recorded_mapped_by_openers_and_checked_for_length() {
    let (_guard, name) = Unlink::new("region-tailed");
    let n = 3 * 4096 + 100;
    let made = Region::<Tailed>::create(&name, &RegionOptions::default(), n).unwrap();
    assert_eq!(made.trailing_len(), n);
    assert_eq!(made.trailing().as_ptr() as usize % shm::TRAILING_ALIGN, 0);
    let h = shm::probe_header(&name).unwrap().unwrap();
    assert_eq!(h.trailing_len, n as u64);
    let needed = (Region::<Tailed>::trailing_offset() + n) as u64;
    assert_eq!(h.needed_len(), Some(needed));
    assert_eq!(std::fs::metadata(name.path()).unwrap().len(), needed);
    // SAFETY: `n` trailing bytes at this address while `made` lives; only
    // this thread touches them.
    unsafe { made.trailing().as_ptr().add(n - 1).write(0xa5) };

    let opened = Region::<Tailed>::open(&name, &opts(200)).unwrap();
    assert_eq!(opened.trailing_len(), n);
    assert_eq!(opened.len.load(Ordering::Relaxed), n as u64);
    // SAFETY: the opener maps the same `n` bytes; the write above is done.
    let last = unsafe { opened.trailing().as_ptr().add(n - 1).read() };
    assert_eq!(last, 0xa5);
    drop(opened);

    // Cut the last trailing byte off: a clean error naming both lengths.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap();
    f.set_len(needed - 1).unwrap();
    let err = Region::<Tailed>::open(&name, &opts(200)).unwrap_err();
    assert!(
        matches!(err, Error::TooSmall { actual, needed: want, .. } if actual == needed - 1 && want == needed),
        "{err}"
    );
    drop(made);

    // A type without trailing bytes has none, and its objects are as long
    // as before.
    let (_g2, plain) = Unlink::new("region-untailed");
    let r = Region::<Eight>::create(&plain, &RegionOptions::default(), ()).unwrap();
    assert_eq!(r.trailing_len(), 0);
    assert_eq!(r.header().info().trailing_len, 0);
    assert_eq!(
        std::fs::metadata(plain.path()).unwrap().len(),
        Region::<Eight>::total_len() as u64
    );

    // More than a region may have: refused before anything is created.
    let (_g3, huge) = Unlink::new("region-huge-tail");
    let err = Region::<Tailed>::create(&huge, &RegionOptions::default(), shm::MAX_TRAILING + 1)
        .unwrap_err();
    assert!(matches!(err, Error::Init { .. }), "{err}");
    assert!(!huge.path().exists());
}
