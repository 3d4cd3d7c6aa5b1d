//! Hosted checkout in a real browser: Debian's headless `chromium`, driven over WebDriver by
//! `chromedriver`, opens a session's `url`, goes on to the sandbox gateway's hosted card page,
//! types a test card, pays and lands on the merchant's `success_url`. A declined card and a
//! 3-D Secure challenge are driven the same way. Every page is kept as a screenshot under
//! `target/test-artifacts/checkout/` (phone 390×844 and desktop 1280×800).
//!
//! `scripts/test` installs `chromium` and `chromium-driver`; without them these tests fail
//! rather than skip, so CI cannot pass without the browser having run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::harness::receiver::Receiver;
use crate::harness::{World, free_port};

/// One chromedriver and its browser session; both go when the test ends.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromium session");
        // The window's outer size differs from the viewport by the browser's frame, if any.
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub(crate) async fn type_into(&self, id: &str, text: &str) {
        let field = self
            .client
            .wait()
            .for_element(Locator::Id(id))
            .await
            .expect(id);
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub(crate) async fn click(&self, id: &str) {
        self.client
            .wait()
            .for_element(Locator::Id(id))
            .await
            .expect(id)
            .click()
            .await
            .expect("click");
    }

    /// Waits until the page shows element `id` (after a navigation or an auto-posted form).
    pub(crate) async fn shows(&self, id: &str) -> String {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"));
        self.client.source().await.expect("page source")
    }

    pub(crate) async fn url(&self) -> String {
        self.client.current_url().await.expect("url").to_string()
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        self.screenshot_in("checkout", name).await
    }

    /// A screenshot under `target/test-artifacts/<area>/`.
    pub(crate) async fn screenshot_in(&self, area: &str, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = artifacts(area);
        std::fs::create_dir_all(&dir).expect("artifact dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn artifacts(area: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-artifacts")
        .join(area)
}

async fn session(w: &World, rx: &Receiver, amount: u32, name: &str, extra: &str) -> Value {
    let landing = rx.url.replace("/hooks", "");
    let r = w
        .api
        .post_form(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&success_url={}&cancel_url={}&customer_email=jo%40tenant.example\
                 &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]={amount}\
                 &line_items[0][price_data][product_data][name]={name}&line_items[0][quantity]=1{extra}",
                enc(&format!("{landing}/paid?session={{CHECKOUT_SESSION_ID}}")),
                enc(&format!("{landing}/cancelled")),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn fill_card(b: &Browser, number: &str, expiry_month: &str) {
    b.type_into("cardNumber", number).await;
    b.type_into("cardExpiryMonth", expiry_month).await;
    b.type_into("cardExpiryYear", "2030").await;
    b.type_into("cardCVV", "123").await;
    b.type_into("cardholderName", "Jo Tenant").await;
}

/// Polls until the browser is on a URL starting with `prefix` (auto-posted forms and
/// redirects finish after the click returns).
pub(crate) async fn lands_on(b: &Browser, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = b.url().await;
        if url.starts_with(prefix) {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "never reached {prefix}; at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The session is complete; its payment intent, expanded as a merchant's success page asks
/// for it, has succeeded.
async fn paid_intent(w: &World, id: &str) -> Value {
    let done = w
        .api
        .get(&format!(
            "/v1/checkout/sessions/{id}?expand[]=payment_intent"
        ))
        .await;
    assert_eq!(done.json["status"], "complete", "{}", done.text);
    assert_eq!(
        done.json["payment_intent"]["status"], "succeeded",
        "{}",
        done.text
    );
    done.json["payment_intent"].clone()
}

#[tokio::test]
async fn a_customer_pays_in_chromium_on_a_phone_and_a_desktop_and_lands_on_success_url() {
    let w = World::new();
    let rx = Receiver::start().await;
    for (device, width, height) in [("phone", 390, 844), ("desktop", 1280, 800)] {
        let s = session(
            &w,
            &rx,
            2500,
            "Holding+deposit%2C+12+Elm+Road",
            "&metadata[ledger_id]=LED-4471",
        )
        .await;
        let id = s["id"].as_str().expect("id").to_string();
        let b = Browser::start(width, height).await;
        b.client
            .goto(s["url"].as_str().expect("url"))
            .await
            .expect("open the session url");
        let summary = b.shows("pay-button").await;
        assert!(
            summary.contains("£25.00") && summary.contains("Holding deposit, 12 Elm Road"),
            "{summary}"
        );
        b.screenshot(&format!("{device}-1-checkout")).await;

        b.click("pay-button").await;
        let card_page = b.shows("card-form").await;
        assert!(card_page.contains("£25.00"), "{card_page}");
        fill_card(&b, "4242 4242 4242 4242", "12").await;
        b.screenshot(&format!("{device}-2-hosted-card")).await;

        b.click("pay").await;
        let landing = rx.url.replace("/hooks", "");
        let url = lands_on(&b, &format!("{landing}/paid")).await;
        assert_eq!(
            url,
            format!("{landing}/paid?session={id}"),
            "{{CHECKOUT_SESSION_ID}} replaced"
        );
        b.shows("merchant-landing").await;
        b.screenshot(&format!("{device}-3-success")).await;
        b.stop().await;

        assert_eq!(
            paid_intent(&w, &id).await["metadata"]["ledger_id"],
            "LED-4471"
        );
    }
}

#[tokio::test]
async fn a_declined_card_then_a_three_d_secure_challenge_in_chromium() {
    let w = World::new();
    let rx = Receiver::start().await;
    let s = session(&w, &rx, 120_000, "First+month%27s+rent", "").await;
    let id = s["id"].as_str().expect("id").to_string();
    let b = Browser::start(1280, 800).await;
    b.client
        .goto(s["url"].as_str().expect("url"))
        .await
        .expect("open the session url");
    b.click("pay-button").await;
    b.shows("card-form").await;
    fill_card(&b, "4000000000009995", "12").await;
    b.click("pay").await;
    // Back on the checkout page with the reason, and a new attempt on offer.
    let page = b.shows("declined").await;
    assert!(page.contains("insufficient funds"), "{page}");
    b.screenshot("desktop-4-declined").await;
    assert_eq!(
        w.api.get(&format!("/v1/checkout/sessions/{id}")).await.json["status"],
        "open"
    );

    // Another card, one that asks for 3-D Secure: the issuer's challenge, then paid.
    b.click("pay-button").await;
    b.shows("card-form").await;
    fill_card(&b, "4000002500003155", "12").await;
    b.click("pay").await;
    b.shows("challenge").await;
    b.screenshot("desktop-5-three-d-secure").await;
    let authenticate = b
        .client
        .find(Locator::Css("#challenge button[value=\"Y\"]"))
        .await
        .expect("the Authenticate button");
    authenticate.click().await.expect("authenticate");
    let landing = rx.url.replace("/hooks", "");
    let url = lands_on(&b, &format!("{landing}/paid")).await;
    assert_eq!(url, format!("{landing}/paid?session={id}"));
    b.stop().await;
    assert_eq!(paid_intent(&w, &id).await["amount"], 120_000);
}

/// The checkout page of a merchant that set its business details, as a payer sees it on a
/// phone and a desktop: the merchant's name, colour and contact, the order, a short reference.
/// The screenshots (`phone-merchant.png`, `desktop-merchant.png`) are the README's
/// `docs/checkout-mobile.png` and `docs/checkout-desktop.png`.
#[tokio::test]
async fn a_named_merchants_checkout_page_in_chromium_on_a_phone_and_a_desktop() {
    let w = World::new();
    let (status, _, stderr) = w.daemon.cli(&[
        "projects",
        "update",
        "acme",
        "--display-name",
        "Harbour Lettings Ltd",
        "--support-email",
        "help@harbourlettings.co.uk",
        "--support-url",
        "https://harbourlettings.co.uk/help",
        "--address",
        "12 Quay Street, Bristol, BS1 4XX",
        "--vat-number",
        "GB 123 4567 89",
        "--brand-color",
        "#0b6e4f",
    ]);
    assert!(status.success(), "{stderr}");
    let rx = Receiver::start().await;
    for (device, width, height) in [("phone", 390, 844), ("desktop", 1280, 900)] {
        let s = session(
            &w,
            &rx,
            200_000,
            "Holding+deposit%2C+Flat+2%2C+12+Elm+Road",
            "",
        )
        .await;
        let b = Browser::start(width, height).await;
        b.client
            .goto(s["url"].as_str().expect("url"))
            .await
            .expect("open the session url");
        let page = b.shows("pay-button").await;
        for needle in [
            "Pay Harbour Lettings Ltd",
            "£2,000.00",
            "VAT no. GB 123 4567 89",
            "help@harbourlettings.co.uk",
        ] {
            assert!(page.contains(needle), "{needle:?}:\n{page}");
        }
        assert!(!page.contains("acme"), "{page}");
        b.screenshot(&format!("{device}-merchant")).await;
        b.stop().await;
    }
}

/// Pay by Bank in a real browser, as a tenant pays a £2,450 deposit: the merchant's checkout
/// with card and bank, the bank choice, the sandbox bank's approval page, then (after the
/// delayed bank settles) the merchant's `success_url`; and, on the desktop, a payer who
/// rejects at the bank and comes back to a checkout page that says so. Screenshots:
/// `{phone,desktop}-bank-*.png` (the README's `docs/pay-by-bank-*.png`).
#[tokio::test]
async fn a_tenant_pays_a_deposit_by_bank_in_chromium_on_a_phone_and_a_desktop() {
    let w = World::new();
    let (status, _, stderr) = w.daemon.cli(&[
        "projects",
        "update",
        "acme",
        "--display-name",
        "Harbour Lettings Ltd",
        "--support-email",
        "help@harbourlettings.co.uk",
        "--brand-color",
        "#0b6e4f",
    ]);
    assert!(status.success(), "{stderr}");
    let rx = Receiver::start().await;
    let landing = rx.url.replace("/hooks", "");
    for (device, width, height) in [("phone", 390, 844), ("desktop", 1280, 800)] {
        let s = session(
            &w,
            &rx,
            245_000,
            "Holding+deposit%2C+Flat+2%2C+12+Elm+Road",
            "&payment_method_types[]=card&payment_method_types[]=pay_by_bank",
        )
        .await;
        let id = s["id"].as_str().expect("id").to_string();
        let b = Browser::start(width, height).await;
        b.client
            .goto(s["url"].as_str().expect("url"))
            .await
            .expect("open the session url");
        let page = b.shows("bank-button").await;
        assert!(page.contains("£2,450.00"), "{page}");
        b.screenshot(&format!("{device}-bank-1-checkout")).await;

        b.click("bank-button").await;
        let choose = b.shows("bank-choice").await;
        assert!(choose.contains("Harbour Lettings Ltd") && choose.contains("£2,450.00"));
        b.click("bank-calmony-delayed").await;
        b.screenshot(&format!("{device}-bank-2-choose")).await;

        b.click("bank-continue").await;
        let at_bank = b.shows("authorise").await;
        assert!(at_bank.contains("£2,450.00"), "{at_bank}");
        b.screenshot(&format!("{device}-bank-3-approve")).await;

        b.click("approve").await;
        // The delayed bank settles after a few seconds; the waiting page looks again by itself.
        let url = lands_on(&b, &format!("{landing}/paid")).await;
        assert_eq!(url, format!("{landing}/paid?session={id}"));
        b.shows("merchant-landing").await;
        b.screenshot(&format!("{device}-bank-4-success")).await;
        b.stop().await;

        let done = w
            .api
            .get(&format!(
                "/v1/checkout/sessions/{id}?expand[]=payment_intent"
            ))
            .await;
        assert_eq!(done.json["payment_status"], "paid", "{}", done.text);
        assert_eq!(done.json["payment_intent"]["status"], "succeeded");
    }

    // Rejected at the bank: back on the checkout page, told why, free to try again.
    let s = session(
        &w,
        &rx,
        245_000,
        "Holding+deposit",
        "&payment_method_types[]=pay_by_bank",
    )
    .await;
    let id = s["id"].as_str().expect("id").to_string();
    let b = Browser::start(1280, 800).await;
    b.client
        .goto(s["url"].as_str().expect("url"))
        .await
        .expect("open the session url");
    b.click("bank-button").await;
    b.shows("bank-choice").await;
    b.click("bank-continue").await;
    b.shows("authorise").await;
    b.click("reject").await;
    let page = b.shows("declined").await;
    assert!(page.contains("Nothing was paid"), "{page}");
    b.screenshot("desktop-bank-5-rejected").await;
    b.stop().await;
    assert_eq!(
        w.api.get(&format!("/v1/checkout/sessions/{id}")).await.json["status"],
        "open"
    );
}
