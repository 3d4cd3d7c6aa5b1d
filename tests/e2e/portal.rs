//! The customer portal: `/v1/billing_portal/sessions` and `…/configurations` in Stripe's
//! shapes, the page a session's `url` opens (by its token, then a cookie), what the page may
//! reach (one customer of one project, nothing else), the features a configuration turns
//! off refused by the page itself, the official `stripe` Python library, and the whole page in
//! headless Chromium on a phone and a desktop: an invoice PDF, cancel at period end and
//! resume, and a past-due subscription recovered by updating the card.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Api, World, form};

const DAY: i64 = 86_400;
/// 2026-01-15 09:00 UTC.
const T0: i64 = 1_768_467_600;

/// A browser without a browser: keeps the portal cookie, follows no redirects.
struct Visitor {
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Visitor {
    fn new() -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let rb = match &self.cookie {
            Some(c) => rb.header("cookie", c),
            None => rb,
        };
        let r = rb.send().await.expect("request");
        if let Some(set) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = set.split(';').next().map(str::to_string);
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: r.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let rb = self.client.get(url);
        self.send(rb).await
    }

    async fn post(&mut self, url: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let rb = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(rb).await
    }
}

fn csrf_of(page: &str) -> String {
    form(page, "update-card")
        .field("csrf")
        .expect("csrf field")
        .to_string()
}

struct Setup {
    clock: String,
    customer: String,
    sub: String,
    period_end: i64,
}

/// A customer on a test clock with a monthly £10 subscription paid by a good card.
async fn subscribed(api: &Api, email: &str) -> Setup {
    let clock = api
        .post_form(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={T0}&name=portal"),
        )
        .await;
    assert_eq!(clock.status, 200, "{}", clock.text);
    let clock = clock.json["id"].as_str().expect("clock").to_string();
    let cus = api
        .post_form(
            "/v1/customers",
            &format!(
                "name=Jo+Tenant&email={}&test_clock={clock}&address[line1]=Flat+2%2C+12+Elm+Road\
                 &address[city]=Bristol&address[postal_code]=BS1+4XX&address[country]=GB",
                email.replace('@', "%40")
            ),
        )
        .await;
    assert_eq!(cus.status, 200, "{}", cus.text);
    let customer = cus.json["id"].as_str().expect("cus").to_string();
    let card = api
        .card("4242424242424242", 12, 2035, Some(&customer))
        .await;
    let r = api
        .post_form(
            &format!("/v1/customers/{customer}"),
            &format!("invoice_settings[default_payment_method]={card}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let price = api
        .post_form(
            "/v1/prices",
            "currency=gbp&unit_amount=1000&recurring[interval]=month&product_data[name]=Gold+plan",
        )
        .await;
    assert_eq!(price.status, 200, "{}", price.text);
    let sub = api
        .post_form(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={}&default_payment_method={card}",
                price.json["id"].as_str().expect("price")
            ),
        )
        .await;
    assert_eq!(sub.json["status"], "active", "{}", sub.text);
    Setup {
        clock,
        customer,
        sub: sub.json["id"].as_str().expect("sub").to_string(),
        period_end: sub.json["current_period_end"].as_i64().expect("end"),
    }
}

async fn advance(api: &Api, clock: &str, to: i64) {
    let r = api
        .post_form(
            &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
            &format!("frozen_time={to}"),
        )
        .await;
    assert_eq!(r.status, 200, "advance: {}", r.text);
}

async fn portal_session(api: &Api, customer: &str, extra: &str) -> Value {
    let r = api
        .post_form(
            "/v1/billing_portal/sessions",
            &format!(
                "customer={customer}&return_url=https%3A%2F%2Fharbour.example%2Faccount{extra}"
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

/// Opens the session's link in `v`: the cookie is set and the page answers.
async fn open(w: &World, v: &mut Visitor, s: &Value) -> String {
    let url = s["url"].as_str().expect("url");
    let opened = v.get(url).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    assert!(v.cookie.is_some(), "the link sets the cookie");
    let to = opened.location.expect("location");
    let page_url = format!("{}{}", w.daemon.base(), to.split('#').next().unwrap_or(""));
    let page = v.get(&page_url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

#[tokio::test]
async fn sessions_and_configurations_in_stripe_s_shapes_and_their_refusals() {
    let w = World::new();
    let api = &w.api;
    let cus = api.customer().await;
    // Before any configuration: the built-in defaults.
    let s = portal_session(api, &cus, "").await;
    assert_eq!(s["object"], "billing_portal.session");
    assert!(
        s["id"].as_str().is_some_and(|i| i.starts_with("bps_")),
        "{s}"
    );
    assert_eq!(s["customer"], cus.as_str());
    assert_eq!(s["return_url"], "https://harbour.example/account");
    assert_eq!(s["livemode"], false);
    let created = s["created"].as_i64().expect("created");
    assert_eq!(s["expires_at"].as_i64(), Some(created + 300));
    let url = s["url"].as_str().expect("url");
    let token = url.rsplit('/').next().expect("token");
    assert!(token.len() >= 43, "a 256-bit token: {url}");
    // The token is never kept: not in the session.created event.
    let ev = api
        .get("/v1/events?type=billing_portal.session.created")
        .await;
    let obj = &ev.json["data"][0]["data"]["object"];
    assert_eq!(obj["id"], s["id"]);
    assert!(!ev.text.contains(token), "{}", ev.text);
    // ... nor anywhere in Redis.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut w.redis.conn())
        .expect("KEYS");
    let mut c = w.redis.conn();
    for k in keys.iter().filter(|k| k.contains(":obj:bps_")) {
        let dump: Vec<String> = redis::cmd("HVALS").arg(k).query(&mut c).unwrap_or_default();
        assert!(dump.iter().all(|v| !v.contains(token)), "{k}: {dump:?}");
    }

    // A flow that opens on the card, then confirms on the page.
    let f = portal_session(
        api,
        &cus,
        "&flow_data[type]=payment_method_update\
         &flow_data[after_completion][type]=hosted_confirmation\
         &flow_data[after_completion][hosted_confirmation][custom_message]=Thanks%21",
    )
    .await;
    assert_eq!(f["flow"]["type"], "payment_method_update", "{f}");
    assert_eq!(
        f["flow"]["after_completion"]["hosted_confirmation"]["custom_message"],
        "Thanks!"
    );
    let mut v = Visitor::new();
    let opened = v.get(f["url"].as_str().expect("url")).await;
    assert_eq!(opened.status, 303);
    assert!(
        opened
            .location
            .as_deref()
            .is_some_and(|l| l.ends_with("#payment-method")),
        "{:?}",
        opened.location
    );

    // Configurations: create, retrieve, update, list.
    let price = api
        .post_form(
            "/v1/prices",
            "currency=gbp&unit_amount=2000&recurring[interval]=month&product_data[name]=Silver",
        )
        .await;
    let price_id = price.json["id"].as_str().expect("price");
    let product = price.json["product"].as_str().expect("product");
    let c = api
        .post_form(
            "/v1/billing_portal/configurations",
            &format!(
                "business_profile[headline]=Harbour+Lettings+billing\
                 &features[invoice_history][enabled]=true\
                 &features[payment_method_update][enabled]=true\
                 &features[subscription_cancel][enabled]=true\
                 &features[subscription_cancel][mode]=at_period_end\
                 &features[subscription_cancel][cancellation_reason][enabled]=true\
                 &features[subscription_cancel][cancellation_reason][options][]=too_expensive\
                 &features[subscription_cancel][cancellation_reason][options][]=unused\
                 &features[subscription_update][enabled]=true\
                 &features[subscription_update][default_allowed_updates][]=price\
                 &features[subscription_update][proration_behavior]=create_prorations\
                 &features[subscription_update][products][0][product]={product}\
                 &features[subscription_update][products][0][prices][]={price_id}\
                 &features[customer_update][enabled]=true\
                 &features[customer_update][allowed_updates][]=email\
                 &features[customer_update][allowed_updates][]=address\
                 &metadata[team]=billing"
            ),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.json["object"], "billing_portal.configuration");
    assert_eq!(c.json["is_default"], true, "the first is the default");
    assert_eq!(c.json["active"], true);
    assert_eq!(
        c.json["features"]["subscription_cancel"]["cancellation_reason"]["options"],
        serde_json::json!(["too_expensive", "unused"])
    );
    assert_eq!(c.json["login_page"]["enabled"], false);
    let cid = c.json["id"].as_str().expect("id").to_string();
    assert!(cid.starts_with("bpc_"));
    let got = api
        .get(&format!("/v1/billing_portal/configurations/{cid}"))
        .await;
    assert_eq!(got.json, c.json);
    let up = api
        .post_form(
            &format!("/v1/billing_portal/configurations/{cid}"),
            "features[payment_method_update][enabled]=false&default_return_url=https%3A%2F%2Fharbour.example%2F",
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.text);
    assert_eq!(
        up.json["features"]["payment_method_update"]["enabled"],
        false
    );
    assert_eq!(up.json["default_return_url"], "https://harbour.example/");
    let second = api
        .post_form(
            "/v1/billing_portal/configurations",
            "features[invoice_history][enabled]=true",
        )
        .await;
    assert_eq!(second.json["is_default"], false, "{}", second.text);
    let all = api.get("/v1/billing_portal/configurations").await;
    assert_eq!(
        all.json["data"].as_array().map(Vec::len),
        Some(2),
        "{}",
        all.text
    );
    let defaults = api
        .get("/v1/billing_portal/configurations?is_default=true")
        .await;
    assert_eq!(
        defaults.json["data"][0]["id"],
        cid.as_str(),
        "{}",
        defaults.text
    );
    assert_eq!(defaults.json["data"].as_array().map(Vec::len), Some(1));
    let events = api
        .get("/v1/events?type=billing_portal.configuration.updated")
        .await;
    assert_eq!(
        events.json["data"][0]["data"]["previous_attributes"]["features"]["payment_method_update"]
            ["enabled"],
        true,
        "{}",
        events.text
    );

    // A session on a configuration; without return_url, the configuration's default.
    let s = portal_session(api, &cus, &format!("&configuration={cid}")).await;
    assert_eq!(s["configuration"], cid.as_str());
    let r = api
        .post_form(
            "/v1/billing_portal/sessions",
            &format!("customer={cus}&configuration={cid}"),
        )
        .await;
    assert_eq!(
        r.json["return_url"], "https://harbour.example/",
        "{}",
        r.text
    );
    // Without a configuration: the project's default (the first made), here the same.
    let r = api
        .post_form("/v1/billing_portal/sessions", &format!("customer={cus}"))
        .await;
    assert_eq!(r.json["configuration"], cid.as_str(), "{}", r.text);

    // Every refusal is a 400 naming its parameter.
    let other = api.customer().await;
    let sub_price = price_id.to_string();
    let card = api.card("4242424242424242", 12, 2035, Some(&other)).await;
    let others_sub = api
        .post_form(
            "/v1/subscriptions",
            &format!("customer={other}&items[0][price]={sub_price}&default_payment_method={card}"),
        )
        .await;
    let others_sub = others_sub.json["id"].as_str().expect("sub").to_string();
    for (body, param) in [
        ("return_url=https%3A%2F%2Fh.example".to_string(), "customer"),
        (format!("customer={cus}&colour=red"), "colour"),
        (
            format!("customer={cus}&return_url=javascript%3Aalert(1)"),
            "return_url",
        ),
        (
            format!("customer={cus}&configuration=bpc_nope"),
            "configuration",
        ),
        ("customer=cus_nope".to_string(), "customer"),
        (
            format!(
                "customer={cus}&flow_data[type]=subscription_cancel&flow_data[subscription_cancel][subscription]={others_sub}"
            ),
            "flow_data[subscription_cancel][subscription]",
        ),
        (
            // The configuration turned the card off: its flow is refused.
            format!("customer={cus}&configuration={cid}&flow_data[type]=payment_method_update"),
            "flow_data[type]",
        ),
        (
            format!("customer={cus}&flow_data[type]=subscription_update"),
            "flow_data[type]",
        ),
    ] {
        let r = api.post_form("/v1/billing_portal/sessions", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.err("param"), param, "{body}: {}", r.text);
    }
    for (body, param) in [
        ("".to_string(), "features"),
        (
            "features[customer_update][enabled]=true&features[customer_update][allowed_updates][]=tax_id".to_string(),
            "features[customer_update][allowed_updates][0]",
        ),
        (
            "features[invoice_history][enabled]=true&login_page[enabled]=true".to_string(),
            "login_page[enabled]",
        ),
        (
            "features[subscription_update][enabled]=true&features[subscription_update][default_allowed_updates][]=price\
             &features[subscription_update][products][0][product]=prod_nope&features[subscription_update][products][0][prices][]=price_nope".to_string(),
            "features[subscription_update][products]",
        ),
    ] {
        let r = api
            .post_form("/v1/billing_portal/configurations", &body)
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.err("param"), param, "{body}: {}", r.text);
    }
    assert_eq!(
        api.get("/v1/billing_portal/configurations/bpc_nope")
            .await
            .status,
        404
    );
    let r = api
        .post_form(
            &format!("/v1/billing_portal/configurations/{cid}"),
            "active=false",
        )
        .await;
    assert_eq!((r.status, r.err("param")), (400, "active"), "{}", r.text);
    // Another one can be switched off, and then opens no session.
    let other_cfg = second.json["id"].as_str().expect("id");
    let r = api
        .post_form(
            &format!("/v1/billing_portal/configurations/{other_cfg}"),
            "active=false",
        )
        .await;
    assert_eq!(r.json["active"], false, "{}", r.text);
    let r = api
        .post_form(
            "/v1/billing_portal/sessions",
            &format!("customer={cus}&configuration={other_cfg}"),
        )
        .await;
    assert_eq!(
        (r.status, r.err("param")),
        (400, "configuration"),
        "{}",
        r.text
    );
}

/// One customer's link reaches that customer's page and nothing else: not another
/// customer's subscription or invoice, not another project's session; forms need the
/// browser's CSRF token; a link is dead after five minutes and the cookie after an hour.
#[tokio::test]
async fn a_session_sees_one_customer_only_and_expires() {
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let api = &w.api;
    let a = subscribed(api, "jo@tenant.example").await;
    let b = subscribed(api, "sam@tenant.example").await;
    let b_invoice = api
        .get(&format!("/v1/invoices?customer={}", b.customer))
        .await
        .json["data"][0]["id"]
        .as_str()
        .expect("b's invoice")
        .to_string();
    let a_invoice = api
        .get(&format!("/v1/invoices?customer={}", a.customer))
        .await
        .json["data"][0]["id"]
        .as_str()
        .expect("a's invoice")
        .to_string();
    let vat = api
        .post_form(
            "/v1/tax_rates",
            "display_name=VAT&percentage=20&inclusive=false&country=GB",
        )
        .await;
    assert_eq!(vat.status, 200, "{}", vat.text);
    let r = api
        .post_form(
            &format!("/v1/subscriptions/{}", a.sub),
            &format!(
                "default_tax_rates[]={}",
                vat.json["id"].as_str().expect("id")
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = portal_session(api, &a.customer, "").await;
    let url = s["url"].as_str().expect("url").to_string();
    let page_url = url.split("/t/").next().expect("page").to_string();

    // Without the cookie the page is an expired-link page, never the customer's.
    let mut stranger = Visitor::new();
    let p = stranger.get(&page_url).await;
    assert_eq!(p.status, 410, "{}", p.body);
    assert!(p.body.contains("This billing link has expired") && !p.body.contains("jo@tenant"));
    // A wrong token opens nothing.
    let p = stranger
        .get(&format!("{page_url}/t/{}", "A".repeat(43)))
        .await;
    assert_eq!(p.status, 410);
    assert!(stranger.cookie.is_none());

    let mut v = Visitor::new();
    let page = open(&w, &mut v, &s).await;
    assert!(page.contains("jo@tenant.example"), "{page}");
    assert!(!page.contains("sam@tenant.example"));
    assert!(page.contains(&format!("sub-{}", a.sub)));
    assert!(!page.contains(&b.sub) && !page.contains(&b_invoice));
    assert!(
        page.contains("Renews on") && page.contains("for £12.00 including tax"),
        "the renewal with its VAT: {page}"
    );
    let csrf = csrf_of(&page);

    // Another customer's ids in this session's URLs reach nothing.
    let p = v
        .post(
            &format!("{page_url}/subscriptions/{}/cancel", b.sub),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 404, "{}", p.body);
    let p = v
        .get(&format!("{page_url}/subscriptions/{}/cancel", b.sub))
        .await;
    assert_eq!(p.status, 404);
    let p = v.get(&format!("{page_url}/invoices/{b_invoice}/pdf")).await;
    assert_eq!(p.status, 404);
    assert_eq!(
        api.get(&format!("/v1/subscriptions/{}", b.sub)).await.json["cancel_at_period_end"],
        false
    );
    // This customer's invoice PDF: a redirect to its PDF.
    let p = v.get(&format!("{page_url}/invoices/{a_invoice}/pdf")).await;
    assert_eq!(p.status, 303);
    let pdf = reqwest::get(p.location.expect("pdf link"))
        .await
        .expect("pdf");
    assert_eq!(
        pdf.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    assert!(pdf.bytes().await.expect("bytes").starts_with(b"%PDF"));
    // The same session under another project, or the cookie sent to another session.
    let other_api = w.daemon.api(&w.daemon.key("other", "test"));
    let stranger_cus = other_api.customer().await;
    let theirs = portal_session(&other_api, &stranger_cus, "").await;
    let their_page = theirs["url"]
        .as_str()
        .expect("url")
        .split("/t/")
        .next()
        .expect("p");
    let segs: Vec<&str> = page_url.split('/').collect();
    let their_segs: Vec<&str> = their_page.split('/').collect();
    let (ours, their_project, our_sid) = (segs[4], their_segs[4], segs[6]);
    assert_ne!(ours, their_project);
    // This session's id under the other project, or in live mode: no such session.
    let moved = page_url.replacen(&format!("/{ours}/"), &format!("/{their_project}/"), 1);
    assert_eq!(v.get(&moved).await.status, 404);
    let live = page_url.replacen("/test/", "/live/", 1);
    assert_eq!(v.get(&live).await.status, 404);
    // The other project's session with this browser's cookie: not opened.
    let p = v.get(their_page).await;
    assert_eq!(p.status, 410, "{}", p.body);
    assert!(!p.body.contains("alice@example.com"));
    let _ = our_sid;
    let s2 = portal_session(api, &b.customer, "").await;
    let b_page = s2["url"]
        .as_str()
        .expect("url")
        .split("/t/")
        .next()
        .expect("page")
        .to_string();
    let p = v.get(&b_page).await;
    assert_eq!(p.status, 410, "A's cookie does not open B's session");

    // A form without this browser's token changes nothing.
    for token in ["", "0000", &"f".repeat(64)] {
        let p = v
            .post(
                &format!("{page_url}/subscriptions/{}/cancel", a.sub),
                &[("csrf", token)],
            )
            .await;
        assert_eq!(p.status, 403, "{}", p.body);
    }
    assert_eq!(
        api.get(&format!("/v1/subscriptions/{}", a.sub)).await.json["cancel_at_period_end"],
        false
    );
    // With it: cancel at period end, with a reason, then resume; each the API's events.
    let p = v
        .post(
            &format!("{page_url}/subscriptions/{}/cancel", a.sub),
            &[("csrf", &csrf), ("feedback", "too_expensive")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let sub = api.get(&format!("/v1/subscriptions/{}", a.sub)).await;
    assert_eq!(sub.json["cancel_at_period_end"], true);
    assert_eq!(sub.json["status"], "active");
    assert_eq!(
        sub.json["cancellation_details"]["feedback"], "too_expensive",
        "{}",
        sub.text
    );
    let p = v
        .post(
            &format!("{page_url}/subscriptions/{}/resume", a.sub),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let sub = api.get(&format!("/v1/subscriptions/{}", a.sub)).await;
    assert_eq!(sub.json["cancel_at_period_end"], false);
    assert_eq!(sub.json["cancellation_details"]["feedback"], Value::Null);
    let evs = api
        .get("/v1/events?type=customer.subscription.updated&limit=10")
        .await;
    assert!(
        evs.json["data"].as_array().map_or(0, Vec::len) >= 2,
        "{}",
        evs.text
    );
    // A reason the configuration does not list is refused by the page.
    let p = v
        .post(
            &format!("{page_url}/subscriptions/{}/cancel", a.sub),
            &[("csrf", &csrf), ("feedback", "because")],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    // The customer's details: the allowed ones change (customer.updated).
    let p = v
        .post(
            &format!("{page_url}/details"),
            &[
                ("csrf", &csrf),
                ("email", "jo.new@tenant.example"),
                ("name", "Jo T"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let c = api.get(&format!("/v1/customers/{}", a.customer)).await;
    assert_eq!(c.json["email"], "jo.new@tenant.example");

    // A feature the configuration turns off is refused by the page, not just hidden.
    let cfg = api
        .post_form(
            "/v1/billing_portal/configurations",
            "features[invoice_history][enabled]=true&features[customer_update][enabled]=true\
             &features[customer_update][allowed_updates][]=email",
        )
        .await;
    assert_eq!(cfg.status, 200, "{}", cfg.text);
    let locked = portal_session(
        api,
        &a.customer,
        &format!("&configuration={}", cfg.json["id"].as_str().expect("id")),
    )
    .await;
    let mut v2 = Visitor::new();
    let page = open(&w, &mut v2, &locked).await;
    assert!(!page.contains("id=\"update-card\"") && !page.contains("Cancel subscription"));
    let csrf2 = {
        let start = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
        page[start..start + 64].to_string()
    };
    let locked_page = locked["url"]
        .as_str()
        .expect("url")
        .split("/t/")
        .next()
        .expect("p")
        .to_string();
    for (path, fields) in [
        (
            format!("{locked_page}/card"),
            vec![("csrf", csrf2.as_str())],
        ),
        (
            format!("{locked_page}/subscriptions/{}/cancel", a.sub),
            vec![("csrf", csrf2.as_str())],
        ),
        (
            format!("{locked_page}/details"),
            vec![("csrf", csrf2.as_str()), ("name", "Mallory")],
        ),
    ] {
        let p = v2.post(&path, &fields).await;
        assert_eq!(p.status, 400, "{path}: {}", p.body);
        assert!(p.body.contains("id=\"problem\""), "{}", p.body);
    }
    assert_eq!(
        api.get(&format!("/v1/subscriptions/{}", a.sub)).await.json["cancel_at_period_end"],
        false
    );
    assert_eq!(
        api.get(&format!("/v1/customers/{}", a.customer)).await.json["name"],
        "Jo T"
    );

    // Five minutes on, a new session's link is dead; an hour on, the cookie is too.
    let late = portal_session(api, &a.customer, "").await;
    let (status, _, stderr) = w.daemon.cli(&["clock", "advance", "--seconds", "301"]);
    assert!(status.success(), "{stderr}");
    // The daemon follows the clock every 50 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut v3 = Visitor::new();
    let p = v3.get(late["url"].as_str().expect("url")).await;
    assert_eq!(p.status, 410, "{}", p.body);
    assert!(
        p.body.contains("harbour.example/account"),
        "a way back: {}",
        p.body
    );
    assert_eq!(
        v.get(&page_url).await.status,
        200,
        "the browser's hour goes on"
    );
    let (status, _, stderr) = w.daemon.cli(&["clock", "advance", "--seconds", "3600"]);
    assert!(status.success(), "{stderr}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(v.get(&page_url).await.status, 410);
    let _ = (a.clock, a.period_end, b.clock, b.period_end, DAY);
}

/// The official `stripe` Python library makes a portal link.
#[tokio::test]
async fn stripe_python_creates_a_billing_portal_session() {
    let w = World::new();
    let cus = w.api.customer().await;
    let key = w.daemon.key("acme", "test");
    let python = std::env::var("CALMONY_STRIPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, stripe\n\
             stripe.api_key = sys.argv[1]\n\
             stripe.api_base = sys.argv[2]\n\
             s = stripe.billing_portal.Session.create(customer=sys.argv[3], return_url='https://harbour.example/account')\n\
             print(s.id, s.object, s.customer, s.url)",
            &key,
            &w.daemon.base(),
            &cus,
        ])
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parts: Vec<&str> = stdout.split_whitespace().collect();
    assert!(parts[0].starts_with("bps_"), "{stdout}");
    assert_eq!(parts[1], "billing_portal.session");
    assert_eq!(parts[2], cus);
    // The link it answered opens the page.
    let mut v = Visitor::new();
    let opened = v.get(parts[3]).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
}

/// The page in headless Chromium, on a phone and a desktop: a renewal failed on a declining
/// card and the subscription went past due; the customer opens the link, downloads an
/// invoice PDF, updates the card through the hosted card page (the invoice is paid and the
/// subscription is active again), then cancels at period end and resumes. Screenshots go to
/// `target/test-artifacts/portal/` (the README's `docs/portal/`).
#[tokio::test]
async fn the_portal_in_chromium_on_a_phone_and_a_desktop() {
    use crate::browser::{Browser, fill_card, lands_on};
    let w = World::new();
    let (status, _, stderr) = w.daemon.cli(&[
        "projects",
        "update",
        "acme",
        "--display-name",
        "Harbour Lettings Ltd",
        "--support-email",
        "help@harbourlettings.co.uk",
        "--address",
        "12 Quay Street, Bristol, BS1 4XX",
        "--vat-number",
        "GB 123 4567 89",
        "--brand-color",
        "#0b6e4f",
    ]);
    assert!(status.success(), "{stderr}");
    let api = &w.api;
    for (device, width, height) in [("phone", 390, 844), ("desktop", 1280, 800)] {
        let s = subscribed(api, &format!("jo.{device}@tenant.example")).await;
        // The card starts failing; the renewal and its three retries fail: past due.
        let bad = api
            .card("4000000000000341", 12, 2035, Some(&s.customer))
            .await;
        for path in [
            format!("/v1/subscriptions/{}", s.sub),
            format!("/v1/customers/{}", s.customer),
        ] {
            let body = if path.contains("/customers/") {
                format!("invoice_settings[default_payment_method]={bad}")
            } else {
                format!("default_payment_method={bad}")
            };
            let r = api.post_form(&path, &body).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        for at in [
            s.period_end + 60,
            s.period_end + 60 + DAY + 60,
            s.period_end + 60 + 2 * DAY + 60,
            s.period_end + 60 + 3 * DAY + 60,
        ] {
            advance(api, &s.clock, at).await;
        }
        let sub = api.get(&format!("/v1/subscriptions/{}", s.sub)).await;
        assert_eq!(sub.json["status"], "past_due", "{}", sub.text);
        let overdue = sub.json["latest_invoice"]
            .as_str()
            .expect("invoice")
            .to_string();
        assert_eq!(
            api.get(&format!("/v1/invoices/{overdue}")).await.json["status"],
            "open"
        );

        let link = portal_session(api, &s.customer, "").await;
        let b = Browser::start(width, height).await;
        b.client
            .goto(link["url"].as_str().expect("url"))
            .await
            .expect("open the link");
        let page = b.shows("portal-title").await;
        for needle in [
            "Harbour Lettings Ltd",
            "Gold plan",
            "did not go through",
            "Payment overdue",
            "Invoice history",
            "0341",
        ] {
            assert!(page.contains(needle), "{needle:?}:\n{page}");
        }
        b.screenshot_in("portal", &format!("{device}-1-past-due"))
            .await;

        // An invoice PDF, fetched by the page's own link in the browser (with its cookie).
        let first_invoice = api
            .get(&format!("/v1/invoices?customer={}&status=paid", s.customer))
            .await
            .json["data"][0]["id"]
            .as_str()
            .expect("a paid invoice")
            .to_string();
        let fetched = b
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 const a = document.getElementById(arguments[0]);\
                 fetch(a.href).then(r => r.arrayBuffer().then(buf => done([r.status, \
                 r.headers.get('content-type'), new TextDecoder().decode(new Uint8Array(buf).slice(0, 5))])))\
                 .catch(e => done(['error', String(e), '']));",
                vec![Value::String(format!("pdf-{first_invoice}"))],
            )
            .await
            .expect("fetch the PDF");
        assert_eq!(
            fetched,
            serde_json::json!([200, "application/pdf", "%PDF-"]),
            "{fetched}"
        );

        b.client
            .execute(
                "document.getElementById('invoices').scrollIntoView()",
                vec![],
            )
            .await
            .expect("scroll to the invoices");
        b.screenshot_in("portal", &format!("{device}-1b-invoices"))
            .await;

        // Update the card: the hosted card page, then back here; the invoice is paid.
        b.click("update-card").await;
        let save = b.shows("pay-button").await;
        assert!(save.contains("Save card"), "{save}");
        b.screenshot_in("portal", &format!("{device}-2-save-card"))
            .await;
        b.click("pay-button").await;
        b.shows("card-form").await;
        fill_card(&b, "5555 5555 5555 4444", "12").await;
        b.click("pay").await;
        let base = w.daemon.base();
        lands_on(&b, &format!("{base}/portal/")).await;
        let page = b.shows("notice").await;
        assert!(page.contains("Your card has been updated"), "{page}");
        assert!(
            page.contains("4444") && !page.contains("Payment overdue"),
            "{page}"
        );
        b.screenshot_in("portal", &format!("{device}-3-card-updated"))
            .await;
        let sub = api.get(&format!("/v1/subscriptions/{}", s.sub)).await;
        assert_eq!(sub.json["status"], "active", "{}", sub.text);
        assert_eq!(
            api.get(&format!("/v1/invoices/{overdue}")).await.json["status"],
            "paid"
        );
        let cus = api.get(&format!("/v1/customers/{}", s.customer)).await;
        assert_eq!(
            cus.json["invoice_settings"]["default_payment_method"],
            sub.json["default_payment_method"]
        );

        // Cancel at period end, with a confirmation and a reason; then resume.
        b.click(&format!("cancel-{}", s.sub)).await;
        let confirm = b.shows("confirm-cancel").await;
        assert!(confirm.contains("Cancel Gold plan?"), "{confirm}");
        b.click("reason-unused").await;
        b.screenshot_in("portal", &format!("{device}-4-confirm-cancel"))
            .await;
        b.click("confirm-cancel").await;
        let page = b.shows(&format!("resume-{}", s.sub)).await;
        assert!(
            page.contains("Ends on") && page.contains("will end at the end"),
            "{page}"
        );
        b.screenshot_in("portal", &format!("{device}-5-ending"))
            .await;
        let sub = api.get(&format!("/v1/subscriptions/{}", s.sub)).await;
        assert_eq!(sub.json["cancel_at_period_end"], true);
        assert_eq!(sub.json["cancellation_details"]["feedback"], "unused");
        b.click(&format!("resume-{}", s.sub)).await;
        let page = b.shows(&format!("cancel-{}", s.sub)).await;
        assert!(page.contains("Renews on"), "{page}");
        let sub = api.get(&format!("/v1/subscriptions/{}", s.sub)).await;
        assert_eq!(sub.json["cancel_at_period_end"], false);
        b.screenshot_in("portal", &format!("{device}-6-resumed"))
            .await;
        // A link that no longer opens (here, a wrong token): how to get a new one.
        let url = link["url"].as_str().expect("url");
        let (page_url, _) = url.split_once("/t/").expect("token path");
        b.client
            .goto(&format!("{page_url}/t/{}", "x".repeat(43)))
            .await
            .expect("open a dead link");
        let page = b.shows("expired").await;
        assert!(
            page.contains("get a new one") && page.contains("Return to Harbour Lettings Ltd"),
            "{page}"
        );
        b.screenshot_in("portal", &format!("{device}-7-expired"))
            .await;
        b.stop().await;
    }
}

/// A configuration that offers plan switches (prorated as the subscriptions API does), cancels
/// at once, and lets the customer change only their address; and a session whose flow opens
/// straight on cancelling one subscription, then sends the browser to the merchant.
#[tokio::test]
async fn plan_switches_flows_and_cancelling_at_once() {
    let w = World::new();
    let api = &w.api;
    let s = subscribed(api, "jo@tenant.example").await;
    let sub = api.get(&format!("/v1/subscriptions/{}", s.sub)).await;
    let gold = sub.json["items"]["data"][0]["price"]["id"]
        .as_str()
        .expect("price")
        .to_string();
    let product = sub.json["items"]["data"][0]["price"]["product"]
        .as_str()
        .expect("product")
        .to_string();
    let platinum = api
        .post_form(
            "/v1/prices",
            &format!(
                "currency=gbp&unit_amount=3000&recurring[interval]=month&product={product}&nickname=Platinum"
            ),
        )
        .await;
    assert_eq!(platinum.status, 200, "{}", platinum.text);
    let platinum = platinum.json["id"].as_str().expect("id").to_string();
    let elsewhere = api
        .post_form(
            "/v1/prices",
            "currency=gbp&unit_amount=500&recurring[interval]=month&product_data[name]=Bronze",
        )
        .await;
    let elsewhere = elsewhere.json["id"].as_str().expect("id").to_string();
    let cfg = api
        .post_form(
            "/v1/billing_portal/configurations",
            &format!(
                "features[subscription_update][enabled]=true\
                 &features[subscription_update][default_allowed_updates][]=price\
                 &features[subscription_update][proration_behavior]=create_prorations\
                 &features[subscription_update][products][0][product]={product}\
                 &features[subscription_update][products][0][prices][]={gold}\
                 &features[subscription_update][products][0][prices][]={platinum}\
                 &features[subscription_cancel][enabled]=true\
                 &features[subscription_cancel][mode]=immediately\
                 &features[customer_update][enabled]=true\
                 &features[customer_update][allowed_updates][]=address\
                 &features[invoice_history][enabled]=true"
            ),
        )
        .await;
    assert_eq!(cfg.status, 200, "{}", cfg.text);
    let cfg = cfg.json["id"].as_str().expect("id").to_string();

    let plain = portal_session(api, &s.customer, &format!("&configuration={cfg}")).await;
    let mut v = Visitor::new();
    let page = open(&w, &mut v, &plain).await;
    assert!(
        page.contains("Platinum") && page.contains("£30.00"),
        "{page}"
    );
    assert!(
        !page.contains("id=\"update-card\""),
        "the card is not offered"
    );
    let here = plain["url"]
        .as_str()
        .expect("url")
        .split("/t/")
        .next()
        .expect("p")
        .to_string();
    let csrf = form(&page, &format!("switch-{}", s.sub))
        .field("csrf")
        .expect("csrf")
        .to_string();
    // A price the configuration does not list is refused by the page.
    let p = v
        .post(
            &format!("{here}/subscriptions/{}/price", s.sub),
            &[("csrf", &csrf), ("price", &elsewhere)],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    // An allowed one: switched, with the prorations the subscriptions API makes.
    let p = v
        .post(
            &format!("{here}/subscriptions/{}/price", s.sub),
            &[("csrf", &csrf), ("price", &platinum)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let sub = api.get(&format!("/v1/subscriptions/{}", s.sub)).await;
    assert_eq!(
        sub.json["items"]["data"][0]["price"]["id"],
        platinum.as_str()
    );
    let items = api
        .get(&format!("/v1/invoiceitems?customer={}", s.customer))
        .await;
    let prorations: Vec<&Value> = items.json["data"]
        .as_array()
        .map(|a| a.iter().filter(|i| i["proration"] == true).collect())
        .unwrap_or_default();
    assert_eq!(prorations.len(), 2, "{}", items.text);
    // Only the address may change.
    let p = v
        .post(
            &format!("{here}/details"),
            &[
                ("csrf", &csrf),
                ("address[line1]", "3 Harbour Walk"),
                ("address[city]", "Bristol"),
                ("address[postal_code]", "BS1 5AA"),
                ("address[country]", "GB"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let c = api.get(&format!("/v1/customers/{}", s.customer)).await;
    assert_eq!(c.json["address"]["line1"], "3 Harbour Walk");
    let p = v
        .post(
            &format!("{here}/details"),
            &[("csrf", &csrf), ("email", "x@y.example")],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert_eq!(
        api.get(&format!("/v1/customers/{}", s.customer)).await.json["email"],
        "jo@tenant.example"
    );

    // The cancel flow: the link opens on the confirmation, cancelling ends it now, and the
    // browser goes where after_completion says.
    let flow = portal_session(
        api,
        &s.customer,
        &format!(
            "&configuration={cfg}&flow_data[type]=subscription_cancel\
             &flow_data[subscription_cancel][subscription]={}\
             &flow_data[after_completion][type]=redirect\
             &flow_data[after_completion][redirect][return_url]=https%3A%2F%2Fharbour.example%2Fbye",
            s.sub
        ),
    )
    .await;
    assert_eq!(flow["flow"]["type"], "subscription_cancel", "{flow}");
    assert_eq!(
        flow["flow"]["after_completion"]["redirect"]["return_url"],
        "https://harbour.example/bye"
    );
    let mut v2 = Visitor::new();
    let opened = v2.get(flow["url"].as_str().expect("url")).await;
    assert_eq!(opened.status, 303);
    let to = opened.location.expect("location");
    assert!(
        to.ends_with(&format!("/subscriptions/{}/cancel", s.sub)),
        "{to}"
    );
    let confirm = v2.get(&format!("{}{to}", w.daemon.base())).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("Your subscription ends now"),
        "{}",
        confirm.body
    );
    let f = form(&confirm.body, "confirm-cancel");
    let csrf2 = f.field("csrf").expect("csrf").to_string();
    let p = v2
        .post(
            &format!("{}{}", w.daemon.base(), f.action),
            &[("csrf", &csrf2)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location.as_deref(), Some("https://harbour.example/bye"));
    let sub = api.get(&format!("/v1/subscriptions/{}", s.sub)).await;
    assert_eq!(sub.json["status"], "canceled", "{}", sub.text);
    assert_eq!(
        sub.json["cancellation_details"]["reason"],
        "cancellation_requested"
    );
    let deleted = api
        .get("/v1/events?type=customer.subscription.deleted")
        .await;
    assert_eq!(
        deleted.json["data"][0]["data"]["object"]["id"],
        s.sub.as_str()
    );
    // A cancelled subscription is no longer the page's to act on.
    let p = v2
        .post(
            &format!("{}{}", w.daemon.base(), f.action),
            &[("csrf", &csrf2)],
        )
        .await;
    assert_eq!(p.status, 404, "{}", p.body);
}
