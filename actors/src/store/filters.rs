//! List filters as indexes: `GET /v1/subscriptions?status=active` reads a sorted set of the
//! active subscriptions' ids, never the records.
//!
//! Each kind of record that a list filters declares its filter fields here ([`KINDS`]). Every
//! write of such a record ([`super::Tx::put_with`]) derives the values of those fields from the
//! JSON it writes ([`memberships`]) and sends them, in the same commit, as one `IX` operation
//! per field: the commit script reads the values the record was last indexed under (kept in
//! the record's hash as `ix:<field>`), and if they differ takes the id out of the old values'
//! sets and puts it in the new ones'. The old values come from Redis, inside the commit, so no
//! writer has to know them, an unchecked write cannot leave a stale entry, and a field that did
//! not change costs one `HGET`.
//!
//! A value's set is `<list>:<field>:<value>` (e.g. `cp:{prj}:test:subscriptions:status:active`,
//! [`filter_key`]): ids at score 0, like the list itself, so a filtered page is read by the
//! same lexicographic cursors. Filters together (and with the list's own index, which a deleted
//! object leaves) are an intersection read by [`super::scripts::PAGE_WHERE`] from the smallest
//! set, checking membership of the others.
//!
//! Records written before the sets existed are put in them once at start
//! ([`super::Store::backfill_filters`], in `filter_backfill`).

use serde_json::Value;

/// A kind of record some list filters: the prefix of its ids, the list it belongs to (the
/// key after the scope, as the list's index), and the fields its list filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub prefix: &'static str,
    pub list: &'static str,
    pub fields: &'static [&'static str],
    /// Fields filtered by a range (`created[gte]=…`): one set, scored by the value.
    pub ranges: &'static [&'static str],
}

/// Every filtered kind. A subscription's `status` is also `ended` (canceled or
/// incomplete_expired) or `current` (any other: what a list without `status` shows), and its
/// `price` is each of its items' prices; an invoice item's `pending` is whether it is on no
/// invoice yet. Other fields are the object's own (`true`/`false` for booleans).
pub const KINDS: [Kind; 8] = [
    Kind {
        prefix: "sub",
        list: "subscriptions",
        fields: &["status", "collection_method", "price"],
        ranges: &["created"],
    },
    Kind {
        prefix: "in",
        list: "invoices",
        fields: &["status", "collection_method"],
        ranges: &["created", "due_date"],
    },
    Kind {
        prefix: "cs",
        list: "checkout_sessions",
        fields: &["status", "customer", "payment_intent"],
        ranges: &[],
    },
    Kind {
        prefix: "prod",
        list: "products",
        fields: &["active"],
        ranges: &[],
    },
    Kind {
        prefix: "price",
        list: "prices",
        fields: &["active", "product", "type", "currency"],
        ranges: &[],
    },
    Kind {
        prefix: "txr",
        list: "tax_rates",
        fields: &["active", "inclusive"],
        ranges: &[],
    },
    Kind {
        prefix: "ii",
        list: "invoiceitems",
        fields: &["customer", "invoice", "pending"],
        ranges: &[],
    },
    Kind {
        prefix: "bpc",
        list: "billing_portal_configurations",
        fields: &["active", "is_default"],
        ranges: &[],
    },
];

impl Kind {
    /// Whether [`memberships_of`] reads this top-level field of the kind's JSON.
    pub fn reads(&self, name: &str) -> bool {
        name == "deleted"
            || self.fields.contains(&name)
            || self.ranges.contains(&name)
            || (self.prefix == "sub" && name == "items")
    }
}

/// The kind of the object with this id, if its list filters.
pub fn kind_of(id: &str) -> Option<&'static Kind> {
    let (prefix, _) = id.split_once('_')?;
    KINDS.iter().find(|k| k.prefix == prefix)
}

/// The set of `list`'s objects whose `field` is `value`: `<list>:<field>:<value>`, where `list`
/// is the list's own key (`cp:{prj}:<mode>:subscriptions`).
pub fn filter_key(list: &str, field: &str, value: &str) -> String {
    format!("{list}:{field}:{value}")
}

/// The set of `list`'s objects scored by `field` (a range filter's): `<list>:<field>`.
pub fn range_key(list: &str, field: &str) -> String {
    format!("{list}:{field}")
}

/// The range filter on `field` from `gte` to `lte` inclusive (either open), if one was given:
/// its set and bounds, as [`super::Store::page_where`] takes it.
pub fn range(list: &str, field: &str, gte: Option<i64>, lte: Option<i64>) -> Option<Range> {
    (gte.is_some() || lte.is_some()).then(|| Range {
        set: range_key(list, field),
        gte: gte.unwrap_or(i64::MIN),
        lte: lte.unwrap_or(i64::MAX),
    })
}

/// A range filter: the ids whose score in `set` is from `gte` to `lte` inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub set: String,
    pub gte: i64,
    pub lte: i64,
}

/// The hash field of a record holding the values it is indexed under for `field`.
pub fn stored_field(field: &str) -> String {
    format!("ix:{field}")
}

/// One field's values for a record (none: in no set of that field). A range field has at most
/// one, an integer: the record's score in the field's one set ([`range_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub field: &'static str,
    pub values: Vec<String>,
    pub range: bool,
}

impl Membership {
    /// The values as the record keeps them (and the script splits them): space-separated.
    pub fn joined(&self) -> String {
        self.values.join(" ")
    }
}

/// The sets an object belongs to, from the JSON written for it. A deleted object (`"deleted":
/// true`) or unreadable JSON belongs to none, so it leaves every set. A value that could not
/// be part of a key or of the stored list (empty, with spaces, over 200 bytes) is left out.
pub fn memberships(kind: &Kind, json: &str) -> Vec<Membership> {
    memberships_of(
        kind,
        &super::top_level::object(json, |name| kind.reads(name)),
    )
}

/// [`memberships`] of JSON already parsed (`Value::Null` for unreadable JSON).
pub fn memberships_of(kind: &Kind, v: &Value) -> Vec<Membership> {
    let gone = !v.is_object() || v["deleted"] == true;
    let ranges = kind.ranges.iter().map(|&field| Membership {
        field,
        values: match v[field].as_i64() {
            Some(t) if !gone => vec![t.to_string()],
            _ => Vec::new(),
        },
        range: true,
    });
    kind.fields
        .iter()
        .map(|&field| Membership {
            field,
            values: if gone {
                Vec::new()
            } else {
                values(kind, field, v)
                    .into_iter()
                    .filter(|x| !x.is_empty() && x.len() <= 200 && !x.contains(char::is_whitespace))
                    .collect()
            },
            range: false,
        })
        .chain(ranges)
        .collect()
}

fn values(kind: &Kind, field: &str, v: &Value) -> Vec<String> {
    match (kind.prefix, field) {
        ("sub", "status") => scalar(&v["status"])
            .map(|s| {
                let phase = match s.as_str() {
                    "canceled" | "incomplete_expired" => "ended",
                    _ => "current",
                };
                vec![s, phase.to_string()]
            })
            .unwrap_or_default(),
        ("sub", "price") => {
            let mut prices: Vec<String> = v["items"]["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| scalar(&i["price"]["id"]))
                .collect();
            prices.sort();
            prices.dedup();
            prices
        }
        ("ii", "pending") => vec![v["invoice"].is_null().to_string()],
        _ => scalar(&v[field]).into_iter().collect(),
    }
}

/// A string or a boolean as text; anything else (null, absent) is no value.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A record key's list key and id, if the record is of a filtered kind:
/// `cp:{prj}:test:obj:sub_1` → (`cp:{prj}:test:subscriptions`, `sub_1`, the kind).
pub fn of_record(key: &str) -> Option<(String, &str, &'static Kind)> {
    let (scope, id) = key.rsplit_once(":obj:")?;
    let kind = kind_of(id)?;
    Some((format!("{scope}:{}", kind.list), id, kind))
}

/// The sets a filtered page of `list` (its key) reads: `index` (the list's own, or a narrower
/// one such as a customer's), then the set of each filter that was given.
pub fn sets(index: &str, list: &str, wanted: &[(&str, Option<&str>)]) -> Vec<String> {
    std::iter::once(index.to_string())
        .chain(
            wanted
                .iter()
                .filter_map(|(field, value)| Some(filter_key(list, field, (*value)?))),
        )
        .collect()
}

/// Set once every record written before the filter sets existed is in them.
pub const BACKFILLED: &str = "cp:migrations:list_filters";

#[cfg(test)]
mod tests {
    use super::*;

    fn of(id: &str, json: &str) -> Vec<(String, String)> {
        let kind = kind_of(id).expect("a filtered kind");
        memberships(kind, json)
            .into_iter()
            .map(|m| (m.field.to_string(), m.joined()))
            .collect()
    }

    #[test]
    fn each_kind_is_indexed_under_its_fields_values() {
        for (id, json, want) in [
            (
                "sub_1",
                r#"{"status":"active","created":1700000000,"collection_method":"charge_automatically","items":{"data":[{"price":{"id":"price_b"}},{"price":{"id":"price_a"}},{"price":{"id":"price_b"}}]}}"#,
                vec![
                    ("status", "active current"),
                    ("collection_method", "charge_automatically"),
                    ("price", "price_a price_b"),
                    ("created", "1700000000"),
                ],
            ),
            (
                "sub_2",
                r#"{"status":"canceled","items":{"data":[]}}"#,
                vec![
                    ("status", "canceled ended"),
                    ("collection_method", ""),
                    ("price", ""),
                    ("created", ""),
                ],
            ),
            (
                "sub_3",
                r#"{"status":"incomplete_expired"}"#,
                vec![
                    ("status", "incomplete_expired ended"),
                    ("collection_method", ""),
                    ("price", ""),
                    ("created", ""),
                ],
            ),
            (
                "in_1",
                r#"{"status":"open","collection_method":"send_invoice","created":5,"due_date":null}"#,
                vec![
                    ("status", "open"),
                    ("collection_method", "send_invoice"),
                    ("created", "5"),
                    ("due_date", ""),
                ],
            ),
            (
                "in_2",
                r#"{"id":"in_2","object":"invoice","deleted":true,"created":5}"#,
                vec![
                    ("status", ""),
                    ("collection_method", ""),
                    ("created", ""),
                    ("due_date", ""),
                ],
            ),
            (
                "cs_1",
                r#"{"status":"open","customer":null,"payment_intent":"pi_1"}"#,
                vec![
                    ("status", "open"),
                    ("customer", ""),
                    ("payment_intent", "pi_1"),
                ],
            ),
            ("prod_1", r#"{"active":false}"#, vec![("active", "false")]),
            (
                "price_1",
                r#"{"active":true,"product":"prod_1","type":"recurring","currency":"gbp"}"#,
                vec![
                    ("active", "true"),
                    ("product", "prod_1"),
                    ("type", "recurring"),
                    ("currency", "gbp"),
                ],
            ),
            (
                "txr_1",
                r#"{"active":true,"inclusive":false}"#,
                vec![("active", "true"), ("inclusive", "false")],
            ),
            (
                "ii_1",
                r#"{"customer":"cus_1","invoice":null}"#,
                vec![("customer", "cus_1"), ("invoice", ""), ("pending", "true")],
            ),
            (
                "ii_2",
                r#"{"customer":"cus_1","invoice":"in_1"}"#,
                vec![
                    ("customer", "cus_1"),
                    ("invoice", "in_1"),
                    ("pending", "false"),
                ],
            ),
            // Values that cannot be a key's last part are left out; bad JSON is in no set.
            (
                "cs_2",
                r#"{"status":"a b","customer":"","payment_intent":7}"#,
                vec![("status", ""), ("customer", ""), ("payment_intent", "")],
            ),
            ("prod_2", "not json", vec![("active", "")]),
        ] {
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect();
            assert_eq!(of(id, json), want, "{id} {json}");
        }
    }

    #[test]
    fn a_record_key_names_its_list_and_only_filtered_kinds_have_one() {
        let (list, id, kind) = of_record("cp:{prj_1}:test:obj:sub_01H").expect("filtered");
        assert_eq!(
            (list.as_str(), id, kind.list),
            ("cp:{prj_1}:test:subscriptions", "sub_01H", "subscriptions")
        );
        assert_eq!(
            filter_key(&list, "status", "active"),
            "cp:{prj_1}:test:subscriptions:status:active"
        );
        assert_eq!(stored_field("status"), "ix:status");
        assert_eq!(
            range(&list, "created", Some(5), None),
            Some(Range {
                set: "cp:{prj_1}:test:subscriptions:created".into(),
                gte: 5,
                lte: i64::MAX
            })
        );
        assert_eq!(range(&list, "created", None, None), None);
        for key in [
            "cp:{prj_1}:test:obj:pi_01H",
            "cp:{prj_1}:test:obj:cus_01H",
            "cp:{prj_1}:test:obj:insub",
            "cp:{prj_1}:test:customers",
        ] {
            assert!(of_record(key).is_none(), "{key}");
        }
        assert_eq!(kind_of("in_1").map(|k| k.list), Some("invoices"));
        assert_eq!(
            sets(
                "cp:{p}:test:customer:cus_1:subscriptions",
                "cp:{p}:test:subscriptions",
                &[
                    ("status", Some("active")),
                    ("price", None),
                    ("collection_method", Some("send_invoice"))
                ]
            ),
            [
                "cp:{p}:test:customer:cus_1:subscriptions",
                "cp:{p}:test:subscriptions:status:active",
                "cp:{p}:test:subscriptions:collection_method:send_invoice",
            ]
        );
        assert_eq!(kind_of("il_1"), None, "invoice lines are not records");
    }
}
