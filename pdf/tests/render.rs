//! Renders invoices and reads them back with poppler (`pdfinfo`, `pdftotext`), the way a
//! customer's viewer would: page count, title, and that every name and amount comes out as
//! text (which also proves the embedded font maps glyphs back to Unicode).
//!
//! poppler-utils must be installed (`apt-get install -y poppler-utils`); the project's test
//! script installs it, so a missing tool fails loudly rather than skipping.

use std::path::PathBuf;
use std::process::Command;

use calmony_pdf::{InvoiceDocument, Line, Party, render_invoice};

fn line(description: &str, quantity: i64, unit_amount: i64) -> Line {
    let amount = quantity * unit_amount;
    Line {
        description: description.to_owned(),
        quantity,
        unit_amount,
        amount,
        tax_label: Some("VAT 20%".to_owned()),
        tax_amount: amount / 5,
    }
}

fn invoice(lines: Vec<Line>, status: &str) -> InvoiceDocument {
    let subtotal: i64 = lines.iter().map(|l| l.amount).sum();
    let tax: i64 = lines.iter().map(|l| l.tax_amount).sum();
    let paid = if status == "paid" { subtotal + tax } else { 0 };
    InvoiceDocument {
        merchant: Party {
            name: "Łódź Café Ltd".to_owned(),
            lines: vec![
                "14 Market Street".to_owned(),
                "Manchester M1 1AE".to_owned(),
            ],
            email: Some("billing@lodzcafe.co.uk".to_owned()),
            tax_id: Some("GB123456789".to_owned()),
        },
        customer: Party {
            name: "Zoë Ångström".to_owned(),
            lines: vec!["27 King's Road".to_owned(), "London SW3 4RP".to_owned()],
            email: Some("zoe@example.com".to_owned()),
            tax_id: None,
        },
        number: "CP-000123".to_owned(),
        issued: "21 November 2026".to_owned(),
        due: Some("21 December 2026".to_owned()),
        period: Some("21 Nov 2026 – 21 Dec 2026".to_owned()),
        lines,
        subtotal,
        tax_lines: vec![("VAT 20% (exclusive)".to_owned(), tax)],
        total: subtotal + tax,
        amount_paid: paid,
        amount_due: subtotal + tax - paid,
        status: status.to_owned(),
        currency: "gbp".to_owned(),
        footer: Some("Thank you for your business.".to_owned()),
    }
}

fn short_invoice() -> InvoiceDocument {
    invoice(
        vec![
            line("Pro plan (monthly)", 1, 2500),
            line("Extra seat", 2, 1000),
        ],
        "paid",
    )
}

/// Runs a poppler tool on `pdf` and returns its standard output. `pdftotext` needs `-` as
/// its output file to print to stdout; `pdfinfo` takes no output argument.
fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> String {
    let path = temp_pdf(pdf);
    let mut command = Command::new(tool);
    command.args(args).arg(&path);
    if tool == "pdftotext" {
        command.arg("-");
    }
    let output = command.output();
    let _ = std::fs::remove_file(&path);
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{tool}` is not installed; these tests need poppler-utils \
             (apt-get install -y poppler-utils)"
        ),
        Err(e) => panic!("running {tool}: {e}"),
    };
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("poppler prints UTF-8")
}

fn temp_pdf(pdf: &[u8]) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("calmony-pdf-{}-{n}.pdf", std::process::id()));
    std::fs::write(&path, pdf).expect("write temporary PDF");
    path
}

fn text(pdf: &[u8]) -> String {
    poppler("pdftotext", &["-enc", "UTF-8"], pdf)
}

fn info(pdf: &[u8]) -> String {
    poppler("pdfinfo", &["-enc", "UTF-8"], pdf)
}

fn page_count(pdf: &[u8]) -> usize {
    let info = info(pdf);
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .expect("pdfinfo reports Pages");
    pages.trim().parse().expect("page count is a number")
}

#[test]
fn a_short_invoice_is_one_page_with_all_its_text() {
    let pdf = render_invoice(&short_invoice()).expect("renders");
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    assert_eq!(page_count(&pdf), 1);

    let text = text(&pdf);
    for expected in [
        "CP-000123",
        "Łódź Café Ltd",
        "Zoë Ångström",
        "Pro plan (monthly)",
        "Extra seat",
        "£25.00",
        "£20.00",
        "£45.00", // subtotal
        "£9.00",  // VAT
        "£54.00", // total
        "PAID",
        "21 November 2026",
        "21 Nov 2026 – 21 Dec 2026",
        "VAT no. GB123456789",
        "Thank you for your business.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn names_in_other_scripts_come_back_as_text() {
    let mut doc = short_invoice();
    doc.customer.name = "Ελένη Παπαδοπούλου".to_owned();
    doc.customer.lines = vec!["Дмитрий Иванов, ул. Ленина 1".to_owned()];
    let text = text(&render_invoice(&doc).expect("renders"));
    assert!(text.contains("Ελένη Παπαδοπούλου"), "{text}");
    assert!(text.contains("Дмитрий Иванов"), "{text}");
}

#[test]
fn the_document_title_names_the_invoice() {
    let pdf = render_invoice(&short_invoice()).expect("renders");
    let info = info(&pdf);
    assert!(info.contains("Invoice CP-000123"), "{info}");
}

#[test]
fn a_long_invoice_continues_on_more_pages_and_keeps_every_line() {
    let lines = (1..=60)
        .map(|i| line(&format!("Consulting session {i:02} of 60"), 1, 5000))
        .collect();
    let pdf = render_invoice(&invoice(lines, "open")).expect("renders");
    let pages = page_count(&pdf);
    assert!(pages > 1, "60 lines on {pages} page(s)");

    let text = text(&pdf);
    for i in 1..=60 {
        let description = format!("Consulting session {i:02} of 60");
        assert!(text.contains(&description), "{description:?} missing");
    }
    assert!(text.contains(&format!("Page {pages} of {pages}")));
    assert!(text.contains("£3,600.00"), "total missing"); // 60 × £50 + 20% VAT
    assert!(text.contains("DUE"));
}

#[test]
fn long_text_stays_on_the_page() {
    let huge = "Bespoke integration work across the payments estate ".repeat(30);
    let mut doc = invoice(
        vec![line(&huge, 1, 100), line("Short line", 1, 100)],
        "open",
    );
    doc.customer.name = "A Customer With An Exceptionally Long Registered Company Name \
                         That Keeps Going Limited"
        .to_owned();
    doc.customer.lines.push("x".repeat(400));
    doc.footer = Some("Terms and conditions apply. ".repeat(100));
    let pdf = render_invoice(&doc).expect("renders");
    assert_eq!(page_count(&pdf), 1);

    // Every word's box must lie inside the page, clear of the edges.
    let boxes = poppler("pdftotext", &["-bbox"], &pdf);
    let mut words = 0;
    for word in boxes
        .lines()
        .filter(|l| l.trim_start().starts_with("<word"))
    {
        words += 1;
        let coordinate = |name: &str| -> f32 {
            let start = word.find(&format!("{name}=\"")).expect("coordinate") + name.len() + 2;
            let rest = &word[start..];
            rest[..rest.find('"').expect("closing quote")]
                .parse()
                .expect("number")
        };
        assert!(coordinate("xMin") >= 40.0, "{word}");
        assert!(coordinate("xMax") <= 595.28 - 40.0, "{word}");
        assert!(coordinate("yMax") <= 841.89 - 20.0, "{word}");
    }
    assert!(words > 50);
    let text = text(&pdf);
    assert!(text.contains('…'), "overlong text is cut with an ellipsis");
    assert!(text.contains("Short line"));
}

#[test]
fn the_stamp_follows_the_status() {
    for (status, word) in [("open", "DUE"), ("void", "VOID"), ("draft", "DRAFT")] {
        let pdf =
            render_invoice(&invoice(vec![line("Pro plan", 1, 2500)], status)).expect("renders");
        let text = text(&pdf);
        assert!(text.contains(word), "{status}: {word} missing");
        assert!(!text.contains("PAID"), "{status}: PAID printed");
    }
}

#[test]
fn an_invoice_without_lines_or_optional_fields_renders() {
    let doc = InvoiceDocument {
        number: "DRAFT".to_owned(),
        status: "draft".to_owned(),
        currency: "gbp".to_owned(),
        ..InvoiceDocument::default()
    };
    let pdf = render_invoice(&doc).expect("renders");
    assert_eq!(page_count(&pdf), 1);
    assert!(text(&pdf).contains("£0.00"));
}

#[test]
fn rendering_is_deterministic() {
    let doc = short_invoice();
    let first = render_invoice(&doc).expect("renders");
    let second = render_invoice(&doc).expect("renders");
    assert!(first == second, "same invoice, different bytes");
}
