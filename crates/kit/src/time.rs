//! The fixed date forms the API and SigV4 use, read and written by hand: chrono's
//! format-string machinery (`parse_from_str`, `format`) is ~25 KiB of every wasm that
//! links it, for shapes that are a few digits each.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

/// The value of `N` ASCII digits, `None` unless `text` is exactly that.
fn digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// A date written `YYYY-MM-DD`, exactly (four, two and two digits), that exists.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&b[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&b[5..7])?, digits(&b[8..])?)
}

/// `YYYY-MM-DD`, as chrono's `%Y-%m-%d` writes it: years outside 0–9999 get a sign.
pub fn format_date(date: NaiveDate) -> String {
    let year = date.year();
    let year = match year {
        0..=9999 => format!("{year:04}"),
        10000.. => format!("+{year}"),
        _ => format!("-{:04}", year.unsigned_abs()),
    };
    format!("{year}-{:02}-{:02}", date.month(), date.day())
}

/// SigV4's `YYYYMMDD'T'HHMMSS'Z'` (`x-amz-date`), exactly.
pub fn parse_amz_date(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = i32::try_from(digits(&b[..4])?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(&b[4..6])?, digits(&b[6..8])?)?;
    let time =
        NaiveTime::from_hms_opt(digits(&b[9..11])?, digits(&b[11..13])?, digits(&b[13..15])?)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// SigV4's `x-amz-date` form of `at` (whole seconds, UTC).
pub fn format_amz_date(at: DateTime<Utc>) -> String {
    format!(
        "{}T{:02}{:02}{:02}Z",
        format_amz_day(at),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// SigV4's credential-scope date, `YYYYMMDD`.
pub fn format_amz_day(at: DateTime<Utc>) -> String {
    format!("{:04}{:02}{:02}", at.year(), at.month(), at.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_date_returns_the_date_when_it_is_written_exactly() {
        assert_eq!(
            parse_date("1990-05-17"),
            NaiveDate::from_ymd_opt(1990, 5, 17)
        );
        assert_eq!(
            parse_date("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(parse_date("0001-01-01"), NaiveDate::from_ymd_opt(1, 1, 1));
    }

    #[test]
    fn parse_date_returns_none_when_the_shape_or_the_day_is_wrong() {
        for bad in [
            "",
            "1990-1-01",
            "1990-01-1",
            "990-01-01",
            "1990/01/01",
            "1990-13-01",
            "1990-00-10",
            "1990-04-31",
            "2023-02-29",
            "1990-01-01T00:00:00Z",
            "+990-01-01",
            "1990-0a-01",
            "1990-01-01 ",
            "١٩٩٠-01-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_date_writes_what_chrono_writes() {
        for (y, m, d) in [
            (1990, 5, 17),
            (1, 1, 1),
            (0, 12, 31),
            (9999, 12, 31),
            (12345, 1, 2),
            (-44, 3, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(format_date(date), date.format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn amz_dates_round_trip_and_match_chrono() {
        let at = NaiveDate::from_ymd_opt(2015, 8, 30)
            .unwrap()
            .and_hms_opt(12, 36, 0)
            .unwrap()
            .and_utc();
        assert_eq!(format_amz_date(at), "20150830T123600Z");
        assert_eq!(format_amz_date(at), at.format("%Y%m%dT%H%M%SZ").to_string());
        assert_eq!(format_amz_day(at), "20150830");
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(at));
    }

    #[test]
    fn parse_amz_date_returns_none_when_the_shape_or_the_instant_is_wrong() {
        for bad in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015083T123600Z",
            "20151330T123600Z",
            "20150830T253600Z",
            "20150830T126000Z",
            "2015-08-30T12:36:00Z",
            "20150830T123600Z ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
    }
}
