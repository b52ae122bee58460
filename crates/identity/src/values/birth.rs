//! [`DateOfBirth`]: a client's date of birth, and the age it gives on a day (the
//! age gate, O1).

use std::fmt;

use chrono::{Datelike, NaiveDate};

use super::InvalidValue;

/// A real calendar date, not after the day it was given and at most
/// [`DateOfBirth::MAX_AGE_YEARS`] years before it. Personal data: it never prints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    /// The oldest age accepted; an earlier date is a typing error.
    pub const MAX_AGE_YEARS: u32 = 130;

    /// Checks a date of birth given on `today` (UTC).
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule: in the future, or absurdly old.
    pub fn parse(date: NaiveDate, today: NaiveDate) -> Result<Self, InvalidValue> {
        if date > today {
            return Err(InvalidValue {
                field: "date_of_birth",
                rule: "must not be in the future",
            });
        }
        let born = Self(date);
        if born.age_on(today) > Self::MAX_AGE_YEARS {
            return Err(InvalidValue {
                field: "date_of_birth",
                rule: "must be within the last 130 years",
            });
        }
        Ok(born)
    }

    /// Reads back a stored `YYYY-MM-DD` date, without the "not in the future"
    /// check (it held when the date was given).
    #[must_use]
    pub fn from_stored(raw: &str) -> Option<Self> {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().map(Self)
    }

    /// The date.
    #[must_use]
    pub const fn date(&self) -> NaiveDate {
        self.0
    }

    /// `YYYY-MM-DD`, for storage (sealed).
    #[must_use]
    pub fn to_stored(&self) -> String {
        self.0.format("%Y-%m-%d").to_string()
    }

    /// Whole years of age on `day`. A birthday counts from its own month and day:
    /// someone born on 29 February has their birthday on 1 March in a common year
    /// (they are not a year older until 28 February has passed).
    #[must_use]
    pub fn age_on(&self, day: NaiveDate) -> u32 {
        let born = self.0;
        if day < born {
            return 0;
        }
        let years = day.year() - born.year();
        let before_birthday = (day.month(), day.day()) < (born.month(), born.day());
        u32::try_from(years - i32::from(before_birthday)).unwrap_or(0)
    }
}

impl fmt::Debug for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DateOfBirth([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
    }

    #[test]
    fn age_turns_on_the_birthday_itself() {
        let born = DateOfBirth::parse(day(2013, 6, 15), day(2026, 6, 15)).expect("valid");
        assert_eq!(born.age_on(day(2026, 6, 14)), 12);
        assert_eq!(born.age_on(day(2026, 6, 15)), 13);
        assert_eq!(born.age_on(day(2027, 1, 1)), 13);
    }

    #[test]
    fn born_on_29_february_ages_on_1_march_in_common_years() {
        let born = DateOfBirth::parse(day(2012, 2, 29), day(2026, 1, 1)).expect("valid");
        assert_eq!(born.age_on(day(2025, 2, 28)), 12);
        assert_eq!(born.age_on(day(2025, 3, 1)), 13);
        // In a leap year, on the day itself.
        assert_eq!(born.age_on(day(2024, 2, 28)), 11);
        assert_eq!(born.age_on(day(2024, 2, 29)), 12);
    }

    #[test]
    fn future_and_absurd_dates_are_refused_by_rule() {
        let today = day(2026, 11, 23);
        let future = DateOfBirth::parse(day(2026, 11, 24), today).expect_err("future");
        assert_eq!(future.field, "date_of_birth");
        assert_eq!(future.rule, "must not be in the future");
        let old = DateOfBirth::parse(day(1890, 1, 1), today).expect_err("too old");
        assert_eq!(old.rule, "must be within the last 130 years");
        assert!(DateOfBirth::parse(today, today).is_ok());
        assert!(DateOfBirth::parse(day(1896, 11, 23), today).is_ok());
    }

    #[test]
    fn stored_form_round_trips_and_never_prints() {
        let born = DateOfBirth::parse(day(1990, 1, 2), day(2026, 1, 1)).expect("valid");
        assert_eq!(born.to_stored(), "1990-01-02");
        assert_eq!(DateOfBirth::from_stored("1990-01-02"), Some(born));
        assert_eq!(DateOfBirth::from_stored("1990-02-30"), None);
        assert!(!format!("{born:?}").contains("1990"));
    }
}
