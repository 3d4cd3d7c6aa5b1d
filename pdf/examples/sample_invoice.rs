//! Renders a sample paid invoice to /tmp/sample-invoice.pdf, for eyeballing the layout:
//!
//! ```sh
//! cargo run -p calmony-pdf --example sample_invoice
//! pdftoppm -png -r 80 -singlefile /tmp/sample-invoice.pdf /tmp/sample-invoice
//! ```
//!
//! Pass `long` to render 60 line items instead, to see continuation pages, or `stress` for
//! overlong names, descriptions and footer, to see them wrapped and cut short.

use calmony_pdf::{InvoiceDocument, Line, Party, render_invoice};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let long = std::env::args().any(|a| a == "long");
    let stress = std::env::args().any(|a| a == "stress");
    let mut lines = vec![
        line("Pro plan (monthly subscription)", 1, 2500),
        line("Additional seats", 3, 800),
        line(
            "Priority support for the migration of the customer ledger, including two \
             remote workshops and a written summary of recommendations",
            1,
            12000,
        ),
    ];
    if long {
        lines = (1..=60)
            .map(|i| line(&format!("Metered usage, day {i}"), i, 10))
            .collect();
    }
    let subtotal: i64 = lines.iter().map(|l| l.amount).sum();
    let tax: i64 = lines.iter().map(|l| l.tax_amount).sum();
    let doc = InvoiceDocument {
        merchant: Party {
            name: "Łódź Café Ltd".into(),
            lines: vec![
                "14 Market Street".into(),
                "Manchester".into(),
                "M1 1AE".into(),
                "United Kingdom".into(),
            ],
            email: Some("billing@lodzcafe.co.uk".into()),
            tax_id: Some("GB 123 4567 89".into()),
        },
        customer: Party {
            name: "Zoë Ångström".into(),
            lines: vec![
                "Flat 3, 27 King's Road".into(),
                "London".into(),
                "SW3 4RP".into(),
            ],
            email: Some("zoe@example.com".into()),
            tax_id: None,
        },
        number: "CP-000123".into(),
        issued: "21 November 2026".into(),
        due: Some("21 December 2026".into()),
        period: Some("21 Nov 2026 – 21 Dec 2026".into()),
        lines,
        subtotal,
        tax_lines: vec![("VAT 20% (exclusive)".into(), tax)],
        total: subtotal + tax,
        amount_paid: subtotal + tax,
        amount_due: 0,
        status: "paid".into(),
        currency: "gbp".into(),
        footer: Some(
            "Thank you for your business. Łódź Café Ltd is registered in England and Wales, \
             company no. 01234567. Registered office: 14 Market Street, Manchester M1 1AE."
                .into(),
        ),
    };
    let mut doc = doc;
    if stress {
        doc.merchant.name = "The Extraordinarily Long-Named Łódź Artisan Café and Patisserie \
                             Trading Company Limited"
            .into();
        doc.customer.name = "Zoë Ångström-Featherstonehaugh-Cholmondeley of the Very Long \
                             Surname Society"
            .into();
        doc.customer.lines.push("x".repeat(300));
        doc.lines[0].description = "Bespoke integration work across the payments estate \
                                    "
        .repeat(20);
        doc.lines[1].unit_amount = 99_999_999_999;
        doc.lines[1].amount = 299_999_999_997;
        doc.footer = Some("Terms and conditions apply to all orders. ".repeat(60));
    }
    let pdf = render_invoice(&doc)?;
    std::fs::write("/tmp/sample-invoice.pdf", &pdf)?;
    println!("wrote /tmp/sample-invoice.pdf ({} bytes)", pdf.len());
    Ok(())
}

fn line(description: &str, quantity: i64, unit_amount: i64) -> Line {
    let amount = quantity * unit_amount;
    Line {
        description: description.into(),
        quantity,
        unit_amount,
        amount,
        tax_label: Some("VAT 20%".into()),
        tax_amount: amount / 5,
    }
}
