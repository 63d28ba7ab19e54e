//! Typed, self-describing regions: a [`Header`] in front of a `#[repr(C)]`
//! payload, initialised in place by the creator and published with release
//! ordering.

use crate::mapping::{Access, Mapping};
use crate::{Error, Mode, Result, ShmName, ShmObject, ShmOptions};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The first eight bytes of every shmlab region: `SHMLAB` then `\0\x01`,
/// read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMLAB\0\x01");
/// The header format this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes the header occupies; payloads start at the next multiple of their
/// alignment.
pub const HEADER_SIZE: usize = 128;
const TYPE_NAME_LEN: usize = 64;
/// Where trailing bytes start: the first multiple of this (a cache line)
/// after the payload.
pub const TRAILING_ALIGN: usize = 64;
/// The most trailing bytes a region may have (1 GiB).
pub const MAX_TRAILING: usize = 1 << 30;

crate::code_enum! {
    /// Life cycle of a region, as stored in [`Header`]'s `state` word.
    pub enum InitState: u32 {
        /// Sized but the header is not written yet.
        Uninit = 0,
        /// The creator is initialising the payload.
        Initialising = 1,
        /// Published: openers may use the payload.
        Ready = 2,
        /// The initialiser failed; the creator will unlink it.
        Failed = 3,
    }
}

impl InitState {
    fn from_u32(v: u32) -> Option<Self> {
        Self::try_from(v).ok()
    }
}

impl fmt::Display for InitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uninit => "uninitialised",
            Self::Initialising => "initialising",
            Self::Ready => "ready",
            Self::Failed => "failed",
        })
    }
}

/// The header at offset 0 of every region. All fields are atomics because
/// other processes read them while the creator writes; the layout is fixed
/// (`#[repr(C)]`, little-endian on the machines shmlab runs on) so that
/// `shmlab ls` can parse it from raw bytes.
///
/// | offset | field | meaning |
/// |---|---|---|
/// | 0 | magic | [`MAGIC`] |
/// | 8 | version | [`VERSION`] |
/// | 12 | state | [`InitState`]; `Ready` stored with `Release` |
/// | 16 | payload_offset | where the payload starts |
/// | 20 | payload_align | `align_of` the payload |
/// | 24 | payload_size | `size_of` the payload |
/// | 32 | creator_pid | who created it |
/// | 36 | creator_uid | their uid |
/// | 40 | creator_start | creator's start time (ticks since boot), against pid reuse |
/// | 48 | created_unix_ns | when |
/// | 56 | type_name | NUL-padded type tag, e.g. `race/futex` |
/// | 120 | trailing_len | bytes after the payload ([`Shared::trailing_len`]); 0 for most types |
///
/// `trailing_len` was a reserved zero word before it was used, so a region
/// written without trailing bytes reads the same under both meanings and
/// the version did not change.
#[repr(C)]
pub struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    state: AtomicU32,
    payload_offset: AtomicU32,
    payload_align: AtomicU32,
    payload_size: AtomicU64,
    creator_pid: AtomicI32,
    creator_uid: AtomicU32,
    creator_start: AtomicU64,
    created_unix_ns: AtomicU64,
    type_name: [AtomicU8; TYPE_NAME_LEN],
    trailing_len: AtomicU64,
}

crate::any_bits!(Header {
    magic,
    version,
    state,
    payload_offset,
    payload_align,
    payload_size,
    creator_pid,
    creator_uid,
    creator_start,
    created_unix_ns,
    type_name,
    trailing_len
});

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);

impl Header {
    /// A snapshot of the header.
    pub fn info(&self) -> HeaderInfo {
        let name: Vec<u8> = self
            .type_name
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .take_while(|&b| b != 0)
            .collect();
        HeaderInfo {
            magic: self.magic.load(Ordering::Relaxed),
            version: self.version.load(Ordering::Relaxed),
            state: self.state.load(Ordering::Acquire),
            payload_offset: self.payload_offset.load(Ordering::Relaxed),
            payload_align: self.payload_align.load(Ordering::Relaxed),
            payload_size: self.payload_size.load(Ordering::Relaxed),
            creator_pid: self.creator_pid.load(Ordering::Relaxed),
            creator_uid: self.creator_uid.load(Ordering::Relaxed),
            creator_start: self.creator_start.load(Ordering::Relaxed),
            created_unix_ns: self.created_unix_ns.load(Ordering::Relaxed),
            type_name: String::from_utf8_lossy(&name).into_owned(),
            trailing_len: self.trailing_len.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.info().fmt(f)
    }
}

/// A plain copy of a [`Header`], from a mapping or from the file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Should be [`MAGIC`].
    pub magic: u64,
    /// Format version.
    pub version: u32,
    /// Raw state word (see [`HeaderInfo::init_state`]).
    pub state: u32,
    /// Payload offset in bytes.
    pub payload_offset: u32,
    /// Payload alignment.
    pub payload_align: u32,
    /// Payload size.
    pub payload_size: u64,
    /// Creator's pid.
    pub creator_pid: i32,
    /// Creator's uid.
    pub creator_uid: u32,
    /// Creator's start time (clock ticks since boot).
    pub creator_start: u64,
    /// Creation time, ns since the epoch.
    pub created_unix_ns: u64,
    /// Payload type tag.
    pub type_name: String,
    /// Bytes after the payload (see [`Shared::trailing_len`]).
    pub trailing_len: u64,
}

impl HeaderInfo {
    /// Parses the first [`HEADER_SIZE`] bytes of an object; `None` if they
    /// are too few or do not start with [`MAGIC`].
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < HEADER_SIZE {
            return None;
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        if u64_at(0) != MAGIC {
            return None;
        }
        let name = &b[56..56 + TYPE_NAME_LEN];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Some(HeaderInfo {
            magic: MAGIC,
            version: u32_at(8),
            state: u32_at(12),
            payload_offset: u32_at(16),
            payload_align: u32_at(20),
            payload_size: u64_at(24),
            creator_pid: u32_at(32) as i32,
            creator_uid: u32_at(36),
            creator_start: u64_at(40),
            created_unix_ns: u64_at(48),
            type_name: String::from_utf8_lossy(&name[..end]).into_owned(),
            trailing_len: u64_at(120),
        })
    }

    /// The state word as an [`InitState`], if it is a known one.
    pub fn init_state(&self) -> Option<InitState> {
        InitState::from_u32(self.state)
    }

    /// Whether the creating process is still running (pid and start time;
    /// see [`crate::process::liveness`]). `Unknown` must be read as "may be
    /// alive".
    pub fn creator_liveness(&self) -> crate::process::Liveness {
        crate::process::liveness(self.creator_pid, self.creator_start)
    }

    /// Payload offset plus size, plus the trailing bytes if any: how long
    /// the object must be. `None` when the sum overflows a `u64`: the
    /// header was written by no shmlab build (every field here comes from
    /// shared bytes, so it is added with checked arithmetic).
    pub fn needed_len(&self) -> Option<u64> {
        let end = u64::from(self.payload_offset).checked_add(self.payload_size)?;
        match self.trailing_len {
            0 => Some(end),
            n => end
                .checked_next_multiple_of(TRAILING_ALIGN as u64)?
                .checked_add(n),
        }
    }
}

/// Reads an object's header through `read(2)` on `/dev/shm/NAME` (no
/// mapping, so a truncated object cannot SIGBUS us). `Ok(None)`: a plain
/// object without a shmlab header.
pub fn probe_header(name: &ShmName) -> Result<Option<HeaderInfo>> {
    read_header_file(&name.path()).map_err(|(op, e)| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { name: name.clone() },
        std::io::ErrorKind::PermissionDenied => {
            Error::from_open(name, nix::errno::Errno::EACCES, "open")
        }
        _ => Error::Sys {
            op,
            name: name.to_string(),
            source: e,
        },
    })
}

/// The one reader of a region header from a file: `open(2)` with
/// `O_NOFOLLOW | O_NONBLOCK` ([`crate::listing::open_regular`]: a symlink,
/// FIFO, socket or directory is refused, never followed or waited on) and
/// `pread(2)` of the first [`HEADER_SIZE`] bytes of `path` (no mapping, so
/// a truncated object cannot SIGBUS the reader). `Ok(None)`: no shmlab header. The error
/// names the call that failed (`open` or `read`).
pub fn read_header_file(
    path: &std::path::Path,
) -> std::result::Result<Option<HeaderInfo>, (&'static str, std::io::Error)> {
    let f = crate::listing::open_regular(path).map_err(|e| ("open", e))?;
    let buf = crate::listing::read_bounded(&f, 0, HEADER_SIZE).map_err(|e| ("read", e))?;
    Ok(HeaderInfo::from_bytes(&buf))
}

/// What an initialiser learns about the region it initialises.
#[derive(Debug, Clone, Copy)]
pub struct InitCtx<'a> {
    /// The region's name (a named semaphore derives its own from it).
    pub name: &'a ShmName,
    /// The region's mode (other objects the payload makes use the same).
    pub mode: Mode,
    /// How many bytes follow the payload ([`Shared::trailing_len`]).
    pub trailing_len: usize,
}

/// A payload that can live in a shared region.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain no pointers or references, be
/// valid when their memory is all zeroes *or* after [`init_in_place`]
/// returned `Ok`, and keep every field that more than one process may write
/// interior-mutable (atomics, `UnsafeCell`, or C objects designed to be
/// shared such as a process-shared `pthread_mutex_t`). `init_in_place`
/// must initialise every [`LockState`](crate::lock::LockState) the payload
/// holds before returning `Ok`: the region hands the payload out as
/// initialised from then on. The region never moves the payload. Every bit
/// pattern must be a valid `Self`, since any process that can write the
/// object may store any bytes: the compiler checks that through the
/// [`AnyBits`](crate::AnyBits) supertrait (implement it with
/// [`any_bits!`](crate::any_bits), which checks every field).
///
/// [`init_in_place`]: Shared::init_in_place
pub unsafe trait Shared: Sync + Sized + crate::AnyBits {
    /// What `init_in_place` takes.
    type Init;

    /// A tag for the header (at most 63 bytes), e.g. `race/futex`; openers
    /// refuse a region whose tag differs.
    fn type_name() -> String;

    /// How many bytes the region holds after the payload, for a payload
    /// whose size is chosen at creation (a ring's buffer): they start at
    /// the first multiple of [`TRAILING_ALIGN`] after the payload, are
    /// zeroed, are recorded in the header so openers map them too, and are
    /// reached through [`Region::trailing`]. At most [`MAX_TRAILING`].
    /// Default: none. A type with trailing bytes should record their length
    /// in its payload (`init_in_place` sees it in [`InitCtx::trailing_len`])
    /// and check it when opened, since the header alone says nothing about
    /// what the bytes mean.
    fn trailing_len(_init: &Self::Init) -> usize {
        0
    }

    /// Initialises the payload where it lies. Only the creator calls this,
    /// once, before the region is published.
    ///
    /// # Safety
    /// `this` points to zeroed, suitably aligned memory for `Self` that no
    /// other process uses yet.
    unsafe fn init_in_place(
        this: *mut Self,
        init: Self::Init,
        ctx: &InitCtx<'_>,
    ) -> std::result::Result<(), String>;

    /// Called by the creator just before it unlinks the region: release what
    /// the payload made outside it (a named semaphore) or inside it (a
    /// pthread mutex). Default: nothing.
    ///
    /// # Safety
    /// Called once, when every other user of the payload (threads and
    /// processes) is done with it; nothing uses it afterwards.
    unsafe fn destroy(&self, _ctx: &InitCtx<'_>) {}

    /// Called by **every** handle, creator or not, just before its mapping
    /// is unmapped (and before [`destroy`](Self::destroy) on the creator's):
    /// a payload that holds a [`LockState`](crate::lock::LockState) calls
    /// [`LockState::before_unmap`](crate::lock::LockState::before_unmap) on
    /// each, so that a lock that something outside the region still points
    /// into (glibc's robust list, for a robust pthread mutex held by a
    /// thread of this process through a forgotten guard) can stop the unmap
    /// — by aborting, since returning would let glibc write into freed
    /// memory. Default: nothing (a payload without such locks).
    fn before_unmap(&self) {}
}

/// How to create or open a [`Region`].
#[derive(Clone, Debug)]
pub struct RegionOptions {
    /// Mode for a new region (default `0600`, forced exactly).
    pub mode: Mode,
    /// How long an opener waits for the creator to publish "ready".
    pub wait: Duration,
}

impl Default for RegionOptions {
    fn default() -> Self {
        RegionOptions {
            mode: Mode::DEFAULT,
            wait: Duration::from_secs(2),
        }
    }
}

/// A typed region: header plus a `T` payload in one shared-memory object.
/// Derefs to `&T` (shared, interior-mutable). If this handle created the
/// region, dropping it calls [`Shared::destroy`] and unlinks the name unless
/// [`keep`](Self::keep) was called.
pub struct Region<T: Shared> {
    map: Mapping,
    obj: ShmObject,
    mode: Mode,
    _payload: PhantomData<T>,
}

impl<T: Shared> Region<T> {
    /// Where the payload starts.
    pub fn payload_offset() -> usize {
        let align = std::mem::align_of::<T>();
        assert!(align <= 4096, "payload alignment above a page");
        HEADER_SIZE.div_ceil(align) * align
    }

    /// Header plus payload (without trailing bytes).
    pub fn total_len() -> usize {
        Self::payload_offset() + std::mem::size_of::<T>()
    }

    /// Where the trailing bytes, if any, start.
    pub fn trailing_offset() -> usize {
        Self::total_len().div_ceil(TRAILING_ALIGN) * TRAILING_ALIGN
    }

    /// How long the object is with `trailing` bytes after the payload.
    fn mapped_len(trailing: usize) -> usize {
        match trailing {
            0 => Self::total_len(),
            n => Self::trailing_offset() + n,
        }
    }

    /// Bytes after the payload ([`Shared::trailing_len`]; 0 for most types).
    pub fn trailing_len(&self) -> usize {
        self.map.len() - Self::trailing_offset().min(self.map.len())
    }

    /// The trailing bytes: `trailing_len()` bytes at this address, aligned
    /// to [`TRAILING_ALIGN`], valid while `self` lives, zero after creation
    /// and never moved. Raw because the payload's type decides who may
    /// touch which byte when (across processes); a null-free dangling
    /// pointer when there are none.
    pub fn trailing(&self) -> std::ptr::NonNull<u8> {
        if self.trailing_len() == 0 {
            return std::ptr::NonNull::dangling();
        }
        // SAFETY: the mapping is longer than `trailing_offset()` (there are
        // trailing bytes), so the offset stays inside it; a mapping's
        // address is never null.
        unsafe { std::ptr::NonNull::new_unchecked(self.map.as_ptr().add(Self::trailing_offset())) }
    }

    /// Creates `name` (`O_CREAT | O_EXCL`), sizes and reserves it, writes the
    /// header, initialises the payload in place and publishes "ready" with
    /// `Release` ordering. On any failure the name is unlinked again.
    pub fn create(name: &ShmName, opts: &RegionOptions, init: T::Init) -> Result<Self> {
        let tag = T::type_name();
        assert!(tag.len() < TYPE_NAME_LEN, "type name {tag:?} too long");
        let trailing = T::trailing_len(&init);
        if trailing > MAX_TRAILING {
            return Err(Error::Init {
                name: name.clone(),
                message: format!(
                    "{trailing} trailing bytes asked for; at most {MAX_TRAILING} (1 GiB)"
                ),
            });
        }
        let obj = ShmOptions::new()
            .create_new(true)
            .mode(opts.mode)
            .open(name)?;
        let total = Self::mapped_len(trailing);
        obj.set_len(total as u64)?;
        let map = obj.map(Access::ReadWrite, total)?;
        let h = header_at(&map);
        let me = std::process::id() as i32;
        h.version.store(VERSION, Ordering::Relaxed);
        h.payload_offset
            .store(Self::payload_offset() as u32, Ordering::Relaxed);
        h.payload_align
            .store(std::mem::align_of::<T>() as u32, Ordering::Relaxed);
        h.payload_size
            .store(std::mem::size_of::<T>() as u64, Ordering::Relaxed);
        h.trailing_len.store(trailing as u64, Ordering::Relaxed);
        h.creator_pid.store(me, Ordering::Relaxed);
        h.creator_uid
            .store(nix::unistd::getuid().as_raw(), Ordering::Relaxed);
        h.creator_start.store(
            crate::process::start_time(me).unwrap_or(0),
            Ordering::Relaxed,
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        h.created_unix_ns.store(now, Ordering::Relaxed);
        for (slot, b) in h.type_name.iter().zip(tag.bytes()) {
            slot.store(b, Ordering::Relaxed);
        }
        h.state
            .store(InitState::Initialising as u32, Ordering::Relaxed);
        // Release: an opener that sees the magic (Acquire) sees every field
        // above, the version included.
        h.magic.store(MAGIC, Ordering::Release);
        let ctx = InitCtx {
            name,
            mode: opts.mode,
            trailing_len: trailing,
        };
        // SAFETY: the payload lies at a correctly aligned offset inside our
        // fresh, zero-filled mapping of `total_len` bytes; nobody else uses
        // it until we store Ready below.
        let res = unsafe { T::init_in_place(payload_at::<T>(&map), init, &ctx) };
        if let Err(message) = res {
            h.state.store(InitState::Failed as u32, Ordering::Release);
            // Not initialised, so no Region (whose drop would call destroy):
            // dropping `obj` just unlinks the name.
            return Err(Error::Init {
                name: name.clone(),
                message,
            });
        }
        h.state.store(InitState::Ready as u32, Ordering::Release);
        Ok(Region {
            map,
            obj,
            mode: opts.mode,
            _payload: PhantomData,
        })
    }

    /// Opens an existing region by name: checks magic, version, type and
    /// layout, waits up to `opts.wait` for the creator to publish "ready"
    /// (`Acquire`), and refuses an object shorter than the region it claims
    /// to hold.
    pub fn open(name: &ShmName, opts: &RegionOptions) -> Result<Self> {
        let obj = ShmOptions::new().open(name)?;
        let deadline = Instant::now() + opts.wait;
        let started = Instant::now();
        let pause = || std::thread::sleep(Duration::from_millis(1));
        // 1. Big enough to hold a header (the creator may not have sized it).
        loop {
            let size = obj.stat()?.size;
            if size >= HEADER_SIZE as u64 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(if size == 0 {
                    Error::NotReady {
                        name: name.clone(),
                        waited_ms: started.elapsed().as_millis(),
                        state: "0 bytes: never sized".into(),
                    }
                } else {
                    Error::NotARegion {
                        name: name.clone(),
                        why: format!("it is {size} bytes, shorter than a shmlab header"),
                    }
                });
            }
            pause();
        }
        let head = obj.map(Access::ReadWrite, HEADER_SIZE)?;
        let h = header_at(&head);
        // 2. Magic, then Ready, then the rest of the header. Nothing but the
        // magic is read before the Acquire load that observes Ready (or
        // Failed): until then the creator may still be writing the fields.
        loop {
            let magic = h.magic.load(Ordering::Acquire);
            if magic == MAGIC {
                break;
            }
            if magic != 0 {
                return Err(Error::NotARegion {
                    name: name.clone(),
                    why: format!(
                        "it starts with {:02x?}, not shmlab's magic",
                        &magic.to_le_bytes()
                    ),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::NotARegion {
                    name: name.clone(),
                    why: "its first bytes are zero: a plain object, or its creator died before writing a header".into(),
                });
            }
            pause();
        }
        let version_mismatch = || {
            let found = h.version.load(Ordering::Relaxed);
            (found != VERSION).then(|| Error::VersionMismatch {
                name: name.clone(),
                found,
                expected: VERSION,
            })
        };
        loop {
            let state = h.state.load(Ordering::Acquire);
            match InitState::from_u32(state) {
                Some(InitState::Ready) => {
                    if let Some(e) = version_mismatch() {
                        return Err(e);
                    }
                    break;
                }
                // Another format version may not use our state values.
                _ if Instant::now() >= deadline && version_mismatch().is_some() => {
                    return Err(version_mismatch().expect("checked above"));
                }
                Some(InitState::Failed) => {
                    return Err(Error::NotReady {
                        name: name.clone(),
                        waited_ms: started.elapsed().as_millis(),
                        state: "failed: its creator could not initialise it".into(),
                    });
                }
                _ if Instant::now() >= deadline => {
                    let info = h.info();
                    let alive = info.creator_liveness();
                    return Err(Error::NotReady {
                        name: name.clone(),
                        waited_ms: started.elapsed().as_millis(),
                        state: format!(
                            "{}, creator pid {} {alive}",
                            InitState::from_u32(state)
                                .map_or_else(|| format!("unknown ({state})"), |s| s.to_string()),
                            info.creator_pid
                        ),
                    });
                }
                _ => pause(),
            }
        }
        let info = h.info();
        let expected = T::type_name();
        let layout =
            |tag: &str, size: u64, align: u32| format!("{tag} ({size} bytes, align {align})");
        if info.type_name != expected
            || info.payload_size != std::mem::size_of::<T>() as u64
            || info.payload_align != std::mem::align_of::<T>() as u32
            || info.payload_offset as usize != Self::payload_offset()
        {
            return Err(Error::TypeMismatch {
                name: name.clone(),
                found: layout(&info.type_name, info.payload_size, info.payload_align),
                expected: layout(
                    &expected,
                    std::mem::size_of::<T>() as u64,
                    std::mem::align_of::<T>() as u32,
                ),
            });
        }
        let trailing = info.trailing_len;
        if trailing > MAX_TRAILING as u64 {
            return Err(Error::NotARegion {
                name: name.clone(),
                why: format!(
                    "its header claims {trailing} trailing bytes, more than the {MAX_TRAILING} a region may have"
                ),
            });
        }
        drop(head);
        // 3. Long enough for what it claims (Mapping::new checks the size).
        let map = obj.map(Access::ReadWrite, Self::mapped_len(trailing as usize))?;
        let mode = obj.stat()?.mode;
        Ok(Region {
            map,
            obj,
            mode,
            _payload: PhantomData,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        header_at(&self.map)
    }

    /// The region's name.
    pub fn name(&self) -> &ShmName {
        self.obj.name()
    }

    /// The underlying object.
    pub fn object(&self) -> &ShmObject {
        &self.obj
    }

    /// Whether this handle created the region (and will destroy it).
    pub fn is_creator(&self) -> bool {
        self.obj.creation().is_some()
    }

    /// Leave the region in `/dev/shm` after this handle is dropped.
    pub fn keep(&mut self) {
        self.obj.keep();
    }
}

/// The header at the start of a mapping of at least [`HEADER_SIZE`] bytes.
fn header_at(map: &Mapping) -> &Header {
    assert!(map.len() >= HEADER_SIZE);
    // SAFETY: the mapping is page-aligned and at least HEADER_SIZE bytes;
    // Header is made of atomics, valid for any bit pattern, and the borrow
    // is tied to the mapping's lifetime.
    unsafe { &*(map.as_ptr() as *const Header) }
}

/// Where `T`'s payload lies in a mapping of `Region::<T>::total_len()` bytes.
fn payload_at<T: Shared>(map: &Mapping) -> *mut T {
    assert!(map.len() >= Region::<T>::total_len());
    // SAFETY: payload_offset + size_of::<T>() <= the mapping's length.
    unsafe { map.as_ptr().add(Region::<T>::payload_offset()) as *mut T }
}

impl<T: Shared> Deref for Region<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the payload was initialised before Ready was published
        // (we created it, or observed Ready with Acquire); `T: Shared`
        // promises it is interior-mutable, so `&T` is sound even while other
        // processes write it; the mapping outlives the borrow.
        unsafe { &*payload_at::<T>(&self.map) }
    }
}

impl<T: Shared> Drop for Region<T> {
    fn drop(&mut self) {
        // Every handle, before its mapping goes (the fields drop after
        // this): a lock may refuse to be unmapped (Shared::before_unmap).
        T::before_unmap(self);
        if self.obj.unlinks_on_drop() {
            let ctx = InitCtx {
                name: self.obj.name(),
                mode: self.mode,
                trailing_len: self.trailing_len(),
            };
            // SAFETY: the creator's handle is being dropped: the region's
            // users are done (the creator outlives its workers by design) and
            // the name is unlinked right after, so nothing attaches again.
            // Safe code can still get here while the lock is held (another
            // handle in this process, a peer that breaks the protocol): the
            // locks check for that themselves (RawLock::destroy's docs) and
            // leave a held lock undestroyed.
            unsafe { T::destroy(self, &ctx) };
        }
    }
}

impl<T: Shared> fmt::Debug for Region<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("name", self.name())
            .field("header", self.header())
            .finish()
    }
}
