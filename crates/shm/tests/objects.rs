//! Objects: O_EXCL creation leaves an existing object untouched, a size
//! /dev/shm cannot hold fails cleanly and leaves nothing, opening never
//! creates, and unlinking removes the name but not the pages.

mod common;
use common::*;
use shm::{Access, Error, Mode, ShmOptions};
use std::os::unix::fs::MetadataExt;

#[test]
fn create_new_on_an_existing_name_fails_and_leaves_it_untouched() {
    let (_guard, name) = Unlink::new("obj-exists");
    let mut first = ShmOptions::new()
        .create_new(true)
        .mode(Mode::parse("0640").unwrap())
        .open(&name)
        .unwrap();
    first.set_len(8192).unwrap();
    first
        .map(Access::ReadWrite, 8192)
        .unwrap()
        .write(0, b"precious\0")
        .unwrap();
    first.keep();
    drop(first);

    let err = ShmOptions::new()
        .create_new(true)
        .mode(Mode::DEFAULT)
        .open(&name)
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("shmlab clean --name {name}")),
        "{err}"
    );

    let md = std::fs::metadata(name.path()).unwrap();
    assert_eq!(
        (md.len(), md.mode() & 0o777),
        (8192, 0o640),
        "size or mode changed"
    );
    let again = ShmOptions::new().read_only(true).open(&name).unwrap();
    assert_eq!(
        again.map(Access::ReadOnly, 8192).unwrap().read_c_string(0),
        b"precious"
    );
}

#[test]
fn a_size_dev_shm_cannot_hold_fails_and_leaves_nothing() {
    let (_guard, name) = Unlink::new("obj-nospace");
    let obj = ShmOptions::new().create_new(true).open(&name).unwrap();
    let err = obj.set_len(1 << 50).unwrap_err();
    assert!(
        matches!(err, Error::NoSpace { size, .. } if size == 1 << 50),
        "{err}"
    );
    assert!(err.to_string().contains("/dev/shm cannot hold"), "{err}");
    assert_eq!(
        obj.stat().unwrap().size,
        0,
        "the reservation was not given back"
    );
    drop(obj); // the creator's handle unlinks on an error path
    assert!(!name.path().exists(), "a failed creation left {name}");
}

/// Finding 8 of "Trust nothing that is shared": a second handle that only
/// opened the object asks for more than `/dev/shm` holds. The old error
/// path truncated to 0, pulling the creator's pages from under it (its
/// next read died of SIGBUS); now the object keeps its size and bytes.
#[test]
fn a_failed_resize_by_an_opener_keeps_the_creators_object() {
    let (_guard, name) = Unlink::new("obj-nospace-opener");
    let creator = ShmOptions::new().create_new(true).open(&name).unwrap();
    creator.set_len(8192).unwrap();
    let map = creator.map(Access::ReadWrite, 8192).unwrap();
    map.write(4096, b"still here\0").unwrap();

    let opener = ShmOptions::new().create_or_open(true).open(&name).unwrap();
    assert!(
        opener.creation().is_none(),
        "it should have opened, not created"
    );
    let err = opener.set_len(1 << 50).unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert_eq!(
        creator.stat().unwrap().size,
        8192,
        "the opener's failed resize changed the creator's object"
    );
    // The old code left 0 bytes here: this read would raise SIGBUS.
    assert_eq!(map.read_c_string(4096), b"still here");
}

#[test]
fn opening_never_creates_and_create_or_open_reports_which() {
    let (_guard, name) = Unlink::new("obj-open");
    let err = ShmOptions::new().open(&name).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(!name.path().exists());

    let mut made = ShmOptions::new().create_or_open(true).open(&name).unwrap();
    assert!(made.creation().is_some());
    made.set_len(4096).unwrap();
    made.map(Access::ReadWrite, 4096)
        .unwrap()
        .write(0, b"first")
        .unwrap();
    made.keep();
    let opened = ShmOptions::new().create_or_open(true).open(&name).unwrap();
    assert!(
        opened.creation().is_none(),
        "the second open did not create"
    );
    assert!(!opened.unlinks_on_drop());
    assert_eq!(
        opened.map(Access::ReadOnly, 4096).unwrap().read(0, 5),
        b"first"
    );
}

#[test]
fn read_only_objects_refuse_writes_and_short_objects_refuse_long_maps() {
    let (_guard, name) = Unlink::new("obj-ro");
    plain_object(&name, 4096, b"x");
    let ro = ShmOptions::new().read_only(true).open(&name).unwrap();
    assert!(matches!(
        ro.map(Access::ReadWrite, 4096),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(ro.set_len(8192), Err(Error::ReadOnly { .. })));
    let map = ro.map(Access::ReadOnly, 4096).unwrap();
    assert!(matches!(map.write(0, b"y"), Err(Error::ReadOnly { .. })));
    let err = ro.map(Access::ReadOnly, 8192).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooSmall {
                actual: 4096,
                needed: 8192,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unlink_removes_the_name_but_not_the_pages() {
    let (_guard, name) = Unlink::new("obj-unlink");
    let mut obj = ShmOptions::new().create_new(true).open(&name).unwrap();
    obj.set_len(4096).unwrap();
    let map = obj.map(Access::ReadWrite, 4096).unwrap();
    obj.unlink().unwrap();
    assert!(!name.path().exists());
    assert!(matches!(
        ShmOptions::new().open(&name),
        Err(Error::NotFound { .. })
    ));
    drop(obj);
    map.write(100, b"still here").unwrap();
    assert_eq!(map.read_c_string(100), b"still here");
}

#[test]
fn creation_records_the_mode_story() {
    let (_guard, name) = Unlink::new("obj-mode");
    let obj = ShmOptions::new()
        .create_new(true)
        .mode(Mode::parse("rw-r-----").unwrap())
        .open(&name)
        .unwrap();
    let c = *obj.creation().unwrap();
    assert_eq!(c.requested.bits(), 0o640);
    assert_eq!(c.given, c.requested.masked_by(c.umask));
    assert_eq!(c.forced, c.given != c.requested);
    assert_eq!(c.now, c.requested);
    assert_eq!(obj.stat().unwrap().mode.bits(), 0o640);
}

#[test]
fn the_listing_shows_plain_objects_and_regions() {
    let (_g1, plain) = Unlink::new("obj-list-plain");
    plain_object(&plain, 4096, b"hello");
    let entries = shm::listing::list().unwrap();
    let e = entries
        .iter()
        .find(|e| e.file_name == plain.file_name())
        .expect("listed");
    assert_eq!(e.kind, shm::listing::ObjectKind::SharedMemory);
    assert_eq!(
        (e.size, e.mode.bits(), e.header.is_none(), e.stale()),
        (4096, 0o600, true, false)
    );
    assert_eq!(e.name(), Some(plain.clone()));
}
