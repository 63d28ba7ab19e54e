//! The payload types of the shmlab regions that the `shmlab` tool knows how
//! to decode, shared by the lab that creates the region and by the tool
//! that inspects it: lab 3's [`Lab3Payload`], tagged [`LAB3_TYPE`], lab 7's
//! bounded [`buffer`] and lab 13's table of [`philosophers`]. Each type's
//! decoder for `shmlab ps` (its `DecodePayload` impl) is beside it.

pub mod buffer;
pub mod philosophers;

use crate::decoded::{Copied, DecodePayload, Decoded, Lookups};
use shm::{InitCtx, Shared};
use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// The payload lab 3 keeps in its region: a counter the lab writes at each
/// checkpoint, the last writer's pid, and how many checkpoints passed.
#[repr(C)]
#[derive(Debug)]
pub struct Lab3Payload {
    /// Bumped at each checkpoint.
    pub counter: AtomicU64,
    /// Pid of the process that wrote last.
    pub last_pid: AtomicU32,
    /// Checkpoints completed so far.
    pub steps: AtomicU32,
}
shm::any_bits!(Lab3Payload {
    counter,
    last_pid,
    steps
});

/// The type tag in lab 3's region header.
pub const LAB3_TYPE: &str = "lab3/destroy";

/// How many checkpoints lab 3 walks through (`steps` counts up to it).
pub const LAB3_CHECKPOINTS: u32 = 5;

// SAFETY: `#[repr(C)]`, atomics only (no pointers), valid when zeroed, and
// every field is interior-mutable.
unsafe impl Shared for Lab3Payload {
    type Init = ();

    fn type_name() -> String {
        LAB3_TYPE.into()
    }

    unsafe fn init_in_place(_this: *mut Self, _init: (), _ctx: &InitCtx<'_>) -> Result<(), String> {
        // All zeroes is the initial state: nothing to do.
        Ok(())
    }
}

impl Lab3Payload {
    /// Decodes the payload from raw bytes read from the file (for
    /// `shmlab inspect`): counter, last pid, steps.
    pub fn decode(bytes: &[u8]) -> Option<(u64, u32, u32)> {
        let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?));
        Some((
            u64_at(offset_of!(Lab3Payload, counter))?,
            u32_at(offset_of!(Lab3Payload, last_pid))?,
            u32_at(offset_of!(Lab3Payload, steps))?,
        ))
    }
}

/// What `shmlab ps` reads from lab 3's region: the counter, the last
/// writer and the checkpoints done (from the bytes, as `inspect` reads
/// them: [`Lab3Payload::decode`]).
impl DecodePayload for Lab3Payload {
    fn report(copy: &Copied<Self>, _who: &Lookups) -> Decoded {
        match Lab3Payload::decode(copy.bytes()) {
            Some((counter, pid, steps)) => Decoded {
                counter: Some(counter),
                note: Some(format!(
                    "lab3: last written by pid {pid}, {steps} checkpoint(s) done; no lock"
                )),
                ..Decoded::default()
            },
            None => Decoded {
                note: Some("too short".into()),
                ..Decoded::default()
            },
        }
    }
}
