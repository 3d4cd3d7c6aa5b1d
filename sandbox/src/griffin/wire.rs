//! The sandbox's records as Griffin's resources, and its answers: JSON bodies, the §10 error
//! shape, links relative to the API root (`/v0/...`) as Griffin writes them.

use calmony_protocol::griffin::{
    Admission, AdmissionSchemeInformation, AdmissionStatus, BankAccount, BankAddress, ErrorBody,
    Index, Money, Organization, OrganizationMode, Payment, PaymentDirection, Submission,
    SubmissionSchemeInformation, SubmissionStatus, Transaction, account::AccountStatus,
};
use hyper::StatusCode;
use hyper::header::{HeaderValue, WWW_AUTHENTICATE};
use serde::Serialize;

use super::decide::submission_status;
use super::setup::{ACCOUNT_ID, GriffinSandboxConfig, ORGANIZATION_ID};
use super::store::{Entry, PaymentRecord};
use crate::reply::{self, Reply};

pub fn org_url() -> String {
    format!("/v0/organizations/{ORGANIZATION_ID}")
}

pub fn account_url() -> String {
    format!("/v0/bank/accounts/{ACCOUNT_ID}")
}

pub fn payment_url(id: &str) -> String {
    format!("/v0/payments/{id}")
}

/// Milliseconds as Griffin's timestamps: `2025-04-11T10:02:17.530Z`.
pub fn iso(ms: i64) -> String {
    let t = crate::clock::UtcTime::from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        ms.rem_euclid(1000)
    )
}

pub fn index() -> Index {
    Index {
        organization_url: org_url(),
        users_url: None,
        roles_url: None,
    }
}

pub fn organization() -> Organization {
    let org = org_url();
    Organization {
        organization_url: org.clone(),
        display_name: Some("Calmony Sandbox".to_owned()),
        organization_mode: OrganizationMode::TestMode,
        organization_bank_accounts_url: format!("{org}/bank/accounts"),
        organization_payments_url: format!("{org}/payments"),
        organization_payments_search_url: format!("{org}/payments/search"),
        organization_events_url: format!("{org}/events"),
        organization_webhooks_url: format!("{org}/webhooks"),
        organization_legal_persons_url: None,
        own_legal_person_url: None,
    }
}

pub fn account(
    config: &GriffinSandboxConfig,
    balance: i64,
    holds: i64,
    opened_ms: i64,
) -> BankAccount {
    let url = account_url();
    BankAccount {
        account_url: url.clone(),
        display_name: "Settlement GBP".to_owned(),
        account_status: AccountStatus::Open,
        bank_product_type: "operational-account".to_owned(),
        pooled_funds: false,
        account_restricted: false,
        primary_account: true,
        bank_addresses: vec![BankAddress::uk(
            &config.account_holder,
            &config.sort_code,
            &config.account_number,
        )],
        account_balance: Money::gbp(balance),
        available_balance: Money::gbp(balance - holds),
        accrued_interest: Some(Money::gbp(0)),
        created_at: iso(opened_ms),
        opened_at: Some(iso(opened_ms)),
        account_transactions_url: format!("{url}/transactions"),
        account_payments_url: format!("{url}/payments"),
        account_admissions_url: format!("{url}/admissions"),
        account_submissions_url: format!("{url}/submissions"),
        owner_url: None,
    }
}

pub fn transaction(e: &Entry) -> Transaction {
    Transaction {
        account_transaction_url: format!("/v0/bank/transactions/{}", e.id),
        account_url: account_url(),
        balance_change: Money::gbp(e.amount),
        balance_change_direction: e.direction,
        account_balance: Money::gbp(e.balance_after),
        transaction_origin_type: e.origin,
        processed_at: iso(e.processed_ms),
        effective_at: iso(e.processed_ms),
        payment_url: e.payment_id.as_deref().map(payment_url),
        reference: e.reference.clone(),
        description: e.description.clone(),
        origin_metadata: None,
    }
}

pub fn payment(p: &PaymentRecord) -> Payment {
    let url = payment_url(&p.id);
    Payment {
        payment_url: url.clone(),
        payment_direction: p.direction,
        payment_amount: Money::gbp(p.amount),
        payment_reference: p.reference.clone(),
        creditor: match p.direction {
            PaymentDirection::OutboundPayment => p.creditor.clone(),
            PaymentDirection::InboundPayment => {
                Some(calmony_protocol::griffin::Creditor::GriffinBankAccount {
                    account_url: account_url(),
                })
            }
        },
        debtor: p.debtor.clone(),
        account_url: account_url(),
        created_at: iso(p.created_ms),
        payment_submissions_url: format!("{url}/submissions"),
        payment_admissions_url: format!("{url}/admissions"),
        latest_submission_url: p
            .submission
            .as_ref()
            .map(|s| format!("/v0/submissions/{}", s.id)),
        rejected_at: None,
        rejection_reason: None,
    }
}

/// The payment's submission as it stands at `now_ms`.
pub fn submission(p: &PaymentRecord, now_ms: i64, delay_ms: i64) -> Option<Submission> {
    let s = p.submission.as_ref()?;
    let status = submission_status(now_ms, s.submitted_ms, delay_ms, s.fate);
    let (code, description, reason) = match status {
        SubmissionStatus::Failed => (
            "1114",
            "Rejected by the receiving bank",
            Some("beneficiary-account-closed".to_owned()),
        ),
        _ => ("0000", "Accepted by scheme", None),
    };
    Some(Submission {
        submission_url: format!("/v0/submissions/{}", s.id),
        payment_url: payment_url(&p.id),
        account_url: account_url(),
        submission_status: status,
        submission_status_reason: reason,
        submission_scheme_information: SubmissionSchemeInformation {
            payment_scheme: s.scheme,
            end_to_end_identification: Some(s.end_to_end_id.clone()),
            scheme_status_code: Some(code.to_owned()),
            scheme_status_code_description: Some(description.to_owned()),
        },
        unique_scheme_identifier: Some(s.scheme_id.clone()),
        created_at: iso(s.submitted_ms),
    })
}

pub fn admission(p: &PaymentRecord) -> Option<Admission> {
    let a = p.admission.as_ref()?;
    Some(Admission {
        admission_url: format!("/v0/admissions/{}", a.id),
        payment_url: payment_url(&p.id),
        account_url: account_url(),
        admission_status: AdmissionStatus::Delivered,
        admission_scheme_information: AdmissionSchemeInformation {
            payment_scheme: calmony_protocol::griffin::PaymentScheme::Fps,
            end_to_end_identification: a.end_to_end_id.clone(),
        },
        unique_scheme_identifier: Some(a.scheme_id.clone()),
        created_at: iso(a.created_ms),
    })
}

/// A resource as JSON with `status`.
pub fn ok<T: Serialize>(status: StatusCode, value: &T) -> Reply {
    match serde_json::to_value(value) {
        Ok(v) => reply::json(status, &v),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            &e.to_string(),
            None,
        ),
    }
}

/// Griffin's error body.
pub fn error(status: StatusCode, title: &str, detail: &str, pointer: Option<&str>) -> Reply {
    ok_raw(status, &ErrorBody::one(title, detail, pointer))
}

fn ok_raw(status: StatusCode, body: &ErrorBody) -> Reply {
    let value = serde_json::to_value(body).unwrap_or_default();
    reply::json(status, &value)
}

/// 401 with the `www-authenticate` Griffin sends.
pub fn unauthorized(detail: &str) -> Reply {
    let mut answer = error(StatusCode::UNAUTHORIZED, "Unauthorized", detail, None);
    answer.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("GriffinAPIKey realm=\"calmony-griffin-sandbox\""),
    );
    answer
}

pub fn not_found() -> Reply {
    error(StatusCode::NOT_FOUND, "Not found", "no such resource", None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_milliseconds_and_z() {
        assert_eq!(super::iso(1_744_365_737_530), "2025-04-11T10:02:17.530Z");
    }
}
