//! Shared-memory object names.

use crate::{Error, Result};
use std::fmt;

/// Longest name component Linux accepts (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// A validated POSIX shared-memory name: a leading `/`, then 1 to
/// `NAME_MAX` bytes with no further `/` and no NUL.
///
/// **Normalisation.** POSIX leaves names without a leading slash
/// implementation-defined; glibc's `shm_open` skips leading slashes, so in C
/// on Linux the textbook's `shm_open("OS", ...)` and `shm_open("/OS", ...)`
/// reach the same file, `/dev/shm/OS`. [`ShmName::parse`] does the same
/// thing explicitly: `OS` becomes `/OS`. Anything else that glibc would
/// refuse (an inner `/`, `.`/`..`, an empty name) is refused here, with a
/// reason.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShmName(String);

impl ShmName {
    /// Validates `input`, adding the leading `/` if it is missing (see the
    /// type's docs for why that is what C does on Linux).
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidName {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(bad("it is empty"));
        }
        if input.contains('\0') {
            return Err(bad("it contains a NUL byte"));
        }
        let body = input.strip_prefix('/').unwrap_or(input);
        if body.is_empty() {
            return Err(bad("it has nothing after the leading /"));
        }
        if body.contains('/') {
            return Err(bad("only the leading / is allowed; it contains another /"));
        }
        if body == "." || body == ".." {
            return Err(bad("'.' and '..' are directory entries, not object names"));
        }
        if body.len() > NAME_MAX {
            return Err(bad("it is longer than NAME_MAX (255 bytes after the /)"));
        }
        Ok(ShmName(format!("/{body}")))
    }

    /// A name unique to this process and purpose: `/shmlab-<purpose>-<pid>-<n>`.
    pub fn unique(purpose: &str) -> Self {
        ShmName(format!("/{}", unique_tag(purpose)))
    }

    /// The name with its leading slash, as passed to `shm_open`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its leading slash: the file name in `/dev/shm`.
    pub fn file_name(&self) -> &str {
        &self.0[1..]
    }

    /// The file that backs the object: `/dev/shm/NAME`.
    pub fn path(&self) -> std::path::PathBuf {
        std::path::Path::new(crate::SHM_DIR).join(self.file_name())
    }
}

/// `shmlab-<purpose>-<pid>-<n>`: the name shmlab gives everything it
/// creates (objects, semaphores, FIFOs), unique per process and call, with
/// the purpose reduced to `[A-Za-z0-9-]` and 64 characters. The pid in it
/// is what `shmlab clean` uses to tell whether the creator is gone.
pub fn unique_tag(purpose: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let purpose: String = purpose
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    format!("shmlab-{purpose}-{}-{n}", std::process::id())
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for ShmName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl nix::NixPath for ShmName {
    fn is_empty(&self) -> bool {
        false
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn with_nix_path<T, F>(&self, f: F) -> nix::Result<T>
    where
        F: FnOnce(&std::ffi::CStr) -> T,
    {
        self.0.as_str().with_nix_path(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_name_gets_its_slash() {
        assert_eq!(ShmName::parse("OS").unwrap().as_str(), "/OS");
        assert_eq!(
            ShmName::parse("/OS").unwrap(),
            ShmName::parse("OS").unwrap()
        );
        assert_eq!(
            ShmName::parse("OS").unwrap().path().to_str(),
            Some("/dev/shm/OS")
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "/",
            "/a/b",
            "a/b",
            "/a\0b",
            "/.",
            "..",
            &"x".repeat(256),
        ] {
            let err = ShmName::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("/shmlab-demo"), "{err}");
        }
        assert!(ShmName::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn unique_names_differ_and_are_valid() {
        let a = ShmName::unique("test a");
        let b = ShmName::unique("test a");
        assert_ne!(a, b);
        assert!(a.as_str().contains(&std::process::id().to_string()));
        assert_eq!(ShmName::parse(a.as_str()).unwrap(), a);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in ".{0,300}") {
            if let Ok(n) = ShmName::parse(&s) {
                proptest::prop_assert!(n.as_str().starts_with('/'));
                proptest::prop_assert!(!n.file_name().contains('/'));
                proptest::prop_assert!(!n.file_name().is_empty() && n.file_name().len() <= NAME_MAX);
                proptest::prop_assert_eq!(ShmName::parse(n.as_str()).unwrap(), n);
            }
        }
    }
}
