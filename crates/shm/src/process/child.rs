//! [`Child`]: the one handle to a process shmlab started. It reaps with
//! `waitpid(2)`, kills with `kill(2)`, and forgets the process in
//! [`crate::cleanup`] the moment it is reaped; dropped unreaped, it kills
//! and reaps, so no error path leaves a zombie or a worker running.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// It called `exit`/`_exit` with this status (`WIFEXITED`).
    Code(i32),
    /// A signal killed it (`WIFSIGNALED`): the signal number.
    Signal(i32),
}

impl Exit {
    /// Exited with status 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// The status it exited with, if it exited (not killed).
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }

    /// The signal that killed it, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            Exit::Code(_) => None,
            Exit::Signal(s) => Some(s),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exited with status {c}"),
            Exit::Signal(s) => match Signal::try_from(s) {
                Ok(sig) => write!(f, "was killed by signal {} ({s})", sig.as_str()),
                Err(_) => write!(f, "was killed by signal {s}"),
            },
        }
    }
}

/// A child process started by [`super::fork_child`] or [`Child::spawn`].
///
/// - [`try_wait`](Self::try_wait), [`wait`](Self::wait) and
///   [`wait_until`](Self::wait_until) reap it (`waitpid`), once: after
///   that they return the same [`Exit`] again, and the pid is never
///   signalled again (it may name another process by then).
/// - [`stop_by`](Self::stop_by) is the end of every run: wait until a
///   deadline, then SIGKILL and reap.
/// - Dropped unreaped, it is killed (SIGKILL) and reaped.
///
/// Reaping unregisters it from [`crate::cleanup`] (which SIGKILLs the
/// registered children on Ctrl-C): this type is the one place that does.
///
/// **The coordinator-death rule** lives in how it is started: a child
/// forked by [`super::fork_child`] or spawned by [`Child::spawn`] is
/// SIGKILLed by the kernel when the thread that started it dies
/// (`PR_SET_PDEATHSIG`), and exits at once if that happened before it
/// could ask. So a coordinator killed with `kill -9` leaves no worker
/// running.
#[derive(Debug)]
#[must_use = "a child is killed when its handle is dropped; wait for it"]
pub struct Child {
    pid: Pid,
    exit: Option<Exit>,
    /// `waitpid` said it is not our child (ECHILD): never signal it.
    lost: bool,
}

impl Child {
    /// Wraps a child just forked by this thread and registers it for
    /// Ctrl-C clean-up.
    pub(super) fn started(pid: i32) -> Child {
        crate::cleanup::register_child(pid);
        Child {
            pid: Pid::from_raw(pid),
            exit: None,
            lost: false,
        }
    }

    /// Runs `cmd` (`fork` + `exec`) as a child that dies with the calling
    /// thread (`prctl(PR_SET_PDEATHSIG, SIGKILL)` between the fork and the
    /// exec; the spawn fails if the caller had already died, which cannot
    /// happen from a running caller). The program is registered for Ctrl-C
    /// clean-up like a forked child. Its standard streams are whatever
    /// `cmd` says; this handle owns only the process (use
    /// [`std::process::Command::spawn`] directly for a child whose pipes
    /// you need, and reap that one yourself).
    pub fn spawn(cmd: &mut std::process::Command) -> io::Result<Child> {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as i32;
        // SAFETY: the closure runs in the forked child before `exec`; it
        // calls only `prctl` and `getppid`, which are async-signal-safe and
        // take no lock.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                if nix::unistd::getppid().as_raw() != parent {
                    return Err(io::Error::other("the parent died before the exec"));
                }
                Ok(())
            });
        }
        let std_child = cmd.spawn()?;
        // std's handle owns no process resource (dropping it neither kills
        // nor reaps): from here on this handle reaps the pid.
        let pid = std_child.id() as i32;
        drop(std_child);
        Ok(Child::started(pid))
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// How it ended, if it has been reaped.
    pub fn exit(&self) -> Option<Exit> {
        self.exit
    }

    /// `waitpid(pid, WNOHANG)`: `None` while it runs; once it has ended,
    /// reaps it and returns how (and the same answer on every later call).
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        self.poll(Some(WaitPidFlag::WNOHANG))
    }

    /// `waitpid(pid, 0)`: blocks until it ends, and reaps it.
    pub fn wait(&mut self) -> io::Result<Exit> {
        loop {
            if let Some(exit) = self.poll(None)? {
                return Ok(exit);
            }
        }
    }

    /// Waits until it ends or `deadline` passes (polling every
    /// millisecond): `None` if it still runs at the deadline.
    pub fn wait_until(&mut self, deadline: Instant) -> io::Result<Option<Exit>> {
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(Some(exit));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends `sig` (SIGSTOP, SIGCONT, SIGTERM, ...) if it has not been
    /// reaped; an error (ESRCH) once it has, so a reused pid is never hit.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        if self.exit.is_some() || self.lost {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        kill(self.pid, sig).map_err(io::Error::from)
    }

    /// SIGKILL (unless it has already been reaped), then reaps it.
    pub fn kill(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        if !self.lost {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.wait()
    }

    /// The end of a run: waits until `deadline` for it to end by itself,
    /// then SIGKILLs and reaps it. Returns how it ended and whether it had
    /// to be killed.
    pub fn stop_by(&mut self, deadline: Instant) -> io::Result<(Exit, bool)> {
        match self.wait_until(deadline)? {
            Some(exit) => Ok((exit, false)),
            None => self.kill().map(|exit| (exit, true)),
        }
    }

    /// One `waitpid`; records the exit and unregisters on reaping.
    fn poll(&mut self, flags: Option<WaitPidFlag>) -> io::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        if self.lost {
            return Err(io::Error::from_raw_os_error(libc::ECHILD));
        }
        let exit = match waitpid(self.pid, flags) {
            Ok(WaitStatus::Exited(_, code)) => Exit::Code(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => Exit::Signal(sig as i32),
            // Still running, or a stop/continue report (not asked for, but
            // harmless): not ended.
            Ok(_) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => {
                // ECHILD: someone else reaped it (or it is not ours): it
                // is gone, and must not be signalled again.
                if e == nix::errno::Errno::ECHILD {
                    self.lost = true;
                    self.forget();
                }
                return Err(io::Error::from(e));
            }
        };
        self.reaped(exit);
        Ok(Some(exit))
    }

    fn reaped(&mut self, exit: Exit) {
        self.exit = Some(exit);
        self.forget();
    }

    /// It is gone: Ctrl-C must not kill its pid any more.
    fn forget(&self) {
        crate::cleanup::unregister_child(self.pid.as_raw());
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() && !self.lost {
            let _ = self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(secs: &str) -> Child {
        Child::spawn(std::process::Command::new("sleep").arg(secs)).expect("spawn sleep")
    }

    #[test]
    fn a_child_that_exits_is_reaped_once_with_its_status() {
        let mut c = Child::spawn(std::process::Command::new("sh").args(["-c", "exit 7"])).unwrap();
        assert_eq!(c.wait().unwrap(), Exit::Code(7));
        assert_eq!(c.try_wait().unwrap(), Some(Exit::Code(7)));
        assert_eq!(c.exit(), Some(Exit::Code(7)));
        // Reaped: never signalled again.
        assert!(c.signal(Signal::SIGTERM).is_err());
    }

    #[test]
    fn stop_by_kills_what_does_not_end_and_says_so() {
        let mut c = sleeper("30");
        assert_eq!(c.try_wait().unwrap(), None);
        let t0 = Instant::now();
        let (exit, killed) = c.stop_by(t0 + Duration::from_millis(50)).unwrap();
        assert!(killed);
        assert_eq!(exit, Exit::Signal(libc::SIGKILL));
        assert!(t0.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn dropping_an_unreaped_child_kills_and_reaps_it() {
        let c = sleeper("30");
        let pid = c.pid();
        drop(c);
        // Reaped: the pid is no child of ours any more.
        assert_eq!(
            waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
            Err(nix::errno::Errno::ECHILD)
        );
    }

    #[test]
    fn exits_say_what_happened() {
        assert_eq!(Exit::Code(3).to_string(), "exited with status 3");
        assert_eq!(
            Exit::Signal(9).to_string(),
            "was killed by signal SIGKILL (9)"
        );
        assert!(Exit::Code(0).success());
        assert_eq!(Exit::Signal(9).code(), None);
    }
}
