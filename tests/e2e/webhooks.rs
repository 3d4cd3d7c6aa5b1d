//! Events and webhook delivery: signatures (ours and the official `stripe` library's check),
//! rolled secrets, filters, retries on the schedule proven with a controllable clock,
//! crashes, two daemons, auto-disable, resend, and bad endpoint input.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use calmony_protocol::webhook::verify;
use serde_json::{Value, json};

use crate::harness::receiver::{Answer, Receiver};
use crate::harness::{Api, Daemon, Redis, World, event_objects, eventually, ids};

async fn endpoint(api: &Api, url: &str, events: &[&str]) -> (String, String) {
    let mut body = format!("url={}", urlencode(url));
    for e in events {
        body.push_str(&format!("&enabled_events[]={e}"));
    }
    let r = api.post_form("/v1/webhook_endpoints", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let secret = r.json["secret"]
        .as_str()
        .expect("secret shown at creation")
        .to_string();
    assert!(secret.starts_with("whsec_"));
    (r.json["id"].as_str().expect("id").to_string(), secret)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The official `stripe` Python library's check, on exactly what we received.
fn stripe_library_accepts(body: &str, header: &str, secret: &str) -> Result<(), String> {
    let python = std::env::var("CALMONY_STRIPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, stripe\n\
             e = stripe.Webhook.construct_event(sys.argv[1], sys.argv[2], sys.argv[3], tolerance=None)\n\
             print(e['id'])",
            body,
            header,
            secret,
        ])
        .output()
        .map_err(|e| format!("cannot run python: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn deliveries_are_signed_verifiable_and_rolled_secrets_overlap() {
    let w = World::new();
    let rx = Receiver::start().await;
    let (we, secret) = endpoint(&w.api, &rx.url, &["*"]).await;
    let cus = w.api.customer().await;
    assert!(
        rx.wait(Duration::from_secs(10), |r| !r.is_empty()).await,
        "{}",
        w.daemon.logs()
    );
    let got = rx.received()[0].clone();
    assert_eq!(got.event_type(), "customer.created");
    let event: Value = serde_json::from_str(&got.body).expect("json");
    assert_eq!(event["object"], "event");
    assert_eq!(event["data"]["object"]["id"], cus.as_str());
    assert_eq!(got.calmony_signature, got.stripe_signature);
    verify(
        got.body.as_bytes(),
        &got.calmony_signature,
        &secret,
        300,
        now(),
    )
    .expect("our check");
    stripe_library_accepts(&got.body, &got.stripe_signature, &secret).expect("stripe's check");
    assert!(
        verify(
            got.body.as_bytes(),
            &got.calmony_signature,
            "whsec_wrong",
            300,
            now()
        )
        .is_err()
    );

    // The endpoint's own view: the attempt, and the event no longer pending.
    let evt = event["id"].as_str().expect("id");
    let api = w.api.clone();
    let e2 = evt.to_string();
    assert!(
        eventually(Duration::from_secs(5), || {
            let api = api.clone();
            let e = e2.clone();
            async move { api.get(&format!("/v1/events/{e}")).await.json["pending_webhooks"] == 0 }
        })
        .await
    );
    let attempts = w
        .api
        .get(&format!("/v1/webhook_endpoints/{we}/attempts"))
        .await;
    assert_eq!(
        attempts.json["data"][0]["status"], "succeeded",
        "{}",
        attempts.text
    );
    assert_eq!(attempts.json["data"][0]["http_status"], 200);
    let by_event = w.api.get(&format!("/v1/events/{evt}/attempts")).await;
    assert_eq!(by_event.json["data"].as_array().map(Vec::len), Some(1));
    // The secret is never shown again.
    let again = w.api.get(&format!("/v1/webhook_endpoints/{we}")).await;
    assert!(again.json.get("secret").is_none() && !again.text.contains(&secret));

    // Roll: both secrets sign during the overlap, and either verifies.
    let rolled = w
        .api
        .post_form(&format!("/v1/webhook_endpoints/{we}/roll_secret"), "")
        .await;
    let new_secret = rolled.json["secret"]
        .as_str()
        .expect("new secret")
        .to_string();
    assert_ne!(new_secret, secret);
    w.api
        .post_form(&format!("/v1/customers/{cus}"), "name=Rolled")
        .await;
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() >= 2).await);
    let second = rx.received()[1].clone();
    assert_eq!(
        second.calmony_signature.matches("v1=").count(),
        2,
        "{}",
        second.calmony_signature
    );
    for s in [&secret, &new_secret] {
        verify(
            second.body.as_bytes(),
            &second.calmony_signature,
            s,
            300,
            now(),
        )
        .expect("both verify");
        stripe_library_accepts(&second.body, &second.stripe_signature, s).expect("stripe's check");
    }
    // Rolling with no overlap retires the old secrets at once.
    let rolled = w
        .api
        .post_form(
            &format!("/v1/webhook_endpoints/{we}/roll_secret"),
            "expires_in=0",
        )
        .await;
    let newest = rolled.json["secret"].as_str().expect("secret").to_string();
    w.api
        .post_form(&format!("/v1/customers/{cus}"), "name=Again")
        .await;
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() >= 3).await);
    let third = rx.received()[2].clone();
    assert_eq!(third.calmony_signature.matches("v1=").count(), 1);
    verify(
        third.body.as_bytes(),
        &third.calmony_signature,
        &newest,
        300,
        now(),
    )
    .expect("newest");
    assert!(
        verify(
            third.body.as_bytes(),
            &third.calmony_signature,
            &new_secret,
            300,
            now()
        )
        .is_err()
    );
}

#[tokio::test]
async fn enabled_events_filter_and_the_event_log() {
    let w = World::new();
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    endpoint(&w.api, &a.url, &["customer.created"]).await;
    endpoint(
        &w.api,
        &b.url,
        &["payment_intent.succeeded", "payment_intent.failed"],
    )
    .await;
    let cus = w.api.customer().await;
    w.api
        .post_form(&format!("/v1/customers/{cus}"), "name=Changed")
        .await;
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    w.api.pay(2500, &pm, "").await;
    let bad = w.api.card("4000000000000002", 12, 2030, None).await;
    w.api.pay(2500, &bad, "").await;
    assert!(a.wait(Duration::from_secs(10), |r| !r.is_empty()).await);
    assert!(b.wait(Duration::from_secs(10), |r| r.len() >= 2).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let types = |r: &Receiver| {
        r.received()
            .iter()
            .map(|x| x.event_type())
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&a), ["customer.created"]);
    let mut tb = types(&b);
    tb.sort();
    assert_eq!(tb, ["payment_intent.failed", "payment_intent.succeeded"]);

    // The event log: newest first, by type, by several types, by time.
    let all = w.api.get("/v1/events?limit=100").await;
    let n = all.json["data"].as_array().map(Vec::len).unwrap_or(0);
    assert!(n >= 8, "{}", all.text);
    let only = w.api.get("/v1/events?type=customer.updated").await;
    assert_eq!(only.json["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        only.json["data"][0]["data"]["previous_attributes"]["name"],
        "Alice"
    );
    let two = w
        .api
        .get("/v1/events?types[]=customer.created&types[]=customer.updated")
        .await;
    assert_eq!(two.json["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        two.json["data"][0]["type"], "customer.updated",
        "newest first"
    );
    let future = w
        .api
        .get(&format!("/v1/events?created[gt]={}", now() + 60))
        .await;
    assert_eq!(future.json["data"].as_array().map(Vec::len), Some(0));
    let first = all.json["data"][0]["id"].as_str().expect("id");
    let one = w.api.get(&format!("/v1/events/{first}")).await;
    assert_eq!(one.json["id"], first);
    assert_eq!(w.api.get("/v1/events/evt_nope").await.status, 404);
}

#[tokio::test]
async fn a_day_of_downtime_is_retried_on_the_schedule_then_delivered() {
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let rx = Receiver::start().await;
    rx.set(Answer::Fail);
    let (we, _) = endpoint(&w.api, &rx.url, &["customer.created"]).await;
    for _ in 0..3 {
        w.api.customer().await;
    }
    assert!(
        rx.wait(Duration::from_secs(10), |r| r.len() >= 3).await,
        "first tries"
    );
    // Step the clock through a day: ten-minute steps for two hours, then two-hourly.
    let mut elapsed = 0;
    while elapsed < 24 * 3600 {
        let step = if elapsed < 2 * 3600 { 600 } else { 7200 };
        let before = rx.received().len();
        w.daemon
            .cli(&["clock", "advance", "--seconds", &step.to_string()]);
        elapsed += step;
        // Give due retries their moment (the promoter runs every 100 ms).
        rx.wait(Duration::from_millis(700), |r| r.len() > before)
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed_tries = rx.received().len();
    assert!(failed_tries >= 3 * 7, "a day of retries: {failed_tries}");
    rx.set(Answer::Ok);
    // The next scheduled try (≤ 1.2 × 24 h away) delivers each event.
    for _ in 0..10 {
        w.daemon.cli(&["clock", "advance", "--seconds", "21600"]);
        if rx
            .wait(Duration::from_millis(600), |r| {
                r.iter().filter(|x| x.answered == 200).count() >= 3
            })
            .await
        {
            break;
        }
    }
    let delivered: HashSet<String> = rx
        .received()
        .iter()
        .filter(|x| x.answered == 200)
        .map(|x| x.event_id())
        .collect();
    assert_eq!(delivered.len(), 3, "every event delivered after the outage");

    // The attempts follow the schedule: each gap at least the scheduled delay less jitter.
    let schedule = [60, 300, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400];
    let attempts = w
        .api
        .get(&format!("/v1/webhook_endpoints/{we}/attempts?limit=100"))
        .await;
    let mut by_event: HashMap<String, Vec<(u64, i64, String)>> = HashMap::new();
    for a in attempts.json["data"].as_array().expect("attempts") {
        by_event
            .entry(a["event"].as_str().unwrap_or("").to_string())
            .or_default()
            .push((
                a["attempt"].as_u64().unwrap_or(0),
                a["created"].as_i64().unwrap_or(0),
                a["status"].as_str().unwrap_or("").to_string(),
            ));
    }
    assert_eq!(by_event.len(), 3);
    for (evt, mut tries) in by_event {
        tries.sort();
        assert_eq!(
            tries.last().map(|t| t.2.as_str()),
            Some("succeeded"),
            "{evt}: {tries:?}"
        );
        assert!(tries.len() >= 8, "{evt}: {tries:?}");
        for pair in tries.windows(2) {
            let (n, t0, _) = &pair[0];
            let (_, t1, _) = &pair[1];
            let scheduled = schedule[(*n as usize) - 1] as f64;
            assert!(
                (t1 - t0) as f64 >= scheduled * 0.8 - 1.0,
                "{evt}: try {n} gap {} < {scheduled}",
                t1 - t0
            );
        }
    }
}

#[tokio::test]
async fn kill_9_in_the_middle_of_deliveries_still_delivers_every_event() {
    let mut w = World::new();
    let rx = Receiver::start().await;
    rx.set(Answer::Hang(Duration::from_millis(1500)));
    endpoint(&w.api, &rx.url, &["customer.created"]).await;
    let mut events = Vec::new();
    for _ in 0..30 {
        w.api.customer().await;
    }
    // Deliveries are in flight (the receiver is holding them) when the daemon dies.
    assert!(rx.wait(Duration::from_secs(10), |r| !r.is_empty()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.daemon.kill9();
    rx.set(Answer::Ok);
    w.daemon.restart();
    let list = w
        .api
        .get("/v1/events?type=customer.created&limit=100")
        .await;
    for e in list.json["data"].as_array().expect("events") {
        events.push(e["id"].as_str().expect("id").to_string());
    }
    assert_eq!(events.len(), 30);
    // The daemon itself must record every delivery as done, not just the receiver see it.
    let api = w.api.clone();
    let evs = events.clone();
    let done = eventually(Duration::from_secs(60), || {
        let api = api.clone();
        let evs = evs.clone();
        async move {
            for e in &evs {
                if api.get(&format!("/v1/events/{e}")).await.json["pending_webhooks"] != 0 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(done, "{}", w.daemon.logs());
    let seen: HashSet<String> = rx
        .received()
        .iter()
        .filter(|x| x.answered == 200)
        .map(|x| x.event_id())
        .collect();
    for e in &events {
        assert!(seen.contains(e), "{e} never delivered");
    }
}

#[tokio::test]
async fn two_daemons_share_the_work_and_deliver_each_event_once() {
    let redis = Redis::start();
    // Few delivery slots each and a receiver that takes a moment: neither daemon can take
    // the whole burst, so both must share it.
    // Both open the signing secrets either one sealed: they share the keys.
    let keys = tempfile::tempdir().expect("key dir");
    let key_dir = keys.path().display().to_string();
    let settings = [
        ("CALMONY_WEBHOOKS_CONCURRENCY", "4"),
        ("CALMONY_SECRETS_KEY_DIR", key_dir.as_str()),
    ];
    let d1 = Daemon::start_with(&redis.url(), &settings);
    let d2 = Daemon::start_with(&redis.url(), &settings);
    let key = d1.key("acme", "test");
    let (a1, a2) = (d1.api(&key), d2.api(&key));
    let rx = Receiver::start().await;
    rx.set(Answer::Hang(Duration::from_millis(20)));
    endpoint(&a1, &rx.url, &["customer.created"]).await;
    for i in 0..100 {
        let api = if i % 2 == 0 { &a1 } else { &a2 };
        api.post_form("/v1/customers", &format!("name=C{i}")).await;
    }
    assert!(
        rx.wait(Duration::from_secs(20), |r| r.len() >= 100).await,
        "{}",
        rx.received().len()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids: Vec<String> = rx.received().iter().map(|r| r.event_id()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 100);
    assert_eq!(ids.len(), 100, "no duplicates without failures");
    let m1 = d1.api(&key).get("/metrics").await.text;
    let m2 = d2.api(&key).get("/metrics").await.text;
    let sent = |m: &str| m.contains("calmony_webhook_deliveries_total{outcome=\"succeeded\"}");
    assert!(sent(&m1) && sent(&m2), "both daemons delivered some");
}

/// An operator who deletes a project's event stream (its consumer group goes with it) does not
/// stop that project's webhooks: the fan-out lists the streams again, creates the group, and
/// the next event is delivered.
#[tokio::test]
async fn a_deleted_event_stream_comes_back_and_later_events_are_delivered() {
    let w = World::new();
    let rx = Receiver::start().await;
    endpoint(&w.api, &rx.url, &["customer.created"]).await;
    w.api.customer().await;
    assert!(
        rx.wait(Duration::from_secs(10), |r| !r.is_empty()).await,
        "{}",
        w.daemon.logs()
    );
    let deleted: u64 = redis::cmd("DEL")
        .arg(w.test_event_stream())
        .query(&mut w.redis.conn())
        .expect("DEL");
    assert_eq!(deleted, 1);
    let second = w.api.customer().await;
    assert!(
        rx.wait(Duration::from_secs(30), |r| r.len() >= 2).await,
        "{}",
        w.daemon.logs()
    );
    let last: Value = serde_json::from_str(&rx.received()[1].body).expect("json");
    assert_eq!(last["data"]["object"]["id"], json!(second));
}

#[tokio::test]
async fn failing_endpoints_are_disabled_and_redirects_timeouts_and_retry_after_count() {
    let w = World::with(&[
        ("CALMONY_CLOCK_CONTROLLABLE", "true"),
        ("CALMONY_WEBHOOKS_DISABLE_AFTER_HOURS", "1"),
        ("CALMONY_WEBHOOKS_TIMEOUT_SECONDS", "1"),
    ]);
    let rx = Receiver::start().await;
    // A redirect is a failure, not followed.
    rx.set(Answer::Redirect);
    let (we, _) = endpoint(&w.api, &rx.url, &["customer.created", "customer.updated"]).await;
    let cus = w.api.customer().await;
    assert!(rx.wait(Duration::from_secs(10), |r| !r.is_empty()).await);
    let api = w.api.clone();
    let attempts = |api: Api, we: String| async move {
        api.get(&format!("/v1/webhook_endpoints/{we}/attempts"))
            .await
            .json
    };
    assert!(
        eventually(Duration::from_secs(5), || {
            let (api, we) = (api.clone(), we.clone());
            async move { attempts(api, we).await["data"][0]["http_status"] == 302 }
        })
        .await
    );
    // No answer in time is a failure.
    rx.set(Answer::Hang(Duration::from_secs(3)));
    w.api
        .post_form(&format!("/v1/customers/{cus}"), "name=Slow")
        .await;
    assert!(
        eventually(Duration::from_secs(8), || {
            let (api, we) = (api.clone(), we.clone());
            async move {
                attempts(api, we).await["data"][0]["response"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no answer")
            }
        })
        .await
    );
    // Retry-After is honoured (within bounds).
    rx.set(Answer::RetryAfter(7));
    w.api
        .post_form(&format!("/v1/customers/{cus}"), "name=Busy")
        .await;
    assert!(
        eventually(Duration::from_secs(5), || {
            let (api, we) = (api.clone(), we.clone());
            async move {
                let d = attempts(api, we).await;
                d["data"][0]["http_status"] == 503
                    && d["data"][0]["next_attempt_at"]
                        .as_i64()
                        .zip(d["data"][0]["created"].as_i64())
                        .is_some_and(|(n, c)| (n - c - 7).abs() <= 1)
            }
        })
        .await
    );
    // Failing continuously past the limit: disabled, with an event saying so.
    rx.set(Answer::Fail);
    w.daemon.cli(&["clock", "advance", "--seconds", "7200"]);
    w.api
        .post_form(&format!("/v1/customers/{cus}"), "name=Down")
        .await;
    let disabled =
        eventually(Duration::from_secs(10), || {
            let api = api.clone();
            let we = we.clone();
            async move {
                api.get(&format!("/v1/webhook_endpoints/{we}")).await.json["status"] == "disabled"
            }
        })
        .await;
    assert!(disabled, "{}", w.daemon.logs());
    let ev = w.api.get("/v1/events?type=webhook_endpoint.disabled").await;
    assert_eq!(
        ev.json["data"][0]["data"]["object"]["id"],
        we.as_str(),
        "{}",
        ev.text
    );
    // Disabled endpoints get nothing more; re-enabling works.
    let before = rx.received().len();
    w.api
        .post_form(&format!("/v1/customers/{cus}"), "name=Quiet")
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.received().len(), before);
    let on = w
        .api
        .post_form(&format!("/v1/webhook_endpoints/{we}"), "disabled=false")
        .await;
    assert_eq!(on.json["status"], "enabled");
}

#[tokio::test]
async fn resend_delivers_again_and_bad_endpoint_input_is_refused() {
    let w = World::new();
    let rx = Receiver::start().await;
    let (we, _) = endpoint(&w.api, &rx.url, &["customer.created"]).await;
    w.api.customer().await;
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() == 1).await);
    let evt = rx.received()[0].event_id();
    let r = w
        .api
        .post_form(
            &format!("/v1/events/{evt}/resend"),
            &format!("webhook_endpoint={we}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() == 2).await);
    assert_eq!(rx.received()[1].event_id(), evt);

    for (body, param) in [
        ("url=not+a+url&enabled_events[]=*", "url"),
        ("url=ftp%3A%2F%2Fx.example&enabled_events[]=*", "url"),
        (
            "url=https%3A%2F%2Fx.example&enabled_events[]=charge.exploded",
            "enabled_events[0]",
        ),
        ("url=https%3A%2F%2Fx.example", "enabled_events"),
        ("enabled_events[]=*", "url"),
    ] {
        let r = w.api.post_form("/v1/webhook_endpoints", body).await;
        assert_eq!(
            (r.status, r.err("param")),
            (400, param),
            "{body}: {}",
            r.text
        );
    }
    // Live mode: https only, and never a private address.
    let live = w.daemon.api(&w.daemon.key("acme", "live"));
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://10.0.0.5/x",
        "https://localhost/x",
    ] {
        let r = live
            .post_form(
                "/v1/webhook_endpoints",
                &format!("url={}&enabled_events[]=*", urlencode(url)),
            )
            .await;
        assert_eq!(
            (r.status, r.err("param")),
            (400, "url"),
            "{url}: {}",
            r.text
        );
    }
    let ok = live
        .post_json(
            "/v1/webhook_endpoints",
            &json!({"url": "https://hooks.example.com/x", "enabledEvents": ["*"]}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // At most 16 endpoints.
    for _ in 0..15 {
        endpoint(&live, "https://hooks.example.com/y", &["*"]).await;
    }
    let over = live
        .post_form(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fhooks.example.com%2Fz&enabled_events[]=*",
        )
        .await;
    assert_eq!(over.status, 400);
    // Delete: gone, and 404 after.
    let del = w.api.delete(&format!("/v1/webhook_endpoints/{we}")).await;
    assert_eq!(del.json["deleted"], true);
    assert_eq!(
        w.api
            .get(&format!("/v1/webhook_endpoints/{we}"))
            .await
            .status,
        404
    );
}

/// A delivery the dispatcher cannot read is parked in the dead-letter list (with why, and what
/// it held), listed by `webhooks dead-letters`, and kept there by `webhooks replay-dead`.
#[tokio::test]
async fn an_unreadable_delivery_is_parked_listed_and_kept_by_replay() {
    let w = World::new();
    let mut c = w.redis.conn();
    let id: String = redis::cmd("XADD")
        .arg("cp:webhooks:deliveries")
        .arg("*")
        .arg("d")
        .arg("not a delivery")
        .query(&mut c)
        .expect("xadd");
    let parked = |c: &mut redis::Connection| -> Vec<Value> {
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg("cp:webhooks:dead")
            .arg(0)
            .arg(-1)
            .query(c)
            .expect("lrange");
        raw.iter()
            .map(|r| serde_json::from_str(r).expect("dead letter json"))
            .collect()
    };
    let mut watch = w.redis.conn();
    assert!(
        eventually(Duration::from_secs(10), || {
            let n = parked(&mut watch).len();
            async move { n == 1 }
        })
        .await
    );
    let dead = parked(&mut c);
    assert_eq!(
        (
            dead[0]["id"].as_str(),
            dead[0]["why"].as_str(),
            dead[0]["d"].as_str()
        ),
        (
            Some(id.as_str()),
            Some("unreadable delivery"),
            Some("not a delivery")
        )
    );
    let left: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("cp:webhooks:deliveries")
        .arg(&id)
        .arg(&id)
        .query(&mut c)
        .expect("xrange");
    assert!(
        left.ids.is_empty(),
        "parked entries leave the delivery stream"
    );

    let (status, out, _) = w.daemon.cli(&["webhooks", "dead-letters"]);
    assert!(status.success() && out.contains(&id), "{out}");
    // Replay puts back what can be delivered; an unreadable entry would only be parked again,
    // so it stays on the list for a person.
    let (status, _, err) = w.daemon.cli(&["webhooks", "replay-dead"]);
    assert!(status.success() && err.contains("replayed 0"), "{err}");
    assert_eq!(parked(&mut c), dead);
}

#[tokio::test]
async fn events_are_forgotten_after_thirty_days_with_their_list_entries() {
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let old = w.api.customer().await;
    let listed = w.api.get("/v1/events?type=customer.created").await;
    assert_eq!(
        listed.json["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    let event = listed.json["data"][0]["id"]
        .as_str()
        .expect("event id")
        .to_string();
    assert_eq!(listed.json["data"][0]["data"]["object"]["id"], old.as_str());
    let mut r = w.redis.conn();
    let log = w.test_event_stream().replace(":events", ":events:log");
    let log_len =
        |r: &mut redis::Connection| -> i64 { redis::cmd("XLEN").arg(&log).query(r).expect("xlen") };
    assert_eq!(log_len(&mut r), 1, "the event is in the project's log");
    let ttl: i64 = redis::cmd("PTTL").arg(&log).query(&mut r).expect("pttl");
    assert_eq!(ttl, -1, "no expiry: the sweep removes old events");
    // 29 days on: still there, and a new event joins it.
    w.daemon
        .cli(&["clock", "advance", "--seconds", &(29 * 86_400).to_string()]);
    // The daemon takes up the moved clock within 50 ms; the sweep runs when it has.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let recent = w.api.customer().await;
    assert_eq!(w.api.get(&format!("/v1/events/{event}")).await.status, 200);
    // Two days more: past 30 days for the first event only.
    w.daemon
        .cli(&["clock", "advance", "--seconds", &(2 * 86_400).to_string()]);
    let gone = eventually(Duration::from_secs(10), || async {
        w.api.get(&format!("/v1/events/{event}")).await.status == 404
    })
    .await;
    assert!(gone, "the 31-day-old event is forgotten");
    for path in ["/v1/events", "/v1/events?type=customer.created"] {
        let listed = w.api.get(path).await;
        let objects = event_objects(&listed.json);
        assert_eq!(objects, vec![recent.as_str()], "{path}: {}", listed.text);
    }
    let index_entries: i64 = redis::cmd("XLEN")
        .arg(log.replace(":events:log", ":events:bytype:customer.created"))
        .query(&mut r)
        .expect("xlen");
    assert_eq!(index_entries, 1, "the type list lost the old entry too");
    assert_eq!(log_len(&mut r), 1, "the log lost the old entry");
}

/// Events written before the event log (a record `obj:evt_…` listed in `events:index`) are
/// still retrieved, listed after the log's, paged across, found by type and forgotten
/// after the retention period, as a daemon upgraded over old data needs.
#[tokio::test]
async fn events_written_before_the_log_are_still_read_listed_and_forgotten() {
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let scope = w.test_event_stream().replace(":events", "");
    let old = calmony_protocol::ids::new_id("evt");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string();
    let old_json = json!({
        "id": old, "object": "event", "api_version": "2024-06-20", "created": now.parse::<i64>().unwrap_or(0),
        "data": {"object": {"id": "cus_old", "object": "customer"}}, "livemode": false,
        "pending_webhooks": 0, "request": {"id": null, "idempotency_key": null},
        "type": "customer.created"
    })
    .to_string();
    let mut r = w.redis.conn();
    let _: () = redis::pipe()
        .hset_multiple(
            format!("{scope}:obj:{old}"),
            &[
                ("v", "1"),
                ("json", &old_json),
                ("type", "customer.created"),
                ("created", &now),
            ],
        )
        .zadd(format!("{scope}:events:index"), &old, 0)
        .zadd(format!("{scope}:events:type:customer.created"), &old, 0)
        .query(&mut r)
        .expect("old event written");
    // The new event is made 29 days on, so the old one alone passes the retention period next.
    w.daemon
        .cli(&["clock", "advance", "--seconds", &(29 * 86_400).to_string()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = w.api.customer().await;

    let one = w.api.get(&format!("/v1/events/{old}")).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.json["data"]["object"]["id"], "cus_old");
    for path in ["/v1/events", "/v1/events?type=customer.created"] {
        let listed = w.api.get(path).await;
        let objects = event_objects(&listed.json);
        assert_eq!(
            objects,
            vec![new.as_str(), "cus_old"],
            "{path}: {}",
            listed.text
        );
    }
    let first = w.api.get("/v1/events?limit=1").await;
    assert_eq!(first.json["has_more"], true);
    let newest = first.json["data"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let rest = w
        .api
        .get(&format!("/v1/events?limit=1&starting_after={newest}"))
        .await;
    assert_eq!(rest.json["data"][0]["id"], old.as_str(), "{}", rest.text);
    assert_eq!(rest.json["has_more"], false);
    let back = w.api.get(&format!("/v1/events?ending_before={old}")).await;
    assert_eq!(back.json["data"][0]["id"], newest.as_str(), "{}", back.text);

    // Two days more: the old event is past 30 days, the new one is not. The sweep forgets the
    // old one, record and lists.
    w.daemon
        .cli(&["clock", "advance", "--seconds", &(2 * 86_400).to_string()]);
    let gone = eventually(Duration::from_secs(10), || async {
        w.api.get(&format!("/v1/events/{old}")).await.status == 404
    })
    .await;
    assert!(gone, "the old event is forgotten");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{scope}:obj:{old}"))
        .query(&mut r)
        .expect("exists");
    assert_eq!(exists, 0);
    let listed = w.api.get("/v1/events?type=customer.created").await;
    assert_eq!(ids(&listed.json), vec![newest.clone()], "{}", listed.text);
    assert_eq!(w.api.get(&format!("/v1/events/{newest}")).await.status, 200);
}

/// The sweep reads the log from its head in steps: more expired events than one step (and a
/// project with an endpoint, so the events have pending counts) all go, with their list
/// entries and counts, and the newer event stays.
#[tokio::test]
async fn the_retention_sweep_forgets_many_events_in_steps() {
    let w = World::with(&[
        ("CALMONY_CLOCK_CONTROLLABLE", "true"),
        ("CALMONY_API_RATE_LIMIT_PER_SECOND", "100000"),
    ]);
    let rx = Receiver::start().await;
    rx.set(Answer::Ok);
    let we = w
        .api
        .post_form(
            "/v1/webhook_endpoints",
            &format!("url={}&enabled_events[]=customer.created", rx.url),
        )
        .await;
    assert_eq!(we.status, 200, "{}", we.text);
    for _ in 0..130 {
        w.api.customer().await;
    }
    let log = w.test_event_stream().replace(":events", ":events:log");
    let pending = log.replace(":events:log", ":events:pending");
    let mut r = w.redis.conn();
    let counted = eventually(Duration::from_secs(10), || async {
        let n: i64 = redis::cmd("HLEN")
            .arg(&pending)
            .query(&mut w.redis.conn())
            .expect("hlen");
        n == 130
    })
    .await;
    assert!(
        counted,
        "each event endpoints were told of has its pending count"
    );
    w.daemon
        .cli(&["clock", "advance", "--seconds", &(31 * 86_400).to_string()]);
    // The daemon takes up the moved clock within 50 ms: the new event is made after it has.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let kept = w.api.customer().await;
    let swept = eventually(Duration::from_secs(10), || async {
        let n: i64 = redis::cmd("XLEN")
            .arg(&log)
            .query(&mut w.redis.conn())
            .expect("xlen");
        n == 1
    })
    .await;
    assert!(
        swept,
        "the 130 old events are forgotten, the new one kept:\n{}",
        w.daemon.logs()
    );
    let listed = w.api.get("/v1/events?type=customer.created").await;
    assert_eq!(ids(&listed.json).len(), 1, "{}", listed.text);
    assert_eq!(
        listed.json["data"][0]["data"]["object"]["id"],
        kept.as_str()
    );
    let types: i64 = redis::cmd("XLEN")
        .arg(log.replace(":events:log", ":events:bytype:customer.created"))
        .query(&mut r)
        .expect("xlen");
    assert_eq!(types, 1);
    let counts: i64 = redis::cmd("HLEN")
        .arg(&pending)
        .query(&mut r)
        .expect("hlen");
    assert!(
        counts <= 1,
        "only the new event's count may remain: {counts}"
    );
}

/// Serves one endless 200 answer per connection (a 200 MB `Content-Length`, generated as it
/// is written, never held), counting the bytes it managed to write.
async fn huge_answer_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SIZE: usize = 200 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = std::sync::Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                // The request's head; its small body may stay unread.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {SIZE}\r\n\r\n"
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 << 10];
                let mut sent = 0;
                while sent < SIZE {
                    match stream.write(&chunk[..chunk.len().min(SIZE - sent)]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            sent += n;
                            count.fetch_add(n, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hooks"), written)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_huge_answer_is_read_only_as_far_as_the_kept_excerpt() {
    let w = World::new();
    let (url, written) = huge_answer_server().await;
    let (we, _) = endpoint(&w.api, &url, &["customer.created"]).await;
    let before = rss_kib(w.daemon.pid());
    w.api.customer().await;
    let path = &format!("/v1/webhook_endpoints/{we}/attempts");
    let api = &w.api;
    let recorded = eventually(Duration::from_secs(30), || async move {
        api.get(path).await.json["data"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(recorded, "the attempt is recorded");
    let a = api.get(path).await.json["data"][0].clone();
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(a["response"], "x".repeat(256), "the excerpt is kept");
    // Let the writer see the connection go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        sent < 64 << 20,
        "the daemon stopped reading early: {sent} of 200 MB written"
    );
    let after = rss_kib(w.daemon.pid());
    assert!(
        after < before + 64 * 1024,
        "the daemon's memory stayed small: {before} KiB before, {after} KiB after"
    );
}
