//! From an invoice to the PDF renderer's document (the InvoiceGenerator's half that knows the
//! payment domain; `calmony-pdf` only lays out what it is given), and the [`PdfRenderer`]
//! billing needs to turn that document into bytes.
//!
//! Billing names what it needs rather than reaching up to the actor that provides it: the
//! daemon hands [`Billing`](super::Billing)'s [`PdfSlot`] the InvoiceGenerator (which
//! implements [`PdfRenderer`]) once the actors start, so billing never imports `system`.

use calmony_pdf::{InvoiceDocument, Line, Party};

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use calmony_protocol::business::BusinessProfile;
use futures_util::future::BoxFuture;

use crate::projects::Merchant;
use crate::store::Store;
use calmony_protocol::billing::{Invoice, TaxRate};
use calmony_protocol::clock_text::date;
use calmony_protocol::customer::Customer;

/// What turns an invoice document into a PDF's bytes, off the runtime's async threads (the
/// daemon's is the InvoiceGenerator, a `SyncArbiter` of its own threads, so a PDF's CPU never
/// stalls payments). `Err` says why in words.
pub trait PdfRenderer: Send + Sync {
    fn render(&self, doc: InvoiceDocument) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// Where billing finds its [`PdfRenderer`]: empty until the daemon provides one, shared by
/// every clone of [`Billing`](super::Billing). While empty (the CLI, unit tests) a PDF renders
/// on a blocking thread of the runtime.
#[derive(Clone, Default)]
pub struct PdfSlot(Arc<OnceLock<Arc<dyn PdfRenderer>>>);

impl PdfSlot {
    /// Render with `renderer` from now on (the first one provided stays).
    pub fn provide(&self, renderer: Arc<dyn PdfRenderer>) {
        if self.0.set(renderer).is_err() {
            tracing::debug!("a PDF renderer was already provided; keeping the first");
        }
    }

    /// Render `doc` with the provided renderer, or on a blocking thread before there is one.
    pub async fn render(&self, doc: InvoiceDocument) -> Result<Vec<u8>, String> {
        match self.0.get() {
            Some(renderer) => renderer.render(doc).await,
            None => tokio::task::spawn_blocking(move || {
                calmony_pdf::render_invoice(&doc).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("invoice rendering failed: {e}"))?,
        }
    }
}

/// The invoice as printed. The supplier's block is the project's business details (trading
/// name, address, support email, VAT number: what a UK VAT invoice must show). A project
/// without a display name prints no supplier name: its own name is the operator's internal
/// one ("default"), never the payer's to see; [`warn_if_unnamed`] asks the operator for one.
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
            name: supplier_name(inv, profile).unwrap_or_default(),
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

/// The supplier's name as printed: the invoice's `account_name`, else the project's display
/// name; none else (never the project's internal name).
fn supplier_name(inv: &Invoice, profile: &BusinessProfile) -> Option<String> {
    inv.account_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| profile.payer_name().map(str::to_owned))
}

/// What the operator is told when a project's invoices go out without a supplier name.
pub fn unnamed_hint(project_name: &str) -> String {
    format!(
        "invoices of project {project_name:?} name no supplier: set its display name with \
         `calmony-payd projects update {project_name} --display-name \"Your Business Ltd\"`"
    )
}

/// Warn, at most once an hour per project and off the caller's path, when a project that
/// finalizes invoices has no display name to print on them.
pub fn warn_if_unnamed(store: &Store, project_id: &str) {
    static CHECKED: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Default::default);
    {
        let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if checked
            .get(project_id)
            .is_some_and(|at| now.duration_since(*at) < Duration::from_secs(3600))
        {
            return;
        }
        checked.insert(project_id.to_string(), now);
    }
    let (store, project_id) = (store.clone(), project_id.to_string());
    tokio::spawn(async move {
        if let Ok(merchant) = crate::projects::merchant(&store, &project_id).await
            && merchant.profile.payer_name().is_none()
        {
            tracing::warn!(project = %project_id, "{}", unnamed_hint(&merchant.project_name));
        }
    });
}

/// Where the customer asks about the invoice: the merchant's support contact when it has one.
fn footer(profile: &BusinessProfile) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::invoice_records::{BillTo, draft};
    use crate::billing::status::BillingReason;
    use crate::store::Scope;
    use calmony_protocol::Mode;

    fn invoice() -> Invoice {
        let to = BillTo {
            id: "cus_1",
            email: None,
            name: Some("Ann".into()),
            test_clock: None,
        };
        draft(
            "http://pay.example",
            &Scope::new("prj_1", Mode::Test),
            to,
            0,
            BillingReason::Manual,
        )
        .0
    }

    #[test]
    fn the_supplier_is_the_display_name_and_never_the_internal_project_name() {
        let unnamed = Merchant {
            project_id: "prj_1".into(),
            project_name: "default".into(),
            ..Merchant::default()
        };
        let doc = document(&invoice(), &unnamed, None, &[]);
        assert_eq!(
            doc.merchant.name, "",
            "no supplier name rather than the internal one"
        );
        assert!(!format!("{doc:?}").contains("default"), "{doc:?}");
        assert!(unnamed_hint("default").contains("projects update default --display-name"));

        let mut named = unnamed.clone();
        named.profile.display_name = Some("Harbour Lettings".into());
        assert_eq!(
            document(&invoice(), &named, None, &[]).merchant.name,
            "Harbour Lettings"
        );
        let mut inv = invoice();
        inv.account_name = Some("Harbour Lettings Ltd".into());
        assert_eq!(
            document(&inv, &named, None, &[]).merchant.name,
            "Harbour Lettings Ltd"
        );
    }
}
