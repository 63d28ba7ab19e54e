//! The adaptive wait's one constant, shared by the ring's adaptive
//! signalling and the ladder's `spin-futex` rung (its own module, so the
//! ring does not depend on the ladder).

use std::time::Duration;

/// How long the adaptive waiter (`spin-futex`, and the ring's adaptive
/// signalling) spins before it sleeps in `FUTEX_WAIT`: 50 µs, several
/// times a futex wake-up's cost on this kind of machine, so a peer that is
/// running answers within the spin, and one that is not (preempted, or busy)
/// costs the waiter at most 50 µs of CPU before it gives the CPU away.
pub const ADAPTIVE_SPIN: Duration = Duration::from_micros(50);
