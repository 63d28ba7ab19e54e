//! Shared-memory objects: `shm_open(3)`, `ftruncate(2)`, `posix_fallocate(3)`,
//! `fstat(2)`, `fchmod(2)`, `shm_unlink(3)`.

use crate::mapping::{Access, Mapping};
use crate::{Error, Mode, Result, ShmName, cleanup, sys};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// How to open a shared-memory object, in the style of
/// `std::fs::OpenOptions`.
///
/// ```no_run
/// use shm::{Mode, ShmName, ShmOptions};
/// let name = ShmName::parse("/demo")?;
/// // O_CREAT | O_EXCL | O_RDWR, mode 0600 forced exactly:
/// let obj = ShmOptions::new().create_new(true).mode(Mode::DEFAULT).open(&name)?;
/// obj.set_len(4096)?;
/// # Ok::<(), shm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ShmOptions {
    write: bool,
    create: Create,
    mode: Mode,
    force_mode: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Create {
    /// Open an existing object only.
    No,
    /// `O_CREAT | O_EXCL`: fail if the name exists.
    New,
    /// `O_CREAT`: the textbook's open-or-create.
    OrOpen,
}

impl Default for ShmOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ShmOptions {
    /// Open an existing object read-write; mode `0600` if creating, forced.
    pub fn new() -> Self {
        ShmOptions {
            write: true,
            create: Create::No,
            mode: Mode::DEFAULT,
            force_mode: true,
        }
    }

    /// `O_RDONLY` instead of `O_RDWR` (only for opening: creating needs write
    /// access to size the object).
    pub fn read_only(&mut self, yes: bool) -> &mut Self {
        self.write = !yes;
        self
    }

    /// `O_CREAT | O_EXCL`: create, and fail with [`Error::AlreadyExists`] if
    /// the name is taken, so two creators never share a half-made object.
    pub fn create_new(&mut self, yes: bool) -> &mut Self {
        self.create = if yes { Create::New } else { Create::No };
        self
    }

    /// `O_CREAT` alone: the textbook's behaviour, open the object if it
    /// exists and create it otherwise. Use only where the lab asks for it.
    pub fn create_or_open(&mut self, yes: bool) -> &mut Self {
        self.create = if yes { Create::OrOpen } else { Create::No };
        self
    }

    /// The mode for a newly created object (default `0600`).
    pub fn mode(&mut self, mode: Mode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// After creating, `fchmod` to exactly [`mode`](Self::mode) if the umask
    /// took bits away (default: yes).
    pub fn force_mode(&mut self, yes: bool) -> &mut Self {
        self.force_mode = yes;
        self
    }

    /// `shm_open(name, flags, mode)`.
    pub fn open(&self, name: &ShmName) -> Result<ShmObject> {
        let mut flags = if self.write || self.create != Create::No {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        match self.create {
            Create::No => {}
            Create::New => flags |= OFlag::O_CREAT | OFlag::O_EXCL,
            Create::OrOpen => flags |= OFlag::O_CREAT,
        }
        flags |= OFlag::O_CLOEXEC;
        // For O_CREAT without O_EXCL we cannot tell from shm_open whether we
        // made the object; try O_EXCL first so the answer is exact.
        let (fd, created) = match self.create {
            Create::OrOpen => {
                match nix::sys::mman::shm_open(name, flags | OFlag::O_EXCL, self.mode.into()) {
                    Ok(fd) => (fd, true),
                    Err(Errno::EEXIST) => (
                        nix::sys::mman::shm_open(name, flags & !OFlag::O_CREAT, self.mode.into())
                            .map_err(|e| Error::from_open(name, e, "shm_open"))?,
                        false,
                    ),
                    Err(e) => return Err(Error::from_open(name, e, "shm_open")),
                }
            }
            Create::New => (
                nix::sys::mman::shm_open(name, flags, self.mode.into())
                    .map_err(|e| Error::from_open(name, e, "shm_open"))?,
                true,
            ),
            Create::No => (
                nix::sys::mman::shm_open(name, flags, self.mode.into())
                    .map_err(|e| Error::from_open(name, e, "shm_open"))?,
                false,
            ),
        };
        let mut obj = ShmObject {
            fd,
            name: name.clone(),
            writable: self.write || created,
            creation: None,
            unlink_on_drop: false,
        };
        if created {
            // From here on a failure drops `obj`, which unlinks the name:
            // no half-made object is left in /dev/shm.
            obj.unlink_on_drop = true;
            cleanup::register_shm(name);
            let umask = Mode::from_bits_truncate(sys::current_umask());
            let given = obj.stat()?.mode;
            let forced = self.force_mode && given != self.mode;
            if forced {
                nix::sys::stat::fchmod(obj.fd.as_fd(), self.mode.into())
                    .map_err(|e| Error::sys("fchmod", name, e))?;
            }
            obj.creation = Some(Creation {
                requested: self.mode,
                umask,
                given,
                forced,
                now: if forced { self.mode } else { given },
            });
        }
        Ok(obj)
    }
}

/// What happened to the mode when an object was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creation {
    /// The mode passed to `shm_open`.
    pub requested: Mode,
    /// The process's umask at the time.
    pub umask: Mode,
    /// The mode the kernel gave (`requested & !umask`), read back by `fstat`.
    pub given: Mode,
    /// Whether `fchmod` had to restore bits the umask removed.
    pub forced: bool,
    /// The mode the object has now.
    pub now: Mode,
}

/// What `fstat(2)` says about an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// Permission bits.
    pub mode: Mode,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's gid.
    pub gid: u32,
    /// Last modification, seconds since the epoch.
    pub mtime: i64,
}

/// An open shared-memory object. It owns its descriptor (closed on drop);
/// if this handle created the name, dropping it also `shm_unlink`s the name
/// unless [`keep`](Self::keep) was called.
#[derive(Debug)]
pub struct ShmObject {
    fd: OwnedFd,
    name: ShmName,
    writable: bool,
    creation: Option<Creation>,
    unlink_on_drop: bool,
}

impl ShmObject {
    /// The object's name.
    pub fn name(&self) -> &ShmName {
        &self.name
    }

    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether it was opened read-write.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The mode story, if this handle created the object.
    pub fn creation(&self) -> Option<&Creation> {
        self.creation.as_ref()
    }

    /// Whether dropping this handle will unlink the name.
    pub fn unlinks_on_drop(&self) -> bool {
        self.unlink_on_drop
    }

    /// Leave the object in `/dev/shm` when this handle is dropped (for a
    /// producer whose consumer unlinks, or `--keep`).
    pub fn keep(&mut self) {
        if self.unlink_on_drop {
            self.unlink_on_drop = false;
            cleanup::unregister_shm(&self.name);
        }
    }

    /// Take over unlinking: this handle will unlink the name when dropped
    /// (for a consumer that destroys what a producer made).
    pub fn unlink_when_dropped(&mut self) {
        if !self.unlink_on_drop {
            self.unlink_on_drop = true;
            cleanup::register_shm(&self.name);
        }
    }

    /// Size the object: refuses 0, then `ftruncate(fd, len)` and
    /// `posix_fallocate(fd, 0, len)`. The second call reserves the pages now,
    /// so a size `/dev/shm` cannot hold fails here with [`Error::NoSpace`]
    /// instead of a SIGBUS on first touch. On that error the object gets
    /// back the size it had before the call (nothing another process wrote
    /// is lost).
    pub fn set_len(&self, len: u64) -> Result<()> {
        if len == 0 {
            return Err(Error::InvalidSize {
                input: "0".into(),
                reason: "a shared-memory object of 0 bytes cannot be mapped".into(),
            });
        }
        if !self.writable {
            return Err(Error::ReadOnly {
                name: self.name.clone(),
            });
        }
        let off = i64::try_from(len).map_err(|_| Error::InvalidSize {
            input: len.to_string(),
            reason: "larger than an off_t".into(),
        })?;
        // What to restore if the reservation fails: the size before this
        // call. Another process may already use the object (this handle
        // may only have opened it), so its pages are never given back
        // beyond what this call added.
        let before = self.stat()?.size;
        let before = i64::try_from(before).unwrap_or(i64::MAX);
        nix::unistd::ftruncate(self.fd.as_fd(), off).map_err(|e| match e {
            Errno::EFBIG | Errno::EINVAL => Error::NoSpace {
                name: self.name.clone(),
                size: len,
            },
            e => Error::sys("ftruncate", &self.name, e),
        })?;
        match nix::fcntl::posix_fallocate(self.fd.as_fd(), 0, off) {
            Ok(()) => Ok(()),
            Err(Errno::ENOSPC | Errno::EFBIG | Errno::ENOMEM) => {
                // Roll back only what this call did: the size it had
                // before (0 for an object this handle just created, whose
                // caller's error path unlinks it). Truncating an object
                // that another process filled would pull its pages from
                // under its mappings (SIGBUS on its next read).
                let _ = nix::unistd::ftruncate(self.fd.as_fd(), before);
                Err(Error::NoSpace {
                    name: self.name.clone(),
                    size: len,
                })
            }
            // Not every filesystem reserves; /dev/shm (tmpfs) does.
            Err(Errno::EOPNOTSUPP) => Ok(()),
            Err(e) => Err(Error::sys("posix_fallocate", &self.name, e)),
        }
    }

    /// `fstat(fd)`: size, mode, owner.
    pub fn stat(&self) -> Result<Stat> {
        let st = nix::sys::stat::fstat(self.fd.as_fd())
            .map_err(|e| Error::sys("fstat", &self.name, e))?;
        Ok(Stat {
            size: st.st_size as u64,
            mode: Mode::from_bits_truncate(st.st_mode),
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime,
        })
    }

    /// `fchmod(fd, mode)`.
    pub fn set_mode(&self, mode: Mode) -> Result<()> {
        nix::sys::stat::fchmod(self.fd.as_fd(), mode.into())
            .map_err(|e| Error::sys("fchmod", &self.name, e))
    }

    /// `shm_unlink(name)`: removes the name now. Existing mappings and
    /// descriptors stay valid until unmapped and closed.
    pub fn unlink(&mut self) -> Result<()> {
        self.unlink_on_drop = false;
        cleanup::unregister_shm(&self.name);
        unlink(&self.name)
    }

    /// Map the first `len` bytes (see [`Mapping::new`]).
    pub fn map(&self, access: Access, len: usize) -> Result<Mapping> {
        Mapping::new(self, access, len)
    }

    /// Map the whole object as it is now.
    pub fn map_all(&self, access: Access) -> Result<Mapping> {
        let len = usize::try_from(self.stat()?.size).map_err(|_| Error::InvalidSize {
            input: self.name.to_string(),
            reason: "larger than the address space".into(),
        })?;
        Mapping::new(self, access, len)
    }
}

impl Drop for ShmObject {
    fn drop(&mut self) {
        if self.unlink_on_drop {
            cleanup::unregister_shm(&self.name);
            let _ = unlink(&self.name);
        }
    }
}

/// `shm_unlink(name)`.
pub fn unlink(name: &ShmName) -> Result<()> {
    nix::sys::mman::shm_unlink(name).map_err(|e| Error::from_open(name, e, "shm_unlink"))
}

impl ShmName {
    /// `shm_unlink(self)`.
    pub fn unlink(&self) -> Result<()> {
        unlink(self)
    }
}
