//! Lab 2: the textbook's producer and consumer, in two terminals.
//!
//! The layout is the textbook's, so C and Python programs interoperate with
//! these: a plain object (no shmlab header) of 4096 bytes whose first bytes
//! are a NUL-terminated message. The producer creates it with
//! `O_CREAT | O_EXCL`, writes the message and exits *leaving the object in
//! place*; the consumer opens it by name, waits (bounded) for a late
//! producer, prints the message and `shm_unlink`s the name.

use crate::fmt;
use anyhow::{Context, bail};
use shm::{Access, Mode, ShmName, ShmObject, ShmOptions};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

/// The textbook's message.
pub const DEFAULT_MESSAGE: &str = "Studying Operating Systems Is Fun!";

/// Flags of `lab2-producer`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lab2-producer",
    version,
    about = "Lab 2 (first terminal): create the textbook's shared segment and leave a message in it",
    after_help = "Then run `lab2-consumer` (or the textbook's C consumer) with the same --name in a second terminal."
)]
pub struct ProducerCli {
    /// Object name; the textbook's `OS` means `/OS` (glibc adds the slash)
    #[arg(long, default_value = "OS")]
    pub name: ShmName,
    /// Size of the segment in bytes
    #[arg(long, default_value = "4096", value_parser = shm::parse_size)]
    pub size: u64,
    /// The message to leave, NUL-terminated, at offset 0
    #[arg(long, default_value = DEFAULT_MESSAGE, allow_hyphen_values = true)]
    pub message: String,
    /// Mode of the new object (the textbook uses 0666; 0600 lets only you read it)
    #[arg(long, default_value = "0600", allow_hyphen_values = true)]
    pub mode: Mode,
}

/// Flags of `lab2-consumer`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lab2-consumer",
    version,
    about = "Lab 2 (second terminal): open the textbook's shared segment by name, print its message, remove it",
    after_help = "Started before the producer, it waits up to --wait seconds for the object and its message."
)]
pub struct ConsumerCli {
    /// Object name; the textbook's `OS` means `/OS`
    #[arg(long, default_value = "OS")]
    pub name: ShmName,
    /// Seconds to wait for the producer (0: do not wait)
    #[arg(long, default_value = "10", value_parser = fmt::parse_seconds, allow_hyphen_values = true)]
    pub wait: Duration,
    /// Leave the object in /dev/shm instead of unlinking it
    #[arg(long)]
    pub keep: bool,
}

/// Runs the producer.
pub fn run_producer(cli: &ProducerCli) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    let name = &cli.name;
    let msg = cli.message.as_bytes();
    if msg.is_empty() {
        bail!(
            "the --message is empty; a consumer could not tell it from a segment nobody wrote yet"
        );
    }
    if msg.contains(&0) {
        bail!("the --message contains a NUL byte; C would stop reading there: remove it");
    }
    if msg.len() as u64 + 1 > cli.size {
        bail!(
            "the message ({} bytes plus its NUL) does not fit in --size {}; give a larger --size or a shorter --message",
            msg.len(),
            cli.size
        );
    }
    let len = usize::try_from(cli.size).context("--size is larger than the address space")?;

    writeln!(
        out,
        "lab2-producer: leave a message in shared memory for another process"
    )?;
    writeln!(
        out,
        "shm_open(\"{name}\", O_CREAT | O_EXCL | O_RDWR, {})",
        cli.mode
    )?;
    let mut obj = match ShmOptions::new().create_new(true).mode(cli.mode).open(name) {
        Ok(o) => o,
        Err(shm::Error::AlreadyExists { .. }) => bail!(
            "{name} already exists in /dev/shm (a message nobody consumed yet?); read it with `lab2-consumer --name {name}` or remove it with `shmlab clean --name {name}`"
        ),
        Err(e) => return Err(e.into()),
    };
    obj.set_len(cli.size)?;
    writeln!(
        out,
        "ftruncate to {} bytes; mode {}",
        cli.size,
        fmt::mode(obj.stat()?.mode)
    )?;
    let map = obj.map(Access::ReadWrite, len)?;
    writeln!(out, "mmap({len} bytes, PROT_READ | PROT_WRITE, MAP_SHARED)")?;
    // Everything but the first byte, then the first byte last: a consumer
    // that sees a non-zero first byte (and fences) sees the whole message.
    map.write(1, &msg[1..])?;
    map.write(msg.len(), &[0])?;
    fence(Ordering::Release);
    map.write(0, &msg[..1])?;
    writeln!(
        out,
        "wrote {} bytes plus a NUL at offset 0: {:?}",
        msg.len(),
        cli.message
    )?;
    obj.keep();
    drop(map);
    drop(obj);
    writeln!(
        out,
        "unmapped and closed; {name} stays in /dev/shm for the consumer"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Now run in another terminal:  lab2-consumer --name {name}"
    )?;
    writeln!(out, "What to notice:")?;
    writeln!(
        out,
        "  - the producer has exited, yet the message lives on: the object belongs to the kernel, not to a process"
    )?;
    writeln!(
        out,
        "  - `ls -l {}` shows it; the consumer removes it with shm_unlink",
        name.path().display()
    )?;
    writeln!(
        out,
        "  - the layout is the textbook's (a C string at offset 0), so the C consumer reads it too"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the consumer.
pub fn run_consumer(cli: &ConsumerCli) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    let name = &cli.name;
    let start = Instant::now();
    let deadline = start + cli.wait;
    let poll = Duration::from_millis(20);
    let waited = |start: Instant| format!("{:.1} s", start.elapsed().as_secs_f64());

    writeln!(
        out,
        "lab2-consumer: read the message a producer left in shared memory"
    )?;
    // 1. The name.
    let mut said_waiting = false;
    let mut obj: ShmObject = loop {
        match ShmOptions::new().read_only(true).open(name) {
            Ok(o) => break o,
            Err(shm::Error::NotFound { .. }) if Instant::now() < deadline => {
                if !said_waiting {
                    writeln!(
                        out,
                        "{name} does not exist yet: waiting up to {} s for a producer...",
                        cli.wait.as_secs_f64()
                    )?;
                    out.flush()?;
                    said_waiting = true;
                }
                std::thread::sleep(poll);
            }
            Err(shm::Error::NotFound { .. }) => bail!(
                "{name} does not exist in /dev/shm (waited {}); start `lab2-producer --name {name}` first, or give --wait more seconds",
                waited(start)
            ),
            Err(e) => return Err(e.into()),
        }
    };
    if said_waiting {
        writeln!(out, "{name} appeared after {}", waited(start))?;
    }
    // 2. Its size: the producer may not have sized it yet.
    let size = loop {
        let st = obj.stat()?;
        if st.size > 0 {
            break st.size;
        }
        if Instant::now() >= deadline {
            bail!(
                "{name} exists but has 0 bytes (waited {}); its producer never sized it: remove it with `shmlab clean --name {name}`",
                waited(start)
            );
        }
        std::thread::sleep(poll);
    };
    let st = obj.stat()?;
    writeln!(
        out,
        "opened {name} read-only: {size} bytes, mode {}, owner {}",
        fmt::mode(st.mode),
        shm::users::user_name(st.uid)
    )?;
    let len = usize::try_from(size).context("the object is larger than the address space")?;
    let map = obj.map(Access::ReadOnly, len)?;
    writeln!(out, "mmap({len} bytes, PROT_READ, MAP_SHARED)")?;
    if map.read(0, 8) == shm::MAGIC.to_le_bytes() {
        bail!(
            "{name} is a shmlab region, not a textbook message segment; look at it with `shmlab inspect {name}`"
        );
    }
    // 3. The message: wait for a first byte, then for the string to settle
    // (a C producer writes front to back with no ordering of its own).
    let msg = loop {
        if map.read(0, 1) != [0] {
            fence(Ordering::Acquire);
            let mut last = map.read_c_string(0);
            loop {
                std::thread::sleep(Duration::from_millis(10));
                let now = map.read_c_string(0);
                if now == last || Instant::now() >= deadline {
                    break;
                }
                last = now;
            }
            break last;
        }
        if Instant::now() >= deadline {
            bail!(
                "{name} holds no message (its first byte is still NUL after {}); is a producer writing it?",
                waited(start)
            );
        }
        std::thread::sleep(poll);
    };
    let nul = if msg.len() < len {
        "NUL-terminated"
    } else {
        "no NUL: read to the end"
    };
    writeln!(out, "the message at offset 0 ({} bytes, {nul}):", msg.len())?;
    writeln!(out)?;
    writeln!(out, "{}", String::from_utf8_lossy(&msg))?;
    writeln!(out)?;
    drop(map);
    if cli.keep {
        writeln!(
            out,
            "kept (--keep): {name} stays; remove it with `shmlab clean --name {name}`"
        )?;
    } else {
        obj.unlink()?;
        writeln!(
            out,
            "shm_unlink(\"{name}\"): removed, as the textbook's consumer does ({} present: {})",
            name.path().display(),
            if name.path().exists() { "yes" } else { "no" }
        )?;
    }
    drop(obj);
    writeln!(out, "What to notice:")?;
    writeln!(
        out,
        "  - two unrelated processes met through a name; neither passed the other a pointer or a descriptor"
    )?;
    writeln!(
        out,
        "  - nothing told the consumer when the message was complete: it polled; real programs need synchronisation (labs 4 and 7)"
    )?;
    writeln!(
        out,
        "  - after shm_unlink a second consumer finds nothing: the consumer destroys the segment"
    )?;
    Ok(ExitCode::SUCCESS)
}
