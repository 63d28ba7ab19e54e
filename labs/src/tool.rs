//! The `shmlab` tool: `ls`, `ps`, `watch`, `inspect NAME` and `clean` for
//! what is in `/dev/shm`, whoever made it (and `repair-sem` for a wedged
//! semaphore).
//!
//! It never maps anything: headers and payloads are read with `read(2)` from
//! `/dev/shm/NAME`, so an object shorter than its header claims (truncated
//! by someone) cannot SIGBUS it, and the tool never shows up as a user of
//! what it reports on. Who uses an object comes from one scan of `/proc`
//! ([`shm::users`]); whether it is stale from the one definition,
//! [`shm::listing::Staleness`], that `ls`, `ps` and `clean` share.
//!
//! One file per command: `ls`, [`ps`], `watch` (which redraws `ps`'s
//! report), `inspect` and `clean`; `decode` reads what a region's payload
//! says (the race's regions through the lock registry, the labs' through
//! the decoders beside their payload types in [`crate::payloads`]), and
//! `snapshot` makes the private copies it reads them from. What the
//! commands share (the header summary, the creator's liveness in words,
//! one scan of `/proc` and `/dev/shm`, the one way to read an object) is
//! here.

mod clean;
pub(crate) mod decode;
mod inspect;
mod ls;
pub mod ps;
mod torture;
mod trace;
mod watch;

use crate::fmt;
use shm::listing::{Entry, Staleness};
use shm::users::Scan;
use shm::{HeaderInfo, ShmName, VERSION};
use std::io::Write;
use std::process::ExitCode;

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn fmt_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A hex + ASCII dump in the style of `xxd`/`hexdump -C`, starting at
/// offset `base`.
pub fn hexdump(bytes: &[u8], base: usize) -> String {
    let mut s = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut hex = String::new();
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => hex.push_str(&format!("{b:02x} ")),
                None => hex.push_str("   "),
            }
            if j == 7 {
                hex.push(' ');
            }
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        s.push_str(&format!("  {:08x}  {hex} |{ascii}|\n", base + i * 16));
    }
    s
}

/// Flags of `shmlab`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "shmlab",
    version,
    about = "See and tidy what is in /dev/shm: POSIX shared-memory objects and named semaphores, whoever made them"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// `shmlab` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List every entry of /dev/shm: kind, size, mode, owner, time, how many processes use it; for shmlab regions the header
    Ls,
    /// Who uses each object: the processes that map it or hold it open, its creator, the state of each lock inside a shmlab region, and whether it is stale
    Ps {
        /// Only this object (`OS`, `/OS`, `sem.NAME`)
        name: Option<ShmName>,
        /// One JSON object with the same facts
        #[arg(long)]
        json: bool,
    },
    /// The `ps` view, redrawn live in the terminal (q, Esc or Ctrl-C quits); needs a terminal: without one it exits 2
    Watch {
        /// Only this object (it may appear later)
        name: Option<ShmName>,
        /// Seconds between refreshes (0.05 to 60)
        #[arg(long, default_value = "0.5", value_parser = parse_interval)]
        interval: std::time::Duration,
    },
    /// Show one object: a region's header and payload, or a plain object's first bytes
    Inspect {
        /// Object name (`OS`, `/OS`, `sem.NAME`)
        name: ShmName,
        /// How many bytes of a plain object (or a payload) to dump
        #[arg(long, default_value_t = 64)]
        bytes: usize,
        /// Require a shmlab region of this type (e.g. lab3/destroy): exit 2 otherwise
        #[arg(long = "type", value_name = "TYPE")]
        expect_type: Option<String>,
    },
    /// Remove stale shmlab regions and sem.shmlab-* semaphores: creator dead and no live process using them; only yours
    Clean {
        /// Remove this one object instead (any kind), if it is yours and no live process uses it
        #[arg(long)]
        name: Option<ShmName>,
        /// Say what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Run PROGRAM under ptrace and explain its shared-memory, semaphore and pipe calls as they happen: every failure explained with the fix, hangs diagnosed, and at the end what it left behind. Exits with the program's status (or, with --check, 1 if anything went wrong)
    Trace {
        /// One JSON object per event, then a summary object
        #[arg(long)]
        json: bool,
        /// Exit 1 if anything was left behind, a call failed, a process was killed by a signal or a hang was found
        #[arg(long)]
        check: bool,
        /// Seconds with every traced process blocked before a hang is reported (0.1 to 3600)
        #[arg(long, default_value = "2", value_parser = parse_hang_after)]
        hang_after: std::time::Duration,
        /// End the run (SIGKILL every traced process) when a hang is found
        #[arg(long)]
        kill_on_hang: bool,
        /// Write the report to FILE instead of standard error
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// Stop at every system call (no seccomp filter): slower, for kernels that refuse the filter
        #[arg(long)]
        every_call: bool,
        /// Do not stop at shared futex waits (no "waited on /NAME" lines): faster for programs whose locks are contended
        #[arg(long)]
        no_waits: bool,
        /// Attach to this running process (and its threads) instead of starting one: every system call stops it (no seccomp filter for a running program), so it runs slower; Ctrl-C detaches
        #[arg(short = 'p', long = "pid", value_name = "PID", conflicts_with = "command", value_parser = clap::value_parser!(i32).range(1..))]
        pid: Option<i32>,
        /// The program and its arguments (after `--`)
        #[arg(
            required_unless_present = "pid",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PROGRAM"
        )]
        command: Vec<std::ffi::OsString>,
    },
    /// Torture every process-shared lock: workers update a journaled record under the lock while holders are killed (SIGKILL), stopped (SIGSTOP) and moved between CPUs; survivors must recover and repair the record. Reports acquisitions, faults, recoveries and their latency, repairs, lost and inconsistent updates, and wedges, per lock
    Torture {
        /// Locks, comma-separated, or `all`: the registry's locks that live in the region
        #[arg(long, default_value = "all", value_name = "LIST")]
        lock: String,
        /// Worker processes (2 to 32; default: twice the CPUs, at least 4)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=32))]
        procs: Option<u32>,
        /// How long to torture each lock
        #[arg(long, default_value = "10s", value_parser = parse_torture_duration)]
        duration: std::time::Duration,
        /// Mean time between kills (0: none)
        #[arg(long, default_value = "5ms", value_parser = fmt::parse_duration)]
        kill_every: std::time::Duration,
        /// Mean time between stops (0: none)
        #[arg(long, default_value = "50ms", value_parser = fmt::parse_duration)]
        stop_every: std::time::Duration,
        /// How long a stopped worker stays stopped
        #[arg(long, default_value = "20ms", value_parser = fmt::parse_duration)]
        stop_for: std::time::Duration,
        /// Mean time between CPU moves of a worker (0: none)
        #[arg(long, default_value = "20ms", value_parser = fmt::parse_duration)]
        move_every: std::time::Duration,
        /// Most spin_loop rounds held between the record's writes and outside the lock (0 to 100000)
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=100_000))]
        hold: u32,
        /// Seed of the faults (the same seed, the same sequence of faults)
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// One JSON object with a report per lock
        #[arg(long)]
        json: bool,
        /// Exit 1 if any lock failed: a lost or inconsistent update, a recovering lock that wedged, or a result that proves nothing
        #[arg(long)]
        check: bool,
    },
    /// Print a shell completion script for every shmlab binary (the labs and this tool): `shmlab completions bash > ~/.local/share/bash-completion/completions/shmlab`, or source it
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Write a man page for every shmlab binary (NAME.1) into DIR, generated from the same flag definitions
    Manpages {
        /// The directory to write them to (created if missing)
        dir: std::path::PathBuf,
    },
    /// Post a named semaphore left at 0 by a holder that died (see lab8-crash). Unsafe in
    /// general: if the holder is alive, two processes enter the critical section
    RepairSem {
        /// The semaphore's name, as given to sem_open (`/shmlab-race-sem-123-0`) or its file (`sem.NAME`)
        name: String,
        /// The pid recorded as its last holder; refused while that process is alive
        #[arg(long, value_name = "PID")]
        holder: i32,
    },
}

fn parse_hang_after(s: &str) -> Result<std::time::Duration, String> {
    let d = fmt::parse_seconds(s)?;
    if d < std::time::Duration::from_millis(100) || d > std::time::Duration::from_secs(3600) {
        return Err(format!("{s:?} seconds is out of range; use 0.1 to 3600"));
    }
    Ok(d)
}

fn parse_torture_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = fmt::parse_duration(s)?;
    if d < std::time::Duration::from_millis(100) || d > std::time::Duration::from_secs(3600) {
        return Err(format!("{s:?} is out of range; use 100ms to 1h"));
    }
    Ok(d)
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = fmt::parse_seconds(s)?;
    if d < std::time::Duration::from_millis(50) || d > std::time::Duration::from_secs(60) {
        return Err(format!("{s:?} seconds is out of range; use 0.05 to 60"));
    }
    Ok(d)
}

/// Runs the tool.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Cmd::Watch { name, interval } = &cli.cmd {
        return watch::watch(name.as_ref(), *interval);
    }
    if let Cmd::Trace {
        json,
        check,
        hang_after,
        kill_on_hang,
        output,
        every_call,
        no_waits,
        pid,
        command,
    } = &cli.cmd
    {
        let opts = shm_trace::Options {
            hang_after: *hang_after,
            kill_on_hang: *kill_on_hang,
            every_call: *every_call,
            waits: !*no_waits,
        };
        return trace::trace(command, *pid, &opts, *json, *check, output.as_deref());
    }
    let out = &mut std::io::stdout().lock();
    match &cli.cmd {
        Cmd::Ls => ls::ls(out),
        Cmd::Ps { name, json } => {
            let report = ps::collect(name.as_ref())?;
            if *json {
                writeln!(out, "{}", crate::fmt::json_pretty(&report)?)?;
            } else {
                for l in report.lines() {
                    writeln!(out, "{l}")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Watch { .. } | Cmd::Trace { .. } => unreachable!("handled above"),
        Cmd::Torture {
            lock,
            procs,
            duration,
            kill_every,
            stop_every,
            stop_for,
            move_every,
            hold,
            seed,
            json,
            check,
        } => {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
            let setup = race::torture::Setup {
                procs: procs.unwrap_or((2 * cpus).clamp(4, 32)),
                duration: *duration,
                kill_every: *kill_every,
                stop_every: *stop_every,
                stop_for: *stop_for,
                move_every: *move_every,
                hold: *hold,
                seed: *seed,
                wedge_after: (*stop_for * 2).max(std::time::Duration::from_secs(1)),
            };
            torture::torture(out, lock, &setup, *json, *check)
        }
        Cmd::Inspect {
            name,
            bytes,
            expect_type,
        } => inspect::inspect(out, name, *bytes, expect_type.as_deref()),
        Cmd::Clean { name, dry_run } => match name {
            Some(n) => clean::clean_one(out, n, *dry_run),
            None => clean::clean_stale(out, *dry_run),
        },
        Cmd::RepairSem { name, holder } => repair_sem(out, name, *holder),
        Cmd::Completions { shell } => {
            for (name, mut cmd) in crate::commands::all() {
                clap_complete::generate(*shell, &mut cmd, name, out);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Manpages { dir } => {
            use anyhow::Context;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, cmd) in crate::commands::all() {
                let path = dir.join(format!("{name}.1"));
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd)
                    .render(&mut page)
                    .with_context(|| format!("cannot render the man page of {name}"))?;
                std::fs::write(&path, page)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(out, "{}", path.display())?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn header_summary(h: &HeaderInfo, staleness: &Staleness) -> String {
    let state = h
        .init_state()
        .map_or_else(|| format!("state {}?", h.state), |s| s.to_string());
    let alive = creator_words(staleness, "STALE");
    let version = if h.version == VERSION {
        String::new()
    } else {
        format!(" v{}", h.version)
    };
    format!(
        "{}{version} {state}, creator pid {} {alive}",
        fmt::escape_str(&h.type_name),
        h.creator_pid
    )
}

/// The creator's liveness in words: `alive`, `unknown (...)`,
/// `gone: <stale>` / `zombie: <stale>` (a zombie is dead too), or `gone,
/// but mapped by pid N (cmd)` when a live process still uses the object.
fn creator_words(staleness: &Staleness, stale: &str) -> String {
    use shm::process::Liveness;
    match staleness {
        Staleness::CreatorMayLive {
            liveness: Liveness::Unknown,
            ..
        } => "unknown (its /proc entry is hidden: treated as alive, never cleaned)".into(),
        Staleness::CreatorMayLive { liveness, .. } => liveness.to_string(),
        Staleness::InUse {
            liveness,
            user,
            users,
            ..
        } => format!(
            "{liveness}, but {} by pid {} ({}){}: not stale",
            if user.mapped() { "mapped" } else { "held open" },
            user.pid,
            fmt::escape_str(&user.comm),
            if *users > 1 {
                format!(" and {} more", users - 1)
            } else {
                String::new()
            }
        ),
        Staleness::Stale { liveness, .. } => format!("{liveness}: {stale}"),
        other => other.reason(),
    }
}

/// One scan of `/proc` and one listing of `/dev/shm`.
fn scan_and_list() -> anyhow::Result<(Scan, Vec<Entry>)> {
    let scan = shm::users::scan().map_err(|e| anyhow::anyhow!("cannot read /proc: {e}"))?;
    let entries =
        shm::listing::list().map_err(|e| anyhow::anyhow!("cannot list {}: {e}", shm::SHM_DIR))?;
    Ok((scan, entries))
}

/// Reads up to `len` bytes from `offset` of the object's file, opened the
/// one safe way ([`shm::listing::read_entry_at`]: a regular file, no link
/// followed, nothing that can block), never more than the file holds.
fn read_at(name: &ShmName, offset: u64, len: usize) -> anyhow::Result<Vec<u8>> {
    shm::listing::read_entry_at(name.file_name().as_ref(), offset, len).map_err(|e| {
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => anyhow::Error::new(shm::Error::denied(name)),
            _ => anyhow::anyhow!(
                "cannot read {name}: {e}; check the owner and mode with `shmlab ls`"
            ),
        }
    })
}

/// `shmlab repair-sem`: the deliberate repair of a wedged named semaphore.
/// `sem_post` is only done when the value is 0 and the recorded holder is
/// dead, the two facts that make it the least unsafe it can be.
fn repair_sem(out: &mut impl Write, name: &str, holder: i32) -> anyhow::Result<ExitCode> {
    let name = match name.strip_prefix("sem.") {
        Some(rest) => format!("/{rest}"),
        None if name.starts_with('/') => name.to_string(),
        None => format!("/{name}"),
    };
    let how = shm::process::liveness(holder, 0);
    if how.may_be_alive() {
        anyhow::bail!(
            "process {holder} is {how}: it may be inside the critical section, so posting {name} would let a second process in; repair only after it has died"
        );
    }
    let sem = shm_sem::NamedSem::open(&name)?;
    let value = sem.value()?;
    if value != 0 {
        anyhow::bail!("{name} has value {value}, so it is not wedged: nothing to repair");
    }
    sem.post()?;
    writeln!(
        out,
        "posted {name} (value 0 -> 1) on behalf of dead holder {holder}; the data it guarded may be half-updated: check it"
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(fmt_time(1_700_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn hexdump_looks_like_xxd() {
        let d = hexdump(b"Hello\0", 0);
        assert!(d.contains("48 65 6c 6c 6f 00"), "{d}");
        assert!(d.contains("|Hello.|"), "{d}");
    }
}
