//! Private copies of shared bytes, viewed as the types that lie there: the
//! only `unsafe` in the tool.
//!
//! `shmlab ps` and `watch` never map the objects they report on (a mapping
//! would make them one of the object's users, keep it alive for `clean`,
//! and let a truncation SIGBUS them): they `read(2)` the bytes, copy them
//! into memory aligned for the payload type, and call the lock crates' own
//! accessors (`FutexState::holder`, `NamedState::name`, `sem_getvalue`, …)
//! on the copy. The copy is a moment's picture, stale as soon as it is
//! taken, which is all a report needs.
//!
//! The bytes are whatever the object holds, written by anyone who can
//! write it, so only a [`shm::AnyBits`] type (every bit pattern a valid
//! value, each field checked at compile time by `shm::any_bits!`) can be
//! rebuilt from them: a payload with a `bool` or an enum does not compile
//! here.

use shm::AnyBits;
use std::alloc::Layout;
use std::ops::Deref;
use std::ptr::NonNull;

/// A heap copy of `size_of::<T>()` bytes, aligned for `T`, read as a `T`.
pub(crate) struct Snapshot<T: AnyBits> {
    ptr: NonNull<T>,
}

impl<T: AnyBits> Snapshot<T> {
    const LAYOUT: Layout = Layout::new::<T>();

    /// Copies `bytes` (exactly `size_of::<T>()` of them, else `None`).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        const {
            assert!(
                !std::mem::needs_drop::<T>(),
                "a snapshot is never dropped as a T"
            );
            assert!(std::mem::size_of::<T>() > 0);
        }
        if bytes.len() != Self::LAYOUT.size() {
            return None;
        }
        // SAFETY: the layout's size is not zero (asserted above).
        let raw = unsafe { std::alloc::alloc(Self::LAYOUT) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            std::alloc::handle_alloc_error(Self::LAYOUT)
        };
        // SAFETY: `raw` is a fresh allocation of exactly `bytes.len()`
        // bytes, so both ranges are valid and they cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), raw, bytes.len()) };
        Some(Snapshot { ptr })
    }
}

impl<T: AnyBits> Deref for Snapshot<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the allocation is aligned for `T` (its layout is `T`'s),
        // every byte of it was written in `from_bytes`, and any bit pattern
        // is a valid `T` (`T: AnyBits`); it is this snapshot's alone and lives
        // as long as the borrow.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: AnyBits> Drop for Snapshot<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `from_bytes` with this layout; `T` has no
        // drop glue (asserted there), so nothing needs dropping first.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), Self::LAYOUT) };
    }
}

impl<T: AnyBits> std::fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use race::mode::{LocalLock, ModeVisitor};
    use race::shared::{ByLock, NoLock, RaceShared};
    use shm::lock::{InspectLock, RawLockTimed};
    use std::sync::atomic::Ordering;

    /// Every payload `shmlab ps` decodes (and the lock states inside them)
    /// is `AnyBits`; this only has to compile. A field added with a `bool`
    /// or an enum stops the build at its struct's `shm::any_bits!` line.
    /// The race's regions are every registry mode's.
    #[test]
    fn every_decoded_payload_is_any_bits() {
        fn decodable<T: AnyBits>() {}
        struct Race;
        impl ModeVisitor for Race {
            type Output = ();
            fn unsynchronised(self) {
                decodable::<RaceShared<NoLock>>();
            }
            fn fetch_add(self) {
                decodable::<RaceShared<NoLock>>();
            }
            fn region_lock<L: RawLockTimed + InspectLock + 'static>(self) {
                decodable::<RaceShared<ByLock<L>>>();
            }
            fn local_lock<M: LocalLock>(self) {
                decodable::<RaceShared<NoLock>>();
            }
        }
        for mode in race::SyncMode::ALL {
            mode.visit(Race);
        }
        decodable::<shm_sem::SemCell>();
        decodable::<crate::payloads::Lab3Payload>();
        decodable::<crate::payloads::buffer::Buffer>();
        decodable::<crate::payloads::philosophers::Table>();
    }

    /// Finding 5 of issue 17: lab 7's `producers_done` was an `AtomicBool`,
    /// so a region whose byte there is 2 (any process that can write the
    /// object can store it) made reading the snapshot undefined behaviour
    /// (a `bool` must be 0 or 1). It is a byte now, read as `!= 0`: every
    /// value is defined, and 2 means done. (The old code compiled and had no
    /// observable failure without Miri; what refuses it now is the type:
    /// `AtomicBool` is not `AnyBits`, so `Snapshot<Buffer>` would not
    /// compile with it, see `shm::any_bits!`'s `compile_fail` examples.)
    #[test]
    fn a_stray_byte_in_a_flag_is_a_value_not_ub() {
        use crate::payloads::buffer::Buffer;
        let mut bytes = vec![0u8; std::mem::size_of::<Buffer>()];
        let at = std::mem::offset_of!(Buffer, producers_done);
        for stored in [2u8, 0xff, 1, 0] {
            bytes[at] = stored;
            let b = Snapshot::<Buffer>::from_bytes(&bytes).unwrap();
            let done = b.producers_done.0.load(Ordering::Relaxed);
            assert_eq!(done, stored);
            assert_eq!(done != 0, stored != 0);
        }
    }

    #[test]
    fn a_snapshot_reads_what_the_bytes_say() {
        type Race = RaceShared<ByLock<shm_futex::FutexLock>>;
        let mut bytes = vec![0u8; std::mem::size_of::<Race>()];
        let at = std::mem::offset_of!(Race, counter);
        bytes[at..at + 8].copy_from_slice(&41u64.to_le_bytes());
        let at = std::mem::offset_of!(Race, lock);
        bytes[at..at + 4].copy_from_slice(&(1234u32 | 0x8000_0000).to_le_bytes());
        let s = Snapshot::<Race>::from_bytes(&bytes).unwrap();
        assert_eq!(s.counter.0.load(Ordering::Relaxed), 41);
        assert_eq!(s.lock.0.raw().holder(), Some(1234));
        assert!(s.lock.0.raw().has_waiters());
        assert!(Snapshot::<Race>::from_bytes(&bytes[1..]).is_none());
    }

    /// The decode of a real unnamed semaphore's bytes: glibc's own value
    /// and the high word the tool reads as the sleeper count.
    #[test]
    fn sem_value_from_a_copy_matches_sem_getvalue() {
        use std::mem::MaybeUninit;
        let mut cell = MaybeUninit::<shm_sem::SemCell>::zeroed();
        // SAFETY: zeroed, aligned, on this stack frame only, never moved
        // while in use (it is only read after init, then dropped).
        unsafe { shm_sem::SemCell::init(cell.as_mut_ptr(), 5) }.unwrap();
        // SAFETY: initialised just above.
        let cell = unsafe { cell.assume_init_ref() };
        assert_eq!(cell.value().unwrap(), 5);
        assert!(cell.try_wait().unwrap());
        // SAFETY: `SemCell` is 32 plain bytes (a C union); reading them
        // while nobody else uses it.
        let bytes: [u8; 32] = unsafe { std::mem::transmute_copy(cell) };
        let copy = Snapshot::<shm_sem::SemCell>::from_bytes(&bytes).unwrap();
        assert_eq!(copy.value().unwrap(), 4);
        assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()) >> 32, 0);
    }
}
