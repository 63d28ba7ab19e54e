//! `shmlab inspect NAME`: one object: a region's header and payload, or a
//! plain object's first bytes (and the C string at its start).

use super::{creator_words, fmt_time, hexdump, read_at, scan_and_list};
use crate::fmt;
use crate::payloads::{LAB3_CHECKPOINTS, LAB3_TYPE, Lab3Payload};
use anyhow::bail;
use shm::{HEADER_SIZE, HeaderInfo, InitState, MAGIC, Mode, ShmName, VERSION};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;

pub(super) fn inspect(
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
