//! One error type for the core crate; each message says what went wrong and
//! how to fix it, on one line, so a lab can print it and exit 2.

use crate::{Mode, ShmName};

/// Result with the core crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong creating, opening, mapping or checking a shared object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name that `shm_open` would refuse or misread.
    #[error("invalid shared-memory name {input:?}: {reason}; use a name like /shmlab-demo")]
    InvalidName {
        /// What the user gave.
        input: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A mode that is not 0..=0777 in octal or nine `rwx-` characters.
    #[error("invalid mode {input:?}: {reason}; use octal like 0640 or symbolic like rw-r-----")]
    InvalidMode {
        /// What the user gave.
        input: String,
        /// Why it is refused.
        reason: String,
    },
    /// A size that is zero, malformed or too large.
    #[error("invalid size {input:?}: {reason}; use a byte count like 4096, 64K or 1M")]
    InvalidSize {
        /// What the user gave.
        input: String,
        /// Why it is refused.
        reason: String,
    },
    /// `O_CREAT | O_EXCL` found the name taken.
    #[error(
        "{name} already exists in /dev/shm; pick another --name, or remove it with `shmlab clean --name {name}`"
    )]
    AlreadyExists {
        /// The object's name.
        name: ShmName,
    },
    /// Opening found no object of that name.
    #[error(
        "{name} does not exist in /dev/shm; create it first (or check the name with `shmlab ls`)"
    )]
    NotFound {
        /// The object's name.
        name: ShmName,
    },
    /// The kernel refused access.
    #[error("permission denied for {name}: {detail}")]
    PermissionDenied {
        /// The object's name.
        name: ShmName,
        /// Owner and mode, and what to do.
        detail: String,
    },
    /// `/dev/shm` (a tmpfs) cannot hold the size asked for.
    #[error(
        "/dev/shm cannot hold {size} bytes for {name} (posix_fallocate: no space); choose a smaller --size or free /dev/shm"
    )]
    NoSpace {
        /// The object's name.
        name: ShmName,
        /// Bytes asked for.
        size: u64,
    },
    /// The object is shorter than what it must hold (someone truncated it, or
    /// it was never sized): mapping it would SIGBUS on first touch.
    #[error(
        "{name} is {actual} bytes but must hold {needed}; it was truncated or never sized: recreate it"
    )]
    TooSmall {
        /// The object's name.
        name: ShmName,
        /// Its size now.
        actual: u64,
        /// What it must hold.
        needed: u64,
    },
    /// The object has no shmlab header.
    #[error("{name} is not a shmlab region ({why}); open it as a plain object instead")]
    NotARegion {
        /// The object's name.
        name: ShmName,
        /// What was found instead.
        why: String,
    },
    /// The header is shmlab's but of another format version.
    #[error(
        "{name} is a shmlab region of format version {found}, this build reads version {expected}; recreate it with this build"
    )]
    VersionMismatch {
        /// The object's name.
        name: ShmName,
        /// Version in the header.
        found: u32,
        /// Version this build writes.
        expected: u32,
    },
    /// The region holds another payload type or layout.
    #[error("{name} holds {found}, not {expected}; open it with the program that made it")]
    TypeMismatch {
        /// The object's name.
        name: ShmName,
        /// What the header says (type and layout).
        found: String,
        /// What the caller expected.
        expected: String,
    },
    /// The creator did not publish "ready" in time.
    #[error(
        "{name} was not ready after {waited_ms} ms (state: {state}); its creator may have died: check `shmlab ls`"
    )]
    NotReady {
        /// The object's name.
        name: ShmName,
        /// How long we waited.
        waited_ms: u128,
        /// The state seen last.
        state: String,
    },
    /// Writing through a read-only mapping or object.
    #[error("{name} is mapped read-only; open it read-write to write")]
    ReadOnly {
        /// The object's name.
        name: ShmName,
    },
    /// The payload's initialiser failed; the region was removed.
    #[error("initialising {name} failed: {message}")]
    Init {
        /// The object's name.
        name: ShmName,
        /// What the initialiser said.
        message: String,
    },
    /// Any other system call failure.
    #[error("{op} failed for {name}: {source}")]
    Sys {
        /// The call that failed.
        op: &'static str,
        /// The object it was for.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn sys(op: &'static str, name: impl ToString, errno: nix::errno::Errno) -> Self {
        Error::Sys {
            op,
            name: name.to_string(),
            source: std::io::Error::from_raw_os_error(errno as i32),
        }
    }

    /// Permission denied for `name`, naming its owner and mode and what to
    /// do about it.
    pub fn denied(name: &ShmName) -> Self {
        Error::PermissionDenied {
            name: name.clone(),
            detail: permission_detail(name),
        }
    }

    /// Maps an errno from opening `name` to the clearest error.
    pub(crate) fn from_open(name: &ShmName, errno: nix::errno::Errno, op: &'static str) -> Self {
        use nix::errno::Errno;
        match errno {
            Errno::EEXIST => Error::AlreadyExists { name: name.clone() },
            Errno::ENOENT => Error::NotFound { name: name.clone() },
            Errno::EACCES | Errno::EPERM => Error::PermissionDenied {
                name: name.clone(),
                detail: permission_detail(name),
            },
            Errno::ENAMETOOLONG => Error::InvalidName {
                input: name.to_string(),
                reason: "longer than NAME_MAX (255)",
            },
            e => Error::sys(op, name, e),
        }
    }
}

/// "owned by alice with mode rw------- (0600)": what a refused user needs to know.
fn permission_detail(name: &ShmName) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(name.path()) {
        Ok(md) => {
            let mode = Mode::from_bits_truncate(md.mode());
            let owner = crate::users::user_name(md.uid());
            format!(
                "owned by {owner} with mode {} ({mode}); ask {owner} to widen the mode (e.g. chmod 0660) or run as {owner}",
                mode.symbolic()
            )
        }
        Err(_) => "the kernel refused access; check the owner and mode with `shmlab ls`".into(),
    }
}
