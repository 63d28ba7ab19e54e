//! The worker processes of a lab, written once for the labs that fork
//! their own (11, 12, 13): the start gate and the exit statuses of a
//! [`shm::process::Crew`].
//!
//! Workers die with their lab: [`shm::process::fork_child`] has the kernel
//! SIGKILL each one when the lab's main thread (the one that forks and
//! reaps them) dies, so a lab killed with `kill -9` leaves no worker
//! running, only its region, stale, for `shmlab clean`.

use anyhow::bail;
use shm::process::{Crew, Exit};
use shm_futex::Gate;
use std::time::{Duration, Instant};

/// Waits (at most 10 s) until `n` workers have arrived at `gate`, then
/// opens it. Returns when it opened.
pub fn open_gate(gate: &Gate, n: u32) -> anyhow::Result<Instant> {
    if !gate.await_arrivals(n, Duration::from_secs(10), || anyhow::Ok(()))? {
        bail!("a worker never reached the start gate");
    }
    Ok(gate.open())
}

/// Each worker's exit status once it has been reaped: the status it
/// exited with, `-1` if a signal killed it, `killed` if
/// [`Crew::stop`] had to kill it; `None` while it runs.
pub fn statuses(crew: &Crew, killed: i32) -> Vec<Option<i32>> {
    (0..crew.len())
        .map(|w| {
            crew.exit(w).map(|exit| match exit {
                _ if crew.was_killed(w) => killed,
                Exit::Code(code) => code,
                Exit::Signal(_) => -1,
            })
        })
        .collect()
}
