//! Stripe's `expand[]`: a field holding another object's id is answered with that object.
//!
//! One table ([`EXPANDABLE`]) says which fields of which object may be expanded and what
//! they name, so every retrieve, list and change answers the same way and a path is checked
//! the same way everywhere. A path is a chain of such fields (`latest_charge.payment_intent`:
//! the charge, then its payment intent), at most [`MAX_DEPTH`] long as Stripe allows; a field
//! may sit in a sub-hash (`invoice_settings.default_payment_method`); on a list every path
//! starts with `data.`. Anything else is refused before the request does anything, with
//! Stripe's "This property cannot be expanded" naming `expand`.
//!
//! This module decides; the walk that loads the objects is `calmony_actors::expand`.

use crate::error::ApiError;

/// Stripe's limit on a chain of expansions.
pub const MAX_DEPTH: usize = 4;

/// At most this many paths in one request (Stripe's clients send a handful).
pub const MAX_PATHS: usize = 20;

/// `(object, field, the object its id names)`: every field a client may expand.
pub const EXPANDABLE: &[(&str, &str, &str)] = &[
    ("payment_intent", "customer", "customer"),
    ("payment_intent", "payment_method", "payment_method"),
    ("payment_intent", "latest_charge", "charge"),
    ("charge", "customer", "customer"),
    ("charge", "payment_intent", "payment_intent"),
    ("refund", "payment_intent", "payment_intent"),
    ("refund", "charge", "charge"),
    ("payment_method", "customer", "customer"),
    (
        "customer",
        "invoice_settings.default_payment_method",
        "payment_method",
    ),
    ("customer", "test_clock", "test_helpers.test_clock"),
    ("invoice", "customer", "customer"),
    ("invoice", "subscription", "subscription"),
    ("invoice", "payment_intent", "payment_intent"),
    ("invoice", "default_payment_method", "payment_method"),
    ("invoiceitem", "customer", "customer"),
    ("invoiceitem", "invoice", "invoice"),
    ("subscription", "customer", "customer"),
    ("subscription", "default_payment_method", "payment_method"),
    ("subscription", "latest_invoice", "invoice"),
    ("billing_portal.session", "customer", "customer"),
    ("checkout.session", "customer", "customer"),
    ("checkout.session", "payment_intent", "payment_intent"),
    ("checkout.session", "payment_method", "payment_method"),
    ("checkout.session", "subscription", "subscription"),
    ("checkout.session", "invoice", "invoice"),
    ("price", "product", "product"),
    ("product", "default_price", "price"),
];

/// What an endpoint answers, for checking its `expand[]` before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// One object of this type.
    One(&'static str),
    /// A list of objects of this type.
    List(&'static str),
}

/// One step of a path: where the id is in the object (one or more keys, for a field in a
/// sub-hash), and the type of the object it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub keys: Vec<&'static str>,
    pub names: &'static str,
}

/// A checked path: on a list, `each` says the steps apply to each of `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub each: bool,
    pub steps: Vec<Step>,
}

fn refuse(path: &str) -> ApiError {
    ApiError::invalid_param(
        "parameter_invalid",
        "expand",
        format!("This property cannot be expanded ({path})."),
    )
}

/// Check each of `paths` against what the endpoint answers. Two paths through the same field
/// (`customer`, `customer.test_clock`) are both kept; the walk loads the field once.
pub fn plan(answer: Answer, paths: &[String]) -> Result<Vec<Path>, ApiError> {
    if paths.len() > MAX_PATHS {
        return Err(ApiError::invalid_param(
            "parameter_invalid_array",
            "expand",
            format!("At most {MAX_PATHS} paths can be expanded at once."),
        ));
    }
    paths.iter().map(|p| plan_one(answer, p)).collect()
}

fn plan_one(answer: Answer, path: &str) -> Result<Path, ApiError> {
    let mut segs: Vec<&str> = path.split('.').collect();
    let (each, mut object) = match answer {
        Answer::One(o) => (false, o),
        Answer::List(o) => {
            if segs.first() != Some(&"data") {
                return Err(refuse(path));
            }
            segs.remove(0);
            (true, o)
        }
    };
    let mut steps = Vec::new();
    let mut rest = &segs[..];
    while !rest.is_empty() {
        // The longest field of this object that the next segments spell.
        let found = EXPANDABLE
            .iter()
            .filter(|(o, _, _)| *o == object)
            .filter_map(|(_, field, names)| {
                let n = field.split('.').count();
                (rest.len() >= n && rest[..n].join(".") == *field).then_some((n, field, names))
            })
            .max_by_key(|(n, _, _)| *n);
        let Some((n, field, names)) = found else {
            return Err(refuse(path));
        };
        steps.push(Step {
            keys: field.split('.').collect(),
            names,
        });
        object = names;
        rest = &rest[n..];
    }
    if steps.is_empty() || steps.len() > MAX_DEPTH {
        return Err(refuse(path));
    }
    Ok(Path { each, steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(answer: Answer, path: &str) -> Vec<Vec<&'static str>> {
        let p = plan(answer, &[path.to_string()]).expect("expandable");
        p[0].steps.iter().map(|s| s.keys.clone()).collect()
    }

    #[test]
    fn paths_follow_the_table() {
        let pi = Answer::One("payment_intent");
        assert_eq!(ok(pi, "customer"), vec![vec!["customer"]]);
        assert_eq!(ok(pi, "latest_charge"), vec![vec!["latest_charge"]]);
        assert_eq!(
            ok(pi, "latest_charge.payment_intent.customer"),
            vec![
                vec!["latest_charge"],
                vec!["payment_intent"],
                vec!["customer"]
            ]
        );
        assert_eq!(
            ok(
                Answer::One("customer"),
                "invoice_settings.default_payment_method"
            ),
            vec![vec!["invoice_settings", "default_payment_method"]]
        );
        let list = Answer::List("charge");
        assert_eq!(ok(list, "data.customer"), vec![vec!["customer"]]);
        assert!(plan(list, &["data.customer".into()]).expect("list")[0].each);
        assert_eq!(
            ok(Answer::One("refund"), "payment_intent.latest_charge"),
            vec![vec!["payment_intent"], vec!["latest_charge"]]
        );
    }

    #[test]
    fn anything_else_is_refused_naming_expand() {
        for (answer, path) in [
            (Answer::One("payment_intent"), "nonsense"),
            (Answer::One("payment_intent"), "amount"),
            (Answer::One("payment_intent"), "customer.nonsense"),
            (Answer::One("payment_intent"), ""),
            (Answer::One("payment_intent"), "latest_charge..customer"),
            (Answer::One("customer"), "invoice_settings"),
            (Answer::List("charge"), "customer"),
            (Answer::List("charge"), "data"),
            (Answer::One("event"), "data.object"),
            (
                Answer::One("payment_intent"),
                "latest_charge.payment_intent.latest_charge.payment_intent.customer",
            ),
        ] {
            let e = plan(answer, &[path.to_string()]).expect_err(path);
            assert_eq!(
                (e.status, e.param.as_deref()),
                (400, Some("expand")),
                "{path}"
            );
            assert!(e.message.contains("cannot be expanded"), "{}", e.message);
        }
        let many: Vec<String> = (0..21).map(|_| "customer".to_string()).collect();
        assert!(plan(Answer::One("charge"), &many).is_err());
    }
}
