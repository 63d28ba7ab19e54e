//! A mapping that outlives its object's size: SIGBUS, reported as what it
//! is.
//!
//! `mmap(2)` maps pages of a file; if another process later shrinks the
//! object (`ftruncate(2)`), or `/dev/shm` has no page left when one is
//! first touched, the next access to a page past the end raises `SIGBUS`.
//! No access ever returns wrong data: the process is stopped at the
//! faulting instruction. That is why [`Mapping`](crate::Mapping) is a safe
//! type (it never hands out `&[u8]` or `&mut` into the pages, only atomic
//! copies, so a peer writing them is no data race either): what a peer can
//! do to a mapper is kill it, not corrupt it.
//!
//! Killed by "Bus error" is a poor lesson, though. [`report_sigbus`]
//! (called by [`crate::cleanup::install`], so every lab has it) installs a
//! `SIGBUS` handler that looks the faulting address up among this
//! process's live [`Mapping`](crate::Mapping)s; for one of them it writes
//! one line naming the object and the offset and why, and ends the process
//! with exit status 2 (`_exit`: a signal handler may not unwind or
//! allocate). A fault anywhere else is left to the default action.
//!
//! Every [`Mapping`](crate::Mapping) records its range in a fixed table of
//! atomics (no allocation and no lock, so the handler can read it); a
//! process with more live mappings than the table holds reports the rest
//! as plain SIGBUS.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

const SLOTS: usize = 64;
const NAME_LEN: usize = 64;

struct Slot {
    /// 0: free; otherwise the mapping's first byte.
    start: AtomicUsize,
    len: AtomicUsize,
    name_len: AtomicUsize,
    name: [AtomicU8; NAME_LEN],
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    name_len: AtomicUsize::new(0),
    name: [const { AtomicU8::new(0) }; NAME_LEN],
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];

/// Where a mapping is recorded; forgets it when dropped.
#[derive(Debug)]
pub(crate) struct Registered(Option<usize>);

/// Records a mapping of `len` bytes at `start` of the object `name`.
pub(crate) fn register(start: usize, len: usize, name: &str) -> Registered {
    for (i, slot) in TABLE.iter().enumerate() {
        if slot
            .start
            .compare_exchange(0, usize::MAX, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let bytes = name.as_bytes();
            let n = bytes.len().min(NAME_LEN);
            for (d, &b) in slot.name.iter().zip(&bytes[..n]) {
                d.store(b, Ordering::Relaxed);
            }
            slot.name_len.store(n, Ordering::Relaxed);
            slot.len.store(len, Ordering::Relaxed);
            // Release: a handler that sees `start` sees the rest.
            slot.start.store(start, Ordering::Release);
            return Registered(Some(i));
        }
    }
    Registered(None)
}

impl Registered {
    /// Nothing recorded.
    pub(crate) fn none() -> Self {
        Registered(None)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            TABLE[i].start.store(0, Ordering::Release);
        }
    }
}

/// Installs the `SIGBUS` report (once; later calls do nothing). See the
/// module docs.
pub fn report_sigbus() -> std::io::Result<()> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut res = Ok(());
    ONCE.call_once(|| res = crate::sys::install_sigbus(on_sigbus));
    res
}

/// The handler's work: find the mapping, write the line, `_exit(2)`.
/// Returns only for an address in no recorded mapping.
fn on_sigbus(addr: usize) {
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || start == usize::MAX {
            continue;
        }
        let len = slot.len.load(Ordering::Relaxed);
        if addr < start || addr - start >= len {
            continue;
        }
        let mut line = Line::new();
        line.push(b"SIGBUS: the shared-memory object ");
        let n = slot.name_len.load(Ordering::Relaxed).min(NAME_LEN);
        for b in &slot.name[..n] {
            let b = b.load(Ordering::Relaxed);
            // The name came from us, but print it as safely as any name.
            let b = if b.is_ascii_graphic() { b } else { b'?' };
            line.push(&[b]);
        }
        line.push(b" has no page at offset ");
        line.number(addr - start);
        line.push(b" of this ");
        line.number(len);
        line.push(b"-byte mapping: another process shrank it with ftruncate since it was mapped (or /dev/shm ran out of space when the page was first touched); nothing past its end was read. Exiting with status 2.\n");
        crate::sys::write_stderr_and_exit(line.as_bytes(), 2);
    }
}

/// A fixed buffer a signal handler can format into.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn number(&mut self, mut v: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_format_numbers() {
        let mut l = Line::new();
        l.push(b"at ");
        l.number(0);
        l.push(b" ");
        l.number(18_446_744);
        assert_eq!(l.as_bytes(), b"at 0 18446744");
    }

    #[test]
    fn slots_are_found_and_freed() {
        let r = register(0x1000_0000, 4096, "/x");
        let i = r.0.expect("a free slot");
        assert_eq!(TABLE[i].start.load(Ordering::Relaxed), 0x1000_0000);
        drop(r);
        assert_eq!(TABLE[i].start.load(Ordering::Relaxed), 0);
    }
}
