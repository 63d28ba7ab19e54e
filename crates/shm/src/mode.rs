//! Permission bits, as octal and as `rwx`.

use crate::{Error, Result};
use std::fmt;

/// Permission bits of a shared-memory object (`0o000..=0o777`).
///
/// Parses from octal (`0640`, `640`) or from nine symbolic characters
/// (`rw-r-----`); [`Display`](fmt::Display) prints octal (`0640`) and
/// [`Mode::symbolic`] prints `rw-r-----`. Set-id and sticky bits are refused:
/// they mean nothing for shared memory.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mode(u32);

/// Who a group of three permission bits is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The owner (`u`).
    User,
    /// The owning group (`g`).
    Group,
    /// Everyone else (`o`): the course notes' "All".
    Others,
}

/// One row of the course notes' permission table, for one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermissionRow {
    /// Whose bits these are.
    pub class: Class,
    /// The octal digit (0..=7).
    pub digit: u32,
    /// The three characters, e.g. `rw-`.
    pub symbol: &'static str,
    /// The notes' words, e.g. `Read + Write`.
    pub meaning: &'static str,
}

/// The course notes' table: digit → symbol → meaning.
const TABLE: [(&str, &str); 8] = [
    ("---", "No Permission"),
    ("--x", "Execute"),
    ("-w-", "Write"),
    ("-wx", "Execute + Write"),
    ("r--", "Read"),
    ("r-x", "Read + Execute"),
    ("rw-", "Read + Write"),
    ("rwx", "Read + Write + Execute"),
];

impl Mode {
    /// shmlab's default for new objects: owner read-write only.
    pub const DEFAULT: Mode = Mode(0o600);
    /// The textbook's `0666`: read-write for *everyone* on the machine,
    /// before the umask. Any user could read or corrupt the data.
    pub const TEXTBOOK: Mode = Mode(0o666);

    /// A mode from bits; `None` above `0o777`.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        if bits > 0o777 { None } else { Some(Mode(bits)) }
    }

    /// The low nine bits of `bits` (e.g. of `st_mode`).
    pub const fn from_bits_truncate(bits: u32) -> Self {
        Mode(bits & 0o777)
    }

    /// The bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Parses `0640`, `640`, `0o640` or `rw-r-----`.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidMode {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if s.len() == 9 && s.chars().all(|c| "rwx-".contains(c)) {
            let mut bits = 0;
            for (i, c) in s.chars().enumerate() {
                let want = ['r', 'w', 'x'][i % 3];
                if c == want {
                    bits |= 1 << (8 - i);
                } else if c != '-' {
                    return Err(bad(format!(
                        "position {} must be '{want}' or '-', not '{c}'",
                        i + 1
                    )));
                }
            }
            return Ok(Mode(bits));
        }
        let digits = s.strip_prefix("0o").unwrap_or(s);
        if digits.chars().all(|c| c.is_ascii_digit()) {
            if let Some(c) = digits.chars().find(|c| !('0'..='7').contains(c)) {
                return Err(bad(format!("'{c}' is not an octal digit (0-7)")));
            }
            let bits = u32::from_str_radix(digits, 8)
                .ok()
                .filter(|_| digits.len() <= 4)
                .ok_or_else(|| bad("too many digits".into()))?;
            return Mode::from_bits(bits).ok_or_else(|| {
                bad(format!(
                    "{bits:#o} is above 0777 (set-id and sticky bits mean nothing here)"
                ))
            });
        }
        if s.chars().all(|c| "rwx-".contains(c)) {
            return Err(bad(format!(
                "symbolic modes have exactly 9 characters, this has {}",
                s.chars().count()
            )));
        }
        Err(bad("neither octal digits nor r/w/x/- characters".into()))
    }

    /// The nine `rwx-` characters, e.g. `rw-r-----`.
    pub fn symbolic(self) -> String {
        self.rows().iter().map(|r| r.symbol).collect()
    }

    /// The user/group/others breakdown, as in the course notes' table.
    pub fn rows(self) -> [PermissionRow; 3] {
        let row = |class, shift: u32| {
            let digit = (self.0 >> shift) & 7;
            let (symbol, meaning) = TABLE[digit as usize];
            PermissionRow {
                class,
                digit,
                symbol,
                meaning,
            }
        };
        [
            row(Class::User, 6),
            row(Class::Group, 3),
            row(Class::Others, 0),
        ]
    }

    /// What the kernel makes of this mode under `umask`: `mode & !umask`.
    pub const fn masked_by(self, umask: Mode) -> Mode {
        Mode(self.0 & !umask.0)
    }

    /// Whether anyone other than the owner and group may write.
    pub const fn world_writable(self) -> bool {
        self.0 & 0o002 != 0
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mode({:04o} {})", self.0, self.symbolic())
    }
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl From<Mode> for nix::sys::stat::Mode {
    fn from(m: Mode) -> Self {
        nix::sys::stat::Mode::from_bits_truncate(m.0 as nix::libc::mode_t)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::User => "user",
            Class::Group => "group",
            Class::Others => "others",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_octal_and_symbolic_alike() {
        for s in ["0640", "640", "0o640", "rw-r-----"] {
            assert_eq!(Mode::parse(s).unwrap().bits(), 0o640, "{s}");
        }
        assert_eq!(Mode::parse("0").unwrap().bits(), 0);
        assert_eq!(Mode::parse("rwxrwxrwx").unwrap().bits(), 0o777);
        assert_eq!(Mode::parse("---------").unwrap().bits(), 0);
    }

    #[test]
    fn prints_both_forms() {
        let m = Mode::parse("640").unwrap();
        assert_eq!(m.to_string(), "0640");
        assert_eq!(m.symbolic(), "rw-r-----");
        assert_eq!(Mode::TEXTBOOK.symbolic(), "rw-rw-rw-");
    }

    #[test]
    fn breakdown_matches_the_notes_table() {
        let rows = Mode::parse("0751").unwrap().rows();
        assert_eq!(
            (rows[0].class, rows[0].digit, rows[0].symbol),
            (Class::User, 7, "rwx")
        );
        assert_eq!(rows[0].meaning, "Read + Write + Execute");
        assert_eq!(
            (rows[1].digit, rows[1].symbol, rows[1].meaning),
            (5, "r-x", "Read + Execute")
        );
        assert_eq!(
            (rows[2].digit, rows[2].symbol, rows[2].meaning),
            (1, "--x", "Execute")
        );
        assert_eq!(
            Mode::parse("0300").unwrap().rows()[0].meaning,
            "Execute + Write"
        );
    }

    #[test]
    fn rejects_bad_modes_with_an_example() {
        for bad in [
            "0888",
            "1777",
            "07777",
            "rwxrwxrwx-",
            "-1",
            "",
            "rwxr",
            "rxwrwxrwx",
            "abc",
            "0x1ff",
        ] {
            let err = Mode::parse(bad).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("0640") && msg.contains("rw-r-----"),
                "{bad:?}: {msg}"
            );
        }
    }

    #[test]
    fn umask_story() {
        let given = Mode::TEXTBOOK.masked_by(Mode::parse("022").unwrap());
        assert_eq!(given.to_string(), "0644");
        assert!(Mode::TEXTBOOK.world_writable());
        assert!(!Mode::DEFAULT.world_writable());
    }

    proptest::proptest! {
        #[test]
        fn every_mode_round_trips(bits in 0u32..=0o777) {
            let m = Mode::from_bits(bits).unwrap();
            proptest::prop_assert_eq!(Mode::parse(&m.to_string()).unwrap(), m);
            proptest::prop_assert_eq!(Mode::parse(&m.symbolic()).unwrap(), m);
        }

        #[test]
        fn parse_never_panics(s in ".{0,12}") {
            if let Ok(m) = Mode::parse(&s) {
                proptest::prop_assert!(m.bits() <= 0o777);
            }
        }
    }
}
