//! What a shmlab region's payload says: its locks — free or held, by whom
//! (and whether that thread or process is alive), who waits, where the lock
//! records it — and what else it holds (a counter, workers, a ring, a
//! table).
//!
//! Each region type the tool knows is decoded from a [`Snapshot`] of its
//! payload (read with `read(2)`, never mapped):
//!
//! - the race's regions (`race/<lock>`: the lock, the counter, the
//!   workers) through the lock registry: [`race::SyncMode::visit`] finds the
//!   mode whose race makes the region the header names, and its lock
//!   describes itself ([`InspectLock`], implemented beside each lock in its
//!   own crate). A lock added to the registry is decoded with no change
//!   here. What each records:
//!
//! | lock | holder | waiters |
//! |---|---|---|
//! | `futex` | the tid in the lock word | the word's `FUTEX_WAITERS` bit: *that* someone waits, not how many |
//! | `spin`, `spin-pure` | the tid in the lock word | not recorded: spinners only read the word |
//! | `pthread`, `pthread-plain` | glibc's owner field | glibc's lock word: `FUTEX_WAITERS` (robust) or 2 (plain): a flag |
//! | `sem`, `sem-unnamed` | value 0: the last process that took it (a semaphore has no owner) | glibc's count of sleepers (`nwaiters`) |
//!
//!   The modes that keep no lock in the region (`none`, `atomic` and the
//!   thread-only ones) share one region type, `race/nolock`;
//! - lab 3's (counter, last writer), lab 7's bounded buffer (head, tail,
//!   its semaphores or its futex lock and fill-count word) and lab 13's
//!   table (every fork as a futex lock, who holds it and who waits for it,
//!   and the wait-for cycle), by the decoders beside their payload types in
//!   [`crate::payloads`] ([`DecodePayload`]).
//!
//! Anything else is listed with its users and a note that its payload is
//! not decoded.
//!
//! Liveness of every pid and tid is [`shm::process::liveness`]'s, asked
//! once per id and decode ([`Lookups`]), so that a holder and the notes
//! about it agree.
//!
//! ## Hostile bytes
//!
//! A region holds whatever anyone who can write it stored, so nothing read
//! from it is trusted:
//!
//! - a payload is decoded only when the header's layout is this build's
//!   type, from a private copy of exactly that many bytes (a type every bit
//!   pattern of which is valid); counts and indices are clamped or checked
//!   against what they index, and what does not add up is said in a note;
//! - a named semaphore's name is checked by [`ShmName`]'s rules (a leading
//!   `/`, no other `/`, no NUL, not `.`/`..`, at most
//!   [`shm_sem::SEM_NAME_MAX`] bytes, UTF-8) before its file is touched; a
//!   name that fails is reported as invalid, escaped, and nothing is
//!   opened. A valid one is read with [`shm::listing::read_entry`]: one
//!   component of `/dev/shm`, no symlink followed, never blocking (a
//!   FIFO), a regular file only, and at most a `sem_t`'s 32 bytes (the
//!   sem crate's inspect hook, [`shm_sem::inspect`]);
//! - the structured fields of a report (a holder's `comm`, the semaphore's
//!   name) are exact, for JSON; the sentences (`notes`, `note`, [`LockReport::words`])
//!   carry every outside string escaped by [`crate::fmt::escape`], so that
//!   text printed on a terminal holds no control character.

use crate::decoded::*;
use crate::payloads::buffer::{BUFFER_TYPE, Buffer};
use crate::payloads::philosophers::{PHILOSOPHERS_TYPE, Table};
use crate::payloads::{LAB3_TYPE, Lab3Payload};
use crate::snapshot::Snapshot;
use race::WorkerState;
use race::mode::{LocalLock, ModeVisitor};
use race::shared::{ByLock, NoLock, RaceShared, RegionLock};
use shm::lock::{InspectLock, RawLockTimed};
use shm::{HeaderInfo, InitState, Region, Shared, ShmName, VERSION};

use std::sync::atomic::Ordering;

/// Reads `size` bytes of a region's payload (or says why not).
type ReadPayload<'a> = &'a dyn Fn(usize) -> Result<Vec<u8>, String>;

/// Decodes a region's payload by its header's type tag, reading it from
/// the object `name` (`read(2)`, never mapped; at most the size of the
/// type the header names, whatever size the header claims).
pub fn decode(name: &ShmName, h: &HeaderInfo) -> Decoded {
    decode_with(h, &|size| {
        super::read_at(name, u64::from(h.payload_offset), size).map_err(|e| format!("{e:#}"))
    })
}

/// [`decode`], with the payload's bytes from `read`: the decoder itself,
/// which the property tests feed arbitrary bytes.
fn decode_with(h: &HeaderInfo, read: ReadPayload<'_>) -> Decoded {
    if h.version != VERSION {
        return Decoded::note(format!(
            "header version {} is not this build's ({VERSION}): payload not decoded",
            h.version
        ));
    }
    if h.init_state() != Some(InitState::Ready) {
        return Decoded::note(
            "not ready: the payload may be half-initialised, so it is not decoded",
        );
    }
    let who = Lookups::default();
    let payloads: [DecodeIf; 3] = [payload::<Lab3Payload>, payload::<Table>, payload::<Buffer>];
    if let Some(d) = payloads.iter().find_map(|decode| decode(h, read, &who)) {
        return d;
    }
    let Some(lock) = h.type_name.strip_prefix("race/") else {
        return Decoded::note(format!(
            "payload {} is not one the tool decodes (it knows race/*, {LAB3_TYPE}, {BUFFER_TYPE} and {PHILOSOPHERS_TYPE})",
            crate::fmt::escape_str(&h.type_name)
        ));
    };
    let region = |mode: race::SyncMode| mode.visit(RaceRegion { h, read, who: &who });
    race::SyncMode::ALL
        .into_iter()
        .find_map(region)
        .unwrap_or_else(|| {
            Decoded::note(format!(
                "race region with lock \"{}\", which this build does not know",
                crate::fmt::escape_str(lock)
            ))
        })
}

/// A payload's decode, if the header names its type ([`payload`]).
type DecodeIf = fn(&HeaderInfo, ReadPayload<'_>, &Lookups) -> Option<Decoded>;

/// The payload `T`'s decode, if the header names `T`.
fn payload<T: DecodePayload>(
    h: &HeaderInfo,
    read: ReadPayload<'_>,
    who: &Lookups,
) -> Option<Decoded> {
    (h.type_name == T::type_name()).then(|| match snapshot::<T>(h, read) {
        Ok(copy) => T::report(&copy, who),
        Err(why) => Decoded::note(why),
    })
}

/// The payload's bytes, if the header's layout is `T`'s: exactly
/// `size_of::<T>()` of them, else why not.
fn payload_bytes<T: Shared>(h: &HeaderInfo, read: ReadPayload<'_>) -> Result<Vec<u8>, String> {
    let size = std::mem::size_of::<T>();
    if h.payload_size != size as u64
        || h.payload_align != std::mem::align_of::<T>() as u32
        || h.payload_offset as usize != Region::<T>::payload_offset()
    {
        return Err(format!(
            "its layout ({} bytes, align {}) is not this build's {} ({size} bytes): payload not decoded",
            h.payload_size,
            h.payload_align,
            crate::fmt::escape_str(&h.type_name)
        ));
    }
    let bytes = read(size)?;
    if bytes.len() != size {
        return Err(format!(
            "it is shorter than its header says ({} of {size} payload bytes)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The payload read as a `T` (a private copy), with its bytes; or why not.
fn snapshot<T: Shared + shm::AnyBits>(
    h: &HeaderInfo,
    read: ReadPayload<'_>,
) -> Result<Copied<T>, String> {
    let bytes = payload_bytes::<T>(h, read)?;
    let copy = Snapshot::<T>::from_bytes(&bytes)
        .ok_or_else(|| "payload size changed while reading".to_string())?;
    Ok(Copied { copy, bytes })
}

/// The race's region of one sync mode, through the registry: `Some` if the
/// header names the region that mode's race makes (`RaceShared` of the
/// mode's lock, or of [`NoLock`] for the modes that keep none in the
/// region), decoded; `None` otherwise.
struct RaceRegion<'a> {
    h: &'a HeaderInfo,
    read: ReadPayload<'a>,
    who: &'a Lookups,
}

impl RaceRegion<'_> {
    /// A race region holding `K`: counter, workers, and what `locks` reads
    /// from the lock.
    fn decode<K: RegionLock>(
        self,
        locks: impl FnOnce(&Copied<RaceShared<K>>) -> Vec<LockReport>,
    ) -> Option<Decoded>
    where
        RaceShared<K>: shm::AnyBits,
    {
        if self.h.type_name != RaceShared::<K>::type_name() {
            return None;
        }
        let st = match snapshot::<RaceShared<K>>(self.h, self.read) {
            Ok(got) => got,
            Err(why) => return Some(Decoded::note(why)),
        };
        let go = st.control.0.gate.is_open();
        let workers = st
            .workers
            .iter()
            .enumerate()
            .filter_map(|(index, w)| {
                let w = &w.0;
                let id = w.id.load(Ordering::Relaxed);
                (id > 0).then(|| WorkerReport {
                    index,
                    id,
                    state: match w.state() {
                        WorkerState::NotStarted => "not-started",
                        WorkerState::Arrived if go => "running",
                        WorkerState::Arrived => "at the start barrier",
                        WorkerState::Done => "done",
                        WorkerState::Failed => "failed",
                    },
                    done: w.done.load(Ordering::Relaxed),
                    liveness: self.who.liveness(id).as_str(),
                })
            })
            .collect();
        Some(Decoded {
            locks: locks(&st),
            counter: Some(st.counter.0.load(Ordering::Relaxed)),
            workers,
            ..Decoded::default()
        })
    }
}

impl ModeVisitor for RaceRegion<'_> {
    type Output = Option<Decoded>;
    fn unsynchronised(self) -> Self::Output {
        self.decode::<NoLock>(|_| Vec::new())
    }
    fn fetch_add(self) -> Self::Output {
        self.decode::<NoLock>(|_| Vec::new())
    }
    fn region_lock<L: RawLockTimed + InspectLock + 'static>(self) -> Self::Output {
        let who = self.who;
        self.decode::<ByLock<L>>(|st| {
            let state = st.lock.0.raw();
            vec![LockReport::of::<L>("lock", state, st.bytes_of(state), who)]
        })
    }
    fn local_lock<M: LocalLock>(self) -> Self::Output {
        self.decode::<NoLock>(|_| Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pthread mutex's state, crafted: glibc's lock word at byte 0 and
    /// its owner field at byte 8, read through the lock's inspect hook.
    fn mutex<L: InspectLock<State = shm_pthread::MutexState>>(owner: i32, word: u32) -> LockReport {
        let mut b = vec![0u8; size_of::<shm_pthread::MutexState>()];
        put(&mut b, 0, &word.to_le_bytes());
        put(&mut b, 8, &owner.to_le_bytes());
        let copy = Snapshot::<shm_pthread::MutexState>::from_bytes(&b).unwrap();
        LockReport::of::<L>("lock", &copy, &b, &Lookups::default())
    }

    #[test]
    fn pthread_words() {
        let me = shm::gettid();
        let r = mutex::<RobustMutex>(me, me as u32 | libc::FUTEX_WAITERS);
        assert_eq!((r.state, r.waiters), ("held", Waiters::Flag { any: true }));
        assert_eq!(r.holder.as_ref().unwrap().id, me);
        assert!(r.words().ends_with(
            "waiters: yes (glibc's lock word records that someone waits, not how many)"
        ));
        let r = mutex::<PlainMutex>(0, 0);
        assert_eq!((r.state, r.waiters), ("free", Waiters::Flag { any: false }));
        let r = mutex::<RobustMutex>(me, libc::FUTEX_OWNER_DIED);
        assert_eq!(r.state, "owner died");
    }

    /// Every mode of the registry that makes a region (all of them: the
    /// ones that keep no lock there share `race/nolock`) is decoded, and a
    /// region lock's report names the lock: the registry is the tool's
    /// list (`spin-pure` was once called a lock "which this build does
    /// not know"). The real regions of real runs: `tests/ps.rs`.
    #[test]
    fn every_registry_mode_is_decoded() {
        for mode in race::SyncMode::ALL {
            let h = mode.visit(RaceHeader);
            assert!(h.type_name.starts_with("race/"), "{mode}: {}", h.type_name);
            let (d, asked) = decode_bytes(&h, &vec![0; h.payload_size as usize]);
            assert!(
                d.note.as_ref().is_none_or(|n| !n.contains("does not know")),
                "{mode}: {:?}",
                d.note
            );
            assert_eq!(asked, h.payload_size as usize, "{mode}");
            assert_eq!(d.counter, Some(0), "{mode}: {:?}", d.note);
            let kinds: Vec<&str> = d.locks.iter().map(|l| l.kind).collect();
            if mode.is_region_lock() {
                assert_eq!(kinds, [mode.name()], "{mode}");
                assert!(!d.locks[0].words().is_empty());
            } else {
                assert!(kinds.is_empty(), "{mode}: {kinds:?}");
            }
        }
        // And one type tag the registry does not have.
        let mut h = header::<RaceShared<NoLock>>();
        h.type_name = "race/mutex".into();
        let (d, _) = decode_bytes(&h, &[]);
        assert_eq!(
            d.note.as_deref(),
            Some("race region with lock \"mutex\", which this build does not know")
        );
    }

    // ---- hostile bytes (issue 17: findings 3 and 7, and the decoders'
    // property tests) ----

    use crate::fmt::has_control;
    use crate::payloads::buffer::MAX_SLOTS;
    use crate::payloads::philosophers::{MAX_PHILOSOPHERS, Seat};
    use proptest::prelude::*;
    use shm::{CachePadded, Shared};
    use shm_futex::{FutexLock, PureSpinLock, SpinLock};
    use shm_pthread::{PlainMutex, RobustMutex};
    use shm_sem::NamedSemaphore;
    use shm_sem::inspect::{SEM_T, sem_file_name, sem_file_value};
    use std::cell::Cell;
    use std::mem::{offset_of, size_of};

    /// A ready header of this build's layout for `T`.
    fn header<T: Shared>() -> HeaderInfo {
        HeaderInfo {
            magic: shm::MAGIC,
            version: VERSION,
            state: 2, // Ready
            payload_offset: Region::<T>::payload_offset() as u32,
            payload_align: std::mem::align_of::<T>() as u32,
            payload_size: size_of::<T>() as u64,
            creator_pid: 0,
            creator_uid: 0,
            creator_start: 0,
            created_unix_ns: 0,
            type_name: T::type_name(),
            trailing_len: 0,
        }
    }

    /// The header of the region a mode's race makes: `RaceShared` of its
    /// lock, or of `NoLock` for a mode that keeps none in the region.
    struct RaceHeader;

    impl ModeVisitor for RaceHeader {
        type Output = HeaderInfo;
        fn unsynchronised(self) -> HeaderInfo {
            header::<RaceShared<NoLock>>()
        }
        fn fetch_add(self) -> HeaderInfo {
            header::<RaceShared<NoLock>>()
        }
        fn region_lock<L: RawLockTimed + InspectLock + 'static>(self) -> HeaderInfo {
            header::<RaceShared<ByLock<L>>>()
        }
        fn local_lock<M: LocalLock>(self) -> HeaderInfo {
            header::<RaceShared<NoLock>>()
        }
    }

    /// Every payload `ps` decodes: every region of the registry's modes
    /// (once each), lab 3's, lab 7's and lab 13's.
    fn known() -> Vec<HeaderInfo> {
        let mut known: Vec<HeaderInfo> = Vec::new();
        for mode in race::SyncMode::ALL {
            let h = mode.visit(RaceHeader);
            if !known.iter().any(|k| k.type_name == h.type_name) {
                known.push(h);
            }
        }
        known.extend([
            header::<Lab3Payload>(),
            header::<Buffer>(),
            header::<Table>(),
        ]);
        known
    }

    /// Decodes `bytes` as the payload `h` describes; the reader hands out
    /// at most what it is asked for, as `read(2)` does, and records the
    /// largest size asked.
    fn decode_bytes(h: &HeaderInfo, bytes: &[u8]) -> (Decoded, usize) {
        let asked = Cell::new(0);
        let d = decode_with(h, &|size| {
            asked.set(asked.get().max(size));
            Ok(bytes[..size.min(bytes.len())].to_vec())
        });
        (d, asked.get())
    }

    /// Every sentence of a decode, as `ps` prints it.
    fn text(d: &Decoded) -> Vec<String> {
        let mut out: Vec<String> = d.note.iter().cloned().collect();
        for l in &d.locks {
            out.push(l.name.clone());
            out.push(l.words());
            out.extend(l.notes.iter().cloned());
        }
        out
    }

    fn assert_inert(d: &Decoded) {
        for t in text(d) {
            assert!(!has_control(&t), "a control character in {t:?}");
        }
    }

    fn put(bytes: &mut [u8], at: usize, v: &[u8]) {
        bytes[at..at + v.len()].copy_from_slice(v);
    }

    /// A buffer of `len` bytes: zeros, ones, or a xorshift stream from
    /// `seed`; then `patches` (offset, value, width) written over it.
    fn fill(len: usize, how: u8, seed: u64, patches: &[(usize, u64, usize)]) -> Vec<u8> {
        let mut b = match how {
            0 => vec![0; len],
            1 => vec![0xff; len],
            _ => {
                let mut x = seed | 1;
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            }
        };
        for &(at, v, width) in patches {
            if len >= width {
                let at = at % (len - width + 1);
                put(&mut b, at, &v.to_le_bytes()[..width]);
            }
        }
        b
    }

    fn patches() -> impl Strategy<Value = Vec<(usize, u64, usize)>> {
        let value = prop_oneof![
            Just(0u64),
            Just(u64::MAX),
            Just(i32::MAX as u64),
            Just(u32::MAX as u64),
            (0u64..64),
            any::<u64>()
        ];
        proptest::collection::vec(
            (any::<usize>(), value, prop_oneof![Just(4usize), Just(8)]),
            0..24,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Any bytes in any payload `ps` decodes, cut to any length: no
        /// panic, a bounded report, a clear note when the size is wrong,
        /// no control character in anything it prints, and never a read of
        /// more than the type's size.
        #[test]
        fn every_decoder_takes_any_bytes(
            which in any::<prop::sample::Index>(),
            how in 0u8..3,
            seed in any::<u64>(),
            patches in patches(),
            cut in proptest::option::weighted(0.25, any::<usize>()),
        ) {
            let known = known();
            let h = which.get(&known);
            let size = h.payload_size as usize;
            let mut bytes = fill(size, how, seed, &patches);
            if let Some(cut) = cut {
                bytes.truncate(cut % size);
            }
            let (d, asked) = decode_bytes(h, &bytes);
            prop_assert_eq!(asked, size);
            assert_inert(&d);
            prop_assert!(d.locks.len() <= MAX_PHILOSOPHERS as usize + 1);
            prop_assert!(d.workers.len() <= race::MAX_WORKERS as usize);
            prop_assert!(d.cycle.as_ref().is_none_or(|c| c.len() <= MAX_PHILOSOPHERS as usize));
            prop_assert!(text(&d).iter().map(String::len).sum::<usize>() < 64 << 10);
            if bytes.len() < size {
                let note = d.note.clone().unwrap_or_default();
                prop_assert!(note.contains(&format!("shorter than its header says ({} of {size}", bytes.len())), "{}", note);
                prop_assert!(d.locks.is_empty());
            }
        }

        /// A header whose layout is not this build's: a note, nothing read.
        #[test]
        fn a_foreign_layout_is_not_read(
            which in any::<prop::sample::Index>(),
            size in any::<u64>(),
            align in any::<u32>(),
            offset in any::<u32>(),
            version in prop_oneof![Just(VERSION), any::<u32>()],
            state in prop_oneof![Just(2u32), any::<u32>()],
        ) {
            let mut h = which.get(&known()).clone();
            let same = (h.payload_size, h.payload_align, h.payload_offset) == (size, align, offset);
            h.payload_size = size;
            h.payload_align = align;
            h.payload_offset = offset;
            h.version = version;
            h.state = state;
            let (d, asked) = decode_bytes(&h, &[]);
            if !same || version != VERSION || state != 2 {
                prop_assert_eq!(asked, 0);
                prop_assert!(d.note.is_some() && d.locks.is_empty());
            }
            assert_inert(&d);
        }

        /// Any type tag (escape bytes, lossy UTF-8): a note, escaped.
        #[test]
        fn any_type_tag_is_escaped(tag in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut h = header::<Lab3Payload>();
            h.type_name = String::from_utf8_lossy(&tag).into_owned();
            let (d, _) = decode_bytes(&h, &[0; 64]);
            assert_inert(&d);
            h.type_name = format!("race/{}", h.type_name);
            let (d, _) = decode_bytes(&h, &[0; 64]);
            assert_inert(&d);
        }

        /// A `NamedState` of any bytes: its name is a bounded slice of
        /// the field, and either a valid `sem.` file name or a reason.
        #[test]
        fn any_stored_sem_name(state in proptest::collection::vec(any::<u8>(), size_of::<shm_sem::NamedState>())) {
            let copy = Snapshot::<shm_sem::NamedState>::from_bytes(&state).unwrap();
            let name = copy.name_bytes();
            prop_assert!(name.len() <= NAME_FIELD);
            if let Ok(file) = sem_file_name(&name) {
                prop_assert!(file.starts_with("sem.") && !file[4..].contains(['/', '\0']));
                prop_assert!(file != "sem.." && file != "sem.");
                prop_assert!(file.len() <= 4 + shm_sem::SEM_NAME_MAX);
            }
        }

        /// Any name in a region: never a control character in what `ps`
        /// prints, and an invalid one is never opened (its value unknown).
        #[test]
        fn any_named_sem(name in proptest::collection::vec(any::<u8>(), 0..64), last in any::<i32>()) {
            let r = named_sem(&name, last);
            for t in std::iter::once(r.words()).chain(r.notes.iter().cloned()) {
                prop_assert!(!has_control(&t), "{:?}", t);
            }
            if sem_file_name(&name).is_err() {
                prop_assert_eq!(r.value, None);
                prop_assert!(r.notes.iter().any(|n| n.starts_with("invalid name (")), "{:?}", r.notes);
            }
        }

        /// A `sem.*` file's first bytes, of any length: a value only from
        /// exactly a `sem_t`.
        #[test]
        fn any_sem_file_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            match sem_file_value(&bytes) {
                Ok((_, waiters)) => {
                    prop_assert_eq!(bytes.len(), SEM_T);
                    let data = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                    prop_assert_eq!(waiters, Some((data >> 32) as u32));
                }
                Err(why) => {
                    prop_assert!(bytes.len() != SEM_T);
                    prop_assert!(why.contains("not a sem_t's 32"), "{}", why);
                }
            }
        }
    }

    /// Where a `NamedState` keeps its name's length: after a 256-byte
    /// name field (the test below pins it to the sem crate's accessors).
    const NAME_FIELD: usize = 256;

    /// A named semaphore's state that stores `stored` (its first
    /// `NAME_FIELD` bytes) and `last` as its last holder, as `ps` reports
    /// it through the lock's inspect hook.
    fn named_sem(stored: &[u8], last: i32) -> LockReport {
        let mut state = vec![0u8; size_of::<shm_sem::NamedState>()];
        let len = stored.len().min(NAME_FIELD);
        put(&mut state, 0, &stored[..len]);
        put(&mut state, NAME_FIELD, &(len as u32).to_le_bytes());
        put(&mut state, NAME_FIELD + 4, &last.to_le_bytes());
        let copy = Snapshot::<shm_sem::NamedState>::from_bytes(&state).unwrap();
        LockReport::of::<NamedSemaphore>("lock", &copy, &state, &Lookups::default())
    }

    /// A spin lock's state (no flag bit) whose word is `word`.
    fn spin<L: InspectLock>(word: u32) -> LockReport
    where
        L::State: shm::AnyBits,
    {
        let mut b = vec![0u8; size_of::<L::State>()];
        put(&mut b, 0, &word.to_le_bytes());
        let copy = Snapshot::<L::State>::from_bytes(&b).unwrap();
        LockReport::of::<L>("lock", &copy, &b, &Lookups::default())
    }

    /// The bytes `ps` acts on are the name, exactly, its length clamped
    /// to the field (a length a peer stored past it).
    #[test]
    fn stored_sem_name_is_exact_and_clamped() {
        let mut state = vec![0u8; size_of::<shm_sem::NamedState>()];
        put(&mut state, 0, b"/shmlab-demo-\xff-0");
        put(&mut state, NAME_FIELD, &16u32.to_le_bytes());
        put(&mut state, NAME_FIELD + 4, &77i32.to_le_bytes());
        let copy = Snapshot::<shm_sem::NamedState>::from_bytes(&state).unwrap();
        assert_eq!(copy.name_bytes(), b"/shmlab-demo-\xff-0");
        assert_eq!(copy.last_holder(), 77);
        put(&mut state, NAME_FIELD, &u32::MAX.to_le_bytes());
        let copy = Snapshot::<shm_sem::NamedState>::from_bytes(&state).unwrap();
        assert_eq!(copy.name_bytes().len(), NAME_FIELD);
    }

    /// Finding 3: only names `sem_open` could have been given become a
    /// file name, one component of `/dev/shm`.
    #[test]
    fn sem_names_follow_shm_names_rules() {
        assert_eq!(sem_file_name(b"/shmlab-x-1-0").unwrap(), "sem.shmlab-x-1-0");
        assert_eq!(sem_file_name(b"/x\x1b[2J").unwrap(), "sem.x\x1b[2J");
        for bad in [
            &b"/d/../../../tmp/secret"[..],
            b"zero",
            b"",
            b"/",
            b"/.",
            b"/..",
            b"/a\0b",
            b"/a\xff",
            b"//x",
        ] {
            let why = sem_file_name(bad).unwrap_err();
            assert!(!why.is_empty(), "{bad:?}");
        }
        let long = format!("/{}", "n".repeat(shm_sem::SEM_NAME_MAX));
        assert!(sem_file_name(long.as_bytes()).is_ok());
        let longer = format!("/{}", "n".repeat(shm_sem::SEM_NAME_MAX + 1));
        assert!(sem_file_name(longer.as_bytes()).is_err());
    }

    /// Finding 3, the reproduction: a region naming
    /// `/<dir>/../../../tmp/<secret>`, where `/dev/shm/sem.<dir>` is a
    /// directory, made the old `named_sem` read the secret file through
    /// `sem_path` and `std::fs::read` (its first bytes became the value).
    /// Now the name is refused and nothing is opened. (Checked on the old
    /// code with the same region through `shmlab ps`:
    /// `tests/hostile_ps.rs`.)
    #[test]
    fn a_name_climbing_out_of_dev_shm_is_not_followed() {
        let tag = format!("shmlab-locks-escape-{}", std::process::id());
        let dir = std::path::PathBuf::from(format!("{}/sem.{tag}", shm::SHM_DIR));
        let secret = std::env::temp_dir().join(format!("{tag}-secret"));
        std::fs::create_dir_all(&dir).unwrap();
        // A sem_t's worth of bytes whose value would read as 7.
        let mut fake = [0u8; 32];
        fake[0] = 7;
        std::fs::write(&secret, fake).unwrap();
        let name = format!("/{tag}/../../..{}", secret.display());
        let r = named_sem(name.as_bytes(), 0);
        let _ = std::fs::remove_file(&secret);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!((r.value, r.state), (None, "unknown"));
        assert!(
            r.notes[0].starts_with(&format!("invalid name ({name}): only the leading /")),
            "{:?}",
            r.notes
        );
        assert_eq!(r.semaphore.as_deref(), Some(name.as_str()));
    }

    /// Finding 3: a `sem.*` FIFO is not opened (it hung the old tool), a
    /// symlink is not followed (to `/dev/zero` it grew the old tool to
    /// 4 GB); both are named for what they are.
    #[test]
    fn a_sem_file_that_is_not_a_regular_file_is_not_read() {
        let tag = format!("shmlab-locks-nonreg-{}", std::process::id());
        let fifo = format!("{}/sem.{tag}-fifo", shm::SHM_DIR);
        let link = format!("{}/sem.{tag}-zero", shm::SHM_DIR);
        nix::unistd::mkfifo(
            fifo.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let r_fifo = named_sem(format!("/{tag}-fifo").as_bytes(), 0);
        let r_link = named_sem(format!("/{tag}-zero").as_bytes(), 0);
        let r_gone = named_sem(format!("/{tag}-none").as_bytes(), 0);
        let _ = std::fs::remove_file(&fifo);
        let _ = std::fs::remove_file(&link);
        assert_eq!(r_fifo.value, None);
        assert!(r_fifo.notes[0].contains("FIFO"), "{:?}", r_fifo.notes);
        assert_eq!(r_link.value, None);
        assert!(
            r_link.notes[0].contains("is a symlink"),
            "{:?}",
            r_link.notes
        );
        assert!(
            r_gone.notes[0].ends_with("does not exist (the semaphore was unlinked)"),
            "{:?}",
            r_gone.notes
        );
    }

    /// Finding 7: a name with a terminal escape is kept exact in the
    /// structured field (JSON) and escaped in every sentence.
    #[test]
    fn an_escape_in_a_sem_name_is_escaped_in_text() {
        let name = format!("/shmlab-locks-esc-{}\x1b[2J", std::process::id());
        let r = named_sem(name.as_bytes(), 0);
        assert_eq!(r.semaphore.as_deref(), Some(name.as_str()));
        assert!(r.notes[0].contains("\\x1b[2J"), "{:?}", r.notes);
        assert!(!has_control(&r.notes[0]) && !has_control(&r.words()));
        // Not UTF-8: the field holds the escaped form.
        let r = named_sem(b"/a\xff\x1b", 0);
        assert_eq!(r.semaphore.as_deref(), Some("/a\\xff\\x1b"));
    }

    /// Finding 7: a holder's command is its own choice (`prctl`); the old
    /// `words` printed it raw.
    #[test]
    fn a_holders_command_is_escaped() {
        let h = Holder {
            id: 12,
            pid: Some(12),
            comm: Some("x\x1b[2J\u{9b}".into()),
            liveness: "alive",
            dead: false,
        };
        assert_eq!(h.words("tid"), "tid 12 (x\\x1b[2J\\xc2\\x9b) alive");
        let h = Holder { pid: Some(10), ..h };
        assert_eq!(
            h.words("tid"),
            "tid 12 (a thread of pid 10 x\\x1b[2J\\xc2\\x9b) alive"
        );
    }

    /// Crafted holders: tid 0, -1, `i32::MAX` and the pthread marks.
    #[test]
    fn crafted_holder_ids() {
        let who = Lookups::default();
        for id in [0, -1, i32::MIN, i32::MAX] {
            for r in [spin::<SpinLock>(id as u32), spin::<PureSpinLock>(id as u32)] {
                if id == 0 {
                    assert_eq!((r.state, r.holder.is_none()), ("free", true));
                    continue;
                }
                let h = r.holder.as_ref().unwrap();
                assert_eq!((h.liveness, h.dead, h.pid), ("gone", true, None), "{id}");
                assert!(r.notes[0].starts_with(&format!("its holder tid {id} is gone")));
            }
            let info =
                shm_sem::inspect::semaphore(Some(0), Some(u32::MAX), id, &|id| who.liveness(id));
            let r = LockReport::from_info("lock", "sem", info, &who);
            assert_eq!(r.holder.is_some(), id > 0, "{id}");
            assert_eq!(r.waiters, Waiters::Count { count: u32::MAX });
        }
        assert_eq!(mutex::<RobustMutex>(i32::MAX, 0).state, "held");
        assert_eq!(
            mutex::<RobustMutex>(i32::MAX - 1, 0).state,
            "not recoverable"
        );
    }

    /// Crafted counters at `u64::MAX` and worker ids at the extremes.
    #[test]
    fn crafted_race_counters() {
        type Race = RaceShared<ByLock<FutexLock>>;
        let h = header::<Race>();
        let mut b = vec![0u8; size_of::<Race>()];
        put(&mut b, offset_of!(Race, counter), &u64::MAX.to_le_bytes());
        let slot = size_of::<CachePadded<race::shared::WorkerSlot>>();
        let w = offset_of!(Race, workers);
        for (i, id) in [i32::MAX, -1, 0, 1].into_iter().enumerate() {
            put(&mut b, w + i * slot, &id.to_le_bytes());
            put(
                &mut b,
                w + i * slot + offset_of!(race::shared::WorkerSlot, done),
                &u64::MAX.to_le_bytes(),
            );
        }
        let (d, _) = decode_bytes(&h, &b);
        assert_eq!(d.counter, Some(u64::MAX));
        let ids: Vec<i32> = d.workers.iter().map(|w| w.id).collect();
        assert_eq!(ids, [i32::MAX, 1]);
        assert!(d.workers.iter().all(|w| w.done == u64::MAX));
    }

    fn buffer_bytes(head: u64, tail: u64, capacity: u32, count: u32) -> Decoded {
        let mut b = vec![0u8; size_of::<Buffer>()];
        put(&mut b, offset_of!(Buffer, head), &head.to_le_bytes());
        put(&mut b, offset_of!(Buffer, tail), &tail.to_le_bytes());
        put(
            &mut b,
            offset_of!(Buffer, capacity),
            &capacity.to_le_bytes(),
        );
        put(&mut b, offset_of!(Buffer, count), &count.to_le_bytes());
        put(&mut b, offset_of!(Buffer, sync), &u32::MAX.to_le_bytes());
        let d = decode_bytes(&header::<Buffer>(), &b).0;
        // An unknown sync code: no locks; a futex one (code 3) gives the
        // count word.
        put(&mut b, offset_of!(Buffer, sync), &3u32.to_le_bytes());
        let f = decode_bytes(&header::<Buffer>(), &b).0;
        Decoded {
            locks: f.locks,
            ..d
        }
    }

    /// Lab 7's head and tail beyond the ring (the old note printed
    /// `18,446,744,073,709,551,615 item(s) in the ring`), a capacity past
    /// the region's slots, a count word past any count (old: `value -1`).
    #[test]
    fn crafted_ring_indices() {
        let d = buffer_bytes(7, 3, 4, 1);
        assert!(
            d.note
                .as_ref()
                .unwrap()
                .contains("head 7, tail 3 (4 item(s) in the ring)")
        );
        let d = buffer_bytes(u64::MAX, 0, 4, 0);
        assert!(
            d.note.as_ref().unwrap().contains(
                "(18,446,744,073,709,551,615 apart: more than the ring holds, the region is inconsistent)"
            ),
            "{:?}",
            d.note
        );
        let d = buffer_bytes(0, 1, 4, 0);
        assert!(
            d.note
                .as_ref()
                .unwrap()
                .contains("(the tail is past the head: the region is inconsistent)")
        );
        let d = buffer_bytes(0, 0, u32::MAX, u32::MAX);
        let note = d.note.as_ref().unwrap();
        assert!(
            note.contains(&format!(
                "4,294,967,295 slot(s) (more than the {MAX_SLOTS} a region has: inconsistent)"
            )),
            "{note}"
        );
        let count = d.locks.iter().find(|l| l.name == "count").unwrap();
        assert_eq!(count.value, None);
        assert!(
            count
                .notes
                .iter()
                .any(|n| n.contains("4,294,967,295, more than any count"))
        );
    }

    /// Lab 13's table, crafted: `n` philosophers (clamped to the table),
    /// fork `f` held by tid `holders[f]`, seat `p` with tid `tids[p]`
    /// waiting for `waits[p]`.
    fn table(n: u32, holders: &[u32], tids: &[i32], waits: &[i32]) -> Decoded {
        let mut b = vec![0u8; size_of::<Table>()];
        put(&mut b, offset_of!(Table, philosophers), &n.to_le_bytes());
        let fork = size_of::<CachePadded<LockState<FutexLock>>>();
        for (f, &tid) in holders.iter().enumerate() {
            put(
                &mut b,
                offset_of!(Table, forks) + f * fork,
                &tid.to_le_bytes(),
            );
        }
        let seat = size_of::<CachePadded<Seat>>();
        for (p, (&tid, &w)) in tids.iter().zip(waits).enumerate() {
            let at = offset_of!(Table, seats) + p * seat;
            put(&mut b, at + offset_of!(Seat, tid), &tid.to_le_bytes());
            put(&mut b, at + offset_of!(Seat, waiting_for), &w.to_le_bytes());
        }
        let copy = Snapshot::<Table>::from_bytes(&b).unwrap();
        for (f, &tid) in holders.iter().enumerate() {
            // The word layout this test assumes: the holder's tid.
            let want = (tid != 0).then_some(tid as i32);
            assert_eq!(copy.fork_holder_tid(f as u32), want, "fork {f}");
        }
        decode_bytes(&header::<Table>(), &b).0
    }

    use crate::payloads::philosophers::Link;
    use shm::lock::LockState;

    /// A crafted wait-for cycle is found (and the walk ends); forks beyond
    /// the table and a philosopher count past it are ignored, not indexed.
    #[test]
    fn crafted_wait_for_graphs() {
        // 0 holds fork 0, waits for 1; 1 holds 1, waits for 2; 2 holds 2,
        // waits for 0.
        let tids = [4_000_001, 4_000_002, 4_000_003];
        let d = table(3, &[4_000_001, 4_000_002, 4_000_003], &tids, &[1, 2, 0]);
        let cycle: Vec<(u32, u32)> = d
            .cycle
            .as_ref()
            .unwrap()
            .iter()
            .map(|l: &Link| (l.philosopher, l.waits_for))
            .collect();
        assert_eq!(cycle, [(0, 1), (1, 2), (2, 0)]);
        assert_eq!(d.locks.len(), 3);
        // Everyone waits for fork 0, held by philosopher 0 who waits for
        // it too (a self-loop): found, and the walk ends.
        let d = table(3, &[4_000_001], &tids, &[0, 0, 0]);
        let cycle: Vec<u32> = d.cycle.unwrap().iter().map(|l| l.philosopher).collect();
        assert_eq!(cycle, [0]);
        // Forks and philosophers past the table: clamped, ignored.
        let d = table(
            u32::MAX,
            &[],
            &[1; 16],
            &[99, -5, i32::MAX, i32::MIN, 16, 17, 15],
        );
        assert_eq!(d.locks.len(), MAX_PHILOSOPHERS as usize);
        assert!(d.cycle.is_none());
        assert!(d.locks.iter().all(|l| {
            !l.notes
                .iter()
                .any(|n| n.contains("waited for by philosopher 0"))
        }));
        let waited: Vec<&String> = d.locks[15].notes.iter().collect();
        assert_eq!(waited, ["waited for by philosopher 6"]);
        // A philosopher count of 0 or 1: no forks to show, no cycle.
        for n in [0, 1] {
            let d = table(n, &[4_000_001], &tids, &[0, 0, 0]);
            assert_eq!(d.locks.len(), n as usize);
        }
    }
}
