//! BankTracker: every half second, look at the Pay by Bank attempts that are due (the sorted
//! set `cp:payments:bank_tracking` is its durable queue: an attempt leaves it only in the commit
//! that ends it, so a pass cut short by a panic or a crash leaves the rest for the restarted
//! actor). It asks the bank first and resends only under the attempt's own keys (see
//! [`crate::payments::bank`]). The same pass takes the due refunds of bank payments their next
//! step at Griffin (`cp:payments:bank_refunds`, see [`crate::payments::bank_refunds`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::payments::{Payments, bank, bank_refunds};

use super::periodic::Pass;

pub const NAME: &str = "bank_tracker";

/// Attempts looked at in one pass; the rest wait for the next.
const PER_PASS: usize = 200;

#[derive(Clone)]
pub struct BankTracker {
    pub payments: Payments,
}

impl Pass for BankTracker {
    const NAME: &'static str = NAME;
    const EVERY: Duration = Duration::from_millis(500);

    fn run(self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            if self.payments.bank.is_some()
                && let Err(e) = bank::track_due(&self.payments, PER_PASS).await
            {
                tracing::warn!(error = %e.message, "bank tracking pass failed; retried next tick");
            }
            if self.payments.griffin.is_some()
                && let Err(e) = bank_refunds::follow_due(&self.payments, PER_PASS).await
            {
                tracing::warn!(error = %e.message, "bank refund pass failed; retried next tick");
            }
            self
        })
    }
}
