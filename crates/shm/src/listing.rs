//! What is in `/dev/shm`, whoever made it.

use crate::{HeaderInfo, Mode, SHM_DIR, ShmName};
use std::os::unix::fs::MetadataExt;

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

/// One entry of `/dev/shm`.
#[derive(Clone, Debug)]
pub struct Entry {
    /// File name in `/dev/shm` (`OS`, `sem.lock`).
    pub file_name: String,
    /// Shared memory, semaphore, other.
    pub kind: ObjectKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: Mode,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's user name (or the uid as text).
    pub owner: String,
    /// Last modification, seconds since the epoch.
    pub mtime: i64,
    /// The shmlab header, for shmlab regions we can read.
    pub header: Option<HeaderInfo>,
    /// Whether we could read the object's first bytes.
    pub readable: bool,
}

impl Entry {
    /// The object's name for `shm_open`/`shm_unlink` (semaphores included:
    /// `shm_unlink("/sem.X")` removes `/dev/shm/sem.X`).
    pub fn name(&self) -> Option<ShmName> {
        ShmName::parse(&self.file_name).ok()
    }

    /// A shmlab region whose creator is dead for certain: gone, its pid
    /// reused, or a zombie its parent has not reaped. A creator whose
    /// liveness cannot be known ([`Liveness::Unknown`](crate::process::Liveness::Unknown)) is *not* dead.
    pub fn stale(&self) -> bool {
        self.header
            .as_ref()
            .is_some_and(|h| h.creator_liveness().is_dead())
    }

    /// For a semaphore `sem.X`: whether a shmlab region `X` or `X-…` refers
    /// to it is not knowable from the file; shmlab names its semaphores
    /// `sem.shmlab-…`, which this reports.
    pub fn is_shmlab_semaphore(&self) -> bool {
        self.kind == ObjectKind::Semaphore && self.file_name.starts_with("sem.shmlab-")
    }
}

/// Lists every entry of `/dev/shm`, sorted by name.
pub fn list() -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for dirent in std::fs::read_dir(SHM_DIR)? {
        let dirent = dirent?;
        let Ok(md) = dirent.path().symlink_metadata() else {
            continue; // removed while we looked
        };
        let file_name = dirent.file_name().to_string_lossy().into_owned();
        let kind = if !md.file_type().is_file() {
            ObjectKind::Other
        } else if file_name.starts_with("sem.") {
            ObjectKind::Semaphore
        } else {
            ObjectKind::SharedMemory
        };
        let (header, readable) = if kind == ObjectKind::SharedMemory {
            read_header(&dirent.path())
        } else {
            (None, std::fs::File::open(dirent.path()).is_ok())
        };
        out.push(Entry {
            kind,
            size: md.size(),
            mode: Mode::from_bits_truncate(md.mode()),
            uid: md.uid(),
            owner: user_name(md.uid()),
            mtime: md.mtime(),
            header,
            readable,
            file_name,
        });
    }
    out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(out)
}

fn read_header(path: &std::path::Path) -> (Option<HeaderInfo>, bool) {
    match crate::region::read_header_file(path) {
        Ok(h) => (h, true),
        Err(_) => (None, false),
    }
}

/// The user name for `uid` (from the passwd database), or the number.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}
