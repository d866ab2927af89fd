//! Exact decimal numbers: parses the text of a cell ("-0.0111", "+2534",
//! "1.96") into a mantissa and a count of decimal places, formats it back and
//! rescales it to a fixed point (value * 10^decimals). Input comes from the
//! cell readers (`column.rs`) and from tests; output goes into `ColumnData`.
//! Pure integer arithmetic: never uses floating point, never panics.

use std::fmt;

/// Most decimal places a column may have.
pub const MAX_COLUMN_DECIMALS: u32 = 12;

/// Largest magnitude of a fixed-point value (value * 10^decimals).
pub const MAX_MAGNITUDE: i128 = 1 << 62;

/// A decimal number `mantissa / 10^decimals`, normalised: no trailing zeros
/// after the decimal point (`1.50` has mantissa 15 and 1 decimal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub decimals: u32,
}

/// Why a text is not a `Decimal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalIssue {
    /// Not of the form `[+-]digits[.digits]` (or `[+-].digits`).
    NotANumber,
    /// Well formed, but too many digits for a 128-bit mantissa.
    TooLong,
}

/// 10^exp, or `None` if it overflows i128.
pub fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

impl Decimal {
    /// Parses `[+-]digits[.digits]`, `[+-]digits.` or `[+-].digits` after
    /// trimming whitespace. No exponents, thousands separators or spaces
    /// inside.
    pub fn parse(text: &str) -> Result<Decimal, DecimalIssue> {
        let text = text.trim();
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..).unwrap_or("")),
            Some(b'+') => (false, text.get(1..).unwrap_or("")),
            _ => (false, text),
        };
        let (int_part, frac_part) = match unsigned.split_once('.') {
            Some((int_part, frac_part)) => (int_part, frac_part),
            None => (unsigned, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DecimalIssue::NotANumber);
        }
        if !all_digits(int_part) || !all_digits(frac_part) {
            return Err(DecimalIssue::NotANumber);
        }
        let frac_part = frac_part.trim_end_matches('0');
        let decimals = u32::try_from(frac_part.len()).map_err(|_| DecimalIssue::TooLong)?;
        let mut mantissa: i128 = 0;
        for byte in int_part.bytes().chain(frac_part.bytes()) {
            let digit = i128::from(byte - b'0');
            mantissa = mantissa.checked_mul(10).and_then(|m| m.checked_add(digit)).ok_or(DecimalIssue::TooLong)?;
        }
        if negative {
            mantissa = -mantissa;
        }
        Ok(Decimal { mantissa, decimals })
    }

    /// The value scaled to `decimals` places (`mantissa * 10^(decimals -
    /// self.decimals)`), or `None` if that loses digits or overflows i128.
    pub fn to_scale(&self, decimals: u32) -> Option<i128> {
        rescale(self.mantissa, self.decimals, decimals)
    }
}

/// Rescales a fixed-point `value` at `from` decimal places to `to` places.
/// `None` if digits would be lost (`to < from` and the value is not a
/// multiple of the factor) or the result overflows i128.
pub fn rescale(value: i128, from: u32, to: u32) -> Option<i128> {
    if to >= from {
        value.checked_mul(pow10(to - from)?)
    } else {
        let factor = pow10(from - to)?;
        if value % factor == 0 {
            Some(value / factor)
        } else {
            None
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fixed(self.mantissa, self.decimals))
    }
}

/// Formats a fixed-point `value` with `decimals` places ("-0.0111" for
/// (-111, 4)); trailing zeros are kept.
pub fn format_fixed(value: i128, decimals: u32) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    let places = usize::try_from(decimals).unwrap_or(usize::MAX);
    if places == 0 {
        return format!("{sign}{digits}");
    }
    if digits.len() > places {
        let (int_part, frac_part) = digits.split_at(digits.len() - places);
        format!("{sign}{int_part}.{frac_part}")
    } else {
        let zeros = "0".repeat(places - digits.len());
        format!("{sign}0.{zeros}{digits}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn d(mantissa: i128, decimals: u32) -> Decimal {
        Decimal { mantissa, decimals }
    }

    #[test]
    fn parses_plain_numbers() {
        assert_eq!(Decimal::parse("2534"), Ok(d(2534, 0)));
        assert_eq!(Decimal::parse("-0.0111"), Ok(d(-111, 4)));
        assert_eq!(Decimal::parse("+1.96"), Ok(d(196, 2)));
        assert_eq!(Decimal::parse(" 1.50 "), Ok(d(15, 1)));
        assert_eq!(Decimal::parse("2021.0"), Ok(d(2021, 0)));
        assert_eq!(Decimal::parse(".5"), Ok(d(5, 1)));
        assert_eq!(Decimal::parse("7."), Ok(d(7, 0)));
        assert_eq!(Decimal::parse("-0"), Ok(d(0, 0)));
        assert_eq!(Decimal::parse("007"), Ok(d(7, 0)));
    }

    #[test]
    fn rejects_non_numbers() {
        for text in [
            "", " ", "n/a", "-", ".", "12,345", "unknown", "1.2.3", "1e5", "+-1", "1 000", "--1", "0x10", "١٢", "+",
            "-.",
        ] {
            assert_eq!(Decimal::parse(text), Err(DecimalIssue::NotANumber), "{text:?}");
        }
        let long = "9".repeat(60);
        assert_eq!(Decimal::parse(&long), Err(DecimalIssue::TooLong));
    }

    #[test]
    fn scales_exactly() {
        assert_eq!(d(3_662_816, 2).to_scale(2), Some(3_662_816));
        assert_eq!(d(146_648, 1).to_scale(2), Some(1_466_480));
        assert_eq!(d(150, 2).to_scale(1), Some(15));
        assert_eq!(d(151, 2).to_scale(1), None);
        assert_eq!(d(1, 0).to_scale(40), None);
        assert_eq!(format_fixed(-111, 4), "-0.0111");
        assert_eq!(format_fixed(3_662_816, 2), "36628.16");
        assert_eq!(format_fixed(5, 0), "5");
        assert_eq!(format_fixed(i128::MIN, 3).len(), 41);
    }

    #[test]
    fn float_display_is_plain_decimal() {
        // The readers turn calamine floats into text with `{}`.
        assert_eq!(Decimal::parse(&format!("{}", 2021.0f64)), Ok(d(2021, 0)));
        assert_eq!(Decimal::parse(&format!("{}", 0.0539f64)), Ok(d(539, 4)));
        assert_eq!(Decimal::parse(&format!("{}", 1e300f64)), Err(DecimalIssue::TooLong));
        assert_eq!(Decimal::parse(&format!("{}", 1e-20f64)), Ok(d(1, 20)));
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = Decimal::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_numberish(text in "[-+]?[0-9]{0,45}(\\.[0-9]{0,45})?") {
            let _ = Decimal::parse(&text);
        }

        #[test]
        fn round_trips(mantissa in any::<i64>(), decimals in 0u32..=18) {
            let value = i128::from(mantissa);
            let text = format_fixed(value, decimals);
            let parsed = Decimal::parse(&text).unwrap();
            prop_assert!(parsed.decimals <= decimals);
            prop_assert_eq!(parsed.to_scale(decimals), Some(value));
            // normalised form prints back to itself
            prop_assert_eq!(Decimal::parse(&parsed.to_string()), Ok(parsed));
        }

        #[test]
        fn round_trips_floats(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let text = format!("{value}");
            if let Ok(parsed) = Decimal::parse(&text) {
                prop_assert_eq!(parsed.to_string().parse::<f64>().unwrap(), value);
            }
        }
    }
}
