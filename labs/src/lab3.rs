//! Lab 3: the life cycle of a shared-memory object, checkpoint by
//! checkpoint, each one verified rather than claimed.
//!
//! created → mapped → unlinked (while still mapped) → closed → unmapped.
//! The name, the descriptor and the mapping are three separate references
//! to the same pages; the kernel frees the pages only when all three are
//! gone. `--leak` skips the unlink and leaves a shmlab region behind, which
//! `shmlab ls` then shows as stale and `shmlab clean` removes.

use crate::payloads::{LAB3_CHECKPOINTS, LAB3_TYPE, Lab3Payload};
use anyhow::Context;
use shm::{Access, Mapping, Region, RegionOptions, ShmName, ShmOptions};
use std::io::{BufRead, Write};
use std::mem::offset_of;
use std::process::ExitCode;

/// Flags of `lab3-destroy`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lab3-destroy",
    version,
    about = "Lab 3: walk an object's life cycle (created, mapped, unlinked while mapped, closed, unmapped), verifying each step",
    after_help = "With --leak the object is left behind on purpose: find it with `shmlab ls`, remove it with `shmlab clean`."
)]
pub struct Cli {
    /// Object name [default: /shmlab-lab3-<pid>]
    #[arg(long)]
    pub name: Option<ShmName>,
    /// Skip shm_unlink: leave the object in /dev/shm, as a program that forgets to clean up would
    #[arg(long)]
    pub leak: bool,
    /// Wait for Enter after each checkpoint, so you can look at /dev/shm and /proc/PID/maps meanwhile
    #[arg(long)]
    pub step: bool,
}

/// A failed verification: the lab exits 1.
struct CheckFailed(String);

/// Runs lab 3.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    match walk(cli, out)? {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(CheckFailed(what)) => {
            writeln!(out, "CHECK FAILED: {what}")?;
            eprintln!("error: check failed: {what}");
            Ok(ExitCode::from(crate::EXIT_CHECK_FAILED))
        }
    }
}

macro_rules! check {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Ok(Err(CheckFailed(format!($($what)+))));
        }
    };
}

fn walk(cli: &Cli, out: &mut impl Write) -> anyhow::Result<Result<(), CheckFailed>> {
    let name = match &cli.name {
        Some(n) => n.clone(),
        None => ShmName::parse(&format!("/shmlab-lab3-{}", std::process::id()))?,
    };
    let path = name.path();
    let me = std::process::id();
    let total = Region::<Lab3Payload>::total_len();
    let off = Region::<Lab3Payload>::payload_offset();
    let counter_at = off + offset_of!(Lab3Payload, counter);
    let pid_at = off + offset_of!(Lab3Payload, last_pid);
    let steps_at = off + offset_of!(Lab3Payload, steps);
    let pause = |out: &mut dyn Write| -> anyhow::Result<()> {
        if cli.step {
            write!(
                out,
                "    (press Enter to go on; look at /dev/shm and /proc/{me}/maps meanwhile) "
            )?;
            out.flush()?;
            std::io::stdin().lock().read_line(&mut String::new())?;
        }
        Ok(())
    };
    let bump = |map: &Mapping, step: u32| -> anyhow::Result<u64> {
        let v = read_u64(map, counter_at) + 1;
        map.write(counter_at, &v.to_le_bytes())?;
        map.write(pid_at, &me.to_le_bytes())?;
        map.write(steps_at, &step.to_le_bytes())?;
        Ok(v)
    };

    writeln!(out, "lab3-destroy: the life of {name}, pid {me}")?;
    writeln!(out)?;

    // 1. Created. shm::Region lays out the self-describing object (header +
    // payload); then we take a descriptor of our own, as a C program holds
    // one fd, and let the Region helper's own fd and mapping go.
    let mut region = Region::<Lab3Payload>::create(&name, &RegionOptions::default(), ())?;
    let mut obj = ShmOptions::new().open(&name)?;
    obj.unlink_when_dropped();
    region.keep();
    drop(region);
    let st = obj.stat()?;
    let header = shm::probe_header(&name)?;
    writeln!(
        out,
        "[1/5] created   shm_open(\"{name}\", O_CREAT | O_EXCL | O_RDWR, 0600) + ftruncate({total}); header \"{LAB3_TYPE}\" published"
    )?;
    check!(
        path.exists(),
        "{} does not exist after creation",
        path.display()
    );
    check!(
        st.size == total as u64,
        "fstat says {} bytes, expected {total}",
        st.size
    );
    let h = match header {
        Some(h) => h,
        None => return Ok(Err(CheckFailed(format!("{name} has no shmlab header")))),
    };
    check!(
        h.creator_pid == me as i32 && h.type_name == LAB3_TYPE,
        "header names pid {} and type {:?}",
        h.creator_pid,
        h.type_name
    );
    writeln!(
        out,
        "      verified: {} exists, {} bytes, mode {}; its header names type {LAB3_TYPE}, creator pid {me} (us)",
        path.display(),
        st.size,
        st.mode.symbolic()
    )?;
    pause(out)?;

    // 2. Mapped.
    let map = obj.map(Access::ReadWrite, total)?;
    writeln!(
        out,
        "[2/5] mapped    mmap(NULL, {total}, PROT_READ | PROT_WRITE, MAP_SHARED, fd {}, 0) at {:p}",
        raw_fd(&obj),
        map.as_ptr()
    )?;
    let v = bump(&map, 2)?;
    check!(
        read_u64(&map, counter_at) == v,
        "read back {} after writing {v}",
        read_u64(&map, counter_at)
    );
    let file = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let in_file = file
        .get(counter_at..counter_at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    check!(
        in_file == Some(v),
        "read(2) on {} sees {in_file:?}, not {v}",
        path.display()
    );
    let maps = maps_lines(&path);
    check!(
        maps.len() == 1,
        "/proc/self/maps lists {} mappings of it, expected 1",
        maps.len()
    );
    writeln!(
        out,
        "      verified: wrote counter = {v} through the mapping and read it back; read(2) on the file sees {v} too (same pages);"
    )?;
    writeln!(out, "                /proc/self/maps lists it: {}", maps[0])?;
    pause(out)?;

    // 3. Unlinked while still mapped.
    if cli.leak {
        obj.keep();
        writeln!(
            out,
            "[3/5] unlinked  SKIPPED (--leak): the name stays in /dev/shm"
        )?;
        check!(
            path.exists(),
            "{} vanished without shm_unlink",
            path.display()
        );
        writeln!(out, "      verified: {} still exists", path.display())?;
    } else {
        obj.unlink()?;
        writeln!(
            out,
            "[3/5] unlinked  shm_unlink(\"{name}\") while it is still mapped and open"
        )?;
        check!(
            !path.exists(),
            "{} still exists after shm_unlink",
            path.display()
        );
        let reopen = ShmOptions::new().open(&name);
        check!(
            matches!(reopen, Err(shm::Error::NotFound { .. })),
            "shm_open(\"{name}\") after unlink did not fail with ENOENT"
        );
        let v = bump(&map, 3)?;
        check!(
            read_u64(&map, counter_at) == v,
            "the mapping no longer reads back what was written"
        );
        let maps = maps_lines(&path);
        check!(
            maps.len() == 1 && maps[0].ends_with("(deleted)"),
            "/proc/self/maps does not show the mapping as deleted: {maps:?}"
        );
        writeln!(
            out,
            "      verified: {} is gone and shm_open(\"{name}\") fails with ENOENT, yet the pages still work (counter = {v});",
            path.display()
        )?;
        writeln!(out, "                /proc/self/maps says: {}", maps[0])?;
    }
    pause(out)?;

    // 4. Closed.
    let fd = raw_fd(&obj);
    check!(
        fd_count(&path) == 1,
        "expected one descriptor of ours on it before close, found {}",
        fd_count(&path)
    );
    drop(obj);
    writeln!(out, "[4/5] closed    close(fd {fd})")?;
    check!(
        fd_count(&path) == 0,
        "a descriptor still refers to it after close"
    );
    let v = bump(&map, 4)?;
    check!(
        read_u64(&map, counter_at) == v,
        "the mapping stopped working after close"
    );
    writeln!(
        out,
        "      verified: no entry in /proc/self/fd refers to it any more, and the mapping still reads and writes (counter = {v})"
    )?;
    pause(out)?;

    // 5. Unmapped.
    let final_value = bump(&map, LAB3_CHECKPOINTS)?;
    drop(map);
    writeln!(out, "[5/5] unmapped  munmap({total} bytes)")?;
    check!(
        maps_lines(&path).is_empty(),
        "/proc/self/maps still lists it after munmap"
    );
    if cli.leak {
        check!(path.exists(), "{} vanished", path.display());
        writeln!(
            out,
            "      verified: /proc/self/maps no longer lists it; but the NAME still holds the pages: {} exists",
            path.display()
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "LEAKED (deliberately): {name}, {total} bytes, counter = {final_value}"
        )?;
        writeln!(
            out,
            "  `shmlab ls` lists it; once this process (pid {me}) has exited, its header's creator is gone, so it shows as stale"
        )?;
        writeln!(
            out,
            "  `shmlab clean` removes stale shmlab regions (try `shmlab clean --dry-run` first), or `shmlab clean --name {name}`"
        )?;
        writeln!(
            out,
            "  it survives until then, or until the machine reboots: /dev/shm is memory"
        )?;
    } else {
        check!(!path.exists(), "{} exists again", path.display());
        writeln!(
            out,
            "      verified: /proc/self/maps no longer lists it and the name is gone: the kernel has freed the pages; nothing is left"
        )?;
    }
    writeln!(out)?;
    writeln!(out, "What to notice:")?;
    writeln!(
        out,
        "  - the name, the descriptor and the mapping each keep the object alive; the pages go when the last one does"
    )?;
    writeln!(
        out,
        "  - shm_unlink removes only the name: processes that have it mapped carry on, new ones cannot find it"
    )?;
    writeln!(
        out,
        "  - closing the descriptor right after mmap is fine; forgetting shm_unlink leaks memory until reboot"
    )?;
    Ok(Ok(()))
}

fn read_u64(map: &Mapping, at: usize) -> u64 {
    let b = map.read(at, 8);
    u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
}

fn raw_fd(obj: &shm::ShmObject) -> i32 {
    use std::os::fd::AsRawFd;
    obj.fd().as_raw_fd()
}

/// Lines of `/proc/self/maps` that map `path` (possibly "(deleted)").
fn maps_lines(path: &std::path::Path) -> Vec<String> {
    let p = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let l = l.trim_end();
            l.ends_with(&*p) || l.ends_with(&format!("{p} (deleted)"))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// How many of our descriptors refer to `path` (possibly "(deleted)").
fn fd_count(path: &std::path::Path) -> usize {
    let p = path.to_string_lossy().into_owned();
    let deleted = format!("{p} (deleted)");
    std::fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|l| {
                    let l = l.to_string_lossy();
                    l == p || l == deleted
                })
                .count()
        })
        .unwrap_or(0)
}
