//! # shmlab core: POSIX shared memory, safely
//!
//! Everything a program needs to create, share and destroy a POSIX
//! shared-memory object (`shm_open(3)`, `ftruncate(2)`, `mmap(2)`,
//! `munmap(2)`, `shm_unlink(3)`), plus the pieces every shmlab lock and
//! workload is built on:
//!
//! - [`ShmName`]: a validated object name (`/OS`), and [`Mode`]: permission
//!   bits that parse from `0640` or `rw-r-----` and print as both;
//! - [`ShmOptions`] / [`ShmObject`]: one builder in the style of
//!   `std::fs::OpenOptions`; an object owns its descriptor and, if it created
//!   the name, unlinks it when dropped (unless told to keep it);
//! - [`Mapping`]: a mapping that unmaps on drop and never hands out `&mut`;
//! - [`Region`]: a typed, self-describing object (a [`Header`] in front of a
//!   `#[repr(C)]` payload) that the creator publishes with release ordering;
//! - [`lock::RawLock`]: the one trait every lock crate implements, and the
//!   guard written once over it;
//! - [`listing`]: what is in `/dev/shm`, whoever made it;
//! - [`cleanup`]: removal of this process's objects on Ctrl-C and SIGTERM;
//! - [`process`]: the one liveness check (`/proc/PID/stat`), the one fork
//!   helper and the one `_exit`.
//!
//! All `unsafe` calls into libc live in the private `sys` module.
//!
//! ## What a peer may do, and what it can cost
//!
//! Shared memory is written by other processes, and `/dev/shm` by every
//! local user. The rule this crate keeps, and every shmlab crate built on
//! it: **a peer may do anything** — store any bit pattern in any shared
//! byte at any moment, shrink or grow the object, replace a `/dev/shm`
//! entry with a FIFO, a symlink or a directory, name it with any bytes —
//! **and what that can cost a reader is an error, never undefined
//! behaviour, a hang or a read outside `/dev/shm`.** Concretely:
//!
//! - shared types are integers and atomics only (no `bool`, `char`,
//!   enums, references or `NonZero*`, whose invalid bit patterns would be
//!   UB): a payload's fields are checked at compile time by
//!   [`AnyBits`](crate::bits::AnyBits) where that trait is implemented;
//! - sizes, offsets and counters read from shared bytes are decoded with
//!   checked arithmetic ([`HeaderInfo::needed_len`] is `None` on overflow)
//!   and bounded before use;
//! - a [`Mapping`] never hands out `&[u8]` or `&mut` into the pages, only
//!   atomic copies; a peer that shrinks the object can end a mapper with
//!   `SIGBUS` (reported as one line and exit status 2 by [`fault`]), but
//!   nothing wrong is ever read;
//! - `/dev/shm` entries are opened one way ([`listing::open_regular`]:
//!   `lstat`, then `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`, then `fstat` of
//!   the descriptor), read with bounded `pread`s, removed only after their
//!   identity is checked again ([`listing::Entry::remove_judged`]), and
//!   printed escaped ([`listing::escape_bytes`]);
//! - a name read from shared memory is validated like a [`ShmName`] (one
//!   path component) before it is opened, so it cannot leave `/dev/shm`.
//!
//! What it does not promise: a region is only as trustworthy as the users
//! who can write it. A peer with write access can always make the data
//! *wrong* (a counter off, a lock stolen): that is what permissions
//! (`0600` by default) are for.

pub mod bits;
pub mod cleanup;
pub mod codes;
mod error;
pub mod fault;
pub mod listing;
pub mod lock;
mod mapping;
mod mode;
mod name;
mod object;
pub mod pad;
pub mod process;
mod region;
mod size;
mod sys;
pub mod time;
pub mod users;

pub use bits::AnyBits;
pub use error::{Error, Result};
pub use mapping::{Access, Mapping};
pub use mode::{Class, Mode, PermissionRow};
pub use name::{ShmName, unique_tag};
pub use object::{Creation, ShmObject, ShmOptions, Stat};
pub use pad::CachePadded;
pub use region::{
    HEADER_SIZE, Header, HeaderInfo, InitCtx, InitState, MAGIC, MAX_TRAILING, Region,
    RegionOptions, Shared, TRAILING_ALIGN, VERSION, probe_header, read_header_file,
};
pub use size::parse_size;

/// Where Linux's glibc keeps POSIX shared-memory objects (a tmpfs).
pub const SHM_DIR: &str = "/dev/shm";

/// This process's pid (`getpid(2)`), cached and reset in forked children.
#[inline]
pub fn pid() -> i32 {
    sys::cached_pid()
}

/// The calling thread's kernel thread id (`gettid(2)`).
pub fn gettid() -> i32 {
    nix::unistd::gettid().as_raw()
}
