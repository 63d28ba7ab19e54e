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
//! - [`cleanup`]: removal of this process's objects on Ctrl-C and SIGTERM.
//!
//! All `unsafe` calls into libc live in the private `sys` module.

pub mod cleanup;
mod error;
pub mod listing;
pub mod lock;
mod mapping;
mod mode;
mod name;
mod object;
pub mod pad;
mod region;
mod size;
mod sys;
pub mod time;

pub use error::{Error, Result};
pub use mapping::{Access, Mapping};
pub use mode::{Class, Mode, PermissionRow};
pub use name::{ShmName, unique_tag};
pub use object::{Creation, ShmObject, ShmOptions, Stat};
pub use pad::CachePadded;
pub use region::{
    HEADER_SIZE, Header, HeaderInfo, InitCtx, InitState, MAGIC, Region, RegionOptions, Shared,
    VERSION, probe_header,
};
pub use size::parse_size;

/// Where Linux's glibc keeps POSIX shared-memory objects (a tmpfs).
pub const SHM_DIR: &str = "/dev/shm";

/// Whether a process with this pid exists (`kill(pid, 0)`): `EPERM` counts as
/// alive, since the process is there but belongs to someone else.
pub fn process_alive(pid: i32) -> bool {
    sys::process_alive(pid)
}

/// The start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`); with the pid it names a process uniquely, which guards
/// liveness checks against pid reuse.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that was `pid` with start time `start` is still
/// running (a pid alone can be reused by an unrelated process).
pub fn same_process_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match process_start_time(pid) {
        Some(t) => start == 0 || t == start,
        // /proc may hide other users' processes; fall back to kill(pid, 0).
        None => process_alive(pid) && start == 0,
    }
}

/// This process's pid (`getpid(2)`), cached and reset in forked children.
#[inline]
pub fn pid() -> i32 {
    sys::cached_pid()
}

/// The calling thread's kernel thread id (`gettid(2)`).
pub fn gettid() -> i32 {
    nix::unistd::gettid().as_raw()
}
