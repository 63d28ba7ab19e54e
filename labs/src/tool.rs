//! The `shmlab` tool: `ls`, `inspect NAME` and `clean` for what is in
//! `/dev/shm`, whoever made it (and `repair-sem` for a wedged semaphore).
//!
//! It never maps anything: headers and payloads are read with `read(2)` from
//! `/dev/shm/NAME`, so an object shorter than its header claims (truncated
//! by someone) cannot SIGBUS it.

use crate::fmt;
use crate::payloads::{LAB3_CHECKPOINTS, LAB3_TYPE, Lab3Payload};
use anyhow::bail;
use shm::listing::{Entry, ObjectKind};
use shm::{HEADER_SIZE, HeaderInfo, InitState, MAGIC, Mode, ShmName, VERSION};
use std::io::{Read, Write};
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
    /// List every entry of /dev/shm: kind, size, mode, owner, time; for shmlab regions the header
    Ls,
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
    /// Remove shmlab regions (and sem.shmlab-* semaphores) whose creator is gone; only yours
    Clean {
        /// Remove this one object instead (any kind), if it is yours
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

/// Runs the tool.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    match &cli.cmd {
        Cmd::Ls => ls(out),
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

fn header_summary(h: &HeaderInfo) -> String {
    let state = h
        .init_state()
        .map_or_else(|| format!("state {}?", h.state), |s| s.to_string());
    let alive = creator_words(h, "STALE");
    let version = if h.version == VERSION {
        String::new()
    } else {
        format!(" v{}", h.version)
    };
    format!(
        "{}{version} {state}, creator pid {} {alive}",
        h.type_name, h.creator_pid
    )
}

/// The creator's liveness in words: `alive`, `unknown (...)`, or
/// `gone: <stale>` / `zombie: <stale>` — a zombie is dead too.
fn creator_words(h: &HeaderInfo, stale: &str) -> String {
    use shm::process::Liveness;
    match h.creator_liveness() {
        Liveness::Running => "alive".into(),
        Liveness::Unknown => {
            "unknown (its /proc entry is hidden: treated as alive, never cleaned)".into()
        }
        dead => format!("{dead}: {stale}"),
    }
}

fn ls(out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let entries =
        shm::listing::list().map_err(|e| anyhow::anyhow!("cannot list {}: {e}", shm::SHM_DIR))?;
    if entries.is_empty() {
        writeln!(out, "{} is empty", shm::SHM_DIR)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            let shmlab = match (&e.header, e.kind) {
                (Some(h), _) => format!("region {}", header_summary(h)),
                (None, ObjectKind::SharedMemory) if !e.readable => "(unreadable)".into(),
                (None, ObjectKind::Semaphore) if e.is_shmlab_semaphore() => {
                    "shmlab semaphore".into()
                }
                _ => "-".into(),
            };
            let name = match e.kind {
                ObjectKind::SharedMemory => format!("/{}", e.file_name),
                _ => e.file_name.clone(),
            };
            [
                e.kind.to_string(),
                e.size.to_string(),
                fmt::mode(e.mode),
                e.owner.clone(),
                fmt_time(e.mtime),
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
        "NAME",
        "SHMLAB",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |r: [&str; 7]| {
        format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {:<w4$}  {:<w5$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5]
        )
        .trim_end()
        .to_string()
    };
    writeln!(out, "{}", line(head))?;
    for r in &rows {
        writeln!(out, "{}", line(r.each_ref().map(String::as_str)))?;
    }
    let stale = entries.iter().filter(|e| e.stale()).count();
    writeln!(out)?;
    let n = entries.len();
    write!(out, "{n} {}", if n == 1 { "entry" } else { "entries" })?;
    if stale > 0 {
        write!(
            out,
            "; {stale} stale shmlab region(s): remove with `shmlab clean`"
        )?;
    }
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads up to `len` bytes from `offset` of the object's file.
fn read_at(name: &ShmName, offset: u64, len: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(name.path()).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => anyhow::Error::new(shm::Error::denied(name)),
        _ => anyhow::anyhow!("cannot read {name}: {e}; check the owner and mode with `shmlab ls`"),
    })?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len);
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
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
    let kind = if !md.is_file() {
        "other (not a regular file)"
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
        shm::listing::user_name(md.uid()),
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
    writeln!(out, "  type      {}", h.type_name)?;
    writeln!(out, "  state     {state}")?;
    writeln!(
        out,
        "  creator   pid {} (uid {}), {}",
        h.creator_pid,
        h.creator_uid,
        creator_words(h, "this region is STALE (`shmlab clean` removes it)")
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
    if size < h.needed_len() {
        return Err(shm::Error::TooSmall {
            name: name.clone(),
            actual: size,
            needed: h.needed_len(),
        }
        .into());
    }
    if h.init_state() != Some(InitState::Ready) {
        writeln!(out, "  (not ready: the payload may be half-initialised)")?;
    }
    let payload = read_at(
        name,
        u64::from(h.payload_offset),
        (h.payload_size as usize).min(bytes),
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
    let md = match std::fs::symlink_metadata(name.path()) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(shm::Error::NotFound { name: name.clone() }.into());
        }
        Err(e) => bail!("cannot stat {}: {e}", name.path().display()),
    };
    let me = nix::unistd::getuid().as_raw();
    if md.uid() != me {
        bail!(
            "{name} belongs to {} (uid {}), not to you (uid {me}); shmlab clean removes only your own objects: ask its owner",
            shm::listing::user_name(md.uid()),
            md.uid()
        );
    }
    let what = describe(name);
    if dry_run {
        writeln!(out, "would remove {name} ({what})")?;
        return Ok(ExitCode::SUCCESS);
    }
    name.unlink()?;
    writeln!(out, "removed {name} ({what})")?;
    Ok(ExitCode::SUCCESS)
}

fn describe(name: &ShmName) -> String {
    match shm::probe_header(name) {
        Ok(Some(h)) => {
            let note = if h.creator_liveness().may_be_alive() {
                "; its creator is still running and keeps its mapping"
            } else {
                ""
            };
            format!("shmlab region {}{note}", header_summary(&h))
        }
        _ if name.file_name().starts_with("sem.") => "named semaphore".into(),
        _ => "plain object".into(),
    }
}

/// The creator pid in a `sem.shmlab-…-<pid>-<n>…` name ([`ShmName::unique`]'s
/// form): the first of the last two adjacent all-digit fields.
fn pid_in_name(file_name: &str) -> Option<i32> {
    let fields: Vec<&str> = file_name.split(['-', '.', '_']).collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (1..fields.len())
        .rev()
        .find(|&i| digits(fields[i - 1]) && digits(fields[i]))
        .and_then(|i| fields[i - 1].parse().ok())
}

fn clean_stale(out: &mut impl Write, dry_run: bool) -> anyhow::Result<ExitCode> {
    let entries =
        shm::listing::list().map_err(|e| anyhow::anyhow!("cannot list {}: {e}", shm::SHM_DIR))?;
    let me = nix::unistd::getuid().as_raw();
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut removed = 0;
    let mut skipped = Vec::new();
    let live_regions: Vec<&str> = entries
        .iter()
        .filter(|e| e.header.is_some() && !e.stale())
        .map(|e| e.file_name.as_str())
        .collect();
    let mut remove = |out: &mut dyn Write, e: &Entry, why: String| -> anyhow::Result<()> {
        let Some(name) = e.name() else { return Ok(()) };
        if !dry_run {
            match name.unlink() {
                Ok(()) => {}
                Err(shm::Error::NotFound { .. }) => return Ok(()), // someone beat us to it
                Err(err) => {
                    writeln!(out, "could not remove {name}: {err}")?;
                    return Ok(());
                }
            }
        }
        writeln!(out, "{verb} {name} ({why})")?;
        removed += 1;
        Ok(())
    };
    for e in &entries {
        let stale_sem_pid = if e.is_shmlab_semaphore() {
            pid_in_name(&e.file_name).filter(|&p| shm::process::liveness(p, 0).is_dead())
        } else {
            None
        };
        let candidate = e.stale() || stale_sem_pid.is_some();
        if !candidate {
            continue;
        }
        if e.uid != me {
            skipped.push(format!("{} (owned by {})", e.file_name, e.owner));
            continue;
        }
        if let Some(h) = &e.header {
            remove(
                out,
                e,
                format!(
                    "shmlab region {}, creator pid {} {}",
                    h.type_name,
                    h.creator_pid,
                    h.creator_liveness()
                ),
            )?;
        } else if let Some(pid) = stale_sem_pid {
            let sem_of = &e.file_name["sem.".len()..];
            if live_regions.iter().any(|r| sem_of.starts_with(r)) {
                continue;
            }
            let how = shm::process::liveness(pid, 0);
            remove(out, e, format!("shmlab semaphore, creator pid {pid} {how}"))?;
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
    for s in skipped {
        writeln!(out, "left {s}: not yours")?;
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
    fn pids_in_names() {
        assert_eq!(pid_in_name("sem.shmlab-race-sem-1234-0"), Some(1234));
        assert_eq!(pid_in_name("sem.shmlab-race-sem-1234-0-lock"), Some(1234));
        assert_eq!(pid_in_name("sem.shmlab-demo"), None);
    }

    #[test]
    fn hexdump_looks_like_xxd() {
        let d = hexdump(b"Hello\0", 0);
        assert!(d.contains("48 65 6c 6c 6f 00"), "{d}");
        assert!(d.contains("|Hello.|"), "{d}");
    }
}
