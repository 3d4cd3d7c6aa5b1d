//! Event notifications: the banks whose payments change after submission (`calmony-delayed`,
//! `calmony-late-reject`) tell the daemon when they do, as an ASPSP with the event
//! notification API does: a Security Event Token signed with the bank's key, posted as
//! `application/jwt` to the daemon's `/pay/bank/notifications/test/<bank_id>`, retried a few
//! times until it is answered 202. The daemon verifies it and asks the bank; polling covers a
//! notification that never arrives.

use std::time::Duration;

use calmony_protocol::open_banking::jws;
use serde_json::json;

use super::behaviour::TestBank;
use super::ctx::{Ctx, random_hex};
use super::store::PaymentRecord;
use crate::hosted::callback;

/// The event a notification carries.
const EVENT: &str = "urn:uk:org:openbanking:events:resource-update";

/// Delays before the retries of an unanswered notification.
const RETRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
];

/// Once `payment` is submitted: if its bank changes its status later, notify when it does.
pub fn after_submission(ctx: &Ctx<'_>, payment: &PaymentRecord) {
    if !matches!(ctx.bank, TestBank::Delayed | TestBank::LateReject) {
        return;
    }
    let Ok(keys) = &ctx.setup().keys else {
        return;
    };
    let base = ctx.base();
    let link = format!(
        "{base}/open-banking/v3.1/pisp/domestic-payments/{}",
        payment.id
    );
    let now = jws::now_secs();
    let claims = json!({
        "iss": base,
        "iat": now,
        "exp": now + 3600,
        "jti": random_hex(16),
        "aud": ctx.setup().config.client_id,
        "sub": link,
        "txn": ctx.interaction,
        "toe": now,
        "events": {EVENT: {"subject": {
            "subject_type": "http://openbanking.org.uk/rid_http://openbanking.org.uk/rty",
            "http://openbanking.org.uk/rid": payment.id,
            "http://openbanking.org.uk/rty": "domestic-payment",
            "http://openbanking.org.uk/rlk": [{"version": "v3.1", "link": link}],
        }}},
    });
    let token = jws::sign_jwt(&claims, &keys.bank);
    let url = format!(
        "{}/pay/bank/notifications/test/{}",
        ctx.gw.config.public_base.trim_end_matches('/'),
        ctx.bank.id()
    );
    // Just after the status changes (the delay is the bank's settlement time).
    let wait = Duration::from_millis(u64::try_from(ctx.setup().settle_delay_ms()).unwrap_or(0))
        + Duration::from_millis(50);
    let id = payment.id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        for (attempt, pause) in std::iter::once(Duration::ZERO).chain(RETRIES).enumerate() {
            tokio::time::sleep(pause).await;
            match callback::post(&url, "application/jwt", &token).await {
                Ok(202) => {
                    tracing::debug!(payment = %id, attempt, "sandbox bank notification delivered");
                    return;
                }
                Ok(status) => {
                    tracing::warn!(payment = %id, attempt, status, "sandbox bank notification refused");
                }
                Err(error) => {
                    tracing::warn!(payment = %id, attempt, %error, "sandbox bank notification not delivered");
                }
            }
        }
    });
}
