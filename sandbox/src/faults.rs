//! Fault injection: the ways a real gateway lets a client down, on demand.
//!
//! The daemon's hardest paths are the ones a healthy gateway never exercises: a response whose
//! signature does not verify, a slow answer, and above all a request the gateway *processed*
//! but never answered, after which the daemon must find out what happened (QUERY) instead of
//! charging again. The settings live in one Redis hash, so a test can switch a fault on through
//! any daemon and every daemon sharing the simulator sees it.
//!
//! - `tamper_signatures`: sign /direct/ answers, and the Hosted Payment Page's results and
//!   callbacks, with the wrong secret.
//! - `delay_ms`: wait this long before processing each /direct/ request.
//! - `drop_next`: process the next N /direct/ requests fully, then hold the connection without
//!   an answer (the client's timeout fires; the state change has happened). Each drop is
//!   claimed by an atomic decrement, so N requests are dropped however many daemons serve them.
//! - `fail_next`: process the next N requests other than QUERY fully (on /direct/ or a hosted
//!   page's payment), then answer 65548 (`DB ERROR`) in place of their answer, as a gateway
//!   whose own store failed after the change was made: the daemon must QUERY (answered
//!   truthfully), not take the code as a refusal. Claimed like `drop_next`.

use std::sync::LazyLock;

use calmony_actors::Store;
use calmony_protocol::cardstream::{FieldValue, Fields};
use redis::Script;
use serde::Serialize;

use crate::error::SandboxError;
use crate::keys;

/// The longest `delay_ms` accepted: ten minutes is past any client's timeout.
const MAX_DELAY_MS: u64 = 600_000;

/// The faults in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    pub tamper_signatures: bool,
    pub delay_ms: u64,
    pub drop_next: u64,
    pub fail_next: u64,
}

/// The faults as read, and the generation they were read at ([`keys::FAULTS_GEN`], which every
/// setting of them increments; 0 before the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub generation: u64,
    pub faults: Faults,
}

/// A `POST /sandbox/faults` the simulator cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    #[error(
        "unknown fault {0:?}: expected tamper_signatures, delay_ms, drop_next, fail_next or reset"
    )]
    Unknown(String),
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// The faults currently set.
pub async fn current(store: &Store) -> Result<Faults, SandboxError> {
    Ok(read(store).await?.faults)
}

/// The faults currently set, with their generation.
pub async fn read(store: &Store) -> Result<Seen, SandboxError> {
    let mut c = store.conn();
    let mut reads = redis::pipe();
    reads
        .cmd("HMGET")
        .arg(keys::FAULTS)
        .arg("tamper_signatures")
        .arg("delay_ms")
        .arg("drop_next")
        .arg("fail_next")
        .get(keys::FAULTS_GEN);
    type Read = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let ((tamper, delay, drop, fail), generation): (Read, Option<u64>) =
        store.run(reads.query_async(&mut c)).await?;
    let number = |v: Option<String>| v.and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    Ok(Seen {
        generation: generation.unwrap_or(0),
        faults: Faults {
            tamper_signatures: tamper.as_deref() == Some("true"),
            delay_ms: number(delay),
            drop_next: number(drop),
            fail_next: number(fail),
        },
    })
}

/// What a `POST /sandbox/faults` form asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `reset=true`: clear every fault before applying the rest.
    reset: bool,
    writes: Vec<(&'static str, String)>,
}

impl Settings {
    /// Read a form of settings; nothing is applied unless all of it is valid.
    pub fn parse(form: &Fields) -> Result<Self, FaultsError> {
        let mut settings = Settings::default();
        for (name, value) in form.iter() {
            let FieldValue::Scalar(value) = value else {
                return Err(FaultsError::Unknown(name.to_owned()));
            };
            let value = value.trim();
            match name {
                "reset" => settings.reset = parse_bool("reset", value)?,
                "tamper_signatures" => {
                    let on = parse_bool("tamper_signatures", value)?;
                    settings.writes.push(("tamper_signatures", on.to_string()));
                }
                "delay_ms" => match value.parse::<u64>() {
                    Ok(n) if n <= MAX_DELAY_MS => settings.writes.push(("delay_ms", n.to_string())),
                    _ => {
                        return Err(FaultsError::Invalid {
                            name: "delay_ms",
                            expected: "a whole number of milliseconds up to 600000",
                            value: value.to_owned(),
                        });
                    }
                },
                "drop_next" => settings
                    .writes
                    .push(("drop_next", count("drop_next", value)?)),
                "fail_next" => settings
                    .writes
                    .push(("fail_next", count("fail_next", value)?)),
                other => return Err(FaultsError::Unknown(other.to_owned())),
            }
        }
        Ok(settings)
    }
}

/// Apply settings in one atomic step and return the faults now in force.
pub async fn apply(store: &Store, settings: &Settings) -> Result<Faults, SandboxError> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    if settings.reset {
        pipe.del(keys::FAULTS).ignore();
    }
    for (name, value) in &settings.writes {
        pipe.hset(keys::FAULTS, *name, value).ignore();
    }
    pipe.incr(keys::FAULTS_GEN, 1).ignore();
    let mut c = store.conn();
    store
        .run(async move { pipe.query_async::<()>(&mut c).await })
        .await?;
    current(store).await
}

/// A number of requests to fault, as text to store.
fn count(name: &'static str, value: &str) -> Result<String, FaultsError> {
    value
        .parse::<u64>()
        .map(|n| n.to_string())
        .map_err(|_| FaultsError::Invalid {
            name,
            expected: "a whole number",
            value: value.to_owned(),
        })
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, FaultsError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(FaultsError::Invalid {
            name,
            expected: "true or false",
            value: value.to_owned(),
        }),
    }
}

/// A fault that spends one of its N requests: `drop_next` or `fail_next`.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    Drop,
    Fail,
}

/// Claim one faulted answer of `which`, if any are left.
pub async fn claim(store: &Store, which: Counted) -> Result<bool, SandboxError> {
    let field = match which {
        Counted::Drop => "drop_next",
        Counted::Fail => "fail_next",
    };
    let mut c = store.conn();
    let claimed: i64 = store
        .run(async move {
            CLAIM
                .key(keys::FAULTS)
                .arg(field)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(claimed == 1)
}

static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
if n > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], n - 1)
  return 1
end
return 0
"#,
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Settings, FaultsError> {
        Settings::parse(&Fields::parse(body.as_bytes()).expect("form"))
    }

    #[test]
    fn settings_are_checked_before_anything_is_applied() {
        let settings =
            parse("reset=true&tamper_signatures=true&delay_ms=250&drop_next=2&fail_next=1")
                .expect("valid");
        assert!(settings.reset);
        assert_eq!(settings.writes.len(), 4);
        assert!(matches!(
            parse("fail_next=-1"),
            Err(FaultsError::Invalid {
                name: "fail_next",
                ..
            })
        ));
        assert!(matches!(
            parse("delay_ms=soon"),
            Err(FaultsError::Invalid { .. })
        ));
        assert!(matches!(
            parse("delay_ms=600001"),
            Err(FaultsError::Invalid { .. })
        ));
        assert!(matches!(
            parse("tamper_signatures=maybe"),
            Err(FaultsError::Invalid { .. })
        ));
        assert_eq!(parse("drop=1"), Err(FaultsError::Unknown("drop".into())));
    }
}
