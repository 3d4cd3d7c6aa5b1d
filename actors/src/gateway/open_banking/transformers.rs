//! Between our orders and outcomes and the OBIE v3.1 wire: pure functions.

use calmony_protocol::open_banking::{
    Account, ConsentRequest, ConsentRequestData, ConsentResponse, ConsentStatus, Initiation,
    InstructedAmount, PaymentProgress, PaymentRequest, PaymentRequestData, PaymentResponse,
    RemittanceInformation, Risk, SCHEME_SCAN, YesNo, minor_to_amount, scan, split_scan,
};

use crate::gateway::bank_flows::{
    BankError, BankPayment, BankPaymentState, Consent, ConsentOrder, ConsentState, PayerAccount,
};

/// The longest Reference FPS carries to the payee's statement.
pub const REFERENCE_MAX: usize = 18;
/// The longest EndToEndIdentification FPS carries.
pub const END_TO_END_MAX: usize = 31;

/// The consent request for `order`. Deterministic: the payment repeats its Initiation and
/// Risk, and the bank compares them member by member.
pub fn consent_request(order: &ConsentOrder) -> Result<ConsentRequest, BankError> {
    let invalid = |m: String| BankError::Invalid(m);
    if order.currency != "GBP" {
        return Err(invalid(format!("currency {} is not GBP", order.currency)));
    }
    if order.reference.is_empty() || order.reference.chars().count() > REFERENCE_MAX {
        return Err(invalid(format!(
            "the reference must be 1 to {REFERENCE_MAX} characters"
        )));
    }
    if order.end_to_end_id.is_empty() || order.end_to_end_id.chars().count() > END_TO_END_MAX {
        return Err(invalid(format!(
            "the end-to-end id must be 1 to {END_TO_END_MAX} characters"
        )));
    }
    if order.instruction_id.is_empty() || order.instruction_id.chars().count() > 35 {
        return Err(invalid(
            "the instruction id must be 1 to 35 characters".into(),
        ));
    }
    let amount = minor_to_amount(order.amount).map_err(|e| invalid(e.to_string()))?;
    let identification = scan(&order.creditor.sort_code, &order.creditor.account_number)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(ConsentRequest {
        data: ConsentRequestData {
            read_refund_account: Some(YesNo::Yes),
            initiation: Initiation {
                instruction_identification: order.instruction_id.clone(),
                end_to_end_identification: order.end_to_end_id.clone(),
                local_instrument: Some("UK.OBIE.FPS".to_owned()),
                instructed_amount: InstructedAmount {
                    amount,
                    currency: order.currency.clone(),
                },
                debtor_account: None,
                creditor_account: Account {
                    scheme_name: SCHEME_SCAN.to_owned(),
                    identification,
                    name: Some(order.creditor.name.clone()),
                    secondary_identification: None,
                },
                remittance_information: Some(RemittanceInformation {
                    reference: Some(order.reference.clone()),
                    unstructured: None,
                }),
            },
        },
        risk: Risk {
            payment_context_code: Some("EcommerceMerchantInitiatedPayment".to_owned()),
            merchant_customer_identification: order.merchant_customer_id.clone(),
            contract_present_indicator: Some(false),
            beneficiary_prepopulated_indicator: Some(true),
            ..Risk::default()
        },
    })
}

/// The payment request for an authorised consent: the consent's Initiation and Risk again.
pub fn payment_request(
    consent_id: &str,
    order: &ConsentOrder,
) -> Result<PaymentRequest, BankError> {
    let consent = consent_request(order)?;
    Ok(PaymentRequest {
        data: PaymentRequestData {
            consent_id: consent_id.to_owned(),
            initiation: consent.data.initiation,
        },
        risk: consent.risk,
    })
}

pub fn consent_state(status: ConsentStatus) -> ConsentState {
    match status {
        ConsentStatus::AwaitingAuthorisation => ConsentState::AwaitingAuthorisation,
        ConsentStatus::Authorised => ConsentState::Authorised,
        ConsentStatus::Rejected => ConsentState::Rejected,
        ConsentStatus::Consumed => ConsentState::Consumed,
    }
}

pub fn consent(response: &ConsentResponse) -> Consent {
    Consent {
        id: response.data.consent_id.clone(),
        status: consent_state(response.data.status),
    }
}

fn payer(account: &Account) -> Option<PayerAccount> {
    if account.scheme_name != SCHEME_SCAN {
        return None;
    }
    let (sort_code, account_number) = split_scan(&account.identification).ok()?;
    Some(PayerAccount {
        name: account.name.clone(),
        sort_code,
        account_number,
    })
}

pub fn payment(response: &PaymentResponse) -> BankPayment {
    let d = &response.data;
    let status = match d.status.outcome() {
        PaymentProgress::InProgress => BankPaymentState::InProgress,
        PaymentProgress::Settled => BankPaymentState::Settled,
        PaymentProgress::Rejected => BankPaymentState::Rejected,
    };
    let debtor = d.debtor.as_ref();
    let last4 = debtor.and_then(|a| {
        let digits: Vec<char> = a.identification.chars().collect();
        (digits.len() >= 4).then(|| digits[digits.len() - 4..].iter().collect::<String>())
    });
    BankPayment {
        id: d.domestic_payment_id.clone(),
        consent_id: d.consent_id.clone(),
        status,
        bank_status: d.status.as_str().to_owned(),
        payer_name: debtor.and_then(|a| a.name.clone()),
        payer_account_last4: last4,
        end_to_end_id: d.initiation.end_to_end_identification.clone(),
        refund_account: d.refund.as_ref().and_then(|r| payer(&r.account)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::bank_flows::Creditor;

    fn order() -> ConsentOrder {
        ConsentOrder {
            idempotency_key: "k1".into(),
            instruction_id: "PBB-1".into(),
            end_to_end_id: "pi_1".into(),
            amount: 245000,
            currency: "GBP".into(),
            creditor: Creditor {
                sort_code: "04-00-04".into(),
                account_number: "10000001".into(),
                name: "Shop".into(),
            },
            reference: "ORD-42".into(),
            merchant_customer_id: Some("cus_1".into()),
        }
    }

    #[test]
    fn an_order_becomes_a_consent_and_the_same_payment() {
        let c = consent_request(&order()).expect("valid");
        assert_eq!(c.data.initiation.instructed_amount.amount, "2450.00");
        assert_eq!(
            c.data.initiation.creditor_account.identification,
            "04000410000001"
        );
        let p = payment_request("pdc-1", &order()).expect("valid");
        assert_eq!(p.data.initiation, c.data.initiation);
        assert_eq!(p.risk, c.risk);
    }

    #[test]
    fn an_order_outside_the_wire_bounds_is_refused_before_sending() {
        type Edit = fn(&mut ConsentOrder);
        let cases: [Edit; 6] = [
            |o| o.amount = 0,
            |o| o.currency = "EUR".into(),
            |o| o.reference = "R".repeat(19),
            |o| o.end_to_end_id = "E".repeat(32),
            |o| o.creditor.sort_code = "04-00".into(),
            |o| o.creditor.account_number = "1".into(),
        ];
        for (i, edit) in cases.into_iter().enumerate() {
            let mut o = order();
            edit(&mut o);
            assert!(
                matches!(consent_request(&o), Err(BankError::Invalid(_))),
                "case {i}"
            );
        }
    }
}
