//! The tracer: starts the program stopped, follows every fork, vfork,
//! clone and exec, decodes the system calls the filter stops at, keeps per
//! process the descriptors and mappings of shared objects, explains
//! failures and fault signals, and a watcher thread diagnoses hangs.

use crate::event::{Event, Leftover, Output, ProcSummary, Summary};
use crate::explain::{self, ObjFacts, OpenCtx};
use crate::sys::{self, Syscall};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// `si_code` of a SIGSEGV for an access the mapping's protection forbids
/// (`<asm-generic/siginfo.h>`; not in the `libc` crate).
const SEGV_ACCERR: i32 = 2;

/// How a run is traced.
#[derive(Clone, Debug)]
pub struct Options {
    /// After how long with every traced process blocked a hang is
    /// reported.
    pub hang_after: Duration,
    /// End the run (SIGKILL every traced process) when a hang is found.
    pub kill_on_hang: bool,
    /// Stop at every system call instead of only the decoded ones (no
    /// seccomp filter; slower; for kernels that refuse the filter).
    pub every_call: bool,
    /// Stop at shared futex waits and report them (`futex_wait` events):
    /// two stops per wait, which a contended lock makes many of.
    pub waits: bool,
}

/// How the traced program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootEnd {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Killed(i32),
}

/// Why the program could not be traced.
#[derive(Debug)]
pub enum TraceError {
    /// It could not be started (not found, not executable).
    Spawn(std::io::Error),
    /// The kernel refused to trace it.
    Ptrace(String),
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Spawn(e) => write!(f, "cannot start the program: {e}"),
            TraceError::Ptrace(e) => write!(f, "cannot trace the program: {e}"),
        }
    }
}

/// What a descriptor of a traced process refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Obj {
    /// A shared-memory object (`/NAME`).
    Shm(String),
    /// A named semaphore's file (`/NAME` of `sem_open`).
    Sem(String),
    /// glibc's temporary file while `sem_open` creates a semaphore.
    SemTemp,
    /// A FIFO, by path.
    Fifo(String),
}

impl Obj {
    fn label(&self) -> String {
        match self {
            Obj::Shm(n) => n.clone(),
            Obj::Sem(n) => format!("sem {n}"),
            Obj::SemTemp => "a new semaphore".into(),
            Obj::Fifo(p) => format!("FIFO {p}"),
        }
    }
}

#[derive(Clone, Debug)]
struct Fd {
    obj: Obj,
    /// `O_ACCMODE` part of the open flags.
    access: i32,
    cloexec: bool,
}

#[derive(Clone, Debug)]
struct Map {
    start: u64,
    end: u64,
    obj: Obj,
    offset: u64,
    prot: i32,
}

#[derive(Clone, Debug, Default)]
struct Proc {
    fds: HashMap<i32, Fd>,
    maps: Vec<Map>,
    summary: ProcSummary,
}

/// What the tracer knows about an object this run touched.
#[derive(Clone, Debug, Default)]
struct ObjRecord {
    kind: &'static str,
    name: String,
    /// The traced process that created it, if this run did.
    creator: Option<i32>,
    /// Whether a size was ever set by this run.
    sized: bool,
    /// The last resize that made it smaller: (pid, old, new).
    shrunk: Option<(i32, u64, u64)>,
}

/// The state both threads read: the processes and the report.
struct Shared {
    procs: HashMap<i32, Proc>,
    objects: BTreeMap<String, ObjRecord>,
    out: Output,
    summary: Summary,
    /// Processes in start order, for the summary.
    order: Vec<i32>,
    finished: Vec<ProcSummary>,
}

impl Shared {
    /// A failed call: the event gets its error, and the run's count of
    /// failed calls goes up.
    fn failed(&mut self, mut e: Event, errno: i32) -> Event {
        self.summary.failed_calls += 1;
        e.error = Some(explain::errno_name(errno));
        e
    }

    /// Something this run created (`kind`: `shm`, `sem`, `fifo`), by
    /// process `p`: remembered for the leftovers, and in `p`'s summary as
    /// `label`.
    fn created(&mut self, p: i32, path: &str, kind: &'static str, name: &str, label: String) {
        self.objects.insert(
            path.to_string(),
            ObjRecord {
                kind,
                name: name.to_string(),
                creator: Some(p),
                ..ObjRecord::default()
            },
        );
        if let Some(pr) = self.procs.get_mut(&p) {
            pr.summary.created.push(label);
        }
    }
}

/// A call stopped at entry, waiting for its exit.
#[derive(Clone, Debug)]
struct Pending {
    nr: i64,
    args: [u64; 6],
    /// A path argument, resolved.
    path: Option<String>,
    /// A second path argument (link, rename), resolved.
    path2: Option<String>,
    /// The object at `path` before the call, if it existed.
    before: Option<ObjFacts>,
    /// The size of the object behind `args[0]` as a descriptor, before.
    old_size: Option<u64>,
    /// When the call entered (a futex wait's duration).
    at: Instant,
}

/// Runs `program` with `args` under the tracer, writing events to `out`.
/// Returns how it ended and the summary.
pub fn run(
    program: &std::ffi::OsStr,
    args: &[std::ffi::OsString],
    opts: &Options,
    out: Output,
) -> Result<(RootEnd, Summary), TraceError> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    sys::prepare(&mut cmd, opts.every_call, opts.waits);
    let child = cmd.spawn().map_err(TraceError::Spawn)?;
    let root = Pid::from_raw(child.id() as i32);
    drop(child);
    // The first stop: the exec (PTRACE_TRACEME makes it a SIGTRAP).
    match waitpid(root, Some(WaitPidFlag::__WALL)) {
        Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {}
        other => {
            let _ = nix::sys::signal::kill(root, Signal::SIGKILL);
            let _ = waitpid(root, None);
            return Err(TraceError::Ptrace(format!(
                "the program did not stop at its exec ({other:?})"
            )));
        }
    }
    let options = ptrace::Options::PTRACE_O_TRACESYSGOOD
        | ptrace::Options::PTRACE_O_TRACEFORK
        | ptrace::Options::PTRACE_O_TRACEVFORK
        | ptrace::Options::PTRACE_O_TRACECLONE
        | ptrace::Options::PTRACE_O_TRACEEXEC
        | ptrace::Options::PTRACE_O_TRACESECCOMP
        | ptrace::Options::PTRACE_O_EXITKILL;
    if let Err(e) = ptrace::setoptions(root, options) {
        let _ = nix::sys::signal::kill(root, Signal::SIGKILL);
        let _ = waitpid(root, None);
        return Err(TraceError::Ptrace(format!("PTRACE_SETOPTIONS: {e}")));
    }
    let program = exe_of(root.as_raw());
    let first =
        Event::new(root.as_raw(), "exec", format!("exec {program}")).with("program", program);
    Ok(trace_tree(
        root,
        &[],
        opts,
        opts.every_call,
        out,
        first,
        HashMap::new(),
        None,
    ))
}

/// Attaches to the running process `pid` and all its threads
/// (`PTRACE_SEIZE`, then `PTRACE_INTERRUPT`) and traces it until it (and
/// every process it forks meanwhile) has ended. A running program cannot
/// be given a seccomp filter, so every system call stops it (as with
/// `--every-call`): slower than a traced start. What it had already
/// opened and mapped of `/dev/shm` is read from `/proc/PID/fd` and
/// `/proc/PID/maps`, so later calls on those are decoded too. Ending the
/// tracer (Ctrl-C) detaches it: the program runs on.
pub fn attach(pid: i32, opts: &Options, out: Output) -> Result<(RootEnd, Summary), TraceError> {
    let root = Pid::from_raw(pid);
    let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| TraceError::Ptrace(format!("no process {pid}: {e}")))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let options = ptrace::Options::PTRACE_O_TRACESYSGOOD
        | ptrace::Options::PTRACE_O_TRACEFORK
        | ptrace::Options::PTRACE_O_TRACEVFORK
        | ptrace::Options::PTRACE_O_TRACECLONE
        | ptrace::Options::PTRACE_O_TRACEEXEC;
    for &tid in &tids {
        let t = Pid::from_raw(tid);
        ptrace::seize(t, options)
            .and_then(|()| ptrace::interrupt(t))
            .map_err(|e| {
                TraceError::Ptrace(format!("cannot attach to {pid} (thread {tid}): {e}"))
            })?;
        // Its PTRACE_EVENT_STOP.
        let _ = waitpid(t, Some(WaitPidFlag::__WALL));
    }
    let seed = seed_from_proc(pid);
    let program = exe_of(pid);
    let first = Event::new(pid, "attach", format!("attached to pid {pid} ({program})"))
        .with("program", program);
    let mut threads = HashMap::new();
    for &tid in &tids {
        threads.insert(tid, pid);
    }
    Ok(trace_tree(
        root,
        &tids,
        opts,
        true,
        out,
        first,
        threads,
        Some(seed),
    ))
}

/// What a running process already had of `/dev/shm`: its descriptors and
/// mappings, read from `/proc`.
fn seed_from_proc(pid: i32) -> Proc {
    let mut p = Proc::default();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            let obj = match (sem_name(&target), shm_name(&target)) {
                (Some(sem), _) => Obj::Sem(sem),
                (None, Some(n)) => Obj::Shm(n),
                _ => continue,
            };
            let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("flags:"))
                        .and_then(|f| i32::from_str_radix(f.trim(), 8).ok())
                })
                .unwrap_or(0);
            p.fds.insert(
                fd,
                Fd {
                    obj,
                    access: flags & libc::O_ACCMODE,
                    cloexec: flags & libc::O_CLOEXEC != 0,
                },
            );
        }
    }
    if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        for line in maps.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(range), Some(perms), Some(off), Some(path)) =
                (f.first(), f.get(1), f.get(2), f.get(5))
            else {
                continue;
            };
            let obj = match (sem_name(path), shm_name(path)) {
                (Some(sem), _) => Obj::Sem(sem),
                (None, Some(n)) => Obj::Shm(n),
                _ => continue,
            };
            let Some((a, b)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end), Ok(offset)) = (
                u64::from_str_radix(a, 16),
                u64::from_str_radix(b, 16),
                u64::from_str_radix(off, 16),
            ) else {
                continue;
            };
            let mut prot = 0;
            if perms.contains('r') {
                prot |= libc::PROT_READ;
            }
            if perms.contains('w') {
                prot |= libc::PROT_WRITE;
            }
            p.maps.push(Map {
                start,
                end,
                obj,
                offset,
                prot,
            });
        }
    }
    p
}

/// Traces the tree under `root` (already stopped and set up) to its end:
/// `stopped` are the threads to resume (none: `root`), `threads` their
/// process, `seed` what the root already had of `/dev/shm`.
#[allow(clippy::too_many_arguments)]
fn trace_tree(
    root: Pid,
    stopped: &[i32],
    opts: &Options,
    every_call: bool,
    out: Output,
    first: Event,
    threads: HashMap<i32, i32>,
    seed: Option<Proc>,
) -> (RootEnd, Summary) {
    let shared = Arc::new(Mutex::new(Shared {
        procs: HashMap::new(),
        objects: BTreeMap::new(),
        out,
        summary: Summary::default(),
        order: Vec::new(),
        finished: Vec::new(),
    }));
    let mut t = Tracer {
        shared: Arc::clone(&shared),
        tgid: HashMap::new(),
        pending: HashMap::new(),
        fresh: HashSet::new(),
        every_call,
        waits: opts.waits,
        root,
        root_end: None,
        temps: HashSet::new(),
        traced: crate::filter::traced_calls().into_iter().collect(),
    };
    t.add_process(root.as_raw(), None);
    t.tgid.extend(threads);
    if let Some(seed) = seed {
        if let Some(p) = t.lock().procs.get_mut(&root.as_raw()) {
            p.fds = seed.fds;
            p.maps = seed.maps;
        }
    }
    {
        let mut s = t.lock();
        let program = first
            .fields
            .get("program")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        if let Some(p) = s.procs.get_mut(&root.as_raw()) {
            p.summary.program = program;
        }
        s.out.event(&first);
    }
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (shared, done, opts) = (Arc::clone(&shared), Arc::clone(&done), opts.clone());
        std::thread::Builder::new()
            .name("trace-hang-watch".into())
            .spawn(move || watch_hangs(&shared, &done, &opts))
            .ok()
    };
    if stopped.is_empty() {
        t.resume(root, None);
    } else {
        for &tid in stopped {
            t.resume(Pid::from_raw(tid), None);
        }
    }
    t.run_loop();
    done.store(true, Ordering::Release);
    if let Some(w) = watcher {
        // It sleeps in `park_timeout`: wake it now rather than a slice
        // later.
        w.thread().unpark();
        let _ = w.join();
    }
    let root_end = t.root_end.unwrap_or(RootEnd::Killed(libc::SIGKILL));
    let summary = t.finish();
    (root_end, summary)
}

struct Tracer {
    shared: Arc<Mutex<Shared>>,
    /// Thread id → process (thread-group) id.
    tgid: HashMap<i32, i32>,
    pending: HashMap<i32, Pending>,
    /// New tracees whose first SIGSTOP has not been seen yet.
    fresh: HashSet<i32>,
    every_call: bool,
    waits: bool,
    root: Pid,
    root_end: Option<RootEnd>,
    /// glibc's temporary semaphore files, until linked and unlinked.
    temps: HashSet<String>,
    /// The calls decoded ([`crate::filter::traced_calls`]), for
    /// `every_call`, where every call stops and the others are let go.
    traced: HashSet<i64>,
}

impl Tracer {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_process(&mut self, pid: i32, parent: Option<i32>) {
        self.tgid.insert(pid, pid);
        let mut s = self.lock();
        let mut p = parent
            .and_then(|pp| s.procs.get(&pp))
            .map(|pp| Proc {
                fds: pp.fds.clone(),
                maps: pp.maps.clone(),
                summary: ProcSummary {
                    program: pp.summary.program.clone(),
                    ..ProcSummary::default()
                },
            })
            .unwrap_or_default();
        p.summary.pid = pid;
        s.procs.insert(pid, p);
        s.order.push(pid);
    }

    /// Resumes a stopped tracee: to the next seccomp stop (or, tracing
    /// every call, the next syscall stop).
    fn resume(&self, pid: Pid, sig: Option<Signal>) {
        let _ = if self.every_call {
            ptrace::syscall(pid, sig)
        } else {
            ptrace::cont(pid, sig)
        };
    }

    fn run_loop(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::__WALL)) {
                Ok(s) => s,
                Err(Errno::EINTR) => continue,
                Err(_) => break, // ECHILD: nobody left
            };
            match status {
                WaitStatus::PtraceEvent(pid, _, ev) => self.on_event(pid, ev),
                WaitStatus::PtraceSyscall(pid) => self.on_syscall_stop(pid),
                WaitStatus::Stopped(pid, sig) => self.on_signal(pid, sig),
                WaitStatus::Exited(pid, code) => self.on_end(pid, RootEnd::Exited(code)),
                WaitStatus::Signaled(pid, sig, _) => self.on_end(pid, RootEnd::Killed(sig as i32)),
                _ => {}
            }
        }
    }

    fn on_event(&mut self, pid: Pid, ev: i32) {
        match ev {
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(new) = ptrace::getevent(pid) {
                    let new = new as i32;
                    let parent = self
                        .tgid
                        .get(&pid.as_raw())
                        .copied()
                        .unwrap_or(pid.as_raw());
                    let thread = tgid_of(new) == Some(parent);
                    if thread {
                        self.tgid.insert(new, parent);
                    } else {
                        self.add_process(new, Some(parent));
                        let what = if ev == libc::PTRACE_EVENT_VFORK {
                            "vfork"
                        } else {
                            "fork"
                        };
                        let mut s = self.lock();
                        let (fds, maps) =
                            s.procs.get(&new).map_or_else(Default::default, inherited);
                        let mut line = format!("{what}() = {new}");
                        if !fds.is_empty() || !maps.is_empty() {
                            line.push_str(&format!(
                                "   the child inherits {}",
                                fds.iter()
                                    .chain(&maps)
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        let e = Event::new(parent, "fork", line)
                            .with("child", new)
                            .with("inherited_fds", fds)
                            .with("inherited_maps", maps);
                        s.out.event(&e);
                    }
                    // Its first stop may already have been seen.
                    if !self.fresh.remove(&-new) {
                        self.fresh.insert(new);
                    } else {
                        self.resume(Pid::from_raw(new), None);
                    }
                }
                self.resume(pid, None);
            }
            libc::PTRACE_EVENT_EXEC => {
                let p = self
                    .tgid
                    .get(&pid.as_raw())
                    .copied()
                    .unwrap_or(pid.as_raw());
                let program = exe_of(pid.as_raw());
                let mut s = self.lock();
                let mut closed = Vec::new();
                let mut kept = Vec::new();
                if let Some(proc_) = s.procs.get_mut(&p) {
                    proc_.maps.clear();
                    let mut fds: Vec<_> = proc_.fds.iter().collect();
                    fds.sort_by_key(|(n, _)| **n);
                    for (n, fd) in fds {
                        let what = format!("fd {n} ({})", fd.obj.label());
                        if fd.cloexec {
                            closed.push(what)
                        } else {
                            kept.push(what)
                        }
                    }
                    proc_.fds.retain(|_, fd| !fd.cloexec);
                    proc_.summary.program = program.clone();
                }
                let mut line = format!("exec {program}");
                if !closed.is_empty() {
                    line.push_str(&format!("   O_CLOEXEC closed {}", closed.join(", ")));
                }
                if !kept.is_empty() {
                    line.push_str(&format!("   still open: {}", kept.join(", ")));
                }
                let e = Event::new(p, "exec", line)
                    .with("program", program)
                    .with("closed_on_exec", closed)
                    .with("kept_open", kept);
                s.out.event(&e);
                drop(s);
                self.resume(pid, None);
            }
            libc::PTRACE_EVENT_SECCOMP => self.on_syscall_stop(pid),
            _ => self.resume(pid, None),
        }
    }

    fn on_syscall_stop(&mut self, pid: Pid) {
        match sys::syscall_info(pid) {
            Ok(Syscall::Entry { nr, args }) => {
                let nr = nr as i64;
                if self.every_call
                    && !self.traced.contains(&nr)
                    && !(self.waits && is_shared_futex_wait(nr, &args))
                {
                    let _ = ptrace::syscall(pid, None);
                    return;
                }
                let pending = self.entry(pid.as_raw(), nr, args);
                self.pending.insert(pid.as_raw(), pending);
                // On to the exit of this call.
                let _ = ptrace::syscall(pid, None);
            }
            Ok(Syscall::Exit { ret, .. }) => {
                if let Some(p) = self.pending.remove(&pid.as_raw()) {
                    self.exit(pid.as_raw(), &p, ret);
                }
                self.resume(pid, None);
            }
            _ => self.resume(pid, None),
        }
    }

    fn on_signal(&mut self, pid: Pid, sig: Signal) {
        let raw = pid.as_raw();
        if sig == Signal::SIGSTOP && self.fresh.remove(&raw) {
            self.resume(pid, None);
            return;
        }
        if sig == Signal::SIGSTOP && !self.tgid.contains_key(&raw) {
            // Its fork event has not arrived yet: remember the stop.
            self.fresh.insert(-raw);
            return;
        }
        // A group-stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU taking effect)
        // has no siginfo: resume it without the signal, or injecting it
        // again would stop it again for ever. (A traced program cannot be
        // suspended by job control; `kill -STOP` on it is seen and
        // ignored.)
        if matches!(
            sig,
            Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
        ) && matches!(ptrace::getsiginfo(pid), Err(Errno::EINVAL))
        {
            self.resume(pid, None);
            return;
        }
        let p = self.tgid.get(&raw).copied().unwrap_or(raw);
        if sig != Signal::SIGCHLD {
            let e = self.describe_signal(p, pid, sig);
            self.lock().out.event(&e);
        }
        self.resume(pid, Some(sig));
    }

    fn describe_signal(&self, p: i32, pid: Pid, sig: Signal) -> Event {
        let mut e = Event::new(p, "signal", format!("--- {} ---", sig.as_str()))
            .with("signal", sig.as_str());
        match sig {
            Signal::SIGBUS | Signal::SIGSEGV => {
                let Ok((addr, code)) = sys::fault_address(pid) else {
                    return e;
                };
                e = e.with("addr", format!("{addr:#x}"));
                let s = self.lock();
                let Some(m) = s
                    .procs
                    .get(&p)
                    .and_then(|pr| pr.maps.iter().find(|m| m.start <= addr && addr < m.end))
                else {
                    return e;
                };
                let offset = m.offset + (addr - m.start);
                let name = match &m.obj {
                    Obj::Shm(n) | Obj::Sem(n) => n.clone(),
                    other => other.label(),
                };
                e = e.with("name", name.clone()).with("offset", offset);
                if sig == Signal::SIGBUS {
                    let size_now = std::fs::symlink_metadata(shm_path(&name))
                        .ok()
                        .map(|md| md.len());
                    let rec = s.objects.get(&shm_path(&name));
                    if let Some(sz) = size_now {
                        e = e.with("size", sz);
                    }
                    e.explain.push(explain::explain_sigbus(
                        &name,
                        offset,
                        size_now,
                        rec.and_then(|r| r.shrunk),
                        rec.is_some_and(|r| r.sized) || size_now.is_some_and(|z| z > 0),
                    ));
                } else if code == SEGV_ACCERR && m.prot & libc::PROT_WRITE == 0 {
                    e.explain
                        .push(explain::explain_sigsegv_write(&name, m.prot));
                }
            }
            Signal::SIGPIPE => e.explain.push(explain::explain_sigpipe()),
            _ => {}
        }
        e
    }

    fn on_end(&mut self, pid: Pid, how: RootEnd) {
        let raw = pid.as_raw();
        self.pending.remove(&raw);
        let p = self.tgid.remove(&raw).unwrap_or(raw);
        if pid == self.root {
            self.root_end = Some(how);
        }
        if p != raw {
            return; // a thread
        }
        let mut s = self.lock();
        let ended = match how {
            RootEnd::Exited(c) => shm::process::Exit::Code(c).to_string(),
            RootEnd::Killed(sig) => shm::process::Exit::Signal(sig).to_string(),
        };
        let line = match how {
            RootEnd::Exited(c) => format!("+++ exited with {c} +++"),
            RootEnd::Killed(sig) => format!(
                "+++ killed by {} +++",
                Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_string())
            ),
        };
        let mut e = Event::new(p, "exit", line);
        e = match how {
            RootEnd::Exited(c) => e.with("status", c),
            RootEnd::Killed(sig) => {
                s.summary.killed += 1;
                e.with("signal", sig)
            }
        };
        s.out.event(&e);
        if let Some(mut pr) = s.procs.remove(&p) {
            let mut unclosed: Vec<String> = pr
                .fds
                .iter()
                .filter(|(_, fd)| matches!(fd.obj, Obj::Shm(_) | Obj::Sem(_)))
                .map(|(n, fd)| format!("fd {n} ({})", fd.obj.label()))
                .collect();
            unclosed.sort();
            pr.summary.unclosed = unclosed;
            pr.summary.ended = ended;
            s.finished.push(pr.summary);
        }
    }

    /// At a call's entry: what must be read before it runs.
    fn entry(&self, pid: i32, nr: i64, args: [u64; 6]) -> Pending {
        let tp = Pid::from_raw(pid);
        let p = self.tgid.get(&pid).copied().unwrap_or(pid);
        let path_at = |dirfd: u64, addr: u64| resolve(p, dirfd as i32, tp, addr);
        let (path, path2) = match nr {
            n if n == libc::SYS_openat || n == libc::SYS_mknodat => {
                (path_at(args[0], args[1]), None)
            }
            n if n == libc::SYS_unlinkat => (path_at(args[0], args[1]), None),
            n if n == libc::SYS_linkat || n == libc::SYS_renameat2 || n == libc::SYS_renameat => {
                (path_at(args[0], args[1]), path_at(args[2], args[3]))
            }
            #[cfg(target_arch = "x86_64")]
            n if n == libc::SYS_open
                || n == libc::SYS_creat
                || n == libc::SYS_unlink
                || n == libc::SYS_mknod =>
            {
                (path_at(libc::AT_FDCWD as u64, args[0]), None)
            }
            #[cfg(target_arch = "x86_64")]
            n if n == libc::SYS_link || n == libc::SYS_rename => (
                path_at(libc::AT_FDCWD as u64, args[0]),
                path_at(libc::AT_FDCWD as u64, args[1]),
            ),
            _ => (None, None),
        };
        let before = path.as_deref().and_then(facts);
        let old_size = if nr == libc::SYS_ftruncate || nr == libc::SYS_fallocate {
            let fd = args[0] as i32;
            self.fd_obj(p, fd)
                .and_then(|o| match o.obj {
                    Obj::Shm(n) => facts(&shm_path(&n)),
                    _ => None,
                })
                .map(|f| f.size)
        } else {
            None
        };
        Pending {
            nr,
            args,
            path,
            path2,
            before,
            old_size,
            at: Instant::now(),
        }
    }

    fn fd_obj(&self, p: i32, fd: i32) -> Option<Fd> {
        self.lock().procs.get(&p)?.fds.get(&fd).cloned()
    }

    /// At a call's exit: decode, update the tables, report.
    fn exit(&mut self, tid: i32, c: &Pending, ret: i64) {
        let p = self.tgid.get(&tid).copied().unwrap_or(tid);
        let err = (-4095..0).contains(&ret).then(|| -ret as i32);
        let a = c.args;
        let nr = c.nr;
        #[cfg(target_arch = "x86_64")]
        let (
            is_open_legacy,
            is_unlink_legacy,
            is_link_legacy,
            is_pipe_legacy,
            is_mknod_legacy,
            is_dup2,
        ) = (
            nr == libc::SYS_open || nr == libc::SYS_creat,
            nr == libc::SYS_unlink,
            nr == libc::SYS_link || nr == libc::SYS_rename,
            nr == libc::SYS_pipe,
            nr == libc::SYS_mknod,
            nr == libc::SYS_dup2,
        );
        #[cfg(not(target_arch = "x86_64"))]
        let (
            is_open_legacy,
            is_unlink_legacy,
            is_link_legacy,
            is_pipe_legacy,
            is_mknod_legacy,
            is_dup2,
        ) = (false, false, false, false, false, false);
        if nr == libc::SYS_futex {
            self.on_futex_wait(p, c, err);
        } else if nr == libc::SYS_openat || is_open_legacy {
            let (flags, mode) = if nr == libc::SYS_openat {
                (a[2] as i32, a[3] as u32)
            } else {
                #[cfg(target_arch = "x86_64")]
                if nr == libc::SYS_creat {
                    (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, a[1] as u32)
                } else {
                    (a[1] as i32, a[2] as u32)
                }
                #[cfg(not(target_arch = "x86_64"))]
                (a[1] as i32, a[2] as u32)
            };
            self.on_open(p, c, flags, mode, ret, err);
        } else if nr == libc::SYS_ftruncate || nr == libc::SYS_fallocate {
            let fd = a[0] as i32;
            let Some(Fd {
                obj: Obj::Shm(name),
                access,
                ..
            }) = self.fd_obj(p, fd)
            else {
                return;
            };
            let new = if nr == libc::SYS_ftruncate {
                a[1]
            } else {
                a[2].saturating_add(a[3])
            };
            let old = c.old_size.unwrap_or(0);
            let call = if nr == libc::SYS_ftruncate {
                "ftruncate"
            } else {
                "fallocate"
            };
            let mut e = Event::new(
                p,
                "ftruncate",
                format!("{call}({fd} → {name}, {new}) = {}", ret_text(ret, err)),
            )
            .with("name", name.as_str())
            .with("fd", fd)
            .with("old_size", old)
            .with("new_size", new);
            let mut s = self.lock();
            if let Some(errno) = err {
                e = s.failed(e, errno).explained(explain::explain_ftruncate(
                    errno,
                    access,
                    a[1] as i64,
                ));
            } else {
                e.line.push_str(&format!("   size {old} → {new}"));
                let rec = s
                    .objects
                    .entry(shm_path(&name))
                    .or_insert_with(|| ObjRecord {
                        kind: "shm",
                        name: name.clone(),
                        ..ObjRecord::default()
                    });
                rec.sized = true;
                if new < old {
                    rec.shrunk = Some((p, old, new));
                }
            }
            s.out.event(&e);
        } else if nr == libc::SYS_fchmod || nr == libc::SYS_fchown {
            let fd = a[0] as i32;
            let Some(fdo) = self.fd_obj(p, fd) else {
                return;
            };
            let mut e = if nr == libc::SYS_fchmod {
                Event::new(
                    p,
                    "fchmod",
                    format!(
                        "fchmod({fd} → {}, {}) = {}",
                        fdo.obj.label(),
                        explain::mode(a[1] as u32),
                        ret_text(ret, err)
                    ),
                )
                .with("mode", format!("{:04o}", a[1] as u32 & 0o7777))
            } else {
                Event::new(
                    p,
                    "fchown",
                    format!(
                        "fchown({fd} → {}, uid {}, gid {}) = {}",
                        fdo.obj.label(),
                        a[1] as i32,
                        a[2] as i32,
                        ret_text(ret, err)
                    ),
                )
            };
            e = e.with("name", fdo.obj.label()).with("fd", fd);
            let mut s = self.lock();
            if let Some(errno) = err {
                e = s.failed(e, errno);
            }
            s.out.event(&e);
        } else if nr == libc::SYS_close {
            let fd = a[0] as i32;
            let mut s = self.lock();
            let Some(old) = s.procs.get_mut(&p).and_then(|pr| pr.fds.remove(&fd)) else {
                return;
            };
            // glibc's own descriptors of a semaphore's file (sem_open
            // closes it once mapped): not the program's doing.
            if matches!(old.obj, Obj::SemTemp | Obj::Sem(_)) {
                return;
            }
            let e = Event::new(
                p,
                "close",
                format!("close({fd} → {}) = {}", old.obj.label(), ret_text(ret, err)),
            )
            .with("name", old.obj.label())
            .with("fd", fd);
            s.out.event(&e);
        } else if nr == libc::SYS_dup || nr == libc::SYS_dup3 || is_dup2 || nr == libc::SYS_fcntl {
            let old = a[0] as i32;
            let is_dup_fcntl = nr == libc::SYS_fcntl
                && (a[1] as i32 == libc::F_DUPFD || a[1] as i32 == libc::F_DUPFD_CLOEXEC);
            if nr == libc::SYS_fcntl && !is_dup_fcntl {
                return;
            }
            if err.is_some() || ret < 0 {
                return;
            }
            let new = ret as i32;
            let cloexec = (nr == libc::SYS_dup3 && a[2] as i32 & libc::O_CLOEXEC != 0)
                || (nr == libc::SYS_fcntl && a[1] as i32 == libc::F_DUPFD_CLOEXEC);
            let mut s = self.lock();
            let Some(pr) = s.procs.get_mut(&p) else {
                return;
            };
            // dup2/dup3 onto a tracked descriptor closes it first.
            pr.fds.remove(&new);
            let Some(mut fdo) = pr.fds.get(&old).cloned() else {
                return;
            };
            fdo.cloexec = cloexec;
            let label = fdo.obj.label();
            pr.fds.insert(new, fdo);
            let e = Event::new(p, "dup", format!("dup({old} → {label}) = {new}"))
                .with("name", label)
                .with("fd", old)
                .with("new_fd", new);
            s.out.event(&e);
        } else if nr == libc::SYS_mmap {
            let fd = a[4] as i32;
            let (len, prot, flags, off) = (a[1], a[2] as i32, a[3] as i32, a[5]);
            if flags & libc::MAP_ANONYMOUS != 0 {
                return;
            }
            let Some(fdo) = self.fd_obj(p, fd) else {
                return;
            };
            let label = fdo.obj.label();
            let mut e = Event::new(
                p,
                "mmap",
                format!(
                    "mmap({len} bytes of {label} at offset {off}, {}, {}) = {}",
                    explain::prot(prot),
                    explain::map_flags(flags),
                    if err.is_some() {
                        ret_text(ret, err)
                    } else {
                        format!("{ret:#x}")
                    }
                ),
            )
            .with("name", label.clone())
            .with("fd", fd)
            .with("len", len)
            .with("prot", explain::prot(prot))
            .with("flags", explain::map_flags(flags))
            .with("offset", off);
            let quiet = matches!(fdo.obj, Obj::Sem(_) | Obj::SemTemp);
            let mut s = self.lock();
            if let Some(errno) = err {
                e = s.failed(e, errno).explained(explain::explain_mmap(
                    errno, prot, flags, fdo.access, len, off,
                ));
            } else {
                let addr = ret as u64;
                e = e.with("addr", format!("{addr:#x}"));
                if let Some(pr) = s.procs.get_mut(&p) {
                    unmap(&mut pr.maps, addr, len);
                    pr.maps.push(Map {
                        start: addr,
                        end: addr.saturating_add(len),
                        obj: fdo.obj.clone(),
                        offset: off,
                        prot,
                    });
                    if let Obj::Shm(n) = &fdo.obj {
                        if !pr.summary.mapped.contains(n) {
                            pr.summary.mapped.push(n.clone());
                        }
                    }
                }
            }
            if !quiet || err.is_some() {
                s.out.event(&e);
            }
        } else if nr == libc::SYS_munmap || nr == libc::SYS_mprotect || nr == libc::SYS_mremap {
            if err.is_some() {
                return;
            }
            let (addr, len) = (a[0], a[1]);
            let mut s = self.lock();
            let Some(pr) = s.procs.get_mut(&p) else {
                return;
            };
            let touched: Vec<String> = pr
                .maps
                .iter()
                .filter(|m| m.start < addr.saturating_add(len) && addr < m.end)
                .filter(|m| matches!(m.obj, Obj::Shm(_)))
                .map(|m| m.obj.label())
                .collect();
            if nr == libc::SYS_munmap {
                unmap(&mut pr.maps, addr, len);
            } else if nr == libc::SYS_mprotect {
                for m in pr.maps.iter_mut() {
                    if m.start < addr.saturating_add(len) && addr < m.end {
                        m.prot = a[2] as i32;
                    }
                }
            } else {
                // mremap(old, old_len, new_len, flags, new_addr): move or
                // resize the one mapping that starts at `old`.
                let new_len = a[2];
                if let Some(m) = pr.maps.iter_mut().find(|m| m.start == addr) {
                    m.start = ret as u64;
                    m.end = (ret as u64).saturating_add(new_len);
                }
            }
            if touched.is_empty() {
                return;
            }
            let what = if nr == libc::SYS_munmap {
                "munmap"
            } else if nr == libc::SYS_mprotect {
                "mprotect"
            } else {
                "mremap"
            };
            let extra = if nr == libc::SYS_mprotect {
                format!(", {}", explain::prot(a[2] as i32))
            } else {
                String::new()
            };
            let e = Event::new(
                p,
                what,
                format!(
                    "{what}({addr:#x}, {len}{extra}) = {}   {}",
                    ret_text(ret, err),
                    touched.join(", ")
                ),
            )
            .with("addr", format!("{addr:#x}"))
            .with("len", len)
            .with("name", touched.join(", "));
            s.out.event(&e);
        } else if nr == libc::SYS_unlinkat || is_unlink_legacy {
            let Some(path) = &c.path else { return };
            if nr == libc::SYS_unlinkat && a[2] as i32 & libc::AT_REMOVEDIR != 0 {
                return;
            }
            self.on_unlink(p, path, err);
        } else if nr == libc::SYS_linkat
            || nr == libc::SYS_renameat2
            || nr == libc::SYS_renameat
            || is_link_legacy
        {
            // glibc's sem_open makes a semaphore in a temporary file and
            // links it to sem.NAME.
            let (Some(from), Some(to)) = (&c.path, &c.path2) else {
                return;
            };
            let Some(name) = sem_name(to) else { return };
            if !self.temps.contains(from) {
                return;
            }
            let mut e = Event::new(
                p,
                "sem_open",
                format!("sem_open(\"{}\", O_CREAT) = created", esc(&name)),
            )
            .with("name", name.as_str())
            .with("created", true);
            let mut s = self.lock();
            if let Some(errno) = err {
                // EEXIST: another process created it first; glibc opens
                // that one. Not a failure of the program.
                if errno == libc::EEXIST {
                    return;
                }
                e = s.failed(e, errno);
            } else {
                s.created(p, to, "sem", &name, format!("sem {name}"));
                if let Some(pr) = s.procs.get_mut(&p) {
                    // What glibc made of the temporary file is this
                    // semaphore now.
                    for fd in pr.fds.values_mut() {
                        if fd.obj == Obj::SemTemp {
                            fd.obj = Obj::Sem(name.clone());
                        }
                    }
                    for m in &mut pr.maps {
                        if m.obj == Obj::SemTemp {
                            m.obj = Obj::Sem(name.clone());
                        }
                    }
                }
            }
            s.out.event(&e);
        } else if nr == libc::SYS_pipe2 || is_pipe_legacy {
            if let Some(errno) = err {
                let mut s = self.lock();
                let e = s.failed(
                    Event::new(
                        p,
                        "pipe",
                        format!("pipe() = {}", ret_text(ret, Some(errno))),
                    ),
                    errno,
                );
                s.out.event(&e);
                return;
            }
            let Some((r, w)) = sys::read_fd_pair(Pid::from_raw(tid), a[0]) else {
                return;
            };
            let e = Event::new(p, "pipe", format!("pipe() = [{r} read end, {w} write end]"))
                .with("read_fd", r)
                .with("write_fd", w);
            self.lock().out.event(&e);
        } else if nr == libc::SYS_mknodat || is_mknod_legacy {
            let mode = if nr == libc::SYS_mknodat { a[2] } else { a[1] } as u32;
            if mode & libc::S_IFMT != libc::S_IFIFO {
                return;
            }
            let Some(path) = &c.path else { return };
            let mut e = Event::new(
                p,
                "mkfifo",
                format!(
                    "mkfifo(\"{}\", {}) = {}",
                    esc(path),
                    explain::mode(mode & 0o7777),
                    ret_text(ret, err)
                ),
            )
            .with("path", path.as_str())
            .with("mode", format!("{:04o}", mode & 0o7777));
            let mut s = self.lock();
            if let Some(errno) = err {
                e = s.failed(e, errno);
            } else {
                s.created(p, path, "fifo", path, format!("FIFO {path}"));
            }
            s.out.event(&e);
        }
    }

    /// A shared futex wait ended: on which object, for how long, and how.
    fn on_futex_wait(&self, p: i32, c: &Pending, err: Option<i32>) {
        let addr = c.args[0];
        let mut s = self.lock();
        let Some(m) = s
            .procs
            .get(&p)
            .and_then(|pr| pr.maps.iter().find(|m| m.start <= addr && addr < m.end))
        else {
            return;
        };
        let name = match &m.obj {
            Obj::Shm(n) => n.clone(),
            Obj::Sem(n) => format!("sem {n}"),
            o => o.label(),
        };
        let offset = m.offset + (addr - m.start);
        let how = match err {
            None => "woken",
            Some(libc::ETIMEDOUT) => "timed out",
            Some(libc::EINTR) => "interrupted by a signal",
            // EAGAIN: the word had already changed; it never slept.
            Some(_) => return,
        };
        let waited = c.at.elapsed();
        let e = Event::new(
            p,
            "futex_wait",
            format!(
                "waited on {name} offset {offset} for {:.3} ms: {how}",
                waited.as_secs_f64() * 1e3
            ),
        )
        .with("name", name)
        .with("offset", offset)
        .with(
            "waited_ns",
            u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX),
        )
        .with("ended", how);
        s.out.event(&e);
    }

    fn on_open(&mut self, p: i32, c: &Pending, flags: i32, mode: u32, ret: i64, err: Option<i32>) {
        let Some(path) = &c.path else { return };
        let access = flags & libc::O_ACCMODE;
        let cloexec = flags & libc::O_CLOEXEC != 0;
        let creating = flags & libc::O_CREAT != 0;
        if let Some(name) = shm_name(path) {
            // A semaphore's file?
            if let Some(sem) = sem_name(path) {
                let temp = c.before.is_none()
                    && creating
                    && flags & libc::O_EXCL != 0
                    && is_glibc_temp_name(path);
                if temp {
                    if err.is_none() {
                        self.temps.insert(path.clone());
                        self.track(p, ret as i32, Obj::SemTemp, access, cloexec);
                    }
                    return;
                }
                if let Some(errno) = err {
                    // glibc tries to open first and creates on ENOENT.
                    if errno == libc::ENOENT {
                        return;
                    }
                    let mut e = Event::new(
                        p,
                        "sem_open",
                        format!(
                            "sem_open(\"{}\") = -1 {}",
                            esc(&sem),
                            explain::errno_name(errno)
                        ),
                    )
                    .with("name", sem.as_str());
                    let mut s = self.lock();
                    e = s.failed(e, errno);
                    s.out.event(&e);
                    return;
                }
                self.track(p, ret as i32, Obj::Sem(sem.clone()), access, cloexec);
                let e = Event::new(
                    p,
                    "sem_open",
                    format!("sem_open(\"{}\") = opened", esc(&sem)),
                )
                .with("name", sem.as_str())
                .with("created", false);
                self.lock().out.event(&e);
                return;
            }
            let umask = umask_of(p).unwrap_or(0o022);
            let mut e = Event::new(
                p,
                "shm_open",
                if creating {
                    format!(
                        "shm_open(\"{}\", {}, {}) = {}",
                        esc(&name),
                        explain::open_flags(flags),
                        explain::mode(mode & 0o7777),
                        ret_text(ret, err)
                    )
                } else {
                    format!(
                        "shm_open(\"{}\", {}) = {}",
                        esc(&name),
                        explain::open_flags(flags),
                        ret_text(ret, err)
                    )
                },
            )
            .with("name", name.as_str())
            .with("flags", explain::open_flags(flags));
            if creating {
                let given = mode & 0o7777 & !umask;
                e = e
                    .with("mode", format!("{:04o}", mode & 0o7777))
                    .with(
                        "mode_rwx",
                        shm::Mode::from_bits_truncate(mode & 0o777).symbolic(),
                    )
                    .with("umask", format!("{umask:04o}"))
                    .with("mode_given", format!("{given:04o}"));
            }
            let mut s = self.lock();
            if let Some(errno) = err {
                let ctx = OpenCtx {
                    name: &name,
                    flags,
                    mode,
                    umask,
                    uid: euid_of(p).unwrap_or(u32::MAX),
                    obj: c.before.or_else(|| facts(path)),
                };
                e = s
                    .failed(e, errno)
                    .explained(explain::explain_open(errno, &ctx));
                s.out.event(&e);
                return;
            }
            let fd = ret as i32;
            e = e.with("fd", fd);
            if creating && c.before.is_none() {
                let given = mode & 0o7777 & !umask;
                e = e.with("created", true);
                e.line
                    .push_str(&format!("   created with mode {}", explain::mode(given)));
                e = e.explained(explain::explain_umask(mode & 0o7777, umask));
                s.created(p, path, "shm", &name, name.clone());
            }
            if let Some(pr) = s.procs.get_mut(&p) {
                pr.fds.insert(
                    fd,
                    Fd {
                        obj: Obj::Shm(name),
                        access,
                        cloexec,
                    },
                );
            }
            s.out.event(&e);
            return;
        }
        // A FIFO anywhere?
        let is_fifo = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo());
        if !is_fifo {
            return;
        }
        let dir = match access {
            libc::O_RDONLY => "reading",
            libc::O_WRONLY => "writing",
            _ => "reading and writing",
        };
        let mut e = Event::new(
            p,
            "fifo_open",
            format!(
                "open FIFO \"{}\" for {dir} = {}",
                esc(path),
                ret_text(ret, err)
            ),
        )
        .with("path", path.as_str())
        .with("flags", explain::open_flags(flags));
        let mut s = self.lock();
        if let Some(errno) = err {
            e = s.failed(e, errno);
        } else if let Some(pr) = s.procs.get_mut(&p) {
            pr.fds.insert(
                ret as i32,
                Fd {
                    obj: Obj::Fifo(path.clone()),
                    access,
                    cloexec,
                },
            );
            e = e.with("fd", ret);
        }
        s.out.event(&e);
    }

    fn track(&self, p: i32, fd: i32, obj: Obj, access: i32, cloexec: bool) {
        if let Some(pr) = self.lock().procs.get_mut(&p) {
            pr.fds.insert(
                fd,
                Fd {
                    obj,
                    access,
                    cloexec,
                },
            );
        }
    }

    fn on_unlink(&mut self, p: i32, path: &str, err: Option<i32>) {
        let (event, name, label) = if let Some(sem) = sem_name(path) {
            if self.temps.remove(path) {
                return;
            }
            ("sem_unlink", sem.clone(), format!("sem {sem}"))
        } else if let Some(n) = shm_name(path) {
            ("shm_unlink", n.clone(), n)
        } else if self
            .lock()
            .objects
            .get(path)
            .is_some_and(|r| r.kind == "fifo")
        {
            ("unlink", path.to_string(), format!("FIFO {path}"))
        } else {
            return;
        };
        let mut e = Event::new(
            p,
            event,
            format!(
                "{event}(\"{}\") = {}",
                esc(&name),
                ret_text(if err.is_some() { -1 } else { 0 }, err)
            ),
        )
        .with("name", name.as_str());
        let mut s = self.lock();
        if let Some(errno) = err {
            e = s
                .failed(e, errno)
                .explained(explain::explain_unlink(errno, &name));
        } else if let Some(pr) = s.procs.get_mut(&p) {
            pr.summary.unlinked.push(label);
        }
        s.out.event(&e);
    }

    /// The summary: per process, and what this run created that is still
    /// there.
    fn finish(self) -> Summary {
        let mut s = self.lock();
        let mut procs = std::mem::take(&mut s.finished);
        // Processes never seen to end (should not happen) still count.
        let left: Vec<ProcSummary> = s.procs.values().map(|p| p.summary.clone()).collect();
        procs.extend(left);
        let order = s.order.clone();
        procs.sort_by_key(|p| order.iter().position(|&o| o == p.pid).unwrap_or(usize::MAX));
        let mut summary = std::mem::take(&mut s.summary);
        summary.processes = procs;
        for (path, rec) in &s.objects {
            let Some(creator) = rec.creator else { continue };
            let Ok(md) = std::fs::symlink_metadata(path) else {
                continue;
            };
            summary.left_behind.push(Leftover {
                kind: rec.kind,
                name: rec.name.clone(),
                path: path.clone(),
                size: md.len(),
                mode: explain::mode(md.mode() & 0o7777),
                uid: md.uid(),
                creator,
                remove: format!("rm {}", shell_quote(path)),
            });
        }
        summary.judge();
        let out = &mut s.out;
        out.summary(&summary);
        summary
    }
}

/// What a forked child inherits: its descriptors and mappings of shared
/// objects, in words.
fn inherited(p: &Proc) -> (Vec<String>, Vec<String>) {
    let mut fds: Vec<(i32, String)> = p
        .fds
        .iter()
        .filter(|(_, fd)| !matches!(fd.obj, Obj::SemTemp))
        .map(|(n, fd)| (*n, format!("fd {n} ({})", fd.obj.label())))
        .collect();
    fds.sort();
    let maps = p
        .maps
        .iter()
        .filter(|m| matches!(m.obj, Obj::Shm(_)))
        .map(|m| format!("the mapping of {} at {:#x}", m.obj.label(), m.start))
        .collect();
    (fds.into_iter().map(|(_, s)| s).collect(), maps)
}

/// A `futex` call that sleeps on a shared word (what the filter stops at).
fn is_shared_futex_wait(nr: i64, args: &[u64; 6]) -> bool {
    let op = args[1] as u32;
    nr == libc::SYS_futex && op & 128 == 0 && matches!(op & 0x7f, 0 | 9)
}

/// Removes `[addr, addr + len)` from `maps`, splitting what it cuts.
fn unmap(maps: &mut Vec<Map>, addr: u64, len: u64) {
    let end = addr.saturating_add(len);
    let mut out = Vec::with_capacity(maps.len());
    for m in maps.drain(..) {
        if m.end <= addr || end <= m.start {
            out.push(m);
            continue;
        }
        if m.start < addr {
            out.push(Map {
                end: addr,
                ..m.clone()
            });
        }
        if end < m.end {
            out.push(Map {
                start: end,
                offset: m.offset + (end - m.start),
                ..m.clone()
            });
        }
    }
    *maps = out;
}

/// `-1 ENOENT` or the value.
fn ret_text(ret: i64, err: Option<i32>) -> String {
    match err {
        Some(e) => format!("-1 {}", explain::errno_name(e)),
        None => ret.to_string(),
    }
}

/// Escapes a name for printing.
fn esc(s: &str) -> String {
    shm::listing::escape_bytes(s.as_bytes())
}

/// `/dev/shm/NAME` → `/NAME` (one component only).
fn shm_name(path: &str) -> Option<String> {
    let rest = path.strip_prefix(shm::SHM_DIR)?.strip_prefix('/')?;
    (!rest.is_empty() && !rest.contains('/')).then(|| format!("/{rest}"))
}

/// `/dev/shm/sem.NAME` → `/NAME`.
fn sem_name(path: &str) -> Option<String> {
    let rest = path.strip_prefix(shm::SHM_DIR)?.strip_prefix("/sem.")?;
    (!rest.is_empty() && !rest.contains('/')).then(|| format!("/{rest}"))
}

/// glibc's `sem_open` temporary's name: `sem.XXXXXX` (six characters
/// from `__gen_tempname`).
fn is_glibc_temp_name(path: &str) -> bool {
    path.strip_prefix(shm::SHM_DIR)
        .and_then(|r| r.strip_prefix("/sem."))
        .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `/NAME` → `/dev/shm/NAME`.
fn shm_path(name: &str) -> String {
    format!("{}/{}", shm::SHM_DIR, name.trim_start_matches('/'))
}

/// What `lstat` says about `path` (never follows a link, never opens).
fn facts(path: &str) -> Option<ObjFacts> {
    let md = std::fs::symlink_metadata(path).ok()?;
    Some(ObjFacts {
        uid: md.uid(),
        mode: md.mode() & 0o7777,
        size: md.len(),
    })
}

/// Resolves a path argument of `tid` (process `p`): absolute as is,
/// relative to the current directory or to the directory `dirfd` names.
fn resolve(p: i32, dirfd: i32, tid: Pid, addr: u64) -> Option<String> {
    let raw = sys::read_c_string(tid, addr, libc::PATH_MAX as usize)?;
    let s = String::from_utf8_lossy(&raw).into_owned();
    if s.starts_with('/') {
        return Some(s);
    }
    let base = if dirfd == libc::AT_FDCWD {
        std::fs::read_link(format!("/proc/{p}/cwd")).ok()?
    } else {
        std::fs::read_link(format!("/proc/{p}/fd/{dirfd}")).ok()?
    };
    Some(base.join(Path::new(&s)).to_string_lossy().into_owned())
}

fn exe_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| esc(&p.to_string_lossy()))
        .unwrap_or_else(|_| "?".into())
}

/// A field of `/proc/PID/status`.
fn status_field(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

fn tgid_of(pid: i32) -> Option<i32> {
    shm::users::process_info(pid).map(|i| i.tgid)
}

fn umask_of(pid: i32) -> Option<u32> {
    u32::from_str_radix(&status_field(pid, "Umask:")?, 8).ok()
}

fn euid_of(pid: i32) -> Option<u32> {
    shm::users::process_info(pid).map(|i| i.uid)
}

/// Single-quotes `s` for a shell if it needs it.
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The watcher thread: every 100 ms, is every traced process blocked in a
/// call that only another process can end (a pipe or FIFO read, a FIFO
/// open, a futex wait)? After `hang_after` of that, say who waits on what
/// and who could end it; with `kill_on_hang`, end the run.
/// Each blocked process: its pid, the call it sleeps in, the call's first
/// arguments.
type Blocked = Vec<(i32, i64, [u64; 3])>;

fn watch_hangs(shared: &Mutex<Shared>, done: &AtomicBool, opts: &Options) {
    let mut since: Option<(Instant, Blocked)> = None;
    let mut reported = false;
    while !done.load(Ordering::Acquire) {
        std::thread::park_timeout(Duration::from_millis(100));
        if done.load(Ordering::Acquire) {
            break;
        }
        let pids: Vec<i32> = {
            let s = shared.lock().unwrap_or_else(|e| e.into_inner());
            s.procs.keys().copied().collect()
        };
        let Some(blocked) = all_blocked(&pids) else {
            since = None;
            reported = false;
            continue;
        };
        match &since {
            Some((_, prev)) if *prev == blocked => {}
            _ => {
                since = Some((Instant::now(), blocked.clone()));
                reported = false;
            }
        }
        let Some((t0, _)) = &since else { continue };
        if reported || t0.elapsed() < opts.hang_after {
            continue;
        }
        reported = true;
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        s.summary.hangs += 1;
        let mut e = Event::new(
            blocked[0].0,
            "hang",
            format!(
                "--- hang: every traced process has waited {:.1} s ---",
                t0.elapsed().as_secs_f64()
            ),
        );
        let mut waits = Vec::new();
        for &(pid, nr, args) in &blocked {
            if let Some(w) = describe_wait(&s, pid, nr, args, &pids) {
                waits.push(serde_json::json!({ "pid": pid, "waits": w.clone() }));
                e.explain.push(w);
            }
        }
        e = e.with("waits", waits);
        if opts.kill_on_hang {
            e.explain
                .push("--kill-on-hang: ending the run (SIGKILL to every traced process)".into());
        }
        s.out.event(&e);
        drop(s);
        if opts.kill_on_hang {
            for &pid in &pids {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// The call each process sleeps in, if every one sleeps in a call that
/// waits for another process (and at least one waits on a pipe, a FIFO
/// or a futex rather than only for a child).
fn all_blocked(pids: &[i32]) -> Option<Blocked> {
    if pids.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    let mut real = false;
    for &pid in pids {
        let st = shm::process::stat(pid).ok()?;
        if st.state != b'S' {
            return None;
        }
        let (nr, args) = sys::current_syscall(pid)?;
        let waiting_for_peer = nr == libc::SYS_read
            || nr == libc::SYS_readv
            || nr == libc::SYS_pread64
            || nr == libc::SYS_futex
            || nr == libc::SYS_openat;
        #[cfg(target_arch = "x86_64")]
        let waiting_for_peer = waiting_for_peer || nr == libc::SYS_open;
        let waiting_for_child = nr == libc::SYS_wait4 || nr == libc::SYS_waitid;
        if !(waiting_for_peer || waiting_for_child) {
            return None;
        }
        real |= waiting_for_peer;
        out.push((pid, nr, args));
    }
    real.then_some(out)
}

/// One sentence: what `pid` waits for and who could end it.
fn describe_wait(s: &Shared, pid: i32, nr: i64, args: [u64; 3], pids: &[i32]) -> Option<String> {
    if nr == libc::SYS_wait4 || nr == libc::SYS_waitid {
        return Some(format!("pid {pid} waits for a child to exit"));
    }
    if nr == libc::SYS_futex {
        let addr = args[0];
        let m = s
            .procs
            .get(&pid)?
            .maps
            .iter()
            .find(|m| m.start <= addr && addr < m.end);
        return Some(match m {
            Some(m) => {
                let name = match &m.obj {
                    Obj::Shm(n) | Obj::Sem(n) => n.clone(),
                    o => o.label(),
                };
                explain::explain_hang_futex(pid, &name, m.offset + (addr - m.start))
            }
            None => format!(
                "pid {pid} waits on a futex in its own memory (a lock or condition variable of its threads)"
            ),
        });
    }
    let fifo_open = nr == libc::SYS_openat;
    #[cfg(target_arch = "x86_64")]
    let fifo_open = fifo_open || nr == libc::SYS_open;
    if fifo_open {
        let addr = if nr == libc::SYS_openat {
            args[1]
        } else {
            args[0]
        };
        let flags = if nr == libc::SYS_openat {
            args[2]
        } else {
            args[1]
        } as i32;
        let path = sys::read_c_string(Pid::from_raw(pid), addr, libc::PATH_MAX as usize)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| "?".into());
        return Some(explain::explain_hang_fifo_open(
            pid,
            &esc(&path),
            flags & libc::O_ACCMODE == libc::O_WRONLY,
        ));
    }
    // A read: of which pipe, and who holds its write end?
    let fd = args[0] as i32;
    let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let target = target.to_string_lossy().into_owned();
    if !target.starts_with("pipe:") {
        return Some(format!("pid {pid} reads fd {fd} ({})", esc(&target)));
    }
    let mut writers = Vec::new();
    for &other in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{other}/fd")) else {
            continue;
        };
        for ent in dir.flatten() {
            let Ok(t) = std::fs::read_link(ent.path()) else {
                continue;
            };
            if t.to_string_lossy() != target {
                continue;
            }
            let Some(n) = ent.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if fd_access(other, n) == Some(libc::O_WRONLY) {
                writers.push((other, n));
            }
        }
    }
    writers.sort_unstable();
    Some(explain::explain_hang_pipe(pid, fd, &writers))
}

/// The `O_ACCMODE` part of `/proc/PID/fdinfo/FD`'s flags.
fn fd_access(pid: i32, fd: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
    Some(i32::from_str_radix(flags, 8).ok()? & libc::O_ACCMODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_dev_shm_only() {
        assert_eq!(shm_name("/dev/shm/x").as_deref(), Some("/x"));
        assert_eq!(shm_name("/dev/shm/a/b"), None);
        assert_eq!(shm_name("/tmp/x"), None);
        assert_eq!(sem_name("/dev/shm/sem.s").as_deref(), Some("/s"));
        assert_eq!(sem_name("/dev/shm/x"), None);
    }

    #[test]
    fn unmap_splits_what_it_cuts() {
        let m = Map {
            start: 0x1000,
            end: 0x5000,
            obj: Obj::Shm("/x".into()),
            offset: 0,
            prot: libc::PROT_READ,
        };
        let mut maps = vec![m];
        unmap(&mut maps, 0x2000, 0x1000);
        assert_eq!(maps.len(), 2);
        assert_eq!((maps[0].start, maps[0].end), (0x1000, 0x2000));
        assert_eq!(
            (maps[1].start, maps[1].end, maps[1].offset),
            (0x3000, 0x5000, 0x2000)
        );
        unmap(&mut maps, 0, u64::MAX);
        assert!(maps.is_empty());
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/dev/shm/x"), "/dev/shm/x");
        assert_eq!(shell_quote("/dev/shm/a b'c"), r"'/dev/shm/a b'\''c'");
    }
}
