//! Gateway time: the UTC calendar the wire format speaks (`timestamp`, the `YYMMDDHH` head of
//! an `xref`, card expiry, the daily settlement run), from the daemon's clock
//! ([`calmony_actors::clock`]).

pub use calmony_actors::clock::{UtcTime, until_next};

/// The first eight characters of an `xref`: `YYMMDDHH`.
pub fn xref_prefix(t: &UtcTime) -> String {
    format!(
        "{:02}{:02}{:02}{:02}",
        t.year.rem_euclid(100),
        t.month,
        t.day,
        t.hour
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn xref_prefix_is_yymmddhh() {
        let t = super::UtcTime::from_unix(1_575_376_496);
        assert_eq!(super::xref_prefix(&t), "19120312");
    }
}
