//! What the payer sees of the merchant: the business details set with `calmony-payd projects`
//! (display name, support contact, address, VAT number, colour, logo) on the hosted checkout
//! page, the gateway's hosted card page, and the invoice PDF; never the project's internal
//! name, nor the session's 60-character id as its "Order".

use crate::harness::{Api, Daemon, Redis, form, get_page};

/// A daemon whose project is the first-start one, `default`, as a newcomer has it.
fn newcomer() -> (Redis, Daemon, Api) {
    let redis = Redis::start();
    let daemon = Daemon::start(&redis.url());
    let key = daemon.key("default", "test");
    let api = daemon.api(&key);
    (redis, daemon, api)
}

fn name_the_project(d: &Daemon, args: &[&str]) {
    let mut all = vec!["projects", "update", "default"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = d.cli(&all);
    assert!(status.success(), "projects update failed: {stderr}");
    assert!(stdout.contains("display_name"), "{stdout}");
}

const DETAILS: &[&str] = &[
    "--display-name",
    "Harbour Lettings & Co <Ltd>",
    "--support-email",
    "help@harbour.example",
    "--support-url",
    "https://harbour.example/help",
    "--address",
    "12 Quay Street, Bristol, BS1 4XX",
    "--vat-number",
    "GB 123 4567 89",
    "--brand-color",
    "#0B6E4F",
];

/// The page without its `<input>` tags: what the payer can read (the hand-off form's hidden
/// fields carry the session's id to the gateway, as they must).
fn without_inputs(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find('>').map_or("", |e| &rest[i + e + 1..]);
    }
    out.push_str(rest);
    out
}

async fn checkout(api: &Api) -> (String, String) {
    let r = api
        .post_form(
            "/v1/checkout/sessions",
            "mode=payment&success_url=https%3A%2F%2Fshop.example%2Fok&cancel_url=https%3A%2F%2Fshop.example%2Fback\
             &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=200000\
             &line_items[0][price_data][product_data][name]=Holding+deposit%2C+12+Elm+Road&line_items[0][quantity]=1\
             &customer_email=jo%40tenant.example",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.json["id"].as_str().expect("id").to_string(),
        r.json["url"].as_str().expect("url").to_string(),
    )
}

#[tokio::test]
async fn the_checkout_and_card_pages_show_the_merchants_details_never_its_project_name() {
    let (_redis, d, api) = newcomer();

    // Unnamed: the page names no one (and certainly not "default").
    let (_, url) = checkout(&api).await;
    let (status, page) = get_page(&url).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("default"), "{page}");
    assert!(page.contains("£2,000.00"), "{page}");

    name_the_project(&d, DETAILS);
    let (id, url) = checkout(&api).await;
    let (status, page) = get_page(&url).await;
    assert_eq!(status, 200, "{page}");
    for needle in [
        // Escaped: the merchant's text is text, not markup.
        "Pay Harbour Lettings &amp; Co &lt;Ltd&gt;",
        "Cancel and return to Harbour Lettings &amp; Co &lt;Ltd&gt;",
        "VAT no. GB 123 4567 89",
        "mailto:help@harbour.example",
        "harbour.example/help",
        "12 Quay Street, Bristol, BS1 4XX",
        "--brand:#0b6e4f",
        "Holding deposit, 12 Elm Road",
        "£2,000.00",
        "id=\"test-mode\"",
    ] {
        assert!(page.contains(needle), "{needle:?} not on the page:\n{page}");
    }
    assert!(!page.contains("<Ltd>"), "{page}");
    assert!(
        !page.contains("Pay default") && !page.contains("default"),
        "{page}"
    );
    assert!(
        !without_inputs(&page).contains(&id),
        "the session id is not shown:\n{page}"
    );

    // The gateway's hosted card page names the merchant and a short reference.
    let (status, _, card) = form(&page, "checkout-hand-off").submit(&d.base()).await;
    assert_eq!(status, 200, "{card}");
    assert!(
        card.contains("Harbour Lettings &amp; Co &lt;Ltd&gt;"),
        "{card}"
    );
    assert!(!card.contains("default"), "{card}");
    assert!(
        !without_inputs(&card).contains(&id),
        "no 60-character id as the order:\n{card}"
    );
    let reference = calmony_actors::checkout::short_reference(&id);
    assert!(
        card.contains(&reference) && page.contains(&reference),
        "{card}"
    );
}

#[tokio::test]
async fn a_bad_business_detail_is_refused_naming_its_option_and_changes_nothing() {
    let (_redis, d, _api) = newcomer();
    name_the_project(&d, &["--display-name", "Harbour Lettings"]);
    for (option, value) in [
        ("--brand-color", "green"),
        ("--brand-color", "#12345"),
        ("--logo-url", "http://cdn.harbour.example/logo.png"),
        ("--logo-url", "javascript:alert(1)"),
        ("--support-email", "help at harbour"),
        ("--vat-number", "123"),
        ("--support-url", "ftp://harbour.example"),
    ] {
        let (status, _, stderr) = d.cli(&[
            "projects",
            "update",
            "default",
            "--display-name",
            "Changed",
            option,
            value,
        ]);
        assert!(!status.success(), "{option} {value} accepted");
        assert!(stderr.contains(option), "{option}: {stderr}");
    }
    let (status, shown, _) = d.cli(&["projects", "show", "default"]);
    assert!(status.success());
    assert!(shown.contains("Harbour Lettings"), "{shown}");
    assert!(!shown.contains("Changed"), "nothing written:\n{shown}");
    let (status, _, stderr) = d.cli(&["projects", "update", "nobody", "--display-name", "X"]);
    assert!(!status.success());
    assert!(stderr.contains("no project named"), "{stderr}");
    let (status, _, stderr) = d.cli(&["projects", "create", "default"]);
    assert!(!status.success());
    assert!(stderr.contains("exists already"), "{stderr}");
}

#[tokio::test]
async fn the_invoice_pdf_shows_the_merchants_name_address_vat_number_and_support_email() {
    let (_redis, d, api) = newcomer();
    let customer = api.customer().await;
    let card = api
        .card("4242424242424242", 12, 2030, Some(&customer))
        .await;
    // A PDF rendered before the details are set is not kept once they change.
    let first = api.pay(2500, &card, &format!("&customer={customer}")).await;
    assert_eq!(first.json["status"], "succeeded", "{}", first.text);
    let receipt = |pi: serde_json::Value| {
        let api = &api;
        let customer = customer.clone();
        async move {
            let list = api
                .get(&format!(
                    "/v1/invoices?customer={customer}&status=paid&limit=100"
                ))
                .await;
            list.json["data"]
                .as_array()
                .expect("list")
                .iter()
                .find(|i| i["payment_intent"] == pi)
                .and_then(|i| i["id"].as_str())
                .expect("a receipt invoice")
                .to_string()
        }
    };
    let invoice = receipt(first.json["id"].clone()).await;
    let before = pdf_text(&api, &invoice).await;
    assert!(!before.contains("GB 123 4567 89"), "{before}");
    // Without a display name no supplier name is printed, never the internal "default"; the
    // operator is told how to set one.
    assert!(!before.contains("default"), "{before}");
    assert!(before.contains("INVOICE"), "{before}");
    let logs = d.logs();
    assert!(
        logs.contains("projects update default --display-name"),
        "{logs}"
    );

    name_the_project(&d, DETAILS);
    let text = pdf_text(&api, &invoice).await;
    for needle in [
        "Harbour Lettings & Co <Ltd>",
        "12 Quay Street",
        "BS1 4XX",
        "VAT no. GB 123 4567 89",
        "help@harbour.example",
    ] {
        assert!(text.contains(needle), "{needle:?} not in the PDF:\n{text}");
    }
    assert!(!text.contains("default"), "{text}");
}

async fn pdf_text(api: &Api, invoice: &str) -> String {
    let (_dir, file) = api.invoice_pdf_file(invoice).await;
    String::from_utf8_lossy(
        &std::process::Command::new("pdftotext")
            .arg("-layout")
            .arg(&file)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils)")
            .stdout,
    )
    .into_owned()
}

#[tokio::test]
async fn the_three_d_secure_page_names_the_merchant_being_paid() {
    let (_redis, d, api) = newcomer();
    name_the_project(&d, DETAILS);
    let pm = api.card("4000002500003155", 12, 2030, None).await;
    let r = api
        .pay(2500, &pm, "&return_url=https%3A%2F%2Fshop.example%2Fdone")
        .await;
    assert_eq!(r.json["status"], "requires_action", "{}", r.text);
    let url = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url");
    let (status, page) = get_page(url).await;
    assert_eq!(status, 200, "{page}");
    for needle in [
        "confirm this payment to Harbour Lettings &amp; Co &lt;Ltd&gt;",
        "VAT no. GB 123 4567 89",
        "--brand:#0b6e4f",
    ] {
        assert!(page.contains(needle), "{needle:?} not on the page:\n{page}");
    }
    assert!(!page.contains("default"), "{page}");
}
