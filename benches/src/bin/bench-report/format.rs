//! Rendering numbers: the one way each kind of figure is written, in the
//! tables and in the aims' "measured" column alike.

/// What a figure that was not measured shows.
pub const DASH: &str = "–";

/// Bytes in a MiB and a GiB.
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// A time in ns, in the unit that suits it.
pub fn ns(ns: f64) -> String {
    if !ns.is_finite() {
        DASH.into()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

/// Operations per second.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() {
        DASH.into()
    } else if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} /s")
    }
}

/// A ratio, `1.23×`; one below 0.01 with two significant digits
/// (`0.0033×`), not as `0.00×`.
pub fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() && r > 0.0 && r < 0.01 => {
            let decimals = (1.0 - r.log10().floor()) as usize;
            format!("{r:.decimals$}×")
        }
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => DASH.into(),
    }
}

/// A ratio as a bare number (in a column whose heading says what it is).
pub fn factor(x: f64) -> String {
    format!("{x:.2}")
}

/// A share or a Jain index (both between 0 and 1).
pub fn fraction(x: f64) -> String {
    format!("{x:.3}")
}

/// Bytes per second in GiB/s, as a bare number.
pub fn gib_per_sec(bytes_per_sec: f64) -> String {
    format!("{:.2}", bytes_per_sec / GIB as f64)
}

/// Whole MiB.
pub fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_keep_two_digits_that_mean_something() {
        let got: Vec<String> = [
            Some(1.234),
            Some(0.04),
            Some(0.0033137),
            Some(0.000251),
            None,
        ]
        .into_iter()
        .map(ratio)
        .collect();
        assert_eq!(got, ["1.23×", "0.04×", "0.0033×", "0.00025×", DASH]);
    }
}
