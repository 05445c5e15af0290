//! Number literals of the requirements language, and exact decimal comparison of numeric text (so that
//! `17179869184 = 1.7179869184E10` holds and byte counts above 2^53 compare without float rounding).

use std::cmp::Ordering;

/// A number literal kept as written (`2`, `-1.5`, `1024E6`), so that printing gives the user's spelling back.
/// Two literals are equal as syntax only when spelt the same; comparisons against facts use the exact value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number(String);

impl Number {
    /// Accepts `[+-]? digits ("." digits)? ([eE] [+-]? digits)?`, the whole string and nothing else.
    pub fn new(text: &str) -> Option<Number> {
        Decimal::parse(text).map(|_| Number(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Exponents are clamped here: far beyond any byte count, and small enough that the arithmetic cannot overflow.
const EXPONENT_LIMIT: i128 = 1_000_000_000_000_000_000;

/// The value `0.DIGITS × 10^exponent` with no leading or trailing zero in DIGITS; zero has no digits.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i128,
}

impl Decimal {
    /// Parses the number syntax; None for anything else (text, `NaN`, `inf`, surrounding spaces).
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let bytes = text.as_bytes();
        let mut at = 0;
        let negative = sign_at(bytes, &mut at);
        let integer = digits_at(bytes, at);
        if integer.is_empty() {
            return None;
        }
        at += integer.len();
        let mut fraction: &[u8] = &[];
        if bytes.get(at) == Some(&b'.') {
            fraction = digits_at(bytes, at + 1);
            if fraction.is_empty() {
                return None;
            }
            at += 1 + fraction.len();
        }
        let mut exponent: i128 = 0;
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            let exponent_negative = sign_at(bytes, &mut at);
            let written = digits_at(bytes, at);
            if written.is_empty() {
                return None;
            }
            at += written.len();
            for digit in written {
                exponent = (exponent * 10 + i128::from(digit - b'0')).min(EXPONENT_LIMIT);
            }
            if exponent_negative {
                exponent = -exponent;
            }
        }
        if at != bytes.len() {
            return None;
        }
        let mut digits: Vec<u8> = integer.iter().chain(fraction).copied().collect();
        // Every integer digit sits left of the point; each leading zero dropped moves the point one place.
        let mut point = exponent + integer.len() as i128;
        let leading_zeros = digits.iter().take_while(|&&digit| digit == b'0').count();
        digits.drain(..leading_zeros);
        point -= leading_zeros as i128;
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal { negative: false, digits, exponent: 0 });
        }
        Some(Decimal { negative, digits, exponent: point })
    }

    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

/// An optional `+` or `-` at `*at`: steps over it and says whether it was a minus.
fn sign_at(bytes: &[u8], at: &mut usize) -> bool {
    match bytes.get(*at) {
        Some(b'-') => {
            *at += 1;
            true
        }
        Some(b'+') => {
            *at += 1;
            false
        }
        _ => false,
    }
}

fn digits_at(bytes: &[u8], at: usize) -> &[u8] {
    let rest = bytes.get(at..).unwrap_or_default();
    let count = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    &rest[..count]
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = self.sign();
        sign.cmp(&other.sign()).then_with(|| {
            // Normalized digits of two non-zero values compare like their magnitudes once the points agree.
            let magnitude = self.exponent.cmp(&other.exponent).then_with(|| self.digits.cmp(&other.digits));
            match sign {
                0 => Ordering::Equal,
                1 => magnitude,
                _ => magnitude.reverse(),
            }
        })
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        Decimal::parse(a).unwrap().cmp(&Decimal::parse(b).unwrap())
    }

    #[test]
    fn accepts_the_number_syntax_only() {
        for good in ["0", "-0", "+7", "2", "16", "1.5", "1024E6", "1.5e-3", "1e+3", "007.500", "17179869184"] {
            assert!(Decimal::parse(good).is_some(), "{good}");
            assert!(Number::new(good).is_some(), "{good}");
        }
        for bad in
            ["", "-", "+", ".5", "1.", "1e", "1e+", "1.2.3", " 1", "1 ", "NaN", "inf", "0x10", "4gb", "--1", "1_000"]
        {
            assert!(Decimal::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn compares_exact_decimal_values() {
        let cases = [
            ("16", "4", Ordering::Greater),
            ("4", "16", Ordering::Less),
            ("16", "16.0", Ordering::Equal),
            ("0", "-0.000", Ordering::Equal),
            ("17179869184", "1024E6", Ordering::Greater),
            ("17179869184", "1.7179869184E10", Ordering::Equal),
            ("18446744073709551615", "18446744073709551614", Ordering::Greater),
            ("0.001", "1.5e-3", Ordering::Less),
            ("-2", "-10", Ordering::Greater),
            ("-2", "1", Ordering::Less),
            ("0", "1e-999999", Ordering::Less),
            ("0.12", "0.123", Ordering::Less),
            ("100", "1e2", Ordering::Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
        // The one inexact corner, accepted so that the arithmetic stays bounded: exponents saturate.
        assert_eq!(cmp("1e99999999999999999999999", "1e99999999999999999999998"), Ordering::Equal);
    }
}
