//! Plain fields: what an operator asks of a record, kept readable beside its packed JSON.
//!
//! A record's `json` is packed (see [`super::packed`]), so `HGETALL` on it shows binary. The
//! few fields an operator asks about (what it is, its status, how much, whose, of which
//! payment, when) are therefore also written as plain hash fields, by [`super::Tx::put`] in
//! the same commit as the JSON, taken from that JSON: one place, so no handler can forget
//! them and they never disagree with the body. They are never packed, never read back by the
//! daemon (the JSON stays the truth), and cost the commit no round trip: they ride as more
//! arguments of the record's `P` operation.
//!
//! A field is written when the JSON has it at its top level: a `null` is written empty (so a
//! customer taken off a record does not linger), an absent one not at all. Events, which are
//! entries of the event log rather than hashes, carry their `type`, `created` and the id of
//! the object they are about ([`object_id`]) as plain entry fields the same way.

use std::borrow::Cow;
use std::sync::LazyLock;

use redis::Script;
use serde::{Deserialize, Deserializer};

use super::client::Store;
use super::error::StoreError;

/// The plain fields, in the order they are written.
pub const FIELDS: [&str; 10] = [
    "object",
    "status",
    "amount",
    "amount_due",
    "currency",
    "customer",
    "payment_intent",
    "created",
    "current_period_end",
    "livemode",
];

/// The top-level fields of a record's JSON that are kept plain; everything else is skipped
/// unread. `Some(None)`: present and `null`.
#[derive(Debug, Default, Deserialize)]
struct Shown {
    #[serde(default, deserialize_with = "present")]
    object: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    status: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    amount: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    amount_due: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    customer: Option<Option<Ref>>,
    /// A charge's, refund's, invoice's or checkout session's payment: what a payment's
    /// story is found by.
    #[serde(default, deserialize_with = "present")]
    payment_intent: Option<Option<Ref>>,
    #[serde(default, deserialize_with = "present")]
    created: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    current_period_end: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    livemode: Option<Option<bool>>,
}

/// A reference to another object: its id, or the object itself (expanded), of which the id.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Ref {
    Id(String),
    Object { id: String },
}

impl Ref {
    fn id(self) -> String {
        match self {
            Ref::Id(id) | Ref::Object { id } => id,
        }
    }
}

/// A field that is there, `null` or not (with `default`, an absent one stays `None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The plain fields of a record whose JSON is `json`, as `(field, value)`: empty for text
/// that is not a JSON object (a few records are a bare id).
pub fn fields(json: &str) -> Vec<(&'static str, String)> {
    serde_json::from_str::<Shown>(json).map_or_else(|_| Vec::new(), shown_fields)
}

/// [`fields`] of JSON already parsed (a record whose list filters read it too).
pub fn fields_of(json: &serde_json::Value) -> Vec<(&'static str, String)> {
    Shown::deserialize(json).map_or_else(|_| Vec::new(), shown_fields)
}

fn shown_fields(shown: Shown) -> Vec<(&'static str, String)> {
    let text = |v: Option<Option<String>>| v;
    let number = |v: Option<Option<i64>>| v.map(|v| v.map(|n| n.to_string()));
    let values = [
        text(shown.object),
        text(shown.status),
        number(shown.amount),
        number(shown.amount_due),
        text(shown.currency),
        shown.customer.map(|c| c.map(Ref::id)),
        shown.payment_intent.map(|p| p.map(Ref::id)),
        number(shown.created),
        number(shown.current_period_end),
        shown.livemode.map(|v| v.map(|b| b.to_string())),
    ];
    FIELDS
        .into_iter()
        .zip(values)
        .filter_map(|(field, value)| Some((field, value?.unwrap_or_default())))
        .collect()
}

/// The id of the object `json` is (an event's `data.object`), if it has one. Objects are
/// written with their id first, so that is read without parsing the rest.
pub fn object_id(json: &str) -> Option<Cow<'_, str>> {
    const OPEN: &str = "{\"id\":\"";
    if let Some(rest) = json.strip_prefix(OPEN)
        && let Some((id, _)) = rest.split_once('"')
        && !id.contains('\\')
    {
        return Some(Cow::Borrowed(id));
    }
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<Id<'_>>(json).ok()?.id
}

/// Set once every record written before plain fields existed has been given them.
pub const BACKFILLED: &str = "cp:migrations:plain_fields";
/// Record keys read a round trip.
const BATCH: usize = 500;

/// A record's `v`, `json` and `object`, as read.
type Head = (Option<String>, Option<Vec<u8>>, Option<String>);

/// Write a record's plain fields if it is still at version `ARGV[1]` (a commit since then
/// wrote them itself). `ARGV[2..]`: field/value pairs.
static WRITE_IF_UNCHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"#,
    )
});

/// Give the records written before plain fields existed their fields, once per store (then
/// [`BACKFILLED`] is set): every record key (`cp:{…}:<mode>:obj:…`) is read a batch at a
/// time, and one with JSON but no `object` gets the fields of its JSON, written only if its
/// version is still the one read. Answers how many records it gave fields to. A record a
/// commit writes meanwhile gets them from that commit; the daemon never reads them, so a
/// store part-way through shows fewer of them, nothing worse.
pub async fn backfill(store: &Store) -> Result<usize, StoreError> {
    let mut c = store.conn();
    let done: bool = store
        .run(redis::cmd("EXISTS").arg(BACKFILLED).query_async(&mut c))
        .await?;
    if done {
        return Ok(0);
    }
    let (mut cursor, mut given) = (0u64, 0);
    loop {
        let mut c = store.conn();
        let (next, keys): (u64, Vec<String>) = store
            .run(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("cp:{*}:*:obj:*")
                    .arg("COUNT")
                    .arg(BATCH)
                    .arg("TYPE")
                    .arg("hash")
                    .query_async(&mut c),
            )
            .await?;
        // A SCAN step may match nothing; an empty pipeline is an error in redis-rs.
        if keys.is_empty() {
            if next == 0 {
                break;
            }
            cursor = next;
            continue;
        }
        let mut reads = redis::pipe();
        for key in &keys {
            reads
                .cmd("HMGET")
                .arg(key)
                .arg("v")
                .arg("json")
                .arg("object");
        }
        let found: Vec<Head> = store.run(reads.query_async(&mut c)).await?;
        let mut writes = redis::pipe();
        // `invoke_script` sends EVALSHA: the script is loaded first, in the same round trip.
        writes.load_script(&WRITE_IF_UNCHANGED).ignore();
        let mut count = 0;
        for (key, (version, json, object)) in keys.iter().zip(found) {
            let (Some(version), Some(json), None) = (version, json, object) else {
                continue;
            };
            // An unreadable record is left as it is; the API reports it where it is read.
            let Ok(json) = super::record::text(key, json) else {
                continue;
            };
            let plain = fields(&json);
            if plain.is_empty() {
                continue;
            }
            let mut call = WRITE_IF_UNCHANGED.key(key);
            call.arg(&version);
            for (field, value) in &plain {
                call.arg(*field).arg(value);
            }
            writes.invoke_script(&call);
            count += 1;
        }
        if count > 0 {
            let wrote: Vec<i64> = store.run(writes.query_async(&mut c)).await?;
            given += wrote.iter().filter(|w| **w == 1).count();
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let _: () = store
        .run(
            redis::cmd("SET")
                .arg(BACKFILLED)
                .arg("1")
                .query_async(&mut c),
        )
        .await?;
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|(f, v)| (*f, v.to_string())).collect()
    }

    #[test]
    fn a_record_shows_the_fields_it_has_at_its_top_level() {
        let cases: [(&str, &[(&str, &str)]); 7] = [
            (
                r#"{"id":"pi_1","object":"payment_intent","amount":2500,"created":1733000000,
                   "currency":"gbp","customer":"cus_1","last_payment_error":{"status":"x"},
                   "livemode":false,"status":"succeeded"}"#,
                &[
                    ("object", "payment_intent"),
                    ("status", "succeeded"),
                    ("amount", "2500"),
                    ("currency", "gbp"),
                    ("customer", "cus_1"),
                    ("created", "1733000000"),
                    ("livemode", "false"),
                ],
            ),
            // A null is written empty, so a value taken off does not linger.
            (
                r#"{"object":"payment_intent","customer":null,"livemode":true}"#,
                &[
                    ("object", "payment_intent"),
                    ("customer", ""),
                    ("livemode", "true"),
                ],
            ),
            // An expanded reference shows its id.
            (
                r#"{"object":"charge","customer":{"id":"cus_2","object":"customer"},
                   "payment_intent":"pi_1"}"#,
                &[
                    ("object", "charge"),
                    ("customer", "cus_2"),
                    ("payment_intent", "pi_1"),
                ],
            ),
            (
                r#"{"object":"subscription","status":"active","current_period_end":1735600000}"#,
                &[
                    ("object", "subscription"),
                    ("status", "active"),
                    ("current_period_end", "1735600000"),
                ],
            ),
            (
                r##"{"object":"invoice","status":"open","amount_due":1200,"number":"#N#"}"##,
                &[
                    ("object", "invoice"),
                    ("status", "open"),
                    ("amount_due", "1200"),
                ],
            ),
            // Not an object: nothing.
            ("in_01ABC", &[]),
            // A field of an unexpected type: nothing rather than a guess.
            (r#"{"object":"x","amount":"12"}"#, &[]),
        ];
        for (json, want) in cases {
            assert_eq!(fields(json), owned(want), "{json}");
        }
    }

    #[test]
    fn an_object_id_is_read_from_the_front_or_found() {
        for (json, want) in [
            (r#"{"id":"pi_1","object":"payment_intent"}"#, Some("pi_1")),
            (r#"{"object":"customer","id":"cus_1"}"#, Some("cus_1")),
            (r#"{"id":"a\"b","x":1}"#, Some("a\"b")),
            (r#"{"object":"balance"}"#, None),
            ("null", None),
        ] {
            assert_eq!(object_id(json).as_deref(), want, "{json}");
        }
    }
}
