//! How the labs and the `shmlab` tool write numbers, so that every program
//! prints them alike: digit grouping (`1,234,567`), durations in one set of
//! units (`ns`, `µs`, `ms`, `s`), rates, ratios, percentages and file modes;
//! plus [`parse_seconds`], which reads the seconds `--wait`-style flags take,
//! and [`escape`], the one way to print text that came from outside.
//!
//! A helper lives here once two programs need it; what only one program
//! prints stays in that program's module.

use shm::Mode;
use std::time::Duration;

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count in binary units: whole units when exact (`64 B`,
/// `16 KiB`, `1 MiB`, `4 GiB`), else one decimal (`1.5 MiB`, `3.2 KiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return if n % size == 0 {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} B")
}

/// The time units, smallest first, each with its size in nanoseconds.
const TIME_UNITS: [(&str, f64); 4] = [("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)];

/// `ns` nanoseconds in the largest of [`TIME_UNITS`] it reaches, among the
/// units that `decimals` gives a precision for (`None`: never use that
/// unit); below every allowed unit, in the smallest allowed one.
fn scaled(ns: f64, decimals: [Option<usize>; 4]) -> String {
    let mut pick = None;
    for (&(unit, size), places) in TIME_UNITS.iter().zip(decimals) {
        let Some(places) = places else { continue };
        if pick.is_none() || ns >= size {
            pick = Some((unit, size, places));
        }
    }
    let (unit, size, places) = pick.unwrap_or(("ns", 1.0, 0));
    format!("{:.*} {unit}", places, ns / size)
}

/// A duration of `ns` nanoseconds for a report: `87 ns`, `429.8 µs`,
/// `13.5 ms`, `2.00 s`.
pub fn duration_ns(ns: u64) -> String {
    scaled(ns as f64, [Some(0), Some(1), Some(1), Some(2)])
}

/// A short duration given in seconds, to two decimals and at most in
/// milliseconds (for per-operation times): `679 ns`, `60.43 µs`, `1.20 ms`.
pub fn latency(secs: f64) -> String {
    scaled(secs * 1e9, [Some(0), Some(2), Some(2), None])
}

/// A duration in seconds to the millisecond: `0.129 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// `a / b` as a float (guarding a zero `b`): how many times `b` fits in `a`.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// A ratio as `1.02x`; below 0.01 with two significant digits (`0.0035x`),
/// so that a row 300 times faster than its base does not read `0.00x`.
pub fn times(r: f64) -> String {
    if r.is_finite() && r > 0.0 && r < 0.01 {
        let decimals = (1.0 - r.log10().floor()) as usize;
        format!("{r:.decimals$}x")
    } else {
        format!("{r:.2}x")
    }
}

/// Operations per second in millions: `147.99 M ops/s`.
pub fn ops_rate(ops_per_sec: f64) -> String {
    format!("{:.2} M ops/s", ops_per_sec / 1e6)
}

/// `count` things done in `d`, per second: `1.54 G/s`, `772.6 M/s`, `512 k/s`.
pub fn per_sec(count: u64, d: Duration) -> String {
    let r = count as f64 / d.as_secs_f64().max(1e-9);
    if r >= 1e9 {
        format!("{:.2} G/s", r / 1e9)
    } else if r >= 1e6 {
        format!("{:.1} M/s", r / 1e6)
    } else {
        format!("{:.0} k/s", r / 1e3)
    }
}

/// A percentage (already multiplied by 100) with `decimals` places: `27.84%`.
pub fn percent(pct: f64, decimals: usize) -> String {
    format!("{pct:.decimals$}%")
}

/// A file mode as octal and as `ls -l` shows it: `0640 rw-r-----`.
pub fn mode(m: Mode) -> String {
    format!("{m} {}", m.symbolic())
}

/// Parses a number of seconds (`10`, `0.5`, `0`) for `--wait`-style flags:
/// 0 to 86400.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds; use e.g. 10 or 0.5"))?;
    if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{s:?} seconds is out of range; use 0 to 86400"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A duration with a unit: `30s`, `5ms`, `250us`, `2m` (a bare number is
/// seconds); at most a day. The error says how to write one.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        _ => {
            return Err(format!(
                "{s:?} is not a duration; use e.g. 30s, 5ms, 250us or 2m"
            ));
        }
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 30s, 5ms, 250us or 2m"))?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range; use 0 to 24 hours"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Bytes from outside (file names, type tags, semaphore names, commands,
/// user names: anything another user or process chose) as text that is
/// safe to print on a terminal. The rule, byte for byte reversible (see
/// [`unescape`]):
///
/// - a printable character of valid UTF-8 (printable ASCII, or any
///   non-control character beyond it) is written as it is;
/// - a backslash is written `\\`;
/// - every byte of a control character (C0 `0x00..=0x1f`, DEL `0x7f`, C1
///   `U+0080..=U+009F`: what terminal escapes are made of), of an
///   invisible character that reorders or hides text (bidirectional
///   overrides and isolates `U+202A..=U+202E`, `U+2066..=U+2069`,
///   zero-width `U+200B..=U+200F`, the BOM `U+FEFF`), and every byte that
///   is not part of valid UTF-8, is written `\xNN` (two lower-case hex
///   digits).
///
/// So the output never holds a control character, and a name holding
/// `ESC[2J` prints as `\x1b[2J` instead of clearing the screen. It is
/// [`shm::listing::escape_bytes`], the rule `shmlab ls` and the listing's
/// `Entry::display_name` use, so every view prints a name alike.
///
/// JSON output does not use it: serde escapes control characters itself,
/// so strings stay exact there (a name that is not valid UTF-8, which JSON
/// cannot hold, is given in this escaped form, and says so).
pub fn escape(bytes: &[u8]) -> String {
    shm::listing::escape_bytes(bytes)
}

/// [`escape`] of a string's bytes.
pub fn escape_str(s: &str) -> String {
    escape(s.as_bytes())
}

/// The bytes [`escape`] was given, back from its output
/// ([`shm::listing::unescape_bytes`]); `None` if `s` is not something
/// [`escape`] writes.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    shm::listing::unescape_bytes(s)
}

/// `value` as pretty JSON that is safe to print on a terminal and still
/// exact. serde escapes only what JSON requires (`U+0000..=U+001F`, `"`,
/// `\\`); this also writes every other character [`escape`] would hide
/// (DEL, the C1 controls `U+0080..=U+009F`, the bidirectional and
/// zero-width characters) as a JSON `\uXXXX` escape, which any JSON
/// reader turns back into the same character. Use it for every `--json`
/// output that may hold strings from outside.
pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        Inert(serde_json::ser::PrettyFormatter::new()),
    );
    value.serialize(&mut ser)?;
    // The serializer writes UTF-8 only (strings are `str`, escapes ASCII).
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// Whether [`escape`] would write `c` as `\xNN` bytes (a control or a
/// hidden character), for characters JSON itself does not escape.
fn hidden_in_json(c: char) -> bool {
    c == '\u{7f}' || (!c.is_ascii() && escape_str(c.encode_utf8(&mut [0; 4])).starts_with('\\'))
}

/// A JSON formatter (pretty, here) whose strings hold no character a
/// terminal acts on: see [`json_pretty`].
struct Inert<F>(F);

macro_rules! delegate {
    ($($m:ident($($a:ident: $t:ty),*);)*) => {$(
        fn $m<W: ?Sized + std::io::Write>(&mut self, w: &mut W $(, $a: $t)*) -> std::io::Result<()> {
            self.0.$m(w $(, $a)*)
        }
    )*};
}

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for Inert<F> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| hidden_in_json(c)) {
            self.0.write_string_fragment(w, &rest[..at])?;
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_string_fragment(w, rest)
    }
}

/// Whether `s` holds a character a terminal may act on: a C0 control, DEL
/// or a C1 control (what [`escape`] never writes). For tests and checks.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_take_units() {
        use super::parse_duration;
        use std::time::Duration;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "5 parsecs", "-1s", "2d", "99999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bytes_are_whole_units_when_exact() {
        assert_eq!(super::bytes(64), "64 B");
        assert_eq!(super::bytes(16 << 10), "16 KiB");
        assert_eq!(super::bytes(1 << 20), "1 MiB");
        assert_eq!(super::bytes(3 << 29), "1.5 GiB");
        assert_eq!(super::bytes(1536 * 1024 + 1), "1.5 MiB");
        assert_eq!(super::bytes(1023), "1023 B");
    }

    use super::*;

    #[test]
    fn small_ratios_keep_two_significant_digits() {
        let got: Vec<String> = [1.234, 0.04, 0.0033137, 0.000251].map(times).to_vec();
        assert_eq!(got, ["1.23x", "0.04x", "0.0033x", "0.00025x"]);
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(2_000_000), "2,000,000");
        assert_eq!(group(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ns(0), "0 ns");
        assert_eq!(duration_ns(999), "999 ns");
        assert_eq!(duration_ns(429_800), "429.8 µs");
        assert_eq!(duration_ns(13_500_000), "13.5 ms");
        assert_eq!(duration_ns(2_000_000_000), "2.00 s");
        assert_eq!(latency(679e-9), "679 ns");
        assert_eq!(latency(60.43e-6), "60.43 µs");
        assert_eq!(latency(0.0012), "1.20 ms");
        assert_eq!(latency(2.5), "2500.00 ms");
        assert_eq!(secs(Duration::from_millis(129)), "0.129 s");
    }

    #[test]
    fn rates_and_percentages() {
        assert_eq!(ops_rate(147_990_000.0), "147.99 M ops/s");
        assert_eq!(per_sec(1_540_000_000, Duration::from_secs(1)), "1.54 G/s");
        assert_eq!(per_sec(772_600_000, Duration::from_secs(1)), "772.6 M/s");
        assert_eq!(per_sec(512_000, Duration::from_secs(1)), "512 k/s");
        assert_eq!(percent(27.844, 2), "27.84%");
        assert_eq!(percent(43.94, 1), "43.9%");
        assert!((ratio(Duration::from_secs(3), Duration::from_secs(2)) - 1.5).abs() < 1e-12);
    }

    #[test]
    fn modes() {
        assert_eq!(mode(Mode::from_bits_truncate(0o640)), "0640 rw-r-----");
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_seconds("0").unwrap(), Duration::ZERO);
        assert!(parse_seconds("-1").is_err() && parse_seconds("x").is_err());
        assert!(parse_seconds("86401").is_err() && parse_seconds("inf").is_err());
    }

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(escape(b"OS"), "OS");
        assert_eq!(escape(b"a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape(b"back\\slash"), "back\\\\slash");
        assert_eq!(escape(b"a\xff"), "a\\xff");
        assert_eq!(escape(b"tab\tnl\ndel\x7f"), "tab\\x09nl\\x0adel\\x7f");
        // C1 CSI (U+009B) is valid UTF-8 and still a control: both bytes.
        assert_eq!(escape("x\u{9b}2J".as_bytes()), "x\\xc2\\x9b2J");
        // Printable non-ASCII passes; a bidi override does not.
        assert_eq!(escape("µs été".as_bytes()), "µs été");
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\xe2\\x80\\xaeb");
        assert_eq!(escape_str("\0"), "\\x00");
        // A literal `\xff` in a valid name is told apart from the byte.
        assert_ne!(escape(b"\\xff"), escape(b"\xff"));
    }

    #[test]
    fn unescape_refuses_what_escape_never_writes() {
        assert_eq!(unescape("a\\x1bb").unwrap(), b"a\x1bb");
        for bad in ["\\", "\\x", "\\x1", "\\xzz", "\\xFF", "\\n"] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }

    /// JSON stays exact and holds no control character: serde leaves DEL,
    /// C1 and bidi characters raw, `json_pretty` writes them as `\u`.
    #[test]
    fn json_is_exact_and_inert() {
        let v = serde_json::json!({"n\u{9b}": ["a\u{1b}[2J\u{7f}\u{9b}2J\u{202e}é\\"]});
        let inert = |s: &str| !has_control(&s.replace('\n', "")) && !s.contains('\u{202e}');
        let raw = serde_json::to_string_pretty(&v).unwrap();
        assert!(!inert(&raw), "serde escapes C1 itself now: {raw}");
        let s = json_pretty(&v).unwrap();
        assert!(inert(&s), "{s}");
        assert!(s.contains(r#""a\u001b[2J\u007f\u009b2J\u202eé\\""#), "{s}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
        // Pretty: the same layout as serde's.
        let plain = serde_json::json!({"a": [1, 2], "b": {"c": "d"}});
        assert_eq!(
            json_pretty(&plain).unwrap(),
            serde_json::to_string_pretty(&plain).unwrap()
        );
    }

    proptest::proptest! {
        /// Whatever the bytes, the escaped text holds no C0, DEL or C1
        /// control, and the bytes come back from it exactly.
        #[test]
        fn escaped_text_is_inert_and_reversible(b in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let e = escape(&b);
            proptest::prop_assert!(!has_control(&e), "{e:?}");
            proptest::prop_assert!(!e.bytes().any(|c| c < 0x20 || c == 0x7f));
            proptest::prop_assert_eq!(unescape(&e), Some(b));
        }

        /// The same for text that is mostly valid UTF-8 with controls in it.
        #[test]
        fn escaped_strings_are_inert(s in "[a-z\\\\\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{202e}é]{0,32}") {
            let e = escape_str(&s);
            proptest::prop_assert!(!has_control(&e), "{e:?}");
            proptest::prop_assert_eq!(unescape(&e), Some(s.into_bytes()));
        }

        /// Any string through `json_pretty`: no control character, and
        /// read back exactly.
        #[test]
        fn json_strings_are_inert_and_exact(s in "[a-z\\\\\"\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{200b}-\\u{200f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}\\u{feff}é😀]{0,32}") {
            let j = json_pretty(&s).unwrap();
            proptest::prop_assert!(!has_control(&j), "{j:?}");
            proptest::prop_assert!(escape_str(&j) == j.replace('\\', "\\\\"), "{j:?}");
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&j).unwrap(), s);
        }
    }
}
