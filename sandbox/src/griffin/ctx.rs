//! What the Griffin sandbox's handlers share for one request, and its ids.

use crate::gateway::Gateway;

use super::setup::Setup;

/// What the handlers share for one request.
pub struct Ctx<'a> {
    pub gw: &'a Gateway,
    pub setup: &'a Setup,
    pub now_ms: i64,
}

impl Ctx<'_> {
    pub fn delay_ms(&self) -> i64 {
        self.setup.payment_delay_ms()
    }
}

/// A Griffin-style id: the type prefix, a dot, 20 random alphanumerics.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}.{tail}")
}
