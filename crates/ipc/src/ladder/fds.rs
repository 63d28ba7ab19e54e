//! The rungs that wait in `read(2)`: `eventfd`, `pipe`, `fifo` and
//! `unix-socket`, 8 bytes a message. A pipe, FIFO or socket reader sees
//! end-of-file when its peer dies; an `eventfd` does not. The pipe and FIFO
//! pairs are also [`round_trips`](crate::round_trips)' own.

use super::{Endpoint, Pair, STALL};
use crate::fifo::Fifo;
use crate::{Error, Result, sys};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// A descriptor per direction (or one socket both ways), 8 bytes a message.
struct FdEp {
    tx: File,
    rx: File,
    what: &'static str,
}

impl Endpoint for FdEp {
    fn send(&mut self, v: u32) -> Result<()> {
        self.tx
            .write_all(&u64::from(v).to_le_bytes())
            .map_err(|e| Error::io(format!("{} write", self.what), e))
    }
    fn recv(&mut self) -> Result<u32> {
        let mut b = [0u8; 8];
        self.rx
            .read_exact(&mut b)
            .map_err(|e| Error::io(format!("{} read", self.what), e))?;
        Ok(u64::from_le_bytes(b) as u32)
    }
}

fn files(tx: OwnedFd, rx: OwnedFd, what: &'static str) -> FdEp {
    FdEp {
        tx: File::from(tx),
        rx: File::from(rx),
        what,
    }
}

fn dup(f: &OwnedFd) -> Result<OwnedFd> {
    f.try_clone().map_err(|e| Error::io("dup", e))
}

/// `eventfd`: one counter per direction, the same descriptor read and
/// written by both sides.
pub(super) fn eventfd() -> Result<Pair> {
    let ev = || sys::eventfd().map_err(|e| Error::io("eventfd", e));
    let (down, up) = (ev()?, ev()?);
    let (down2, up2) = (dup(&down)?, dup(&up)?);
    Ok(Pair::new(
        move || Ok(files(down, up, "eventfd")),
        move || Ok(files(up2, down2, "eventfd")),
        (),
    ))
}

/// `pipe`: two anonymous pipes, parent → child and child → parent.
pub(crate) fn pipe_pair() -> Result<Pair> {
    let (down_r, down_w) = crate::pipe()?;
    let (up_r, up_w) = crate::pipe()?;
    Ok(Pair::new(
        move || Ok(files(down_w, up_r, "pipe")),
        move || Ok(files(up_w, down_r, "pipe")),
        (),
    ))
}

/// `unix-socket`: a `socketpair`, each side reading and writing its end.
pub(super) fn unix_socket() -> Result<Pair> {
    let (a, b) = sys::socketpair().map_err(|e| Error::io("socketpair", e))?;
    let (a2, b2) = (dup(&a)?, dup(&b)?);
    Ok(Pair::new(
        move || Ok(files(a, a2, "unix-socket")),
        move || Ok(files(b, b2, "unix-socket")),
        (),
    ))
}

/// `fifo`: two named pipes in the temporary directory (`TAG-down`,
/// `TAG-up`), each opened by path in both processes and removed when the
/// pair's guard drops (and on Ctrl-C).
pub(crate) fn fifo_pair(tag: &str) -> Result<Pair> {
    let down = Fifo::create_temp(&format!("{tag}-down"))?;
    let up = Fifo::create_temp(&format!("{tag}-up"))?;
    // Open our read end before forking: the child's open for writing then
    // finds a reader at once. We read only after the child says it is
    // ready, by which time it has opened its write end (a FIFO read with no
    // writer yet would return end-of-file).
    let up_r = Fifo::open_read_now(up.path())?;
    let (down_p, up_p) = (down.path().to_path_buf(), up.path().to_path_buf());
    let down_p2 = down_p.clone();
    Ok(Pair::new(
        move || {
            // Succeeds once the child sits in its open for reading.
            let tx = Fifo::open_write(&down_p, STALL)?;
            Ok(FdEp {
                tx,
                rx: up_r,
                what: "fifo",
            })
        },
        move || {
            // Blocks until the parent opens the write end, so our first
            // read cannot see a premature end-of-file.
            let rx = Fifo::open_read(&down_p2)?;
            let tx = Fifo::open_write(&up_p, STALL)?;
            Ok(FdEp {
                tx,
                rx,
                what: "fifo",
            })
        },
        (down, up),
    ))
}
