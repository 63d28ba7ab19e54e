//! Helpers for the core crate's integration tests.
#![allow(dead_code)]

use shm::{Access, ShmName, ShmOptions};

/// Unlinks its name on drop, so a failing test leaves nothing in /dev/shm.
#[derive(Debug)]
pub struct Unlink(pub ShmName);

impl Unlink {
    pub fn new(purpose: &str) -> (Self, ShmName) {
        let n = ShmName::unique(purpose);
        (Unlink(n.clone()), n)
    }
}

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = self.0.unlink();
    }
}

/// A plain object of `size` bytes starting with `bytes`, left in place.
pub fn plain_object(name: &ShmName, size: u64, bytes: &[u8]) {
    let mut obj = ShmOptions::new().create_new(true).open(name).unwrap();
    obj.set_len(size).unwrap();
    obj.map(Access::ReadWrite, size as usize)
        .unwrap()
        .write(0, bytes)
        .unwrap();
    obj.keep();
}

/// Bytes of a header that has shmlab's magic, `version` and `state`, and
/// nothing else: what a foreign or future program might have written.
pub fn fake_header(version: u32, state: u32) -> Vec<u8> {
    let mut b = shm::MAGIC.to_le_bytes().to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&state.to_le_bytes());
    b
}
