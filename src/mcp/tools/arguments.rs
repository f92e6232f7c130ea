//! Every tool argument's rule, in one place: the JSON schema a client sees and the check the server
//! runs are built from the same constants, so they cannot drift apart.
//!
//! Each kind of argument is a typed value ([`AccountId`], [`DecimalAmount`], [`Memo`] …) with one
//! `JsonSchema` (what `tools/list` advertises) and one `Deserialize` (the check). A tool takes
//! [`Arguments<T>`]: the call's arguments as sent, which [`Arguments::check`] turns into `T` or into
//! an [`ArgumentError`] that names the argument and the reason. Nothing is trimmed, upper-cased or
//! guessed: a value the schema forbids is refused, and a `null` is never taken for "left out". The
//! server may refuse more than the schema can say (an amount of zero, a memo with a bidi control:
//! see [`crate::display_text`]), never less.
//!
//! A reason quotes at most [`QUOTED_PREFIX_CHARS`] characters of a bad value, escaped.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use rmcp::handler::server::common::schema_for_input;
use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::authorization_details::MAX_MEMO_CHARS;
use crate::display_text::{CodePoint, DisplayText};
use crate::money::{Currency, MinorUnits, MoneyError};

/// Longest id (`from_account_id`, `to_account_id`, `intent_id`), in characters.
pub const MAX_ID_CHARS: usize = 64;
/// Ids and idempotency keys: visible ASCII, no spaces.
pub const VISIBLE_ASCII_PATTERN: &str = "^[!-~]+$";
/// A plain decimal with at most two places: no sign, spaces, separators or exponent.
pub const AMOUNT_PATTERN: &str = r"^[0-9]+(\.[0-9]{1,2})?$";
/// An ISO 4217 alphabetic code, as written: three capital letters.
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";
/// Longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// The longest `wait_seconds` a call may ask for; clients commonly give up on a call after 60 s.
pub const MAX_WAIT_SECONDS: u64 = 45;
/// How much of a bad value an error quotes.
pub const QUOTED_PREFIX_CHARS: usize = 16;

/// One argument refused: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{argument}: {reason}")]
pub struct ArgumentError {
    pub argument: String,
    pub reason: String,
}

/// A tool call's arguments as the client sent them; their schema is `T`'s.
#[derive(Debug)]
pub struct Arguments<T> {
    object: JsonObject,
    checked: PhantomData<fn() -> T>,
}

impl<'de, T> Deserialize<'de> for Arguments<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self { object: JsonObject::deserialize(deserializer)?, checked: PhantomData })
    }
}

impl<T: JsonSchema> JsonSchema for Arguments<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

impl<T: DeserializeOwned + JsonSchema + 'static> Arguments<T> {
    /// `T`, or the first refusal: an argument the schema does not name, then a required one left out,
    /// then the first whose rule fails. The first two are judged here against the schema itself, so
    /// serde never words them (its "unknown field" message repeats the whole name and lists the rest).
    pub fn check(self) -> Result<T, ArgumentError> {
        let schema = schema_for_input::<T>().expect("tool argument schemas are valid");
        let no_properties = JsonObject::new();
        let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&no_properties);
        if let Some(unknown) = self.object.keys().find(|name| !properties.contains_key(*name)) {
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            let reason = match known.as_slice() {
                [] => "is not an argument of this tool; it takes none".to_owned(),
                known => format!("is not an argument of this tool; its arguments are {}", known.join(", ")),
            };
            return Err(ArgumentError { argument: quoted(unknown), reason });
        }
        let mut required = schema.get("required").and_then(Value::as_array).into_iter().flatten();
        if let Some(missing) = required.find_map(|name| name.as_str().filter(|name| !self.object.contains_key(*name))) {
            return Err(ArgumentError { argument: missing.to_owned(), reason: "is required".to_owned() });
        }
        serde_path_to_error::deserialize(Value::Object(self.object)).map_err(|error| {
            let argument = error.path().to_string();
            let argument = if argument == "." { "arguments".to_owned() } else { argument };
            ArgumentError { argument, reason: error.into_inner().to_string() }
        })
    }
}

/// For an optional argument: present means a value of its type (`null` is refused by that type);
/// leaving it out is how to omit it (`#[serde(default)]`). Its schema is its type's alone
/// (`#[schemars(with = …)]`), not `["string", "null"]`: strict clients reject type arrays.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// At most [`QUOTED_PREFIX_CHARS`] characters of `text`, escaped and quoted, `…` when cut.
pub fn quoted(text: &str) -> String {
    let mut chars = text.chars();
    let prefix: String = chars.by_ref().take(QUOTED_PREFIX_CHARS).collect();
    let more = if chars.next().is_some() { "…" } else { "" };
    format!("\"{}\"{more}", prefix.chars().flat_map(escape).collect::<String>())
}

/// ASCII printable characters as they are; anything else that is not a plainly visible character
/// as `\u{…}`, so an error never carries a control or bidi character of its own.
fn escape(c: char) -> Vec<char> {
    match c {
        '"' | '\\' => vec!['\\', c],
        ' '..='~' => vec![c],
        c if DisplayText::refusal(c).is_none() && !c.is_whitespace() => vec![c],
        c => format!("\\u{{{:04X}}}", u32::from(c)).chars().collect(),
    }
}

/// "null", "a number" …: what a value is, without repeating it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How a typed argument reads its JSON value; the error is the reason alone.
trait Rule: Sized {
    fn parse(value: &Value) -> Result<Self, String>;
}

/// Each typed argument's `Deserialize` is its [`Rule`].
macro_rules! deserialize_with_rule {
    ($($argument:ty),*) => {$(
        impl<'de> Deserialize<'de> for $argument {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                <Self as Rule>::parse(&value).map_err(D::Error::custom)
            }
        }
    )*};
}

/// Each typed argument's schema is written inline where it is used, with the field's description.
macro_rules! inline_schema {
    ($argument:ty, $schema:expr) => {
        impl JsonSchema for $argument {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($argument).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

fn text(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| format!("must be a string, not {}", kind(value)))
}

/// 1 to `max` visible ASCII characters, the rule of [`VISIBLE_ASCII_PATTERN`].
fn visible_ascii(value: &Value, max: usize) -> Result<String, String> {
    let text = text(value)?;
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let length = text.chars().count();
    if length > max {
        return Err(format!("is {length} characters long; at most {max} are allowed"));
    }
    if let Some((index, c)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii_graphic()) {
        return Err(format!(
            "holds {} at character {}; only visible ASCII characters are allowed, without spaces",
            CodePoint(c),
            index + 1
        ));
    }
    Ok(text.to_owned())
}

fn id_schema() -> Schema {
    json_schema!({"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": VISIBLE_ASCII_PATTERN})
}

/// An account id as the bank names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Rule for AccountId {
    fn parse(value: &Value) -> Result<Self, String> {
        visible_ascii(value, MAX_ID_CHARS).map(Self)
    }
}
inline_schema!(AccountId, id_schema());

/// A transfer intent's id, as `transfer_funds` returned it: the same rule as an account id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentId(String);

impl IntentId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Rule for IntentId {
    fn parse(value: &Value) -> Result<Self, String> {
        visible_ascii(value, MAX_ID_CHARS).map(Self)
    }
}
inline_schema!(IntentId, id_schema());

/// A positive amount, written exactly as [`AMOUNT_PATTERN`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalAmount(pub MinorUnits);

impl Rule for DecimalAmount {
    fn parse(value: &Value) -> Result<Self, String> {
        let text = match value {
            Value::String(text) => text,
            // A JSON number has already passed through a float on its way here.
            Value::Number(number) => {
                return Err(format!("must be a decimal string such as \"{number}\", not a JSON number"));
            }
            other => return Err(format!("must be a decimal string such as \"25.00\", not {}", kind(other))),
        };
        // `parse_decimal` takes exactly the pattern's strings, plus a leading `-` that is refused below.
        let amount = MinorUnits::parse_decimal(text).map_err(|error| match error {
            MoneyError::TooManyDecimals(_) => format!("{} has more than two decimal places", quoted(text)),
            MoneyError::TooLarge => format!("{} is too large", quoted(text)),
            _ => format!(
                "{} is not a plain decimal number; write it like \"25\" or \"25.50\", without spaces, a sign or \
                 a currency symbol",
                quoted(text)
            ),
        })?;
        if !amount.is_positive() {
            return Err(format!("must be greater than zero, not {}", quoted(text)));
        }
        Ok(Self(amount))
    }
}
inline_schema!(DecimalAmount, json_schema!({"type": "string", "pattern": AMOUNT_PATTERN}));

/// An ISO 4217 code, exactly as [`CURRENCY_PATTERN`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrencyCode(pub Currency);

impl Rule for CurrencyCode {
    fn parse(value: &Value) -> Result<Self, String> {
        let text = text(value)?;
        text.parse().map(Self).map_err(|_| {
            format!("must be an ISO 4217 code of three capital letters such as \"USD\", not {}", quoted(text))
        })
    }
}
inline_schema!(CurrencyCode, json_schema!({"type": "string", "pattern": CURRENCY_PATTERN}));

/// A note for the recipient that the holder reads on their device: [`DisplayText`] of at most
/// [`MAX_MEMO_CHARS`], bound in its NFC form. Left out or empty, there is no memo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memo(Option<DisplayText>);

impl Memo {
    pub fn into_text(self) -> Option<DisplayText> {
        self.0
    }
}

impl Rule for Memo {
    fn parse(value: &Value) -> Result<Self, String> {
        let text = text(value)?;
        let memo = DisplayText::normalize(text, MAX_MEMO_CHARS).map_err(|error| error.to_string())?;
        Ok(Self(Some(memo).filter(|memo| !memo.as_str().is_empty())))
    }
}
inline_schema!(Memo, json_schema!({"type": "string", "maxLength": MAX_MEMO_CHARS}));

/// The caller's key for a safe retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Rule for IdempotencyKey {
    fn parse(value: &Value) -> Result<Self, String> {
        visible_ascii(value, MAX_IDEMPOTENCY_KEY_CHARS).map(Self)
    }
}
inline_schema!(
    IdempotencyKey,
    json_schema!({
        "type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS, "pattern": VISIBLE_ASCII_PATTERN
    })
);

/// Whole seconds from 0 to [`MAX_WAIT_SECONDS`]; 0 when left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitSeconds(pub u64);

impl Rule for WaitSeconds {
    fn parse(value: &Value) -> Result<Self, String> {
        let wanted = || format!("must be a whole number of seconds, at most {MAX_WAIT_SECONDS}");
        let Value::Number(number) = value else {
            return Err(format!("{}, not {}", wanted(), kind(value)));
        };
        // JSON Schema counts 5.0 as an integer too.
        let whole =
            number.as_u64().or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
        match whole {
            Some(seconds) if seconds <= MAX_WAIT_SECONDS => Ok(Self(seconds)),
            _ => Err(format!("{}, not {number}", wanted())),
        }
    }
}
inline_schema!(WaitSeconds, json_schema!({"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECONDS, "default": 0}));

deserialize_with_rule!(AccountId, IntentId, DecimalAmount, CurrencyCode, Memo, IdempotencyKey, WaitSeconds);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::mcp::tools::get_transfer_status::StatusArgs;
    use crate::mcp::tools::transfer_funds::TransferArgs;

    /// Whether the schema of `A` forbids `text`, judged by the schema alone (a regex, the lengths).
    fn schema_forbids<A: JsonSchema>(text: &str) -> bool {
        let schema = A::json_schema(&mut SchemaGenerator::default());
        let length = text.chars().count() as u64;
        let too_short = schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| length < min);
        let too_long = schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| length > max);
        let mismatch = schema
            .get("pattern")
            .and_then(Value::as_str)
            .is_some_and(|pattern| !regex::Regex::new(pattern).unwrap().is_match(text));
        too_short || too_long || mismatch
    }

    fn refused<A: Rule>(text: &str) -> bool {
        A::parse(&Value::String(text.to_owned())).is_err()
    }

    fn text_near_the_edges() -> impl Strategy<Value = String> {
        let alphabet = prop::sample::select(vec![
            '0', '1', '9', '.', '-', '+', ',', '$', 'e', 'A', 'U', 'S', 'D', 'z', '_', ' ', '\n', '\t', '\u{A0}',
            '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}', 'é', '٣', '~', '"',
        ]);
        prop::collection::vec(alphabet, 0..8).prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// The server never accepts what the schema a client sees forbids.
        #[test]
        fn whatever_a_schema_forbids_its_rule_refuses(text in text_near_the_edges()) {
            for (forbids, refuses) in [
                (schema_forbids::<AccountId>(&text), refused::<AccountId>(&text)),
                (schema_forbids::<IntentId>(&text), refused::<IntentId>(&text)),
                (schema_forbids::<DecimalAmount>(&text), refused::<DecimalAmount>(&text)),
                (schema_forbids::<CurrencyCode>(&text), refused::<CurrencyCode>(&text)),
                (schema_forbids::<Memo>(&text), refused::<Memo>(&text)),
                (schema_forbids::<IdempotencyKey>(&text), refused::<IdempotencyKey>(&text)),
            ] {
                prop_assert!(!forbids || refuses, "{text:?}");
            }
        }
    }

    #[test]
    fn lengths_are_the_schemas() {
        assert!(refused::<AccountId>(&"a".repeat(MAX_ID_CHARS + 1)));
        assert!(!refused::<AccountId>(&"a".repeat(MAX_ID_CHARS)));
        assert!(refused::<IdempotencyKey>(&"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)));
        assert!(!refused::<IdempotencyKey>(&"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS)));
        assert!(refused::<Memo>(&"m".repeat(MAX_MEMO_CHARS + 1)));
        assert!(!refused::<Memo>(&"m".repeat(MAX_MEMO_CHARS)));
    }

    fn check<T: DeserializeOwned + JsonSchema + 'static>(arguments: Value) -> Result<T, ArgumentError> {
        serde_json::from_value::<Arguments<T>>(arguments).unwrap().check()
    }

    fn transfer(changes: Value) -> Result<TransferArgs, ArgumentError> {
        let mut arguments = json!({"from_account_id": "acc_a", "to_account_id": "acc_b", "amount": "25"});
        arguments.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
        check(arguments)
    }

    #[test]
    fn every_refusal_names_the_argument_and_the_reason() {
        let cases = [
            (json!({"memo": null}), "memo: must be a string, not null"),
            (json!({"currency": null}), "currency: must be a string, not null"),
            (json!({"idempotency_key": null}), "idempotency_key: must be a string, not null"),
            (json!({"amount": " 10"}), "amount: \" 10\" is not a plain decimal number"),
            (json!({"amount": "\u{a0}10"}), "amount: \"\\u{00A0}10\" is not a plain decimal number"),
            (json!({"amount": 25}), "amount: must be a decimal string such as \"25\", not a JSON number"),
            (json!({"amount": "-5"}), "amount: must be greater than zero, not \"-5\""),
            (json!({"currency": "usd"}), "currency: must be an ISO 4217 code"),
            (json!({"memo": "rent\u{202E}"}), "memo: holds U+202E (a bidirectional control"),
            (json!({"memo": "a\u{200B}b"}), "memo: holds U+200B (an invisible format character) at character 2"),
            (json!({"from_account_id": "x".repeat(120_000)}), "from_account_id: is 120000 characters long; at most 64"),
            (json!({"to_account_id": "acc b"}), "to_account_id: holds U+0020 at character 4"),
            (json!({"fee": "1"}), "\"fee\": is not an argument of this tool"),
            (json!({"amount": null}), "amount: must be a decimal string such as \"25.00\", not null"),
        ];
        for (changes, expected) in cases {
            let error = transfer(changes.clone()).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{changes}: {error}");
            assert!(error.len() < 300, "{changes}: {error}");
        }
        let missing = check::<TransferArgs>(json!({"from_account_id": "acc_a", "to_account_id": "acc_b"}));
        assert_eq!(missing.unwrap_err().to_string(), "amount: is required");
        let status = check::<StatusArgs>(json!({"intent_id": "int_1", "wait_seconds": 46}));
        assert_eq!(
            status.unwrap_err().to_string(),
            "wait_seconds: must be a whole number of seconds, at most 45, not 46"
        );
    }

    #[test]
    fn a_bad_value_is_quoted_by_a_short_escaped_prefix_only() {
        assert_eq!(quoted("short"), "\"short\"");
        assert_eq!(quoted(&"9".repeat(100_000)), format!("\"{}\"…", "9".repeat(QUOTED_PREFIX_CHARS)));
        assert_eq!(quoted("a\u{202E}\n\"é"), "\"a\\u{202E}\\u{000A}\\\"é\"");
    }

    #[test]
    fn valid_arguments_arrive_typed_and_the_memo_in_nfc() {
        let args = transfer(json!({"currency": "EUR", "memo": "Cafe\u{301}", "idempotency_key": "k-1"})).unwrap();
        assert_eq!(args.amount, DecimalAmount(MinorUnits(2500)));
        assert_eq!(args.currency, Some(CurrencyCode("EUR".parse().unwrap())));
        assert_eq!(args.memo.into_text().unwrap().as_str(), "Caf\u{e9}");
        assert_eq!(args.idempotency_key.unwrap().as_str(), "k-1");
        assert_eq!(transfer(json!({"memo": ""})).unwrap().memo, Memo::default());
        let status = check::<StatusArgs>(json!({"intent_id": "int_1"})).unwrap();
        assert_eq!(status.wait_seconds, WaitSeconds(0));
        assert_eq!(check::<StatusArgs>(json!({"intent_id": "int_1", "wait_seconds": 5.0})).unwrap().wait_seconds.0, 5);
    }
}
