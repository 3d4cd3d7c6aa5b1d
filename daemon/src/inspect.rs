//! `calmony-payd inspect <id or key>`: one object whole, as an operator asks about it.
//!
//! Given an object's id it finds the object in whichever project and mode holds it (each
//! project of `cp:projects`, test and live: ids are unique, so the first found is the one);
//! given a key (`cp:…`) it reads that key. It prints the plain fields `redis-cli HGETALL`
//! shows (see `store::plain`), then the JSON decoded from its packed form, pretty, and for a
//! payment intent the events of the log about it, its charges and its refunds. It only reads.
//!
//! A payment's events are found by reading the log from a minute before the payment was
//! made (its id's time) and keeping the entries whose `object_id` is the payment or whose
//! object names it (`payment_intent`): the log has no index by object, which would cost every
//! event a write. The search stops after [`MAX_SCANNED`] entries and says so.

use calmony_actors::Store;
use calmony_actors::store::event_log::{self, LogEntry};
use calmony_actors::store::{Scope, StoreError, packed, plain};
use calmony_protocol::Mode;
use serde::Deserialize;

/// How many entries of the log the search for a payment's events reads at most.
const MAX_SCANNED: usize = 20_000;
/// Entries read a round trip.
const PAGE: usize = 500;
/// How long before the payment's id was made the search starts: the daemon's clock and
/// Redis's, which names the log's entries, may differ a little.
const SLACK_MS: u64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0:?} is neither an object's id (pi_…, cus_…, evt_…) nor a key (cp:…)")]
    NotAnId(String),
    #[error("no object {0} in any project or mode")]
    NotFound(String),
    #[error("{key} is a {kind}, not a record: read it with redis-cli")]
    NotARecord { key: String, kind: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What was found.
#[derive(Debug, Default, Clone)]
pub struct Inspection {
    /// The key read, or for an event of the log, the log and the entry ID.
    pub place: String,
    /// Every field but the JSON, the plain ones first.
    pub fields: Vec<(String, String)>,
    /// The object's JSON, decoded.
    pub json: Option<String>,
    /// A payment intent's events, oldest first, and whether the search stopped early.
    pub events: Option<(Vec<LogEntry>, bool)>,
}

impl Inspection {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Find and read `target`, an object's id or a key.
pub async fn inspect(store: &Store, target: &str) -> Result<Inspection, InspectError> {
    let mut found = if target.starts_with("cp:") {
        read_key(store, target).await?
    } else {
        find(store, target).await?
    };
    if found.field("object") == Some("payment_intent")
        && let Some((scope, rest)) = Scope::of_key(&found.place)
        && let Some(id) = rest.strip_prefix("obj:")
    {
        found.events = Some(payment_events(store, &scope, id).await?);
    }
    Ok(found)
}

/// The object with this id, in whichever project and mode holds it.
async fn find(store: &Store, id: &str) -> Result<Inspection, InspectError> {
    if !calmony_protocol::ids::is_any(id) {
        return Err(InspectError::NotAnId(id.to_owned()));
    }
    let mut c = store.conn();
    let projects: Vec<String> = store
        .run(async move {
            redis::cmd("HVALS")
                .arg("cp:projects")
                .query_async(&mut c)
                .await
        })
        .await?;
    let scopes: Vec<Scope> = projects
        .iter()
        .flat_map(|p| [Mode::Test, Mode::Live].map(|m| Scope::new(p.clone(), m)))
        .collect();
    if id.starts_with("evt_") {
        for scope in &scopes {
            if let Some(found) = log_event(store, scope, id).await? {
                return Ok(found);
            }
        }
    }
    // Events written before the log are records, as every other object is.
    let keys: Vec<String> = scopes.iter().map(|s| s.record(id)).collect();
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.exists(key);
    }
    let mut c = store.conn();
    let exists: Vec<bool> = store
        .run(async move { pipe.query_async(&mut c).await })
        .await?;
    match keys.iter().zip(exists).find(|(_, e)| *e) {
        Some((key, _)) => read_key(store, key).await,
        None => Err(InspectError::NotFound(id.to_owned())),
    }
}

/// The event with this id, if it is an entry of the scope's log.
async fn log_event(
    store: &Store,
    scope: &Scope,
    id: &str,
) -> Result<Option<Inspection>, StoreError> {
    let Some(entry) = event_log::entry_of(scope, id) else {
        return Ok(None);
    };
    let found = store.log_entries(scope, &entry, 1).await?;
    Ok(found
        .into_iter()
        .find(|e| e.entry == entry)
        .map(|e| Inspection {
            place: format!("{} {}", scope.event_log(), e.entry),
            fields: e.fields,
            json: e.json,
            events: None,
        }))
}

/// Whatever `key` holds: a record (a hash), a packed or plain string, or, for the would-be
/// key of an event of the log (`…:obj:evt_…`), that event.
async fn read_key(store: &Store, key: &str) -> Result<Inspection, InspectError> {
    let mut c = store.conn();
    let k = key.to_owned();
    let kind: String = store
        .run(async move { redis::cmd("TYPE").arg(k).query_async(&mut c).await })
        .await?;
    match kind.as_str() {
        "hash" => {
            let mut c = store.conn();
            let k = key.to_owned();
            let raw: Vec<(String, Vec<u8>)> = store
                .run(async move { redis::cmd("HGETALL").arg(k).query_async(&mut c).await })
                .await?;
            let mut json = None;
            let mut fields = Vec::new();
            for (name, value) in raw {
                if name == "json" {
                    json = Some(calmony_actors::store::text(key, value)?);
                } else if value.first() == Some(&packed::MARK) {
                    // A stored answer's `body` is packed as records are.
                    fields.push((name, calmony_actors::store::text(key, value)?));
                } else {
                    fields.push((name, String::from_utf8_lossy(&value).into_owned()));
                }
            }
            Ok(Inspection {
                place: key.to_owned(),
                fields: plain_first(fields),
                json,
                events: None,
            })
        }
        "string" => Ok(Inspection {
            place: key.to_owned(),
            json: store.json_at(key).await?,
            ..Inspection::default()
        }),
        "none" => {
            let event = Scope::of_key(key).and_then(|(scope, rest)| {
                let id = rest.strip_prefix("obj:")?;
                id.starts_with("evt_").then(|| (scope, id.to_owned()))
            });
            if let Some((scope, id)) = event
                && let Some(found) = log_event(store, &scope, &id).await?
            {
                return Ok(found);
            }
            Err(InspectError::NotFound(key.to_owned()))
        }
        other => Err(InspectError::NotARecord {
            key: key.to_owned(),
            kind: other.to_owned(),
        }),
    }
}

/// The plain fields in their order, then the rest by name.
fn plain_first(mut fields: Vec<(String, String)>) -> Vec<(String, String)> {
    let rank = |name: &str| {
        plain::FIELDS
            .iter()
            .position(|f| *f == name)
            .unwrap_or(plain::FIELDS.len())
    };
    fields.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
    fields
}

/// The log's events about payment intent `id`, oldest first, and whether the search stopped
/// before the log's end.
async fn payment_events(
    store: &Store,
    scope: &Scope,
    id: &str,
) -> Result<(Vec<LogEntry>, bool), StoreError> {
    payment_events_within(store, scope, id, MAX_SCANNED).await
}

/// [`payment_events`], reading at most `max_scanned` entries of the log (the dashboard's
/// payment page reads fewer than an operator's `inspect`).
pub(crate) async fn payment_events_within(
    store: &Store,
    scope: &Scope,
    id: &str,
    max_scanned: usize,
) -> Result<(Vec<LogEntry>, bool), StoreError> {
    let from_ms = calmony_protocol::ids::time_ms(id)
        .unwrap_or(0)
        .saturating_sub(SLACK_MS);
    let mut from = format!("{from_ms}-0");
    let (mut events, mut scanned) = (Vec::new(), 0);
    loop {
        let page = store.log_entries(scope, &from, PAGE).await?;
        scanned += page.len();
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            from = format!("({}", last.entry);
        }
        events.extend(page.into_iter().filter(|e| is_about(e, id)));
        if !full {
            return Ok((events, false));
        }
        if scanned >= max_scanned {
            return Ok((events, true));
        }
    }
}

/// Whether an event is about payment intent `id`: its object is the payment, or names it (a
/// charge's, a refund's `payment_intent`).
fn is_about(event: &LogEntry, id: &str) -> bool {
    if event.field("object_id") == Some(id) {
        return true;
    }
    #[derive(Deserialize)]
    struct Event {
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        object: Object,
    }
    #[derive(Deserialize)]
    struct Object {
        id: Option<String>,
        payment_intent: Option<serde_json::Value>,
    }
    let Some(json) = &event.json else {
        return false;
    };
    serde_json::from_str::<Event>(json).is_ok_and(|e| {
        let o = e.data.object;
        o.id.as_deref() == Some(id)
            || match o.payment_intent {
                Some(serde_json::Value::String(pi)) => pi == id,
                Some(serde_json::Value::Object(pi)) => {
                    pi.get("id").and_then(|v| v.as_str()) == Some(id)
                }
                _ => false,
            }
    })
}

/// The inspection as printed: the place, the fields aligned, the JSON pretty, the events.
pub fn render(found: &Inspection) -> String {
    let mut out = format!("{}\n", found.place);
    let width = found.fields.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
    for (name, value) in &found.fields {
        out.push_str(&format!("  {name:<width$}  {value}\n"));
    }
    if let Some(json) = &found.json {
        let pretty = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| json.clone());
        out.push_str(&pretty);
        out.push('\n');
    }
    if let Some((events, stopped)) = &found.events {
        out.push_str(&format!("events ({}, oldest first):\n", events.len()));
        for e in events {
            let when = e
                .field("created")
                .and_then(|c| c.parse().ok())
                .map(|t| calmony_actors::clock::UtcTime::from_unix(t).timestamp())
                .unwrap_or_default();
            out.push_str(&format!(
                "  {when}  {}  {}  {}\n",
                e.id.as_deref().unwrap_or(&e.entry),
                e.field("type").unwrap_or("?"),
                e.field("object_id").unwrap_or("")
            ));
        }
        if *stopped {
            out.push_str(&format!(
                "  (the search stopped after {MAX_SCANNED} entries of the log)\n"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)], json: Option<&str>) -> LogEntry {
        LogEntry {
            entry: "1733000000000-0".into(),
            id: Some("evt_1".into()),
            fields: fields
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            json: json.map(str::to_owned),
        }
    }

    #[test]
    fn an_event_is_about_a_payment_by_its_object_or_the_payment_its_object_names() {
        let cases = [
            (entry(&[("object_id", "pi_1")], None), true),
            (entry(&[("object_id", "pi_2")], None), false),
            (
                entry(
                    &[("object_id", "ch_1")],
                    Some(r#"{"data":{"object":{"id":"ch_1","payment_intent":"pi_1"}}}"#),
                ),
                true,
            ),
            // Written before entries carried `object_id`.
            (
                entry(&[], Some(r#"{"data":{"object":{"id":"pi_1"}}}"#)),
                true,
            ),
            (
                entry(
                    &[("object_id", "re_1")],
                    Some(r#"{"data":{"object":{"id":"re_1","payment_intent":{"id":"pi_1"}}}}"#),
                ),
                true,
            ),
            (
                entry(&[], Some(r#"{"data":{"object":{"id":"cus_1"}}}"#)),
                false,
            ),
            (entry(&[], Some("not json")), false),
        ];
        for (e, want) in cases {
            assert_eq!(is_about(&e, "pi_1"), want, "{e:?}");
        }
    }

    #[test]
    fn plain_fields_come_first_in_their_order_then_the_rest_by_name() {
        let fields = ["xref", "v", "status", "object", "internal", "created"]
            .map(|f| (f.to_string(), String::new()))
            .to_vec();
        let names: Vec<String> = plain_first(fields).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            names,
            ["object", "status", "created", "internal", "v", "xref"]
        );
    }

    #[test]
    fn the_report_shows_fields_json_and_events() {
        let found = Inspection {
            place: "cp:{prj_1}:test:obj:pi_1".into(),
            fields: vec![
                ("object".into(), "payment_intent".into()),
                ("status".into(), "succeeded".into()),
            ],
            json: Some(r#"{"id":"pi_1","status":"succeeded"}"#.into()),
            events: Some((
                vec![entry(
                    &[
                        ("type", "payment_intent.succeeded"),
                        ("created", "0"),
                        ("object_id", "pi_1"),
                    ],
                    None,
                )],
                false,
            )),
        };
        assert_eq!(
            render(&found),
            "cp:{prj_1}:test:obj:pi_1\n  object  payment_intent\n  status  succeeded\n{\n  \
             \"id\": \"pi_1\",\n  \"status\": \"succeeded\"\n}\nevents (1, oldest first):\n  \
             1970-01-01 00:00:00  evt_1  payment_intent.succeeded  pi_1\n"
        );
    }
}
