//! Exact decimal <-> fixed-point conversion for query parameters (bounds,
//! histogram edges, quantile levels) and for printing results. A fixed-point
//! value is an integer mantissa scaled by 10^decimals. No floating point.

use super::error::StatsError;

/// Largest number of decimals of a fixed-point value in a statistic
/// (parameters and results); columns have at most `data::MAX_COLUMN_DECIMALS`.
pub const MAX_FIXED_DECIMALS: u32 = 18;

/// 10^d as i128.
pub fn pow10(d: u32) -> Result<i128, StatsError> {
    10i128.checked_pow(d).ok_or(StatsError::ArithmeticOverflow("power of ten"))
}

/// Parses "-12.345" into (mantissa, decimals) = (-12345, 3).
pub fn parse_decimal(text: &str) -> Result<(i128, u32), StatsError> {
    let bad = |reason: &str| StatsError::InvalidParameter { name: "number", reason: format!("{text:?}: {reason}") };
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad("no digits"));
    }
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad("expected a decimal number like -12.5"));
    }
    let decimals = u32::try_from(frac_part.len()).map_err(|_| bad("too many decimals"))?;
    if decimals > MAX_FIXED_DECIMALS {
        return Err(bad("too many decimals"));
    }
    let mut mantissa: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(b - b'0')))
            .ok_or_else(|| bad("too large"))?;
    }
    Ok((if negative { -mantissa } else { mantissa }, decimals))
}

/// Parses a decimal into fixed point at exactly `decimals` (error if digits would be lost).
pub fn parse_fixed(text: &str, decimals: u32) -> Result<i128, StatsError> {
    let (m, d) = parse_decimal(text)?;
    if d > decimals {
        return Err(StatsError::InvalidParameter {
            name: "number",
            reason: format!("{text:?} has more than the column's {decimals} decimals"),
        });
    }
    m.checked_mul(pow10(decimals - d)?).ok_or(StatsError::ArithmeticOverflow("fixed-point parameter"))
}

/// Formats a fixed-point value exactly: (-12345, 3) -> "-12.345", trailing zeros kept off.
pub fn format_fixed(mantissa: i128, decimals: u32) -> String {
    let negative = mantissa < 0;
    let digits = mantissa.unsigned_abs().to_string();
    let d = usize::try_from(decimals).unwrap_or(0);
    let (int_part, frac_part) = if digits.len() > d {
        let (i, f) = digits.split_at(digits.len() - d);
        (i.to_string(), f.to_string())
    } else {
        ("0".to_string(), format!("{}{}", "0".repeat(d - digits.len()), digits))
    };
    let frac = frac_part.trim_end_matches('0');
    let sign = if negative { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_decimal("-12.345").unwrap(), (-12345, 3));
        assert_eq!(parse_decimal("2021").unwrap(), (2021, 0));
        assert_eq!(parse_decimal(".5").unwrap(), (5, 1));
        assert!(parse_decimal("1.2.3").is_err());
        assert!(parse_decimal("12,345").is_err());
        assert!(parse_decimal("-").is_err());
        assert_eq!(parse_fixed("1.5", 3).unwrap(), 1500);
        assert!(parse_fixed("1.5555", 3).is_err());
        assert_eq!(format_fixed(-12345, 3), "-12.345");
        assert_eq!(format_fixed(5, 4), "0.0005");
        assert_eq!(format_fixed(87633680, 3), "87633.68");
        assert_eq!(format_fixed(0, 2), "0");
    }

    proptest! {
        #[test]
        fn round_trip(m in -1_000_000_000_000i64..1_000_000_000_000, d in 0u32..10) {
            let text = format_fixed(i128::from(m), d);
            prop_assert_eq!(parse_fixed(&text, d).unwrap(), i128::from(m));
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_decimal(&s);
        }
    }
}
