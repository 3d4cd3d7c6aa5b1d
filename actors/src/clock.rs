//! The daemon's clock. Everything that stamps a `created` time asks here, so that test clocks
//! (which move a customer's or project's time forward) have one place to plug in.
//!
//! [`UtcTime`] is the calendar (civil-from-days, from `calmony_protocol::billing::civil`, so
//! the workspace needs no date crate for five fields): the gateway's timestamps, card expiry,
//! daily runs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far this daemon's clock runs ahead of the system's, in ms. Zero unless
/// `clock.controllable` is on and `calmony-payd clock advance` moved it (tests and rehearsals:
/// a day of webhook retries or a year of renewals in seconds).
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// The Redis key holding the shared offset, so every daemon on one Redis agrees.
pub const OFFSET_KEY: &str = "cp:clock:offset_ms";

pub fn set_offset_ms(ms: i64) {
    OFFSET_MS.store(ms, Ordering::Relaxed);
}

pub fn offset_ms() -> i64 {
    OFFSET_MS.load(Ordering::Relaxed)
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    system_ms() + offset_ms()
}

/// The current UTC (year, month), for card expiry checks.
pub fn year_month() -> (u32, u32) {
    let t = UtcTime::now();
    (t.year as u32, t.month)
}

const SECONDS_PER_DAY: i64 = 86_400;

/// A UTC calendar time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    pub fn now() -> Self {
        Self::from_unix(now())
    }

    pub fn from_unix(seconds: i64) -> Self {
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = calmony_protocol::billing::civil(days);
        Self {
            year,
            month: month as u32,
            day: day as u32,
            hour: (of_day / 3600) as u32,
            minute: (of_day % 3600 / 60) as u32,
            second: (of_day % 60) as u32,
        }
    }

    /// The gateway's `timestamp` format, `YYYY-MM-DD HH:MM:SS`.
    pub fn timestamp(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// How long from `now` (Unix seconds) until the next `hour:minute` UTC. Exactly at that
/// minute's start it is a whole day, so a run that finishes within its own second is not
/// repeated.
pub fn until_next(now: i64, hour: u8, minute: u8) -> Duration {
    let target = i64::from(hour) * 3600 + i64::from(minute) * 60;
    let wait = (target - now.rem_euclid(SECONDS_PER_DAY)).rem_euclid(SECONDS_PER_DAY);
    let wait = if wait == 0 { SECONDS_PER_DAY } else { wait };
    Duration::from_secs(wait.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_matches_known_instants() {
        assert_eq!(UtcTime::from_unix(0).timestamp(), "1970-01-01 00:00:00");
        // 2019-12-03 12:34:56 UTC, the day of the guide's sample xref 19120312….
        let t = UtcTime::from_unix(1_575_376_496);
        assert_eq!(t.timestamp(), "2019-12-03 12:34:56");
        // A leap day and the turn of a century year.
        assert_eq!(
            UtcTime::from_unix(951_782_400).timestamp(),
            "2000-02-29 00:00:00"
        );
        assert_eq!(
            UtcTime::from_unix(4_107_542_399).timestamp(),
            "2100-02-28 23:59:59"
        );
    }

    #[test]
    fn next_run_is_later_today_or_tomorrow() {
        let ten_pm = 22 * 3600;
        let day = 1_700_000_000 - 1_700_000_000 % 86_400;
        assert_eq!(
            until_next(day + ten_pm - 60, 22, 0),
            Duration::from_secs(60)
        );
        assert_eq!(until_next(day + ten_pm, 22, 0), Duration::from_secs(86_400));
        assert_eq!(
            until_next(day + ten_pm + 1, 22, 0),
            Duration::from_secs(86_399)
        );
        assert_eq!(until_next(day, 0, 30), Duration::from_secs(1800));
    }
}
