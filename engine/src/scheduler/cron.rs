//! The schedules of Convex's `crons.ts`: parsing the JSON text that
//! `cronJobs().export()` produces into cron jobs, and computing when each runs
//! next, in UTC.
//!
//! The deploy step evaluates `crons.ts` and hands the scheduler its export; the
//! scheduler needs run times that match Convex's, and a stable description of each
//! schedule so that redeploying an unchanged cron keeps its next run. Everything
//! is pure (the caller owns the clock) and the calendar arithmetic is done here
//! rather than with a date library, since only whole UTC minutes are involved.
//!
//! `hourly`, `daily`, `weekly` and `monthly` schedules become cron expressions,
//! so each schedule has one representation and one matching algorithm. As on
//! Convex, a `monthly` job for a day some months lack (29, 30 or 31) skips
//! those months.

use serde::Deserialize;
use std::collections::BTreeMap;

const MS_PER_MINUTE: i64 = 60_000;
const MINUTES_PER_DAY: i64 = 24 * 60;
const MS_PER_DAY: i64 = MINUTES_PER_DAY * MS_PER_MINUTE;
/// The Gregorian calendar repeats every 400 years (146,097 days, a whole number of
/// weeks), so an expression that matches nothing in 400 years never matches.
const SEARCH_YEARS: i64 = 400;
/// The names `weekly` accepts, as Convex's `cronJobs()` validates them.
const DAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// One cron job of `crons.ts`.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSpec {
    pub identifier: String,
    /// The function to run, as `cronJobs()` names it: `"<module>:<export>"`.
    pub name: String,
    /// The single arguments object the function is called with.
    pub args: serde_json::Value,
    pub schedule: Schedule,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Runs every `ms` milliseconds, counted from the previous run.
    Interval { ms: u64 },
    /// Runs at the whole UTC minutes a cron expression matches.
    Calendar(Calendar),
}

/// A parsed cron expression. Each field is a bit set of its allowed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Sunday is bit 0 only: cron's 7 is folded into it.
    days_of_week: u64,
    /// Vixie cron's rule: when both day fields are restricted, a day matches if
    /// either does; when either starts with `*`, both must match.
    days_match_either: bool,
    /// The expression with its whitespace normalized, for `describe`.
    expression: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CronError {
    #[error("the crons.ts export is not a JSON object of cron jobs: {0}")]
    Export(String),
    #[error("cron job {identifier:?}: {problem}")]
    Job { identifier: String, problem: JobProblem },
}

/// Why one cron job of the export was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JobProblem {
    #[error("the identifier must be non-empty printable ASCII")]
    Identifier,
    /// A missing field, a field of the wrong type or an unknown schedule type.
    #[error("{0}")]
    Malformed(String),
    #[error("the function name is empty")]
    EmptyName,
    #[error("args must be a list holding one object, not {0}")]
    Args(String),
    #[error("an interval needs exactly one of seconds, minutes or hours")]
    IntervalUnits,
    #[error("an interval of {value} {unit} is shorter than one second")]
    IntervalTooShort { value: f64, unit: &'static str },
    #[error("{field} must be a whole number from {min} to {max}, not {value}")]
    OutOfRange { field: &'static str, value: f64, min: u32, max: u32 },
    #[error("dayOfWeek must be a lowercase day name such as \"monday\", not {0:?}")]
    DayOfWeek(String),
    #[error(
        "cron expression {expression:?} has {found} fields; expected 5: \
         minute hour day-of-month month day-of-week"
    )]
    CronFieldCount { expression: String, found: usize },
    #[error("cron expression {expression:?}, {field} field: {reason}")]
    CronField { expression: String, field: &'static str, reason: String },
    #[error("cron expression {0:?} never matches a date")]
    NeverMatches(String),
}

/// Parses `export()`'s JSON text. Jobs come back sorted by identifier.
pub fn parse_crons(json: &str) -> Result<Vec<CronSpec>, CronError> {
    let jobs: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| CronError::Export(e.to_string()))?;
    jobs.into_iter()
        .map(|(identifier, job)| parse_job(identifier, job))
        .collect()
}

impl Schedule {
    /// The first run time (Unix ms) strictly after `after_ms`: for an interval,
    /// `after_ms + ms`; for a calendar, the first matching whole minute.
    /// `i64::MAX` means never.
    pub fn next_after(&self, after_ms: i64) -> i64 {
        match self {
            Schedule::Interval { ms } => {
                after_ms.saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX))
            }
            Schedule::Calendar(calendar) => calendar.next_after(after_ms).unwrap_or(i64::MAX),
        }
    }

    /// A stable text form, so a redeploy can tell whether a job's schedule
    /// changed, which people read too: e.g. `"every 60s"`, `"every 1500ms"`
    /// or `"cron 30 17 * * 1"`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Interval { ms } if ms.is_multiple_of(1000) => format!("every {}s", ms / 1000),
            Schedule::Interval { ms } => format!("every {ms}ms"),
            Schedule::Calendar(calendar) => format!("cron {}", calendar.expression),
        }
    }
}

fn parse_job(identifier: String, job: serde_json::Value) -> Result<CronSpec, CronError> {
    let parts = check_identifier(&identifier).and_then(|()| {
        let job: RawJob =
            serde_json::from_value(job).map_err(|e| JobProblem::Malformed(e.to_string()))?;
        if job.name.is_empty() {
            return Err(JobProblem::EmptyName);
        }
        Ok((job.name, single_args_object(job.args)?, job.schedule.into_schedule()?))
    });
    match parts {
        Ok((name, args, schedule)) => Ok(CronSpec { identifier, name, args, schedule }),
        Err(problem) => Err(CronError::Job { identifier, problem }),
    }
}

fn check_identifier(identifier: &str) -> Result<(), JobProblem> {
    let printable = identifier.bytes().all(|b| (b' '..=b'~').contains(&b));
    if identifier.is_empty() || !printable {
        return Err(JobProblem::Identifier);
    }
    Ok(())
}

/// `cronJobs()` wraps the arguments object in a list, as function calls take it.
fn single_args_object(args: serde_json::Value) -> Result<serde_json::Value, JobProblem> {
    match args {
        serde_json::Value::Array(mut items) if items.len() == 1 && items[0].is_object() => {
            Ok(items.remove(0))
        }
        other => Err(JobProblem::Args(other.to_string())),
    }
}

#[derive(Deserialize)]
#[serde(expecting = "an object with name, args and schedule")]
struct RawJob {
    name: String,
    args: serde_json::Value,
    schedule: RawSchedule,
}

/// Numbers are read as `f64` so that a fractional or negative one is reported
/// with its field's name and range rather than as a type mismatch.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[serde(expecting = "a schedule object with a \"type\"")]
enum RawSchedule {
    Interval {
        seconds: Option<f64>,
        minutes: Option<f64>,
        hours: Option<f64>,
    },
    Hourly {
        #[serde(rename = "minuteUTC")]
        minute_utc: Option<f64>,
    },
    Daily {
        #[serde(rename = "hourUTC")]
        hour_utc: f64,
        #[serde(rename = "minuteUTC")]
        minute_utc: Option<f64>,
    },
    Weekly {
        #[serde(rename = "dayOfWeek")]
        day_of_week: String,
        #[serde(rename = "hourUTC")]
        hour_utc: f64,
        #[serde(rename = "minuteUTC")]
        minute_utc: Option<f64>,
    },
    Monthly {
        day: f64,
        #[serde(rename = "hourUTC")]
        hour_utc: f64,
        #[serde(rename = "minuteUTC")]
        minute_utc: Option<f64>,
    },
    Cron {
        cron: String,
    },
}

impl RawSchedule {
    fn into_schedule(self) -> Result<Schedule, JobProblem> {
        let expression = match self {
            RawSchedule::Interval { seconds, minutes, hours } => {
                return interval(seconds, minutes, hours)
            }
            RawSchedule::Hourly { minute_utc } => format!("{} * * * *", minute(minute_utc)?),
            RawSchedule::Daily { hour_utc, minute_utc } => {
                format!("{} {} * * *", minute(minute_utc)?, hour(hour_utc)?)
            }
            RawSchedule::Weekly { day_of_week, hour_utc, minute_utc } => {
                let (minute, hour) = (minute(minute_utc)?, hour(hour_utc)?);
                let day = DAY_NAMES
                    .iter()
                    .position(|name| *name == day_of_week)
                    .ok_or(JobProblem::DayOfWeek(day_of_week))?;
                format!("{minute} {hour} * * {day}")
            }
            RawSchedule::Monthly { day, hour_utc, minute_utc } => {
                let day = whole("day", day, 1, 31)?;
                format!("{} {} {day} * *", minute(minute_utc)?, hour(hour_utc)?)
            }
            RawSchedule::Cron { cron } => cron,
        };
        Ok(Schedule::Calendar(parse_cron(&expression)?))
    }
}

fn interval(
    seconds: Option<f64>,
    minutes: Option<f64>,
    hours: Option<f64>,
) -> Result<Schedule, JobProblem> {
    let (value, unit, unit_ms) = match (seconds, minutes, hours) {
        (Some(value), None, None) => (value, "seconds", 1_000.0),
        (None, Some(value), None) => (value, "minutes", 60_000.0),
        (None, None, Some(value)) => (value, "hours", 3_600_000.0),
        _ => return Err(JobProblem::IntervalUnits),
    };
    let ms = (value * unit_ms).round();
    if ms < 1_000.0 {
        return Err(JobProblem::IntervalTooShort { value, unit });
    }
    // An absurdly long interval saturates, which `next_after` treats as never.
    Ok(Schedule::Interval { ms: ms as u64 })
}

fn minute(minute_utc: Option<f64>) -> Result<u32, JobProblem> {
    whole("minuteUTC", minute_utc.unwrap_or(0.0), 0, 59)
}

fn hour(hour_utc: f64) -> Result<u32, JobProblem> {
    whole("hourUTC", hour_utc, 0, 23)
}

fn whole(field: &'static str, value: f64, min: u32, max: u32) -> Result<u32, JobProblem> {
    if value.fract() != 0.0 || value < f64::from(min) || value > f64::from(max) {
        return Err(JobProblem::OutOfRange { field, value, min, max });
    }
    Ok(value as u32)
}

/// One field of a cron expression. Names map to values from `min` upwards.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: Field = Field { name: "hour", min: 0, max: 23, names: &[] };
const DAY_OF_MONTH: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
/// 7 is accepted as Sunday, as in Vixie cron, but has no name of its own.
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

fn parse_cron(expression: &str) -> Result<Calendar, JobProblem> {
    let parts: Vec<&str> = expression.split_whitespace().collect();
    let normalized = parts.join(" ");
    let [minute, hour, day_of_month, month, day_of_week] = parts[..] else {
        return Err(JobProblem::CronFieldCount { expression: normalized, found: parts.len() });
    };
    let field = |spec: &Field, text: &str| {
        parse_field(spec, text).map_err(|reason| JobProblem::CronField {
            expression: normalized.clone(),
            field: spec.name,
            reason,
        })
    };
    let calendar = Calendar {
        minutes: field(&MINUTE, minute)?,
        hours: field(&HOUR, hour)?,
        days_of_month: field(&DAY_OF_MONTH, day_of_month)?,
        months: field(&MONTH, month)?,
        days_of_week: fold_sunday(field(&DAY_OF_WEEK, day_of_week)?),
        days_match_either: !day_of_month.starts_with('*') && !day_of_week.starts_with('*'),
        expression: normalized.clone(),
    };
    // Vixie cron would silently never run "0 0 31 2 *"; a deploy should say so.
    if calendar.next_after(0).is_none() {
        return Err(JobProblem::NeverMatches(normalized));
    }
    Ok(calendar)
}

fn parse_field(spec: &Field, text: &str) -> Result<u64, String> {
    text.split(',').try_fold(0, |bits, item| Ok(bits | parse_item(spec, item)?))
}

/// One list item: `*`, `a` or `a-b`, the ranges optionally with a `/step`.
fn parse_item(spec: &Field, item: &str) -> Result<u64, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(step)?)),
        None => (item, None),
    };
    let (low, high) = match (range, range.split_once('-'), step) {
        ("*", _, _) => (spec.min, spec.max),
        (_, Some((low, high)), _) => (parse_value(spec, low)?, parse_value(spec, high)?),
        // Vixie cron refuses "a/n"; other crons read it as "a-max/n", so it is
        // ambiguous rather than merely unsupported.
        (_, None, Some(step)) => {
            return Err(format!(
                "{item:?} steps from a single value; write \"{range}-{}/{step}\"",
                spec.max
            ))
        }
        (_, None, None) => {
            let value = parse_value(spec, range)?;
            (value, value)
        }
    };
    if low > high {
        return Err(format!("the range {range:?} runs backwards"));
    }
    let values = (low..=high).step_by(step.unwrap_or(1));
    Ok(values.fold(0, |bits, value| bits | (1 << value)))
}

fn parse_step(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(step) if step > 0 && is_digits(text) => Ok(step),
        _ => Err(format!("the step {text:?} is not a whole number from 1")),
    }
}

fn parse_value(spec: &Field, text: &str) -> Result<u32, String> {
    let named = spec.names.iter().position(|name| name.eq_ignore_ascii_case(text));
    let value = match named {
        Some(index) => spec.min + index as u32,
        // Too many digits for u32 is just another value out of range.
        None if is_digits(text) => text.parse().unwrap_or(u32::MAX),
        None if text.is_empty() => return Err("a value is missing".to_owned()),
        None => return Err(not_a_value(spec, text)),
    };
    if !(spec.min..=spec.max).contains(&value) {
        return Err(format!("{text} is outside {}-{}", spec.min, spec.max));
    }
    Ok(value)
}

fn not_a_value(spec: &Field, text: &str) -> String {
    match (spec.names.first(), spec.names.last()) {
        (Some(first), Some(last)) => {
            format!("{text:?} is neither a number nor a name {first}-{last}")
        }
        _ => format!("{text:?} is not a number"),
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn fold_sunday(days_of_week: u64) -> u64 {
    const SEVEN: u64 = 1 << 7;
    if days_of_week & SEVEN == 0 {
        return days_of_week;
    }
    (days_of_week & !SEVEN) | 1
}

fn has(bits: u64, value: u32) -> bool {
    (bits >> value) & 1 == 1
}

/// The smallest value in `bits` that is at least `from`.
fn next_in(bits: u64, from: u32) -> Option<u32> {
    let remaining = bits.checked_shr(from)?.checked_shl(from)?;
    (remaining != 0).then(|| remaining.trailing_zeros())
}

impl Calendar {
    /// Walks month by month and, within an allowed month, day by day, taking
    /// the first allowed hour and minute of the first matching day, so a search
    /// costs at most a few thousand steps even for a rare expression.
    fn next_after(&self, after_ms: i64) -> Option<i64> {
        let first_minute = after_ms.div_euclid(MS_PER_MINUTE) + 1;
        let (mut year, mut month, mut from_day) =
            civil_from_days(first_minute.div_euclid(MINUTES_PER_DAY));
        let minute_of_day = first_minute.rem_euclid(MINUTES_PER_DAY) as u32;
        let mut from_time = (minute_of_day / 60, minute_of_day % 60);
        let last_year = year + SEARCH_YEARS;
        while year <= last_year {
            if has(self.months, month) {
                for day in from_day..=days_in_month(year, month) {
                    if self.day_matches(year, month, day) {
                        if let Some((hour, minute)) = self.time_from(from_time) {
                            return unix_ms(days_from_civil(year, month, day), hour, minute);
                        }
                    }
                    from_time = (0, 0);
                }
            }
            (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
            (from_day, from_time) = (1, (0, 0));
        }
        None
    }

    fn day_matches(&self, year: i64, month: u32, day: u32) -> bool {
        let day_of_month = has(self.days_of_month, day);
        let day_of_week = has(self.days_of_week, weekday(days_from_civil(year, month, day)));
        if self.days_match_either {
            day_of_month || day_of_week
        } else {
            day_of_month && day_of_week
        }
    }

    /// The first allowed (hour, minute) at or after `(hour, minute)` of one day.
    fn time_from(&self, (hour, minute): (u32, u32)) -> Option<(u32, u32)> {
        if has(self.hours, hour) {
            if let Some(minute) = next_in(self.minutes, minute) {
                return Some((hour, minute));
            }
        }
        let hour = next_in(self.hours, hour + 1)?;
        Some((hour, next_in(self.minutes, 0)?))
    }
}

fn unix_ms(days: i64, hour: u32, minute: u32) -> Option<i64> {
    let in_day = i64::from(hour * 60 + minute) * MS_PER_MINUTE;
    days.checked_mul(MS_PER_DAY)?.checked_add(in_day)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 0 is Sunday, as in cron; 1970-01-01 was a Thursday.
fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Years are counted from
/// March so that the leap day falls at the end of each year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (year.div_euclid(400), year.rem_euclid(400));
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
/// `ms` as UTC text to the second, e.g. `2026-11-29 02:41:10Z`, for people
/// reading run times (`convect crons`, `convect scheduled`).
pub fn utc_text(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY) / 1000);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", in_day / 3600, in_day / 60 % 60, in_day % 60)
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let (era, day_of_era) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = ((month_from_march + 2) % 12 + 1) as u32;
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(year: i64, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
        unix_ms(days_from_civil(year, month, day), hour, minute).unwrap()
    }

    fn schedule(schedule: serde_json::Value) -> Result<Schedule, JobProblem> {
        let export = json!({ "job": { "name": "jobs:run", "args": [{}], "schedule": schedule } });
        match parse_crons(&export.to_string()) {
            Ok(mut jobs) => Ok(jobs.remove(0).schedule),
            Err(CronError::Job { problem, .. }) => Err(problem),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn cron(expression: &str) -> Schedule {
        schedule(json!({ "type": "cron", "cron": expression })).unwrap()
    }

    fn cron_problem(expression: &str) -> JobProblem {
        schedule(json!({ "type": "cron", "cron": expression })).unwrap_err()
    }

    /// What a calendar matches, without the text `describe` shows.
    fn fields(schedule: &Schedule) -> (u64, u64, u64, u64, u64, bool) {
        let Schedule::Calendar(c) = schedule else { panic!("not a calendar") };
        (c.minutes, c.hours, c.days_of_month, c.months, c.days_of_week, c.days_match_either)
    }

    /// The successive run times after `from`.
    fn runs(schedule: &Schedule, from: i64, count: usize) -> Vec<i64> {
        std::iter::successors(Some(schedule.next_after(from)), |t| Some(schedule.next_after(*t)))
            .take(count)
            .collect()
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(civil_from_days(days_from_civil(2028, 2, 29)), (2028, 2, 29));
        assert_eq!(weekday(days_from_civil(2028, 2, 29)), 2, "a Tuesday");
        assert_eq!(weekday(days_from_civil(2025, 1, 31)), 5, "a Friday");
        for days in (-800_000..800_000).step_by(97) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=days_in_month(year, month)).contains(&day));
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn intervals_in_each_unit() {
        let cases = [
            (json!({ "type": "interval", "seconds": 30 }), 30_000),
            (json!({ "type": "interval", "minutes": 5 }), 300_000),
            (json!({ "type": "interval", "hours": 2 }), 7_200_000),
            (json!({ "type": "interval", "seconds": 1.5 }), 1_500),
            (json!({ "type": "interval", "hours": 0.25 }), 900_000),
        ];
        for (raw, ms) in cases {
            let schedule = schedule(raw).unwrap();
            assert_eq!(schedule, Schedule::Interval { ms });
            assert_eq!(schedule.next_after(1_000), 1_000 + ms as i64);
        }
        assert_eq!(schedule(json!({ "type": "interval", "minutes": 5 })).unwrap().describe(), "every 300s");
        assert_eq!(schedule(json!({ "type": "interval", "seconds": 1.5 })).unwrap().describe(), "every 1500ms");
        let second = Schedule::Interval { ms: 1_000 };
        assert_eq!(second.next_after(i64::MAX - 10), i64::MAX);
    }

    #[test]
    fn intervals_refused() {
        let too_short = |value: f64, unit| JobProblem::IntervalTooShort { value, unit };
        let cases = [
            (json!({ "type": "interval", "seconds": 0.5 }), too_short(0.5, "seconds")),
            (json!({ "type": "interval", "seconds": 0 }), too_short(0.0, "seconds")),
            (json!({ "type": "interval", "minutes": -1 }), too_short(-1.0, "minutes")),
            (json!({ "type": "interval" }), JobProblem::IntervalUnits),
            (json!({ "type": "interval", "seconds": 5, "minutes": 1 }), JobProblem::IntervalUnits),
        ];
        for (raw, problem) in cases {
            assert_eq!(schedule(raw).unwrap_err(), problem);
        }
        assert_eq!(
            too_short(0.5, "seconds").to_string(),
            "an interval of 0.5 seconds is shorter than one second"
        );
        assert!(matches!(
            schedule(json!({ "type": "interval", "seconds": "5" })),
            Err(JobProblem::Malformed(_))
        ));
    }

    #[test]
    fn hourly() {
        let on_the_hour = schedule(json!({ "type": "hourly" })).unwrap();
        assert_eq!(on_the_hour.describe(), "cron 0 * * * *");
        assert_eq!(on_the_hour.next_after(at(2025, 6, 1, 10, 0) + 1), at(2025, 6, 1, 11, 0));
        let at_quarter = schedule(json!({ "type": "hourly", "minuteUTC": 15 })).unwrap();
        assert_eq!(at_quarter.describe(), "cron 15 * * * *");
        assert_eq!(
            runs(&at_quarter, at(2025, 12, 31, 22, 20), 3),
            [at(2025, 12, 31, 23, 15), at(2026, 1, 1, 0, 15), at(2026, 1, 1, 1, 15)]
        );
    }

    #[test]
    fn daily_is_strictly_after_an_exact_match() {
        let daily = schedule(json!({ "type": "daily", "hourUTC": 17, "minuteUTC": 30 })).unwrap();
        assert_eq!(daily.describe(), "cron 30 17 * * *");
        let run = at(2025, 6, 1, 17, 30);
        assert_eq!(daily.next_after(run - 1), run);
        assert_eq!(daily.next_after(run), at(2025, 6, 2, 17, 30));
        assert_eq!(daily.next_after(run + 1), at(2025, 6, 2, 17, 30));
        assert_eq!(daily.next_after(at(2025, 6, 1, 8, 0)), run);
        let midnight = schedule(json!({ "type": "daily", "hourUTC": 0 })).unwrap();
        assert_eq!(midnight.describe(), "cron 0 0 * * *");
        assert_eq!(midnight.next_after(at(2025, 12, 31, 0, 0)), at(2026, 1, 1, 0, 0));
    }

    #[test]
    fn times_before_1970() {
        let daily = schedule(json!({ "type": "daily", "hourUTC": 12 })).unwrap();
        assert_eq!(daily.next_after(at(1969, 12, 31, 13, 0)), at(1970, 1, 1, 12, 0));
        assert_eq!(daily.next_after(-1), at(1970, 1, 1, 12, 0));
        assert_eq!(daily.next_after(at(1900, 2, 28, 13, 0)), at(1900, 3, 1, 12, 0));
    }

    #[test]
    fn weekly_across_a_month_end() {
        let raw =
            json!({ "type": "weekly", "dayOfWeek": "monday", "hourUTC": 17, "minuteUTC": 30 });
        let weekly = schedule(raw).unwrap();
        assert_eq!(weekly.describe(), "cron 30 17 * * 1");
        assert_eq!(fields(&weekly), fields(&cron("30 17 * * MON")));
        assert_eq!(
            runs(&weekly, at(2025, 1, 31, 9, 0), 3),
            [at(2025, 2, 3, 17, 30), at(2025, 2, 10, 17, 30), at(2025, 2, 17, 17, 30)]
        );
        let sunday = schedule(json!({ "type": "weekly", "dayOfWeek": "sunday", "hourUTC": 0 }));
        assert_eq!(sunday.unwrap().next_after(at(2025, 12, 28, 0, 0)), at(2026, 1, 4, 0, 0));
    }

    #[test]
    fn monthly_on_a_day_every_month_has() {
        let raw = json!({ "type": "monthly", "day": 1, "hourUTC": 16, "minuteUTC": 0 });
        let monthly = schedule(raw).unwrap();
        assert_eq!(monthly.describe(), "cron 0 16 1 * *");
        assert_eq!(monthly, cron("0 16 1 * *"));
        assert_eq!(
            runs(&monthly, at(2025, 11, 15, 0, 0), 2),
            [at(2025, 12, 1, 16, 0), at(2026, 1, 1, 16, 0)]
        );
    }

    #[test]
    fn utc_text_reads_as_a_calendar_time() {
        assert_eq!(utc_text(at(2028, 2, 29, 23, 59) + 59_999), "2028-02-29 23:59:59Z");
        assert_eq!(utc_text(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc_text(-1000), "1969-12-31 23:59:59Z");
    }

    #[test]
    fn monthly_on_the_31st_skips_shorter_months_as_on_convex() {
        let monthly = schedule(json!({ "type": "monthly", "day": 31, "hourUTC": 23 })).unwrap();
        assert_eq!(monthly, cron("0 23 31 * *"));
        assert_eq!(
            runs(&monthly, at(2025, 1, 1, 0, 0), 4),
            [at(2025, 1, 31, 23, 0), at(2025, 3, 31, 23, 0), at(2025, 5, 31, 23, 0), at(2025, 7, 31, 23, 0)]
        );
        let on_29th = schedule(json!({ "type": "monthly", "day": 29, "hourUTC": 0 })).unwrap();
        assert_eq!(on_29th.next_after(at(2027, 2, 1, 0, 0)), at(2027, 3, 29, 0, 0));
        assert_eq!(on_29th.next_after(at(2028, 2, 1, 0, 0)), at(2028, 2, 29, 0, 0));
    }

    #[test]
    fn plain_cron_skips_months_without_the_day() {
        let on_31st = cron("0 0 31 * *");
        assert_eq!(on_31st.next_after(at(2025, 4, 1, 0, 0)), at(2025, 5, 31, 0, 0));
        let leap_day = cron("0 12 29 2 *");
        assert_eq!(leap_day.describe(), "cron 0 12 29 2 *");
        assert_eq!(leap_day.next_after(at(2025, 3, 1, 0, 0)), at(2028, 2, 29, 12, 0));
        assert_eq!(leap_day.next_after(at(2096, 3, 1, 0, 0)), at(2104, 2, 29, 12, 0));
    }

    #[test]
    fn cron_steps_ranges_lists_and_names() {
        let schedule = cron("*/20  9-17/4 * jan,JUL mon-Fri");
        assert_eq!(schedule.describe(), "cron */20 9-17/4 * jan,JUL mon-Fri");
        let Schedule::Calendar(calendar) = &schedule else { panic!() };
        assert_eq!(calendar.minutes, 1 | (1 << 20) | (1 << 40));
        assert_eq!(calendar.hours, (1 << 9) | (1 << 13) | (1 << 17));
        assert_eq!(calendar.months, (1 << 1) | (1 << 7));
        assert_eq!(calendar.days_of_week, 0b0111110);
        // Friday 2025-01-31 17:40 is the last run in January; July 1st is a Tuesday.
        assert_eq!(
            runs(&schedule, at(2025, 1, 31, 17, 20), 3),
            [at(2025, 1, 31, 17, 40), at(2025, 7, 1, 9, 0), at(2025, 7, 1, 9, 20)]
        );
        let same = |a: &str, b: &str| assert_eq!(fields(&cron(a)), fields(&cron(b)), "{a} vs {b}");
        same("5,10-12,50-59/3 * * * *", "5,10,11,12,50,53,56,59 * * * *");
        same("0 0 * * 7", "0 0 * * 0");
        same("0 0 * * 5-7", "0 0 * * 0,5,6");
        same("0 0 * * SUN", "0 0 * * sun");
        same("0 0 * Dec-DEC *", "0 0 * 12 *");
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Both restricted: the 11th, or any Friday.
        let either = cron("0 0 11 * 5");
        assert_eq!(
            runs(&either, at(2025, 6, 1, 0, 0), 3),
            [at(2025, 6, 6, 0, 0), at(2025, 6, 11, 0, 0), at(2025, 6, 13, 0, 0)]
        );
        // A field starting with '*' makes both required, as in Vixie cron:
        // days 1, 11, 21 and 31 that are Mondays.
        let both = cron("0 0 */10 * 1");
        assert_eq!(both.next_after(at(2025, 6, 1, 0, 0)), at(2025, 7, 21, 0, 0));
        let weekdays_only = cron("0 0 * * 1");
        assert_eq!(weekdays_only.next_after(at(2025, 6, 1, 0, 0)), at(2025, 6, 2, 0, 0));
    }

    /// Compares the field-stepping search with a minute-by-minute scan.
    #[test]
    fn next_after_agrees_with_a_scan() {
        fn matches(calendar: &Calendar, ms: i64) -> bool {
            let minute = ms / MS_PER_MINUTE;
            let (year, month, day) = civil_from_days(minute / MINUTES_PER_DAY);
            let minute_of_day = (minute % MINUTES_PER_DAY) as u32;
            has(calendar.minutes, minute_of_day % 60)
                && has(calendar.hours, minute_of_day / 60)
                && has(calendar.months, month)
                && calendar.day_matches(year, month, day)
        }
        let expressions = ["*/7 */5 * * *", "59 23 * * *", "0,30 8-9 1,15 * 3", "10 1 * 2,3 */3"];
        for expression in expressions {
            let schedule = cron(expression);
            let Schedule::Calendar(calendar) = &schedule else { panic!() };
            let mut from = at(2027, 12, 30, 0, 0) + 123;
            for _ in 0..40 {
                let expected = (1..)
                    .map(|step| (from.div_euclid(MS_PER_MINUTE) + step) * MS_PER_MINUTE)
                    .find(|ms| matches(calendar, *ms))
                    .unwrap();
                assert_eq!(schedule.next_after(from), expected, "{expression} after {from}");
                from = expected + 17_000;
            }
        }
    }

    #[test]
    fn cron_that_never_matches_is_refused() {
        for expression in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
            assert_eq!(cron_problem(expression), JobProblem::NeverMatches(expression.to_owned()));
        }
        assert_eq!(
            cron_problem("0 0 30 2 *").to_string(),
            "cron expression \"0 0 30 2 *\" never matches a date"
        );
        // Rare is not never: February 29th, or a Monday that is the 1st of February.
        cron("0 0 29 2 *");
        cron("0 0 */30 2 1");
    }

    #[test]
    fn cron_field_counts() {
        for (expression, found) in [("* * * *", 4), ("0 * * * * *", 6), ("", 0), ("@daily", 1)] {
            assert_eq!(
                cron_problem(expression),
                JobProblem::CronFieldCount { expression: expression.to_owned(), found }
            );
        }
    }

    #[test]
    fn cron_fields_refused() {
        let cases = [
            ("60 * * * *", "minute", "60 is outside 0-59"),
            ("* 24 * * *", "hour", "24 is outside 0-23"),
            ("* * 0 * *", "day-of-month", "0 is outside 1-31"),
            ("* * 32 * *", "day-of-month", "32 is outside 1-31"),
            ("* * * 13 *", "month", "13 is outside 1-12"),
            ("* * * * 8", "day-of-week", "8 is outside 0-7"),
            ("99999999999 * * * *", "minute", "99999999999 is outside 0-59"),
            ("* * * FOO *", "month", "\"FOO\" is neither a number nor a name JAN-DEC"),
            ("* * * * FUN", "day-of-week", "\"FUN\" is neither a number nor a name SUN-SAT"),
            ("* * * * JAN", "day-of-week", "\"JAN\" is neither a number nor a name SUN-SAT"),
            ("MON * * * *", "minute", "\"MON\" is not a number"),
            ("-5 * * * *", "minute", "a value is missing"),
            ("+5 * * * *", "minute", "\"+5\" is not a number"),
            ("1, * * * *", "minute", "a value is missing"),
            ("*/0 * * * *", "minute", "the step \"0\" is not a whole number from 1"),
            ("*/x * * * *", "minute", "the step \"x\" is not a whole number from 1"),
            ("5-1 * * * *", "minute", "the range \"5-1\" runs backwards"),
            ("5/15 * * * *", "minute", "\"5/15\" steps from a single value; write \"5-59/15\""),
        ];
        for (expression, field, reason) in cases {
            assert_eq!(
                cron_problem(expression),
                JobProblem::CronField {
                    expression: expression.to_owned(),
                    field,
                    reason: reason.to_owned()
                },
                "{expression}"
            );
        }
    }

    #[test]
    fn calendar_fields_refused() {
        let out_of_range =
            |field, value, min, max| JobProblem::OutOfRange { field, value, min, max };
        let cases = [
            (json!({ "type": "hourly", "minuteUTC": 60 }), out_of_range("minuteUTC", 60.0, 0, 59)),
            (json!({ "type": "daily", "hourUTC": 24 }), out_of_range("hourUTC", 24.0, 0, 23)),
            (json!({ "type": "daily", "hourUTC": 1.5 }), out_of_range("hourUTC", 1.5, 0, 23)),
            (json!({ "type": "daily", "hourUTC": -1 }), out_of_range("hourUTC", -1.0, 0, 23)),
            (
                json!({ "type": "monthly", "day": 0, "hourUTC": 0 }),
                out_of_range("day", 0.0, 1, 31),
            ),
            (
                json!({ "type": "monthly", "day": 32, "hourUTC": 0 }),
                out_of_range("day", 32.0, 1, 31),
            ),
            (
                json!({ "type": "weekly", "dayOfWeek": "Monday", "hourUTC": 0 }),
                JobProblem::DayOfWeek("Monday".to_owned()),
            ),
            (
                json!({ "type": "weekly", "dayOfWeek": "funday", "hourUTC": 0 }),
                JobProblem::DayOfWeek("funday".to_owned()),
            ),
        ];
        for (raw, problem) in cases {
            assert_eq!(schedule(raw).unwrap_err(), problem);
        }
        assert_eq!(
            out_of_range("hourUTC", 1.5, 0, 23).to_string(),
            "hourUTC must be a whole number from 0 to 23, not 1.5"
        );
    }

    #[test]
    fn missing_fields_and_unknown_types() {
        let malformed = |raw| match schedule(raw) {
            Err(JobProblem::Malformed(message)) => message,
            other => panic!("unexpected {other:?}"),
        };
        assert!(malformed(json!({ "type": "daily" })).contains("missing field `hourUTC`"));
        assert!(malformed(json!({ "type": "weekly", "hourUTC": 1 })).contains("`dayOfWeek`"));
        assert!(malformed(json!({ "type": "monthly", "hourUTC": 1 })).contains("`day`"));
        assert!(malformed(json!({ "type": "cron" })).contains("missing field `cron`"));
        assert!(malformed(json!({ "type": "yearly" })).contains("unknown variant `yearly`"));
        assert!(malformed(json!({ "hourUTC": 1 })).contains("missing field `type`"));
    }

    #[test]
    fn jobs_refused() {
        let problem = |export: serde_json::Value| match parse_crons(&export.to_string()) {
            Err(CronError::Job { identifier, problem }) => (identifier, problem),
            other => panic!("unexpected {other:?}"),
        };
        let daily = json!({ "type": "daily", "hourUTC": 3 });
        for identifier in ["", "tab\there", "café"] {
            let job = json!({ "name": "a:b", "args": [{}], "schedule": daily });
            let export: serde_json::Map<_, _> = [(identifier.to_owned(), job)].into_iter().collect();
            let export = serde_json::Value::Object(export);
            assert_eq!(problem(export), (identifier.to_owned(), JobProblem::Identifier));
        }
        let (_, name) = problem(json!({ "x": { "name": "", "args": [{}], "schedule": daily } }));
        assert_eq!(name, JobProblem::EmptyName);
        let (_, args) = problem(json!({ "x": { "name": "a:b", "args": [], "schedule": daily } }));
        assert_eq!(args, JobProblem::Args("[]".to_owned()));
        let (_, args) = problem(json!({ "x": { "name": "a:b", "args": [1], "schedule": daily } }));
        assert_eq!(args, JobProblem::Args("[1]".to_owned()));
        let (_, missing) = problem(json!({ "x": { "name": "a:b", "schedule": daily } }));
        assert_eq!(missing, JobProblem::Malformed("missing field `args`".to_owned()));
        let (_, not_an_object) = problem(json!({ "x": 5 }));
        assert_eq!(
            not_an_object.to_string(),
            "invalid type: integer `5`, expected an object with name, args and schedule"
        );
        let error = CronError::Job { identifier: "x".to_owned(), problem: JobProblem::EmptyName };
        assert_eq!(error.to_string(), "cron job \"x\": the function name is empty");
    }

    #[test]
    fn exports_that_are_not_objects() {
        for text in ["", "[]", "null", "{\"a\": "] {
            assert!(matches!(parse_crons(text), Err(CronError::Export(_))), "{text:?}");
        }
        assert_eq!(parse_crons("{}"), Ok(vec![]));
    }

    #[test]
    fn a_realistic_export() {
        // What `JSON.stringify(crons.crons)` gives for a crons.ts with three jobs.
        let export = r#"{"clear messages table":{"name":"messages:clearAll","args":[{}],"schedule":{"minutes":1,"type":"interval"}},"payment reminder":{"name":"payments:sendPaymentEmail","args":[{"email":"my_email@gmail.com"}],"schedule":{"day":1,"hourUTC":16,"minuteUTC":0,"type":"monthly"}},"Weekly digest":{"name":"emails/digest:send","args":[{"limit":10}],"schedule":{"cron":"30 17 * * MON","type":"cron"}}}"#;
        let jobs = parse_crons(export).unwrap();
        let identifiers: Vec<&str> = jobs.iter().map(|job| job.identifier.as_str()).collect();
        assert_eq!(identifiers, ["Weekly digest", "clear messages table", "payment reminder"]);
        assert_eq!(jobs[0].name, "emails/digest:send");
        assert_eq!(jobs[0].args, json!({ "limit": 10 }));
        assert_eq!(jobs[0].schedule.describe(), "cron 30 17 * * MON");
        assert_eq!(jobs[1].schedule, Schedule::Interval { ms: 60_000 });
        assert_eq!(jobs[1].args, json!({}));
        assert_eq!(jobs[2].args, json!({ "email": "my_email@gmail.com" }));
        assert_eq!(jobs[2].schedule.describe(), "cron 0 16 1 * *");
        let now = at(2025, 6, 1, 12, 0);
        let next: Vec<i64> = jobs.iter().map(|job| job.schedule.next_after(now)).collect();
        assert_eq!(next, [at(2025, 6, 2, 17, 30), now + 60_000, at(2025, 6, 1, 16, 0)]);
    }

    #[test]
    fn far_future_does_not_overflow() {
        assert_eq!(cron("* * * * *").next_after(i64::MAX), i64::MAX);
        let near_end = at(292_000_000, 1, 1, 0, 0);
        assert_eq!(cron("0 0 1 1 *").next_after(near_end), at(292_000_001, 1, 1, 0, 0));
    }
}
