//! What an operator reads with `redis-cli` (a real one, against the test's Redis): each
//! record's plain fields beside its packed JSON, written in the same commit; events' type and
//! object in the log's entries; and `calmony-payd inspect`, which prints an object whole.

use std::process::Command;

use crate::harness::World;

/// `redis-cli -p <port> <args>`, its output without the last newline.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_owned()
}

/// The one key matching `pattern`.
fn key(port: u16, pattern: &str) -> String {
    let keys = redis_cli(port, &["--scan", "--pattern", pattern]);
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 1, "{pattern}: {keys:?}");
    keys[0].to_owned()
}

/// The pretty JSON `inspect` prints: from the first line `{` to the first line `}`.
fn printed_json(stdout: &str) -> serde_json::Value {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines.iter().position(|l| *l == "{").expect("a JSON block");
    let end = start
        + lines[start..]
            .iter()
            .position(|l| *l == "}")
            .expect("its end");
    serde_json::from_str(&lines[start..=end].join("\n")).expect("JSON")
}

#[tokio::test]
async fn a_payment_reads_plainly_with_redis_cli_and_inspect_prints_it_whole() {
    let w = World::new();
    let port = w.redis.port;
    let cus = w.api.customer().await;
    let pm = w.api.card("4242424242424242", 12, 2030, Some(&cus)).await;
    let paid = w.api.pay(2500, &pm, &format!("&customer={cus}")).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let pi = paid.json["id"].as_str().expect("id").to_owned();
    let charge = paid.json["latest_charge"]
        .as_str()
        .expect("charge")
        .to_owned();

    // The intent's record: its plain fields, from the commit that made it `succeeded`.
    let intent = key(port, &format!("cp:*:test:obj:{pi}"));
    let hget = |key: &str, field: &str| redis_cli(port, &["HGET", key, field]);
    for (field, want) in [
        ("object", "payment_intent"),
        ("status", "succeeded"),
        ("amount", "2500"),
        ("currency", "gbp"),
        ("customer", cus.as_str()),
        ("created", &paid.json["created"].to_string()),
        ("livemode", "false"),
    ] {
        assert_eq!(hget(&intent, field), want, "{field}");
    }
    // The body stays packed beside them.
    let body = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "HGET", &intent, "json"])
        .output()
        .expect("redis-cli")
        .stdout;
    assert_eq!(body.first(), Some(&calmony_actors::store::packed::MARK));
    let charge_key = intent.replace(&pi, &charge);
    assert_eq!(hget(&charge_key, "status"), "succeeded");
    assert_eq!(hget(&charge_key, "amount"), "2500");
    assert_eq!(hget(&charge_key, "payment_intent"), pi);
    // A field an object does not have is not written.
    let customer_key = intent.replace(&pi, &cus);
    assert_eq!(hget(&customer_key, "object"), "customer");
    assert_eq!(hget(&customer_key, "amount"), "");

    // A later commit keeps them in step: a held payment, then cancelled.
    let held = w.api.pay(700, &pm, "&capture_method=manual").await;
    let held_id = held.json["id"].as_str().expect("id").to_owned();
    let held_key = intent.replace(&pi, &held_id);
    assert_eq!(hget(&held_key, "status"), "requires_capture");
    let cancel = w
        .api
        .post_form(&format!("/v1/payment_intents/{held_id}/cancel"), "")
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    assert_eq!(hget(&held_key, "status"), "canceled");

    // The event log's entries carry their type and object plainly.
    let log = intent.replace(&format!("obj:{pi}"), "events:log");
    let mut conn = w.redis.conn();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&log)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .expect("XRANGE");
    let plain: Vec<(String, String)> = entries
        .ids
        .iter()
        .map(|e| {
            let field = |f: &str| e.get::<String>(f).unwrap_or_default();
            (field("type"), field("object_id"))
        })
        .collect();
    for want in [
        ("payment_intent.created", &pi),
        ("payment_intent.succeeded", &pi),
        ("charge.succeeded", &charge),
        ("payment_intent.canceled", &held_id),
    ] {
        assert!(
            plain.contains(&(want.0.to_owned(), want.1.clone())),
            "{want:?} in {plain:?}"
        );
    }
    let listed = redis_cli(port, &["XRANGE", &log, "-", "+"]);
    assert!(listed.contains("payment_intent.succeeded"), "{listed}");

    // `inspect` finds the intent by its id alone and prints it whole, with its events.
    let (status, stdout, stderr) = w.daemon.cli(&["inspect", &pi]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.starts_with(&intent), "{stdout}");
    assert!(stdout.contains("\n  status    succeeded\n"), "{stdout}");
    let json = printed_json(&stdout);
    assert_eq!(json["id"], pi.as_str());
    assert_eq!(json["amount"], 2500);
    let events = stdout.split("events (").nth(1).expect("events");
    for kind in [
        "payment_intent.created",
        "payment_intent.succeeded",
        "charge.succeeded",
    ] {
        assert!(events.contains(kind), "{kind}: {stdout}");
    }
    assert!(!events.contains("payment_intent.canceled"), "{stdout}");

    // By key, an event by its id, and what is not there.
    let (status, stdout, stderr) = w.daemon.cli(&["inspect", &charge_key]);
    assert!(status.success(), "{stderr}");
    assert_eq!(printed_json(&stdout)["payment_intent"], pi.as_str());
    let events = w.api.get("/v1/events?type=charge.succeeded").await;
    let event = events.json["data"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["data"]["object"]["id"] == charge.as_str())
        })
        .and_then(|e| e["id"].as_str())
        .expect("the charge's event")
        .to_owned();
    let (status, stdout, stderr) = w.daemon.cli(&["inspect", &event]);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("  object_id  {charge}\n")),
        "{stdout}"
    );
    assert_eq!(printed_json(&stdout)["id"], event.as_str());
    let (status, _, stderr) = w.daemon.cli(&["inspect", "pi_0000000000000000000000NONE"]);
    assert!(!status.success());
    assert!(
        stderr.contains("no object pi_0000000000000000000000NONE"),
        "{stderr}"
    );
    let (status, _, stderr) = w.daemon.cli(&["inspect", "not an id"]);
    assert!(!status.success());
    assert!(stderr.contains("neither an object's id"), "{stderr}");
}

/// Log entries written before their fields were named for operators (`t`, `c`, `j`) are still
/// read, shown by `inspect` under the new names, and forgotten with their type list's entry.
#[tokio::test]
async fn log_entries_written_as_t_c_j_still_read_and_are_forgotten() {
    use calmony_actors::store::{Scope, event_log};
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    w.api.customer().await;
    let log = w.test_event_stream().replace(":events", ":events:log");
    let bytype = log.replace(":events:log", ":events:bytype:customer.created");
    let mut r = w.redis.conn();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&log)
        .arg("-")
        .arg("+")
        .query(&mut r)
        .expect("XRANGE");
    let first = &entries.ids[0];
    let json: Vec<u8> = first.get("json").expect("json");
    let created: String = first.get("created").expect("created");
    let entry: String = redis::cmd("XADD")
        .arg(&log)
        .arg("*")
        .arg("t")
        .arg("customer.created")
        .arg("c")
        .arg(&created)
        .arg("j")
        .arg(json)
        .query(&mut r)
        .expect("XADD");
    let _: String = redis::cmd("XADD")
        .arg(&bytype)
        .arg(&entry)
        .arg("e")
        .arg("1")
        .query(&mut r)
        .expect("XADD");
    let (scope, _) = Scope::of_key(&log).expect("a scope's key");
    let id = event_log::id_of(&entry, &event_log::tag(&scope)).expect("an id");

    let got = w.api.get(&format!("/v1/events/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["type"], "customer.created");
    let (status, stdout, stderr) = w.daemon.cli(&["inspect", &id]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("  type     customer.created\n"), "{stdout}");
    assert_eq!(printed_json(&stdout)["id"], id.as_str());

    w.daemon
        .cli(&["clock", "advance", "--seconds", &(31 * 86_400).to_string()]);
    let gone = crate::harness::eventually(std::time::Duration::from_secs(10), || async {
        w.api.get(&format!("/v1/events/{id}")).await.status == 404
    })
    .await;
    assert!(gone, "the old entry is forgotten");
    let left: i64 = redis::cmd("XLEN").arg(&bytype).query(&mut r).expect("XLEN");
    assert_eq!(left, 0, "with its entry in the type list");
}

/// Records written before plain fields existed get them once the daemon starts; records that
/// have them are left alone; the store is then marked done.
#[tokio::test]
async fn records_written_before_plain_fields_get_them_at_start() {
    use calmony_actors::store::packed;
    let redis = crate::harness::Redis::start();
    let mut r = redis.conn();
    let old = "cp:{prj_old}:test:obj:in_old";
    let json =
        r#"{"id":"in_old","object":"invoice","status":"open","amount_due":1200,"created":5}"#;
    let _: () = redis::cmd("HSET")
        .arg(old)
        .arg("v")
        .arg("3")
        .arg("json")
        .arg(packed::pack(json))
        .query(&mut r)
        .expect("HSET");
    // One that has its fields (here deliberately not its JSON's) is not rewritten.
    let new = "cp:{prj_old}:test:obj:in_new";
    let _: () = redis::cmd("HSET")
        .arg(new)
        .arg("v")
        .arg("4")
        .arg("json")
        .arg(packed::pack(json))
        .arg("object")
        .arg("invoice")
        .arg("status")
        .arg("draft")
        .query(&mut r)
        .expect("HSET");
    let daemon = crate::harness::Daemon::start(&redis.url());
    let given = crate::harness::eventually(std::time::Duration::from_secs(10), || async {
        let mut r = redis.conn();
        redis::cmd("EXISTS")
            .arg(calmony_actors::store::plain::BACKFILLED)
            .query::<bool>(&mut r)
            .unwrap_or(false)
    })
    .await;
    assert!(given, "{}", daemon.logs());
    let fields: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(old)
        .arg("object")
        .arg("status")
        .arg("amount_due")
        .arg("created")
        .arg("v")
        .query(&mut r)
        .expect("HMGET");
    let want = ["invoice", "open", "1200", "5", "3"].map(|v| Some(v.to_owned()));
    assert_eq!(fields, want);
    assert_eq!(
        redis_cli(redis.port, &["HGET", old, "status"]),
        "open",
        "as redis-cli reads it"
    );
    assert_eq!(redis_cli(redis.port, &["HGET", new, "status"]), "draft");
}
