//! An idempotency claim as the store sees it: a hash a request owns while it runs and that
//! keeps its answer afterwards. A commit checks that the claim is still held, stores the answer
//! under it, holds it for work that finishes later, or makes it. What a claim means to a
//! request (Stripe's rules, fingerprints, replays) is `crate::idempotency`'s, which hands the
//! store these plain views so the storage layer never depends on request types.

/// A claim's hash and the owner that must still hold it for a commit to write under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRef<'a> {
    pub redis_key: &'a str,
    pub owner: &'a str,
}

/// Where a change's answer is stored: under a claim, kept `ttl_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    pub claim: ClaimRef<'a>,
    pub ttl_secs: u64,
}

/// Whatever a change answers to and says where its answer is kept, if anywhere: a request
/// with an `Idempotency-Key` (`crate::RequestContext` implements it), so a handler writes
/// `tx.respond(ctx, 200, &body)` and the store reads only the plain fields it needs.
pub trait Answers {
    fn answer(&self) -> Option<Answer<'_>>;
}

/// A claim a commit makes itself (for a request whose key check, which claims keys, was
/// deferred to its commit): written as the key check writes it, with the request's
/// fingerprint and endpoint, and the claim's lock as its lifetime unless the change stores
/// an answer or holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshClaim<'a> {
    pub claim: ClaimRef<'a>,
    pub fingerprint: &'a str,
    pub endpoint: &'a str,
    pub lock_ms: u64,
}
