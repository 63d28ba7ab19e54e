//! `shmlab clean`: removes stale shmlab regions and `sem.shmlab-*`
//! semaphores of the caller's (creator dead, no live process using them),
//! or one named object if it is the caller's and no live process uses it.

use super::{header_summary, scan_and_list};
use crate::fmt;
use anyhow::bail;
use shm::ShmName;
use shm::listing::{Entry, ObjectKind, Staleness};
use std::io::Write;
use std::process::ExitCode;

pub(super) fn clean_one(
    out: &mut impl Write,
    name: &ShmName,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
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

pub(super) fn clean_stale(out: &mut impl Write, dry_run: bool) -> anyhow::Result<ExitCode> {
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
