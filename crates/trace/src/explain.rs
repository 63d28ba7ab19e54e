//! Words for what a traced program did: flags, modes and protections
//! spelled out, and one or two sentences with the fix for each classic
//! failure. Pure functions of what the tracer saw (no system calls), so
//! every sentence is unit-tested.

/// Facts about an existing object, read by the tracer when a call failed
/// (`None` if it does not exist or could not be read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjFacts {
    /// Owner uid.
    pub uid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
}

/// What the tracer knows around a failed or surprising `shm_open`
/// (`openat` under `/dev/shm`).
#[derive(Clone, Copy, Debug)]
pub struct OpenCtx<'a> {
    /// The name as the program gave it to `shm_open` (`/NAME`).
    pub name: &'a str,
    /// `open` flags as passed.
    pub flags: i32,
    /// Mode asked (the third argument).
    pub mode: u32,
    /// The process's umask at the call.
    pub umask: u32,
    /// The process's effective uid.
    pub uid: u32,
    /// The object as it is now, if it exists.
    pub obj: Option<ObjFacts>,
}

/// Joins the names of the set bits of `v` from `table`, then any bits left
/// as hex.
fn bits(mut v: i64, table: &[(i64, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for &(bit, name) in table {
        if bit != 0 && v & bit == bit {
            out.push(name.to_string());
            v &= !bit;
        }
    }
    if v != 0 {
        out.push(format!("{v:#x}"));
    }
    out
}

/// `open(2)` flags: the access mode first, then the rest
/// (`O_CREAT | O_EXCL | O_RDWR` reads `O_RDWR | O_CREAT | O_EXCL`).
pub fn open_flags(flags: i32) -> String {
    let access = match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let table: &[(i64, &str)] = &[
        (libc::O_CREAT as i64, "O_CREAT"),
        (libc::O_EXCL as i64, "O_EXCL"),
        (libc::O_TRUNC as i64, "O_TRUNC"),
        (libc::O_APPEND as i64, "O_APPEND"),
        (libc::O_NONBLOCK as i64, "O_NONBLOCK"),
        (libc::O_NOFOLLOW as i64, "O_NOFOLLOW"),
        (libc::O_CLOEXEC as i64, "O_CLOEXEC"),
        (libc::O_DIRECTORY as i64, "O_DIRECTORY"),
        (libc::O_NOCTTY as i64, "O_NOCTTY"),
        (libc::O_SYNC as i64, "O_SYNC"),
        (libc::O_LARGEFILE as i64, "O_LARGEFILE"),
        (libc::O_NOATIME as i64, "O_NOATIME"),
        (libc::O_PATH as i64, "O_PATH"),
        (
            libc::O_TMPFILE as i64 & !(libc::O_DIRECTORY as i64),
            "O_TMPFILE",
        ),
    ];
    let rest = bits(i64::from(flags & !libc::O_ACCMODE), table);
    std::iter::once(access.to_string())
        .chain(rest)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// `mmap`/`mprotect` protection: `PROT_READ | PROT_WRITE`, `PROT_NONE`.
pub fn prot(p: i32) -> String {
    if p == libc::PROT_NONE {
        return "PROT_NONE".into();
    }
    bits(
        i64::from(p),
        &[
            (libc::PROT_READ as i64, "PROT_READ"),
            (libc::PROT_WRITE as i64, "PROT_WRITE"),
            (libc::PROT_EXEC as i64, "PROT_EXEC"),
        ],
    )
    .join(" | ")
}

/// `mmap` flags: the sharing type first.
pub fn map_flags(f: i32) -> String {
    let kind = match f & 0x03 {
        x if x == libc::MAP_SHARED => "MAP_SHARED",
        x if x == libc::MAP_PRIVATE => "MAP_PRIVATE",
        x if x == libc::MAP_SHARED_VALIDATE => "MAP_SHARED_VALIDATE",
        _ => "(neither MAP_SHARED nor MAP_PRIVATE)",
    };
    let rest = bits(
        i64::from(f & !0x03),
        &[
            (libc::MAP_FIXED as i64, "MAP_FIXED"),
            (libc::MAP_FIXED_NOREPLACE as i64, "MAP_FIXED_NOREPLACE"),
            (libc::MAP_ANONYMOUS as i64, "MAP_ANONYMOUS"),
            (libc::MAP_POPULATE as i64, "MAP_POPULATE"),
            (libc::MAP_NORESERVE as i64, "MAP_NORESERVE"),
            (libc::MAP_LOCKED as i64, "MAP_LOCKED"),
            (libc::MAP_GROWSDOWN as i64, "MAP_GROWSDOWN"),
            (libc::MAP_STACK as i64, "MAP_STACK"),
        ],
    );
    std::iter::once(kind.to_string())
        .chain(rest)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A mode as the notes write it: `0644 (rw-r--r--)`.
pub fn mode(m: u32) -> String {
    let m = shm::Mode::from_bits_truncate(m & 0o7777);
    format!("{m} ({})", m.symbolic())
}

/// `ENOENT`; an unknown number as `errno 123`.
pub fn errno_name(e: i32) -> String {
    let name = nix::errno::Errno::from_raw(e);
    if name == nix::errno::Errno::UnknownErrno {
        format!("errno {e}")
    } else {
        format!("{name:?}")
    }
}

/// Why a `shm_open` failed and what to do, for the errors students meet.
pub fn explain_open(errno: i32, ctx: &OpenCtx<'_>) -> Option<String> {
    let name = ctx.name;
    let base = name.trim_start_matches('/');
    let creating = ctx.flags & libc::O_CREAT != 0;
    Some(match errno {
        libc::ENOENT if !creating => format!(
            "{name} does not exist yet: nobody has created it (shm_open with O_CREAT). Start the producer first, or wait and retry until it exists"
        ),
        libc::ENOENT => format!(
            "{name} could not be created: /dev/shm is missing or not a directory (is tmpfs mounted on /dev/shm?)"
        ),
        libc::EEXIST => {
            let what = ctx.obj.map_or_else(String::new, |o| {
                format!(
                    " (owner uid {}, mode {}, {} bytes)",
                    o.uid,
                    mode(o.mode),
                    o.size
                )
            });
            format!(
                "{name} already exists{what} and O_CREAT | O_EXCL asks for a new one: probably a leftover from an earlier run that never called shm_unlink. Remove it (shmlab clean, or rm /dev/shm/{base}) and call shm_unlink at the end of your program"
            )
        }
        libc::EACCES | libc::EPERM => {
            let wants = match ctx.flags & libc::O_ACCMODE {
                libc::O_RDONLY => "read",
                libc::O_WRONLY => "write",
                _ => "read and write",
            };
            match ctx.obj {
                Some(o) => format!(
                    "{name} belongs to uid {} with mode {}; this process (uid {}) asked to {wants} it and the mode does not allow that. Open it with the access the mode grants, or have its owner widen the mode (fchmod) or create it with a wider one (mind the umask)",
                    o.uid,
                    mode(o.mode),
                    ctx.uid
                ),
                None => format!(
                    "permission denied on {name}: this process (uid {}) may not {wants} it. Check the object's owner and mode (ls -l /dev/shm)",
                    ctx.uid
                ),
            }
        }
        libc::EINVAL => {
            if base.is_empty() || base == "." || base == ".." {
                format!("{name:?} is not a valid name: give shm_open a name like \"/myshm\"")
            } else if base.contains('/') {
                format!(
                    "{name} has a second '/': a shared-memory name is one leading '/' and then no other (\"/myshm\", not \"/dir/myshm\")"
                )
            } else {
                format!("shm_open rejected {name}: check the name (one leading '/') and the flags")
            }
        }
        libc::ENAMETOOLONG => format!(
            "the name is {} bytes after its '/'; the limit is NAME_MAX (255): use a shorter name",
            base.len()
        ),
        libc::EMFILE => "this process has as many descriptors open as its limit allows (ulimit -n): close the ones you no longer need (after mmap the descriptor can be closed)".to_string(),
        libc::ENFILE => "the whole system is out of open-file slots: close descriptors you no longer need".to_string(),
        libc::ENOSPC => "/dev/shm is full: see df -h /dev/shm and remove leftovers (shmlab clean)".to_string(),
        _ => return None,
    })
}

/// When the umask took bits off the mode `shm_open` asked for.
pub fn explain_umask(asked: u32, umask: u32) -> Option<String> {
    let asked = asked & 0o7777;
    let given = asked & !umask;
    (given != asked).then(|| {
        format!(
            "asked for mode {} but the umask {:04o} removed bits: the object has {}. If others must open it, call fchmod(fd, {:04o}) after shm_open, or umask(0) before it",
            mode(asked),
            umask & 0o777,
            mode(given),
            asked
        )
    })
}

/// Why an `mmap` of a shared object failed.
pub fn explain_mmap(
    errno: i32,
    prot: i32,
    flags: i32,
    fd_access: i32,
    len: u64,
    offset: u64,
) -> Option<String> {
    let shared = flags & 0x03 == libc::MAP_SHARED || flags & 0x03 == libc::MAP_SHARED_VALIDATE;
    Some(match errno {
        libc::EACCES if shared && prot & libc::PROT_WRITE != 0 && fd_access == libc::O_RDONLY => {
            "PROT_WRITE with MAP_SHARED needs a descriptor opened for writing, and this one was opened O_RDONLY: open it O_RDWR, or map it PROT_READ only".to_string()
        }
        libc::EACCES if fd_access == libc::O_WRONLY => {
            "the descriptor was opened O_WRONLY, and mmap always needs read access: open it O_RDWR (or O_RDONLY for PROT_READ)".to_string()
        }
        libc::EACCES => {
            "the descriptor does not allow this protection: open it O_RDWR for PROT_WRITE with MAP_SHARED".to_string()
        }
        libc::EINVAL if len == 0 => {
            "length 0: mmap needs the size to map. Size the object with ftruncate first and pass that size".to_string()
        }
        libc::EINVAL if offset % 4096 != 0 => format!(
            "offset {offset} is not a multiple of the page size (4096): map from offset 0, or from a page boundary"
        ),
        libc::EINVAL if flags & 0x03 == 0 || flags & 0x03 == 0x03 => {
            "mmap needs exactly one of MAP_SHARED (others see your writes) or MAP_PRIVATE".to_string()
        }
        libc::EINVAL => "mmap rejected its arguments: check the length, offset and flags".to_string(),
        libc::ENODEV => "this descriptor cannot be mapped (it is not a file, not shared memory)".to_string(),
        libc::ENOMEM => format!(
            "no room for {len} bytes in this process's address space (or a limit): map less"
        ),
        libc::EBADF => "the descriptor is not open (closed already, or the shm_open that made it failed)".to_string(),
        _ => return None,
    })
}

/// Why an `ftruncate` of a shared object failed.
pub fn explain_ftruncate(errno: i32, fd_access: i32, len: i64) -> Option<String> {
    Some(match errno {
        libc::EINVAL if len < 0 => format!("length {len} is negative: give the size in bytes"),
        libc::EINVAL | libc::EBADF if fd_access == libc::O_RDONLY => {
            "ftruncate needs a descriptor opened for writing, and this one was opened O_RDONLY: the producer should size the object it opened O_RDWR".to_string()
        }
        libc::EINVAL => "ftruncate rejected the size or the descriptor".to_string(),
        libc::EBADF => "the descriptor is not open for writing".to_string(),
        libc::EFBIG => format!("{len} bytes is more than a file may hold here: use a smaller size"),
        libc::ENOSPC => "/dev/shm is full: see df -h /dev/shm and remove leftovers (shmlab clean)".to_string(),
        libc::EPERM => "the object may not be resized (sealed, or immutable)".to_string(),
        _ => return None,
    })
}

/// Why a `shm_unlink` or `sem_unlink` failed.
pub fn explain_unlink(errno: i32, name: &str) -> Option<String> {
    Some(match errno {
        libc::ENOENT => format!(
            "{name} is already gone: another process removed it, this program removed it twice, or it was never created"
        ),
        libc::EACCES | libc::EPERM => format!(
            "{name} is not yours: /dev/shm is sticky, so only its owner (or root) may remove it"
        ),
        _ => return None,
    })
}

/// A `SIGBUS` at `offset` of the object `name`.
pub fn explain_sigbus(
    name: &str,
    offset: u64,
    size_now: Option<u64>,
    shrunk_by: Option<(i32, u64, u64)>,
    size_ever_set: bool,
) -> String {
    let size = size_now.map_or_else(
        || "no longer exists".to_string(),
        |s| format!("is {s} bytes long"),
    );
    let head = format!("the program touched offset {offset} of {name}, which {size}");
    let why = match (size_now, shrunk_by) {
        (_, Some((pid, old, new))) if offset >= new => format!(
            "pid {pid} shrank it from {old} to {new} bytes (ftruncate) while it was mapped: pages past the end raise SIGBUS. Do not shrink an object others have mapped"
        ),
        (Some(0), _) if !size_ever_set => {
            "it was never sized: shm_open makes an empty object. Call ftruncate(fd, size) before mmap (the producer does; the consumer uses the size)".to_string()
        }
        (Some(s), _) if offset >= s => {
            "a mapping may be longer than the object, but touching past its end raises SIGBUS: map at most the object's size, or ftruncate it larger first".to_string()
        }
        (Some(_), _) => {
            "the page is inside the object, so the kernel could not give it memory: /dev/shm was probably full when the page was first touched (df -h /dev/shm; shmlab clean)".to_string()
        }
        (None, _) => "it was removed and truncated meanwhile".to_string(),
    };
    format!("{head}: {why}")
}

/// A `SIGSEGV` writing into a mapping made without `PROT_WRITE`.
pub fn explain_sigsegv_write(name: &str, prot_now: i32) -> String {
    format!(
        "a write into the mapping of {name}, which is {}: map it PROT_READ | PROT_WRITE (from a descriptor opened O_RDWR) if this process must write",
        prot(prot_now)
    )
}

/// `EPIPE` from a write to a pipe.
pub fn explain_epipe(fd: i32) -> String {
    format!(
        "write to fd {fd} failed with EPIPE: every read end of the pipe is closed, nobody will read. Keep the reader alive until the writer is done"
    )
}

/// `SIGPIPE`.
pub fn explain_sigpipe() -> String {
    "SIGPIPE: the process wrote to a pipe or FIFO whose read ends are all closed (the reader exited or closed it); by default that kills the writer. Keep a reader until the writer is done, or ignore SIGPIPE and handle EPIPE".to_string()
}

/// A hang: `reader_pid` reads pipe `fd` whose write end is still open in
/// `writers` (pid, fd).
pub fn explain_hang_pipe(reader_pid: i32, fd: i32, writers: &[(i32, i32)]) -> String {
    if writers.is_empty() {
        return format!(
            "pid {reader_pid} reads pipe fd {fd}, and no traced process holds its write end: a process outside the trace must write or close it"
        );
    }
    let who: Vec<String> = writers
        .iter()
        .map(|&(pid, wfd)| {
            if pid == reader_pid {
                format!("pid {pid} itself (fd {wfd})")
            } else {
                format!("pid {pid} (fd {wfd})")
            }
        })
        .collect();
    let own = writers.iter().any(|&(p, _)| p == reader_pid);
    let fix = if own {
        "close the write end you do not use (in the reader, right after fork) so that read sees end-of-file"
    } else {
        "the writer must write or close its end so that read sees end-of-file"
    };
    format!(
        "pid {reader_pid} reads pipe fd {fd}; its write end is still open in {}: {fix}",
        who.join(" and in ")
    )
}

/// A hang in `open` of a FIFO, which waits for the other end.
pub fn explain_hang_fifo_open(pid: i32, path: &str, for_write: bool) -> String {
    let (me, other) = if for_write {
        ("writing", "reader")
    } else {
        ("reading", "writer")
    };
    format!(
        "pid {pid} opens FIFO {path} for {me}, which waits until a {other} opens it too: start the {other}, or open with O_NONBLOCK"
    )
}

/// A hang in a futex wait on shared memory.
pub fn explain_hang_futex(pid: i32, name: &str, offset: u64) -> String {
    format!(
        "pid {pid} waits on {name} offset {offset} (a sem_wait, pthread_mutex_lock or condition variable wait): no running process will post, unlock or signal it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_modes_and_protections_are_spelled_out() {
        assert_eq!(
            open_flags(libc::O_CREAT | libc::O_EXCL | libc::O_RDWR),
            "O_RDWR | O_CREAT | O_EXCL"
        );
        assert_eq!(open_flags(libc::O_RDONLY), "O_RDONLY");
        assert_eq!(
            open_flags(libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC),
            "O_RDWR | O_NOFOLLOW | O_CLOEXEC"
        );
        assert!(open_flags(libc::O_RDONLY | 0x4000_0000).ends_with("0x40000000"));
        assert_eq!(
            prot(libc::PROT_READ | libc::PROT_WRITE),
            "PROT_READ | PROT_WRITE"
        );
        assert_eq!(prot(libc::PROT_NONE), "PROT_NONE");
        assert_eq!(map_flags(libc::MAP_SHARED), "MAP_SHARED");
        assert_eq!(
            map_flags(libc::MAP_PRIVATE | libc::MAP_FIXED),
            "MAP_PRIVATE | MAP_FIXED"
        );
        assert_eq!(mode(0o644), "0644 (rw-r--r--)");
        assert_eq!(errno_name(libc::ENOENT), "ENOENT");
        assert_eq!(errno_name(9999), "errno 9999");
    }

    fn ctx(name: &str, flags: i32, obj: Option<ObjFacts>) -> OpenCtx<'_> {
        OpenCtx {
            name,
            flags,
            mode: 0o666,
            umask: 0o022,
            uid: 1000,
            obj,
        }
    }

    #[test]
    fn open_failures_name_the_cause_and_the_fix() {
        let e = explain_open(libc::ENOENT, &ctx("/demo", libc::O_RDONLY, None)).unwrap();
        assert!(
            e.contains("/demo does not exist yet") && e.contains("producer first"),
            "{e}"
        );
        let obj = ObjFacts {
            uid: 0,
            mode: 0o600,
            size: 4096,
        };
        let e = explain_open(
            libc::EEXIST,
            &ctx(
                "/demo",
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                Some(obj),
            ),
        )
        .unwrap();
        assert!(
            e.contains("owner uid 0, mode 0600 (rw-------), 4096 bytes"),
            "{e}"
        );
        assert!(
            e.contains("rm /dev/shm/demo") && e.contains("shmlab clean"),
            "{e}"
        );
        let e = explain_open(libc::EACCES, &ctx("/demo", libc::O_RDWR, Some(obj))).unwrap();
        assert!(
            e.contains("uid 0 with mode 0600") && e.contains("(uid 1000)"),
            "{e}"
        );
        let e = explain_open(libc::EINVAL, &ctx("/a/b", libc::O_RDWR, None)).unwrap();
        assert!(e.contains("second '/'"), "{e}");
        let long = format!("/{}", "x".repeat(300));
        let e = explain_open(libc::ENAMETOOLONG, &ctx(&long, libc::O_RDWR, None)).unwrap();
        assert!(e.contains("300 bytes") && e.contains("255"), "{e}");
        assert!(
            explain_open(libc::EMFILE, &ctx("/x", 0, None))
                .unwrap()
                .contains("ulimit -n")
        );
        assert!(
            explain_open(libc::ENOSPC, &ctx("/x", 0, None))
                .unwrap()
                .contains("df -h")
        );
        assert_eq!(explain_open(libc::EIO, &ctx("/x", 0, None)), None);
    }

    #[test]
    fn the_umask_is_explained_only_when_it_changed_the_mode() {
        assert_eq!(explain_umask(0o644, 0o022), None);
        let e = explain_umask(0o666, 0o022).unwrap();
        assert!(
            e.contains("0666 (rw-rw-rw-)") && e.contains("0644 (rw-r--r--)"),
            "{e}"
        );
        assert!(
            e.contains("fchmod(fd, 0666)") && e.contains("umask(0)"),
            "{e}"
        );
    }

    #[test]
    fn mmap_ftruncate_and_unlink_failures() {
        let e = explain_mmap(
            libc::EACCES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            libc::O_RDONLY,
            4096,
            0,
        )
        .unwrap();
        assert!(e.contains("O_RDONLY") && e.contains("O_RDWR"), "{e}");
        let e = explain_mmap(
            libc::EINVAL,
            libc::PROT_READ,
            libc::MAP_SHARED,
            libc::O_RDWR,
            0,
            0,
        )
        .unwrap();
        assert!(e.contains("ftruncate"), "{e}");
        let e = explain_mmap(
            libc::EINVAL,
            libc::PROT_READ,
            libc::MAP_SHARED,
            0,
            4096,
            100,
        )
        .unwrap();
        assert!(e.contains("offset 100"), "{e}");
        assert!(
            explain_ftruncate(libc::EINVAL, libc::O_RDONLY, 4096)
                .unwrap()
                .contains("O_RDONLY")
        );
        assert!(
            explain_ftruncate(libc::EINVAL, libc::O_RDWR, -1)
                .unwrap()
                .contains("-1")
        );
        assert!(
            explain_unlink(libc::ENOENT, "/x")
                .unwrap()
                .contains("already gone")
        );
        assert!(
            explain_unlink(libc::EPERM, "/x")
                .unwrap()
                .contains("sticky")
        );
        assert_eq!(explain_unlink(libc::EIO, "/x"), None);
    }

    #[test]
    fn faults_say_which_object_which_offset_and_why() {
        let e = explain_sigbus("/demo", 0, Some(0), None, false);
        assert!(
            e.contains("offset 0 of /demo, which is 0 bytes long"),
            "{e}"
        );
        assert!(e.contains("never sized") && e.contains("ftruncate"), "{e}");
        let e = explain_sigbus("/demo", 5000, Some(4096), Some((42, 8192, 4096)), true);
        assert!(e.contains("pid 42 shrank it from 8192 to 4096"), "{e}");
        let e = explain_sigbus("/demo", 5000, Some(4096), None, true);
        assert!(e.contains("past its end"), "{e}");
        let e = explain_sigbus("/demo", 100, Some(4096), None, true);
        assert!(e.contains("full"), "{e}");
        let e = explain_sigsegv_write("/demo", libc::PROT_READ);
        assert!(e.contains("PROT_READ") && e.contains("O_RDWR"), "{e}");
        assert!(explain_sigpipe().contains("read ends"));
        assert!(explain_epipe(4).contains("fd 4"));
    }

    #[test]
    fn hangs_say_who_waits_and_who_could_end_it() {
        let e = explain_hang_pipe(12, 5, &[(12, 4), (13, 6)]);
        assert_eq!(
            e,
            "pid 12 reads pipe fd 5; its write end is still open in pid 12 itself (fd 4) and in pid 13 (fd 6): close the write end you do not use (in the reader, right after fork) so that read sees end-of-file"
        );
        assert!(explain_hang_pipe(12, 5, &[]).contains("outside the trace"));
        assert!(explain_hang_fifo_open(3, "/tmp/f", true).contains("until a reader"));
        assert!(explain_hang_futex(3, "/demo", 64).contains("/demo offset 64"));
    }
}
