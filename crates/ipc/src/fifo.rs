//! Named pipes: `mkfifo(3)` makes a pipe with a name in the file system, so
//! two processes that share no ancestor can open it by path.

use crate::{Error, Result, sys};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A FIFO this process made. It is registered with [`shm::cleanup`] (so
/// Ctrl-C removes it) and removed when dropped.
#[derive(Debug)]
pub struct Fifo {
    path: PathBuf,
    removed: bool,
}

impl Fifo {
    /// `mkfifo(dir/shmlab-<purpose>-<pid>-<n>.fifo, 0600)` in the system's
    /// temporary directory (`$TMPDIR` or `/tmp`).
    pub fn create_temp(purpose: &str) -> Result<Fifo> {
        let file = format!("{}.fifo", shm::unique_tag(purpose));
        Fifo::create(std::env::temp_dir().join(file))
    }

    /// `mkfifo(path, 0600)`; fails if `path` exists.
    pub fn create(path: impl Into<PathBuf>) -> Result<Fifo> {
        let path = path.into();
        sys::mkfifo(&path, 0o600)
            .map_err(|e| Error::io(format!("mkfifo {}", path.display()), e))?;
        shm::cleanup::register_path(&path);
        Ok(Fifo {
            path,
            removed: false,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `open(path, O_RDONLY | O_NONBLOCK)`, then back to blocking reads: the
    /// open itself never waits for a writer. Careful: until a writer has
    /// opened the FIFO, `read` returns 0 (end-of-file) at once.
    pub fn open_read_now(path: &Path) -> Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Error::io(format!("open {} for reading", path.display()), e))?;
        sys::set_blocking(&f).map_err(|e| Error::io("fcntl(F_SETFL)", e))?;
        Ok(f)
    }

    /// `open(path, O_RDONLY)`, the textbook way: blocks until some process
    /// opens the FIFO for writing.
    pub fn open_read(path: &Path) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Error::io(format!("open {} for reading", path.display()), e))
    }

    /// Opens `path` for writing once a reader has it open, waiting at most
    /// `timeout`. A plain `open(O_WRONLY)` would block forever if the reader
    /// never came; `O_NONBLOCK` fails with `ENXIO` instead, so this retries
    /// that every millisecond, then switches the descriptor back to blocking
    /// writes.
    pub fn open_write(path: &Path, timeout: Duration) -> Result<File> {
        let deadline = Instant::now() + timeout;
        loop {
            match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
            {
                Ok(f) => {
                    sys::set_blocking(&f).map_err(|e| Error::io("fcntl(F_SETFL)", e))?;
                    return Ok(f);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    let what = if e.raw_os_error() == Some(libc::ENXIO) {
                        format!(
                            "open {} for writing (no reader opened it within {timeout:?})",
                            path.display()
                        )
                    } else {
                        format!("open {} for writing", path.display())
                    };
                    return Err(Error::io(what, e));
                }
            }
        }
    }

    /// `unlink(path)` now (dropping does the same, ignoring errors).
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        shm::cleanup::unregister_path(&self.path);
        std::fs::remove_file(&self.path)
            .map_err(|e| Error::io(format!("unlink {}", self.path.display()), e))
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_file(&self.path);
            shm::cleanup::unregister_path(&self.path);
        }
    }
}
