//! Byte sizes from the command line.

use crate::{Error, Result};

/// Parses a size in bytes: `4096`, `64K`/`64KiB`, `1M`/`1MiB`, `1G`/`1GiB`
/// (binary multiples; `_` allowed as a separator). Zero is refused: a
/// zero-length object cannot be mapped (`mmap` fails with `EINVAL`).
pub fn parse_size(input: &str) -> Result<u64> {
    let bad = |reason: &str| Error::InvalidSize {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    let s: String = input.trim().chars().filter(|&c| c != '_').collect();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad("it does not start with a number"));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad("unknown unit (use K, M or G)")),
    };
    let n: u64 = num.parse().map_err(|_| bad("the number is too large"))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(|| bad("the size overflows an off_t"))?;
    if bytes == 0 {
        return Err(bad("a shared-memory object of 0 bytes cannot be mapped"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64K").unwrap(), 65536);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("1_000").unwrap(), 1000);
        for bad in [
            "0",
            "",
            "-1",
            "abc",
            "12Q",
            "99999999999999999999",
            "9000000000G",
            "0K",
        ] {
            assert!(
                matches!(parse_size(bad), Err(Error::InvalidSize { .. })),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,24}") {
            if let Ok(n) = parse_size(&s) {
                proptest::prop_assert!(n > 0);
            }
        }

        #[test]
        fn plain_numbers_round_trip(n in 1u64..=i64::MAX as u64) {
            proptest::prop_assert_eq!(parse_size(&n.to_string()).unwrap(), n);
        }
    }
}
