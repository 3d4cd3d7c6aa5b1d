//! The payer's pages at the sandbox bank: the consent to approve, and what a decided or
//! expired consent says. Plain server-rendered HTML, one form, every value escaped.

use calmony_protocol::open_banking::{ConsentStatus, amount_to_minor, format_gbp};

use super::ctx::TEST_ACCOUNTS;
use super::store::ConsentRecord;
use crate::pages::{document, escape};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;\
     padding:0 1rem;line-height:1.5;color:#1a1a1a}h1{font-size:1.4rem}\
     dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}\
     fieldset{border:1px solid #ccc;border-radius:.5rem;margin:1rem 0}\
     label{display:block;padding:.25rem 0}.actions{display:flex;flex-wrap:wrap;gap:.5rem}\
     button{font:inherit;padding:.6rem 1.2rem;border-radius:.4rem;border:1px solid #555;\
     background:#fff;cursor:pointer}button.primary{background:#1b5e20;color:#fff;border-color:#1b5e20}\
     .note{color:#555;font-size:.9rem}";

/// What the consent page needs.
pub struct Authorise<'a> {
    pub bank_id: &'a str,
    pub bank_name: &'a str,
    pub consent: &'a ConsentRecord,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub csrf: &'a str,
}

/// The consent: who is paid how much, from which test account, and three ways to answer.
pub fn authorise(a: &Authorise<'_>) -> String {
    let initiation = &a.consent.request.data.initiation;
    let amount = amount_to_minor(&initiation.instructed_amount.amount)
        .map_or_else(|_| initiation.instructed_amount.amount.clone(), format_gbp);
    let payee = initiation.creditor_account.name.as_deref().unwrap_or("");
    let reference = initiation
        .remittance_information
        .as_ref()
        .and_then(|r| r.reference.as_deref())
        .unwrap_or("");
    let mut accounts = String::new();
    for (i, account) in TEST_ACCOUNTS.iter().enumerate() {
        accounts.push_str(&format!(
            "<label><input type=\"radio\" name=\"account\" value=\"{i}\"{checked}> {name}, \
             sort code {sort}, account ending {last4}</label>\n",
            checked = if i == 0 { " checked" } else { "" },
            name = escape(account.name),
            sort = escape(account.sort_code),
            last4 = escape(&account.account_number[4..]),
        ));
    }
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            escape(value)
        )
    };
    let body = format!(
        "<h1>{bank}: confirm a payment</h1>\n\
         <p class=\"note\">Calmony Pay sandbox bank. No real money moves.</p>\n\
         <dl>\n<dt>Pay</dt><dd>{payee}</dd>\n<dt>Amount</dt><dd>{amount}</dd>\n\
         <dt>Reference</dt><dd>{reference}</dd>\n</dl>\n\
         <form id=\"authorise\" method=\"post\" action=\"/sandbox/bank/{bank_id}/authorize\">\n\
         {consent}{redirect}{state}{nonce}{csrf}\
         <fieldset>\n<legend>Pay from</legend>\n{accounts}</fieldset>\n\
         <div class=\"actions\">\n\
         <button class=\"primary\" id=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n\
         <button id=\"reject\" type=\"submit\" name=\"decision\" value=\"reject\">Reject</button>\n\
         <button id=\"cancel\" type=\"submit\" name=\"decision\" value=\"cancel\">Cancel</button>\n\
         </div>\n</form>\n",
        bank = escape(a.bank_name),
        bank_id = escape(a.bank_id),
        payee = escape(payee),
        amount = escape(&amount),
        reference = escape(reference),
        consent = hidden("consent_id", &a.consent.id),
        redirect = hidden("redirect_uri", a.redirect_uri),
        state = hidden("state", a.state),
        nonce = hidden("nonce", a.nonce),
        csrf = hidden("csrf", a.csrf),
    );
    document(&format!("{} — confirm payment", a.bank_name), STYLE, &body)
}

/// A consent that can no longer be decided, and why.
pub fn decided(bank_name: &str, status: ConsentStatus) -> String {
    let why = match status {
        ConsentStatus::Authorised | ConsentStatus::Consumed => "This payment was already approved.",
        ConsentStatus::Rejected => "This payment was refused, cancelled or has expired.",
        ConsentStatus::AwaitingAuthorisation => "This payment is waiting for you.",
    };
    let body = format!(
        "<h1>{bank}</h1>\n<p>{why}</p>\n<p>You can close this page and return to the shop.</p>\n",
        bank = escape(bank_name),
    );
    document(bank_name, STYLE, &body)
}

/// A request the bank cannot act on.
pub fn problem(title: &str, message: &str) -> String {
    let body = format!("<h1>{}</h1>\n<p>{}</p>\n", escape(title), escape(message));
    document(title, STYLE, &body)
}
