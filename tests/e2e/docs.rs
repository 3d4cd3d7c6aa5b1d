//! The developer surface: `/openapi.json` and `/docs`, served without a key, and the examples
//! `/docs` shows, captured here from real answers.
//!
//! `examples_are_captured` calls every route of the description against a real daemon and
//! keeps each request and answer. The committed `docs/developer/examples.json` (compiled into
//! `/docs`) must match what it captured in status and shape (the answer's keys, and a list's
//! first object's keys), and every route must have an example: a changed answer fails here
//! until the file is written again with `CALMONY_WRITE_DOCS=1`. Each run leaves a fresh copy in
//! `target/test-artifacts/docs/examples.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};

use fantoccini::Locator;

use crate::browser::Browser;
use crate::harness::{Api, Resp, World, eventually};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn get_plain(base: &str, path: &str) -> (u16, String, String) {
    let r = reqwest::get(format!("{base}{path}")).await.expect("get");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.expect("body"))
}

#[tokio::test]
async fn openapi_and_docs_are_served_without_a_key() {
    let w = World::new();
    let base = w.daemon.base();
    let (status, ct, body) = get_plain(&base, "/openapi.json").await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let doc: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 40, "{} paths", paths.len());
    assert!(doc["paths"]["/v1/payment_intents/{id}/confirm"]["post"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["basicAuth"]["scheme"],
        "basic"
    );

    let (status, ct, page) = get_plain(&base, "/docs").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(page.contains("name=\"q\""), "a search box");
    for path in paths.keys() {
        assert!(page.contains(path.as_str()), "/docs lacks {path}");
    }
    let (_, _, found) = get_plain(&base, "/docs?q=refund").await;
    assert!(found.contains("/v1/refunds"));
    assert!(!found.contains("/v1/test_helpers/test_clocks"));
    let (status, _, hooks) = get_plain(&base, "/docs/webhooks").await;
    assert_eq!(status, 200);
    assert!(hooks.contains("payment_intent.succeeded"), "the catalogue");
    assert!(!hooks.contains("<!--catalogue-->"));
    let (status, _, _) = get_plain(&base, "/docs/no-such-guide").await;
    assert_eq!(status, 404);
}

/// Records each call under its operation id.
struct Recorder {
    api: Api,
    /// (method, OpenAPI path) -> operation id, from the daemon's own description.
    ids: BTreeMap<(String, String), String>,
    out: Map<String, Value>,
}

impl Recorder {
    async fn new(api: Api) -> Recorder {
        let doc = api.get("/openapi.json").await.json;
        let mut ids = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                ids.insert(
                    (method.to_uppercase(), path.clone()),
                    op["operationId"].as_str().expect("id").to_string(),
                );
            }
        }
        Recorder {
            api,
            ids,
            out: Map::new(),
        }
    }

    /// Call `method template` (`{id}` replaced by `id`) with `form` (the body of a POST, the
    /// query of a GET or DELETE) and keep the exchange.
    async fn call(&mut self, method: &str, template: &str, id: &str, form: &str) -> Resp {
        let path = template.replace("{id}", id);
        let r = match method {
            "POST" => self.api.post_form(&path, form).await,
            "GET" | "DELETE" => {
                let url = if form.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{form}")
                };
                if method == "GET" {
                    self.api.get(&url).await
                } else {
                    self.api.delete(&url).await
                }
            }
            other => panic!("method {other}"),
        };
        let op = self
            .ids
            .get(&(method.to_string(), template.to_string()))
            .unwrap_or_else(|| panic!("{method} {template} is not in /openapi.json"))
            .clone();
        let response = if r.json.is_null() {
            json!({"content_type": r.header("content-type"), "bytes": r.text.len()})
        } else {
            redact(r.json.clone())
        };
        let mut example = json!({
            "method": method,
            "path": if method == "POST" || form.is_empty() { path.clone() } else { format!("{path}?{form}") },
            "status": r.status,
            "response": response,
        });
        if method == "POST" && !form.is_empty() {
            example["form"] = json!(form);
        }
        self.out.insert(op, example);
        r
    }

    /// As [`call`], asserting a 200, and answering the body.
    async fn ok(&mut self, method: &str, template: &str, id: &str, form: &str) -> Value {
        let r = self.call(method, template, id, form).await;
        assert_eq!(r.status, 200, "{method} {template}: {}", r.text);
        r.json
    }
}

/// Signing secrets are shown as their prefix only.
fn redact(v: Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("whsec_") => Value::String("whsec_…".into()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, redact(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(redact).collect()),
        other => other,
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// What must stay the same between the committed examples and a fresh capture.
fn shape(example: &Value) -> Value {
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let resp = &example["response"];
    json!({
        "status": example["status"],
        "keys": keys(resp),
        "first": keys(&resp["data"][0]),
    })
}

#[tokio::test]
async fn examples_are_captured() {
    let w = World::new();
    let mut r = Recorder::new(w.api.clone()).await;

    // Customers and cards.
    let cus = r
        .ok(
            "POST",
            "/v1/customers",
            "",
            "email=alice%40example.com&name=Alice+Smith&metadata[ledger_id]=L-1",
        )
        .await;
    let cus = id(&cus);
    r.ok("GET", "/v1/customers", "", "limit=2").await;
    r.ok("GET", "/v1/customers/{id}", &cus, "").await;
    r.ok("POST", "/v1/customers/{id}", &cus, "phone=%2B447700900123")
        .await;
    let pm = r
        .ok(
            "POST",
            "/v1/payment_methods",
            "",
            &format!(
                "type=card&customer={cus}&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2030&card[cvc]=123"
            ),
        )
        .await;
    let pm = id(&pm);
    r.ok("GET", "/v1/customers/{id}/payment_methods", &cus, "")
        .await;
    r.ok("GET", "/v1/payment_methods", "", &format!("customer={cus}"))
        .await;
    r.ok("GET", "/v1/payment_methods/{id}", &pm, "").await;
    let pm2 = id(&w
        .api
        .post_form(
            "/v1/payment_methods",
            "type=card&card[number]=4111111111111111&card[exp_month]=12&card[exp_year]=2030&card[cvc]=123",
        )
        .await
        .json);
    r.ok(
        "POST",
        "/v1/payment_methods/{id}/attach",
        &pm2,
        &format!("customer={cus}"),
    )
    .await;
    r.ok("POST", "/v1/payment_methods/{id}/detach", &pm2, "")
        .await;
    r.ok(
        "POST",
        "/v1/customers/{id}",
        &cus,
        &format!("invoice_settings[default_payment_method]={pm}"),
    )
    .await;

    // Payments.
    let pi = r
        .ok(
            "POST",
            "/v1/payment_intents",
            "",
            &format!(
                "amount=2500&currency=gbp&customer={cus}&payment_method={pm}&confirm=true&description=Deposit"
            ),
        )
        .await;
    assert_eq!(pi["status"], "succeeded");
    let charge = pi["latest_charge"]
        .as_str()
        .expect("latest_charge")
        .to_string();
    let pi = id(&pi);
    r.ok("GET", "/v1/payment_intents", "", "limit=1").await;
    r.ok("GET", "/v1/payment_intents/{id}", &pi, "").await;
    let draft = id(&w
        .api
        .post_form(
            "/v1/payment_intents",
            &format!("amount=1200&currency=gbp&customer={cus}"),
        )
        .await
        .json);
    r.ok(
        "POST",
        "/v1/payment_intents/{id}",
        &draft,
        "description=Rent+for+May",
    )
    .await;
    r.ok(
        "POST",
        "/v1/payment_intents/{id}/confirm",
        &draft,
        &format!("payment_method={pm}"),
    )
    .await;
    let held = id(&w.api.pay(3000, &pm, "&capture_method=manual").await.json);
    r.ok(
        "POST",
        "/v1/payment_intents/{id}/capture",
        &held,
        "amount_to_capture=2000",
    )
    .await;
    let open = id(&w
        .api
        .post_form("/v1/payment_intents", "amount=900&currency=gbp")
        .await
        .json);
    r.ok(
        "POST",
        "/v1/payment_intents/{id}/cancel",
        &open,
        "cancellation_reason=requested_by_customer",
    )
    .await;
    let refund = r
        .ok(
            "POST",
            "/v1/refunds",
            "",
            &format!("payment_intent={pi}&amount=500"),
        )
        .await;
    r.ok("GET", "/v1/refunds", "", &format!("payment_intent={pi}"))
        .await;
    r.ok("GET", "/v1/refunds/{id}", &id(&refund), "").await;
    r.ok("GET", "/v1/charges", "", "limit=1").await;
    r.ok("GET", "/v1/charges/{id}", &charge, "").await;
    r.ok("GET", "/v1/balance", "", "").await;
    let txns = r.ok("GET", "/v1/balance_transactions", "", "limit=1").await;
    let txn = txns["data"][0]["id"]
        .as_str()
        .unwrap_or("txn_none")
        .to_string();
    r.call("GET", "/v1/balance_transactions/{id}", &txn, "")
        .await;
    let payouts = r.ok("GET", "/v1/payouts", "", "").await;
    let payout = payouts["data"][0]["id"]
        .as_str()
        .unwrap_or("po_none")
        .to_string();
    r.call("GET", "/v1/payouts/{id}", &payout, "").await;

    // Webhooks and events.
    let hook = r
        .ok(
            "POST",
            "/v1/webhook_endpoints",
            "",
            "url=http%3A%2F%2F127.0.0.1%3A9%2Fhooks&enabled_events[]=payment_intent.succeeded&enabled_events[]=invoice.paid",
        )
        .await;
    let hook = id(&hook);
    r.ok("GET", "/v1/webhook_endpoints", "", "").await;
    r.ok("GET", "/v1/webhook_endpoints/{id}", &hook, "").await;
    r.ok(
        "POST",
        "/v1/webhook_endpoints/{id}",
        &hook,
        "description=Orders+service",
    )
    .await;
    r.ok(
        "POST",
        "/v1/webhook_endpoints/{id}/roll_secret",
        &hook,
        "expires_in=1",
    )
    .await;
    let events = r
        .ok(
            "GET",
            "/v1/events",
            "",
            "type=payment_intent.succeeded&limit=1",
        )
        .await;
    let evt = events["data"][0]["id"]
        .as_str()
        .expect("an event")
        .to_string();
    r.ok("GET", "/v1/events/{id}", &evt, "").await;
    r.ok(
        "POST",
        "/v1/events/{id}/resend",
        &evt,
        &format!("webhook_endpoint={hook}"),
    )
    .await;
    // The resent delivery's attempt is recorded by the delivery loop: wait for it, so the
    // example (and its shape) does not depend on timing.
    let api = w.api.clone();
    let attempts = format!("/v1/events/{evt}/attempts");
    assert!(
        eventually(Duration::from_secs(20), || {
            let (api, attempts) = (api.clone(), attempts.clone());
            async move { api.get(&attempts).await.json["data"][0].is_object() }
        })
        .await,
        "no delivery attempt recorded"
    );
    r.ok("GET", "/v1/events/{id}/attempts", &evt, "").await;
    r.ok("GET", "/v1/webhook_endpoints/{id}/attempts", &hook, "")
        .await;

    // Catalogue.
    let product = id(&r
        .ok(
            "POST",
            "/v1/products",
            "",
            "name=Pro+plan&description=Monthly",
        )
        .await);
    r.ok("GET", "/v1/products", "", "active=true").await;
    r.ok("GET", "/v1/products/{id}", &product, "").await;
    r.ok("POST", "/v1/products/{id}", &product, "metadata[tier]=pro")
        .await;
    let price = id(&r
        .ok(
            "POST",
            "/v1/prices",
            "",
            &format!("product={product}&currency=gbp&unit_amount=1500&recurring[interval]=month"),
        )
        .await);
    r.ok("GET", "/v1/prices", "", &format!("product={product}"))
        .await;
    r.ok("GET", "/v1/prices/{id}", &price, "").await;
    r.ok("POST", "/v1/prices/{id}", &price, "nickname=Pro+monthly")
        .await;
    let spare = id(&w.api.post_form("/v1/products", "name=Spare").await.json);
    r.ok("DELETE", "/v1/products/{id}", &spare, "").await;
    let rate = id(&r
        .ok(
            "POST",
            "/v1/tax_rates",
            "",
            "display_name=VAT&percentage=20&inclusive=false&country=GB",
        )
        .await);
    r.ok("GET", "/v1/tax_rates", "", "").await;
    r.ok("GET", "/v1/tax_rates/{id}", &rate, "").await;
    r.ok("POST", "/v1/tax_rates/{id}", &rate, "display_name=UK+VAT")
        .await;

    // Invoices.
    let item = id(&r
        .ok(
            "POST",
            "/v1/invoiceitems",
            "",
            &format!("customer={cus}&amount=4000&currency=gbp&description=Inventory+check"),
        )
        .await);
    r.ok("GET", "/v1/invoiceitems", "", &format!("customer={cus}"))
        .await;
    r.ok("GET", "/v1/invoiceitems/{id}", &item, "").await;
    let inv = id(&r
        .ok("POST", "/v1/invoices", "", &format!("customer={cus}"))
        .await);
    r.ok("GET", "/v1/invoices", "", &format!("customer={cus}"))
        .await;
    r.ok("GET", "/v1/invoices/{id}", &inv, "").await;
    r.ok("GET", "/v1/invoices/{id}/lines", &inv, "").await;
    r.ok("POST", "/v1/invoices/{id}/finalize", &inv, "").await;
    r.ok(
        "POST",
        "/v1/invoices/{id}/pay",
        &inv,
        &format!("payment_method={pm}"),
    )
    .await;
    r.ok("GET", "/v1/invoices/{id}/pdf", &inv, "").await;
    for (action, template) in [
        ("void", "/v1/invoices/{id}/void"),
        ("uncollectible", "/v1/invoices/{id}/mark_uncollectible"),
    ] {
        w.api
            .post_form(
                "/v1/invoiceitems",
                &format!("customer={cus}&amount=100&currency=gbp&description={action}"),
            )
            .await;
        let other = id(&w
            .api
            .post_form(
                "/v1/invoices",
                &format!("customer={cus}&collection_method=send_invoice&days_until_due=30"),
            )
            .await
            .json);
        w.api
            .post_form(&format!("/v1/invoices/{other}/finalize"), "")
            .await;
        r.ok("POST", template, &other, "").await;
    }
    w.api
        .post_form(
            "/v1/invoiceitems",
            &format!("customer={cus}&amount=100&currency=gbp"),
        )
        .await;
    let draft_inv = id(&w
        .api
        .post_form("/v1/invoices", &format!("customer={cus}"))
        .await
        .json);
    r.ok("DELETE", "/v1/invoices/{id}", &draft_inv, "").await;

    // Subscriptions and test clocks.
    let clock = id(&r
        .ok(
            "POST",
            "/v1/test_helpers/test_clocks",
            "",
            "frozen_time=1767225600&name=Renewals",
        )
        .await);
    r.ok("GET", "/v1/test_helpers/test_clocks", "", "").await;
    r.ok("GET", "/v1/test_helpers/test_clocks/{id}", &clock, "")
        .await;
    let clocked = id(&w
        .api
        .post_form(
            "/v1/customers",
            &format!("email=bob%40example.com&test_clock={clock}"),
        )
        .await
        .json);
    let clocked_pm = w
        .api
        .card("4242424242424242", 12, 2035, Some(&clocked))
        .await;
    let sub = id(&r
        .ok(
            "POST",
            "/v1/subscriptions",
            "",
            &format!(
                "customer={clocked}&items[0][price]={price}&default_payment_method={clocked_pm}"
            ),
        )
        .await);
    r.ok(
        "GET",
        "/v1/subscriptions",
        "",
        &format!("customer={clocked}"),
    )
    .await;
    r.ok("GET", "/v1/subscriptions/{id}", &sub, "").await;
    r.ok(
        "POST",
        "/v1/test_helpers/test_clocks/{id}/advance",
        &clock,
        "frozen_time=1769990400",
    )
    .await;
    r.ok(
        "POST",
        "/v1/subscriptions/{id}",
        &sub,
        "cancel_at_period_end=true",
    )
    .await;
    r.ok("DELETE", "/v1/subscriptions/{id}", &sub, "").await;
    r.ok("DELETE", "/v1/test_helpers/test_clocks/{id}", &clock, "")
        .await;

    // Checkout and the portal.
    let cs = id(&r
        .ok(
            "POST",
            "/v1/checkout/sessions",
            "",
            "mode=payment&line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=2500&line_items[0][price_data][product_data][name]=Holding+deposit&line_items[0][quantity]=1&success_url=https%3A%2F%2Fshop.example%2Fpaid&cancel_url=https%3A%2F%2Fshop.example%2Fcancelled",
        )
        .await);
    r.ok("GET", "/v1/checkout/sessions", "", "status=open")
        .await;
    r.ok("GET", "/v1/checkout/sessions/{id}", &cs, "").await;
    r.ok("GET", "/v1/checkout/sessions/{id}/line_items", &cs, "")
        .await;
    r.ok("POST", "/v1/checkout/sessions/{id}/expire", &cs, "")
        .await;
    let conf = id(&r
        .ok(
            "POST",
            "/v1/billing_portal/configurations",
            "",
            "features[invoice_history][enabled]=true&features[payment_method_update][enabled]=true&features[subscription_cancel][enabled]=true&features[subscription_cancel][mode]=at_period_end",
        )
        .await);
    r.ok("GET", "/v1/billing_portal/configurations", "", "")
        .await;
    r.ok("GET", "/v1/billing_portal/configurations/{id}", &conf, "")
        .await;
    r.ok(
        "POST",
        "/v1/billing_portal/configurations/{id}",
        &conf,
        "business_profile[headline]=Harbour+Lettings",
    )
    .await;
    r.ok(
        "POST",
        "/v1/billing_portal/sessions",
        "",
        &format!("customer={cus}&return_url=https%3A%2F%2Fshop.example%2Faccount"),
    )
    .await;
    r.ok("DELETE", "/v1/webhook_endpoints/{id}", &hook, "")
        .await;
    r.ok("DELETE", "/v1/customers/{id}", &cus, "").await;

    // Every route of the description has an example.
    let missing: Vec<&String> = r
        .ids
        .values()
        .filter(|op| !r.out.contains_key(*op))
        .collect();
    assert!(missing.is_empty(), "routes without an example: {missing:?}");

    let fresh = Value::Object(r.out.clone());
    let text = serde_json::to_string_pretty(&fresh).expect("JSON") + "\n";
    let artifacts = repo().join("target/test-artifacts/docs");
    std::fs::create_dir_all(&artifacts).expect("artifacts");
    std::fs::write(artifacts.join("examples.json"), &text).expect("write");
    let committed_path = repo().join("docs/developer/examples.json");
    if std::env::var("CALMONY_WRITE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&committed_path, &text).expect("write examples");
        return;
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(&committed_path).expect("examples"))
            .expect("JSON");
    let mut drifted = Vec::new();
    for (op, example) in &r.out {
        if shape(&committed[op]) != shape(example) {
            drifted.push(format!(
                "{op}: committed {} / now {}",
                shape(&committed[op]),
                shape(example)
            ));
        }
    }
    assert!(
        drifted.is_empty(),
        "docs/developer/examples.json no longer matches the daemon's answers (write it again \
         with CALMONY_WRITE_DOCS=1 and commit it):\n{}",
        drifted.join("\n")
    );
}

/// `/docs` in headless Chromium on a phone and a desktop; the screenshots are committed as
/// `docs/developer/docs-{phone,desktop}.png` when `CALMONY_WRITE_DOCS=1`.
#[tokio::test]
async fn the_docs_in_chromium_on_a_phone_and_a_desktop() {
    let w = World::new();
    let base = w.daemon.base();
    for (device, width, height) in [("phone", 390, 844), ("desktop", 1280, 800)] {
        let b = Browser::start(width, height).await;
        b.client
            .goto(&format!("{base}/docs"))
            .await
            .expect("open /docs");
        let page = b.shows("postV1Customers").await;
        assert!(page.contains("Calmony Pay"));
        b.screenshot_in("docs", &format!("{device}-reference"))
            .await;
        // The search box works without a script: a GET form.
        b.client
            .find(Locator::Css("input[name=q]"))
            .await
            .expect("the search box")
            .send_keys("refund\n")
            .await
            .expect("type");
        let page = b.shows("postV1Refunds").await;
        assert!(
            !page.contains("id=\"postV1Customers\""),
            "the search filters"
        );
        b.screenshot_in("docs", &format!("{device}-search")).await;
        b.client
            .goto(&format!("{base}/docs/webhooks"))
            .await
            .expect("open a guide");
        b.shows("guide").await;
        b.screenshot_in("docs", &format!("{device}-webhooks")).await;
        b.stop().await;
    }
    if std::env::var("CALMONY_WRITE_DOCS").is_ok_and(|v| v == "1") {
        let from = repo().join("target/test-artifacts/docs");
        let to = repo().join("docs/developer");
        for name in [
            "phone-reference",
            "desktop-reference",
            "phone-search",
            "desktop-search",
            "phone-webhooks",
            "desktop-webhooks",
        ] {
            std::fs::copy(
                from.join(format!("{name}.png")),
                to.join(format!("{name}.png")),
            )
            .expect("copy screenshot");
        }
    }
}
