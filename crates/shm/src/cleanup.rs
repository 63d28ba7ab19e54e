//! Removing this process's objects on Ctrl-C, SIGTERM and SIGHUP.
//!
//! Every object a process creates registers its path here (regions do so
//! automatically; named semaphores and FIFOs register themselves) and
//! unregisters it when removed the normal way. [`install`] starts a thread
//! that waits for SIGINT/SIGTERM/SIGHUP (through `signal-hook`, so the
//! signal handler itself only writes to a pipe); on a signal it kills the
//! registered child processes, removes the registered paths, and then dies
//! of the same signal, so the parent shell sees the conventional status.

use crate::ShmName;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Default)]
struct Registry {
    paths: Vec<PathBuf>,
    children: Vec<i32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    paths: Vec::new(),
    children: Vec::new(),
});

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    f(&mut REGISTRY.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Remove `path` if the process is interrupted.
pub fn register_path(path: impl AsRef<Path>) {
    let p = path.as_ref().to_path_buf();
    with(|r| r.paths.push(p));
}

/// `path` was removed (or handed over): forget it.
pub fn unregister_path(path: impl AsRef<Path>) {
    let p = path.as_ref();
    with(|r| {
        if let Some(i) = r.paths.iter().rposition(|q| q == p) {
            r.paths.swap_remove(i);
        }
    });
}

/// Remove the shared-memory object `name` if interrupted.
pub fn register_shm(name: &ShmName) {
    register_path(name.path());
}

/// Forget `name`.
pub fn unregister_shm(name: &ShmName) {
    unregister_path(name.path());
}

/// Kill child `pid` (SIGKILL) if interrupted. Only
/// [`crate::process::Child`] calls it, when a child starts.
pub(crate) fn register_child(pid: i32) {
    with(|r| r.children.push(pid));
}

/// Child `pid` was reaped: forget it. Only [`crate::process::Child`]
/// calls it, when it reaps.
pub(crate) fn unregister_child(pid: i32) {
    with(|r| r.children.retain(|&c| c != pid));
}

/// Kills registered children and removes registered paths now.
pub fn run_now() {
    let (paths, children) = with(|r| {
        (
            std::mem::take(&mut r.paths),
            std::mem::take(&mut r.children),
        )
    });
    for pid in children {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// What [`on_signal`] registered, run by the signal thread after the
/// objects are removed and before the process dies.
static HOOKS: std::sync::Mutex<Vec<fn()>> = std::sync::Mutex::new(Vec::new());

/// Registers `hook` to run when a signal ends the process through the
/// clean-up thread (after the registered objects are removed, before the
/// process dies), e.g. to give a terminal back its normal mode. Hooks run
/// on the clean-up thread, in registration order, once; one that panics is
/// skipped. Call [`clear_on_signal`] when what it undoes has been undone.
pub fn on_signal(hook: fn()) {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner()).push(hook);
}

/// Forgets every hook [`on_signal`] registered.
pub fn clear_on_signal() {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Set by the signal thread the moment a signal arrives, before it kills
/// the children: from then on the process is going to die of that signal.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a signal has arrived and the clean-up thread is ending the
/// process. A main thread that sees its workers die (killed by that very
/// clean-up) must not report them as failures and exit first: it should
/// wait for the signal to end the process ([`wait_if_interrupted`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Acquire)
}

/// If [`interrupted`], blocks forever: the clean-up thread is removing the
/// objects and will end the process with the signal's own status.
pub fn wait_if_interrupted() {
    while interrupted() {
        std::thread::park();
    }
}

/// Starts the signal thread (once per process; later calls do nothing),
/// and installs [`crate::fault::report_sigbus`].
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use std::io::Write as _;
    static ONCE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if ONCE.get().is_some() {
        return Ok(());
    }
    crate::fault::report_sigbus()?;
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let _ = ONCE.set(());
    std::thread::Builder::new()
        .name("shmlab-cleanup".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                INTERRUPTED.store(true, std::sync::atomic::Ordering::Release);
                run_now();
                let hooks = std::mem::take(&mut *HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
                for hook in hooks {
                    let _ = std::panic::catch_unwind(hook);
                }
                // Not `eprintln!`: with stderr closed (a reader gone) it
                // would panic this thread, and the process would never die.
                let _ = writeln!(
                    std::io::stderr(),
                    "\ninterrupted by {}: removed this run's objects",
                    signal_name(sig)
                );
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        })?;
    Ok(())
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT (Ctrl-C)",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "SIGHUP",
    }
}

/// In a child just after `fork`: default signal actions (the parent's
/// cleanup thread does not exist here) and no inherited duty to remove the
/// parent's objects. Touches no locks, so it is safe after `fork` in a
/// multi-threaded parent.
pub fn reset_in_child() {
    crate::sys::default_signals();
}
