//! Mappings: `mmap(2)` with `MAP_SHARED`, `munmap(2)` on drop.

use crate::{Error, Result, ShmName, ShmObject, sys};
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// Read-only or read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `PROT_READ`.
    ReadOnly,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

/// A shared mapping of an object. Unmapped on drop.
///
/// **What a peer can do to it.** Anything another process may do to the
/// object (write any bytes at any time, or shrink it) costs a mapper at
/// most its life, never its soundness: bytes are only copied with atomic
/// loads and stores (no `&[u8]` over bytes others write), and a page that
/// a peer's `ftruncate(2)` removed raises `SIGBUS` on access, which stops
/// the process before anything is read. With [`crate::fault::report_sigbus`]
/// installed (every lab has it) that death is one line naming the object
/// and offset, and exit status 2. The size is checked once, here, at map
/// time: a mapping cannot know later shrinks.
///
/// Other processes may write these pages at any time, so this type never
/// hands out `&mut` into them (that would promise exclusivity the kernel does
/// not give): bytes are copied in and out with relaxed atomic byte
/// operations, and typed access goes through [`crate::Region`], whose
/// payloads are interior-mutable.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    access: Access,
    name: ShmName,
    /// Its range in [`crate::fault`]'s table, for the SIGBUS report.
    _fault: crate::fault::Registered,
}

// SAFETY: the mapping is plain shared memory; every access through this type
// is atomic or via raw pointers handed to interior-mutable types, so it may
// be used and dropped from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only permits atomic byte access.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `obj`. Refuses a length of 0, a
    /// read-write mapping of a read-only object, and an object shorter than
    /// `len` (touching pages past its end would raise SIGBUS).
    pub fn new(obj: &ShmObject, access: Access, len: usize) -> Result<Self> {
        let name = obj.name().clone();
        let nz = NonZeroUsize::new(len).ok_or_else(|| Error::TooSmall {
            name: name.clone(),
            actual: 0,
            needed: 1,
        })?;
        if access == Access::ReadWrite && !obj.writable() {
            return Err(Error::ReadOnly { name });
        }
        let size = obj.stat()?.size;
        if size < len as u64 {
            return Err(Error::TooSmall {
                name,
                actual: size,
                needed: len as u64,
            });
        }
        let ptr = sys::map_shared(obj.fd(), nz, access == Access::ReadWrite)
            .map_err(|e| Error::sys("mmap", &name, e))?;
        let _fault = crate::fault::register(ptr.as_ptr() as usize, len, name.as_str());
        Ok(Mapping {
            ptr,
            len,
            access,
            name,
            _fault,
        })
    }

    /// The first byte. Valid for [`len`](Self::len) bytes while `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: zero-length mappings are refused.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How it was mapped.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The object it maps.
    pub fn name(&self) -> &ShmName {
        &self.name
    }

    /// The mapping as 64-bit words, `len / 8` of them: an array of
    /// counters or records that several processes fill in place (a trace
    /// buffer, say). Every access is atomic, so concurrent writers in other
    /// processes are not data races. Refused on a read-only mapping, whose
    /// pages a store would fault on.
    pub fn words(&self) -> Result<&[AtomicU64]> {
        if self.access == Access::ReadOnly {
            return Err(Error::ReadOnly {
                name: self.name.clone(),
            });
        }
        // SAFETY: the mapping is page-aligned (so 8-aligned) and `len / 8`
        // words fit inside it; AtomicU64 is valid for any bit pattern and
        // has u64's size; the slice borrows `self`, so it cannot outlive
        // the mapping; all access through it is atomic.
        Ok(unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), self.len / 8)
        })
    }

    fn byte(&self, i: usize) -> &AtomicU8 {
        assert!(
            i < self.len,
            "offset {i} outside a {}-byte mapping",
            self.len
        );
        // SAFETY: `i` is in bounds of a live mapping; AtomicU8 has the size
        // and alignment of u8; all access through this type is atomic, so
        // concurrent writers (in any process) are not data races.
        unsafe { AtomicU8::from_ptr(self.ptr.as_ptr().add(i)) }
    }

    /// Copies `len` bytes out from `offset` (clamped to the mapping).
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        let end = offset.saturating_add(len).min(self.len);
        (offset.min(end)..end)
            .map(|i| self.byte(i).load(Ordering::Relaxed))
            .collect()
    }

    /// Reads a NUL-terminated string from `offset`, as C's `printf("%s")`
    /// would, stopping at the end of the mapping if there is no NUL.
    pub fn read_c_string(&self, offset: usize) -> Vec<u8> {
        (offset..self.len)
            .map(|i| self.byte(i).load(Ordering::Relaxed))
            .take_while(|&b| b != 0)
            .collect()
    }

    /// Copies `bytes` in at `offset`; errors on a read-only mapping or if
    /// they do not fit.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        if self.access == Access::ReadOnly {
            return Err(Error::ReadOnly {
                name: self.name.clone(),
            });
        }
        let end = offset.checked_add(bytes.len()).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Error::TooSmall {
                name: self.name.clone(),
                actual: self.len as u64,
                needed: offset as u64 + bytes.len() as u64,
            });
        }
        for (i, &b) in bytes.iter().enumerate() {
            self.byte(offset + i).store(b, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Out of the SIGBUS table before the range can be reused.
        self._fault = crate::fault::Registered::none();
        // SAFETY: ptr/len are the mapping made in `new`; nothing borrowed
        // from it can outlive `self` (regions borrow the mapping).
        let _ = unsafe { sys::unmap(self.ptr, self.len) };
    }
}
