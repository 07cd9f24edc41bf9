//! How each key's INI text becomes its Rust type: one zero-sized marker per format, named in
//! the key table ([`crate::table`]). Parse, don't validate: a value that parses is a valid one.

use crate::{Secret, TurnUser};
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How one key's INI text maps to its Rust field type. The implementors are zero-sized markers
/// named in the key table.
pub(crate) trait Codec<T> {
    /// Whether the value is a credential, blanked by [`Config::to_flat_redacted`](crate::Config::to_flat_redacted).
    const SECRET: bool = false;
    fn parse(text: &str) -> Result<T, String>;
    fn render(value: &T) -> String;
}

/// Any `FromStr + Display` type: numbers, strings, [`StampMode`](crate::StampMode).
pub(crate) enum Plain {}
/// `0`/`1`/`true`/`false` (written as `0`/`1`, like ZLMediaKit).
pub(crate) enum Flag {}
/// Whole seconds.
pub(crate) enum Secs {}
/// Milliseconds.
pub(crate) enum Millis {}
/// Seconds, fractions allowed (`3.0`, `0.5`).
pub(crate) enum FracSecs {}
/// A file system path.
pub(crate) enum Dir {}
/// A string where empty means "not set" (hook URLs).
pub(crate) enum OptText {}
/// An IP address where empty means "not set".
pub(crate) enum OptIp {}
/// A [`Secret`](crate::Secret).
pub(crate) enum SecretText {}
/// A comma-separated list of [`FromStr`] items (empty items skipped).
pub(crate) enum CommaList {}
/// A `/`-separated list of names.
pub(crate) enum SlashList {}
/// `first-last` ports.
pub(crate) enum PortSpan {}
/// `name:password,…` TURN users.
pub(crate) enum Users {}

impl<T: FromStr + fmt::Display> Codec<T> for Plain
where
    T::Err: fmt::Display,
{
    fn parse(text: &str) -> Result<T, String> {
        text.parse().map_err(|e: T::Err| e.to_string())
    }
    fn render(value: &T) -> String {
        value.to_string()
    }
}

impl Codec<bool> for Flag {
    fn parse(text: &str) -> Result<bool, String> {
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err("expected 0, 1, true or false".into()),
        }
    }
    fn render(value: &bool) -> String {
        u8::from(*value).to_string()
    }
}

impl Codec<Duration> for Secs {
    fn parse(text: &str) -> Result<Duration, String> {
        text.parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("expected whole seconds: {e}"))
    }
    fn render(value: &Duration) -> String {
        value.as_secs().to_string()
    }
}

impl Codec<Duration> for Millis {
    fn parse(text: &str) -> Result<Duration, String> {
        text.parse()
            .map(Duration::from_millis)
            .map_err(|e| format!("expected milliseconds: {e}"))
    }
    fn render(value: &Duration) -> String {
        value.as_millis().to_string()
    }
}

impl Codec<Duration> for FracSecs {
    fn parse(text: &str) -> Result<Duration, String> {
        let secs: f64 = text.parse().map_err(|e| format!("expected seconds: {e}"))?;
        Duration::try_from_secs_f64(secs).map_err(|e| format!("expected seconds: {e}"))
    }
    fn render(value: &Duration) -> String {
        // Whole numbers come out without a fraction (`10`), as ZLMediaKit's `segDur=2`.
        value.as_secs_f64().to_string()
    }
}

impl Codec<PathBuf> for Dir {
    fn parse(text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }
    fn render(value: &PathBuf) -> String {
        value.display().to_string()
    }
}

impl Codec<Option<String>> for OptText {
    fn parse(text: &str) -> Result<Option<String>, String> {
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
    fn render(value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }
}

impl Codec<Option<IpAddr>> for OptIp {
    fn parse(text: &str) -> Result<Option<IpAddr>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| "expected an IP address or nothing".into())
    }
    fn render(value: &Option<IpAddr>) -> String {
        value.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

impl Codec<Secret> for SecretText {
    const SECRET: bool = true;
    fn parse(text: &str) -> Result<Secret, String> {
        Ok(Secret::new(text))
    }
    fn render(value: &Secret) -> String {
        value.expose().to_owned()
    }
}

impl<T: FromStr<Err = String> + fmt::Display> Codec<Vec<T>> for CommaList {
    fn parse(text: &str) -> Result<Vec<T>, String> {
        comma_items(text)
    }
    fn render(value: &Vec<T>) -> String {
        let items: Vec<String> = value.iter().map(T::to_string).collect();
        items.join(",")
    }
}

impl Codec<Vec<String>> for SlashList {
    fn parse(text: &str) -> Result<Vec<String>, String> {
        Ok(text
            .split('/')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn render(value: &Vec<String>) -> String {
        value.join("/")
    }
}

impl Codec<RangeInclusive<u16>> for PortSpan {
    fn parse(text: &str) -> Result<RangeInclusive<u16>, String> {
        let (first, last) = text.split_once('-').ok_or("expected first-last")?;
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|e| format!("{:?} is not a port: {e}", p.trim()))
        };
        let (first, last) = (port(first)?, port(last)?);
        if first == 0 || first > last {
            return Err("expected 1 <= first <= last".into());
        }
        Ok(first..=last)
    }
    fn render(value: &RangeInclusive<u16>) -> String {
        format!("{}-{}", value.start(), value.end())
    }
}

impl Codec<Vec<TurnUser>> for Users {
    const SECRET: bool = true;
    fn parse(text: &str) -> Result<Vec<TurnUser>, String> {
        comma_items(text)
    }
    fn render(value: &Vec<TurnUser>) -> String {
        let items: Vec<String> = value
            .iter()
            .map(|u| format!("{}:{}", u.name, u.password.expose()))
            .collect();
        items.join(",")
    }
}

fn comma_items<T: FromStr<Err = String>>(text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::parse)
        .collect()
}

/// Parses a built-in default; a failure is a bug in the key table, caught by every test.
pub(crate) fn builtin<C: Codec<T>, T>(key: &str, text: &str) -> T {
    C::parse(text)
        .unwrap_or_else(|reason| panic!("built-in default of {key} ({text:?}) is bad: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_codecs() {
        assert_eq!(<Flag as Codec<bool>>::parse("TRUE"), Ok(true));
        assert!(<Flag as Codec<bool>>::parse("2").is_err());
        assert_eq!(
            <FracSecs as Codec<Duration>>::parse("0.5"),
            Ok(Duration::from_millis(500))
        );
        assert!(<FracSecs as Codec<Duration>>::parse("-1").is_err());
        assert_eq!(
            <FracSecs as Codec<Duration>>::render(&Duration::from_secs(3)),
            "3"
        );
        assert_eq!(
            <PortSpan as Codec<RangeInclusive<u16>>>::parse("50000 - 50010"),
            Ok(50000..=50010)
        );
        assert!(<PortSpan as Codec<RangeInclusive<u16>>>::parse("5-4").is_err());
        let users = <Users as Codec<Vec<TurnUser>>>::parse("a:x:y, b:z").expect("users");
        assert_eq!(users[0].name, "a");
        assert_eq!(users[0].password.expose(), "x:y");
        assert_eq!(<Users as Codec<Vec<TurnUser>>>::render(&users), "a:x:y,b:z");
        assert!(<Users as Codec<Vec<TurnUser>>>::parse("nopassword").is_err());
        assert_eq!(format!("{:?}", users[1].password), "Secret(<redacted>)");
    }
}
