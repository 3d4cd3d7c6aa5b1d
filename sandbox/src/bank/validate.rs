//! Schema checks on a consent's Initiation and Risk, as a bank makes them on arrival: a bad
//! payload is refused at once (400) with the OBIE code and the path of the member at fault.

use calmony_protocol::open_banking::{Initiation, Risk, SCHEME_SCAN, amount_to_minor};

/// Why a payload is refused: the OBIE error code, the path, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub path: &'static str,
    pub message: String,
}

fn invalid(code: &'static str, path: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        path,
        message: message.into(),
    }
}

/// Limits from the OBIE v3.1 OpenAPI (Name at its v3.1.10 length).
const ID_MAX: usize = 35;
const NAME_MAX: usize = 350;
const REFERENCE_MAX: usize = 35;
const UNSTRUCTURED_MAX: usize = 140;
const CUSTOMER_ID_MAX: usize = 70;

/// Check `initiation` and `risk`; the amount in pence when they pass.
pub fn consent(initiation: &Initiation, risk: &Risk) -> Result<i64, Invalid> {
    let text = |value: &str, max: usize, path: &'static str| {
        if value.trim().is_empty() {
            Err(invalid(
                "UK.OBIE.Field.Missing",
                path,
                format!("{path} is required"),
            ))
        } else if value.chars().count() > max {
            Err(invalid(
                "UK.OBIE.Field.Invalid",
                path,
                format!("{path} is longer than {max}"),
            ))
        } else {
            Ok(())
        }
    };
    text(
        &initiation.instruction_identification,
        ID_MAX,
        "Data.Initiation.InstructionIdentification",
    )?;
    text(
        &initiation.end_to_end_identification,
        ID_MAX,
        "Data.Initiation.EndToEndIdentification",
    )?;
    let amount = amount_to_minor(&initiation.instructed_amount.amount).map_err(|e| {
        invalid(
            "UK.OBIE.Field.Invalid",
            "Data.Initiation.InstructedAmount.Amount",
            e.to_string(),
        )
    })?;
    if initiation.instructed_amount.currency != "GBP" {
        return Err(invalid(
            "UK.OBIE.Unsupported.Currency",
            "Data.Initiation.InstructedAmount.Currency",
            "only GBP is supported",
        ));
    }
    let creditor = &initiation.creditor_account;
    if creditor.scheme_name != SCHEME_SCAN {
        return Err(invalid(
            "UK.OBIE.Unsupported.Scheme",
            "Data.Initiation.CreditorAccount.SchemeName",
            "only UK.OBIE.SortCodeAccountNumber is supported",
        ));
    }
    if creditor.identification.len() != 14
        || !creditor.identification.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid(
            "UK.OBIE.Unsupported.AccountIdentifier",
            "Data.Initiation.CreditorAccount.Identification",
            "a sort code and account number are 14 digits",
        ));
    }
    text(
        creditor.name.as_deref().unwrap_or(""),
        NAME_MAX,
        "Data.Initiation.CreditorAccount.Name",
    )?;
    if let Some(remittance) = &initiation.remittance_information {
        if let Some(reference) = &remittance.reference {
            text(
                reference,
                REFERENCE_MAX,
                "Data.Initiation.RemittanceInformation.Reference",
            )?;
        }
        if let Some(unstructured) = &remittance.unstructured {
            text(
                unstructured,
                UNSTRUCTURED_MAX,
                "Data.Initiation.RemittanceInformation.Unstructured",
            )?;
        }
    }
    if let Some(customer) = &risk.merchant_customer_identification {
        text(
            customer,
            CUSTOMER_ID_MAX,
            "Risk.MerchantCustomerIdentification",
        )?;
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calmony_protocol::open_banking::{Account, InstructedAmount, RemittanceInformation};

    fn good() -> Initiation {
        Initiation {
            instruction_identification: "PBB-1".into(),
            end_to_end_identification: "E2E-1".into(),
            local_instrument: None,
            instructed_amount: InstructedAmount {
                amount: "2450.00".into(),
                currency: "GBP".into(),
            },
            debtor_account: None,
            creditor_account: Account {
                scheme_name: SCHEME_SCAN.into(),
                identification: "04051270031942".into(),
                name: Some("Example Trading Ltd".into()),
                secondary_identification: None,
            },
            remittance_information: Some(RemittanceInformation {
                reference: Some("ORD-0042".into()),
                unstructured: None,
            }),
        }
    }

    #[test]
    fn a_consent_payload_is_checked_member_by_member() {
        type Edit = fn(&mut Initiation);
        let cases: [(Edit, Result<i64, &str>); 10] = [
            (|_| {}, Ok(245000)),
            (
                |i| i.instructed_amount.amount = "24.5.0".into(),
                Err("Data.Initiation.InstructedAmount.Amount"),
            ),
            (
                |i| i.instructed_amount.amount = "0.001".into(),
                Err("Data.Initiation.InstructedAmount.Amount"),
            ),
            (
                |i| i.instructed_amount.currency = "EUR".into(),
                Err("Data.Initiation.InstructedAmount.Currency"),
            ),
            (
                |i| i.creditor_account.identification = "04-05-12700319".into(),
                Err("Data.Initiation.CreditorAccount.Identification"),
            ),
            (
                |i| i.creditor_account.scheme_name = "UK.OBIE.IBAN".into(),
                Err("Data.Initiation.CreditorAccount.SchemeName"),
            ),
            (
                |i| i.creditor_account.name = None,
                Err("Data.Initiation.CreditorAccount.Name"),
            ),
            (
                |i| i.creditor_account.name = Some("n".repeat(351)),
                Err("Data.Initiation.CreditorAccount.Name"),
            ),
            (
                |i| {
                    i.remittance_information = Some(RemittanceInformation {
                        reference: Some("r".repeat(36)),
                        unstructured: None,
                    })
                },
                Err("Data.Initiation.RemittanceInformation.Reference"),
            ),
            (
                |i| i.end_to_end_identification = String::new(),
                Err("Data.Initiation.EndToEndIdentification"),
            ),
        ];
        for (i, (edit, expected)) in cases.into_iter().enumerate() {
            let mut initiation = good();
            edit(&mut initiation);
            let got = consent(&initiation, &Risk::default()).map_err(|e| e.path);
            assert_eq!(got, expected, "case {i}");
        }
        let risk = Risk {
            merchant_customer_identification: Some("c".repeat(71)),
            ..Risk::default()
        };
        assert_eq!(
            consent(&good(), &risk).map_err(|e| e.path),
            Err("Risk.MerchantCustomerIdentification")
        );
    }
}
