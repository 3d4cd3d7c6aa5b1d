//! The merchant dashboard under `/dashboard`: sign-in with a user made by
//! `calmony-payd users create`, the home page's figures (from the per-day counters written with
//! each payment and refund), a refund from a payment's page with its confirmation step, and
//! the guards: a form without its CSRF token is a 403 and changes nothing, a viewer cannot
//! refund, a user of one project cannot open another's objects by URL, repeated wrong
//! passwords are throttled. The browser test signs in and refunds in headless Chromium and
//! keeps screenshots of every page it passes under `docs/dashboard/` (1280×800 and 390×844).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::browser::Browser;
use crate::harness::{Api, World, form};

const PASSWORD: &str = "correct horse battery";

/// A browser without a browser: keeps cookies by name, follows no redirects.
struct Visitor {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// An `X-Forwarded-For` to send, as a reverse proxy would.
    forwarded_for: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Visitor {
    fn new(base: &str) -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_string(),
            cookies: BTreeMap::new(),
            forwarded_for: None,
        }
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let rb = if jar.is_empty() {
            rb
        } else {
            rb.header("cookie", jar.join("; "))
        };
        let rb = match &self.forwarded_for {
            Some(f) => rb.header("x-forwarded-for", f),
            None => rb,
        };
        let r = rb.send().await.expect("request");
        for set in r.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap_or_default();
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Strict"),
                "{set}"
            );
            if let Some((k, v)) = set.split(';').next().and_then(|kv| kv.split_once('=')) {
                if v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
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

    async fn get(&mut self, path: &str) -> Page {
        let rb = self.client.get(format!("{}{path}", self.base));
        self.send(rb).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let rb = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(rb).await
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let page = self.get("/dashboard/login").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let f = form(&page.body, "sign-in");
        let csrf = f.field("csrf").expect("csrf").to_string();
        self.post(
            "/dashboard/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}

fn user(w: &World, email: &str, project: &str, role: &str) {
    let (status, _, stderr) = w.daemon.cli_input(
        &[
            "users",
            "create",
            "--email",
            email,
            "--project",
            project,
            "--role",
            role,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(status.success(), "users create: {stderr}");
}

fn project_id(w: &World, name: &str) -> String {
    redis::cmd("HGET")
        .arg("cp:projects")
        .arg(name)
        .query(&mut w.redis.conn())
        .expect("project id")
}

async fn paid(api: &Api, amount: i64) -> String {
    let pm = api.card("4242424242424242", 12, 2030, None).await;
    let r = api.pay(amount, &pm, "").await;
    assert_eq!(r.json["status"], "succeeded", "{}", r.text);
    r.json["id"].as_str().expect("id").to_string()
}

/// A customer with a card, a paid invoice and a monthly subscription: `(customer, invoice)`.
async fn invoiced_customer(api: &Api, name: &str, email: &str) -> (String, String) {
    let cus = api
        .post_form(
            "/v1/customers",
            &format!("name={}&email={email}", name.replace(' ', "+")),
        )
        .await;
    assert_eq!(cus.status, 200, "{}", cus.text);
    let cus = cus.json["id"].as_str().expect("cus").to_string();
    let card = api.card("4242424242424242", 12, 2035, Some(&cus)).await;
    let item = api
        .post_form(
            "/v1/invoiceitems",
            &format!("customer={cus}&amount=8400&description=Quarterly+maintenance"),
        )
        .await;
    assert_eq!(item.status, 200, "{}", item.text);
    let inv = api
        .post_form("/v1/invoices", &format!("customer={cus}"))
        .await;
    let inv = inv.json["id"].as_str().expect("invoice").to_string();
    let fin = api
        .post_form(&format!("/v1/invoices/{inv}/finalize"), "")
        .await;
    assert_eq!(fin.json["status"], "open", "{}", fin.text);
    let paid = api
        .post_form(
            &format!("/v1/invoices/{inv}/pay"),
            &format!("payment_method={card}"),
        )
        .await;
    assert_eq!(paid.json["status"], "paid", "{}", paid.text);
    let price = api
        .post_form(
            "/v1/prices",
            "currency=gbp&unit_amount=2500&recurring[interval]=month&product_data[name]=Lettings+plan",
        )
        .await;
    let price = price.json["id"].as_str().expect("price").to_string();
    let sub = api
        .post_form(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={price}&default_payment_method={card}"),
        )
        .await;
    assert_eq!(sub.status, 200, "{}", sub.text);
    (cus, inv)
}

fn csrf_in(body: &str) -> String {
    form(body, "sign-out")
        .field("csrf")
        .expect("csrf")
        .to_string()
}

async fn refunds_of(api: &Api, pi: &str) -> usize {
    let r = api.get(&format!("/v1/refunds?payment_intent={pi}")).await;
    r.json["data"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn an_owner_refunds_from_the_payment_page_and_the_guards_hold() {
    let w = World::new();
    let acme = project_id(&w, "acme");
    let pi = paid(&w.api, 3000).await;
    let declined = w.api.card("4000000000000002", 12, 2030, None).await;
    let _ = w.api.pay(1200, &declined, "").await;
    let other_key = w.daemon.key("other", "test");
    let other = project_id(&w, "other");
    let other_pi = paid(&w.daemon.api(&other_key), 999).await;
    user(&w, "owner@acme.test", "acme", "owner");
    user(&w, "viewer@acme.test", "acme", "viewer");

    // No session: the home page sends the browser to sign in.
    let mut anon = Visitor::new(&w.daemon.base());
    let page = anon.get(&format!("/dashboard/{acme}/test")).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/dashboard/login"));

    let mut owner = Visitor::new(&w.daemon.base());
    let signed = owner.sign_in("Owner@Acme.test", PASSWORD).await;
    assert_eq!(
        (signed.status, signed.location.as_deref()),
        (303, Some("/dashboard"))
    );
    let page = owner.get("/dashboard").await;
    assert_eq!(page.location, Some(format!("/dashboard/{acme}/test")));
    let home = owner.get(&format!("/dashboard/{acme}/test")).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("id=\"gross\">£30.00<"), "{}", home.body);
    assert!(home.body.contains("id=\"count-succeeded\">1<"));
    assert!(
        home.body.contains("id=\"count-failed\">1<"),
        "the decline is counted"
    );
    assert!(
        home.body.contains("<svg role=\"group\""),
        "the chart is drawn"
    );
    let csrf = csrf_in(&home.body);

    // The payments list's filters: amount, status, and bad input beside its field.
    let list = format!("/dashboard/{acme}/test/payments");
    let big = owner.get(&format!("{list}?min=20.00")).await;
    assert!(
        big.body.contains(&format!("id=\"pay-{pi}\"")),
        "{}",
        big.body
    );
    assert!(!big.body.contains("£12.00"));
    let failed = owner.get(&format!("{list}?status=failed")).await;
    assert!(failed.body.contains("£12.00") && !failed.body.contains(&format!("pay-{pi}")));
    let bad = owner.get(&format!("{list}?min=lots&from=yesterday")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("id=\"min-error\"") && bad.body.contains("id=\"from-error\""));

    // A post without its token: 403, and no refund.
    let refund_path = format!("/dashboard/{acme}/test/payments/{pi}/refund");
    let r = owner.post(&refund_path, &[("amount", "10.00")]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = owner
        .post(&refund_path, &[("amount", "10.00"), ("csrf", "forged")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(refunds_of(&w.api, &pi).await, 0, "nothing was refunded");

    // Bad input is said beside the field, and nothing is written.
    let r = owner
        .post(&refund_path, &[("amount", "45.00"), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("id=\"amount-error\">At most £30.00"),
        "{}",
        r.body
    );
    assert_eq!(refunds_of(&w.api, &pi).await, 0);

    // The confirmation step, then the refund.
    let confirm = owner.get(&refund_path).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("id=\"confirm-refund\""));
    // Without the form's one-time token nothing is refunded.
    let r = owner
        .post(&refund_path, &[("amount", "10.00"), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(refunds_of(&w.api, &pi).await, 0);
    let once = form(&confirm.body, "confirm-refund")
        .field("once")
        .expect("the refund form's one-time token")
        .to_string();
    let sent = [
        ("amount", "10.00"),
        ("csrf", csrf.as_str()),
        ("once", once.as_str()),
    ];
    let r = owner.post(&refund_path, &sent).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(refunds_of(&w.api, &pi).await, 1);
    // The same form sent again (a double click): the payment's page, and still one refund.
    let r = owner.post(&refund_path, &sent).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        refunds_of(&w.api, &pi).await,
        1,
        "a resubmitted form refunds once"
    );
    let home = owner.get(&format!("/dashboard/{acme}/test")).await;
    assert!(
        home.body.contains("id=\"refunded\">£10.00<"),
        "{}",
        home.body
    );
    assert!(home.body.contains("id=\"net\">£20.00<"));
    let detail = owner
        .get(&format!("/dashboard/{acme}/test/payments/{pi}"))
        .await;
    // The timeline is the payment's own events, each linked to its JSON.
    assert!(detail.body.contains("Payment succeeded"), "{}", detail.body);
    assert!(detail.body.contains("Refunded") && detail.body.contains("/events/evt_"));
    assert!(
        detail.body.contains("id=\"refunded-total\">£10.00<"),
        "{}",
        detail.body
    );

    // Another project's objects are not found, by its URL or under this project's.
    let r = owner.get(&format!("/dashboard/{other}/test")).await;
    assert_eq!(r.status, 404);
    let r = owner
        .get(&format!("/dashboard/{acme}/test/payments/{other_pi}"))
        .await;
    assert_eq!(r.status, 404);
    let r = owner
        .post(
            &format!("/dashboard/{acme}/test/payments/{other_pi}/refund"),
            &[("amount", "1.00"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 404);

    // Customers: search, the customer's page, and the invoice's PDF.
    let (cus, inv) = invoiced_customer(&w.api, "Ann Lee", "ann@tenants.example").await;
    let (other_cus, other_inv) =
        invoiced_customer(&w.daemon.api(&other_key), "Bob Other", "bob@other.example").await;
    let found = owner
        .get(&format!("/dashboard/{acme}/test/customers?q=ANN"))
        .await;
    assert!(
        found.body.contains(&format!("id=\"cus-{cus}\"")),
        "{}",
        found.body
    );
    let none = owner
        .get(&format!("/dashboard/{acme}/test/customers?q=zed"))
        .await;
    assert!(!none.body.contains("id=\"cus-"));
    let page = owner
        .get(&format!("/dashboard/{acme}/test/customers/{cus}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!("id=\"pdf-{inv}\"")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"cancel-sub_"),
        "an owner may cancel: {}",
        page.body
    );
    let pdf = owner
        .client
        .get(format!(
            "{}/dashboard/{acme}/test/invoices/{inv}/pdf",
            w.daemon.base()
        ))
        .header("cookie", format!("cp_dash={}", owner.cookies["cp_dash"]))
        .send()
        .await
        .expect("pdf");
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.expect("bytes").starts_with(b"%PDF"));
    let r = owner
        .get(&format!("/dashboard/{acme}/test/invoices/{other_inv}/pdf"))
        .await;
    assert_eq!(r.status, 404, "another project's invoice is not found");
    let r = owner
        .get(&format!("/dashboard/{acme}/test/customers/{other_cus}"))
        .await;
    assert_eq!(r.status, 404, "nor its customer");

    // The other lists: each shows this project's objects only.
    let subs = owner
        .get(&format!("/dashboard/{acme}/test/subscriptions"))
        .await;
    assert_eq!(subs.status, 200);
    assert!(
        subs.body.contains(&format!("/customers/{cus}")),
        "{}",
        subs.body
    );
    let invs = owner.get(&format!("/dashboard/{acme}/test/invoices")).await;
    assert!(
        invs.body.contains(&format!("/invoices/{inv}/pdf")),
        "{}",
        invs.body
    );
    assert!(
        !invs.body.contains(&other_inv),
        "another project's invoice is not listed"
    );
    let cs = owner.get(&format!("/dashboard/{acme}/test/checkout")).await;
    assert_eq!(cs.status, 200);
    let bal = owner.get(&format!("/dashboard/{acme}/test/balance")).await;
    assert_eq!(bal.status, 200);
    assert!(bal.body.contains("id=\"pending\">£"), "{}", bal.body);

    // The audit log has the refund, who made it and from where.
    let audit = owner.get(&format!("/dashboard/{acme}/audit")).await;
    assert_eq!(audit.status, 200);
    assert!(
        audit.body.contains("refunded £10.00 of payment"),
        "{}",
        audit.body
    );
    assert!(audit.body.contains("owner@acme.test"));
    assert!(audit.body.contains("127.0.0.1"));

    // A viewer sees the payment but cannot refund it, by form or by post.
    let mut viewer = Visitor::new(&w.daemon.base());
    assert_eq!(
        viewer.sign_in("viewer@acme.test", PASSWORD).await.status,
        303
    );
    let detail = viewer
        .get(&format!("/dashboard/{acme}/test/payments/{pi}"))
        .await;
    assert_eq!(detail.status, 200);
    assert!(!detail.body.contains("id=\"refund\""));
    let vcsrf = csrf_in(&detail.body);
    assert_eq!(viewer.get(&refund_path).await.status, 403);
    let r = viewer
        .post(&refund_path, &[("amount", "1.00"), ("csrf", &vcsrf)])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        viewer.get(&format!("/dashboard/{acme}/audit")).await.status,
        403
    );
    assert_eq!(refunds_of(&w.api, &pi).await, 1);
    let vpage = viewer
        .get(&format!("/dashboard/{acme}/test/customers/{cus}"))
        .await;
    assert_eq!(vpage.status, 200);
    assert!(
        !vpage.body.contains("id=\"cancel-sub_"),
        "a viewer is offered no cancel"
    );

    // Capture and cancel, each after its confirmation step; a viewer may do neither.
    let card = w.api.card("4242424242424242", 12, 2030, None).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let r = w.api.pay(1500, &card, "&capture_method=manual").await;
        assert_eq!(r.json["status"], "requires_capture", "{}", r.text);
        held.push(r.json["id"].as_str().expect("id").to_string());
    }
    let capture = format!("/dashboard/{acme}/test/payments/{}/capture", held[0]);
    let cancel = format!("/dashboard/{acme}/test/payments/{}/cancel", held[1]);
    assert_eq!(viewer.post(&capture, &[("csrf", &vcsrf)]).await.status, 403);
    let page = owner
        .get(&format!("/dashboard/{acme}/test/payments/{}", held[0]))
        .await;
    assert!(page.body.contains("id=\"capture\""), "{}", page.body);
    assert!(
        owner
            .get(&capture)
            .await
            .body
            .contains("id=\"confirm-capture\"")
    );
    assert_eq!(owner.post(&capture, &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(owner.post(&cancel, &[("csrf", &csrf)]).await.status, 303);
    let status = |id: &str| format!("/v1/payment_intents/{id}");
    assert_eq!(
        w.api.get(&status(&held[0])).await.json["status"],
        "succeeded"
    );
    assert_eq!(
        w.api.get(&status(&held[1])).await.json["status"],
        "canceled"
    );
    // Cancelling it again is refused on the page, not a failure.
    let again = owner.post(&cancel, &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("id=\"problem\""));

    // Sign out everywhere ends the owner's session.
    let r = owner
        .post("/dashboard/logout-everywhere", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        owner.get(&format!("/dashboard/{acme}/test")).await.status,
        303,
        "signed out"
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let w = World::new();
    user(&w, "owner@acme.test", "acme", "owner");
    let mut v = Visitor::new(&w.daemon.base());
    for _ in 0..5 {
        let r = v.sign_in("owner@acme.test", "not the password").await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // Now even the right password is refused for a while.
    let r = v.sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many failed sign-ins"));
    // Another account from the same address is still let in.
    user(&w, "admin@acme.test", "acme", "admin");
    let r = v.sign_in("admin@acme.test", PASSWORD).await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
async fn the_sign_in_form_needs_its_token() {
    let w = World::new();
    user(&w, "owner@acme.test", "acme", "owner");
    let mut v = Visitor::new(&w.daemon.base());
    let r = v
        .post(
            "/dashboard/login",
            &[("email", "owner@acme.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!v.cookies.contains_key("cp_dash"));
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard")
}

async fn shot(b: &Browser, name: &str) {
    let png = b.client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::create_dir_all(shots()).expect("docs/dashboard");
    std::fs::write(shots().join(format!("{name}.png")), png).expect("write screenshot");
}

#[tokio::test]
async fn an_owner_signs_in_and_refunds_in_chromium_on_a_desktop_and_a_phone() {
    let w = World::new();
    let acme = project_id(&w, "acme");
    let (status, _, stderr) = w.daemon.cli(&[
        "projects",
        "update",
        "acme",
        "--display-name",
        "Acme Lettings",
    ]);
    assert!(status.success(), "{stderr}");
    let mut paid_ids = Vec::new();
    for amount in [4200, 1999, 12_500] {
        paid_ids.push(paid(&w.api, amount).await);
    }
    let declined = w.api.card("4000000000000002", 12, 2030, None).await;
    let _ = w.api.pay(800, &declined, "").await;
    // An endpoint nobody answers at: its failed deliveries show with their reason.
    let we = w
        .api
        .post_form(
            "/v1/webhook_endpoints",
            "url=http%3A%2F%2F127.0.0.1%3A9%2Fhooks&enabled_events[0]=*&description=Bookings+system",
        )
        .await;
    assert_eq!(we.status, 200, "{}", we.text);
    let we = we.json["id"].as_str().expect("we").to_string();
    let (cus, inv) = invoiced_customer(&w.api, "Ann Lee", "ann@tenants.example").await;
    user(&w, "owner@acme.test", "acme", "owner");
    for (size, (width, height)) in [("desktop", (1280, 800)), ("phone", (390, 844))] {
        let b = Browser::start(width, height).await;
        let base = w.daemon.base();
        b.client
            .goto(&format!("{base}/dashboard"))
            .await
            .expect("open");
        b.shows("sign-in").await;
        shot(&b, &format!("{size}-sign-in")).await;
        b.type_into("email", "owner@acme.test").await;
        b.type_into("password", PASSWORD).await;
        b.click("sign-in").await;
        let home = b.shows("gross").await;
        assert!(home.contains("Acme Lettings"));
        shot(&b, &format!("{size}-home")).await;
        // Today's bar, focused from the keyboard's side, shows its figure.
        b.client
            .execute(
                "const g=[...document.querySelectorAll('.days g[tabindex]')].pop();\
                 g.scrollIntoView({block:'center'});g.focus();",
                vec![],
            )
            .await
            .expect("focus today's bar");
        let focused = b
            .client
            .execute(
                "return document.activeElement.getAttribute('aria-label')",
                vec![],
            )
            .await
            .expect("focused label");
        // Every payment is today's, so today's bar is the whole net figure.
        let net = b
            .client
            .execute("return document.getElementById('net').textContent", vec![])
            .await
            .expect("net");
        let want = format!(": {}", net.as_str().unwrap_or("?"));
        assert!(
            focused.as_str().is_some_and(|l| l.ends_with(&want)),
            "{focused:?} {want}"
        );
        shot(&b, &format!("{size}-home-chart")).await;
        b.client
            .goto(&format!("{base}/dashboard/{acme}/test/payments"))
            .await
            .expect("payments");
        b.shows("status").await;
        shot(&b, &format!("{size}-payments")).await;
        let pi = &paid_ids[if size == "desktop" { 0 } else { 2 }];
        b.click(&format!("pay-{pi}")).await;
        b.shows("payment-id").await;
        shot(&b, &format!("{size}-payment")).await;
        b.click("refund").await;
        b.shows("confirm-refund").await;
        b.type_into("amount", "5.00").await;
        shot(&b, &format!("{size}-refund-confirm")).await;
        b.click("confirm-refund").await;
        let after = b.shows("refunded-total").await;
        assert!(after.contains("id=\"refunded-total\">£5.00<"), "{after}");
        shot(&b, &format!("{size}-payment-refunded")).await;
        b.client
            .goto(&format!("{base}/dashboard/{acme}/test/customers"))
            .await
            .expect("customers");
        b.shows(&format!("cus-{cus}")).await;
        shot(&b, &format!("{size}-customers")).await;
        b.click(&format!("cus-{cus}")).await;
        b.shows(&format!("pdf-{inv}")).await;
        shot(&b, &format!("{size}-customer")).await;
        // The invoice's link downloads a PDF with the browser's own session.
        let got = b
            .client
            .execute_async(
                "const done=arguments[arguments.length-1];\
                 fetch(document.getElementById(arguments[0]).href).then(r=>r.arrayBuffer()\
                 .then(b=>done(r.status+' '+r.headers.get('content-type')+' '+\
                 String.fromCharCode(...new Uint8Array(b.slice(0,4))))));",
                vec![serde_json::json!(format!("pdf-{inv}"))],
            )
            .await
            .expect("fetch the PDF");
        assert_eq!(got.as_str(), Some("200 application/pdf %PDF"), "{got:?}");
        for (page, id) in [
            ("invoices", "invoices"),
            ("subscriptions", "subscriptions"),
            ("balance", "available"),
        ] {
            b.client
                .goto(&format!("{base}/dashboard/{acme}/test/{page}"))
                .await
                .expect(page);
            b.shows(id).await;
            shot(&b, &format!("{size}-{page}")).await;
        }
        b.client
            .goto(&format!("{base}/dashboard/{acme}/test/webhooks"))
            .await
            .expect("webhooks");
        b.shows(&format!("hook-{we}")).await;
        shot(&b, &format!("{size}-webhooks")).await;
        b.click(&format!("hook-{we}")).await;
        b.shows("roll-secret").await;
        shot(&b, &format!("{size}-webhook-endpoint")).await;
        b.client
            .goto(&format!("{base}/dashboard/{acme}/test/events"))
            .await
            .expect("events");
        b.shows("events").await;
        shot(&b, &format!("{size}-events")).await;
        b.client
            .goto(&format!("{base}/dashboard/{acme}/audit"))
            .await
            .expect("audit");
        let audit = b.shows("audit").await;
        assert!(audit.contains("refunded £5.00"));
        shot(&b, &format!("{size}-audit")).await;
        // Onboarding: a new project, its first key (shown once), its details.
        b.click("nav-new-project").await;
        b.shows("create-project").await;
        b.type_into("name", &format!("harbour-{size}")).await;
        b.type_into("display_name", "Harbour Lettings").await;
        b.type_into("support_email", "help@harbour.example").await;
        b.type_into("brand_color", "#0b6e4f").await;
        shot(&b, &format!("{size}-new-project")).await;
        b.click("create-project").await;
        b.shows("create-key").await;
        b.click("create-key").await;
        let keys = b.shows("new-key").await;
        assert!(keys.contains("sk_test_"));
        shot(&b, &format!("{size}-key-created")).await;
        let url = b.url().await;
        let settings = url.replace("/test/keys", "/settings");
        b.client.goto(&settings).await.expect("settings");
        b.shows("save-details").await;
        shot(&b, &format!("{size}-business-details")).await;
        b.click("sign-out").await;
        b.shows("sign-in").await;
        b.stop().await;
    }
}

#[tokio::test]
async fn a_user_onboards_a_project_makes_a_key_once_and_revokes_it() {
    let w = World::new();
    user(&w, "new@harbour.test", "acme", "viewer");
    let mut v = Visitor::new(&w.daemon.base());
    assert_eq!(v.sign_in("new@harbour.test", PASSWORD).await.status, 303);
    let page = v.get("/dashboard/projects/new").await;
    let csrf = form(&page.body, "create-project")
        .field("csrf")
        .expect("csrf")
        .to_string();
    // Bad input is said beside its field, and no project is made.
    let r = v
        .post(
            "/dashboard/projects/new",
            &[("csrf", &csrf), ("name", "harbour lettings")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"name-error\""), "{}", r.body);
    let r = v
        .post(
            "/dashboard/projects/new",
            &[
                ("csrf", &csrf),
                ("name", "harbour"),
                ("display_name", "Harbour Lettings"),
                ("brand_color", "not a colour"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"brand_color-error\""), "{}", r.body);
    let none: Option<String> = redis::cmd("HGET")
        .arg("cp:projects")
        .arg("harbour")
        .query(&mut w.redis.conn())
        .expect("HGET");
    assert_eq!(none, None, "nothing is half-written");
    let r = v
        .post(
            "/dashboard/projects/new",
            &[
                ("csrf", &csrf),
                ("name", "harbour"),
                ("display_name", "Harbour Lettings"),
                ("brand_color", "#0b6e4f"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let harbour = project_id(&w, "harbour");
    assert_eq!(r.location, Some(format!("/dashboard/{harbour}/test/keys")));

    // The key is shown once, works, and is gone from every later page.
    let made = v
        .post(
            &format!("/dashboard/{harbour}/test/keys"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let start = made.body.find("id=\"new-key\"").expect("the new key");
    let value = &made.body[start..];
    let key: String = value
        .split("value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("value")
        .to_string();
    assert!(key.starts_with("sk_test_"), "{key}");
    let api = w.daemon.api(&key);
    assert_eq!(api.get("/v1/payment_intents").await.status, 200);
    let later = v.get(&format!("/dashboard/{harbour}/test/keys")).await;
    assert!(!later.body.contains(&key), "shown only once");
    let key_id = later
        .body
        .split("id=\"revoke-")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("a revoke link")
        .to_string();
    // A key of another project cannot be revoked from this one.
    let acme_key_id: String = {
        let acme = project_id(&w, "acme");
        let (_, out, _) = w.daemon.cli(&["keys", "list"]);
        assert!(out.contains(&acme) || out.contains("acme"));
        out.lines()
            .find(|l| l.contains("acme"))
            .and_then(|l| l.split_whitespace().find(|c| c.starts_with("key_")))
            .expect("acme's key id")
            .to_string()
    };
    let r = v
        .post(
            &format!("/dashboard/{harbour}/test/keys/{acme_key_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(w.api.get("/v1/payment_intents").await.status, 200);
    let r = v
        .post(
            &format!("/dashboard/{harbour}/test/keys/{key_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(api.get("/v1/payment_intents").await.status, 401);

    // The business details the pages show.
    let r = v
        .post(
            &format!("/dashboard/{harbour}/settings"),
            &[("csrf", &csrf), ("support_email", "not-an-email")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"support_email-error\""), "{}", r.body);
    let r = v
        .post(
            &format!("/dashboard/{harbour}/settings"),
            &[
                ("csrf", &csrf),
                ("display_name", "Harbour Lettings"),
                ("support_email", "help@harbour.example"),
                ("brand_color", "#0b6e4f"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The dashboard's days in the project's time zone: an unknown one is refused, and
    // nothing of the same form is written.
    let r = v
        .post(
            &format!("/dashboard/{harbour}/settings"),
            &[
                ("csrf", &csrf),
                ("display_name", "Renamed Lettings"),
                ("time_zone", "Europe/Nowhere"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"time_zone-error\""), "{}", r.body);
    let r = v
        .post(
            &format!("/dashboard/{harbour}/settings"),
            &[
                ("csrf", &csrf),
                ("display_name", "Harbour Lettings"),
                ("support_email", "help@harbour.example"),
                ("brand_color", "#0b6e4f"),
                ("time_zone", "Europe/London"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let home = v.get(&format!("/dashboard/{harbour}/test")).await;
    assert!(home.body.contains("days in Europe/London"), "{}", home.body);
    let (_, shown, _) = w.daemon.cli(&["projects", "show", "harbour"]);
    assert!(!shown.contains("Renamed"), "{shown}");
    assert!(shown.contains("help@harbour.example"), "{shown}");
    // A viewer of acme may not change acme's details.
    let r = v
        .post(
            &format!("/dashboard/{}/settings", project_id(&w, "acme")),
            &[("csrf", &csrf), ("display_name", "Hijacked")],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn webhook_endpoints_are_managed_and_an_event_resent() {
    use std::time::Duration;
    let w = World::new();
    let acme = project_id(&w, "acme");
    user(&w, "owner@acme.test", "acme", "owner");
    let rx = crate::harness::receiver::Receiver::start().await;
    let mut v = Visitor::new(&w.daemon.base());
    assert_eq!(v.sign_in("owner@acme.test", PASSWORD).await.status, 303);
    let page = v.get(&format!("/dashboard/{acme}/test/webhooks")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_in(&page.body);
    let hooks = format!("/dashboard/{acme}/test/webhooks");
    // A URL the API refuses is said beside the field.
    let r = v
        .post(&hooks, &[("csrf", &csrf), ("url", "ftp://nowhere")])
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("id=\"url-error\""), "{}", r.body);
    let r = v
        .post(
            &hooks,
            &[
                ("csrf", &csrf),
                ("url", &rx.url),
                ("enabled_events", "customer.created"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("id=\"new-secret\" readonly class=\"mono\" value=\"whsec_")
    );
    let we = r
        .body
        .split("id=\"hook-")
        .nth(1)
        .and_then(|x| x.split('"').next())
        .expect("the endpoint's link")
        .to_string();
    let later = v.get(&hooks).await;
    assert!(!later.body.contains("whsec_"), "the secret is shown once");

    let cus = w
        .api
        .post_form("/v1/customers", "email=a%40b.example")
        .await;
    assert_eq!(cus.status, 200);
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() == 1).await);
    let detail = format!("{hooks}/{we}");
    let ok = crate::harness::eventually(Duration::from_secs(10), || {
        let path = detail.clone();
        let mut fresh = Visitor::new(&w.daemon.base());
        fresh.cookies = v.cookies.clone();
        async move {
            let p = fresh.get(&path).await;
            p.body.contains("pill ok\">succeeded")
        }
    })
    .await;
    assert!(ok, "the delivery is listed as succeeded");
    let page = v.get(&detail).await;
    let evt = page
        .body
        .split("/events/evt_")
        .nth(1)
        .and_then(|x| x.split('"').next())
        .map(|x| format!("evt_{x}"))
        .expect("the delivered event");
    // Resend it: a second delivery of the same event.
    let r = v
        .post(
            &format!("/dashboard/{acme}/test/events/{evt}/resend"),
            &[("csrf", &csrf), ("webhook_endpoint", &we)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(rx.wait(Duration::from_secs(10), |r| r.len() == 2).await);
    // The event's JSON.
    let e = v.get(&format!("/dashboard/{acme}/test/events/{evt}")).await;
    assert!(e.body.contains("customer.created"), "{}", e.body);
    assert!(e.body.contains("id=\"event-json\""));
    // Roll the secret (shown once), then disable.
    let r = v.post(&format!("{detail}/roll"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("value=\"whsec_"));
    let r = v
        .post(&format!("{detail}/disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 303);
    let api = w.api.get(&format!("/v1/webhook_endpoints/{we}")).await;
    assert_eq!(api.json["status"], "disabled");
    let audit = v.get(&format!("/dashboard/{acme}/audit")).await;
    for what in [
        "added webhook endpoint",
        "resent event",
        "rolled the signing secret",
        "disabled webhook endpoint",
    ] {
        assert!(audit.body.contains(what), "{what}: {}", audit.body);
    }
}

#[tokio::test]
async fn an_owner_manages_the_project_s_users_and_keeps_an_owner() {
    let w = World::new();
    let acme = project_id(&w, "acme");
    user(&w, "owner@acme.test", "acme", "owner");
    let mut owner = Visitor::new(&w.daemon.base());
    assert_eq!(owner.sign_in("owner@acme.test", PASSWORD).await.status, 303);
    let page = owner.get(&format!("/dashboard/{acme}/users")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_in(&page.body);
    let users = format!("/dashboard/{acme}/users");
    // A new account needs a first password, and a good one.
    let r = owner
        .post(
            &users,
            &[
                ("csrf", &csrf),
                ("email", "kim@acme.test"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"password-error\""));
    let r = owner
        .post(
            &users,
            &[
                ("csrf", &csrf),
                ("email", "kim@acme.test"),
                ("role", "viewer"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = owner
        .post(
            &users,
            &[
                ("csrf", &csrf),
                ("email", "Kim@Acme.test"),
                ("role", "viewer"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mut kim = Visitor::new(&w.daemon.base());
    assert_eq!(kim.sign_in("kim@acme.test", PASSWORD).await.status, 303);
    let home = kim.get(&format!("/dashboard/{acme}/test")).await;
    assert_eq!(home.status, 200);
    let kcsrf = csrf_in(&home.body);
    // Only owners manage users.
    assert_eq!(kim.get(&users).await.status, 403);
    let r = owner
        .post(
            &format!("{users}/role"),
            &[
                ("csrf", &csrf),
                ("email", "kim@acme.test"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        kim.get(&users).await.status,
        403,
        "admins do not manage users"
    );
    let r = kim
        .post(
            &format!("{users}/role"),
            &[
                ("csrf", &kcsrf),
                ("email", "kim@acme.test"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "no one raises their own role");
    // The only owner cannot leave or step down.
    let r = owner
        .post(
            &format!("{users}/remove"),
            &[("csrf", &csrf), ("email", "owner@acme.test")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("A project needs an owner"));
    let r = owner
        .post(
            &format!("{users}/role"),
            &[
                ("csrf", &csrf),
                ("email", "owner@acme.test"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    // Removed, the project is not found for them.
    let r = owner
        .post(
            &format!("{users}/remove"),
            &[("csrf", &csrf), ("email", "kim@acme.test")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        kim.get(&format!("/dashboard/{acme}/test")).await.status,
        404
    );
    let audit = owner.get(&format!("/dashboard/{acme}/audit")).await;
    for what in [
        "gave kim@acme.test the role viewer",
        "role to admin",
        "removed kim@acme.test",
    ] {
        assert!(audit.body.contains(what), "{what}: {}", audit.body);
    }
}

#[tokio::test]
async fn the_first_owner_is_made_with_the_one_time_setup_link() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let file = w.daemon.data_dir().join("dashboard-setup-link");
    let mode = std::fs::metadata(&file)
        .expect("the setup link's file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only the daemon's user reads it");
    let link = std::fs::read_to_string(&file).expect("link");
    let path = link
        .trim()
        .split_once("/dashboard/")
        .map(|(_, p)| format!("/dashboard/{p}"))
        .expect("a dashboard link");
    assert!(
        !w.daemon.logs().contains(&path),
        "the log names the file, not the link"
    );
    let mut v = Visitor::new(&w.daemon.base());
    let page = v.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = form(&page.body, "create-owner")
        .field("csrf")
        .expect("csrf")
        .to_string();
    let r = v
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("email", "me@harbour.test"),
                ("password", "short"),
                ("project", "acme"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"password-error\""));
    let page = v.get(&path).await;
    let csrf = form(&page.body, "create-owner")
        .field("csrf")
        .expect("csrf")
        .to_string();
    let r = v
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("email", "me@harbour.test"),
                ("password", PASSWORD),
                ("project", "acme"),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some("/dashboard")),
        "{}",
        r.body
    );
    let acme = project_id(&w, "acme");
    let home = v.get(&format!("/dashboard/{acme}/test")).await;
    assert_eq!(
        home.status, 200,
        "signed in as the owner of the existing project"
    );
    // Used up: it makes no second owner.
    let mut other = Visitor::new(&w.daemon.base());
    assert_eq!(other.get(&path).await.status, 410);
    let mut guess = Visitor::new(&w.daemon.base());
    assert_eq!(
        guess.get("/dashboard/setup/0123456789abcdef").await.status,
        410
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_s_address_is_the_forwarded_one() {
    let w = World::with(&[("CALMONY_HTTP_TRUSTED_PROXIES", "127.0.0.1")]);
    let acme = project_id(&w, "acme");
    user(&w, "owner@acme.test", "acme", "owner");
    user(&w, "other@acme.test", "acme", "viewer");
    let mut v = Visitor::new(&w.daemon.base());
    v.forwarded_for = Some("203.0.113.50, 198.51.100.7".into());
    assert_eq!(v.sign_in("owner@acme.test", PASSWORD).await.status, 303);
    let audit = v.get(&format!("/dashboard/{acme}/audit")).await;
    assert!(audit.body.contains("198.51.100.7"), "{}", audit.body);
    assert!(
        !audit.body.contains("203.0.113.50"),
        "an address the client wrote is not believed"
    );
    // Per address: twenty failures from one client lock that client out, not the proxy's others.
    let mut bad = Visitor::new(&w.daemon.base());
    bad.forwarded_for = Some("192.0.2.66".into());
    for i in 0..20 {
        let who = format!("nobody{i}@acme.test");
        assert_eq!(bad.sign_in(&who, "wrong password!").await.status, 401);
    }
    assert_eq!(bad.sign_in("other@acme.test", PASSWORD).await.status, 429);
    let mut good = Visitor::new(&w.daemon.base());
    good.forwarded_for = Some("192.0.2.77".into());
    assert_eq!(good.sign_in("other@acme.test", PASSWORD).await.status, 303);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_the_old_password() {
    let w = World::new();
    let acme = project_id(&w, "acme");
    user(&w, "owner@acme.test", "acme", "owner");
    let mut here = Visitor::new(&w.daemon.base());
    let mut elsewhere = Visitor::new(&w.daemon.base());
    assert_eq!(here.sign_in("owner@acme.test", PASSWORD).await.status, 303);
    assert_eq!(
        elsewhere.sign_in("owner@acme.test", PASSWORD).await.status,
        303
    );
    let page = here.get("/dashboard/account").await;
    assert_eq!(page.status, 200);
    let csrf = form(&page.body, "change-password")
        .field("csrf")
        .expect("csrf")
        .to_string();
    let r = here
        .post(
            "/dashboard/account/password",
            &[
                ("csrf", &csrf),
                ("current", "not it at all"),
                ("new", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"current-error\""));
    let r = here
        .post(
            "/dashboard/account/password",
            &[("csrf", &csrf), ("current", PASSWORD), ("new", "short")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"new-error\""));
    let r = here
        .post(
            "/dashboard/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        here.get(&format!("/dashboard/{acme}/test")).await.status,
        200,
        "this browser stays in"
    );
    assert_eq!(
        elsewhere
            .get(&format!("/dashboard/{acme}/test"))
            .await
            .status,
        303,
        "the other is signed out"
    );
    let mut again = Visitor::new(&w.daemon.base());
    assert_eq!(again.sign_in("owner@acme.test", PASSWORD).await.status, 401);
    assert_eq!(
        again
            .sign_in("owner@acme.test", "a brand new passphrase")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_session_ends_when_idle_and_at_its_absolute_limit() {
    use std::time::Duration;
    let w = World::with(&[("CALMONY_CLOCK_CONTROLLABLE", "true")]);
    let acme = project_id(&w, "acme");
    user(&w, "owner@acme.test", "acme", "owner");
    let home = format!("/dashboard/{acme}/test");
    // The daemon follows the clock's offset every 50 ms: half a second is ten of its ticks.
    async fn advance(w: &World, seconds: i64) {
        let (status, _, stderr) =
            w.daemon
                .cli(&["clock", "advance", "--seconds", &seconds.to_string()]);
        assert!(status.success(), "{stderr}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut idle = Visitor::new(&w.daemon.base());
    assert_eq!(idle.sign_in("owner@acme.test", PASSWORD).await.status, 303);
    assert_eq!(idle.get(&home).await.status, 200);
    advance(&w, 25 * 60).await;
    assert_eq!(
        idle.get(&home).await.status,
        200,
        "25 minutes idle: still in"
    );
    advance(&w, 31 * 60).await;
    assert_eq!(
        idle.get(&home).await.status,
        303,
        "31 minutes idle: signed out"
    );

    // Kept busy, a session still ends twelve hours after it began.
    let mut busy = Visitor::new(&w.daemon.base());
    assert_eq!(busy.sign_in("owner@acme.test", PASSWORD).await.status, 303);
    // 24 × 29 minutes is 11 h 36 min; the 25th step passes 12 h.
    for _ in 0..24 {
        advance(&w, 29 * 60).await;
        assert_eq!(busy.get(&home).await.status, 200);
    }
    advance(&w, 29 * 60).await;
    assert_eq!(busy.get(&home).await.status, 303, "past twelve hours");
}

#[tokio::test]
async fn odd_urls_and_forms_are_answered_without_a_server_error() {
    let w = World::new();
    let acme = project_id(&w, "acme");
    user(&w, "owner@acme.test", "acme", "owner");
    let mut v = Visitor::new(&w.daemon.base());
    assert_eq!(v.sign_in("owner@acme.test", PASSWORD).await.status, 303);
    let csrf = csrf_in(&v.get(&format!("/dashboard/{acme}/test")).await.body);
    let b = format!("/dashboard/{acme}");
    let gets = [
        format!("{b}/nomode"),
        format!("{b}/test/payments/pi_nope"),
        format!("{b}/test/payments/%00%ff"),
        format!("{b}/test/payments/{}", "x".repeat(2000)),
        format!("{b}/test/payments?status=bogus&after=zzz&min=-1&max=1e9&to=2026-02-30"),
        format!("{b}/test/customers/cus_nope"),
        format!("{b}/test/customers?q=%25%27%22%3C"),
        format!("{b}/test/invoices/in_nope/pdf"),
        format!("{b}/test/subscriptions/sub_nope/cancel"),
        format!("{b}/test/events/evt_nope"),
        format!("{b}/test/events?type=NOT+A+TYPE"),
        format!("{b}/test/webhooks/we_nope"),
        format!("{b}/test/keys/key_nope/revoke"),
        format!("{b}/live"),
        "/dashboard/prj_nope/test".to_string(),
        "/dashboard/setup/".to_string(),
        "/dashboard/../../etc/passwd".to_string(),
    ];
    for path in &gets {
        let r = v.get(path).await;
        assert!(r.status < 500, "GET {path}: {} {}", r.status, r.body);
    }
    let posts: [(String, Vec<(&str, &str)>); 8] = [
        (
            format!("{b}/test/payments/pi_nope/refund"),
            vec![("amount", "1")],
        ),
        (format!("{b}/test/payments/pi_nope/capture"), vec![]),
        (format!("{b}/test/subscriptions/sub_nope/cancel"), vec![]),
        (
            format!("{b}/test/webhooks"),
            vec![("url", "https://[::1"), ("enabled_events", "%%%")],
        ),
        (
            format!("{b}/test/events/evt_nope/resend"),
            vec![("webhook_endpoint", "we_nope")],
        ),
        (
            format!("{b}/settings"),
            vec![("brand_color", "red"), ("logo_url", "javascript:alert(1)")],
        ),
        (
            format!("{b}/users/role"),
            vec![("email", "nobody@x.test"), ("role", "emperor")],
        ),
        ("/dashboard/projects/new".to_string(), vec![("name", "")]),
    ];
    for (path, fields) in &posts {
        let mut all = fields.clone();
        all.push(("csrf", &csrf));
        let r = v.post(path, &all).await;
        assert!(r.status < 500, "POST {path}: {} {}", r.status, r.body);
    }
}

#[tokio::test]
async fn behind_tls_the_cookies_are_secure() {
    let w = World::with(&[("CALMONY_PUBLIC_URL", "https://pay.harbour.example")]);
    let r = reqwest::Client::new()
        .get(format!("{}/dashboard/login", w.daemon.base()))
        .send()
        .await
        .expect("login page");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let plain = World::new();
    let r = reqwest::Client::new()
        .get(format!("{}/dashboard/login", plain.daemon.base()))
        .send()
        .await
        .expect("login page");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
}

/// The balance page says, beside each payout, whether its credit reached the settlement
/// account to the penny: the reconciliation's verdict for the project's own payouts.
#[tokio::test]
async fn the_balance_page_says_whether_each_payout_was_reconciled() {
    use crate::settlement::{
        advance, batch_reference, card_payment, cutoff_ahead, payouts_settled, settle, world,
    };
    let (cutoff, day) = cutoff_ahead();
    let w = world(&[], &cutoff);
    card_payment(&w, "4242424242424242", 10_000).await;
    settle(&w).await;
    advance(&w, 7 * 3600).await;
    assert!(
        crate::harness::eventually(std::time::Duration::from_secs(30), || payouts_settled(
            &w, 1
        ))
        .await
    );
    let acme = project_id(&w, "acme");
    user(&w, "owner@acme.test", "acme", "owner");
    let mut owner = Visitor::new(&w.daemon.base());
    let signed = owner.sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let page = owner.get(&format!("/dashboard/{acme}/test/balance")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&batch_reference(day)), "{}", page.body);
    assert!(page.body.contains("Matched"), "{}", page.body);
}
