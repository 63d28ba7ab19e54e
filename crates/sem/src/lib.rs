//! # POSIX semaphores as locks inside a shmlab region
//!
//! Two ways a semaphore with initial value 1 becomes a lock:
//!
//! - [`NamedSemaphore`]: a **named** semaphore. The creator makes it with
//!   `sem_open(name, O_CREAT | O_EXCL, mode, 1)` (glibc keeps it in
//!   `/dev/shm/sem.NAME`), and stores the name in the region; every process
//!   `sem_open`s that name when it attaches and `sem_close`s it when done;
//!   the creator `sem_unlink`s it when the region is removed. `sem_open`
//!   applies the umask to the mode, so the creator forces the region's mode
//!   on the file afterwards, as regions do.
//! - [`UnnamedSemaphore`]: an unnamed semaphore living **inside** the region,
//!   `sem_init(sem, pshared = 1, 1)` in place.
//!
//! A semaphore has no owner: any process may post it. So it cannot tell that
//! its holder died; a dead holder leaves it at 0 forever (*wedged*). Both
//! locks record the pid of the last process that took them, and
//! [`lock_timeout`](shm::lock::RawLock::lock_timeout) (`sem_clockwait`
//! against `CLOCK_MONOTONIC`) lets a caller give up, look at that pid and
//! report the wedge instead of hanging; [`repair`](NamedSemaphore::repair)
//! posts it deliberately, which is unsafe in general: if the holder is in
//! fact alive, two processes end up inside the critical section.
//!
//! [`SemCell`] and [`NamedSem`] are the general counting semaphores under
//! both locks, for the bounded-buffer lab.

pub mod inspect;
mod sys;

use shm::InitCtx;
use shm::lock::{Acquired, RawLock, RawLockTimed};
use std::cell::UnsafeCell;
use std::ffi::CString;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

/// What can go wrong with a semaphore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SemError {
    /// A semaphore name `sem_open` would refuse.
    #[error("invalid semaphore name {name:?}: {reason}")]
    Name {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A call failed.
    #[error("{op}({name}) failed: {source}")]
    Os {
        /// The call.
        op: &'static str,
        /// The semaphore's name, or "unnamed".
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn os(op: &'static str, name: &str, source: std::io::Error) -> SemError {
    SemError::Os {
        op,
        name: name.to_string(),
        source,
    }
}

/// Longest semaphore name (without the `/`): glibc prefixes `sem.`, and the
/// file name must fit in `NAME_MAX` (255).
pub const SEM_NAME_MAX: usize = 251;

fn cname(name: &str) -> Result<CString, SemError> {
    let bad = |reason| SemError::Name {
        name: name.to_string(),
        reason,
    };
    let body = name
        .strip_prefix('/')
        .ok_or_else(|| bad("it must start with /"))?;
    if body.is_empty() || body.contains('/') {
        return Err(bad("it needs one leading / and no other"));
    }
    if body.len() > SEM_NAME_MAX {
        return Err(bad(
            "it is longer than 251 bytes (NAME_MAX minus the sem. prefix)",
        ));
    }
    CString::new(name).map_err(|_| bad("it contains a NUL byte"))
}

/// The file glibc keeps a named semaphore in: `/dev/shm/sem.NAME`.
pub fn sem_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(shm::SHM_DIR).join(format!("sem.{}", name.trim_start_matches('/')))
}

// ---------------------------------------------------------------------------
// General counting semaphores.

/// An unnamed process-shared counting semaphore (`sem_t`) that lives inside
/// a shared region.
#[repr(C)]
pub struct SemCell(UnsafeCell<libc::sem_t>);
shm::any_bits!(SemCell { 0 });

// SAFETY: a pshared sem_t is designed for concurrent use through its address
// from any thread of any process that maps it.
unsafe impl Sync for SemCell {}

impl SemCell {
    /// `sem_init(sem, pshared = 1, value)` in place — pshared because other
    /// processes map the same page, and in place because a `sem_t` copied
    /// after init is not the same semaphore.
    ///
    /// # Safety
    /// `this` points to zeroed, aligned, never-moving storage inside a
    /// shared mapping that nobody uses yet.
    pub unsafe fn init(this: *mut SemCell, value: u32) -> Result<(), SemError> {
        // SAFETY: forwarded contract; SemCell is repr(C) around the sem_t.
        unsafe { sys::init_shared(this.cast::<libc::sem_t>(), value) }
            .map_err(|e| os("sem_init", "unnamed", e))
    }

    /// `sem_wait(sem)`, retrying `EINTR` — a signal is not a reason to
    /// give up the wait.
    pub fn wait(&self) -> Result<(), SemError> {
        sys::wait(&self.0).map_err(|e| os("sem_wait", "unnamed", e))
    }

    /// `sem_trywait(sem)`: `false` if the value is 0 (`EAGAIN`), because a
    /// busy semaphore is an answer, not an error.
    pub fn try_wait(&self) -> Result<bool, SemError> {
        sys::try_wait(&self.0).map_err(|e| os("sem_trywait", "unnamed", e))
    }

    /// `sem_clockwait(sem, CLOCK_MONOTONIC, now + timeout)`: `false` on
    /// timeout — monotonic, because a wall-clock deadline moves when the
    /// clock is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, SemError> {
        sys::wait_until(&self.0, &shm::time::monotonic_deadline(timeout))
            .map_err(|e| os("sem_clockwait", "unnamed", e))
    }

    /// `sem_post(sem)`.
    pub fn post(&self) -> Result<(), SemError> {
        sys::post(&self.0).map_err(|e| os("sem_post", "unnamed", e))
    }

    /// `sem_getvalue(sem)` — a snapshot, stale as soon as it returns.
    pub fn value(&self) -> Result<i32, SemError> {
        sys::value(&self.0).map_err(|e| os("sem_getvalue", "unnamed", e))
    }

    /// `sem_destroy(sem)` — once, by whoever initialised it, because the
    /// semaphore may hold resources on implementations other than glibc.
    ///
    /// # Safety
    /// The semaphore was initialised with [`init`](Self::init), nobody waits
    /// on it, and nobody uses it afterwards (POSIX leaves both undefined).
    pub unsafe fn destroy(&self) {
        // SAFETY: forwarded contract.
        unsafe { sys::destroy(&self.0) }
    }
}

impl std::fmt::Debug for SemCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemCell")
            .field("value", &self.value().ok())
            .finish()
    }
}

/// A handle to a named semaphore in this process; `sem_close`d on drop.
#[derive(Debug)]
pub struct NamedSem {
    sem: sys::NamedHandle,
    name: String,
}

impl NamedSem {
    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)`, then `chmod` of
    /// `/dev/shm/sem.NAME` to exactly `mode`, and registers the file with
    /// [`shm::cleanup`] so Ctrl-C removes it — the chmod because `sem_open`
    /// applies the umask, and regions promise the mode they were asked for.
    /// On any failure after creating it, unlinks it again, so a failed
    /// create leaves nothing behind (and `EEXIST` never removes someone
    /// else's semaphore).
    pub fn create(name: &str, mode: shm::Mode, value: u32) -> Result<Self, SemError> {
        use std::os::unix::fs::PermissionsExt;
        let c = cname(name)?;
        let sem = sys::NamedHandle::create(&c, mode.bits(), value)
            .map_err(|e| os("sem_open", name, e))?;
        let made = NamedSem {
            sem,
            name: name.to_string(),
        };
        let path = sem_path(name);
        shm::cleanup::register_path(&path);
        if let Err(e) =
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode.bits()))
        {
            let _ = NamedSem::unlink(name);
            return Err(os("chmod", name, e));
        }
        Ok(made)
    }

    /// `sem_open(name, 0)` — an existing semaphore, never creating one,
    /// because only the creator may decide its mode and initial value.
    pub fn open(name: &str) -> Result<Self, SemError> {
        let c = cname(name)?;
        let sem = sys::NamedHandle::open(&c).map_err(|e| os("sem_open", name, e))?;
        Ok(NamedSem {
            sem,
            name: name.to_string(),
        })
    }

    /// `sem_unlink(name)` and [`shm::cleanup::unregister_path`] — removes
    /// the name; handles already open stay valid until closed, as with files.
    pub fn unlink(name: &str) -> Result<(), SemError> {
        let c = cname(name)?;
        shm::cleanup::unregister_path(sem_path(name));
        sys::unlink(&c).map_err(|e| os("sem_unlink", name, e))
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `sem_wait(sem)`, retrying `EINTR` — a signal is not a reason to
    /// give up the wait.
    pub fn wait(&self) -> Result<(), SemError> {
        sys::wait(self.sem.cell()).map_err(|e| os("sem_wait", &self.name, e))
    }

    /// `sem_trywait(sem)`: `false` if the value is 0 (`EAGAIN`), because a
    /// busy semaphore is an answer, not an error.
    pub fn try_wait(&self) -> Result<bool, SemError> {
        sys::try_wait(self.sem.cell()).map_err(|e| os("sem_trywait", &self.name, e))
    }

    /// `sem_clockwait(sem, CLOCK_MONOTONIC, now + timeout)`: `false` on
    /// timeout — monotonic, because a wall-clock deadline moves when the
    /// clock is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, SemError> {
        sys::wait_until(self.sem.cell(), &shm::time::monotonic_deadline(timeout))
            .map_err(|e| os("sem_clockwait", &self.name, e))
    }

    /// `sem_post`.
    pub fn post(&self) -> Result<(), SemError> {
        sys::post(self.sem.cell()).map_err(|e| os("sem_post", &self.name, e))
    }

    /// `sem_getvalue(sem)` — a snapshot, stale as soon as it returns.
    pub fn value(&self) -> Result<i32, SemError> {
        sys::value(self.sem.cell()).map_err(|e| os("sem_getvalue", &self.name, e))
    }
}

// ---------------------------------------------------------------------------
// The locks.

/// Room for the longest name `sem_open` accepts, with its `/`.
const NAME_BYTES: usize = 256;
const _: () = assert!(SEM_NAME_MAX < NAME_BYTES);

/// A named semaphore's lock state in the region: its name and the pid of
/// the last process that took it.
#[repr(C)]
pub struct NamedState {
    name: [AtomicU8; NAME_BYTES],
    len: AtomicU32,
    last_holder: AtomicI32,
}
shm::any_bits!(NamedState {
    name,
    len,
    last_holder
});

impl NamedState {
    /// The semaphore's name as stored by the creator (lossy: for
    /// messages; use [`name_bytes`](Self::name_bytes) to act on it).
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.name_bytes()).into_owned()
    }

    /// The stored name's bytes, exactly: the first `len` bytes of the
    /// field, `len` (shared, so anything) clamped to the field. A peer may
    /// have stored any bytes: check them before using them as a name.
    pub fn name_bytes(&self) -> Vec<u8> {
        let len = usize::try_from(self.len.load(Ordering::Acquire))
            .map_or(NAME_BYTES, |l| l.min(NAME_BYTES));
        self.name[..len]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// The pid of the last process that took the lock (0: nobody yet).
    pub fn last_holder(&self) -> i32 {
        self.last_holder.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for NamedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedState")
            .field("name", &self.name())
            .field("last_holder", &self.last_holder())
            .finish()
    }
}

/// The name a region's named semaphore gets: the region's own name, so its
/// file is `/dev/shm/sem.<region>` next to `/dev/shm/<region>` (for
/// [`ShmName::unique`](shm::ShmName::unique) names, `sem.shmlab-…`), and
/// `shmlab clean` can tell whose it is.
///
/// A region name may be up to `NAME_MAX` (255) bytes but a semaphore's only
/// [`SEM_NAME_MAX`] (glibc adds `sem.`): a longer one is cut and ends in a
/// hash of the whole name instead, so two long names that share a prefix
/// still get different semaphores.
pub fn sem_name_for(region: &shm::ShmName) -> String {
    let body = region.file_name();
    if body.len() <= SEM_NAME_MAX {
        return region.as_str().to_string();
    }
    // FNV-1a: tiny, and stable across Rust versions (the name is stored in
    // the region anyway, so only its uniqueness matters).
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let suffix = format!("-{hash:016x}");
    let mut cut = SEM_NAME_MAX - suffix.len();
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("/{}{suffix}", &body[..cut])
}

/// A POSIX named semaphore with initial value 1, used as a lock. The handle
/// is this process's `sem_t *`.
#[derive(Debug)]
pub struct NamedSemaphore(NamedSem);

impl NamedSemaphore {
    /// Posts the semaphore on behalf of a holder that died: a deliberate
    /// repair of a wedged lock.
    ///
    /// Unsafe in general (though not memory-unsafe): a semaphore cannot know
    /// who holds it, so if the recorded holder is actually alive, or the
    /// value was already 1, this lets a second process into the critical
    /// section. Only call it after checking that the last holder is dead and
    /// the value is 0.
    pub fn repair(&self) -> Result<(), SemError> {
        self.0.post()
    }

    /// `sem_getvalue(sem)`: 1 free, 0 held — what tells a wedged lock
    /// (0, with a dead last holder) from a busy one.
    pub fn value(&self) -> Result<i32, SemError> {
        self.0.value()
    }

    /// The semaphore's name (its file is [`sem_path`] of it).
    pub fn name(&self) -> &str {
        self.0.name()
    }
}

// SAFETY: a semaphore with value 1 admits one sem_wait at a time across all
// processes that open it; sem_wait/sem_post are full barriers.
unsafe impl RawLock for NamedSemaphore {
    type State = NamedState;
    type Error = SemError;
    const NAME: &'static str = "sem";

    /// `sem_open(name, O_CREAT | O_EXCL, mode, 1)` with the name
    /// [`sem_name_for`] the region, `chmod` to the region's mode, registered
    /// for removal on Ctrl-C, then closed; the name goes into the region —
    /// because other processes find the semaphore through the region, and
    /// the creator attaches like everyone else.
    unsafe fn init(state: *mut NamedState, ctx: &InitCtx<'_>) -> Result<(), SemError> {
        let name = sem_name_for(ctx.name);
        let sem = NamedSem::create(&name, ctx.mode, 1)?;
        drop(sem); // the creator attaches like everyone else
        // SAFETY: `state` is valid, zeroed, ours alone (the init contract).
        let st = unsafe { &*state };
        for (slot, b) in st.name.iter().zip(name.bytes()) {
            slot.store(b, Ordering::Relaxed);
        }
        st.len.store(name.len() as u32, Ordering::Release);
        Ok(())
    }

    /// `sem_open(name, 0)` of the name stored in the region — each process
    /// needs its own `sem_t *`; the handle `sem_close`s it on drop.
    unsafe fn attach(state: &NamedState) -> Result<Self, SemError> {
        NamedSem::open(&state.name()).map(NamedSemaphore)
    }

    /// `sem_wait(sem)`, retrying `EINTR`; then records this pid as the last
    /// holder, because a semaphore has no owner and a wedge needs a suspect.
    #[inline]
    fn lock(&self, state: &NamedState) -> Result<Acquired, SemError> {
        self.0.wait()?;
        record_holder(&state.last_holder);
        Ok(Acquired::Clean)
    }

    /// `sem_trywait(sem)`; `EAGAIN` → `None`, because a held lock is an
    /// answer, not an error.
    fn try_lock(&self, state: &NamedState) -> Result<Option<Acquired>, SemError> {
        if self.0.try_wait()? {
            record_holder(&state.last_holder);
            Ok(Some(Acquired::Clean))
        } else {
            Ok(None)
        }
    }

    /// `sem_post(sem)` — any process may post a semaphore, so nothing
    /// checks that the caller holds it; the guard does.
    #[inline]
    unsafe fn unlock(&self, _state: &NamedState) {
        let r = self.0.post();
        debug_assert!(r.is_ok(), "sem_post failed: {r:?}");
    }

    /// The pid stored after the last successful wait (`None` if nobody has
    /// taken it yet): the suspect when the lock looks wedged.
    fn last_holder(&self, state: &NamedState) -> Option<i32> {
        Some(state.last_holder()).filter(|&p| p > 0)
    }

    /// `sem_unlink(name)` and unregisters `/dev/shm/sem.NAME` from
    /// [`shm::cleanup`] — the name goes with the region; handles still open
    /// elsewhere keep working until closed.
    unsafe fn destroy(state: &NamedState, _ctx: &InitCtx<'_>) {
        let _ = NamedSem::unlink(&state.name());
    }
}

impl RawLockTimed for NamedSemaphore {
    /// `sem_clockwait(sem, CLOCK_MONOTONIC, deadline)`, the deadline
    /// normalised and kept across `EINTR` retries; `ETIMEDOUT` → `None` —
    /// because a semaphore whose holder died stays at 0 forever, and the
    /// caller should be able to notice rather than hang.
    fn lock_timeout(
        &self,
        state: &NamedState,
        timeout: Duration,
    ) -> Result<Option<Acquired>, SemError> {
        if self.0.wait_timeout(timeout)? {
            record_holder(&state.last_holder);
            Ok(Some(Acquired::Clean))
        } else {
            Ok(None)
        }
    }
}

/// Records this process as the holder ([`shm::pid`] is cached, so this
/// costs one relaxed store, not a `getpid` system call).
#[inline]
fn record_holder(slot: &AtomicI32) {
    slot.store(shm::pid(), Ordering::Relaxed);
}

/// An unnamed semaphore's lock state: the `sem_t` itself and the last
/// holder's pid.
#[repr(C)]
#[derive(Debug)]
pub struct UnnamedState {
    sem: SemCell,
    last_holder: AtomicI32,
}
shm::any_bits!(UnnamedState { sem, last_holder });

impl UnnamedState {
    /// The pid of the last process that took the lock.
    pub fn last_holder(&self) -> i32 {
        self.last_holder.load(Ordering::Relaxed)
    }

    /// The semaphore.
    pub fn sem(&self) -> &SemCell {
        &self.sem
    }
}

/// An unnamed process-shared semaphore (`sem_init(pshared = 1, 1)`) inside
/// the region, used as a lock.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnnamedSemaphore;

// SAFETY: as for NamedSemaphore: value 1, sem_wait/sem_post are barriers.
unsafe impl RawLock for UnnamedSemaphore {
    type State = UnnamedState;
    type Error = SemError;
    const NAME: &'static str = "sem-unnamed";

    /// `sem_init(sem, pshared = 1, 1)` on the `sem_t` where it lies in the
    /// region — pshared because other processes use it through their own
    /// mappings, in place because a copied `sem_t` is another semaphore.
    unsafe fn init(state: *mut UnnamedState, _ctx: &InitCtx<'_>) -> Result<(), SemError> {
        // SAFETY: `state` is valid, zeroed, never moving (init contract).
        unsafe { SemCell::init(&raw mut (*state).sem, 1) }
    }

    /// Nothing to open — the semaphore is inside the region, so the handle
    /// is empty.
    unsafe fn attach(_state: &UnnamedState) -> Result<Self, SemError> {
        Ok(UnnamedSemaphore)
    }

    /// `sem_wait(sem)`, retrying `EINTR`; then records this pid as the last
    /// holder, because a semaphore has no owner and a wedge needs a suspect.
    #[inline]
    fn lock(&self, state: &UnnamedState) -> Result<Acquired, SemError> {
        state.sem.wait()?;
        record_holder(&state.last_holder);
        Ok(Acquired::Clean)
    }

    /// `sem_trywait(sem)`; `EAGAIN` → `None`, because a held lock is an
    /// answer, not an error.
    fn try_lock(&self, state: &UnnamedState) -> Result<Option<Acquired>, SemError> {
        if state.sem.try_wait()? {
            record_holder(&state.last_holder);
            Ok(Some(Acquired::Clean))
        } else {
            Ok(None)
        }
    }

    /// `sem_post(sem)` — any process may post a semaphore, so nothing
    /// checks that the caller holds it; the guard does.
    #[inline]
    unsafe fn unlock(&self, state: &UnnamedState) {
        let r = state.sem.post();
        debug_assert!(r.is_ok(), "sem_post failed: {r:?}");
    }

    /// The pid stored after the last successful wait (`None` if nobody has
    /// taken it yet): the suspect when the lock looks wedged.
    fn last_holder(&self, state: &UnnamedState) -> Option<i32> {
        Some(state.last_holder()).filter(|&p| p > 0)
    }

    /// `sem_destroy(sem)` — by the creator, as the region goes, because
    /// POSIX lets a semaphore hold resources until destroyed.
    unsafe fn destroy(state: &UnnamedState, _ctx: &InitCtx<'_>) {
        // SAFETY: our caller guarantees (RawLock::destroy) one call, after
        // every other user is done, for a state whose `init` (sem_init)
        // succeeded (a Region whose init failed is never built, so never
        // destroys); the region is unmapped right after. (glibc's
        // sem_destroy touches nothing in any case.)
        unsafe { state.sem.destroy() }
    }
}

impl RawLockTimed for UnnamedSemaphore {
    /// `sem_clockwait(sem, CLOCK_MONOTONIC, deadline)`, the deadline
    /// normalised and kept across `EINTR` retries; `ETIMEDOUT` → `None` —
    /// because a dead holder leaves the semaphore at 0 forever.
    fn lock_timeout(
        &self,
        state: &UnnamedState,
        timeout: Duration,
    ) -> Result<Option<Acquired>, SemError> {
        if state.sem.wait_timeout(timeout)? {
            record_holder(&state.last_holder);
            Ok(Some(Acquired::Clean))
        } else {
            Ok(None)
        }
    }
}
