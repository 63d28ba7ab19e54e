//! Bring your own lock, in Rust: implement `algos::MutexAlgorithm` for
//! your type and race it through the same harness as `lab9-algorithms`.
//!
//! ```sh
//! cargo run --release -p shmlab-labs --example my_lock
//! ```
//!
//! This one is test-and-set; change `acquire` and `release` and run again.
//! The race reports every entry that found another worker inside
//! (violations) and every lost update.
//!
//! The state lives in shared memory, where any process can store any byte,
//! so it holds integers, never a `bool`: a flag is an `AtomicU8` (or
//! `AtomicU32`) read as `!= 0`. A state with an `AtomicBool` does not
//! compile (it is not `shm::AnyBits`); a struct of several words gets
//! `shm::any_bits!(MyState { field_a, field_b })` next to it.

use algos::{Aborted, MutexAlgorithm, RaceConfig, Waiter};
use std::sync::atomic::{AtomicU8, Ordering};

/// The lock: settings live here (nothing, for this one); the state lives in
/// the shared region.
struct MyLock;

// SAFETY: the state is one AtomicU8: no pointers, interior-mutable, and
// all-zero is 0 (unlocked), which is how the region starts.
unsafe impl MutexAlgorithm for MyLock {
    type State = AtomicU8;
    const NAME: &'static str = "mylock";
    const MAX_WORKERS: u32 = algos::MAX_WORKERS;

    fn acquire(&self, locked: &AtomicU8, _me: u32, w: &mut Waiter<'_>) -> Result<(), Aborted> {
        // 1 = held; any other non-zero byte a peer might store counts as
        // held too.
        while locked.swap(1, Ordering::Acquire) != 0 {
            w.spin()?; // every wait loop spins through the Waiter
        }
        Ok(())
    }

    fn release(&self, locked: &AtomicU8, _me: u32) {
        locked.store(0, Ordering::Release);
    }
}

fn main() {
    // A region in /dev/shm, 2 worker processes that open it by name, 200,000
    // entries each; the region is removed afterwards.
    let cfg = RaceConfig::procs(2, 200_000);
    match algos::race(MyLock, &cfg) {
        Ok(r) => {
            let g = labs::fmt::group;
            println!(
                "{}: expected {}, actual {}, lost {}, violations {}",
                r.algorithm,
                g(r.expected),
                g(r.actual),
                g(r.lost),
                g(r.violations)
            );
            if r.violations > 0 || r.lost > 0 || !r.finished {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
