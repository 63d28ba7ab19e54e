//! Keeping hot shared words on their own cache line.

use std::ops::Deref;

/// `T` aligned and padded to 128 bytes, so a hot word does not share a cache
/// line (or the adjacent-line prefetch pair on x86_64) with its neighbours.
/// Same idea as crossbeam's `CachePadded`; `#[repr(C)]` so its layout is
/// fixed across processes.
#[derive(Debug, Default)]
#[repr(C, align(128))]
pub struct CachePadded<T>(pub T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn padded_to_128() {
        assert_eq!(std::mem::align_of::<super::CachePadded<u8>>(), 128);
        assert_eq!(std::mem::size_of::<super::CachePadded<u64>>(), 128);
    }
}
