//! Exact money: amounts are integer minor units, never floating point.
//!
//! Owns [`Currency`] (an ISO 4217 code) and [`Amount`] (minor units of one currency), with the one
//! parser and the one formatter of decimal strings in the crate: `"25"`, `"25.5"` and `"25.50"` all
//! mean 2500 minor units; `"25.505"`, `"1e3"`, `" 25"` and `"+25"` are refused. Every currency
//! bankguard handles has two decimal places (USD, EUR, GBP, …); a currency with another exponent
//! would need its own entry here before it could be used.
//!
//! Shared vocabulary: both the client side (`mcp`, `bank`) and the server side (`devstack`) use it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Decimal places of every supported currency.
pub const DECIMAL_PLACES: u32 = 2;
const MINOR_PER_MAJOR: i64 = 10_i64.pow(DECIMAL_PLACES);

/// An ISO 4217 alphabetic currency code: three ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn as_str(&self) -> &str {
        // Constructed only from three ASCII capitals, so always valid UTF-8.
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(MoneyError::InvalidCurrency(code.chars().take(16).collect())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// A signed quantity of money in minor units (cents), without a currency.
///
/// Balances and transfer amounts are stored as this; [`Amount`] pairs it with a currency.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct MinorUnits(pub i64);

impl MinorUnits {
    /// Parses a plain decimal string: optional `-`, digits, optionally `.` and one or two digits.
    pub fn parse_decimal(text: &str) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed(text.chars().take(32).collect());
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let fraction_digits = match fraction {
            None => "",
            Some("") => return Err(malformed()),
            Some(digits) if !digits.bytes().all(|b| b.is_ascii_digit()) => return Err(malformed()),
            Some(digits) if digits.len() > DECIMAL_PLACES as usize => {
                return Err(MoneyError::TooManyDecimals(text.chars().take(32).collect()));
            }
            Some(digits) => digits,
        };
        let whole: i64 = whole.parse().map_err(|_| MoneyError::TooLarge)?;
        let mut fraction_value: i64 = 0;
        for position in 0..DECIMAL_PLACES as usize {
            let digit = fraction_digits.as_bytes().get(position).map_or(0, |b| b - b'0');
            fraction_value = fraction_value * 10 + i64::from(digit);
        }
        let magnitude = whole
            .checked_mul(MINOR_PER_MAJOR)
            .and_then(|minor| minor.checked_add(fraction_value))
            .ok_or(MoneyError::TooLarge)?;
        Ok(Self(if negative { -magnitude } else { magnitude }))
    }

    /// `2500` → `"25.00"`, `-5` → `"-0.05"`.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let per_major = MINOR_PER_MAJOR.unsigned_abs();
        format!("{sign}{}.{:0width$}", magnitude / per_major, magnitude % per_major, width = DECIMAL_PLACES as usize)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl fmt::Display for MinorUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal_string())
    }
}

/// Money in one currency, e.g. 25.00 USD.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Amount {
    pub minor_units: MinorUnits,
    pub currency: Currency,
}

impl Amount {
    pub fn new(minor_units: MinorUnits, currency: Currency) -> Self {
        Self { minor_units, currency }
    }

    pub fn parse(decimal: &str, currency: Currency) -> Result<Self, MoneyError> {
        Ok(Self::new(MinorUnits::parse_decimal(decimal)?, currency))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor_units, self.currency)
    }
}

/// Why a string is not money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not a decimal amount; write it like \"25\", \"25.5\" or \"25.50\"")]
    Malformed(String),
    #[error("{0:?} has more than {DECIMAL_PLACES} decimal places")]
    TooManyDecimals(String),
    #[error("amount is too large")]
    TooLarge,
    #[error("{0:?} is not an ISO 4217 currency code (three capital letters, e.g. \"USD\")")]
    InvalidCurrency(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minor(text: &str) -> Result<i64, MoneyError> {
        MinorUnits::parse_decimal(text).map(|m| m.0)
    }

    #[test]
    fn whole_and_fractional_forms_mean_the_same_cents() {
        assert_eq!(minor("25"), Ok(2500));
        assert_eq!(minor("25.5"), Ok(2550));
        assert_eq!(minor("25.50"), Ok(2550));
        assert_eq!(minor("0.01"), Ok(1));
        assert_eq!(minor("0"), Ok(0));
        assert_eq!(minor("-0.05"), Ok(-5));
        assert_eq!(minor("007.10"), Ok(710));
    }

    #[test]
    fn anything_that_is_not_a_plain_decimal_is_refused() {
        for text in ["", ".5", "5.", "+5", " 5", "5 ", "1e3", "1,00", "NaN", "--1", "0x10", "5.-1", "١"] {
            assert!(matches!(minor(text), Err(MoneyError::Malformed(_))), "{text:?}");
        }
        assert!(matches!(minor("25.505"), Err(MoneyError::TooManyDecimals(_))));
        assert_eq!(minor("92233720368547758.08"), Err(MoneyError::TooLarge));
        assert_eq!(minor("99999999999999999999"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn formatting_always_shows_two_places() {
        assert_eq!(MinorUnits(2500).to_decimal_string(), "25.00");
        assert_eq!(MinorUnits(7).to_decimal_string(), "0.07");
        assert_eq!(MinorUnits(-1234).to_decimal_string(), "-12.34");
        assert_eq!(MinorUnits(i64::MIN).to_decimal_string(), "-92233720368547758.08");
    }

    #[test]
    fn currency_codes_are_three_capitals() {
        assert_eq!("USD".parse::<Currency>().unwrap().as_str(), "USD");
        for code in ["usd", "US", "USDT", "U$D", ""] {
            assert!(code.parse::<Currency>().is_err(), "{code:?}");
        }
    }
}
