//! Lab 1: create a shared-memory object, size it, and look at what the
//! kernel made of the request.
//!
//! `shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode)`, then `ftruncate` and
//! `posix_fallocate` to the size, then `fstat` to read back the size and the
//! mode the kernel *gave* (the requested mode minus the umask), then `fchmod`
//! to force the requested mode if the umask took bits away, and finally
//! `shm_unlink` (unless `--keep`).

use crate::fmt;
use shm::{Mode, ShmName, ShmOptions};
use std::io::Write;
use std::process::ExitCode;

/// Flags of `lab1-create`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lab1-create",
    version,
    about = "Lab 1: create a POSIX shared-memory object, size it, and see which mode the kernel gave it",
    after_help = "Try `--mode 0666` (the textbook's mode): it is world-writable, and with the usual umask 022 the kernel \
                  gives 0644 until shmlab forces it back with fchmod. Run under `umask 077` to watch the umask remove more."
)]
pub struct Cli {
    /// Object name (a leading `/` is added if missing) [default: /shmlab-lab1-<pid>]
    #[arg(long)]
    pub name: Option<ShmName>,
    /// Size in bytes: 4096, 64K, 1M ...
    #[arg(long, default_value = "4096", value_parser = shm::parse_size)]
    pub size: u64,
    /// Mode to request, octal (0640) or symbolic (rw-r-----)
    #[arg(
        long,
        default_value = "0600",
        allow_hyphen_values = true,
        conflicts_with = "textbook_mode"
    )]
    pub mode: Mode,
    /// Request the textbook's mode 0666 (rw-rw-rw-: every user may read and write)
    #[arg(long)]
    pub textbook_mode: bool,
    /// Keep the kernel's mode: do not fchmod back the bits the umask removed
    #[arg(long)]
    pub no_force: bool,
    /// Leave the object in /dev/shm (remove it later with `shmlab clean --name NAME`)
    #[arg(long)]
    pub keep: bool,
}

/// Runs lab 1, printing each step to stdout.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    run_to(cli, out)
}

fn run_to(cli: &Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let name = match &cli.name {
        Some(n) => n.clone(),
        None => ShmName::parse(&format!("/shmlab-lab1-{}", std::process::id()))?,
    };
    let mode = if cli.textbook_mode {
        Mode::TEXTBOOK
    } else {
        cli.mode
    };

    writeln!(
        out,
        "lab1-create: make a POSIX shared-memory object and look at it"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "1. shm_open(\"{name}\", O_CREAT | O_EXCL | O_RDWR, {mode})"
    )?;
    let mut obj = ShmOptions::new()
        .create_new(true)
        .mode(mode)
        .force_mode(!cli.no_force)
        .open(&name)?;
    let present = name.path().exists();
    writeln!(
        out,
        "   created {name}; it is the file {} (present: {})",
        name.path().display(),
        yes_no(present)
    )?;

    writeln!(out, "2. ftruncate + posix_fallocate to {} bytes", cli.size)?;
    obj.set_len(cli.size)?;
    let st = obj.stat()?;
    writeln!(out, "   fstat says: size {} bytes", st.size)?;

    let c = *obj.creation().expect("we created the object");
    writeln!(out, "3. permissions")?;
    writeln!(out, "   requested    {}", fmt::mode(c.requested))?;
    writeln!(out)?;
    writeln!(out, "     class   digit  symbol  meaning")?;
    for row in c.requested.rows() {
        writeln!(
            out,
            "     {:<7} {:<6} {:<7} {}",
            row.class.to_string(),
            row.digit,
            row.symbol,
            row.meaning
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "   umask        {}   (bits the kernel removes from every new file)",
        fmt::mode(c.umask)
    )?;
    writeln!(
        out,
        "   kernel gave  {}   (requested & ~umask, read back with fstat)",
        fmt::mode(c.given)
    )?;
    let removed = Mode::from_bits_truncate(c.requested.bits() & !c.given.bits());
    if c.forced {
        writeln!(
            out,
            "   forced       yes: the umask removed {} ({}), so fchmod(fd, {}) put them back",
            removed,
            removed.symbolic(),
            c.requested
        )?;
    } else if c.given != c.requested {
        writeln!(
            out,
            "   forced       no (--no-force): the umask removed {} ({}) and we left it so",
            removed,
            removed.symbolic()
        )?;
    } else {
        writeln!(
            out,
            "   forced       no: the umask removed nothing we asked for"
        )?;
    }
    let now = obj.stat()?.mode;
    writeln!(out, "   mode now     {}", fmt::mode(now))?;
    if now.world_writable() {
        writeln!(
            out,
            "   WARNING      {now} gives \"others\" write permission: any user on this machine can open {name}"
        )?;
        writeln!(
            out,
            "                and read or overwrite it. The textbook's 0666 is rw-rw-rw-; prefer 0600 (or 0660 for a group)."
        )?;
    } else if c.requested.world_writable() {
        writeln!(
            out,
            "   note         you asked for {} (world-writable); the umask took that away, so others cannot write",
            c.requested
        )?;
    }
    writeln!(out, "4. destroy")?;
    if cli.keep {
        obj.keep();
        writeln!(
            out,
            "   kept (--keep): {name} stays in /dev/shm after this program exits"
        )?;
        writeln!(
            out,
            "   look at it with `ls -l {}` or `shmlab inspect {name}`; remove it with `shmlab clean --name {name}`",
            name.path().display()
        )?;
    } else {
        obj.unlink()?;
        writeln!(
            out,
            "   shm_unlink(\"{name}\"): removed; {} present: {}",
            name.path().display(),
            yes_no(name.path().exists())
        )?;
    }
    drop(obj);

    writeln!(out)?;
    writeln!(out, "What to notice:")?;
    writeln!(
        out,
        "  - the object is an ordinary file in /dev/shm (a tmpfs: memory, not disk); `ls -l /dev/shm` shows it"
    )?;
    writeln!(
        out,
        "  - a new object has 0 bytes until ftruncate sizes it; mmap of 0 bytes fails, and touching a mapping beyond the size raises SIGBUS"
    )?;
    writeln!(
        out,
        "  - the mode you pass to shm_open is a request: the umask ({}) removes bits first",
        c.umask
    )?;
    writeln!(
        out,
        "  - O_EXCL makes creation fail if the name exists, so two creators never share a half-made object"
    )?;
    Ok(ExitCode::SUCCESS)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
