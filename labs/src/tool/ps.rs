//! `shmlab ps [NAME]`: for every object in `/dev/shm` (and every unlinked
//! one still in use), the processes that map it or hold it open, its
//! creator, the state of each lock inside it, and whether it is stale.
//!
//! One [`shm::users::scan`] of `/proc` per report, then one listing of
//! `/dev/shm`; every fact comes from one of them or from a region's bytes
//! ([`super::locks`]). `watch` redraws the same [`Report`] lines.

use super::locks::{self, Decoded};
use crate::fmt;
use serde::Serialize;
use shm::listing::{Entry, ObjectKind, Staleness};
use shm::users::{Scan, Use};
use shm::{HeaderInfo, ShmName};

/// Everything `ps` found, in one scan.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// One per object (in `/dev/shm`, then unlinked ones), by name.
    pub objects: Vec<ObjectReport>,
    /// Processes whose mappings and descriptors were read.
    pub processes_inspected: usize,
    /// Processes that could not be inspected (another user's, without
    /// privilege): what they use is unknown.
    pub processes_not_inspected: usize,
    /// Their pids.
    pub not_inspected_pids: Vec<i32>,
}

/// One object.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectReport {
    /// `/OS`, `/sem.lock`: the name for `shm_open`.
    pub name: String,
    /// `/dev/shm/OS`.
    pub path: String,
    /// `shm`, `sem` or `other`.
    pub kind: String,
    /// Unlinked: gone from `/dev/shm` but still mapped or open (`/proc`
    /// shows it ` (deleted)`); size, mode and owner are then not known.
    pub unlinked: bool,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Mode, octal (`0600`).
    pub mode: Option<String>,
    /// Mode as `ls -l` shows it (`rw-------`).
    pub mode_symbolic: Option<String>,
    /// Owner's user name.
    pub owner: Option<String>,
    /// Owner's uid.
    pub uid: Option<u32>,
    /// Its creator, where shmlab knows it (a region's header, a shmlab
    /// semaphore's name).
    pub creator: Option<CreatorReport>,
    /// For shmlab regions: the header and the payload's locks.
    pub region: Option<RegionReport>,
    /// Processes that map it or hold it open.
    pub users: Vec<UserReport>,
    /// Stale: its creator is dead and no live process uses it.
    pub stale: bool,
    /// Why it is stale or not.
    pub staleness: String,
}

/// An object's creator.
#[derive(Clone, Debug, Serialize)]
pub struct CreatorReport {
    /// Its pid.
    pub pid: i32,
    /// Its command, while `/proc` shows it.
    pub comm: Option<String>,
    /// `alive`, `zombie`, `gone` or `unknown`.
    pub liveness: &'static str,
}

/// A shmlab region's header and payload.
#[derive(Clone, Debug, Serialize)]
pub struct RegionReport {
    /// The type tag (`race/futex`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// `ready`, `initialising`, ...
    pub state: String,
    /// Header format version.
    pub version: u32,
    /// What the payload says.
    #[serde(flatten)]
    pub decoded: Decoded,
}

/// One process using an object.
#[derive(Clone, Debug, Serialize)]
pub struct UserReport {
    /// Its pid.
    pub pid: i32,
    /// Its command.
    pub comm: String,
    /// Its user.
    pub user: String,
    /// Its effective uid.
    pub uid: u32,
    /// It maps the object.
    pub mapped: bool,
    /// How many of its mappings are of the object.
    pub mappings: usize,
    /// Its descriptors open on the object.
    pub fds: Vec<i32>,
}

impl From<&Use> for UserReport {
    fn from(u: &Use) -> Self {
        UserReport {
            pid: u.pid,
            comm: u.comm.clone(),
            user: u.user.clone(),
            uid: u.uid,
            mapped: u.mapped(),
            mappings: u.mappings,
            fds: u.fds.clone(),
        }
    }
}

fn creator_report(pid: i32, liveness: shm::process::Liveness) -> CreatorReport {
    CreatorReport {
        pid,
        comm: liveness
            .may_be_alive()
            .then(|| shm::users::process_info(pid).map(|i| i.comm))
            .flatten(),
        liveness: liveness.as_str(),
    }
}

fn region_report(name: &ShmName, h: &HeaderInfo) -> RegionReport {
    RegionReport {
        type_name: h.type_name.clone(),
        state: h
            .init_state()
            .map_or_else(|| format!("unknown ({})", h.state), |s| s.to_string()),
        version: h.version,
        decoded: locks::decode(name, h),
    }
}

fn object_report(e: &Entry, scan: &Scan, listing: &[Entry]) -> ObjectReport {
    let staleness = e.staleness(scan, listing);
    let creator = e.creator().map(|c| creator_report(c.pid, c.liveness()));
    let region = match (&e.header, e.name()) {
        (Some(h), Some(name)) => Some(region_report(&name, h)),
        _ => None,
    };
    ObjectReport {
        name: format!("/{}", e.file_name),
        path: format!("{}/{}", shm::SHM_DIR, e.file_name),
        kind: e.kind.to_string(),
        unlinked: false,
        size: Some(e.size),
        mode: Some(e.mode.to_string()),
        mode_symbolic: Some(e.mode.symbolic()),
        owner: Some(e.owner.clone()),
        uid: Some(e.uid),
        creator,
        region,
        users: e.users(scan).iter().map(UserReport::from).collect(),
        stale: staleness.is_stale(),
        staleness: match &staleness {
            Staleness::NotShmlab => {
                "never: not a shmlab object (shmlab cleans only what it made)".into()
            }
            s if s.is_stale() => format!("yes: {}", s.reason()),
            s => format!("no: {}", s.reason()),
        },
    }
}

/// Scans `/proc` once, lists `/dev/shm`, and reports every object, or only
/// `only` (an error if there is no such object, linked or unlinked).
pub fn collect(only: Option<&ShmName>) -> anyhow::Result<Report> {
    let report = collect_all(only)?;
    if let (Some(name), true) = (only, report.objects.is_empty()) {
        return Err(shm::Error::NotFound { name: name.clone() }.into());
    }
    Ok(report)
}

/// [`collect`], but an absent `only` is an empty report (what `watch`
/// shows until the object appears).
pub fn collect_all(only: Option<&ShmName>) -> anyhow::Result<Report> {
    let scan = shm::users::scan().map_err(|e| anyhow::anyhow!("cannot read /proc: {e}"))?;
    let listing =
        shm::listing::list().map_err(|e| anyhow::anyhow!("cannot list {}: {e}", shm::SHM_DIR))?;
    let wanted = |file_name: &str| only.is_none_or(|n| n.file_name() == file_name);
    let mut objects: Vec<ObjectReport> = listing
        .iter()
        .filter(|e| wanted(&e.file_name))
        .map(|e| object_report(e, &scan, &listing))
        .collect();
    // Objects in use that the listing does not have: unlinked (or unlinked
    // and re-created under the same name: another inode).
    for (id, o) in scan.objects() {
        if listing.iter().any(|e| e.id == *id) || !wanted(&o.file_name) {
            continue;
        }
        objects.push(ObjectReport {
            name: format!("/{}", o.file_name),
            path: format!("{}/{}", shm::SHM_DIR, o.file_name),
            kind: if o.file_name.starts_with("sem.") {
                ObjectKind::Semaphore
            } else {
                ObjectKind::SharedMemory
            }
            .to_string(),
            unlinked: true,
            size: None,
            mode: None,
            mode_symbolic: None,
            owner: None,
            uid: None,
            creator: None,
            region: None,
            users: o.users.iter().map(UserReport::from).collect(),
            stale: false,
            staleness:
                "no: unlinked already; its memory is freed when the last user unmaps and closes it"
                    .into(),
        });
    }
    Ok(Report {
        objects,
        processes_inspected: scan.inspected,
        processes_not_inspected: scan.not_inspected.len(),
        not_inspected_pids: scan.not_inspected.clone(),
    })
}

/// Left-aligned columns, two spaces apart, the last one unpadded.
fn table(rows: &[Vec<String>], indent: &str) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let mut line = indent.to_string();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<width$}  ", width = w[i]));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

impl ObjectReport {
    /// The object's block of text.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut head = vec![self.name.clone(), self.kind.clone()];
        if self.unlinked {
            head.push("UNLINKED: no longer in /dev/shm, still in use".into());
        }
        if let Some(size) = self.size {
            head.push(format!("{} bytes", fmt::group(size)));
        }
        if let (Some(m), Some(sym)) = (&self.mode, &self.mode_symbolic) {
            head.push(format!("{m} {sym}"));
        }
        if let Some(o) = &self.owner {
            head.push(o.clone());
        }
        out.push(head.join("  "));
        let field = |out: &mut Vec<String>, key: &str, value: String| {
            out.push(format!("  {key:<9} {value}"));
        };
        if let Some(r) = &self.region {
            field(&mut out, "region", format!("{}, {}", r.type_name, r.state));
        }
        if let Some(c) = &self.creator {
            let comm = c
                .comm
                .as_ref()
                .map_or_else(String::new, |c| format!(" ({c})"));
            field(
                &mut out,
                "creator",
                format!("pid {}{comm} {}", c.pid, c.liveness),
            );
        }
        if let Some(r) = &self.region {
            let d = &r.decoded;
            for l in &d.locks {
                field(&mut out, &l.name, l.words());
                for n in &l.notes {
                    field(&mut out, "", format!("- {n}"));
                }
            }
            if let Some(c) = d.counter {
                field(&mut out, "counter", fmt::group(c));
            }
            for (i, w) in d.workers.iter().enumerate() {
                field(
                    &mut out,
                    if i == 0 { "workers" } else { "" },
                    format!(
                        "#{} pid {} {}, {} done ({})",
                        w.index,
                        w.id,
                        w.state,
                        fmt::group(w.done),
                        w.liveness
                    ),
                );
            }
            if let Some(n) = &d.note {
                field(&mut out, "note", n.clone());
            }
        }
        match self.users.len() {
            0 => field(&mut out, "used by", "no process".into()),
            n => {
                field(
                    &mut out,
                    "used by",
                    format!("{n} process{}", if n == 1 { "" } else { "es" }),
                );
                let mut rows = vec![vec![
                    "PID".to_string(),
                    "USER".into(),
                    "COMMAND".into(),
                    "HOW".into(),
                ]];
                for u in &self.users {
                    let how = Use {
                        pid: u.pid,
                        comm: String::new(),
                        uid: u.uid,
                        user: String::new(),
                        mappings: u.mappings,
                        fds: u.fds.clone(),
                    }
                    .how();
                    rows.push(vec![u.pid.to_string(), u.user.clone(), u.comm.clone(), how]);
                }
                out.extend(table(&rows, "            "));
            }
        }
        field(&mut out, "stale", self.staleness.clone());
        out
    }
}

impl Report {
    /// The whole report as text: each object's block, a blank line
    /// between, then one summary line (and the caveat about processes that
    /// could not be inspected).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.objects {
            out.extend(o.lines());
            out.push(String::new());
        }
        let linked = self.objects.iter().filter(|o| !o.unlinked).count();
        let unlinked = self.objects.len() - linked;
        let stale = self.objects.iter().filter(|o| o.stale).count();
        let mut summary = format!(
            "{linked} object{} in {}",
            if linked == 1 { "" } else { "s" },
            shm::SHM_DIR
        );
        if unlinked > 0 {
            summary.push_str(&format!(", {unlinked} unlinked but still in use"));
        }
        if stale > 0 {
            summary.push_str(&format!("; {stale} stale (remove with `shmlab clean`)"));
        }
        summary.push_str(&format!(
            "; {} processes inspected",
            fmt::group(self.processes_inspected as u64)
        ));
        out.push(summary);
        if let Some(c) = shm::users::caveat(self.processes_not_inspected) {
            out.push(c);
        }
        out
    }
}
