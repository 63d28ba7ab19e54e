//! What is in `/dev/shm`, whoever made it, and the one definition of
//! *stale* that `shmlab ls`, `ps` and `clean` share ([`Entry::staleness`]).

use crate::process::Liveness;
use crate::users::{FileId, Scan, Use};
use crate::{HEADER_SIZE, HeaderInfo, Mode, SHM_DIR, ShmName};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// What kind of object a file in `/dev/shm` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A POSIX shared-memory object (`shm_open`).
    SharedMemory,
    /// A POSIX named semaphore (`sem_open` makes `/dev/shm/sem.NAME`).
    Semaphore,
    /// A FIFO, directory or anything else someone put there.
    Other,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectKind::SharedMemory => "shm",
            ObjectKind::Semaphore => "sem",
            ObjectKind::Other => "other",
        })
    }
}

/// What a file in `/dev/shm` is, as `lstat(2)`/`fstat(2)` say: a link is
/// never followed to find out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file: what `shm_open` and `sem_open` make.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO (`mkfifo`): opening it for reading would block.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
}

impl FileKind {
    /// The kind of a `std::fs::FileType` (from `symlink_metadata` or a
    /// descriptor's `metadata`, neither of which follows a link).
    pub fn of(t: std::fs::FileType) -> Self {
        if t.is_file() {
            FileKind::Regular
        } else if t.is_dir() {
            FileKind::Directory
        } else if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_fifo() {
            FileKind::Fifo
        } else if t.is_socket() {
            FileKind::Socket
        } else if t.is_char_device() {
            FileKind::CharDevice
        } else {
            FileKind::BlockDevice
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "regular file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "FIFO",
            FileKind::Socket => "socket",
            FileKind::CharDevice => "character device",
            FileKind::BlockDevice => "block device",
        })
    }
}

/// One entry of `/dev/shm`.
#[derive(Clone, Debug)]
pub struct Entry {
    /// File name in `/dev/shm` (`OS`, `sem.lock`), byte for byte: any user
    /// may create any name, valid UTF-8 or not, so it is never rewritten
    /// (a lossy copy could name another file). Print it with
    /// [`Entry::display_name`].
    pub file_name: OsString,
    /// Shared memory, semaphore, other.
    pub kind: ObjectKind,
    /// What the file is (`Other` entries are not regular files).
    pub file_kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: Mode,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's gid.
    pub gid: u32,
    /// Owner's user name (or the uid as text).
    pub owner: String,
    /// Last modification, seconds since the epoch.
    pub mtime: i64,
    /// The shmlab header, for shmlab regions we can read.
    pub header: Option<HeaderInfo>,
    /// Whether we could read the object's first bytes.
    pub readable: bool,
    /// Its file's device and inode: what [`Scan::users`] is keyed by.
    pub id: FileId,
}

/// Who created a shmlab object, as the object records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creator {
    /// The creator's pid.
    pub pid: i32,
    /// Its start time (clock ticks since boot), 0 if not recorded.
    pub start: u64,
    /// Where the pid comes from.
    pub source: CreatorSource,
}

impl Creator {
    /// Whether the creator still runs (pid and start time, through
    /// [`crate::process::liveness`]).
    pub fn liveness(&self) -> Liveness {
        crate::process::liveness(self.pid, self.start)
    }
}

/// Where an object's creator pid is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreatorSource {
    /// The region's header (pid and start time).
    Header,
    /// A `sem.shmlab-…-<pid>-<n>` semaphore's name (pid only).
    SemaphoreName,
    /// A `shmlab-…-<pid>-<n>` object without a header (pid only): one
    /// shmlab made without a header (a trace buffer), or a region whose
    /// creator died before writing its header.
    ObjectName,
}

/// Whether an entry is stale, and why (or why not): the one definition
/// that `shmlab ls`, `ps` and `clean` use.
///
/// An object is **stale** only when shmlab knows its creator
/// ([`Entry::creator`]), that creator is dead for certain (a zombie or gone;
/// [`Liveness::Unknown`] is never dead), *and* no live process maps it or
/// holds it open. A shmlab semaphore also stays while the region it belongs
/// to is not stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// Not shmlab's (no creator recorded): never stale.
    NotShmlab,
    /// The creator runs, or its liveness cannot be known.
    CreatorMayLive {
        /// The creator.
        creator: Creator,
        /// Running or unknown.
        liveness: Liveness,
    },
    /// The creator is dead, but live processes map it or hold it open (the
    /// first of them by pid).
    InUse {
        /// The creator.
        creator: Creator,
        /// Zombie or gone.
        liveness: Liveness,
        /// A process using it.
        user: Use,
        /// How many processes use it.
        users: usize,
    },
    /// The creator is dead and no inspected process uses it, but processes
    /// that could not be inspected could have opened it (the object's
    /// mode lets their user in): not proof that nobody uses it, so it is
    /// kept (see [`Scan::could_use_unseen`]).
    Unseen {
        /// The creator.
        creator: Creator,
        /// Zombie or gone.
        liveness: Liveness,
        /// The uninspected processes that could use it.
        pids: Vec<i32>,
    },
    /// A semaphore whose region is still there and not stale.
    RegionLive {
        /// The creator.
        creator: Creator,
        /// The region's file name.
        region: String,
    },
    /// Stale: the creator is dead and nobody uses it.
    Stale {
        /// The creator.
        creator: Creator,
        /// Zombie or gone.
        liveness: Liveness,
    },
}

impl Staleness {
    /// Whether it may be removed as stale.
    pub fn is_stale(&self) -> bool {
        matches!(self, Staleness::Stale { .. })
    }

    /// Why, in words: `creator pid 12 gone, mapped by nobody`, `mapped by
    /// pid 14 (lab4-race)`, `creator pid 12 alive`, ...
    pub fn reason(&self) -> String {
        match self {
            Staleness::NotShmlab => "not a shmlab object".into(),
            Staleness::CreatorMayLive { creator, liveness } => {
                format!("creator pid {} {liveness}", creator.pid)
            }
            Staleness::InUse {
                creator,
                liveness,
                user,
                users,
            } => {
                let others = match users - 1 {
                    0 => String::new(),
                    1 => " and 1 other process".into(),
                    n => format!(" and {n} other processes"),
                };
                let how = if user.mapped() { "mapped" } else { "held open" };
                format!(
                    "{how} by pid {} ({}){others}, though its creator pid {} is {liveness}",
                    user.pid,
                    escape_bytes(user.comm.as_bytes()),
                    creator.pid
                )
            }
            Staleness::Unseen { creator, pids, .. } => {
                let list: Vec<String> = pids.iter().map(i32::to_string).collect();
                format!(
                    "its creator pid {} is dead, but pid {} could not be inspected and could be using it (its mode lets them open it): rerun as their user or as root to see",
                    creator.pid,
                    list.join(", ")
                )
            }
            Staleness::RegionLive { region, .. } => {
                format!("its region /{region} is still there and not stale")
            }
            Staleness::Stale { creator, liveness } => format!(
                "creator pid {} {liveness}, and no live process maps it or holds it open",
                creator.pid
            ),
        }
    }
}

impl Entry {
    /// The object's name for `shm_open`/`shm_unlink` (semaphores included:
    /// `shm_unlink("/sem.X")` removes `/dev/shm/sem.X`); `None` for a file
    /// name that is no valid object name (not UTF-8, for one).
    pub fn name(&self) -> Option<ShmName> {
        ShmName::parse(self.file_name.to_str()?).ok()
    }

    /// The file name for printing: [`escape_bytes`] of its exact bytes, so
    /// a name holding terminal escapes or invalid UTF-8 prints as visible
    /// `\xNN` sequences.
    pub fn display_name(&self) -> String {
        escape_bytes(self.file_name.as_bytes())
    }

    /// Who created it, where shmlab can tell: a region's header, or the pid
    /// in a shmlab semaphore's name. `None` for anything else.
    pub fn creator(&self) -> Option<Creator> {
        if let Some(h) = &self.header {
            return Some(Creator {
                pid: h.creator_pid,
                start: h.creator_start,
                source: CreatorSource::Header,
            });
        }
        let source = if self.is_shmlab_semaphore() {
            CreatorSource::SemaphoreName
        } else if self.is_shmlab_object_without_header() {
            CreatorSource::ObjectName
        } else {
            return None;
        };
        pid_in_name(self.file_name.to_str()?).map(|pid| Creator {
            pid,
            start: 0,
            source,
        })
    }

    /// The processes the scan found mapping it or holding it open.
    pub fn users<'s>(&self, scan: &'s Scan) -> &'s [Use] {
        scan.users(self.id)
    }

    /// Whether it is stale (see [`Staleness`]), given one [`Scan`] of
    /// `/proc` and the whole listing it is part of (a shmlab semaphore is
    /// kept while its region is).
    pub fn staleness(&self, scan: &Scan, listing: &[Entry]) -> Staleness {
        let Some(creator) = self.creator() else {
            return Staleness::NotShmlab;
        };
        let liveness = creator.liveness();
        if liveness.may_be_alive() {
            return Staleness::CreatorMayLive { creator, liveness };
        }
        if let [first, ..] = self.users(scan) {
            return Staleness::InUse {
                creator,
                liveness,
                user: first.clone(),
                users: self.users(scan).len(),
            };
        }
        let pids = scan.could_use_unseen(self.uid, self.gid, self.mode);
        if !pids.is_empty() {
            return Staleness::Unseen {
                creator,
                liveness,
                pids,
            };
        }
        if self.kind == ObjectKind::Semaphore {
            let sem_of = &self.file_name.as_bytes()["sem.".len()..];
            if let Some(r) = listing.iter().find(|r| {
                r.header.is_some()
                    && sem_of.starts_with(r.file_name.as_bytes())
                    && !r.staleness(scan, &[]).is_stale()
            }) {
                return Staleness::RegionLive {
                    creator,
                    region: r.display_name(),
                };
            }
        }
        Staleness::Stale { creator, liveness }
    }

    /// [`staleness`](Self::staleness) with a fresh scan of `/proc` and
    /// listing: for one entry. To judge many, scan once and call
    /// `staleness`.
    pub fn stale(&self) -> bool {
        let scan = crate::users::scan().unwrap_or_default();
        let listing = list().unwrap_or_default();
        self.staleness(&scan, &listing).is_stale()
    }

    /// For a semaphore `sem.X`: whether a shmlab region `X` or `X-…` refers
    /// to it is not knowable from the file; shmlab names its semaphores
    /// `sem.shmlab-…`, which this reports.
    pub fn is_shmlab_semaphore(&self) -> bool {
        self.kind == ObjectKind::Semaphore && self.file_name.as_bytes().starts_with(b"sem.shmlab-")
    }

    /// A readable shared-memory object named `shmlab-…` (as
    /// [`ShmName::unique`] names everything shmlab makes) with no region
    /// header: its creator is the pid in its name.
    pub fn is_shmlab_object_without_header(&self) -> bool {
        self.kind == ObjectKind::SharedMemory
            && self.readable
            && self.header.is_none()
            && self.file_name.as_bytes().starts_with(b"shmlab-")
    }

    /// Removes this entry, which the caller judged (stale, say) from this
    /// listing, making sure the file removed is the file judged: it is
    /// opened again ([`open_regular`]: no link followed), its device and
    /// inode, owner and (for a region) header must be what the listing
    /// saw, and only then is that exact name (its bytes, not a rewritten
    /// copy) unlinked.
    ///
    /// `/dev/shm` is sticky (mode `1777`): only a file's owner (or root)
    /// can rename or remove it, so between this check and the `unlink(2)`
    /// no other user can put another file under the name of a file of
    /// ours. The error says what changed.
    pub fn remove_judged(&self) -> io::Result<()> {
        let path = Path::new(SHM_DIR).join(&self.file_name);
        if self.file_kind != FileKind::Regular {
            // Never opened (a FIFO would block, a device might act):
            // `lstat` and `unlink` act on the entry itself, not on what a
            // link points to.
            let md = path.symlink_metadata()?;
            if (md.dev(), md.ino(), md.uid()) != (self.id.dev, self.id.ino, self.uid) {
                return Err(io::Error::other(format!(
                    "{} changed since it was judged; run the command again",
                    self.display_name()
                )));
            }
            return std::fs::remove_file(&path);
        }
        let f = open_regular(&path)?;
        let md = f.metadata()?;
        let changed = |what: &str| {
            io::Error::other(format!(
                "{} changed since it was judged ({what}); run the command again",
                self.display_name()
            ))
        };
        if (FileId {
            dev: md.dev(),
            ino: md.ino(),
        }) != self.id
        {
            return Err(changed("another file now has its name"));
        }
        if md.uid() != self.uid {
            return Err(changed("its owner"));
        }
        if self.header.is_some() {
            let now = HeaderInfo::from_bytes(&read_bounded(&f, 0, HEADER_SIZE)?);
            if now != self.header {
                return Err(changed("its header"));
            }
        }
        std::fs::remove_file(&path)
    }
}

/// Opens `path`, which must be a regular file, the one way shmlab opens
/// anything in `/dev/shm` (a directory every user can write):
/// `lstat(2)` first, so a FIFO, socket, device or directory is never even
/// opened; then `open(2)` with `O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
/// O_NOCTTY | O_CLOEXEC`, so a symlink swapped in meanwhile fails
/// (`ELOOP`) instead of being followed and a FIFO swapped in cannot block;
/// then `fstat(2)` of the descriptor, which must be a regular file with the
/// device and inode `lstat` saw. Anything else is an `InvalidInput` error
/// naming what the file is.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let not_regular = |kind: FileKind| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a {kind}, not a regular file: not opened",
                escape_bytes(path.as_os_str().as_bytes())
            ),
        )
    };
    let before = path.symlink_metadata()?;
    let kind = FileKind::of(before.file_type());
    if kind != FileKind::Regular {
        return Err(not_regular(kind));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    let md = f.metadata()?;
    let kind = FileKind::of(md.file_type());
    if kind != FileKind::Regular {
        return Err(not_regular(kind));
    }
    if (md.dev(), md.ino()) != (before.dev(), before.ino()) {
        return Err(io::Error::other(format!(
            "{} was replaced while it was being opened",
            escape_bytes(path.as_os_str().as_bytes())
        )));
    }
    Ok(f)
}

/// Reads at most `max` bytes from `offset` of `f` with `pread(2)`,
/// stopping at the end of the file: the buffer grows with what is read,
/// never with what was asked, so `max` may be anything.
pub fn read_bounded(f: &File, offset: u64, max: usize) -> io::Result<Vec<u8>> {
    const CHUNK: usize = 64 << 10;
    let mut out = Vec::new();
    let mut at = offset;
    while out.len() < max {
        let want = (max - out.len()).min(CHUNK);
        let start = out.len();
        out.resize(start + want, 0);
        let n = loop {
            match f.read_at(&mut out[start..], at) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        out.truncate(start + n);
        if n == 0 {
            break;
        }
        at = at
            .checked_add(n as u64)
            .ok_or_else(|| io::Error::other("offset overflow"))?;
    }
    Ok(out)
}

/// Reads at most `max` bytes from `offset` of the entry `file_name` of
/// `/dev/shm`, opened by [`open_regular`]. `file_name` is one path
/// component: empty, `.`, `..` or a name containing `/` or NUL is refused
/// (`InvalidInput`), so a name read from shared memory can never reach a
/// file outside `/dev/shm`.
pub fn read_entry_at(file_name: &OsStr, offset: u64, max: usize) -> io::Result<Vec<u8>> {
    let f = open_entry(file_name)?;
    read_bounded(&f, offset, max)
}

/// [`read_entry_at`] from offset 0.
pub fn read_entry(file_name: &OsStr, max: usize) -> io::Result<Vec<u8>> {
    read_entry_at(file_name, 0, max)
}

/// Opens the entry `file_name` of `/dev/shm` by [`open_regular`], after
/// checking that it is one path component (see [`read_entry_at`]).
pub fn open_entry(file_name: &OsStr) -> io::Result<File> {
    let b = file_name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{:?} is not a file name in {SHM_DIR}: not opened",
                escape_bytes(b)
            ),
        ));
    }
    open_regular(&Path::new(SHM_DIR).join(file_name))
}

/// Bytes from outside (file names, type tags, commands) as text that is
/// safe to print on a terminal: printable characters of valid UTF-8 pass
/// through; a backslash becomes `\\`; every byte of a control character
/// (C0, DEL, C1: what terminal escapes are made of), of invalid UTF-8, and
/// of the invisible characters that reorder or hide text (bidirectional
/// overrides and isolates, zero-width characters, the BOM) becomes
/// `\xNN`. The rule is reversible: the original bytes can be recovered.
pub fn escape_bytes(b: &[u8]) -> String {
    use std::fmt::Write;
    let hidden = |c: char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() || hidden(c) {
                let mut buf = [0; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// The bytes [`escape_bytes`] was given, back from its output; `None` if
/// `s` is not something it writes (a lone backslash, a bad `\x` escape).
pub fn unescape_bytes(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'x' => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                if !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Lists every entry of `/dev/shm`, sorted by name (its bytes).
///
/// Every entry is first `lstat`ed; only regular files are opened, by
/// [`open_regular`], and their size, mode, owner and identity are then
/// the descriptor's (`fstat`), so what is reported is what was read. A
/// FIFO, socket, directory, symlink or device is listed as
/// [`ObjectKind::Other`] with its [`FileKind`] and never opened, so no
/// entry anyone creates can block, redirect or grow the listing.
pub fn list() -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for dirent in std::fs::read_dir(SHM_DIR)? {
        let dirent = dirent?;
        let path = dirent.path();
        let Ok(lmd) = path.symlink_metadata() else {
            continue; // removed while we looked
        };
        let file_name = dirent.file_name();
        let file_kind = FileKind::of(lmd.file_type());
        let kind = if file_kind != FileKind::Regular {
            ObjectKind::Other
        } else if file_name.as_bytes().starts_with(b"sem.") {
            ObjectKind::Semaphore
        } else {
            ObjectKind::SharedMemory
        };
        let (md, header, readable) = match kind {
            ObjectKind::Other => (lmd, None, false),
            _ => match open_regular(&path) {
                Ok(f) => {
                    let header = if kind == ObjectKind::SharedMemory {
                        read_bounded(&f, 0, HEADER_SIZE)
                            .ok()
                            .and_then(|b| HeaderInfo::from_bytes(&b))
                    } else {
                        None
                    };
                    match f.metadata() {
                        Ok(md) => (md, header, true),
                        Err(_) => (lmd, None, false),
                    }
                }
                Err(_) => (lmd, None, false),
            },
        };
        out.push(Entry {
            kind,
            file_kind,
            size: md.size(),
            mode: Mode::from_bits_truncate(md.mode()),
            uid: md.uid(),
            gid: md.gid(),
            owner: crate::users::user_name(md.uid()),
            mtime: md.mtime(),
            header,
            readable,
            id: FileId {
                dev: md.dev(),
                ino: md.ino(),
            },
            file_name,
        });
    }
    out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(out)
}

/// The creator pid in a `sem.shmlab-…-<pid>-<n>…` name
/// ([`ShmName::unique`]'s form): the first of the last two adjacent
/// all-digit fields.
pub fn pid_in_name(file_name: &str) -> Option<i32> {
    let fields: Vec<&str> = file_name.split(['-', '.', '_']).collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (1..fields.len())
        .rev()
        .find(|&i| digits(fields[i - 1]) && digits(fields[i]))
        .and_then(|i| fields[i - 1].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_in_names() {
        assert_eq!(pid_in_name("sem.shmlab-race-sem-1234-0"), Some(1234));
        assert_eq!(pid_in_name("sem.shmlab-race-sem-1234-0-lock"), Some(1234));
        assert_eq!(pid_in_name("sem.shmlab-demo"), None);
    }
}
