//! Processes: whether one is still alive, and how shmlab starts and ends
//! the ones it forks.
//!
//! This is the one place in the workspace that reads `/proc/PID/stat`, the
//! one `fork(2)` helper and the one `_exit(2)` wrapper. `shmlab ls`/`clean`,
//! the futex locks' dead-owner checks, the pipe and ring code's dead-peer
//! checks, the race and crash coordinators and the labs all ask here.
//!
//! **Liveness has four answers, not two.** A process killed with SIGKILL is
//! dead even before its parent reaps it: it is then a *zombie* (state `Z`),
//! and `kill(pid, 0)` still succeeds on it, so `kill` alone would call it
//! alive. And when `/proc/PID` cannot be read (`hidepid`, another user's
//! process in a restricted `/proc`), shmlab cannot tell whether the pid still
//! names the process it recorded: the answer is then [`Liveness::Unknown`],
//! which callers must treat as "may be alive" — never as dead.

use std::fmt;
use std::io;

mod child;
mod crew;

pub use child::{Child, Exit};
pub use crew::{Crew, Ended, Failure, Joinable};

/// What shmlab can say about a process it recorded (pid plus start time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// It runs (or sleeps, or is stopped): the pid still names the same
    /// process.
    Running,
    /// It has exited or been killed but its parent has not reaped it yet
    /// (state `Z`): dead for every purpose but its pid.
    Zombie,
    /// No such process, or its pid now names a different process (its
    /// start time differs from the recorded one).
    Gone,
    /// Cannot be known: the pid exists but `/proc/PID/stat` is hidden or
    /// unreadable, so it may be the recorded process or a reuse of its pid.
    Unknown,
}

impl Liveness {
    /// Dead for certain: a zombie or gone. `Unknown` is *not* dead.
    pub fn is_dead(self) -> bool {
        matches!(self, Liveness::Zombie | Liveness::Gone)
    }

    /// Running, or possibly running (`Unknown`): what a careful caller must
    /// assume before removing an object or taking over a lock.
    pub fn may_be_alive(self) -> bool {
        !self.is_dead()
    }

    /// The word shmlab prints: `alive`, `zombie`, `gone`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Running => "alive",
            Liveness::Zombie => "zombie",
            Liveness::Gone => "gone",
            Liveness::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of `/proc/PID/stat` shmlab uses (see `proc_pid_stat(5)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `T`, `t`, `Z` (zombie), `X`/`x` (dead), ...
    pub state: u8,
    /// Field 4: the parent's pid.
    pub ppid: i32,
    /// Field 22: start time in clock ticks since boot. With the pid it names
    /// a process uniquely, which guards liveness checks against pid reuse.
    pub start_time: u64,
}

impl ProcStat {
    /// Zombie (`Z`) or dead (`X`, `x`): it no longer runs.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Why `/proc/PID/stat` gave no [`ProcStat`].
#[derive(Debug, thiserror::Error)]
pub enum StatError {
    /// No `/proc/PID`: the process does not exist, or `/proc` hides it.
    #[error("/proc/{pid}/stat does not exist")]
    NotFound {
        /// The pid asked about.
        pid: i32,
    },
    /// Not allowed to read it (`hidepid`, a restricted `/proc`).
    #[error("/proc/{pid}/stat cannot be read: permission denied")]
    Hidden {
        /// The pid asked about.
        pid: i32,
    },
    /// The text does not have the documented shape.
    #[error("/proc/{pid}/stat is malformed: {why}")]
    Malformed {
        /// The pid asked about.
        pid: i32,
        /// What was wrong.
        why: &'static str,
    },
    /// Any other read error.
    #[error("cannot read /proc/{pid}/stat: {source}")]
    Io {
        /// The pid asked about.
        pid: i32,
        /// The error.
        source: io::Error,
    },
}

/// Parses the text of a `/proc/PID/stat` file. The command name (field 2)
/// is in parentheses and may contain spaces and parentheses itself, so the
/// fields after it are found from the *last* `)`. Malformed text is an
/// error, never a panic.
pub fn parse_stat(text: &str) -> Result<ProcStat, &'static str> {
    let close = text.rfind(')').ok_or("no ')' after the command name")?;
    let rest = text
        .get(close + 1..)
        .ok_or("nothing after the command name")?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next().ok_or("no state field")?;
    let &[state] = state.as_bytes() else {
        return Err("the state field is not one letter");
    };
    let ppid = fields
        .next()
        .ok_or("no ppid field")?
        .parse()
        .map_err(|_| "the ppid field is not a number")?;
    // Fields 5..=21 come next; the start time is field 22.
    let start_time = fields
        .nth(17)
        .ok_or("no start-time field")?
        .parse()
        .map_err(|_| "the start-time field is not a number")?;
    Ok(ProcStat {
        state,
        ppid,
        start_time,
    })
}

/// Reads `/proc/PID/stat`. `/proc/TID` exists for every thread id too (not
/// listed, but readable), and reports that thread's own state and start
/// time, so this answers for threads as well.
pub fn stat(pid: i32) -> Result<ProcStat, StatError> {
    if pid <= 0 {
        return Err(StatError::NotFound { pid });
    }
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StatError::NotFound { pid },
            io::ErrorKind::PermissionDenied => StatError::Hidden { pid },
            // ESRCH: the process went away between open and read.
            _ if e.raw_os_error() == Some(libc::ESRCH) => StatError::NotFound { pid },
            _ => StatError::Io { pid, source: e },
        })?;
    parse_stat(&text).map_err(|why| StatError::Malformed { pid, why })
}

/// The start time of a process (field 22 of `/proc/PID/stat`), if it can be
/// read.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).ok().map(|s| s.start_time)
}

/// Whether a process with this pid exists at all, as `kill(pid, 0)` sees it
/// (a zombie exists; `EPERM` means it exists and is someone else's).
pub fn exists(pid: i32) -> bool {
    pid > 0 && crate::sys::pid_exists(pid)
}

/// Whether the process recorded as `pid` with start time `start` (0: not
/// recorded) is still alive. See [`liveness_matching`].
pub fn liveness(pid: i32, start: u64) -> Liveness {
    liveness_matching(pid, |t| start == 0 || t == start)
}

/// Whether the process (or thread) `pid` is still the one recorded:
/// `same_start(t)` says whether a start time `t` read from `/proc` is the
/// recorded one (the futex locks record only its low 32 bits).
///
/// - `/proc/PID/stat` readable: `Z`/`X` → [`Liveness::Zombie`]/[`Liveness::Gone`];
///   another start time → [`Liveness::Gone`] (the pid was reused); else
///   [`Liveness::Running`];
/// - not there: `kill(pid, 0)` decides between [`Liveness::Gone`] (no such
///   pid) and [`Liveness::Unknown`] (a pid `/proc` hides);
/// - hidden, unreadable or malformed: [`Liveness::Unknown`] if the pid
///   exists, [`Liveness::Gone`] if it does not.
pub fn liveness_matching(pid: i32, same_start: impl FnOnce(u64) -> bool) -> Liveness {
    if pid <= 0 {
        return Liveness::Gone;
    }
    decide(stat(pid), || exists(pid), same_start)
}

/// [`liveness_matching`]'s decision, given what `/proc` said and a way to
/// ask `kill(pid, 0)`.
fn decide(
    stat: Result<ProcStat, StatError>,
    exists: impl FnOnce() -> bool,
    same_start: impl FnOnce(u64) -> bool,
) -> Liveness {
    match stat {
        Ok(s) if s.state == b'Z' => Liveness::Zombie,
        Ok(s) if s.is_dead() => Liveness::Gone,
        Ok(s) if !same_start(s.start_time) => Liveness::Gone,
        Ok(_) => Liveness::Running,
        Err(_) if !exists() => Liveness::Gone,
        Err(_) => Liveness::Unknown,
    }
}

/// `fork(2)`: runs `body` in a new child process and returns the
/// [`Child`] handle to the parent (which reaps it, or kills and reaps it
/// when dropped). The child never returns from this function: it ends
/// with [`exit_now`] and `body`'s return value as its status (101 if `body`
/// panicked).
///
/// Around the fork: the parent takes stdout's and stderr's locks and
/// flushes stdout (so no other thread is printing at the fork and the child
/// does not print the parent's buffer again); the child restores default signal
/// actions ([`crate::cleanup::reset_in_child`], so Ctrl-C ends it like any
/// process), flushes its own stdout before exiting, and never runs the
/// parent's destructors or atexit handlers (which would unlink the parent's
/// objects). The parent registers the child with [`crate::cleanup`], so
/// Ctrl-C kills it; the [`Child`] handle unregisters it when it reaps it.
///
/// **The child dies with its parent.** Before anything else the child asks
/// the kernel for `SIGKILL` when its parent dies
/// (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), then compares `getppid()` with the
/// parent's pid read before the fork: if they differ, the parent died
/// before the request was made (the kernel would never send the signal)
/// and the child exits at once with [`EXIT_PARENT_GONE`], without running
/// `body`. So a coordinator killed with SIGKILL in the middle of a run
/// takes its workers with it within moments, wherever they are (in a hot
/// loop, asleep on a futex, a semaphore or a `pthread` barrier without a
/// timed wait), instead of leaving them racing at full CPU and keeping its
/// region mapped. What they leave is what a SIGKILL leaves: the run's
/// objects in `/dev/shm`, stale (creator dead, mapped by nobody), which
/// `shmlab clean` removes; a worker killed holding a lock leaves that lock
/// held in a region nobody will use again.
///
/// The caveats, from `prctl(2)`:
/// - "parent" is the *thread* that called `fork_child`, not its process:
///   the child is killed when that thread ends, even if the rest of the
///   process runs on. (If the thread ends before the child has made its
///   request — `fork_child` does not wait for it — the child is handed to
///   another thread of the same process, `getppid()` still names the
///   process, and the child runs on: which of the two happens is a race.)
///   Fork from a thread that lives at least as long as the child. Every
///   caller in the workspace does: the labs and the race, crash and
///   algorithm coordinators fork their workers from the thread that reaps
///   them (the main thread of a lab binary), `ipc::spawn`'s callers (lab 6,
///   `ipc`'s measurements) wait for their child on the thread that spawned
///   it, and tests fork and wait on the test's own thread (a test thread
///   that panics while its children run takes them down with it, which is
///   what a failed test wants). A caller whose child must outlive the
///   forking thread would need a variant without the death signal; none
///   exists because none is needed.
/// - The setting is cleared when the child execs a set-user-ID,
///   set-group-ID or file-capability binary, or changes its effective or
///   filesystem user or group ID; it is not inherited by the child's own
///   children (which get their own when they, too, are forked here).
///   `body` does none of these in shmlab.
/// - The signal is SIGKILL, which nothing can catch: the child gets no
///   chance to clean up, exactly as when it is killed by hand. Its objects
///   are the parent's anyway (created and removed by the parent), so there
///   is nothing of its own to clean.
///
/// ```compile_fail
/// // Forking is `unsafe`: the caller vouches for what the child touches.
/// let _ = shm::process::fork_child(|| 0);
/// ```
///
/// # Safety
/// If the calling process has other threads, the child is a copy in which
/// only the calling thread exists. `body` must therefore not take a lock
/// another thread may have held at the moment of the fork (a
/// `std::sync::Mutex` the parent shares; glibc's
/// `sem_open` list lock — see the race crate's notes), and must not use
/// values that only the parent may own (the parent's end of a channel, a
/// handle to an object whose drop has effects outside the process). Opening
/// shared objects by name, mapping them and allocating (glibc resets
/// `malloc`'s locks in the child) are fine.
pub unsafe fn fork_child(body: impl FnOnce() -> i32) -> io::Result<Child> {
    use std::io::Write;
    // Read before the fork: the child compares its parent with this.
    let parent = std::process::id() as i32;
    // stdout's and stderr's locks are held across the fork, so that no
    // other thread is inside either at that moment: the child's one thread
    // is this one, their owner (they are reentrant), so it can print, panic
    // and flush. Without this, a child forked while another thread printed
    // (a test harness reporting a result) blocked forever in its final
    // flush. stdout is flushed first, so the child does not print the
    // parent's buffer again.
    let mut out = std::io::stdout().lock();
    let err = std::io::stderr().lock();
    let _ = out.flush();
    // SAFETY: forwarded to our caller (see # Safety); the child never
    // returns from here: it runs `body` and `_exit`s.
    match unsafe { crate::sys::fork() }? {
        None => {
            die_with_parent(parent);
            crate::cleanup::reset_in_child();
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            let _ = out.flush();
            drop(err);
            exit_now(code)
        }
        Some(pid) => {
            drop(err);
            drop(out);
            Ok(Child::started(pid))
        }
    }
}

/// The status of a child of [`fork_child`] whose parent had already died
/// when it started (nobody waits for it: it is for `strace` and the
/// curious).
pub const EXIT_PARENT_GONE: i32 = 125;

/// In a child of [`fork_child`], first thing: SIGKILL when the parent
/// (the forking thread) dies, and an immediate exit if it already has.
/// `prctl` and `getppid` take no lock, so this is safe after a fork in a
/// multi-threaded parent.
fn die_with_parent(parent: i32) {
    // Cannot fail for a valid signal; if it did, the check below still
    // catches a parent that is already gone.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // After the request: a parent that dies from now on sends the signal;
    // one that died before has made someone else (init, a subreaper) our
    // parent.
    if nix::unistd::getppid().as_raw() != parent {
        exit_now(EXIT_PARENT_GONE);
    }
}

/// `_exit(code)`: ends the process at once, without atexit handlers,
/// destructors or stdio flushing, so a forked child never runs its parent's
/// clean-up (which would unlink the parent's objects).
pub fn exit_now(code: i32) -> ! {
    crate::sys::exit_now(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shm_gettid() -> i32 {
        crate::gettid()
    }

    const SELF_LIKE: &str = "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";

    #[test]
    fn parses_fields_after_the_last_paren() {
        let s = parse_stat(SELF_LIKE).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 987654);
        assert!(!s.is_dead());
    }

    #[test]
    fn malformed_text_is_an_error_not_a_panic() {
        for bad in [
            "",
            "1234 (cat",
            "1234 (cat)",
            "1234 (cat) ",
            "1234 (cat) SS 1",
            "1234 (cat) S x",
            "1234 (cat) S 1 2 3",
            "1234 (cat) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 notanumber",
            "1234 (\u{e9}\u{e9}) \u{e9}",
        ] {
            assert!(parse_stat(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn this_process_runs_and_a_reused_pid_is_gone() {
        let me = std::process::id() as i32;
        // The process's state is its main thread's (`S` while the test
        // harness's main thread waits for this test's thread).
        let s = stat(me).unwrap();
        assert!(!s.is_dead());
        assert_eq!(stat(shm_gettid()).unwrap().state, b'R');
        assert_eq!(liveness(me, 0), Liveness::Running);
        assert_eq!(liveness(me, s.start_time), Liveness::Running);
        assert_eq!(liveness(me, s.start_time + 1), Liveness::Gone);
        assert_eq!(liveness(0, 0), Liveness::Gone);
        assert_eq!(liveness(-5, 0), Liveness::Gone);
    }

    /// `hidepid` or another user's process: `/proc/PID/stat` cannot be read
    /// but the pid exists. That is "unknown", never "dead", whatever start
    /// time was recorded.
    #[test]
    fn a_hidden_proc_entry_is_unknown_never_dead() {
        for err in [
            StatError::Hidden { pid: 7 },
            StatError::NotFound { pid: 7 },
            StatError::Malformed { pid: 7, why: "x" },
        ] {
            assert_eq!(decide(Err(err), || true, |_| false), Liveness::Unknown);
        }
        assert_eq!(
            decide(Err(StatError::Hidden { pid: 7 }), || false, |_| true),
            Liveness::Gone
        );
        let zombie = ProcStat {
            state: b'Z',
            ppid: 1,
            start_time: 5,
        };
        assert_eq!(decide(Ok(zombie), || true, |_| true), Liveness::Zombie);
        let reused = ProcStat {
            state: b'S',
            ..zombie
        };
        assert_eq!(decide(Ok(reused), || true, |t| t == 6), Liveness::Gone);
        assert_eq!(decide(Ok(reused), || true, |t| t == 5), Liveness::Running);
    }

    /// A child killed and not yet reaped is a zombie, though `kill(pid, 0)`
    /// still finds it.
    #[test]
    fn a_killed_unreaped_child_is_a_zombie() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = stat(pid).unwrap().start_time;
        assert_eq!(liveness(pid, start), Liveness::Running);
        child.kill().unwrap();
        let t0 = std::time::Instant::now();
        while liveness(pid, start) != Liveness::Zombie {
            assert!(t0.elapsed().as_secs() < 5, "never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(exists(pid), "kill(pid, 0) finds the zombie");
        assert!(liveness(pid, start).is_dead());
        child.wait().unwrap();
        assert_eq!(liveness(pid, start), Liveness::Gone);
    }

    /// A coordinator killed with SIGKILL takes the workers it forked with
    /// it: `fork_child` asks for `PR_SET_PDEATHSIG`. (Without it, the
    /// grandchild below, orphaned, slept on for ever.)
    #[test]
    fn a_child_dies_when_its_parent_is_killed() {
        use std::time::{Duration, Instant};
        let file = std::env::temp_dir().join(format!(
            "shm-pdeathsig-{}-{}",
            std::process::id(),
            shm_gettid()
        ));
        let _ = std::fs::remove_file(&file);
        let written = file.clone();
        let middle_body = move || {
            // SAFETY: as below.
            let _grandchild = unsafe {
                fork_child(move || {
                    let tmp = written.with_extension("tmp");
                    let _ = std::fs::write(&tmp, std::process::id().to_string());
                    let _ = std::fs::rename(&tmp, &written);
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                })
            };
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        };
        // SAFETY: the middle process only forks (through `fork_child`) and
        // sleeps; the grandchild writes a file and sleeps. Neither takes a
        // lock another test thread may hold, but the middle's
        // `register_child` (the clean-up registry's mutex): if that was
        // copied locked, the middle hangs there after forking, and is
        // killed below all the same.
        let mut middle = unsafe { fork_child(middle_body) }.unwrap();
        let t0 = Instant::now();
        let grandchild: i32 = loop {
            if let Some(pid) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.parse().ok())
            {
                break pid;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = middle.kill();
                panic!("the grandchild never started");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let _ = std::fs::remove_file(&file);
        let start = stat(grandchild).unwrap().start_time;
        assert_eq!(liveness(grandchild, start), Liveness::Running);
        assert_eq!(stat(grandchild).unwrap().ppid, middle.pid());
        // The coordinator dies the way `kill -9` kills it.
        assert_eq!(middle.kill().unwrap(), Exit::Signal(libc::SIGKILL));
        let t0 = Instant::now();
        while liveness(grandchild, start).may_be_alive() {
            if t0.elapsed() > Duration::from_secs(5) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(grandchild),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("the orphaned grandchild {grandchild} still runs 5 s after its parent died");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The caveat `fork_child` documents: "parent" is the thread that
    /// forked. A child forked from a thread that ends (after the child made
    /// its request) is killed, though the process lives on.
    #[test]
    fn a_child_dies_with_the_thread_that_forked_it() {
        use std::time::{Duration, Instant};
        let file = std::env::temp_dir().join(format!(
            "shm-pdeathsig-thread-{}-{}",
            std::process::id(),
            shm_gettid()
        ));
        let _ = std::fs::remove_file(&file);
        let armed = file.clone();
        let mut child = std::thread::spawn(move || {
            // SAFETY: the child writes a file and sleeps.
            let child = unsafe {
                fork_child(move || {
                    // `body` runs after the request: say so.
                    let _ = std::fs::write(&armed, b"");
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                })
            }
            .unwrap();
            // Ending before the child's request would be the race the docs
            // describe: wait for it.
            let t0 = Instant::now();
            while !file.exists() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = std::fs::remove_file(&file);
            child
        })
        .join()
        .unwrap();
        // Not killed by `stop_by`: by the kernel, when the thread ended.
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            child.stop_by(deadline).unwrap(),
            (Exit::Signal(libc::SIGKILL), false),
            "the child of an ended thread still ran 5 s later"
        );
    }

    /// A parent that died between the fork and the child's `prctl` would
    /// never send the signal: the child sees another parent and exits at
    /// once, without running its body.
    #[test]
    fn a_child_whose_parent_is_already_gone_exits_at_once() {
        // SAFETY: the child takes no lock; it exits in `die_with_parent`
        // (its parent is not pid 0), or returns 0 if that did not work.
        let mut child = unsafe {
            fork_child(|| {
                die_with_parent(0);
                0
            })
        }
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        assert_eq!(
            child.stop_by(deadline).unwrap(),
            (Exit::Code(EXIT_PARENT_GONE), false)
        );
    }

    #[test]
    fn unknown_is_not_dead() {
        assert!(Liveness::Unknown.may_be_alive());
        assert!(!Liveness::Unknown.is_dead());
        assert!(Liveness::Zombie.is_dead());
        assert!(Liveness::Gone.is_dead());
        assert!(Liveness::Running.may_be_alive());
    }
}
