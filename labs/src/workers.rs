//! The worker processes of a lab, written once for the labs that fork
//! their own (11, 12, 13): the start gate, reaping the ones that exited,
//! and at the end a grace period followed by SIGKILL for the rest.
//!
//! Workers die with their lab: [`shm::process::fork_child`] has the kernel
//! SIGKILL each one when the lab's main thread (the one that forks and
//! reaps them) dies, so a lab killed with `kill -9` leaves no worker
//! running, only its region, stale, for `shmlab clean`.

use anyhow::bail;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Waits (at most 10 s) until `n` workers have counted themselves in
/// `arrived`, then opens the gate: `go` = 1 and a futex wake of everyone
/// sleeping on it. Returns when it opened.
pub fn open_gate(arrived: &AtomicU32, go: &AtomicU32, n: u32) -> anyhow::Result<Instant> {
    let start = Instant::now();
    while arrived.load(Ordering::Acquire) < n {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("a worker never reached the start gate");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let t0 = Instant::now();
    go.store(1, Ordering::Release);
    shm_futex::futex_wake(go, i32::MAX);
    Ok(t0)
}

/// Reaps (`waitpid(WNOHANG)`) the workers that have exited, recording each
/// one's exit status (-1 if it was killed by a signal or could not be
/// waited for) and forgetting it in [`shm::cleanup`].
pub fn reap_some(kids: &[Pid], exited: &mut [Option<i32>]) {
    for (k, e) in kids.iter().zip(exited.iter_mut()) {
        if e.is_some() {
            continue;
        }
        match waitpid(*k, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::Exited(_, code)) => *e = Some(code),
            Ok(_) | Err(_) => *e = Some(-1),
        }
        if e.is_some() {
            shm::cleanup::unregister_child(k.as_raw());
        }
    }
}

/// Gives the workers `grace` to exit by themselves (after the caller told
/// them to stop), then SIGKILLs and reaps the rest, recording `killed` as
/// their status.
pub fn finish(kids: &[Pid], exited: &mut [Option<i32>], grace: Duration, killed: i32) {
    let deadline = Instant::now() + grace;
    while exited.iter().any(Option::is_none) && Instant::now() < deadline {
        reap_some(kids, exited);
        std::thread::sleep(Duration::from_millis(2));
    }
    for (k, e) in kids.iter().zip(exited.iter_mut()) {
        if e.is_none() {
            let _ = nix::sys::signal::kill(*k, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(*k, None);
            shm::cleanup::unregister_child(k.as_raw());
            *e = Some(killed);
        }
    }
}
