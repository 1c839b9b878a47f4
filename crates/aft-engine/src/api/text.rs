//! Text helpers for scripts: `FormatDate`, `TextEncoder`/`TextDecoder` (UTF-8), `atob`/`btoa`.

use base64::Engine as _;
use chrono::format::{DelayedFormat, StrftimeItems};
use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone, Utc};
use jiff::tz::TimeZoneDatabase;
use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Value};

use super::libutil::{bytes_arg, set_global, throw, uint8_array};
use super::prelude::LazyGlobals;

/// The layout `FormatDate` uses when none is given.
pub const DEFAULT_DATE_LAYOUT: &str = "%Y-%m-%d %H:%M:%S";

/// The IANA zones: jiff's bundled tz database, the same on every machine (no file access).
static ZONES: std::sync::LazyLock<TimeZoneDatabase> =
    std::sync::LazyLock::new(TimeZoneDatabase::bundled);

/// The time zone `FormatDate` writes a date in.
#[derive(Debug, Clone, PartialEq)]
pub enum DateZone {
    /// `"UTC"` (also `"Z"`, `"GMT"`).
    Utc,
    /// `"Local"` or no zone: the machine's zone.
    Local,
    /// An IANA zone such as `"Europe/Rome"`, daylight saving time included.
    Named(jiff::tz::TimeZone),
    /// A fixed offset such as `"+02:00"`, `"-0500"`.
    Fixed(FixedOffset),
}

impl DateZone {
    /// Parse a zone argument; names are matched without regard to case.
    pub fn parse(zone: &str) -> Result<Self, String> {
        let zone = zone.trim();
        match zone.to_ascii_lowercase().as_str() {
            "utc" | "z" | "gmt" => return Ok(DateZone::Utc),
            "local" | "" => return Ok(DateZone::Local),
            _ => {}
        }
        if let Ok(tz) = ZONES.get(zone) {
            return Ok(DateZone::Named(tz));
        }
        if let Some(offset) = parse_offset(zone) {
            return Ok(DateZone::Fixed(offset));
        }
        Err(format!(
            "unknown time zone \"{zone}\"; use \"UTC\", \"Local\", an IANA name like \"Europe/Rome\" or an offset like \"+02:00\""
        ))
    }
}

/// A zone's offset at an instant, shown by `%Z` as its abbreviation (`CET`, `CEST`, `+04`).
#[derive(Debug, Clone)]
struct ZoneOffset<'a> {
    fixed: FixedOffset,
    abbreviation: &'a str,
}

impl Offset for ZoneOffset<'_> {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl std::fmt::Display for ZoneOffset<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.abbreviation)
    }
}

/// `+HH:MM`, `+HHMM` or `+HH` (or `-`), up to ±23:59.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Format `millis` since the epoch with a strftime `layout` in `zone`.
pub fn format_date(millis: f64, layout: &str, zone: DateZone) -> Result<String, String> {
    if !millis.is_finite() {
        return Err("the date is invalid (NaN)".to_string());
    }
    let items = StrftimeItems::new(layout).parse().map_err(|_| {
        format!("bad date layout \"{layout}\"; use strftime fields like %Y-%m-%d %H:%M:%S")
    })?;
    let when: DateTime<Utc> = Utc
        .timestamp_millis_opt(millis as i64)
        .single()
        .ok_or_else(|| format!("date {millis} is out of range"))?;
    let items = items.iter();
    Ok(match zone {
        DateZone::Utc => when.format_with_items(items).to_string(),
        DateZone::Local => when
            .with_timezone(&Local)
            .format_with_items(items)
            .to_string(),
        DateZone::Named(tz) => {
            let secs = when.timestamp().clamp(
                jiff::Timestamp::MIN.as_second(),
                jiff::Timestamp::MAX.as_second(),
            );
            let instant = jiff::Timestamp::from_second(secs).map_err(|e| e.to_string())?;
            let info = tz.to_offset_info(instant);
            let offset = ZoneOffset {
                fixed: FixedOffset::east_opt(info.offset().seconds())
                    .ok_or_else(|| format!("the offset of {tz:?} is out of range"))?,
                abbreviation: info.abbreviation(),
            };
            let local = when.with_timezone(&offset.fixed).naive_local();
            DelayedFormat::new_with_offset(Some(local.date()), Some(local.time()), &offset, items)
                .to_string()
        }
        DateZone::Fixed(offset) => when
            .with_timezone(&offset)
            .format_with_items(items)
            .to_string(),
    })
}

/// `btoa`: a string of characters U+0000..U+00FF as base64.
pub fn btoa(text: &str) -> Result<String, String> {
    let bytes: Option<Vec<u8>> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect();
    let bytes = bytes.ok_or_else(|| {
        "the string has characters outside Latin-1; encode it first: btoa(String.fromCharCode(...new TextEncoder().encode(s)))".to_string()
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `atob`: base64 (whitespace and missing padding forgiven) to a string of U+0000..U+00FF.
pub fn atob(b64: &str) -> Result<String, String> {
    let clean: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let clean = clean.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(clean)
        .map_err(|e| format!("not valid base64: {e}"))?;
    Ok(bytes.into_iter().map(char::from).collect())
}

/// Define `atob` and `btoa` now, and `FormatDate`, `TextEncoder` and `TextDecoder` (where
/// the engine has none) on first use.
pub(crate) fn register<'js>(ctx: &Ctx<'js>, lazy: &mut LazyGlobals<'js>) -> rquickjs::Result<()> {
    set_global(
        ctx,
        "btoa",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, s: rquickjs::Coerced<String>| {
                btoa(&s.0).map_err(|e| throw(&ctx, "btoa", e))
            },
        )?,
    )?;
    set_global(
        ctx,
        "atob",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, s: rquickjs::Coerced<String>| {
                atob(&s.0).map_err(|e| throw(&ctx, "atob", e))
            },
        )?,
    )?;
    let globals = ctx.globals();
    let mut names = vec!["FormatDate"];
    for class in ["TextEncoder", "TextDecoder"] {
        if !globals.contains_key(class)? {
            names.push(class);
        }
    }
    lazy.add(names, define);
    Ok(())
}

/// Define `FormatDate`, `TextEncoder` and `TextDecoder`: the natives and the prelude over
/// them.
fn define<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    set_global(
        ctx,
        "__aft_utf8_encode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, s: String| {
            uint8_array(&ctx, s.into_bytes())
        })?,
    )?;
    set_global(
        ctx,
        "__aft_utf8_decode",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, bytes: Value<'js>, fatal: Opt<bool>| {
                let bytes = bytes_arg(&ctx, "TextDecoder.decode", bytes)?;
                if fatal.0.unwrap_or(false) {
                    String::from_utf8(bytes).map_err(|e| {
                        throw(&ctx, "TextDecoder.decode", format!("invalid UTF-8: {e}"))
                    })
                } else {
                    Ok(String::from_utf8_lossy(&bytes).into_owned())
                }
            },
        )?,
    )?;
    set_global(
        ctx,
        "__aft_format_date",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, ms: f64, layout: String, zone: String| {
                let zone = DateZone::parse(&zone).map_err(|e| throw(&ctx, "FormatDate", e))?;
                let layout = if layout.is_empty() {
                    DEFAULT_DATE_LAYOUT
                } else {
                    &layout
                };
                format_date(ms, layout, zone).map_err(|e| throw(&ctx, "FormatDate", e))
            },
        )?,
    )?;
    super::prelude::TEXT.eval::<()>(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_date_in_utc_with_a_layout() {
        // 2026-03-04T05:06:07.089Z
        let ms = 1_772_600_767_089.0;
        assert_eq!(
            format_date(ms, "%Y-%m-%d %H:%M:%S", DateZone::Utc).unwrap(),
            "2026-03-04 05:06:07"
        );
        assert_eq!(
            format_date(ms, "%Y%m%d", DateZone::Utc).unwrap(),
            "20260304"
        );
        assert!(
            format_date(ms, "%Q", DateZone::Utc)
                .unwrap_err()
                .contains("bad date layout")
        );
        assert!(format_date(f64::NAN, "%Y", DateZone::Utc).is_err());
    }

    #[test]
    fn format_date_in_iana_zones_follows_daylight_saving_time() {
        let rome = DateZone::parse("europe/rome").unwrap();
        // 2026-01-15T12:00:00Z is winter (+01:00); 2026-07-15T12:00:00Z is summer (+02:00).
        let winter = 1_768_478_400_000.0;
        let summer = 1_784_116_800_000.0;
        assert_eq!(
            format_date(winter, "%H:%M %z %Z", rome.clone()).unwrap(),
            "13:00 +0100 CET"
        );
        assert_eq!(
            format_date(summer, "%H:%M %z %Z", rome).unwrap(),
            "14:00 +0200 CEST"
        );
        let new_york = DateZone::parse("America/New_York").unwrap();
        assert_eq!(format_date(summer, "%H:%M", new_york).unwrap(), "08:00");
        let dubai = DateZone::parse("Asia/Dubai").unwrap();
        assert_eq!(format_date(summer, "%H:%M %Z", dubai).unwrap(), "16:00 +04");
    }

    #[test]
    fn format_date_takes_fixed_offsets_and_refuses_unknown_zones() {
        let ms = 1_772_600_767_089.0;
        for zone in ["+05:30", "+0530"] {
            let z = DateZone::parse(zone).unwrap();
            assert_eq!(format_date(ms, "%H:%M", z).unwrap(), "10:36");
        }
        assert_eq!(
            format_date(ms, "%H", DateZone::parse("-03").unwrap()).unwrap(),
            "02"
        );
        assert_eq!(DateZone::parse("gmt").unwrap(), DateZone::Utc);
        assert_eq!(DateZone::parse("").unwrap(), DateZone::Local);
        let err = DateZone::parse("Mars/Olympus").unwrap_err();
        assert!(
            err.contains("Mars/Olympus") && err.contains("Europe/Rome"),
            "{err}"
        );
        assert!(DateZone::parse("+25:00").is_err());
    }

    #[test]
    fn base64_round_trip_and_errors() {
        assert_eq!(btoa("hello").unwrap(), "aGVsbG8=");
        assert_eq!(atob("aGVsbG8=").unwrap(), "hello");
        assert_eq!(atob("aGVsbG8").unwrap(), "hello");
        assert_eq!(atob(&btoa("\u{ff}\u{0}").unwrap()).unwrap(), "\u{ff}\u{0}");
        assert!(btoa("€").is_err());
        assert!(atob("***").is_err());
    }
}
