//! What is in `/dev/shm`, whoever made it, and the one definition of
//! *stale* that `shmlab ls`, `ps` and `clean` share ([`Entry::staleness`]).

use crate::process::Liveness;
use crate::users::{FileId, Scan, Use};
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
                    user.pid, user.comm, creator.pid
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
    /// `shm_unlink("/sem.X")` removes `/dev/shm/sem.X`).
    pub fn name(&self) -> Option<ShmName> {
        ShmName::parse(&self.file_name).ok()
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
        if self.is_shmlab_semaphore() {
            return pid_in_name(&self.file_name).map(|pid| Creator {
                pid,
                start: 0,
                source: CreatorSource::SemaphoreName,
            });
        }
        None
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
        if self.kind == ObjectKind::Semaphore {
            let sem_of = &self.file_name["sem.".len()..];
            if let Some(r) = listing.iter().find(|r| {
                r.header.is_some()
                    && sem_of.starts_with(r.file_name.as_str())
                    && !r.staleness(scan, &[]).is_stale()
            }) {
                return Staleness::RegionLive {
                    creator,
                    region: r.file_name.clone(),
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

fn read_header(path: &std::path::Path) -> (Option<HeaderInfo>, bool) {
    match crate::region::read_header_file(path) {
        Ok(h) => (h, true),
        Err(_) => (None, false),
    }
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

/// The user name for `uid` (from the passwd database), or the number.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
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
