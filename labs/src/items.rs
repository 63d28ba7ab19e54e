//! The items the bounded-buffer labs (`lab7-buffer`, `lab11-condvar`) pass
//! through a ring, and the receipts that prove each arrived exactly once.
//!
//! Every item carries its producer, its sequence number, a payload and a
//! checksum over all three, written field by field (relaxed atomics, so a
//! slot read while half written is a *torn* item, not undefined
//! behaviour). Consumers check each item and tick a receipt per
//! (producer, sequence); [`tally`] then counts the items consumed exactly
//! once, the lost and the duplicated ones.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// One slot of a ring: an item written field by field.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Slot {
    producer: AtomicU32,
    _pad: AtomicU32,
    seq: AtomicU64,
    payload: [AtomicU64; 4],
    checksum: AtomicU64,
}
shm::any_bits!(Slot {
    producer,
    _pad,
    seq,
    payload,
    checksum,
});

fn checksum(producer: u32, seq: u64, payload: &[u64; 4]) -> u64 {
    // FNV-1a over the fields: cheap, and any torn mix of two items fails it.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in [producer as u64, seq].iter().chain(payload) {
        for b in w.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

fn payload_for(producer: u32, seq: u64) -> [u64; 4] {
    let x = (producer as u64) << 40 ^ seq;
    [
        x,
        x.rotate_left(17),
        !x,
        x.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    ]
}

impl Slot {
    /// Writes item `seq` of producer `p`, field by field.
    pub fn write(&self, p: u32, seq: u64) {
        let payload = payload_for(p, seq);
        self.producer.store(p, Ordering::Relaxed);
        self.seq.store(seq, Ordering::Relaxed);
        for (w, v) in self.payload.iter().zip(payload) {
            w.store(v, Ordering::Relaxed);
        }
        self.checksum
            .store(checksum(p, seq, &payload), Ordering::Relaxed);
    }

    /// Reads the item: `(producer, seq)`, or `None` if the checksum does
    /// not match (a mix of two items, or a slot never written).
    pub fn read(&self) -> Option<(u32, u64)> {
        let p = self.producer.load(Ordering::Relaxed);
        let seq = self.seq.load(Ordering::Relaxed);
        let payload = [0, 1, 2, 3].map(|i| self.payload[i].load(Ordering::Relaxed));
        let sum = self.checksum.load(Ordering::Relaxed);
        (sum == checksum(p, seq, &payload)).then_some((p, seq))
    }
}

/// The receipt index of item `seq` of producer `p` when each of the
/// producers makes `per` items and `total` are made in all; `None` for a
/// (producer, seq) no producer made.
pub fn receipt_index(p: u32, seq: u64, per: u64, total: u64) -> Option<usize> {
    let index = (p as u64).checked_mul(per)?.checked_add(seq)?;
    (seq < per && index < total).then_some(index as usize)
}

/// What the receipts say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Receipts ticked exactly once.
    pub exactly_once: u64,
    /// Receipts never ticked.
    pub lost: u64,
    /// Extra ticks (a receipt ticked k > 1 times counts k − 1).
    pub duplicated: u64,
    /// All ticks.
    pub consumed: u64,
}

/// Counts the receipts.
pub fn tally(receipts: &[AtomicU8]) -> Tally {
    let mut t = Tally::default();
    for r in receipts {
        match r.load(Ordering::Relaxed) {
            0 => t.lost += 1,
            1 => t.exactly_once += 1,
            k => t.duplicated += k as u64 - 1,
        }
        t.consumed += r.load(Ordering::Relaxed) as u64;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_reads_back_and_a_blank_slot_does_not() {
        let s = Slot::default();
        assert_eq!(s.read(), None);
        s.write(3, 17);
        assert_eq!(s.read(), Some((3, 17)));
        s.seq.store(18, Ordering::Relaxed);
        assert_eq!(s.read(), None, "a torn mix fails the checksum");
    }

    #[test]
    fn receipts_and_tally() {
        assert_eq!(receipt_index(1, 2, 10, 20), Some(12));
        assert_eq!(receipt_index(1, 10, 10, 20), None);
        assert_eq!(receipt_index(2, 0, 10, 20), None);
        let r = [1u8, 0, 3, 1].map(AtomicU8::new);
        let t = tally(&r);
        assert_eq!(
            (t.exactly_once, t.lost, t.duplicated, t.consumed),
            (2, 1, 2, 5)
        );
    }
}
