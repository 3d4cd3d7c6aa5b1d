//! The resource server: `domestic-payment-consents` and `domestic-payments`.

use calmony_protocol::open_banking::{
    ConsentRequest, ConsentResponse, ConsentResponseData, ConsentStatus, IDEMPOTENCY_KEY_MAX,
    Links, Meta, PaymentRequest, PaymentResponse, PaymentResponseData, PaymentStatus, Refund,
    YesNo, headers, jws,
};
use hyper::StatusCode;

use super::behaviour::consent_status;
use super::ctx::{Ctx, IDEMPOTENCY_TTL_MS, TEST_ACCOUNTS, iso, random_hex, sha256_hex};
use super::store::{
    self, Commit, Committed, ConsentRecord, Grant, IdemRecord, LedgerLine, PaymentRecord,
};
use crate::keys;
use crate::reply::Reply;

/// How many times a payment is decided again after losing a race on its consent.
const CONFLICT_RETRIES: usize = 5;

/// The request's idempotency key, or the refusal.
fn idempotency_key(ctx: &Ctx<'_>) -> Result<String, Reply> {
    let Some(value) = ctx.headers.get(headers::IDEMPOTENCY_KEY) else {
        return Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Header.Missing",
            "x-idempotency-key is required",
            None,
        ));
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= IDEMPOTENCY_KEY_MAX && key.trim() == key => {
            Ok(key.to_owned())
        }
        _ => Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Header.Invalid",
            "x-idempotency-key must be 1 to 40 characters without surrounding whitespace",
            None,
        )),
    }
}

/// The TPP's signature over `body`, checked with its configured key.
fn signature(ctx: &Ctx<'_>, body: &[u8]) -> Result<(), Reply> {
    let Some(value) = ctx
        .headers
        .get(headers::JWS_SIGNATURE)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Signature.Missing",
            "x-jws-signature is required",
            None,
        ));
    };
    jws::verify_detached(value, body, &ctx.keys.tpp)
        .map(|_| ())
        .map_err(|e| {
            ctx.error(
                StatusCode::BAD_REQUEST,
                "UK.OBIE.Signature.Invalid",
                &e.to_string(),
                None,
            )
        })
}

/// A signed, idempotent POST once its key and signature are checked: the resource its key
/// already made, or the request to act on under that key.
enum Admitted<T> {
    Replay(String),
    New { idem_key: String, request: T },
}

/// What both POSTs check first, in the bank's order: the `x-idempotency-key`, the
/// `x-jws-signature` over the body, a replay under the key (24 h), then the body's schema.
async fn admit<T: serde::de::DeserializeOwned>(
    ctx: &Ctx<'_>,
    body: &[u8],
    kind: &str,
) -> Result<Admitted<T>, Reply> {
    let key = idempotency_key(ctx)?;
    signature(ctx, body)?;
    let idem_key = keys::bank_idempotency(ctx.bank.id(), kind, &key);
    if let Some(id) = replayed(ctx, &idem_key, body).await? {
        return Ok(Admitted::Replay(id));
    }
    let request = serde_json::from_slice(body).map_err(|e| {
        ctx.error(
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Resource.InvalidFormat",
            &e.to_string(),
            None,
        )
    })?;
    Ok(Admitted::New { idem_key, request })
}

/// The resource an idempotency key already made, `Some(Err)` when it was made from another
/// body.
async fn replayed(ctx: &Ctx<'_>, key: &str, body: &[u8]) -> Result<Option<String>, Reply> {
    let stored: Option<(IdemRecord, String)> = store::load(&ctx.gw.store, key)
        .await
        .map_err(|e| ctx.unavailable(&e))?;
    match stored {
        None => Ok(None),
        Some((record, _)) => same_body(ctx, &record, body).map(Some),
    }
}

fn same_body(ctx: &Ctx<'_>, record: &IdemRecord, body: &[u8]) -> Result<String, Reply> {
    if record.body_sha256 == sha256_hex(body) {
        Ok(record.resource_id.clone())
    } else {
        Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Header.Invalid",
            "this x-idempotency-key was used with a different body",
            None,
        ))
    }
}

fn consent_response(ctx: &Ctx<'_>, c: &ConsentRecord) -> ConsentResponse {
    let status = consent_status(
        c.status,
        ctx.now_ms - c.created_ms,
        ctx.setup().consent_timeout_ms(),
    );
    let updated = if status == c.status {
        c.updated_ms
    } else {
        c.created_ms + ctx.setup().consent_timeout_ms()
    };
    ConsentResponse {
        data: ConsentResponseData {
            consent_id: c.id.clone(),
            status,
            creation_date_time: iso(c.created_ms),
            status_update_date_time: iso(updated),
            read_refund_account: c.request.data.read_refund_account,
            initiation: c.request.data.initiation.clone(),
            debtor: c
                .debtor
                .and_then(|i| TEST_ACCOUNTS.get(i))
                .map(|a| a.account()),
        },
        risk: c.request.risk.clone(),
        links: Links {
            self_: format!(
                "{}/open-banking/v3.1/pisp/domestic-payment-consents/{}",
                ctx.base(),
                c.id
            ),
        },
        meta: Meta {},
    }
}

/// `POST /domestic-payment-consents`: a new consent, `AwaitingAuthorisation`; a replay of the
/// same key and body answers the original as it is now.
pub async fn create_consent(ctx: &Ctx<'_>, body: &[u8]) -> Reply {
    match ctx.bearer(Grant::ClientCredentials).await {
        Ok(Some(_)) => {}
        Ok(None) => return super::wire::unauthorized(&ctx.interaction),
        Err(e) => return ctx.unavailable(&e),
    }
    let (idem_key, request) = match admit::<ConsentRequest>(ctx, body, "consent").await {
        Ok(Admitted::New { idem_key, request }) => (idem_key, request),
        Ok(Admitted::Replay(id)) => return answer_consent(ctx, &id, StatusCode::CREATED).await,
        Err(reply) => return reply,
    };
    if let Err(invalid) = super::validate::consent(&request.data.initiation, &request.risk) {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            invalid.code,
            &invalid.message,
            Some(invalid.path),
        );
    }
    let record = ConsentRecord {
        bank: ctx.bank.id().to_owned(),
        id: format!("pdc-{}", random_hex(16)),
        request,
        status: ConsentStatus::AwaitingAuthorisation,
        created_ms: ctx.now_ms,
        updated_ms: ctx.now_ms,
        csrf_secret: random_hex(32),
        debtor: None,
    };
    let consent_key = keys::bank_consent(&record.id);
    let idem = IdemRecord {
        body_sha256: sha256_hex(body),
        resource_id: record.id.clone(),
    };
    let (Ok(record_json), Ok(idem_json)) = (
        store::to_json(&consent_key, &record),
        store::to_json(&idem_key, &idem),
    ) else {
        return ctx.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UK.OBIE.UnexpectedError",
            "cannot encode the consent",
            None,
        );
    };
    let change = Commit {
        idem: Some((idem_key.clone(), idem_json, IDEMPOTENCY_TTL_MS)),
        guard: (consent_key.clone(), None),
        sets: vec![(consent_key, record_json, 0)],
        ledger: None,
    };
    match store::commit(&ctx.gw.store, change).await {
        Ok(Committed::Done) => ctx.ok(StatusCode::CREATED, &consent_response(ctx, &record)),
        Ok(Committed::Replay(raw)) => match store::parse::<IdemRecord>(&idem_key, &raw) {
            Ok(idem) => match same_body(ctx, &idem, body) {
                Ok(id) => answer_consent(ctx, &id, StatusCode::CREATED).await,
                Err(reply) => reply,
            },
            Err(e) => ctx.unavailable(&e),
        },
        Ok(Committed::Conflict) => ctx.error(
            StatusCode::CONFLICT,
            "UK.OBIE.Rules.ResourceAlreadyExists",
            "try again",
            None,
        ),
        Err(e) => ctx.unavailable(&e),
    }
}

async fn answer_consent(ctx: &Ctx<'_>, id: &str, status: StatusCode) -> Reply {
    match load_consent(ctx, id).await {
        Ok(Some((consent, _))) => ctx.ok(status, &consent_response(ctx, &consent)),
        Ok(None) => unknown(ctx, "consent"),
        Err(e) => ctx.unavailable(&e),
    }
}

/// This bank's consent `id`, with its raw text.
pub async fn load_consent(
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<Option<(ConsentRecord, String)>, crate::SandboxError> {
    let found: Option<(ConsentRecord, String)> =
        store::load(&ctx.gw.store, &keys::bank_consent(id)).await?;
    Ok(found.filter(|(c, _)| c.bank == ctx.bank.id()))
}

/// Unknown ids are a 400, not a 404: the endpoint exists, the resource does not.
fn unknown(ctx: &Ctx<'_>, what: &str) -> Reply {
    ctx.error(
        StatusCode::BAD_REQUEST,
        "UK.OBIE.Resource.NotFound",
        &format!("no such {what}"),
        None,
    )
}

/// `GET /domestic-payment-consents/{ConsentId}`.
pub async fn get_consent(ctx: &Ctx<'_>, id: &str) -> Reply {
    match ctx.bearer(Grant::ClientCredentials).await {
        Ok(Some(_)) => answer_consent(ctx, id, StatusCode::OK).await,
        Ok(None) => super::wire::unauthorized(&ctx.interaction),
        Err(e) => ctx.unavailable(&e),
    }
}

fn payment_response(ctx: &Ctx<'_>, p: &PaymentRecord) -> PaymentResponse {
    let delay = ctx.setup().settle_delay_ms();
    let elapsed = ctx.now_ms - p.submitted_ms;
    let status = ctx.bank.payment_status(elapsed, delay);
    let debtor = TEST_ACCOUNTS.get(p.debtor).map(|a| a.account());
    PaymentResponse {
        data: PaymentResponseData {
            domestic_payment_id: p.id.clone(),
            consent_id: p.consent_id.clone(),
            status,
            creation_date_time: iso(p.submitted_ms),
            status_update_date_time: iso(
                p.submitted_ms + ctx.bank.status_changed_at(elapsed, delay)
            ),
            initiation: p.initiation.clone(),
            refund: debtor
                .clone()
                .filter(|_| p.read_refund_account)
                .map(|account| Refund { account }),
            debtor,
        },
        links: Links {
            self_: format!(
                "{}/open-banking/v3.1/pisp/domestic-payments/{}",
                ctx.base(),
                p.id
            ),
        },
        meta: Meta {},
    }
}

/// `POST /domestic-payments`: pays an `Authorised` consent once, moving it to `Consumed` and
/// the payment into the ledger in one change. The flaky bank answers its first POST of a
/// consent 500 after doing all of that.
pub async fn submit_payment(ctx: &Ctx<'_>, body: &[u8]) -> Reply {
    let token = match ctx.bearer(Grant::AuthorizationCode).await {
        Ok(Some(token)) => token,
        Ok(None) => return super::wire::unauthorized(&ctx.interaction),
        Err(e) => return ctx.unavailable(&e),
    };
    let (idem_key, request) = match admit::<PaymentRequest>(ctx, body, "payment").await {
        Ok(Admitted::New { idem_key, request }) => (idem_key, request),
        Ok(Admitted::Replay(id)) => return answer_payment(ctx, &id, StatusCode::CREATED).await,
        Err(reply) => return reply,
    };
    if token.consent_id.as_deref() != Some(request.data.consent_id.as_str()) {
        return ctx.error(
            StatusCode::FORBIDDEN,
            "UK.OBIE.Resource.ConsentMismatch",
            "the token was granted for another consent",
            Some("Data.ConsentId"),
        );
    }
    for _ in 0..CONFLICT_RETRIES {
        let (consent, raw) = match load_consent(ctx, &request.data.consent_id).await {
            Ok(Some(found)) => found,
            Ok(None) => return unknown(ctx, "consent"),
            Err(e) => return ctx.unavailable(&e),
        };
        let status = consent_status(
            consent.status,
            ctx.now_ms - consent.created_ms,
            ctx.setup().consent_timeout_ms(),
        );
        if status != ConsentStatus::Authorised {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "UK.OBIE.Resource.InvalidConsentStatus",
                &format!("the consent is {}", status.as_str()),
                None,
            );
        }
        if consent.request.data.initiation != request.data.initiation
            || consent.request.risk != request.risk
        {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "UK.OBIE.Resource.ConsentMismatch",
                "the Initiation and Risk must equal the consent's",
                Some("Data.Initiation"),
            );
        }
        let payment = PaymentRecord {
            bank: ctx.bank.id().to_owned(),
            id: format!("dp-{}", random_hex(16)),
            consent_id: consent.id.clone(),
            initiation: request.data.initiation.clone(),
            risk: request.risk.clone(),
            submitted_ms: ctx.now_ms,
            debtor: consent.debtor.unwrap_or(0),
            read_refund_account: consent.request.data.read_refund_account == Some(YesNo::Yes),
        };
        let consumed = ConsentRecord {
            status: ConsentStatus::Consumed,
            updated_ms: ctx.now_ms,
            ..consent.clone()
        };
        let line = LedgerLine {
            id: payment.id.clone(),
            bank: payment.bank.clone(),
            consent_id: payment.consent_id.clone(),
            amount: calmony_protocol::open_banking::amount_to_minor(
                &payment.initiation.instructed_amount.amount,
            )
            .unwrap_or(0),
            end_to_end_id: payment.initiation.end_to_end_identification.clone(),
            reference: payment
                .initiation
                .remittance_information
                .as_ref()
                .and_then(|r| r.reference.clone()),
            submitted_ms: payment.submitted_ms,
        };
        let consent_key = keys::bank_consent(&consent.id);
        let payment_key = keys::bank_payment(&payment.id);
        let idem = IdemRecord {
            body_sha256: sha256_hex(body),
            resource_id: payment.id.clone(),
        };
        let encoded = (
            store::to_json(&consent_key, &consumed),
            store::to_json(&payment_key, &payment),
            store::to_json(&idem_key, &idem),
            store::to_json(keys::BANK_LEDGER, &line),
        );
        let (Ok(consumed_json), Ok(payment_json), Ok(idem_json), Ok(line_json)) = encoded else {
            return ctx.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UK.OBIE.UnexpectedError",
                "cannot encode the payment",
                None,
            );
        };
        let change = Commit {
            idem: Some((idem_key.clone(), idem_json, IDEMPOTENCY_TTL_MS)),
            guard: (consent_key.clone(), Some(raw)),
            sets: vec![(consent_key, consumed_json), (payment_key, payment_json)]
                .into_iter()
                .map(|(k, v)| (k, v, 0))
                .collect(),
            ledger: Some(line_json),
        };
        match store::commit(&ctx.gw.store, change).await {
            Ok(Committed::Done) => {
                let answer = payment_response(ctx, &payment);
                settled(ctx, &payment, answer.data.status).await;
                super::notify::after_submission(ctx, &payment);
                if ctx.bank == super::behaviour::TestBank::Flaky {
                    tracing::info!(payment = %payment.id, "flaky sandbox bank: payment made, answering 500");
                    return ctx.error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "UK.OBIE.UnexpectedError",
                        "the bank failed while answering (the payment was made)",
                        None,
                    );
                }
                return ctx.ok(StatusCode::CREATED, &answer);
            }
            Ok(Committed::Replay(raw)) => {
                return match store::parse::<IdemRecord>(&idem_key, &raw) {
                    Ok(idem) => match same_body(ctx, &idem, body) {
                        Ok(id) => answer_payment(ctx, &id, StatusCode::CREATED).await,
                        Err(reply) => reply,
                    },
                    Err(e) => ctx.unavailable(&e),
                };
            }
            Ok(Committed::Conflict) => continue,
            Err(e) => return ctx.unavailable(&e),
        }
    }
    ctx.error(
        StatusCode::CONFLICT,
        "UK.OBIE.UnexpectedError",
        "the consent kept changing; try again",
        None,
    )
}

/// Where the payee's bank is credited: a payment whose status (as read now) has settled
/// credits the Griffin sandbox's account with its amount, Reference and end-to-end id, once
/// (the bank payment's id is the credit's once-key), so reconciliation sees the money arrive.
/// Its statuses are computed when read, so this runs on every answer that shows one; the
/// once-key makes all but the first change nothing.
pub async fn settled(ctx: &Ctx<'_>, payment: &PaymentRecord, status: PaymentStatus) {
    if status.outcome() != calmony_protocol::open_banking::PaymentProgress::Settled {
        return;
    }
    let initiation = &payment.initiation;
    let Ok(amount) =
        calmony_protocol::open_banking::amount_to_minor(&initiation.instructed_amount.amount)
    else {
        return;
    };
    let debtor = TEST_ACCOUNTS.get(payment.debtor);
    let credit = crate::griffin::Credit {
        amount,
        reference: initiation
            .remittance_information
            .as_ref()
            .and_then(|r| r.reference.clone())
            .unwrap_or_else(|| initiation.end_to_end_identification.clone()),
        end_to_end_id: Some(initiation.end_to_end_identification.clone()),
        debtor_name: debtor.map_or_else(|| "Sandbox payer".to_owned(), |a| a.name.to_owned()),
        debtor_sort_code: debtor.map(|a| a.sort_code.to_owned()),
        debtor_account_number: debtor.map(|a| a.account_number.to_owned()),
        once_key: Some(format!("bank:{}", payment.id)),
    };
    match crate::griffin::credit(&ctx.gw.store, ctx.now_ms, credit).await {
        Ok(c) if !c.replayed => {
            tracing::info!(payment = %payment.id, bank = ctx.bank.id(), "sandbox bank payment settled: Griffin account credited");
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(payment = %payment.id, %error, "sandbox bank payment settled but the Griffin credit failed; retried on the next read");
        }
    }
}

async fn answer_payment(ctx: &Ctx<'_>, id: &str, status: StatusCode) -> Reply {
    let found: Result<Option<(PaymentRecord, String)>, _> =
        store::load(&ctx.gw.store, &keys::bank_payment(id)).await;
    match found {
        Ok(Some((payment, _))) if payment.bank == ctx.bank.id() => {
            let answer = payment_response(ctx, &payment);
            settled(ctx, &payment, answer.data.status).await;
            ctx.ok(status, &answer)
        }
        Ok(_) => unknown(ctx, "domestic payment"),
        Err(e) => ctx.unavailable(&e),
    }
}

/// `GET /domestic-payments/{DomesticPaymentId}`: the status engine's answer now.
pub async fn get_payment(ctx: &Ctx<'_>, id: &str) -> Reply {
    match ctx.bearer(Grant::ClientCredentials).await {
        Ok(Some(_)) => answer_payment(ctx, id, StatusCode::OK).await,
        Ok(None) => super::wire::unauthorized(&ctx.interaction),
        Err(e) => ctx.unavailable(&e),
    }
}
