//! Cursor pagination both ways, newest first, as Stripe's clients walk it.

use std::collections::HashSet;

use crate::harness::{World, ids};

/// Every page of a list, ten at a time with `starting_after`, newest first: the ids in order
/// and each page's `has_more`.
async fn walk_forward(w: &World, path: &str) -> (Vec<String>, Vec<bool>) {
    let (mut seen, mut flags) = (Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{path}?limit=10&starting_after={c}"),
            None => format!("{path}?limit=10"),
        };
        let page = w.api.get(&q).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.json["object"], "list");
        assert_eq!(page.json["url"], path);
        let page_ids = ids(&page.json);
        let more = page.json["has_more"].as_bool().expect("has_more");
        flags.push(more);
        cursor = page_ids.last().cloned();
        seen.extend(page_ids);
        if !more {
            return (seen, flags);
        }
    }
}

#[tokio::test]
async fn pages_forward_and_backward() {
    let w = World::new();
    let mut created = Vec::new();
    for i in 0..25 {
        let email = if i % 5 == 0 {
            "five%40x.co"
        } else {
            "other%40x.co"
        };
        let r = w
            .api
            .post_form("/v1/customers", &format!("name=C{i}&email={email}"))
            .await;
        created.push(r.json["id"].as_str().expect("id").to_string());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    // Forward with starting_after: 10, 10, 5.
    let (seen, has_more_flags) = walk_forward(&w, "/v1/customers").await;
    assert_eq!(seen, newest_first);
    assert_eq!(has_more_flags, [true, true, false]);

    // Backward with ending_before from the oldest: pages stay newest first.
    let oldest = created[0].clone();
    let mut back = Vec::new();
    let mut cursor = oldest.clone();
    let mut flags = Vec::new();
    loop {
        let page = w
            .api
            .get(&format!("/v1/customers?limit=10&ending_before={cursor}"))
            .await;
        let page_ids = ids(&page.json);
        let sorted_desc = {
            let mut s = page_ids.clone();
            s.sort();
            s.reverse();
            s
        };
        assert_eq!(page_ids, sorted_desc, "each page is newest first");
        flags.push(page.json["has_more"].as_bool().expect("has_more"));
        match page_ids.first() {
            Some(first) => cursor = first.clone(),
            None => break,
        }
        back.extend(page_ids);
        if !flags.last().copied().unwrap_or(false) {
            break;
        }
    }
    assert_eq!(flags, [true, true, false]);
    let back_set: HashSet<_> = back.iter().collect();
    assert_eq!(
        back_set.len(),
        24,
        "every customer newer than the oldest, once"
    );
    assert!(!back_set.contains(&oldest));

    // Default limit is 10; filter by email.
    assert_eq!(ids(&w.api.get("/v1/customers").await.json).len(), 10);
    let fives = w.api.get("/v1/customers?email=five%40x.co&limit=100").await;
    let five_ids = ids(&fives.json);
    assert_eq!(five_ids.len(), 5);
    let expected: Vec<String> = created.iter().step_by(5).rev().cloned().collect();
    assert_eq!(five_ids, expected);
}

/// Every event a payment writes is in the event log, newest first, and in its type's list: the
/// finish of a payment adds several events to the log at once (one `ZADD` of them all).
#[tokio::test]
async fn every_event_of_a_payment_is_listed_once() {
    let w = World::new();
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    let paid = w.api.pay(2500, &pm, "").await;
    assert_eq!(paid.json["status"], "succeeded", "{}", paid.text);
    let all = w.api.get("/v1/events?limit=100").await;
    assert_eq!(all.status, 200, "{}", all.text);
    let events = all.json["data"].as_array().cloned().unwrap_or_default();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.created",
        "invoice.paid",
    ] {
        assert_eq!(
            types.iter().filter(|t| **t == kind).count(),
            1,
            "{kind} in {types:?}"
        );
        let by_type = w.api.get(&format!("/v1/events?type={kind}")).await;
        assert_eq!(ids(&by_type.json).len(), 1, "{kind}: {}", by_type.text);
    }
    let listed = ids(&all.json);
    assert_eq!(
        listed.iter().collect::<HashSet<_>>().len(),
        listed.len(),
        "each event once: {listed:?}"
    );
    let mut newest_first = listed.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, newest_first, "newest first");
}

/// The event log pages as every list does, both ways, and by `created`; each listed id
/// retrieves the same event. (Events are entries of a stream, their ids derived from the
/// entries' IDs: the cursor is turned into a bound of those.)
#[tokio::test]
async fn the_event_log_pages_forward_and_backward_and_by_created() {
    let w = World::new();
    for i in 0..23 {
        let r = w
            .api
            .post_form("/v1/customers", &format!("name=C{i}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let all = ids(&w.api.get("/v1/events?limit=100").await.json);
    assert_eq!(all.len(), 23);
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(all, sorted, "newest first");

    let (forward, flags) = walk_forward(&w, "/v1/events").await;
    assert_eq!(forward, all);
    assert_eq!(flags, [true, true, false]);

    let back = w
        .api
        .get(&format!("/v1/events?limit=5&ending_before={}", all[22]))
        .await;
    assert_eq!(ids(&back.json), all[17..22].to_vec(), "{}", back.text);
    assert_eq!(back.json["has_more"], true);
    let by_type = w
        .api
        .get(&format!(
            "/v1/events?type=customer.created&limit=3&starting_after={}",
            all[4]
        ))
        .await;
    assert_eq!(ids(&by_type.json), all[5..8].to_vec(), "{}", by_type.text);

    for id in [&all[0], &all[11], &all[22]] {
        let one = w.api.get(&format!("/v1/events/{id}")).await;
        assert_eq!(one.status, 200, "{}", one.text);
        assert_eq!(one.json["id"], id.as_str());
        assert_eq!(one.json["pending_webhooks"], 0);
    }
    let now = w.api.get(&format!("/v1/events/{}", all[0])).await.json["created"]
        .as_i64()
        .expect("created");
    let q = |range: &str| format!("/v1/events?limit=100&{range}");
    assert_eq!(
        ids(&w
            .api
            .get(&q(&format!("created[lte]={}", now + 5)))
            .await
            .json),
        all
    );
    assert!(
        ids(&w
            .api
            .get(&q(&format!("created[gt]={}", now + 5)))
            .await
            .json)
        .is_empty()
    );
    assert!(
        ids(&w
            .api
            .get(&q(&format!("created[lt]={}", now - 60)))
            .await
            .json)
        .is_empty()
    );
}
