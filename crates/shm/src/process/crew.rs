//! [`Crew`]: the workers of one run — child processes ([`Child`]) or
//! threads — watched, reaped and stopped the same way by every
//! coordinator (the race, the crash experiment, the algorithms harness,
//! the litmus test, the labs).

use super::child::{Child, Exit};
use std::io;
use std::time::{Duration, Instant};

/// A thread handle a [`Crew`] can poll and join: `std::thread`'s
/// `JoinHandle` and `ScopedJoinHandle`.
pub trait Joinable {
    /// Whether the thread has returned (or panicked).
    fn is_finished(&self) -> bool;
    /// Joins it; `false` if it panicked.
    fn join_now(self) -> bool;
}

impl<T> Joinable for std::thread::JoinHandle<T> {
    fn is_finished(&self) -> bool {
        std::thread::JoinHandle::is_finished(self)
    }
    fn join_now(self) -> bool {
        self.join().is_ok()
    }
}

impl<T> Joinable for std::thread::ScopedJoinHandle<'_, T> {
    fn is_finished(&self) -> bool {
        std::thread::ScopedJoinHandle::is_finished(self)
    }
    fn join_now(self) -> bool {
        self.join().is_ok()
    }
}

enum Member<H> {
    Proc {
        child: Child,
        killed: bool,
    },
    Thread(H),
    /// A thread joined: whether it returned without panicking.
    Joined(bool),
}

/// How a member ended when it should not have (see [`Crew::check`]).
#[derive(Debug)]
pub enum Ended {
    /// A process ended with this status before it finished its work (a
    /// status 0 here means it exited without finishing).
    Process(Exit),
    /// A thread returned, or panicked, before it finished its work.
    Thread {
        /// Whether it panicked.
        panicked: bool,
    },
    /// `waitpid` failed: the process can no longer be waited for.
    Lost(io::Error),
}

/// The first member [`Crew::check`] found ended early.
#[derive(Debug)]
pub struct Failure {
    /// Its index in the crew (the order it was added).
    pub index: usize,
    /// Its pid, if it is a process.
    pub pid: Option<i32>,
    /// How it ended.
    pub ended: Ended,
}

/// The workers of one run, in the order they were started. Processes are
/// [`Child`]ren (killed and reaped if the crew is dropped); threads are
/// `std` join handles (`H`), scoped or not.
pub struct Crew<H = std::thread::JoinHandle<()>> {
    members: Vec<Member<H>>,
}

impl<H> std::fmt::Debug for Crew<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for m in &self.members {
            match m {
                Member::Proc { child, killed } => list.entry(&(child, killed)),
                Member::Thread(_) => list.entry(&"thread"),
                Member::Joined(ok) => list.entry(&("joined", ok)),
            };
        }
        list.finish()
    }
}

impl<H> Default for Crew<H> {
    fn default() -> Self {
        Crew {
            members: Vec::new(),
        }
    }
}

impl<H: Joinable> Crew<H> {
    /// No members yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a process (the next index).
    pub fn push_process(&mut self, child: Child) {
        self.members.push(Member::Proc {
            child,
            killed: false,
        });
    }

    /// Adds a thread (the next index).
    pub fn push_thread(&mut self, handle: H) {
        self.members.push(Member::Thread(handle));
    }

    /// How many members were added.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `index`'s pid, if it is a process.
    pub fn pid(&self, index: usize) -> Option<i32> {
        match self.members.get(index)? {
            Member::Proc { child, .. } => Some(child.pid()),
            _ => None,
        }
    }

    /// How member `index` ended, if it is a process that has been reaped.
    pub fn exit(&self, index: usize) -> Option<Exit> {
        match self.members.get(index)? {
            Member::Proc { child, .. } => child.exit(),
            _ => None,
        }
    }

    /// Whether member `index` is a process [`stop`](Self::stop) had to
    /// kill.
    pub fn was_killed(&self, index: usize) -> bool {
        matches!(
            self.members.get(index),
            Some(Member::Proc { killed: true, .. })
        )
    }

    /// Reaps the processes and joins the threads that have ended, without
    /// blocking. Returns whether every member has ended.
    pub fn poll(&mut self) -> bool {
        let mut all = true;
        for m in &mut self.members {
            match m {
                Member::Proc { child, .. } => {
                    // An error (ECHILD) leaves the child lost: it counts
                    // as ended.
                    all &= !matches!(child.try_wait(), Ok(None));
                }
                Member::Thread(h) if h.is_finished() => {
                    let Member::Thread(h) = std::mem::replace(m, Member::Joined(false)) else {
                        unreachable!("matched a thread just above")
                    };
                    *m = Member::Joined(h.join_now());
                }
                Member::Thread(_) => all = false,
                Member::Joined(_) => {}
            }
        }
        all
    }

    /// [`poll`](Self::poll), then judges: a member that has ended counts
    /// as done only if it exited with status 0 (a thread: returned without
    /// panicking) *and* `finished(index)` (what it wrote in the shared
    /// region) says it did its work. The first member ended any other way
    /// is the error. `Ok(true)` once every member has ended done.
    pub fn check(&mut self, finished: impl Fn(usize) -> bool) -> Result<bool, Failure> {
        let all = self.poll();
        for (index, m) in self.members.iter_mut().enumerate() {
            let pid = match m {
                Member::Proc { child, .. } => Some(child.pid()),
                _ => None,
            };
            let ended = match m {
                Member::Proc { child, .. } => match child.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(exit)) if exit.success() && finished(index) => continue,
                    Ok(Some(exit)) => Ended::Process(exit),
                    Err(e) => Ended::Lost(e),
                },
                Member::Joined(true) if finished(index) => continue,
                Member::Joined(ok) => Ended::Thread { panicked: !*ok },
                Member::Thread(_) => continue,
            };
            return Err(Failure { index, pid, ended });
        }
        Ok(all)
    }

    /// The end of a run (after the caller told its workers to stop): waits
    /// up to `grace` for every member to end by itself, then SIGKILLs and
    /// reaps the processes left ([`was_killed`](Self::was_killed) says
    /// which). Threads cannot be killed: returns how many still run (the
    /// caller leaves them detached, or its thread scope waits for them).
    pub fn stop(&mut self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        while !self.poll() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut running = 0;
        for m in &mut self.members {
            match m {
                Member::Proc { child, killed } => {
                    if let Ok((_, k)) = child.stop_by(deadline) {
                        *killed = k;
                    }
                }
                Member::Thread(_) => running += 1,
                Member::Joined(_) => {}
            }
        }
        running
    }

    /// Hands back the thread handles still unjoined (e.g. to join them
    /// inside a scope); processes stay with the crew.
    pub fn take_threads(&mut self) -> Vec<H> {
        let mut out = Vec::new();
        for m in &mut self.members {
            if matches!(m, Member::Thread(_)) {
                let Member::Thread(h) = std::mem::replace(m, Member::Joined(true)) else {
                    unreachable!("matched a thread just above")
                };
                out.push(h);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Child {
        Child::spawn(std::process::Command::new("sh").args(["-c", script])).unwrap()
    }

    #[test]
    fn check_reports_the_first_member_that_ended_without_finishing() {
        let mut crew: Crew = Crew::new();
        crew.push_process(sh("exit 0"));
        crew.push_process(sh("exit 3"));
        crew.push_thread(std::thread::spawn(|| {}));
        let t0 = Instant::now();
        let failure = loop {
            match crew.check(|i| i != 2) {
                Ok(_) => {
                    assert!(t0.elapsed() < Duration::from_secs(10));
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(f) => break f,
            }
        };
        assert_eq!(failure.index, 1);
        assert!(matches!(failure.ended, Ended::Process(Exit::Code(3))));
        assert_eq!(failure.pid, crew.pid(1));
        // The thread returned without panicking but did not finish (its
        // slot says so): that is the next failure once member 1 is gone.
        assert_eq!(crew.exit(0), Some(Exit::Code(0)));
    }

    #[test]
    fn a_thread_that_finished_is_done_and_all_done_is_true() {
        let mut crew: Crew = Crew::new();
        crew.push_process(sh("exit 0"));
        crew.push_thread(std::thread::spawn(|| {}));
        let t0 = Instant::now();
        while !crew.check(|_| true).unwrap() {
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn stop_kills_the_processes_that_do_not_end_and_counts_running_threads() {
        let mut crew: Crew = Crew::new();
        crew.push_process(sh("exit 0"));
        crew.push_process(sh("sleep 30"));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        crew.push_thread(std::thread::spawn(move || {
            let _ = rx.recv();
        }));
        assert_eq!(crew.stop(Duration::from_millis(100)), 1);
        assert!(!crew.was_killed(0));
        assert!(crew.was_killed(1));
        assert_eq!(crew.exit(1), Some(Exit::Signal(libc::SIGKILL)));
        drop(tx);
        for h in crew.take_threads() {
            h.join().unwrap();
        }
    }
}
