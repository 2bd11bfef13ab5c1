//! Spin's cron trigger (the `trigger-cron` plugin): calling a component's
//! `handle-cron-event` export (world `fermyon:spin-cron/spin-cron@2.0.0`), and
//! the schedules of `[[trigger.cron]]`.
//!
//! [`Schedule`] understands a subset of the expressions of the `cron` crate the
//! plugin uses: 6 fields `sec min hour day-of-month month day-of-week`, or 7 with a
//! trailing year that must be `*`. Each field is a comma-separated list of `*`
//! (or `?`), `N`, `A-B`, each optionally with a step `/S` (`N/S` runs from N to
//! the field's maximum). Day-of-week is 1–7 with 1 = Sunday, as in the `cron`
//! crate; months and days of week also take English three-letter names
//! (`JAN`, `MON`). A time matches when every field does (day-of-month and
//! day-of-week both, not either). Times are UTC.

use crate::host::HostState;
use anyhow::{bail, Context, Result};
use wasmtime::Store;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin-cron/spin-cron",
        exports: { default: async },
    });
}

pub use bindings::{Error as CronError, Metadata, SpinCronPre};

/// Instantiates the component afresh, as the trigger does for every event, and
/// calls `handle-cron-event` with `timestamp` (unix seconds). `Err` is the
/// component's own error, or the trap, as text.
pub async fn fire(
    pre: SpinCronPre<HostState>,
    state: HostState,
    timestamp: u64,
) -> Result<(), String> {
    let mut store = Store::new(pre.engine(), state);
    let cron = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| format!("instantiating the component: {e:#}"))?;
    match cron
        .call_handle_cron_event(&mut store, Metadata { timestamp })
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(CronError::Other(message))) => Err(message),
        Err(trap) => Err(format!("component trapped: {trap:#}")),
    }
}

/// A parsed cron expression: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    /// Bits 1–7, 1 = Sunday.
    weekdays: u64,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [sec, min, hour, dom, mon, dow, rest @ ..] if rest.len() <= 1 => {
                if let [year] = rest {
                    if *year != "*" && *year != "?" {
                        bail!("only `*` is supported in the year field");
                    }
                }
                Schedule {
                    seconds: field(sec, 0, 59, &[]).context("seconds")?,
                    minutes: field(min, 0, 59, &[]).context("minutes")?,
                    hours: field(hour, 0, 23, &[]).context("hours")?,
                    days: field(dom, 1, 31, &[]).context("day of month")?,
                    months: field(mon, 1, 12, &MONTHS).context("month")?,
                    weekdays: field(dow, 1, 7, &WEEKDAYS).context("day of week")?,
                }
            }
            _ => bail!("expected 6 or 7 fields (sec min hour day month weekday [year])"),
        };
        Ok(parsed)
    }

    /// The first matching second strictly after `after` (unix seconds), if
    /// any within the next eight years.
    pub fn next_after(&self, after: u64) -> Option<u64> {
        let start = after.checked_add(1)?;
        let first_day = start / 86_400;
        for day in first_day..first_day + 8 * 366 {
            let (month, day_of_month, weekday) = civil(day);
            let matches = has(self.months, month)
                && has(self.days, day_of_month)
                && has(self.weekdays, weekday);
            if !matches {
                continue;
            }
            let from = if day == first_day { start % 86_400 } else { 0 };
            for hour in (0..24).filter(|h| has(self.hours, *h)) {
                if hour * 3600 + 3599 < from {
                    continue;
                }
                for minute in (0..60).filter(|m| has(self.minutes, *m)) {
                    for second in (0..60).filter(|s| has(self.seconds, *s)) {
                        let at = hour * 3600 + minute * 60 + second;
                        if at >= from {
                            return Some(day * 86_400 + at);
                        }
                    }
                }
            }
        }
        None
    }
}

fn has(mask: u64, value: u64) -> bool {
    mask & (1 << value) != 0
}

/// One field: a comma-separated list of `*`, `N`, `A-B`, each with an optional `/S`.
fn field(spec: &str, min: u64, max: u64, names: &[&str]) -> Result<u64> {
    let value = |s: &str| -> Result<u64> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(min + i as u64);
        }
        let v: u64 = s
            .parse()
            .with_context(|| format!("{s:?} is not a number"))?;
        if !(min..=max).contains(&v) {
            bail!("{v} is outside {min}-{max}");
        }
        Ok(v)
    };
    let mut mask = 0;
    for item in spec.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: u64 = step.parse().with_context(|| format!("bad step {step:?}"))?;
                if step == 0 {
                    bail!("step 0 in {item:?}");
                }
                (base, Some(step))
            }
            None => (item, None),
        };
        let (low, high) = match base {
            "*" | "?" => (min, max),
            _ => match base.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step.is_some() => (value(base)?, max),
                None => (value(base)?, value(base)?),
            },
        };
        if low > high {
            bail!("empty range {item:?}");
        }
        let step = usize::try_from(step.unwrap_or(1)).unwrap_or(usize::MAX);
        for v in (low..=high).step_by(step) {
            mask |= 1 << v;
        }
    }
    Ok(mask)
}

/// Month (1–12), day of month (1–31) and day of week (1–7, 1 = Sunday) of
/// `days` since 1970-01-01, in the proleptic Gregorian calendar (H. Hinnant's
/// `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    // 1970-01-01 was a Thursday (5 when Sunday is 1).
    let weekday = (days + 4) % 7 + 1;
    (month, day, weekday)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T07:53:00Z, a Sunday.
    const T: u64 = 1_795_333_980;

    fn next(expr: &str, after: u64) -> u64 {
        Schedule::parse(expr).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn calendar() {
        assert_eq!(civil(0), (1, 1, 5));
        assert_eq!(civil(T / 86_400), (11, 22, 1));
        // 2024-02-29, a Thursday.
        assert_eq!(civil(19_782), (2, 29, 5));
    }

    #[test]
    fn next_times() {
        assert_eq!(next("* * * * * *", T), T + 1);
        assert_eq!(next("*/15 * * * * *", T), T + 15);
        assert_eq!(next("*/15 * * * * *", T + 15), T + 30);
        assert_eq!(next("0 */5 * * * *", T), T + 120);
        assert_eq!(next("30 0 8 * * *", T), T + 7 * 60 + 30);
        assert_eq!(next("0 0 0 * * *", T), T + 16 * 3600 + 7 * 60);
        // Monday 00:00, with names and with numbers (2 = Monday).
        let monday = T - (7 * 3600 + 53 * 60) + 86_400;
        assert_eq!(next("0 0 0 * * MON", T), monday);
        assert_eq!(next("0 0 0 * * 2 *", T), monday);
        assert_eq!(next("0 0 0 1 JAN ?", T), 1_798_761_600); // 2027-01-01
        assert_eq!(next("0 0 12 29 2 *", T), 1_835_438_400); // 2028-02-29T12:00
        assert_eq!(next("5,10 0-1 * * * *", T + 20), T + 7 * 60 + 5);
        assert!(Schedule::parse("0 0 0 31 2 *")
            .unwrap()
            .next_after(T)
            .is_none());
    }

    #[test]
    fn bad_expressions() {
        for bad in [
            "",
            "* * * * *",
            "* * * * * * * *",
            "60 * * * * *",
            "* * 24 * * *",
            "* * * 0 * *",
            "* * * * 13 *",
            "* * * * * 8",
            "*/0 * * * * *",
            "5-1 * * * * *",
            "a * * * * *",
            "* * * * * * 2027",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
