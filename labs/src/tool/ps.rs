//! `shmlab ps [NAME]`: for every object in `/dev/shm` (and every unlinked
//! one still in use), the processes that map it or hold it open, its
//! creator, the state of each lock inside it, and whether it is stale.
//!
//! One [`shm::users::scan`] of `/proc` per report, then one listing of
//! `/dev/shm`; every fact comes from one of them or from a region's bytes
//! (`super::decode`). `watch` redraws the same [`Report`] lines.
//!
//! Every string that came from outside (a file name, a header's type tag,
//! a command, a user name, a semaphore name) is printed in the text
//! report through [`crate::fmt::escape`], so a name holding a terminal
//! escape shows as `\x1b[2J` instead of acting. The JSON report keeps
//! them exact (serde escapes control characters itself), except a file
//! name that is not UTF-8, which JSON cannot hold: `name` and `path` are
//! then its escaped form and `name_escaped` is `true`.

use super::decode;
use crate::decoded::Decoded;
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
    /// `/OS`, `/sem.lock`: the name for `shm_open`; exact, unless the file
    /// name is not UTF-8: then [`crate::fmt::escape`]d, and `name_escaped`.
    pub name: String,
    /// Whether `name` and `path` are escaped (the file name is not UTF-8).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub name_escaped: bool,
    /// The file name's exact bytes, for the text report.
    #[serde(skip)]
    pub file_name: Vec<u8>,
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
        decoded: decode::decode(name, h),
    }
}

/// A file name for the JSON report: exact when UTF-8, else escaped (and
/// `true`).
fn json_name(file_name: &[u8]) -> (String, bool) {
    match std::str::from_utf8(file_name) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (fmt::escape(file_name), true),
    }
}

fn object_report(e: &Entry, scan: &Scan, listing: &[Entry]) -> ObjectReport {
    use std::os::unix::ffi::OsStrExt;
    let staleness = e.staleness(scan, listing);
    let creator = e.creator().map(|c| creator_report(c.pid, c.liveness()));
    let region = match (&e.header, e.name()) {
        (Some(h), Some(name)) => Some(region_report(&name, h)),
        _ => None,
    };
    let (name, name_escaped) = json_name(e.file_name.as_bytes());
    ObjectReport {
        name: format!("/{name}"),
        path: format!("{}/{name}", shm::SHM_DIR),
        name_escaped,
        file_name: e.file_name.as_bytes().to_vec(),
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
        .filter(|e| only.is_none_or(|n| e.file_name == n.file_name()))
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
            name_escaped: false,
            file_name: o.file_name.as_bytes().to_vec(),
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
    /// The object's block of text, every string from outside escaped.
    pub fn lines(&self) -> Vec<String> {
        let esc = fmt::escape_str;
        let mut out = Vec::new();
        let mut head = vec![
            format!("/{}", fmt::escape(&self.file_name)),
            self.kind.clone(),
        ];
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
            head.push(esc(o));
        }
        out.push(head.join("  "));
        let field = |out: &mut Vec<String>, key: &str, value: String| {
            out.push(format!("  {key:<9} {value}"));
        };
        if let Some(r) = &self.region {
            field(
                &mut out,
                "region",
                format!("{}, {}", esc(&r.type_name), esc(&r.state)),
            );
        }
        if let Some(c) = &self.creator {
            let comm = c
                .comm
                .as_ref()
                .map_or_else(String::new, |c| format!(" ({})", esc(c)));
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
                    rows.push(vec![u.pid.to_string(), esc(&u.user), esc(&u.comm), how]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::has_control;

    /// An object whose every outside string holds a terminal escape.
    fn hostile() -> ObjectReport {
        let file_name = b"esc\x1b[2J\xff".to_vec();
        let (name, name_escaped) = json_name(&file_name);
        ObjectReport {
            name: format!("/{name}"),
            path: format!("{}/{name}", shm::SHM_DIR),
            name_escaped,
            file_name,
            kind: "shm".into(),
            unlinked: false,
            size: Some(64),
            mode: Some("0600".into()),
            mode_symbolic: Some("rw-------".into()),
            owner: Some("own\x1b]0;t\x07".into()),
            uid: Some(0),
            creator: Some(CreatorReport {
                pid: 1,
                comm: Some("cre\u{9b}2J".into()),
                liveness: "alive",
            }),
            region: Some(RegionReport {
                type_name: "race/\x1b[31m".into(),
                state: "ready".into(),
                version: 1,
                decoded: Decoded::default(),
            }),
            users: vec![UserReport {
                pid: 1,
                comm: "use\x1b[2J".into(),
                user: "u\x1b[2J".into(),
                uid: 0,
                mapped: true,
                mappings: 1,
                fds: Vec::new(),
            }],
            stale: false,
            staleness: "no: its creator is alive".into(),
        }
    }

    /// Finding 7: the text report escapes every string from outside (the
    /// old `lines` printed the name, owner, tag and commands raw).
    #[test]
    fn text_lines_hold_no_control_character() {
        let lines = hostile().lines();
        for l in &lines {
            assert!(!has_control(l), "{l:?}");
        }
        assert!(
            lines[0]
                .starts_with("/esc\\x1b[2J\\xff  shm  64 bytes  0600 rw-------  own\\x1b]0;t\\x07"),
            "{}",
            lines[0]
        );
        let all = lines.join("\n");
        for shown in [
            "race/\\x1b[31m, ready",
            "pid 1 (cre\\xc2\\x9b2J) alive",
            "u\\x1b[2J",
            "use\\x1b[2J",
        ] {
            assert!(all.contains(shown), "{shown} not in {all}");
        }
    }

    /// JSON keeps outside strings exact (serde escapes them), except a
    /// name that is not UTF-8: escaped, and flagged.
    #[test]
    fn json_is_exact_and_flags_an_escaped_name() {
        let o = hostile();
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["name"], "/esc\\x1b[2J\\xff");
        assert_eq!(v["name_escaped"], true);
        assert_eq!(v["owner"], "own\x1b]0;t\x07");
        assert_eq!(v["region"]["type"], "race/\x1b[31m");
        assert_eq!(v["users"][0]["comm"], "use\x1b[2J");
        assert!(v.get("file_name").is_none());
        // Printed through `fmt::json_pretty`: no control character (serde
        // alone leaves C1 raw), and read back exactly.
        let text = fmt::json_pretty(&o).unwrap();
        assert!(!has_control(&text.replace('\n', "")), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        // A UTF-8 name is exact, and not flagged.
        assert_eq!(json_name(b"a\x1b"), ("a\x1b".to_string(), false));
        let mut o = o;
        o.name_escaped = false;
        assert!(
            serde_json::to_value(&o)
                .unwrap()
                .get("name_escaped")
                .is_none()
        );
    }
}
