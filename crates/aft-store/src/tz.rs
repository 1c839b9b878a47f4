//! IANA time zones for chrono (and croner), read from jiff's bundled copy of the tz database.
//!
//! This replaces chrono-tz, whose generated tables hold some 56,000 transitions, each with a
//! `&'static str` abbreviation: 1.8 MB of pointers the loader relocates in every process
//! (private dirty memory in every `aft` command and service, time zones used or not). jiff's
//! bundle is the compiled TZif files as one byte string, which needs no relocation. Like
//! chrono-tz, the data is built in: the same on every machine, whether or not it has a
//! `/usr/share/zoneinfo`.

use std::fmt;
use std::sync::LazyLock;

use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use jiff::Timestamp;
use jiff::civil;
use jiff::tz::{AmbiguousOffset, TimeZoneDatabase};

/// The bundled database (no file system access).
static DATABASE: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// An IANA time zone such as `Europe/Rome`, daylight saving time included.
#[derive(Clone, PartialEq, Eq)]
pub struct Tz(jiff::tz::TimeZone);

impl Tz {
    /// The zone named `name`, spelled exactly as in the tz database (`Europe/Rome`, `UTC`).
    pub fn from_name(name: &str) -> Option<Tz> {
        Tz::from_name_any_case(name).filter(|tz| tz.name() == name)
    }

    /// The zone named `name`, without regard to ASCII case (`europe/rome`).
    pub fn from_name_any_case(name: &str) -> Option<Tz> {
        DATABASE.get(name).ok().map(Tz)
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("")
    }

    /// The offset in effect at `utc_secs` (seconds since the epoch).
    fn at(&self, utc_secs: i64) -> TzOffset {
        let offset = self.0.to_offset(timestamp(utc_secs));
        TzOffset {
            tz: self.clone(),
            fixed: fixed(offset),
            utc_secs,
        }
    }
}

impl fmt::Debug for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The offset of a [`Tz`] at an instant; it prints as the zone's abbreviation then
/// (`CET`, `CEST`, `+03`), as `%Z` in a format shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TzOffset {
    tz: Tz,
    fixed: FixedOffset,
    /// The instant, for the abbreviation.
    utc_secs: i64,
}

impl Offset for TzOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Display for TzOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.tz.0.to_offset_info(timestamp(self.utc_secs));
        f.write_str(info.abbreviation())
    }
}

impl fmt::Debug for TzOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl TimeZone for Tz {
    type Offset = TzOffset;

    fn from_offset(offset: &TzOffset) -> Tz {
        offset.tz.clone()
    }

    /// As chrono-tz did: one offset that occurs on that day, the one at midnight if any.
    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<TzOffset> {
        use chrono::LocalResult::{Ambiguous, None, Single};
        let earliest = self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN));
        let last = local.and_hms_opt(23, 59, 59).expect("23:59:59 is a time");
        let latest = self.offset_from_local_datetime(&last);
        match (earliest, latest) {
            (result @ Single(_), _) | (_, result @ Single(_)) => result,
            (Ambiguous(offset, _), _) | (_, Ambiguous(offset, _)) => Single(offset),
            (None, None) => None,
        }
    }

    /// A local time in a gap (clocks forward) has no offset; one in a fold (clocks back) has
    /// two, the earlier instant first.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<TzOffset> {
        let local_secs = local.and_utc().timestamp();
        let at = |offset: jiff::tz::Offset| self.at(local_secs - i64::from(offset.seconds()));
        let Some(civil) = civil_time(local) else {
            // Beyond jiff's years (±9999): the offset at the nearest end of its range.
            return MappedLocalTime::Single(self.at(local_secs));
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => MappedLocalTime::Single(at(offset)),
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(at(before), at(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> TzOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> TzOffset {
        self.at(utc.and_utc().timestamp())
    }
}

/// `secs` since the epoch as a jiff timestamp, clamped to jiff's range (years ±9999).
fn timestamp(secs: i64) -> Timestamp {
    let secs = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A local date and time as jiff's civil time, to the second; `None` beyond years ±9999.
fn civil_time(local: &NaiveDateTime) -> Option<civil::DateTime> {
    use chrono::{Datelike, Timelike};
    civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        local.month() as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        0,
    )
    .ok()
}

/// A jiff offset as chrono's (tz database offsets are all well within a day).
fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds())
        .unwrap_or(FixedOffset::east_opt(0).expect("zero offset"))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::Tz;

    #[test]
    fn names_are_exact_unless_asked_otherwise() {
        assert_eq!(
            Tz::from_name("Europe/Rome")
                .map(|tz| tz.to_string())
                .as_deref(),
            Some("Europe/Rome")
        );
        assert!(Tz::from_name("europe/rome").is_none());
        assert_eq!(
            Tz::from_name_any_case("europe/rome")
                .map(|tz| tz.to_string())
                .as_deref(),
            Some("Europe/Rome")
        );
        assert!(Tz::from_name("UTC").is_some());
        assert!(Tz::from_name("US/Eastern").is_some());
        assert!(Tz::from_name("Mars/Olympus_Mons").is_none());
    }

    #[test]
    fn offsets_and_abbreviations_follow_daylight_saving_time() {
        let rome = Tz::from_name("Europe/Rome").unwrap();
        let winter = Utc
            .with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
            .unwrap()
            .with_timezone(&rome);
        let summer = Utc
            .with_ymd_and_hms(2026, 7, 15, 12, 0, 0)
            .unwrap()
            .with_timezone(&rome);
        assert_eq!(
            winter.format("%H:%M %Z %:z").to_string(),
            "13:00 CET +01:00"
        );
        assert_eq!(
            summer.format("%H:%M %Z %:z").to_string(),
            "14:00 CEST +02:00"
        );
        let dubai = Tz::from_name("Asia/Dubai").unwrap();
        let now = Utc
            .with_ymd_and_hms(2026, 7, 15, 12, 0, 0)
            .unwrap()
            .with_timezone(&dubai);
        assert_eq!(now.format("%Z").to_string(), "+04");
    }

    #[test]
    fn local_times_in_gaps_have_none_and_in_folds_two_earlier_first() {
        let rome = Tz::from_name("Europe/Rome").unwrap();
        // 2026-03-29 02:30 does not exist in Rome; 2026-10-25 02:30 happens twice.
        assert!(
            rome.with_ymd_and_hms(2026, 3, 29, 2, 30, 0)
                .single()
                .is_none()
        );
        assert!(
            rome.with_ymd_and_hms(2026, 3, 29, 2, 30, 0)
                .earliest()
                .is_none()
        );
        let fold = rome.with_ymd_and_hms(2026, 10, 25, 2, 30, 0);
        let (first, second) = (fold.clone().earliest().unwrap(), fold.latest().unwrap());
        assert_eq!(first.to_rfc3339(), "2026-10-25T02:30:00+02:00");
        assert_eq!(second.to_rfc3339(), "2026-10-25T02:30:00+01:00");
        let plain = rome.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).single().unwrap();
        assert_eq!(
            plain.with_timezone(&Utc).to_rfc3339(),
            "2026-05-01T07:00:00+00:00"
        );
    }
}
