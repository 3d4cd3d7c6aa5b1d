//! CheckoutExpiry: once a second, expire the checkout sessions past `expires_at` (the sorted
//! set `cp:checkout:expiry` is its durable queue: a session leaves it only in the commit that
//! expires it, so a pass cut short by a panic leaves the rest for the restarted actor).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::checkout::Checkout;

use super::periodic::Pass;

pub const NAME: &str = "checkout_expiry";

#[derive(Clone)]
pub struct CheckoutExpiry {
    pub checkout: Checkout,
}

impl Pass for CheckoutExpiry {
    const NAME: &'static str = NAME;
    const EVERY: Duration = Duration::from_secs(1);

    fn run(self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            self.checkout.sweep_expired().await;
            self
        })
    }
}
