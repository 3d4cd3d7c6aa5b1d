use std::collections::BTreeSet;
use std::path::Path;

use super::document::{document, openapi_path, operation_id};
use super::operations::{Kind, OPERATIONS, Param};
use crate::edge::routes::API;

/// Every route of the table has a description, and every description is of a routed
/// endpoint, once.
#[test]
fn every_route_is_described_and_every_description_is_routed() {
    let missing: Vec<String> = API
        .iter()
        .filter(|(_, _, e)| !OPERATIONS.iter().any(|(d, _)| d == e))
        .map(|(m, t, e)| format!("{m} {t} ({e:?})"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in openapi::operations::OPERATIONS: {missing:?}"
    );
    let stale: Vec<String> = OPERATIONS
        .iter()
        .filter(|(d, _)| !API.iter().any(|(_, _, e)| e == d))
        .map(|(d, _)| format!("{d:?}"))
        .collect();
    assert!(
        stale.is_empty(),
        "descriptions of endpoints no route has: {stale:?}"
    );
    let mut seen = BTreeSet::new();
    for (d, _) in OPERATIONS {
        assert!(seen.insert(format!("{d:?}")), "{d:?} is described twice");
    }
}

#[test]
fn the_document_has_every_route_with_its_method() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    for (m, t, _) in API {
        let op = &doc["paths"][openapi_path(t)][m.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{m} {t} missing from the document");
        assert_eq!(op["operationId"], operation_id(m, t));
        if *m == hyper::Method::POST {
            let header = &op["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p.get("$ref").is_some()))
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                header["$ref"], "#/components/parameters/IdempotencyKey",
                "{m} {t}"
            );
        }
    }
    let ids: BTreeSet<String> = API.iter().map(|(m, t, _)| operation_id(m, t)).collect();
    assert_eq!(ids.len(), API.len(), "operation ids are unique");
}

#[test]
fn paths_and_ids_are_spelled_as_openapi_wants() {
    let table = [
        ("/v1/customers/:id", "/v1/customers/{id}"),
        ("/v1/customers", "/v1/customers"),
        (
            "/v1/payment_intents/:id/confirm",
            "/v1/payment_intents/{id}/confirm",
        ),
    ];
    for (template, want) in table {
        assert_eq!(openapi_path(template), want);
    }
    assert_eq!(
        operation_id(&hyper::Method::POST, "/v1/payment_intents/:id/confirm"),
        "postV1PaymentIntentsIdConfirm"
    );
}

#[test]
fn aliases_are_in_the_description() {
    let doc = document();
    let body = &doc["paths"]["/v1/payment_intents"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["schema"]["properties"];
    for name in [
        "customer",
        "customerId",
        "paymentMethodId",
        "payment_method",
    ] {
        assert!(body[name].is_object(), "{name} not described");
    }
    // A required parameter with aliases is required by any of its spellings.
    let attach = &doc["paths"]["/v1/payment_methods/{id}/attach"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        attach["allOf"][0]["anyOf"],
        serde_json::json!([{"required": ["customer"]}, {"required": ["customerId"]}])
    );
    let q = doc["paths"]["/v1/customers"]["get"]["parameters"].to_string();
    assert!(q.contains("\"starting_after\""), "{q}");
}

fn names_of(params: &[Param], out: &mut BTreeSet<String>) {
    for p in params {
        for n in p.names {
            out.insert((*n).to_string());
        }
        match p.kind {
            Kind::Obj(keys) | Kind::List(keys) => names_of(keys, out),
            _ => {}
        }
    }
}

/// The quoted names in `&["…", …]` lists of protocol/src and actors/src (tests left out):
/// with `narrow`, only the first list of a call to a `Params` method (the spellings a handler
/// takes); else every list (spellings handed to helpers, allowed values, and more).
fn names_in_source(narrow: bool) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = BTreeSet::new();
    for dir in ["protocol/src", "actors/src"] {
        walk(&root.join(dir), narrow, &mut out);
    }
    out
}

const PARAMS_CALLS: &[&str] = &[
    ".string(&[",
    ".string_max(&[",
    ".required_string(&[",
    ".integer(&[",
    ".boolean(&[",
    ".one_of(&[",
    ".object(&[",
    ".array(&[",
    ".string_array(&[",
    ".take(&[",
    ".ignore(&[",
];

fn walk(dir: &Path, narrow: bool, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, narrow, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            // `p.string_max(\n    &["a"], 5)` as `p.string_max(&["a"], 5)`.
            let mut code = code.to_string();
            while code.contains("(\n") || code.contains("( ") {
                code = code.replace("(\n", "(").replace("( ", "(");
            }
            let pieces: Vec<&str> = if narrow {
                PARAMS_CALLS
                    .iter()
                    .flat_map(|call| code.split(call).skip(1))
                    .collect()
            } else {
                code.split("&[").skip(1).collect()
            };
            for piece in pieces {
                let list = piece.split(']').next().unwrap_or("");
                for name in list.split(',') {
                    // Quoted names only: a variable (`&[name]`) is not a spelling.
                    let Some(name) = name
                        .trim()
                        .strip_prefix('"')
                        .and_then(|n| n.strip_suffix('"'))
                    else {
                        continue;
                    };
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        out.insert(name.to_string());
                    }
                }
            }
        }
    }
}

/// The description and the handlers spell parameters alike: a name the code takes and the
/// description lacks (or the reverse) fails here. Names the code takes only for other callers
/// (the sandbox, internal writes) are listed as not part of the API.
#[test]
fn parameter_names_match_the_code() {
    // `expand[]` is added to every operation by the generator.
    let mut described = BTreeSet::from(["expand".to_string()]);
    for (_, op) in OPERATIONS {
        names_of(op.params, &mut described);
    }
    let code = names_in_source(true);
    assert!(
        code.len() > 100,
        "the source scan found {} names",
        code.len()
    );
    let anywhere = names_in_source(false);
    // Taken by code that is not a `/v1` parameter list.
    let not_api = [
        "internal",
        "xref",
        "secrets",
        "failing_since",
        "batch",
        "batch_kind",
        "scheme",
    ];
    let undocumented: Vec<&String> = code
        .iter()
        .filter(|n| !described.contains(*n) && !not_api.contains(&n.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "names the handlers take that the description lacks: {undocumented:?}"
    );
    let invented: Vec<&String> = described
        .iter()
        // `created[…]` and `due_date[…]` are read by `CreatedRange::take_named`; the portal's
        // `features[invoice_history]` from a table of (name, field).
        .filter(|n| {
            !anywhere.contains(*n)
                && !["created", "due_date", "invoice_history"].contains(&n.as_str())
        })
        .collect();
    assert!(
        invented.is_empty(),
        "names the description has that no handler takes: {invented:?}"
    );
}

#[test]
fn creates_link_to_the_operations_on_what_they_made() {
    let doc = document();
    let links = &doc["paths"]["/v1/customers"]["post"]["responses"]["200"]["links"];
    assert_eq!(
        links["getV1CustomersId"]["parameters"]["id"],
        "$response.body#/id"
    );
    assert!(links["deleteV1CustomersId"].is_object());
    assert!(links["getV1CustomersIdPaymentMethods"].is_object());
    assert!(links.get("getV1Customers").is_none(), "{links}");
    // A list links nowhere.
    assert!(doc["paths"]["/v1/customers"]["get"]["responses"]["200"]["links"].is_null());
}

#[test]
fn a_deleted_customer_is_retrieved_as_its_tombstone() {
    // As in Stripe: GET on a deleted customer answers 200 with `{id, object, deleted}`.
    let doc = document();
    let schema = &doc["paths"]["/v1/customers/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    let either = schema["anyOf"].as_array().expect("anyOf");
    assert_eq!(either[0]["$ref"], "#/components/schemas/customer");
    assert_eq!(
        either[1]["properties"]["deleted"]["const"], true,
        "{schema}"
    );
    // Other retrievals of deletable objects answer 404 once deleted, so stay one object.
    let product = &doc["paths"]["/v1/products/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(product.get("anyOf").is_none(), "{product}");
}

#[test]
fn captured_requests_are_the_bodies_examples_with_their_types() {
    let doc = document();
    let example = &doc["paths"]["/v1/payment_intents"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    assert_eq!(example["amount"], 2500, "{example}");
    assert_eq!(example["confirm"], true, "{example}");
    assert_eq!(example["currency"], "gbp");
    let schema = serde_json::json!({"type": "object", "properties": {
        "n": {"type": "integer"}, "b": {"type": "boolean"}, "s": {"type": "string"},
        "o": {"type": "object", "properties": {"m": {"type": "integer"}}}
    }});
    let table = [
        (serde_json::json!({"n": "12"}), serde_json::json!({"n": 12})),
        (serde_json::json!({"n": "x"}), serde_json::json!({"n": "x"})),
        (
            serde_json::json!({"b": "false"}),
            serde_json::json!({"b": false}),
        ),
        (
            serde_json::json!({"s": "12"}),
            serde_json::json!({"s": "12"}),
        ),
        (
            serde_json::json!({"o": {"m": "3"}}),
            serde_json::json!({"o": {"m": 3}}),
        ),
    ];
    for (given, want) in table {
        assert_eq!(
            super::document::coerce(given.clone(), &schema),
            want,
            "{given}"
        );
    }
}

#[test]
fn object_schemas_come_from_the_protocol_types() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    // The object's name refers to its Rust type's schema, made by schemars.
    assert_eq!(
        schemas["payment_intent"]["$ref"],
        "#/components/schemas/PaymentIntent"
    );
    let intent = &schemas["PaymentIntent"]["properties"];
    assert_eq!(intent["amount"]["type"], "integer");
    assert_eq!(intent["status"]["type"], "string");
    assert_eq!(
        intent["description"]["type"],
        serde_json::json!(["string", "null"])
    );
    // Expandable: the id or the object.
    assert_eq!(
        intent["customer"]["anyOf"][1]["$ref"],
        "#/components/schemas/customer"
    );
    // Every field of every real answer the tests captured is a field of its type's schema:
    // the types are what is sent.
    let examples = super::captured::examples();
    let mut missing = Vec::new();
    for (name, ex) in examples.as_object().into_iter().flatten() {
        let resp = &ex["response"];
        let sample = if resp["object"] == "list" {
            &resp["data"][0]
        } else {
            resp
        };
        // A deletion's answer (`{id, object, deleted}`) is its own shape.
        let Some(object) = sample["object"]
            .as_str()
            .filter(|_| sample.get("deleted").is_none())
        else {
            continue;
        };
        let Some(reference) = schemas[object.replace('.', "_")]["$ref"].as_str() else {
            continue;
        };
        let def = &schemas[reference.trim_start_matches("#/components/schemas/")];
        for field in sample.as_object().into_iter().flatten().map(|(k, _)| k) {
            if def["properties"].get(field).is_none() {
                missing.push(format!("{name}: `{object}` sends `{field}`"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "fields the types' schemas lack:\n{}",
        missing.join("\n")
    );
    let table = [
        (serde_json::json!(null), serde_json::json!({})),
        (
            serde_json::json!(true),
            serde_json::json!({"type": ["boolean", "null"]}),
        ),
        (
            serde_json::json!(1.5),
            serde_json::json!({"type": ["number", "null"]}),
        ),
        (
            serde_json::json!([1]),
            serde_json::json!({"type": ["array", "null"]}),
        ),
    ];
    for (value, want) in table {
        assert_eq!(super::document::observed_type(&value), want, "{value}");
    }
}

/// The description parses as OpenAPI 3.1 with a reader of its own (oas3), with one
/// operation per route, and every `$ref` in it points at something.
#[test]
fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let text = super::text();
    let spec = match oas3::from_json(text) {
        Ok(spec) => spec,
        Err(e) => panic!("not an OpenAPI 3.1 document: {e}"),
    };
    assert!(spec.validate_version().is_ok(), "version {}", spec.openapi);
    assert_eq!(spec.operations().count(), API.len());
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 100, "{} refs", refs.len());
    for r in refs {
        let pointer = r.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "{r} points at nothing");
    }
}

fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|c| collect_refs(c, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}
