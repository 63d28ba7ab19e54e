//! What the semaphore locks say about themselves ([`InspectLock`]), read
//! from a copy of their state: the value (`sem_getvalue`: 1 free, 0 held),
//! glibc's count of sleepers (`nwaiters`) and the last process that took
//! it (a semaphore has no owner, so at 0 that process is the holder shown).
//!
//! An unnamed semaphore's `sem_t` is in the state itself. A named one's
//! state holds only its name: its `sem_t` is the first bytes of its own
//! file, `/dev/shm/sem.NAME`, which is **read**, never `sem_open`ed (that
//! would map it). The name is whatever a peer stored, so it is checked
//! by [`ShmName`]'s rules first ([`sem_file_name`]); one that fails is
//! reported, escaped, and nothing is opened. A valid one is read with
//! [`shm::listing::read_entry`]: one component of `/dev/shm`, no symlink
//! followed, never blocking (a FIFO), a regular file only, at most a
//! `sem_t`'s [`SEM_T`] bytes.
//!
//! The helpers are public for lab 7's bounded buffer, whose semaphores are
//! bare [`SemCell`]s.

use crate::{NamedSemaphore, NamedState, SEM_NAME_MAX, SemCell, UnnamedSemaphore, UnnamedState};
use shm::ShmName;
use shm::listing::escape_bytes;
use shm::lock::{Ids, InspectLock, LockInfo, Waiters};
use shm::process::Liveness;
use std::mem::MaybeUninit;

/// The most of a `sem.*` file that is read: one `sem_t`.
pub const SEM_T: usize = std::mem::size_of::<SemCell>();

impl InspectLock for UnnamedSemaphore {
    const RECOVERS_OWNER_DEATH: bool = false;

    /// The value from `sem_getvalue` on the copy, the sleepers from the
    /// `sem_t`'s bytes ([`glibc_sem_waiters`]).
    fn inspect(state: &UnnamedState, bytes: &[u8], liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
        let at = std::mem::offset_of!(UnnamedState, sem);
        let waiters = bytes
            .get(at..at.saturating_add(8))
            .and_then(glibc_sem_waiters);
        semaphore(
            state.sem().value().ok(),
            waiters,
            state.last_holder(),
            liveness,
        )
    }
}

impl InspectLock for NamedSemaphore {
    const RECOVERS_OWNER_DEATH: bool = false;

    /// The name as stored, and the value and sleepers from its file (see
    /// the module docs).
    fn inspect(state: &NamedState, _bytes: &[u8], liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
        named(&state.name_bytes(), state.last_holder(), liveness)
    }
}

/// glibc's sleeper count in a `sem_t` on a 64-bit target, from its first 8
/// bytes: the `data` word holds the value in its low 32 bits and
/// `nwaiters` in its high 32. `None` elsewhere, or from other than 8 bytes.
pub fn glibc_sem_waiters(first8: &[u8]) -> Option<u32> {
    if cfg!(target_pointer_width = "64") {
        let data = u64::from_le_bytes(first8.try_into().ok()?);
        Some((data >> 32) as u32)
    } else {
        None
    }
}

/// A semaphore used as a lock, from its value (if read), its sleepers (if
/// known) and the pid of the last process that took it (`last`, as stored:
/// anything not positive is nobody).
pub fn semaphore(
    value: Option<i32>,
    waiters: Option<u32>,
    last: i32,
    liveness: &dyn Fn(i32) -> Liveness,
) -> LockInfo {
    let mut r = LockInfo::free(Ids::Processes);
    r.value = value;
    r.waiters = waiters.map_or(Waiters::NotRecorded, Waiters::Count);
    let last = (last > 0).then_some(last);
    match value {
        Some(0) => {
            r.state = "held";
            r.holder = last;
            r.notes.push(
                "a semaphore has no owner: the holder shown is the last process that took it"
                    .into(),
            );
            if let Some(pid) = last {
                let how = liveness(pid);
                if how.is_dead() {
                    r.notes.push(format!(
                        "its last holder pid {pid} is {how}: nothing will post it, so it is wedged"
                    ));
                }
            }
        }
        Some(_) => r.state = "free",
        None => r.state = "unknown",
    }
    r.last_taken_by = last;
    r
}

/// The file in `/dev/shm` of the named semaphore `stored` (a name read from
/// a region), if `stored` is a name `sem_open` could have been given:
/// UTF-8, [`ShmName::parse`]'s rules (a leading `/`, no other `/`, no NUL,
/// not `.` or `..`), and at most [`SEM_NAME_MAX`] bytes after the `/`.
/// Otherwise why not: it is then never used as a path.
pub fn sem_file_name(stored: &[u8]) -> Result<String, String> {
    let s = std::str::from_utf8(stored).map_err(|_| "it is not UTF-8".to_string())?;
    if !s.starts_with('/') {
        return Err("it does not start with /".into());
    }
    let name = ShmName::parse(s).map_err(|e| match e {
        shm::Error::InvalidName { reason, .. } => reason.to_string(),
        _ => "it is not a valid name".to_string(),
    })?;
    if name.file_name().len() > SEM_NAME_MAX {
        return Err(format!(
            "it is longer than {SEM_NAME_MAX} bytes after the /"
        ));
    }
    Ok(format!("sem.{}", name.file_name()))
}

/// A `sem.*` file's value (`sem_getvalue` on an aligned private copy) and
/// sleeper count, from its first bytes: exactly a `sem_t`'s, else why not.
pub fn sem_file_value(bytes: &[u8]) -> Result<(Option<i32>, Option<u32>), String> {
    let Ok(sem_t) = <&[u8; SEM_T]>::try_from(bytes) else {
        return Err(format!(
            "it holds {} byte(s), not a sem_t's {SEM_T}",
            bytes.len()
        ));
    };
    Ok((value_of_copy(sem_t), glibc_sem_waiters(&sem_t[..8])))
}

/// `sem_getvalue` of a `sem_t` rebuilt from `bytes`, in memory of this
/// frame's alone (aligned for it, never shared, never waited on).
fn value_of_copy(bytes: &[u8; SEM_T]) -> Option<i32> {
    let mut copy = MaybeUninit::<SemCell>::uninit();
    // SAFETY: `copy` is `SEM_T` writable bytes, `bytes` exactly as many
    // readable ones, and the two cannot overlap (`copy` is a fresh local).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy.as_mut_ptr().cast::<u8>(), SEM_T);
    }
    // SAFETY: every byte was written just above, and any bit pattern is a
    // valid `SemCell` (`AnyBits`: a C union of integers).
    let copy = unsafe { copy.assume_init() };
    copy.value().ok()
}

/// A named semaphore: its name as the region stores it (`stored`, exact
/// bytes), its value and waiters from its own file (see the module docs),
/// and the last process that took it. A name that is not a valid
/// semaphore name is reported (escaped) and nothing is opened.
fn named(stored: &[u8], last_holder: i32, liveness: &dyn Fn(i32) -> Liveness) -> LockInfo {
    let (value, waiters, problem) = match sem_file_name(stored) {
        Err(why) => (
            None,
            None,
            Some(format!(
                "invalid name ({}): {why}; no file is opened for it",
                escape_bytes(stored)
            )),
        ),
        Ok(file) => {
            let path = format!("{}/{}", shm::SHM_DIR, escape_bytes(file.as_bytes()));
            match shm::listing::read_entry(std::ffi::OsStr::new(&file), SEM_T) {
                Ok(bytes) => match sem_file_value(&bytes) {
                    Ok((value, waiters)) => (value, waiters, None),
                    Err(why) => (None, None, Some(format!("its file {path}: {why}"))),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                    None,
                    None,
                    Some(format!(
                        "its file {path} does not exist (the semaphore was unlinked)"
                    )),
                ),
                Err(e) => {
                    // shm's messages escape the names they quote already.
                    let e = e.to_string();
                    let e = if e.chars().any(char::is_control) {
                        escape_bytes(e.as_bytes())
                    } else {
                        e
                    };
                    (
                        None,
                        None,
                        Some(format!("its file {path} cannot be read: {e}")),
                    )
                }
            }
        }
    };
    let mut r = semaphore(value, waiters, last_holder, liveness);
    if let Some(problem) = problem {
        r.notes.push(problem);
    } else if r.holder.is_some_and(|pid| liveness(pid).is_dead()) {
        r.notes.push(format!(
            "repair it, once sure: shmlab repair-sem {} --holder {last_holder}",
            escape_bytes(stored)
        ));
    }
    r.object = Some(stored.to_vec());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(_: i32) -> Liveness {
        Liveness::Running
    }
    fn gone(_: i32) -> Liveness {
        Liveness::Gone
    }

    #[test]
    fn sem_waiters_are_the_high_word() {
        let data: u64 = (3 << 32) | 1;
        assert_eq!(glibc_sem_waiters(&data.to_le_bytes()), Some(3));
        assert_eq!(glibc_sem_waiters(&[0; 7]), None);
    }

    #[test]
    fn a_semaphore_at_zero_is_held_by_its_last_taker() {
        let r = semaphore(Some(0), Some(2), 77, &gone);
        assert_eq!(
            (r.state, r.holder, r.last_taken_by),
            ("held", Some(77), Some(77))
        );
        assert_eq!(r.waiters, Waiters::Count(2));
        assert_eq!(r.ids, Ids::Processes);
        assert!(r.notes[1].ends_with("nothing will post it, so it is wedged"));
        let r = semaphore(Some(1), None, 0, &alive);
        assert_eq!((r.state, r.holder, r.last_taken_by), ("free", None, None));
        assert_eq!(r.waiters, Waiters::NotRecorded);
        assert_eq!(semaphore(None, None, 5, &alive).state, "unknown");
    }

    /// A real `sem_t`'s bytes: the copy's value is glibc's own.
    #[test]
    fn a_copy_reads_as_the_semaphore() {
        let mut cell = MaybeUninit::<SemCell>::zeroed();
        // SAFETY: zeroed, aligned, on this frame only and never moved
        // while in use.
        unsafe { SemCell::init(cell.as_mut_ptr(), 3) }.unwrap();
        // SAFETY: initialised just above.
        let cell = unsafe { cell.assume_init_ref() };
        // SAFETY: `SemCell` is `SEM_T` plain bytes; nobody else uses it.
        let bytes: [u8; SEM_T] = unsafe { std::mem::transmute_copy(cell) };
        assert_eq!(sem_file_value(&bytes).unwrap(), (Some(3), Some(0)));
        assert!(sem_file_value(&bytes[1..]).is_err());
        // SAFETY: initialised, nobody waits on it or uses it after.
        unsafe { cell.destroy() };
    }
}
