//! Birthday domain types: input is parsed into these at the boundary.

use chrono::{Datelike, NaiveDate};
use http::StatusCode;
use kit::table::StoreError;
use kit::ApiError;
use std::fmt;

/// Everything that can go wrong in the birthday API; mapped to HTTP once, below.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    #[error("username must be 1-64 ASCII letters")]
    InvalidUsername,
    #[error("dateOfBirth must be a real date in YYYY-MM-DD format, before today")]
    InvalidDateOfBirth,
    #[error("no birthday is saved for this user")]
    UserNotFound,
    #[error("stored birthday is unreadable")]
    Corrupt,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<HelloError> for ApiError {
    fn from(err: HelloError) -> Self {
        let message = err.to_string();
        match err {
            HelloError::InvalidUsername => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_username", message)
            }
            HelloError::InvalidDateOfBirth => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_date_of_birth", message)
            }
            HelloError::UserNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "user_not_found", message)
            }
            HelloError::Corrupt => ApiError::internal(message),
            HelloError::Api(api) => api,
            HelloError::Store(store) => store.into(),
        }
    }
}

/// A username: 1–64 ASCII letters. Case is kept: `Alice` and `alice` are two users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, HelloError> {
        let valid = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphabetic());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(HelloError::InvalidUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A date of birth: a real calendar date, strictly before the day it was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    /// Parses exactly `YYYY-MM-DD` (four-digit year, two-digit month and day) and checks
    /// the date is before `today`.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, HelloError> {
        let date = Self::from_stored(raw)?;
        if date.0 < today {
            Ok(date)
        } else {
            Err(HelloError::InvalidDateOfBirth)
        }
    }

    /// Parses the stored form, which [`DateOfBirth::parse`] validated when saving.
    pub fn from_stored(raw: &str) -> Result<Self, HelloError> {
        let shape_ok = raw.len() == 10
            && raw.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(HelloError::InvalidDateOfBirth);
        }
        kit::time::parse_date(raw)
            .map(Self)
            .ok_or(HelloError::InvalidDateOfBirth)
    }
}

impl fmt::Display for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kit::time::format_date(self.0))
    }
}

/// The birthday's date in `year`: 29 February falls on 28 February in common years.
fn birthday_in(dob: NaiveDate, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, dob.month(), dob.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
}

/// Whole UTC calendar days from `today` to the next birthday; 0 when it is today.
pub fn days_until_birthday(dob: DateOfBirth, today: NaiveDate) -> i64 {
    let this_year = birthday_in(dob.0, today.year());
    let next = match this_year {
        Some(day) if day >= today => Some(day),
        _ => birthday_in(dob.0, today.year() + 1),
    };
    // Every year has a 28 February, so `birthday_in` only fails past chrono's last
    // representable year; count nothing rather than panic there.
    next.map_or(0, |day| (day - today).num_days())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn days(dob: &str, today: &str) -> i64 {
        days_until_birthday(DateOfBirth::from_stored(dob).unwrap(), date(today))
    }

    #[test]
    fn days_until_birthday_counts_calendar_days() {
        assert_eq!(days("2000-06-15", "2026-06-15"), 0);
        assert_eq!(days("2000-06-15", "2026-06-14"), 1);
        assert_eq!(days("2000-06-15", "2026-06-16"), 364);
        assert_eq!(days("2000-01-01", "2026-12-31"), 1);
        assert_eq!(days("2000-06-15", "2027-06-16"), 365);
        assert_eq!(days("2000-06-15", "2027-06-17"), 364, "2028 is a leap year");
    }

    #[test]
    fn days_until_birthday_moves_feb_29_to_feb_28_in_common_years() {
        assert_eq!(days("2004-02-29", "2027-02-28"), 0);
        assert_eq!(days("2004-02-29", "2027-02-27"), 1);
        assert_eq!(days("2004-02-29", "2028-02-28"), 1);
        assert_eq!(days("2004-02-29", "2028-02-29"), 0);
        assert_eq!(days("2004-02-29", "2027-03-01"), 365, "next is 29 Feb 2028");
        assert_eq!(days("2004-02-29", "2028-03-01"), 364);
    }

    #[test]
    fn username_parse_rejects_anything_but_1_to_64_letters() {
        assert!(Username::parse("Alice").is_ok());
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a1", "al ice", "bé", "a-b", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn date_of_birth_parse_accepts_only_past_real_dates_in_exact_format() {
        let today = date("2026-11-22");
        assert!(DateOfBirth::parse("2026-11-21", today).is_ok());
        assert!(DateOfBirth::parse("2024-02-29", today).is_ok());
        for bad in [
            "2026-11-22",
            "2030-01-01",
            "2023-02-29",
            "2000-13-01",
            "2000-00-10",
            "2000-1-01",
            "2000-01-1",
            "20000-01-01",
            "2000/01/01",
            " 2000-01-01",
            "2000-01-01T00:00:00Z",
            "",
            "+200-01-01",
        ] {
            assert!(DateOfBirth::parse(bad, today).is_err(), "{bad:?}");
        }
    }
}
