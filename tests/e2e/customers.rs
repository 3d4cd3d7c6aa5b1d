//! The customer lifecycle, and the events each change appends in the same atomic write.

use calmony_actors::store::packed;
use serde_json::json;

use crate::harness::World;

#[tokio::test]
async fn create_retrieve_update_delete_with_events() {
    let w = World::new();
    let c = w
        .api
        .post_form(
            "/v1/customers",
            "email=bob%40example.com&name=Bob&metadata[a]=1&metadata[b]=2",
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let id = c.json["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("cus_"));
    assert_eq!(c.json["object"], "customer");
    assert_eq!(c.json["metadata"], json!({"a": "1", "b": "2"}));

    let got = w.api.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(got.json, c.json);

    // Metadata merges; an empty value removes a key; an empty field unsets it.
    let u = w
        .api
        .post_form(
            &format!("/v1/customers/{id}"),
            "metadata[b]=&metadata[c]=3&name=Robert&email=",
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    assert_eq!(u.json["metadata"], json!({"a": "1", "c": "3"}));
    assert_eq!(u.json["name"], "Robert");
    assert_eq!(u.json["email"], serde_json::Value::Null);

    let d = w.api.delete(&format!("/v1/customers/{id}")).await;
    assert_eq!(d.status, 200);
    assert_eq!(
        d.json,
        json!({"id": id, "object": "customer", "deleted": true})
    );
    let after = w.api.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(after.json["deleted"], true);
    assert_eq!(
        w.api
            .post_form(&format!("/v1/customers/{id}"), "name=x")
            .await
            .status,
        404
    );
    assert_eq!(
        w.api.delete(&format!("/v1/customers/{id}")).await.status,
        404
    );
    let list = w.api.get("/v1/customers").await;
    assert_eq!(list.json["data"], json!([]));

    // The events: created, updated, deleted, in order, with the right objects.
    let mut conn = w.redis.conn();
    let test_stream = w.test_event_stream();
    // (The stream itself only queues events for projects with webhook endpoints; the event
    // log holds every event, in the order of the commits.)
    let log: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(test_stream.replace(":events", ":events:log"))
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .expect("xrange");
    let types: Vec<String> = log
        .ids
        .iter()
        .map(|e| e.get::<String>("type").unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        ["customer.created", "customer.updated", "customer.deleted"]
    );
    // Events are stored packed (zstd against a dictionary), a few hundred bytes each.
    let stored: Vec<u8> = log.ids[1].get("json").expect("the event's JSON");
    assert_eq!(stored.first(), Some(&packed::MARK));
    let event_json = packed::text(stored).expect("event decodes");
    assert!(event_json.len() > 400, "a full snapshot: {event_json}");
    let event: serde_json::Value = serde_json::from_str(&event_json).expect("event json");
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], "customer.updated");
    assert_eq!(event["data"]["object"]["name"], "Robert");
    assert_eq!(event["data"]["previous_attributes"]["name"], "Bob");
    assert_eq!(
        event["data"]["previous_attributes"]["metadata"],
        json!({"a": "1", "b": "2"})
    );
    assert!(
        event["request"]["id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_"))
    );
}

#[tokio::test]
async fn an_update_that_changes_nothing_appends_no_event_and_unknown_ids_are_404() {
    let w = World::new();
    let c = w.api.post_form("/v1/customers", "name=Same").await;
    let id = c.json["id"].as_str().expect("id");
    let u = w
        .api
        .post_form(&format!("/v1/customers/{id}"), "name=Same")
        .await;
    assert_eq!(u.status, 200);
    for bad in ["cus_nope", "pi_123", "cus_%7Bx%7D", "../../etc"] {
        let r = w.api.get(&format!("/v1/customers/{bad}")).await;
        assert_eq!(r.status, 404, "{bad}: {}", r.text);
    }
    let mut conn = w.redis.conn();
    let s = w.test_event_stream();
    let len: usize = redis::cmd("XLEN")
        .arg(s.replace(":events", ":events:log"))
        .query(&mut conn)
        .expect("xlen");
    assert_eq!(len, 1, "only customer.created");
}
