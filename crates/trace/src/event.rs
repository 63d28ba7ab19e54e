//! What the tracer reports: one [`Event`] per decoded call, signal, fork,
//! exec, exit or hang, written as a line (and explanation lines) or as one
//! JSON object per line, and the [`Summary`] at the end.

use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;

/// One thing a traced process did that matters to the lesson.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// The process (its thread-group id).
    pub pid: i32,
    /// What: `shm_open`, `ftruncate`, `mmap`, `munmap`, `mprotect`,
    /// `close`, `dup`, `fchmod`, `shm_unlink`, `sem_open`, `sem_unlink`,
    /// `pipe`, `mkfifo`, `fifo_open`, `fork`, `exec`, `signal`, `exit`,
    /// `hang`.
    pub event: &'static str,
    /// The decoded arguments and results (names, flags, modes, sizes).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
    /// The error the call returned (`ENOENT`), if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went wrong and how to fix it, a sentence or two each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explain: Vec<String>,
    /// The strace-like line (text output only).
    #[serde(skip)]
    pub line: String,
}

impl Event {
    /// An event with no fields yet.
    pub fn new(pid: i32, event: &'static str, line: String) -> Event {
        Event {
            pid,
            event,
            fields: Map::new(),
            error: None,
            explain: Vec::new(),
            line,
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Event {
        self.fields.insert(key.to_string(), v.into());
        self
    }

    /// Adds an explanation, if any.
    pub fn explained(mut self, why: Option<String>) -> Event {
        self.explain.extend(why);
        self
    }
}

/// Where the report goes, and how.
pub struct Output {
    out: Box<dyn Write + Send>,
    json: bool,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").field("json", &self.json).finish()
    }
}

impl Output {
    /// Text lines, or JSON objects one per line.
    pub fn new(out: Box<dyn Write + Send>, json: bool) -> Output {
        Output { out, json }
    }

    /// Writes one event.
    pub fn event(&mut self, e: &Event) {
        if self.json {
            if let Ok(s) = serde_json::to_string(e) {
                let _ = writeln!(self.out, "{s}");
            }
        } else {
            let _ = writeln!(self.out, "[pid {}] {}", e.pid, e.line);
            for why in &e.explain {
                let _ = writeln!(self.out, "[pid {}]   ! {why}", e.pid);
            }
        }
        let _ = self.out.flush();
    }

    /// Writes the summary.
    pub fn summary(&mut self, s: &Summary) {
        if self.json {
            if let Ok(v) = serde_json::to_string(&serde_json::json!({ "summary": s })) {
                let _ = writeln!(self.out, "{v}");
            }
        } else {
            let _ = write!(self.out, "{}", s.text());
        }
        let _ = self.out.flush();
    }
}

/// What one process did, for the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcSummary {
    /// Its pid.
    pub pid: i32,
    /// The program it ran last (`/proc/PID/exe` at its last exec).
    pub program: String,
    /// Objects and semaphores it created (`/NAME`, `sem /NAME`) and FIFOs.
    pub created: Vec<String>,
    /// Objects it mapped.
    pub mapped: Vec<String>,
    /// Objects and semaphores it unlinked.
    pub unlinked: Vec<String>,
    /// Descriptors to shared objects still open when it ended (the kernel
    /// closes them: harmless, but said).
    pub unclosed: Vec<String>,
    /// How it ended (`exited with status 0`, `was killed by signal ...`).
    pub ended: String,
}

/// Something this run created that is still there.
#[derive(Clone, Debug, Serialize)]
pub struct Leftover {
    /// `shm`, `sem` or `fifo`.
    pub kind: &'static str,
    /// `/NAME` (objects and semaphores) or the FIFO's path.
    pub name: String,
    /// Its path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Mode, octal and rwx.
    pub mode: String,
    /// Owner uid.
    pub uid: u32,
    /// The traced process that created it.
    pub creator: i32,
    /// The shell command that removes it.
    pub remove: String,
}

/// The end of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Per process, in the order they started.
    pub processes: Vec<ProcSummary>,
    /// What this run created that is still in `/dev/shm` (or on disk).
    pub left_behind: Vec<Leftover>,
    /// Shared-memory, semaphore and pipe calls that failed.
    pub failed_calls: u64,
    /// Processes killed by a signal.
    pub killed: u64,
    /// Hangs found.
    pub hangs: u64,
    /// One line: clean, or what to look at.
    pub verdict: String,
}

impl Summary {
    /// Whether `--check` fails: something left behind, a failed call, a
    /// process killed by a signal, or a hang.
    pub fn has_problems(&self) -> bool {
        !self.left_behind.is_empty() || self.failed_calls > 0 || self.killed > 0 || self.hangs > 0
    }

    /// Fills in the verdict.
    pub fn judge(&mut self) {
        let mut problems = Vec::new();
        if !self.left_behind.is_empty() {
            problems.push(format!("{} object(s) left behind", self.left_behind.len()));
        }
        if self.failed_calls > 0 {
            problems.push(format!("{} failed call(s)", self.failed_calls));
        }
        if self.killed > 0 {
            problems.push(format!("{} process(es) killed by a signal", self.killed));
        }
        if self.hangs > 0 {
            problems.push(format!("{} hang(s)", self.hangs));
        }
        self.verdict = if problems.is_empty() {
            "clean: everything created was removed, no call failed, no process was killed".into()
        } else {
            format!("{}: see above", problems.join(", "))
        };
    }

    /// The summary as text, like valgrind's.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::from("\n== shmlab trace summary ==\n");
        for p in &self.processes {
            let _ = writeln!(s, "pid {} ({}): {}", p.pid, p.program, p.ended);
            for (what, list) in [
                ("created", &p.created),
                ("mapped", &p.mapped),
                ("unlinked", &p.unlinked),
                ("still open at exit (closed by the kernel)", &p.unclosed),
            ] {
                if !list.is_empty() {
                    let _ = writeln!(s, "    {what}: {}", list.join(", "));
                }
            }
        }
        if self.left_behind.is_empty() {
            let _ = writeln!(s, "left behind: nothing");
        } else {
            let _ = writeln!(s, "left behind ({}):", self.left_behind.len());
            for l in &self.left_behind {
                let _ = writeln!(
                    s,
                    "    {} {}: {} bytes, mode {}, uid {}, created by pid {}; remove with: {}",
                    l.kind, l.name, l.size, l.mode, l.uid, l.creator, l.remove
                );
            }
        }
        let _ = writeln!(
            s,
            "failed calls: {}, killed by a signal: {}, hangs: {}",
            self.failed_calls, self.killed, self.hangs
        );
        let _ = writeln!(s, "verdict: {}", self.verdict);
        s
    }
}
