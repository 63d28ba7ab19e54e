//! Who uses each object in `/dev/shm`: one scan of `/proc`.
//!
//! POSIX shared memory has no `ipcs`: nothing ties an object to the
//! processes that use it. The kernel does, per process: `/proc/PID/maps`
//! lists every mapping with the file behind it (`/dev/shm/NAME`, followed by
//! ` (deleted)` once the name was unlinked), and `/proc/PID/fd/N` links to
//! every open descriptor's file. A named semaphore is a mapping too:
//! `sem_open` maps `/dev/shm/sem.NAME`.
//!
//! [`scan`] walks `/proc/[0-9]*` once and records, for every object file on
//! the `/dev/shm` file system (by device and inode, so a name reused after
//! an unlink is not confused with the old object), the processes that map
//! it or hold it open, with their command and user.
//!
//! **Nothing is guessed.** Another user's process cannot be inspected
//! without privilege (`maps` and `fd` answer `EACCES`): such processes are
//! counted in [`Scan::not_inspected`] and must be reported as such, never
//! assumed to use nothing. A process that exits while the scan runs is
//! simply not there. Zombies have neither mappings nor descriptors, so a
//! process found using an object is a live one.
//!
//! Liveness itself (running, zombie, gone) is [`crate::process`]'s; this
//! module reads `maps`, `fd`, `comm` and `status`, never `stat`.

use crate::SHM_DIR;
use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// An object file's identity: the device and inode of its file in the
/// `/dev/shm` tmpfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    /// `st_dev` (as `stat(2)` encodes it).
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// One process's use of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    /// The process id.
    pub pid: i32,
    /// Its command (`/proc/PID/comm`, at most 15 bytes).
    pub comm: String,
    /// Its effective uid (`/proc/PID/status`).
    pub uid: u32,
    /// The user name for `uid` (or the number).
    pub user: String,
    /// How many of its mappings (`maps` lines) are of the object: 0 if it
    /// only holds it open.
    pub mappings: usize,
    /// Its open descriptors on the object (`/proc/PID/fd`), ascending.
    pub fds: Vec<i32>,
}

impl Use {
    /// Whether it maps the object (at least one `maps` line).
    pub fn mapped(&self) -> bool {
        self.mappings > 0
    }

    /// `mapped`, `open (fd 3)`, `mapped, open (fd 3, 5)`.
    pub fn how(&self) -> String {
        let mut parts = Vec::new();
        if self.mapped() {
            parts.push(if self.mappings == 1 {
                "mapped".to_string()
            } else {
                format!("mapped x{}", self.mappings)
            });
        }
        if !self.fds.is_empty() {
            let fds: Vec<String> = self.fds.iter().map(i32::to_string).collect();
            parts.push(format!("open (fd {})", fds.join(", ")));
        }
        parts.join(", ")
    }
}

/// An object file some process uses, as `/proc` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its file name in `/dev/shm` (`OS`, `sem.lock`) as `/proc` showed it.
    pub file_name: String,
    /// `/proc` marked it ` (deleted)`: its name was unlinked while it is
    /// still mapped or open (lab 3's "unlinked while mapped").
    pub deleted: bool,
    /// The processes using it, by pid.
    pub users: Vec<Use>,
}

/// What one scan of `/proc` found.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    objects: BTreeMap<FileId, Object>,
    /// Processes whose `maps` and `fd` were both read.
    pub inspected: usize,
    /// Processes that exist but whose `maps` or `fd` could not be read
    /// (permission denied: another user's process without privilege, or
    /// one protected even from root, as a sandbox's init can be).
    /// What they use is not known, and not guessed.
    pub not_inspected: Vec<i32>,
    /// The credentials of the processes in `not_inspected`, where
    /// `/proc/PID/status` could be read (`None` otherwise).
    unseen_creds: Vec<(i32, Option<Creds>)>,
}

/// A process's effective uid, effective gid and supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Creds {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

fn creds_of(pid: i32) -> Option<Creds> {
    let status = std::fs::read(format!("/proc/{pid}/status")).ok()?;
    let status = String::from_utf8_lossy(&status);
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key));
    let second = |key: &str| field(key)?.split_whitespace().nth(1)?.parse().ok();
    Some(Creds {
        uid: second("Uid:")?,
        gid: second("Gid:")?,
        groups: field("Groups:")?
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    })
}

impl Scan {
    /// The processes that map or hold open the object with this identity
    /// (empty if none was found).
    pub fn users(&self, id: FileId) -> &[Use] {
        self.objects.get(&id).map_or(&[], |o| o.users.as_slice())
    }

    /// The processes that could not be inspected but could have opened an
    /// object of owner `uid`:`gid` with `mode`, by its group and other
    /// permission bits: a process of another user in the object's group
    /// when the group may read or write it, any other user's process when
    /// others may, and any process whose credentials could not be read.
    /// That they were not seen using it is not proof that they do not,
    /// so `clean` keeps such an object (see
    /// [`crate::listing::Staleness::Unseen`]).
    ///
    /// Not counted: uninspected processes running as the owner itself or
    /// as root, which could open any object of the owner's. The tool
    /// running as a user can inspect that user's own processes, and as
    /// root every process but those protected even from root (a sandbox's
    /// init, say); counting those would keep every object for ever.
    /// shmlab's objects are created `0600`, so by default nobody else
    /// can have opened them.
    pub fn could_use_unseen(&self, uid: u32, gid: u32, mode: crate::Mode) -> Vec<i32> {
        let bits = mode.bits();
        let (group_rw, other_rw) = (bits & 0o060 != 0, bits & 0o006 != 0);
        self.unseen_creds
            .iter()
            .filter(|(_, creds)| match creds {
                None => group_rw || other_rw,
                Some(c) if c.uid == uid || c.uid == 0 => false,
                // The group's bits decide for a member, even where
                // others may more (as the kernel's permission check does).
                Some(c) if c.gid == gid || c.groups.contains(&gid) => group_rw,
                Some(_) => other_rw,
            })
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Every object found in use, with its identity.
    pub fn objects(&self) -> impl Iterator<Item = (&FileId, &Object)> {
        self.objects.iter()
    }

    /// A one-line caveat when some processes could not be inspected
    /// ([`caveat`]); `None` when all were.
    pub fn caveat(&self) -> Option<String> {
        caveat(self.not_inspected.len())
    }
}

/// `3 processes could not be inspected (...)`: what to say when `n`
/// processes could not be inspected; `None` for 0.
pub fn caveat(n: usize) -> Option<String> {
    (n > 0).then(|| {
        let one = n == 1;
        let hint = if nix::unistd::geteuid().is_root() {
            ""
        } else {
            "; run as root to see more"
        };
        format!(
            "{n} process{} could not be inspected (reading {} /proc maps or fd was refused): what {} map{} or hold{} open is not known{hint}",
            if one { "" } else { "es" },
            if one { "its" } else { "their" },
            if one { "it" } else { "they" },
            if one { "s" } else { "" },
            if one { "s" } else { "" },
        )
    })
}

/// What a `/dev/shm` path from `/proc` says: the file name and whether the
/// kernel marked it ` (deleted)`; `None` for a path outside `/dev/shm`.
pub fn shm_file_in_path(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix(SHM_DIR)?.strip_prefix('/')?;
    let (name, deleted) = match rest.strip_suffix(" (deleted)") {
        Some(n) => (n, true),
        None => (rest, false),
    };
    (!name.is_empty() && !name.contains('/')).then_some((name, deleted))
}

/// One line of `/proc/PID/maps` that maps a `/dev/shm` file: its device
/// (`major:minor`, hex, as the kernel prints it), inode, file name and
/// whether it was deleted. `None` for any other line, and for a malformed
/// one.
///
/// The line is `address perms offset dev inode path`, the path padded
/// with spaces after the inode and possibly containing spaces itself.
pub fn parse_maps_line(line: &str) -> Option<MapsEntry<'_>> {
    let mut rest = line;
    let mut fields = [""; 5];
    for f in &mut fields {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ')?;
        *f = &rest[..end];
        rest = &rest[end..];
    }
    let path = rest.trim_start_matches(' ');
    let (file_name, deleted) = shm_file_in_path(path)?;
    let (major, minor) = fields[3].split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    Some(MapsEntry {
        dev: libc::makedev(major, minor),
        ino: fields[4].parse().ok()?,
        file_name,
        deleted,
    })
}

/// A `/dev/shm` mapping from `/proc/PID/maps` (see [`parse_maps_line`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsEntry<'a> {
    /// The file's device, encoded as `st_dev`.
    pub dev: u64,
    /// The file's inode.
    pub ino: u64,
    /// Its name in `/dev/shm`.
    pub file_name: &'a str,
    /// Marked ` (deleted)`.
    pub deleted: bool,
}

/// A process's command and effective uid, from `/proc/PID/comm` and
/// `/proc/PID/status` (`None` if it is gone or hidden).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The pid (or tid) asked about.
    pub pid: i32,
    /// Its thread group, the process it belongs to (`Tgid:`): itself for a
    /// process, the owning process for another thread's tid.
    pub tgid: i32,
    /// `comm`: the command, at most 15 bytes.
    pub comm: String,
    /// Effective uid.
    pub uid: u32,
    /// The user name for `uid`.
    pub user: String,
}

/// Reads [`ProcessInfo`] for a pid or a thread id (`/proc/TID` exists for
/// every thread, though it is not listed).
pub fn process_info(pid: i32) -> Option<ProcessInfo> {
    if pid <= 0 {
        return None;
    }
    let status = std::fs::read(format!("/proc/{pid}/status")).ok()?;
    let status = String::from_utf8_lossy(&status);
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    let tgid = field("Tgid:")?.parse().ok()?;
    // `Uid:` is real, effective, saved, filesystem: `ps` shows the effective.
    let uid = field("Uid:")?.split_whitespace().nth(1)?.parse().ok()?;
    // Bytes: a thread may name itself anything (`prctl(PR_SET_NAME)`),
    // and a name that is not UTF-8 must not hide the whole process.
    let comm = std::fs::read(format!("/proc/{pid}/comm"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .trim_end_matches('\n')
                .to_string()
        })
        .or_else(|_| field("Name:").map(str::to_string).ok_or(()))
        .ok()?;
    Some(ProcessInfo {
        pid,
        tgid,
        comm,
        uid,
        user: user_name(uid),
    })
}

/// The user name for `uid` (from the passwd database), or the number.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// Why reading one process failed.
enum Unreadable {
    /// It went away during the scan: not a user of anything.
    Gone,
    /// Permission denied (or any other error): not inspected.
    Denied,
}

fn classify(e: &io::Error) -> Unreadable {
    match e.kind() {
        io::ErrorKind::NotFound => Unreadable::Gone,
        _ if e.raw_os_error() == Some(libc::ESRCH) => Unreadable::Gone,
        _ => Unreadable::Denied,
    }
}

/// Per object file of one process: its name, whether deleted, and what
/// the process has of it (a count of mappings, a list of descriptors).
type PerFile<T> = BTreeMap<FileId, (String, bool, T)>;

/// The `/dev/shm` mappings of one process, counted per file.
fn maps_of(pid: &str) -> Result<PerFile<usize>, Unreadable> {
    // Bytes, not a String: a mapped file's name may be any bytes, and one
    // invalid UTF-8 name must not make the whole process uninspectable.
    let raw = std::fs::read(format!("/proc/{pid}/maps")).map_err(|e| classify(&e))?;
    let text = String::from_utf8_lossy(&raw);
    let mut out: PerFile<usize> = BTreeMap::new();
    for line in text.lines() {
        if let Some(m) = parse_maps_line(line) {
            let id = FileId {
                dev: m.dev,
                ino: m.ino,
            };
            out.entry(id)
                .or_insert_with(|| (m.file_name.to_string(), m.deleted, 0))
                .2 += 1;
        }
    }
    Ok(out)
}

/// The descriptors of one process on `/dev/shm` files.
fn fds_of(pid: &str) -> Result<PerFile<Vec<i32>>, Unreadable> {
    let dir = Path::new("/proc").join(pid).join("fd");
    let mut out: PerFile<Vec<i32>> = BTreeMap::new();
    for dirent in std::fs::read_dir(&dir).map_err(|e| classify(&e))? {
        let Ok(dirent) = dirent else { continue };
        let Ok(target) = std::fs::read_link(dirent.path()) else {
            continue; // closed meanwhile
        };
        let target = target.to_string_lossy();
        let Some((file_name, deleted)) = shm_file_in_path(&target) else {
            continue;
        };
        // Following the link reaches the open file itself, deleted or not.
        let Ok(md) = std::fs::metadata(dirent.path()) else {
            continue;
        };
        let Some(fd) = dirent.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let id = FileId {
            dev: md.dev(),
            ino: md.ino(),
        };
        out.entry(id)
            .or_insert_with(|| (file_name.to_string(), deleted, Vec::new()))
            .2
            .push(fd);
    }
    for v in out.values_mut() {
        v.2.sort_unstable();
    }
    Ok(out)
}

/// Walks `/proc/[0-9]*` once: every process's `/dev/shm` mappings and
/// descriptors. Fails only if `/proc` itself cannot be listed.
pub fn scan() -> io::Result<Scan> {
    let mut scan = Scan::default();
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")?
        .filter_map(|d| d.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let p = pid.to_string();
        let maps = maps_of(&p);
        let fds = fds_of(&p);
        let (maps, fds) = match (maps, fds) {
            (Err(Unreadable::Gone), _) | (_, Err(Unreadable::Gone)) => continue,
            (Ok(m), Ok(f)) => {
                scan.inspected += 1;
                (m, f)
            }
            // What could be read is a fact; the process still counts as not
            // inspected, since what could not be read is unknown.
            (m, f) => {
                scan.not_inspected.push(pid);
                scan.unseen_creds.push((pid, creds_of(pid)));
                (m.unwrap_or_default(), f.unwrap_or_default())
            }
        };
        if maps.is_empty() && fds.is_empty() {
            continue;
        }
        let Some(info) = process_info(pid) else {
            continue; // exited meanwhile
        };
        let blank = |name: String, deleted: bool| Object {
            file_name: name,
            deleted,
            users: vec![Use {
                pid,
                comm: info.comm.clone(),
                uid: info.uid,
                user: info.user.clone(),
                mappings: 0,
                fds: Vec::new(),
            }],
        };
        let mut uses: BTreeMap<FileId, Object> = BTreeMap::new();
        for (id, (name, deleted, n)) in maps {
            uses.entry(id).or_insert_with(|| blank(name, deleted)).users[0].mappings = n;
        }
        for (id, (name, deleted, list)) in fds {
            uses.entry(id).or_insert_with(|| blank(name, deleted)).users[0].fds = list;
        }
        for (id, o) in uses {
            let entry = scan.objects.entry(id).or_insert_with(|| Object {
                users: Vec::new(),
                ..o.clone()
            });
            entry.users.extend(o.users);
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let l = "7f1c2a400000-7f1c2a402000 rw-s 00000000 00:1a 1234                       /dev/shm/shmlab-race-futex-77-0";
        let m = parse_maps_line(l).unwrap();
        assert_eq!(
            (m.file_name, m.deleted, m.ino, m.dev),
            (
                "shmlab-race-futex-77-0",
                false,
                1234,
                libc::makedev(0, 0x1a)
            )
        );
        let d = "7f1c2a400000-7f1c2a402000 rw-s 00000000 00:1a 99 /dev/shm/my name (deleted)";
        let m = parse_maps_line(d).unwrap();
        assert_eq!((m.file_name, m.deleted, m.ino), ("my name", true, 99));
        let sem = "7f00-7f01 rw-s 00000000 00:1a 5 /dev/shm/sem.lock";
        assert_eq!(parse_maps_line(sem).unwrap().file_name, "sem.lock");
        for other in [
            "55eb6019c000-55eb6019e000 r--p 00000000 fe:00 247030   /usr/bin/cat",
            "7ffd-7ffe rw-p 00000000 00:00 0                          [stack]",
            "7f00-7f01 rw-p 00000000 00:00 0",
            "7f00-7f01 rw-s 00000000 00:1a 5 /dev/shm/",
            "7f00-7f01 rw-s 00000000 00:1a 5 /dev/shm/a/b",
            "7f00-7f01 rw-s 00000000 zz:1a 5 /dev/shm/x",
            "7f00-7f01 rw-s 00000000 00:1a five /dev/shm/x",
            "",
        ] {
            assert_eq!(parse_maps_line(other), None, "{other:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(shm_file_in_path("/dev/shm/OS"), Some(("OS", false)));
        assert_eq!(
            shm_file_in_path("/dev/shm/OS (deleted)"),
            Some(("OS", true))
        );
        assert_eq!(shm_file_in_path("/dev/shmOS"), None);
        assert_eq!(shm_file_in_path("/tmp/OS"), None);
    }

    #[test]
    fn this_process_info() {
        let me = std::process::id() as i32;
        let info = process_info(me).unwrap();
        assert_eq!(info.tgid, me);
        assert_eq!(info.uid, nix::unistd::geteuid().as_raw());
        assert!(!info.comm.is_empty());
        let tid = std::thread::scope(|s| s.spawn(crate::gettid).join().unwrap());
        // The thread has exited: no info (and no guess).
        assert_eq!(process_info(tid), None);
        assert_eq!(process_info(0), None);
    }

    /// "Processes that cannot be inspected are not proof that nobody uses
    /// an object": which of them `clean` must assume could.
    #[test]
    fn uninspected_processes_that_could_open_an_object() {
        let creds = |uid, gid, groups: &[u32]| {
            Some(Creds {
                uid,
                gid,
                groups: groups.to_vec(),
            })
        };
        let scan = Scan {
            not_inspected: vec![1, 2, 3, 4, 5],
            unseen_creds: vec![
                (1, creds(0, 0, &[])),          // root: not counted
                (2, creds(1000, 1000, &[])),    // the owner itself: not counted
                (3, creds(1001, 1001, &[100])), // another user in the group
                (4, creds(1002, 1002, &[])),    // another user
                (5, None),                      // unknown credentials
            ],
            ..Scan::default()
        };
        let mode = |m| crate::Mode::from_bits_truncate(m);
        assert_eq!(
            scan.could_use_unseen(1000, 100, mode(0o600)),
            Vec::<i32>::new()
        );
        assert_eq!(scan.could_use_unseen(1000, 100, mode(0o640)), vec![3, 5]);
        assert_eq!(scan.could_use_unseen(1000, 100, mode(0o666)), vec![3, 4, 5]);
        assert_eq!(scan.could_use_unseen(1000, 100, mode(0o604)), vec![4, 5]);
    }

    #[test]
    fn caveat_counts() {
        let mut s = Scan::default();
        assert_eq!(s.caveat(), None);
        s.not_inspected = vec![1];
        assert!(s.caveat().unwrap().starts_with("1 process could not"));
        s.not_inspected = vec![1, 2];
        assert!(s.caveat().unwrap().starts_with("2 processes could not"));
    }
}
