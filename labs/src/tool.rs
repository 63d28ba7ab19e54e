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

mod locks;
pub mod ps;
mod snapshot;
mod watch;

use crate::fmt;
use crate::payloads::{LAB3_CHECKPOINTS, LAB3_TYPE, Lab3Payload};
use anyhow::bail;
use shm::listing::{Entry, ObjectKind, Staleness};
use shm::users::Scan;
use shm::{HEADER_SIZE, HeaderInfo, InitState, MAGIC, Mode, ShmName, VERSION};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
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
    let out = &mut std::io::stdout().lock();
    match &cli.cmd {
        Cmd::Ls => ls(out),
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
        Cmd::Watch { .. } => unreachable!("handled above"),
        Cmd::Inspect {
            name,
            bytes,
            expect_type,
        } => inspect(out, name, *bytes, expect_type.as_deref()),
        Cmd::Clean { name, dry_run } => match name {
            Some(n) => clean_one(out, n, *dry_run),
            None => clean_stale(out, *dry_run),
        },
        Cmd::RepairSem { name, holder } => repair_sem(out, name, *holder),
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

fn ls(out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let (scan, entries) = scan_and_list()?;
    if entries.is_empty() {
        writeln!(out, "{} is empty", shm::SHM_DIR)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verdicts: Vec<Staleness> = entries
        .iter()
        .map(|e| e.staleness(&scan, &entries))
        .collect();
    let rows: Vec<[String; 8]> = entries
        .iter()
        .zip(&verdicts)
        .map(|(e, verdict)| {
            let shmlab = match (&e.header, e.kind) {
                (Some(h), _) => format!("region {}", header_summary(h, verdict)),
                (None, ObjectKind::SharedMemory) if !e.readable => "(unreadable)".into(),
                (None, ObjectKind::Semaphore) if e.is_shmlab_semaphore() => {
                    "shmlab semaphore".into()
                }
                (None, ObjectKind::SharedMemory) if e.is_shmlab_object_without_header() => {
                    "shmlab object (no header)".into()
                }
                (None, ObjectKind::Other) => format!("- ({}: never opened)", e.file_kind),
                _ => "-".into(),
            };
            let name = match e.kind {
                ObjectKind::SharedMemory => format!("/{}", e.display_name()),
                _ => e.display_name(),
            };
            let users = match e.users(&scan).len() {
                0 => "-".to_string(),
                n => n.to_string(),
            };
            [
                e.kind.to_string(),
                e.size.to_string(),
                fmt::mode(e.mode),
                fmt::escape_str(&e.owner),
                fmt_time(e.mtime),
                users,
                name,
                shmlab,
            ]
        })
        .collect();
    let head = [
        "KIND",
        "SIZE",
        "MODE",
        "OWNER",
        "MODIFIED (UTC)",
        "USERS",
        "NAME",
        "SHMLAB",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |r: [&str; 8]| {
        format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {:<w4$}  {:>w5$}  {:<w6$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5],
            w6 = w[6]
        )
        .trim_end()
        .to_string()
    };
    writeln!(out, "{}", line(head))?;
    for r in &rows {
        writeln!(out, "{}", line(r.each_ref().map(String::as_str)))?;
    }
    let stale = verdicts.iter().filter(|v| v.is_stale()).count();
    writeln!(out)?;
    let n = entries.len();
    write!(out, "{n} {}", if n == 1 { "entry" } else { "entries" })?;
    if stale > 0 {
        write!(
            out,
            "; {stale} stale shmlab object(s): remove with `shmlab clean`"
        )?;
    }
    writeln!(
        out,
        "; USERS: processes that map it or hold it open (`shmlab ps` names them)"
    )?;
    if let Some(c) = scan.caveat() {
        writeln!(out, "{c}")?;
    }
    Ok(ExitCode::SUCCESS)
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

fn inspect(
    out: &mut impl Write,
    name: &ShmName,
    bytes: usize,
    expect_type: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let md = match std::fs::symlink_metadata(name.path()) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(shm::Error::NotFound { name: name.clone() }.into());
        }
        Err(e) => bail!("cannot stat {}: {e}", name.path().display()),
    };
    let file_kind = shm::listing::FileKind::of(md.file_type());
    let other = format!("other: a {file_kind}, not a regular file (never opened)");
    let kind = if !md.is_file() {
        other.as_str()
    } else if name.file_name().starts_with("sem.") {
        "POSIX named semaphore"
    } else {
        "POSIX shared-memory object"
    };
    let size = md.size();
    writeln!(out, "{name}  ({})", name.path().display())?;
    writeln!(out, "  kind      {kind}")?;
    writeln!(out, "  size      {size} bytes")?;
    writeln!(
        out,
        "  mode      {}",
        fmt::mode(Mode::from_bits_truncate(md.mode()))
    )?;
    writeln!(
        out,
        "  owner     {} (uid {})",
        fmt::escape_str(&shm::users::user_name(md.uid())),
        md.uid()
    )?;
    writeln!(out, "  modified  {} UTC", fmt_time(md.mtime()))?;
    if !md.is_file() {
        return Ok(ExitCode::SUCCESS);
    }
    let head = read_at(name, 0, HEADER_SIZE)?;
    let Some(h) = HeaderInfo::from_bytes(&head) else {
        if head.len() >= 8 && head[..8] == MAGIC.to_le_bytes() {
            bail!(
                "{name} starts with shmlab's magic but is only {size} bytes, shorter than a {HEADER_SIZE}-byte header: it was truncated; remove it with `shmlab clean --name {name}`"
            );
        }
        if let Some(t) = expect_type {
            return Err(shm::Error::NotARegion {
                name: name.clone(),
                why: format!("no shmlab header at offset 0, so it cannot hold {t}"),
            }
            .into());
        }
        return plain(out, name, size, bytes);
    };
    region(out, name, size, &h, bytes, expect_type)
}

fn plain(
    out: &mut impl Write,
    name: &ShmName,
    size: u64,
    bytes: usize,
) -> anyhow::Result<ExitCode> {
    writeln!(
        out,
        "  shmlab    no: a plain object (no shmlab header), e.g. the textbook's segment"
    )?;
    let first = read_at(name, 0, bytes)?;
    writeln!(out, "  first {} bytes:", first.len())?;
    write!(out, "{}", hexdump(&first, 0))?;
    // The C string at offset 0, as the textbook's consumer would print it.
    let text = read_at(name, 0, 64 * 1024)?;
    let s: Vec<u8> = text.iter().copied().take_while(|&b| b != 0).collect();
    let looks_like_text = !s.is_empty()
        && std::str::from_utf8(&s)
            .is_ok_and(|t| t.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'));
    if looks_like_text {
        let terminated = s.len() < text.len() || (s.len() as u64) < size;
        writeln!(
            out,
            "  string    {:?} ({} bytes{})",
            String::from_utf8_lossy(&s),
            s.len(),
            if terminated {
                ", NUL-terminated"
            } else {
                ", no NUL"
            }
        )?;
    } else if s.is_empty() {
        writeln!(out, "  string    (none: the first byte is NUL)")?;
    } else {
        writeln!(
            out,
            "  string    (the bytes before the first NUL are not text)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn region(
    out: &mut impl Write,
    name: &ShmName,
    size: u64,
    h: &HeaderInfo,
    bytes: usize,
    expect_type: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let state = h
        .init_state()
        .map_or_else(|| format!("unknown ({})", h.state), |s| s.to_string());
    writeln!(
        out,
        "  shmlab    region (header at offset 0, {HEADER_SIZE} bytes)"
    )?;
    writeln!(
        out,
        "  version   {}{}",
        h.version,
        if h.version == VERSION {
            ""
        } else {
            " (NOT this build's)"
        }
    )?;
    writeln!(out, "  type      {}", fmt::escape_str(&h.type_name))?;
    writeln!(out, "  state     {state}")?;
    let (scan, entries) = scan_and_list()?;
    let verdict = entries
        .iter()
        .find(|e| e.file_name == name.file_name())
        .map(|e| e.staleness(&scan, &entries));
    if let Some(v) = &verdict {
        writeln!(
            out,
            "  creator   pid {} (uid {}), {}",
            h.creator_pid,
            h.creator_uid,
            creator_words(v, "this region is STALE (`shmlab clean` removes it)")
        )?;
    }
    let users = entries
        .iter()
        .find(|e| e.file_name == name.file_name())
        .map_or(&[][..], |e| e.users(&scan));
    let pids: Vec<String> = users
        .iter()
        .map(|u| format!("{} ({})", u.pid, fmt::escape_str(&u.comm)))
        .collect();
    writeln!(
        out,
        "  used by   {}",
        if pids.is_empty() {
            "no process (see `shmlab ps`)".to_string()
        } else {
            format!("pid {} (see `shmlab ps`)", pids.join(", "))
        }
    )?;
    let created_s = i64::try_from(h.created_unix_ns / 1_000_000_000).unwrap_or(0);
    writeln!(out, "  created   {} UTC", fmt_time(created_s))?;
    writeln!(
        out,
        "  payload   {} bytes at offset {}, align {}",
        h.payload_size, h.payload_offset, h.payload_align
    )?;
    if h.version != VERSION {
        return Err(shm::Error::VersionMismatch {
            name: name.clone(),
            found: h.version,
            expected: VERSION,
        }
        .into());
    }
    if let Some(t) = expect_type
        && t != h.type_name
    {
        return Err(shm::Error::TypeMismatch {
            name: name.clone(),
            found: h.type_name.clone(),
            expected: t.to_owned(),
        }
        .into());
    }
    let Some(needed) = h.needed_len() else {
        return Err(shm::Error::NotARegion {
            name: name.clone(),
            why: format!(
                "its header's sizes overflow (payload {} bytes at offset {}, {} trailing): it was not written by shmlab; remove it with `shmlab clean --name {name}`",
                h.payload_size, h.payload_offset, h.trailing_len
            ),
        }
        .into());
    };
    if size < needed {
        return Err(shm::Error::TooSmall {
            name: name.clone(),
            actual: size,
            needed,
        }
        .into());
    }
    if h.init_state() != Some(InitState::Ready) {
        writeln!(out, "  (not ready: the payload may be half-initialised)")?;
    }
    let payload = read_at(
        name,
        u64::from(h.payload_offset),
        usize::try_from(h.payload_size)
            .unwrap_or(usize::MAX)
            .min(bytes),
    )?;
    writeln!(out, "  payload, first {} bytes:", payload.len())?;
    write!(out, "{}", hexdump(&payload, h.payload_offset as usize))?;
    if h.type_name == LAB3_TYPE
        && let Some((counter, pid, steps)) = Lab3Payload::decode(&payload)
    {
        writeln!(
            out,
            "  lab3      counter {counter}, last written by pid {pid}, checkpoints completed {steps} of {LAB3_CHECKPOINTS}"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn clean_one(out: &mut impl Write, name: &ShmName, dry_run: bool) -> anyhow::Result<ExitCode> {
    let (scan, entries) = scan_and_list()?;
    let Some(e) = entries.iter().find(|e| e.file_name == name.file_name()) else {
        return Err(shm::Error::NotFound { name: name.clone() }.into());
    };
    let me = nix::unistd::getuid().as_raw();
    if e.uid != me {
        bail!(
            "{name} belongs to {} (uid {}), not to you (uid {me}); shmlab clean removes only your own objects: ask its owner",
            fmt::escape_str(&e.owner),
            e.uid
        );
    }
    if let [first, ..] = e.users(&scan) {
        let n = e.users(&scan).len();
        bail!(
            "{name} is {} by pid {} ({}){}: shmlab clean never removes an object a live process uses; end {} first (see `shmlab ps {name}`)",
            if first.mapped() {
                "mapped"
            } else {
                "held open"
            },
            first.pid,
            fmt::escape_str(&first.comm),
            if n > 1 {
                format!(" and {} more process(es)", n - 1)
            } else {
                String::new()
            },
            if n > 1 { "them" } else { "it" }
        );
    }
    let unseen = scan.could_use_unseen(e.uid, e.gid, e.mode);
    if !unseen.is_empty() {
        let pids: Vec<String> = unseen.iter().map(i32::to_string).collect();
        bail!(
            "{name} may be in use: pid {} could not be inspected and {} open it (its mode is {}); rerun as root, or make it 0600 first with chmod",
            pids.join(", "),
            if unseen.len() == 1 {
                "its user may"
            } else {
                "their users may"
            },
            fmt::mode(e.mode)
        );
    }
    let what = describe(e, &e.staleness(&scan, &entries));
    if dry_run {
        writeln!(out, "would remove {name} ({what})")?;
        return Ok(ExitCode::SUCCESS);
    }
    e.remove_judged()
        .map_err(|err| anyhow::anyhow!("did not remove {name}: {err}"))?;
    writeln!(out, "removed {name} ({what})")?;
    Ok(ExitCode::SUCCESS)
}

/// What an entry is, for `clean`'s lines.
fn describe(e: &Entry, verdict: &Staleness) -> String {
    match (&e.header, e.kind) {
        (Some(h), _) => format!("shmlab region {}", header_summary(h, verdict)),
        (None, ObjectKind::Semaphore) if e.is_shmlab_semaphore() => {
            format!("shmlab semaphore; {}", verdict.reason())
        }
        (None, ObjectKind::Semaphore) => "named semaphore".into(),
        (None, ObjectKind::SharedMemory) if e.is_shmlab_object_without_header() => {
            format!("shmlab object without a header; {}", verdict.reason())
        }
        (None, ObjectKind::Other) => format!("a {}", e.file_kind),
        _ => "plain object".into(),
    }
}

fn clean_stale(out: &mut impl Write, dry_run: bool) -> anyhow::Result<ExitCode> {
    let (scan, entries) = scan_and_list()?;
    let me = nix::unistd::getuid().as_raw();
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut removed = 0;
    let mut left = Vec::new();
    for e in &entries {
        // As `shm_unlink` names it: `/OS`, `/sem.NAME`.
        let name = format!("/{}", e.display_name());
        let verdict = e.staleness(&scan, &entries);
        match &verdict {
            Staleness::NotShmlab => continue,
            v if !v.is_stale() => left.push(format!("left {name}: {}", v.reason())),
            _ if e.uid != me => left.push(format!(
                "left {name} (owned by {}): not yours, though stale",
                fmt::escape_str(&e.owner)
            )),
            _ => {
                let why = describe(e, &verdict);
                if !dry_run {
                    // The file judged, by its exact bytes and identity:
                    // never another file that prints the same.
                    match e.remove_judged() {
                        Ok(()) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue, // someone beat us to it
                        Err(err) => {
                            left.push(format!("could not remove {name}: {err}"));
                            continue;
                        }
                    }
                }
                writeln!(out, "{verb} {name} ({why})")?;
                removed += 1;
            }
        }
    }
    if removed == 0 {
        writeln!(
            out,
            "nothing to clean: no stale shmlab objects of yours in {}",
            shm::SHM_DIR
        )?;
    } else {
        writeln!(out, "{verb} {removed} object(s)")?;
    }
    for l in left {
        writeln!(out, "{l}")?;
    }
    if let Some(c) = scan.caveat() {
        writeln!(out, "{c}")?;
    }
    Ok(ExitCode::SUCCESS)
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
