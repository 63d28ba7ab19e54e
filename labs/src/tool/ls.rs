//! `shmlab ls`: every entry of `/dev/shm`, whoever made it: kind, size,
//! mode, owner, time, how many processes use it, and for shmlab regions
//! the header.

use super::{fmt_time, header_summary, scan_and_list};
use crate::fmt;
use shm::listing::{ObjectKind, Staleness};
use std::io::Write;
use std::process::ExitCode;

pub(super) fn ls(out: &mut impl Write) -> anyhow::Result<ExitCode> {
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
