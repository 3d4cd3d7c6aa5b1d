//! From an invoice to the PDF renderer's document (the InvoiceGenerator's half that knows the
//! payment domain; `calmony-pdf` only lays out what it is given).

use calmony_pdf::{InvoiceDocument, Line, Party};

use crate::projects::Merchant;
use calmony_protocol::billing::{Invoice, TaxRate};
use calmony_protocol::clock_text::date;
use calmony_protocol::customer::Customer;

/// The invoice as printed. The supplier's block is the project's business details (trading
/// name, address, support email, VAT number: what a UK VAT invoice must show); a project
/// without a display name falls back to its own name, since an invoice must name its supplier.
pub fn document(
    inv: &Invoice,
    merchant: &Merchant,
    customer: Option<&Customer>,
    rates: &[TaxRate],
) -> InvoiceDocument {
    let label = |id: &str| {
        rates
            .iter()
            .find(|r| r.id == id)
            .map(|r| format!("{} {}%", r.display_name, r.percentage))
    };
    let profile = &merchant.profile;
    let mut bill_to = Vec::new();
    if let Some(a) = customer.and_then(|c| c.address.as_ref()) {
        for part in [&a.line1, &a.line2, &a.city, &a.postal_code, &a.country]
            .into_iter()
            .flatten()
        {
            bill_to.push(part.clone());
        }
    }
    InvoiceDocument {
        merchant: Party {
            name: inv
                .account_name
                .clone()
                .or_else(|| profile.payer_name().map(str::to_owned))
                .or_else(|| {
                    (!merchant.project_name.is_empty()).then(|| merchant.project_name.clone())
                })
                .unwrap_or_else(|| "Calmony Pay merchant".into()),
            lines: if profile.address.is_empty() {
                vec!["United Kingdom".into()]
            } else {
                profile.address.clone()
            },
            email: profile.support_email.clone(),
            tax_id: profile.vat_number.clone(),
        },
        customer: Party {
            name: inv
                .customer_name
                .clone()
                .or_else(|| customer.and_then(|c| c.name.clone()))
                .unwrap_or_else(|| inv.customer.clone()),
            lines: bill_to,
            email: inv.customer_email.clone(),
            tax_id: None,
        },
        number: inv.number.clone().unwrap_or_else(|| "DRAFT".into()),
        issued: date(inv.status_transitions.finalized_at.unwrap_or(inv.created)),
        due: inv.due_date.map(date),
        period: (inv.period_end > inv.period_start)
            .then(|| format!("{} – {}", date(inv.period_start), date(inv.period_end))),
        lines: inv
            .lines
            .data
            .iter()
            .map(|l| Line {
                description: l.description.clone().unwrap_or_default(),
                quantity: l.quantity,
                unit_amount: l.unit_amount,
                amount: l.amount,
                tax_label: l.tax_amounts.first().and_then(|t| label(&t.tax_rate)),
                tax_amount: l.tax_amounts.iter().map(|t| t.amount).sum(),
            })
            .collect(),
        subtotal: inv.subtotal,
        tax_lines: inv
            .total_taxes
            .iter()
            .map(|t| {
                (
                    format!(
                        "{}{}",
                        label(&t.tax_rate).unwrap_or_else(|| "Tax".into()),
                        if t.inclusive { " (included)" } else { "" }
                    ),
                    t.amount,
                )
            })
            .collect(),
        total: inv.total,
        amount_paid: inv.amount_paid,
        amount_due: inv.amount_remaining,
        status: inv.status.clone(),
        currency: inv.currency.clone(),
        footer: Some(footer(profile)),
    }
}

/// Where the customer asks about the invoice: the merchant's support contact when it has one.
fn footer(profile: &calmony_protocol::business::BusinessProfile) -> String {
    let contact: Vec<&str> = [
        profile.support_email.as_deref(),
        profile.support_url.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if contact.is_empty() {
        "Thank you for your business. Questions? Reply to the email this invoice came with.".into()
    } else {
        format!(
            "Thank you for your business. Questions? {}",
            contact.join(" · ")
        )
    }
}
