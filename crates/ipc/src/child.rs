//! One measured run with a forked child: the child opens its side and says
//! "ready" on a control pipe, the parent times, the child says "done" (or
//! "error" and why), and the child is always reaped or killed. The round
//! trips and streams of `measure` and the latency ladder both use it.

use crate::process::spawn;
use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

/// The child's side of the control pipe.
pub(crate) struct Ready {
    ctl: File,
}

impl Ready {
    /// "My side is open and claimed: start the clock."
    pub(crate) fn signal(&mut self) -> Result<()> {
        self.ctl
            .write_all(b"R")
            .map_err(|e| Error::io("write to the control pipe", e))
    }
}

/// The parent's side of the control pipe: `R` (ready), then `D` (done) or
/// `E` and a message.
pub(crate) struct Control {
    ctl: File,
    pid: i32,
    done: bool,
}

impl Control {
    fn expect(&mut self, want: u8, stage: &str) -> Result<()> {
        let mut b = [0u8; 1];
        match self.ctl.read(&mut b) {
            Ok(1) if b[0] == want => Ok(()),
            Ok(1) if b[0] == b'E' => {
                let mut msg = String::new();
                let _ = self.ctl.read_to_string(&mut msg);
                Err(Error::Child {
                    pid: self.pid,
                    what: format!("failed {stage}: {msg}"),
                })
            }
            Ok(_) => Err(Error::Child {
                pid: self.pid,
                what: format!("closed its control pipe {stage} without a word (it died)"),
            }),
            Err(e) => Err(Error::io("read from the control pipe", e)),
        }
    }

    /// After a failure on our side: kills the child and returns the error
    /// it reported on the control pipe, if it reported one.
    fn child_reason(&mut self, mut child: crate::Child) -> Option<Error> {
        if !crate::wait_readable(&self.ctl, Duration::from_millis(200)).unwrap_or(false) {
            return None;
        }
        let _ = child.kill();
        let mut rest = Vec::new();
        let _ = self.ctl.read_to_end(&mut rest);
        let msg = rest.strip_prefix(b"E")?;
        Some(Error::Child {
            pid: self.pid,
            what: format!("failed: {}", String::from_utf8_lossy(msg)),
        })
    }

    /// Waits for the child's "ready" (its side is open): start the clock.
    pub(crate) fn wait_ready(&mut self) -> Result<()> {
        self.expect(b'R', "before it was ready")
    }

    /// Waits for the child's "done" (every byte checked).
    pub(crate) fn wait_done(&mut self) -> Result<()> {
        if !self.done {
            self.expect(b'D', "before finishing")?;
            self.done = true;
        }
        Ok(())
    }
}

/// Forks a child running `child` (which calls `ready.signal()` once its
/// side is open), runs `parent` with `keep` (the parent's own descriptors,
/// closed in the child; `parent` calls `ctl.wait_ready()` once its own side
/// is open, then times), then collects the child's verdict
/// and exit status. Any failure kills the child: nothing is left running.
pub(crate) fn with_child<K>(
    what: &str,
    keep: K,
    child: impl FnOnce(&mut Ready) -> Result<()>,
    parent: impl FnOnce(K, &mut Control) -> Result<Duration>,
) -> Result<Duration> {
    let (ctl_r, ctl_w) = crate::pipe()?;
    let body = move || {
        let mut ready = Ready {
            ctl: File::from(ctl_w),
        };
        match child(&mut ready) {
            Ok(()) => {
                let _ = ready.ctl.write_all(b"D");
                0
            }
            Err(e) => {
                let _ = ready.ctl.write_all(format!("E{e}").as_bytes());
                1
            }
        }
    };
    // SAFETY: `keep` holds only descriptors (the callers pass pipe and FIFO
    // ends or `()`; the ladder passes a closure holding descriptors, an `Rc`
    // of an anonymous shared mapping, whose drop only unmaps this process's
    // view, and named semaphores, whose drop only `sem_close`s), never a
    // region or anything that removes a name. The child opens objects, allocates
    // (glibc's malloc is fork-safe), and reads and writes descriptors and
    // shared memory; it takes no lock another thread of ours could hold.
    let (mut child, keep) = unsafe { spawn((keep, ctl_r), body) }?;
    let (keep, ctl_r) = keep;
    let mut ctl = Control {
        ctl: File::from(ctl_r),
        pid: child.pid(),
        done: false,
    };
    // On any error below, dropping `child` kills and reaps it.
    let elapsed = match parent(keep, &mut ctl).and_then(|d| ctl.wait_done().map(|()| d)) {
        Ok(d) => d,
        // Our side failed (a closed pipe, a dead peer): if the child failed
        // first and said why, its reason is the one worth reporting.
        Err(e) => return Err(ctl.child_reason(child).unwrap_or(e)),
    };
    let exit = child
        .wait()
        .map_err(|e| Error::io(format!("waitpid({})", ctl.pid), e))?;
    if !exit.success() {
        return Err(Error::Child {
            pid: ctl.pid,
            what: format!("{exit} after a {what} run"),
        });
    }
    Ok(elapsed)
}
