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

use race::shared::{ByLock, NoLock, RaceShared};
use std::alloc::Layout;
use std::ops::Deref;
use std::ptr::NonNull;

/// A type that can be rebuilt from any bytes.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid `Self`
/// (integers, atomics, `UnsafeCell`s of C unions like `pthread_mutex_t` and
/// `sem_t`, arrays and `#[repr(C)]` structs of those, `PhantomData`).
pub(crate) unsafe trait Plain: Sized {}

macro_rules! plain_race {
    ($($lock:ty),* $(,)?) => {
        $(
            // SAFETY: `RaceShared` is `#[repr(C)]` atomics and `CachePadded`
            // wrappers of atomics, plus this lock's state: an owner word
            // (atomics and `PhantomData`), a `pthread_mutex_t` in an
            // `UnsafeCell` (a C union of integers), a semaphore name and pid
            // (atomics), or a `sem_t` in an `UnsafeCell` (a C union) and a
            // pid. Every bit pattern of each is valid.
            unsafe impl Plain for RaceShared<ByLock<$lock>> {}
        )*
    };
}

plain_race!(
    shm_futex::FutexLock,
    shm_futex::SpinLock,
    shm_pthread::RobustMutex,
    shm_pthread::PlainMutex,
    shm_sem::NamedSemaphore,
    shm_sem::UnnamedSemaphore,
);

// SAFETY: as above; `NoLock`'s state is one `AtomicU32`.
unsafe impl Plain for RaceShared<NoLock> {}

// SAFETY: `SemCell` is `#[repr(C)]` around an `UnsafeCell<sem_t>`, and
// `sem_t` is a C union of a byte array and a `long`.
unsafe impl Plain for shm_sem::SemCell {}

// SAFETY: lab 13's table is `#[repr(C)]` futex lock states (an owner word
// of atomics), seats of atomics, a `SemCell` (a C union in an
// `UnsafeCell`), shmlab's barrier (atomics) and glibc's barrier (a C union
// in an `UnsafeCell`), and atomics, each in `CachePadded` or bare: every
// bit pattern of each is valid.
unsafe impl Plain for crate::payloads::philosophers::Table {}

// SAFETY: lab 7's buffer is `#[repr(C)]` atomics (some in `CachePadded`),
// three `SemCell`s (C unions in `UnsafeCell`s), a futex lock state (an
// owner word of atomics), and slots and receipts of atomics: every bit
// pattern of each is valid.
unsafe impl Plain for crate::payloads::buffer::Buffer {}

/// A heap copy of `size_of::<T>()` bytes, aligned for `T`, read as a `T`.
pub(crate) struct Snapshot<T: Plain> {
    ptr: NonNull<T>,
}

impl<T: Plain> Snapshot<T> {
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

impl<T: Plain> Deref for Snapshot<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the allocation is aligned for `T` (its layout is `T`'s),
        // every byte of it was written in `from_bytes`, and any bit pattern
        // is a valid `T` (`T: Plain`); it is this snapshot's alone and lives
        // as long as the borrow.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Plain> Drop for Snapshot<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `from_bytes` with this layout; `T` has no
        // drop glue (asserted there), so nothing needs dropping first.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), Self::LAYOUT) };
    }
}

impl<T: Plain> std::fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

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
