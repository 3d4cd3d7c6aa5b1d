//! Bad input: every kind gets the documented JSON error, naming the parameter, and never a
//! partial write.

use serde_json::json;

use crate::harness::World;

#[tokio::test]
async fn parameter_errors_name_the_parameter() {
    let w = World::new();
    let cases: Vec<(&str, &str, u16, &str, &str)> = vec![
        // (what, form body, status, code, param)
        (
            "unknown",
            "emial=a%40b.co",
            400,
            "parameter_unknown",
            "emial",
        ),
        (
            "unknown nested",
            "address[town]=x",
            400,
            "parameter_unknown",
            "address[town]",
        ),
        (
            "bad email",
            "email=not-an-email",
            400,
            "email_invalid",
            "email",
        ),
        ("valid", "name=xxxxxxxxxx", 200, "", ""),
        (
            "wrong type",
            "address=abc",
            400,
            "parameter_invalid_object",
            "address",
        ),
        (
            "bad enum",
            "tax_exempt=sometimes",
            400,
            "parameter_invalid_value",
            "tax_exempt",
        ),
        (
            "bad metadata key",
            "metadata[a%5Bb]=1",
            400,
            "parameter_invalid",
            "",
        ),
        (
            "value and object",
            "name=a&name[b]=c",
            400,
            "parameter_invalid",
            "name[b]",
        ),
    ];
    for (what, body, status, code, param) in cases {
        let r = w.api.post_form("/v1/customers", body).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        if status != 200 {
            assert_eq!(r.err("type"), "invalid_request_error", "{what}");
            assert_eq!(r.err("code"), code, "{what}: {}", r.text);
            if !param.is_empty() {
                assert_eq!(r.err("param"), param, "{what}");
            }
            assert!(!r.err("message").is_empty(), "{what}");
        }
    }
    let long = format!("name={}", "x".repeat(300));
    let r = w.api.post_form("/v1/customers", &long).await;
    assert_eq!((r.status, r.err("param")), (400, "name"), "{}", r.text);

    // JSON of the wrong type names the parameter too.
    let r = w
        .api
        .post_json("/v1/customers", &json!({"name": {"first": "A"}}))
        .await;
    assert_eq!(
        (r.status, r.err("code"), r.err("param")),
        (400, "parameter_invalid_string", "name")
    );
    // List parameters.
    for (q, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("starting_after=pi_1", "starting_after"),
    ] {
        let r = w.api.get(&format!("/v1/customers?{q}")).await;
        assert_eq!((r.status, r.err("param")), (400, param), "{q}: {}", r.text);
    }
    // Nothing was written by any of the failures above except the one valid create.
    let list = w.api.get("/v1/customers?limit=100").await;
    assert_eq!(
        list.json["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.text
    );
}

#[tokio::test]
async fn malformed_oversized_and_hostile_bodies() {
    let w = World::new();
    let url = format!("{}/v1/customers", w.daemon.base());

    let r = w
        .api
        .send(
            w.api
                .req(reqwest::Method::POST, "/v1/customers")
                .header("content-type", "application/json")
                .body("{\"email\": \"a@b.co\",\n \"name\": }"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.err("message").contains("line 2 column"), "{}", r.text);

    let r = w.api.post_json("/v1/customers", &json!([1, 2])).await;
    assert_eq!(r.status, 400);

    // Over 1 MiB: 413 with a JSON body, whether declared up front or streamed.
    let big = format!("description={}", "x".repeat(1024 * 1024 + 10));
    let r = w.api.post_form("/v1/customers", &big).await;
    assert_eq!(r.status, 413, "{}", &r.text[..r.text.len().min(200)]);
    assert_eq!(r.err("type"), "invalid_request_error");

    // Deep nesting, invalid UTF-8, huge indices, NUL bytes: clear errors, never a 500.
    let hostile = [
        format!("metadata{}=1", "[a]".repeat(50)),
        "name=%FF%FE%00".to_string(),
        "expand[99999]=x".to_string(),
        "%5B%5D=1".to_string(),
        "a[=1".to_string(),
    ];
    for body in hostile {
        let r = w.api.post_form("/v1/customers", &body).await;
        assert!(r.status < 500, "{body}: {} {}", r.status, r.text);
        assert!(
            r.json.get("error").is_some() || r.status == 200,
            "{body}: {}",
            r.text
        );
    }
    let deep_json = format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100));
    let r = w
        .api
        .send(
            w.api
                .req(reqwest::Method::POST, "/v1/customers")
                .header("content-type", "application/json")
                .body(deep_json),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // Unknown routes and methods are JSON too.
    let r = w.api.get("/v1/nothing_here").await;
    assert_eq!((r.status, r.err("type")), (404, "invalid_request_error"));
    let r = w
        .api
        .send(w.api.req(reqwest::Method::PUT, "/v1/customers"))
        .await;
    assert_eq!(r.status, 405);
    assert!(r.json.get("error").is_some());
    let _ = url;
}

#[tokio::test]
async fn form_and_json_bodies_give_identical_results() {
    let w = World::new();
    let form = w
        .api
        .post_form(
            "/v1/customers",
            "email=alice%40example.com&name=Alice+Smith&phone=%2B441234&metadata[ledger_id]=L-1\
             &address[line1]=1+High+St&address[postal_code]=SW1A+1AA&preferred_locales[0]=en-GB",
        )
        .await;
    let json = w
        .api
        .post_json(
            "/v1/customers",
            &json!({
                "email": "alice@example.com", "name": "Alice Smith", "phone": "+441234",
                "metadata": {"ledger_id": "L-1"},
                "address": {"line1": "1 High St", "postalCode": "SW1A 1AA"},
                "preferredLocales": ["en-GB"]
            }),
        )
        .await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert_eq!(json.status, 200, "{}", json.text);
    let strip = |mut v: serde_json::Value| {
        for k in ["id", "created", "invoice_prefix"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        v
    };
    assert_eq!(strip(form.json.clone()), strip(json.json.clone()));
    assert_eq!(form.json["address"]["postal_code"], "SW1A 1AA");

    // Errors are identical too.
    let f = w.api.post_form("/v1/customers", "email=nope").await;
    let j = w
        .api
        .post_json("/v1/customers", &json!({"email": "nope"}))
        .await;
    assert_eq!(f.json, j.json);
}
