//! What anyone can put in `/dev/shm` or in a region's header: the one way
//! of opening an entry never blocks, follows a link or leaves the
//! directory; headers decode with checked arithmetic; names print escaped.

mod common;
use common::*;
use proptest::prelude::*;
use shm::listing::{self, FileKind, ObjectKind, escape_bytes, open_regular, read_entry};
use shm::{HEADER_SIZE, HeaderInfo, MAGIC};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Removes a file it names on drop (also on a failed assertion).
struct Gone(PathBuf);
impl Drop for Gone {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn in_shm(tag: &str) -> (Gone, PathBuf) {
    let p = PathBuf::from(format!(
        "{}/shmlab-test-hostile-{tag}-{}",
        shm::SHM_DIR,
        std::process::id()
    ));
    (Gone(p.clone()), p)
}

/// Finding 4: a FIFO in /dev/shm used to hang `File::open` (and so `ls`,
/// `ps`, `clean`). It is refused at once, listed as what it is, never
/// opened.
#[test]
fn a_fifo_is_listed_never_opened() {
    let (_g, p) = in_shm("fifo");
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = open_regular(&p).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("FIFO"), "{err}");
    let entries = listing::list().unwrap();
    let e = entries
        .iter()
        .find(|e| e.file_name == p.file_name().unwrap())
        .expect("the FIFO is listed");
    assert_eq!((e.kind, e.file_kind), (ObjectKind::Other, FileKind::Fifo));
    assert!(!e.readable);
}

/// Finding 4: a symlink to a file outside /dev/shm is not followed (the
/// old reader printed the target's bytes as a header or a value).
#[test]
fn a_symlink_out_of_dev_shm_is_not_followed() {
    let secret = std::env::temp_dir().join(format!("shmlab-secret-{}", std::process::id()));
    std::fs::write(&secret, b"SHMLAB\0\x01 secret").unwrap();
    let _s = Gone(secret.clone());
    let (_g, p) = in_shm("link");
    std::os::unix::fs::symlink(&secret, &p).unwrap();
    assert!(open_regular(&p).is_err());
    let name = p.file_name().unwrap();
    assert!(read_entry(name, 64).is_err());
    let e = listing::list()
        .unwrap()
        .into_iter()
        .find(|e| e.file_name == name)
        .unwrap();
    assert_eq!(e.file_kind, FileKind::Symlink);
    assert!(e.header.is_none());
    assert!(
        shm::read_header_file(&p).is_err(),
        "the header reader followed a link"
    );
}

/// Finding 3's mechanism: a name taken from shared memory can never reach
/// outside /dev/shm.
#[test]
fn entry_names_are_one_component() {
    for bad in [
        &b"../etc/passwd"[..],
        b"d/../../tmp/x",
        b"..",
        b".",
        b"",
        b"a\0b",
    ] {
        let err = read_entry(OsStr::from_bytes(bad), 16).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
    }
}

/// A directory is listed, never read; `read_entry` of a huge `max` reads
/// only what the file holds (the old `inspect --bytes` allocated `max`).
#[test]
fn directories_and_huge_reads() {
    let (_g, p) = in_shm("dir");
    std::fs::create_dir(&p).unwrap();
    assert!(open_regular(&p).is_err());
    let (_u, name) = Unlink::new("hostile-bounded");
    plain_object(&name, 4096, b"hello");
    let bytes = read_entry(OsStr::new(name.file_name()), usize::MAX).unwrap();
    assert_eq!(bytes.len(), 4096);
    assert_eq!(&bytes[..5], b"hello");
}

/// Finding 13: sizes from a crafted header overflow no more.
#[test]
fn overflowing_header_sizes_are_none() {
    let mut b = vec![0u8; HEADER_SIZE];
    b[..8].copy_from_slice(&MAGIC.to_le_bytes());
    b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    b[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    let h = HeaderInfo::from_bytes(&b).unwrap();
    assert_eq!(h.needed_len(), None);
    b[24..32].copy_from_slice(&8u64.to_le_bytes());
    b[120..128].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(HeaderInfo::from_bytes(&b).unwrap().needed_len(), None);
}

/// Finding 7: what reaches a terminal has no control byte left.
#[test]
fn escapes_are_visible_and_reversible() {
    assert_eq!(escape_bytes(b"OS"), "OS");
    assert_eq!(escape_bytes(b"\x1b[2J"), "\\x1b[2J");
    assert_eq!(escape_bytes(b"a\xff"), "a\\xff");
    assert_eq!(escape_bytes("a\u{fffd}".as_bytes()), "a\u{fffd}");
    assert_eq!(escape_bytes(b"back\\slash"), "back\\\\slash");
    assert_eq!(escape_bytes("\u{9b}".as_bytes()), "\\xc2\\x9b");
    assert_eq!(escape_bytes("\u{202e}".as_bytes()), "\\xe2\\x80\\xae");
}

proptest! {
    /// Any bytes: no control character survives, and the bytes come back.
    #[test]
    fn escaping_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let e = escape_bytes(&bytes);
        prop_assert!(!e.chars().any(char::is_control), "{e:?}");
        prop_assert_eq!(listing::unescape_bytes(&e), Some(bytes));
    }

    /// Any bytes and any length decode to a header or to nothing, never a
    /// panic; the sizes it implies never overflow silently.
    #[test]
    fn headers_from_any_bytes(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        magic in any::<bool>(),
    ) {
        if magic && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(&MAGIC.to_le_bytes());
        }
        if let Some(h) = HeaderInfo::from_bytes(&bytes) {
            prop_assert!(bytes.len() >= HEADER_SIZE);
            let exact = u128::from(h.payload_offset) + u128::from(h.payload_size);
            match h.needed_len() {
                Some(n) => prop_assert!(u128::from(n) >= exact),
                None => prop_assert!(
                    exact.next_multiple_of(64) + u128::from(h.trailing_len) > u128::from(u64::MAX)
                        || exact > u128::from(u64::MAX)
                ),
            }
            let _ = escape_bytes(h.type_name.as_bytes());
        }
    }
}

proptest! {
    /// `/proc/PID/maps` lines name files with any bytes (the kernel
    /// escapes only newlines): any line parses or is skipped, never a
    /// panic, and a parsed name is one path component.
    #[test]
    fn maps_lines_from_any_text(
        line in "[0-9a-f]{1,12}-[0-9a-f]{1,12} [rwxps-]{4} [0-9a-f]{1,8} [0-9a-f]{1,3}:[0-9a-f]{1,3} [0-9]{1,20} {0,30}(/dev/shm/)?\\PC{0,40}",
        junk in "\\PC{0,80}",
    ) {
        for l in [line.as_str(), junk.as_str()] {
            if let Some(m) = shm::users::parse_maps_line(l) {
                prop_assert!(!m.file_name.is_empty() && !m.file_name.contains('/'));
            }
        }
    }

    /// `/proc/PID/stat` is parsed with a command name that may hold any
    /// characters (spaces and parentheses included): never a panic.
    #[test]
    fn stat_lines_from_any_text(
        comm in "\\PC{0,20}",
        rest in "[A-Z] [-0-9 ]{0,200}",
        junk in "\\PC{0,120}",
    ) {
        let line = format!("123 ({comm}) {rest}");
        let _ = shm::process::parse_stat(&line);
        let _ = shm::process::parse_stat(&junk);
    }
}
