//! The rungs that wait in a lock library: `pthread-cond` (a
//! [`RobustMonitor`]: a robust process-shared mutex and two condition
//! variables on `CLOCK_MONOTONIC`), `sem` (two [`NamedSem`]s) and
//! `sem-unnamed` (two [`SemCell`]s in the mapping). The value travels in a
//! shared word; the lock object only wakes the peer. Every wait is bounded
//! by [`STALL`] on `CLOCK_MONOTONIC`, in 100 ms slices, and a peer that died
//! holding the mutex is an error.

use super::{CHILD, Endpoint, Line, PARENT, Pair, STALL, Side, stalled};
use crate::sys::SharedAnon;
use crate::{Error, Result};
use shm::lock::Acquired;
use shm_monitor::{RobustGuard, RobustMonitor, Wait};
use shm_sem::{NamedSem, SemCell, SemError};
use std::rc::Rc;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

/// How long one kernel wait lasts before the waiter looks at the clock.
const SLICE: Duration = Duration::from_millis(100);

/// The `pthread-cond` rung's mapping.
///
/// The monitor is **never** destroyed: a child killed inside
/// `pthread_cond_timedwait` leaves glibc's condvar with a waiter that will
/// never leave, and `pthread_cond_destroy` then waits for it for ever (lab
/// 11 found this; see `labs/src/lab11.rs`). It holds no resource outside
/// the anonymous mapping, which goes when the last process unmaps it, so
/// not destroying it leaks nothing. The mutex is robust and every lock of
/// it is bounded, so a child killed while holding it costs the parent an
/// error, not a hang.
#[repr(C)]
struct CondShared {
    /// `[parent → child, child → parent]`.
    words: [Line; 2],
    monitor: RobustMonitor,
}
shm::any_bits!(CondShared { words, monitor });

type CondMem = Rc<SharedAnon<CondShared>>;

/// The semaphore rungs' mapping (the unnamed rung's semaphores in it).
#[repr(C)]
struct SemShared {
    /// `[parent → child, child → parent]`.
    words: [Line; 2],
    sems: [SemCell; 2],
}
shm::any_bits!(SemShared { words, sems });

type SemMem = Rc<SharedAnon<SemShared>>;

fn map<T: shm::AnyBits>() -> Result<Rc<SharedAnon<T>>> {
    Ok(Rc::new(SharedAnon::zeroed().map_err(|e| {
        Error::io("mmap(MAP_SHARED | MAP_ANONYMOUS)", e)
    })?))
}

/// The shared mapping with its monitor initialised in place.
fn cond_mem() -> Result<CondMem> {
    let a = map::<CondShared>()?;
    // SAFETY: a fresh zeroed monitor in a shared mapping that nobody else
    // uses yet (the fork comes later) and that stays put until the last
    // `Rc` goes.
    unsafe { RobustMonitor::init(&raw mut (*a.as_ptr()).monitor) }.map_err(pthread_error)?;
    Ok(a)
}

fn pthread_error(e: shm_monitor::PthreadError) -> Error {
    Error::io(e.op, std::io::Error::from_raw_os_error(e.errno))
}

fn owner_died() -> Error {
    Error::Corrupt {
        transport: "pthread-cond".into(),
        detail: "the peer died holding the mutex (EOWNERDEAD)".into(),
    }
}

struct CondEp {
    mem: CondMem,
    side: Side,
    last: u32,
}

/// Takes the monitor's mutex within [`STALL`]; a peer that died holding it
/// (the mutex is robust) is an error, after the mutex is given back (the
/// guard's drop; it was made consistent).
fn lock(m: &RobustMonitor) -> Result<RobustGuard<'_>> {
    match m.lock_timeout(STALL).map_err(pthread_error)? {
        Some(g) if g.acquired() == Acquired::Clean => Ok(g),
        Some(_) => Err(owner_died()),
        None => Err(stalled("pthread-cond")),
    }
}

impl Endpoint for CondEp {
    fn send(&mut self, v: u32) -> Result<()> {
        let g = lock(&self.mem.monitor)?;
        self.mem.words[self.side.tx].0.store(v, Relaxed);
        g.signal(self.side.tx);
        Ok(())
    }
    fn recv(&mut self) -> Result<u32> {
        let deadline = Instant::now() + STALL;
        let mut g = lock(&self.mem.monitor)?;
        loop {
            let v = self.mem.words[self.side.rx()].0.load(Relaxed);
            if v != self.last {
                self.last = v;
                return Ok(v);
            }
            match g.wait(self.side.rx(), SLICE).map_err(pthread_error)? {
                (_, Acquired::PreviousOwnerDied { .. }) => return Err(owner_died()),
                (Wait::TimedOut, _) if Instant::now() > deadline => {
                    return Err(stalled("pthread-cond"));
                }
                _ => {}
            }
        }
    }
}

/// `pthread-cond`: the monitor's mutex, a word and a condition variable
/// per direction.
pub(super) fn cond() -> Result<Pair> {
    let a = cond_mem()?;
    let a2 = a.clone();
    let ep = |mem, side| CondEp { mem, side, last: 0 };
    // The guard keeps the mapping until the child is gone; nothing is
    // destroyed (see `CondShared`).
    Ok(Pair::new(
        move || Ok(ep(a, PARENT)),
        move || Ok(ep(a2, CHILD)),
        (),
    ))
}

fn sem_error(e: SemError) -> Error {
    match e {
        SemError::Os { op, name, source } => Error::io(format!("{op}({name})"), source),
        e => Error::Invalid(e.to_string()),
    }
}

/// Where a semaphore endpoint's two semaphores are.
enum Sems {
    /// Opened by name in this process (`[parent → child, child → parent]`).
    Named([NamedSem; 2]),
    /// In the mapping.
    Unnamed,
}

/// Two semaphores, either named (opened in each process) or in the mapping.
struct SemEp {
    mem: SemMem,
    side: Side,
    sems: Sems,
    what: &'static str,
}

impl SemEp {
    fn post(&self, i: usize) -> Result<(), SemError> {
        match &self.sems {
            Sems::Named(s) => s[i].post(),
            Sems::Unnamed => self.mem.sems[i].post(),
        }
    }

    fn wait_timeout(&self, i: usize, timeout: Duration) -> Result<bool, SemError> {
        match &self.sems {
            Sems::Named(s) => s[i].wait_timeout(timeout),
            Sems::Unnamed => self.mem.sems[i].wait_timeout(timeout),
        }
    }
}

impl Endpoint for SemEp {
    fn send(&mut self, v: u32) -> Result<()> {
        self.mem.words[self.side.tx].0.store(v, Release);
        self.post(self.side.tx).map_err(sem_error)
    }
    fn recv(&mut self) -> Result<u32> {
        let deadline = Instant::now() + STALL;
        while !self
            .wait_timeout(self.side.rx(), SLICE)
            .map_err(sem_error)?
        {
            if Instant::now() > deadline {
                return Err(stalled(self.what));
            }
        }
        Ok(self.mem.words[self.side.rx()].0.load(Acquire))
    }
}

/// Destroys the mapping's unnamed semaphores once the child is gone.
struct DestroySems(SemMem);

impl Drop for DestroySems {
    fn drop(&mut self) {
        for s in &self.0.sems {
            // SAFETY: initialised in `unnamed_sem`; the child has exited or
            // been killed (the guard is dropped after the run) and the
            // parent's endpoint is gone, so nobody waits on them or uses
            // them again. (glibc's `sem_destroy` never waits.)
            unsafe { s.destroy() };
        }
    }
}

/// `sem-unnamed`: two `sem_init(pshared = 1)` semaphores in the mapping.
pub(super) fn unnamed_sem() -> Result<Pair> {
    let a = map::<SemShared>()?;
    for i in 0..2 {
        // SAFETY: fresh zeroed semaphores in a shared mapping that nobody
        // else uses yet and that stays put until the last `Rc` goes.
        unsafe { SemCell::init(&raw mut (*a.as_ptr()).sems[i], 0) }.map_err(sem_error)?;
    }
    let (a2, a3) = (a.clone(), a.clone());
    let what = "sem-unnamed";
    let ep = move |mem, side| SemEp {
        mem,
        side,
        sems: Sems::Unnamed,
        what,
    };
    Ok(Pair::new(
        move || Ok(ep(a, PARENT)),
        move || Ok(ep(a2, CHILD)),
        DestroySems(a3),
    ))
}

/// Removes the named semaphores (and forgets them in the Ctrl-C clean-up).
struct Unlink(Vec<String>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = NamedSem::unlink(n);
        }
    }
}

/// `sem`: two named semaphores, created here (mode 0600, value 0) and
/// opened by name in the child.
pub(super) fn named_sem() -> Result<Pair> {
    let a = map::<SemShared>()?;
    let names: Vec<String> = ["ladder-down", "ladder-up"]
        .iter()
        .map(|p| format!("/{}", shm::unique_tag(p)))
        .collect();
    let mut guard = Unlink(Vec::new());
    let mut made = Vec::new();
    for n in &names {
        made.push(NamedSem::create(n, shm::Mode::DEFAULT, 0).map_err(sem_error)?);
        guard.0.push(n.clone());
    }
    let [down, up]: [NamedSem; 2] = made.try_into().expect("two semaphores");
    let a2 = a.clone();
    let what = "sem";
    Ok(Pair::new(
        move || {
            Ok(SemEp {
                mem: a,
                side: PARENT,
                sems: Sems::Named([down, up]),
                what,
            })
        },
        move || {
            let open = |n: &String| NamedSem::open(n).map_err(sem_error);
            let s = [open(&names[0])?, open(&names[1])?];
            Ok(SemEp {
                mem: a2,
                side: CHILD,
                sems: Sems::Named(s),
                what,
            })
        },
        guard,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ends the whole test process if the test is not done within `secs`:
    /// a regression to a hang fails (the harness sees the abort) instead
    /// of stalling CI for ever.
    fn watchdog(secs: u64, what: &'static str) -> std::sync::mpsc::Sender<()> {
        let (done, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(secs))
            {
                eprintln!("HUNG: {what} did not finish within {secs} s");
                std::process::abort();
            }
        });
        done
    }

    /// Forks a child that runs `body` on a child-side endpoint, waits until
    /// it stored `ready` in its word, SIGKILLs and reaps it.
    fn kill_child_when_ready(mem: &CondMem, body: impl FnOnce(CondEp)) {
        let word = &mem.words[CHILD.tx].0;
        let m2 = mem.clone();
        // SAFETY: the child only uses the shared mapping and then sleeps
        // until killed; it takes no lock another thread of the test
        // process could hold.
        let mut child = unsafe {
            shm::process::fork_child(move || {
                body(CondEp {
                    mem: m2,
                    side: CHILD,
                    last: 0,
                });
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        }
        .unwrap();
        let start = Instant::now();
        while word.load(Acquire) != 99 {
            assert!(start.elapsed() < Duration::from_secs(10), "child not ready");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(!child.kill().unwrap().success());
    }

    /// Finding 11 of "Trust nothing that is shared": the rung's mutex was
    /// plain and locked without a deadline, so a child killed while
    /// holding it wedged the parent for ever. Now the mutex is robust:
    /// the parent's next call is an error naming the dead owner.
    #[test]
    fn a_child_killed_holding_the_mutex_is_an_error_not_a_hang() {
        let done = watchdog(30, "the parent after its child died holding the mutex");
        let mem = cond_mem().unwrap();
        kill_child_when_ready(&mem, |ep| {
            let g = lock(&ep.mem.monitor).unwrap();
            ep.mem.words[CHILD.tx].0.store(99, Release);
            // Dies holding it (killed while it sleeps).
            std::mem::forget(g);
        });
        let mut parent = CondEp {
            mem: mem.clone(),
            side: PARENT,
            last: 0,
        };
        let err = parent.send(1).unwrap_err();

        assert!(err.to_string().contains("EOWNERDEAD"), "{err}");
        // The mutex works again afterwards.
        parent.send(2).unwrap();
        drop(done);
    }

    /// Finding 11: a child killed inside `pthread_cond_timedwait` left a
    /// waiter glibc waits for in `pthread_cond_destroy`, so the rung's
    /// clean-up never returned. Now nothing destroys the condvars: the
    /// pair's guard and the mapping go, and the monitor still works.
    #[test]
    fn clean_up_after_a_child_killed_inside_a_wait_returns() {
        let done = watchdog(30, "the ladder's clean-up after a child died in a wait");
        let mem = cond_mem().unwrap();
        kill_child_when_ready(&mem, |mut ep| {
            ep.mem.words[CHILD.tx].0.store(99, Release);
            // Waits (in 100 ms slices) for a value that never comes.
            let _ = ep.recv();
        });
        let mut parent = CondEp {
            mem,
            side: PARENT,
            last: 0,
        };
        parent.send(3).unwrap();
        drop(parent);
        drop(done);
    }
}
