//! The context of one API request and the answer handed back to the edge.

use std::sync::{Arc, Mutex};

use calmony_protocol::ApiError;
use calmony_protocol::event::EventRequest;

use crate::idempotency::{Ask, Claim};
use crate::store::{
    Answer, Answers, Commit, Fetched, KeyRefusal, Scope, Store, StoreError, Tx, Unread,
};

/// Who is asking and under which idempotency key.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub scope: Scope,
    /// The claimed `Idempotency-Key`, if the request is a POST that carried one. A handler that
    /// commits a change stores its answer under this key in the same atomic write.
    pub idempotency: Option<Claim>,
    /// How long an idempotent answer is kept, in seconds.
    pub idempotency_ttl_secs: u64,
    /// The objects the request names (its path's id, its `customer` and `payment_method`),
    /// read with the key check: [`RequestContext::read`] hands them out.
    pub prefetched: Prefetched,
    /// Set when the edge answered the key check from memory: the request's commit must carry
    /// the check itself ([`RequestContext::vouch`]).
    pub deferred: Option<Arc<DeferredKeyCheck>>,
}

/// A key check deferred to the request's own commit. The edge remembers the keys and objects
/// it has checked and read; for a request whose key and named objects it remembers, it skips
/// the key check's round trip and hands the remembered objects to the handler, whose commit
/// then checks the key (good, of this project and mode, within its rate limit) and that each
/// remembered object is still at the version remembered, before it writes anything. A request
/// that ends without such a commit, or whose commit found a remembered object changed, wrote
/// nothing: the edge runs it again the usual way, so its answer is always the one a fresh key
/// check would have given.
#[derive(Debug)]
pub struct DeferredKeyCheck {
    /// The API key's record.
    pub record: String,
    pub per_second: u64,
    /// `(record key, version)` of each remembered object handed to the handler.
    pub remembered: Vec<(String, u64)>,
    /// The request's `Idempotency-Key` claim, which the key check would have made: made by
    /// the commit instead, which then also finds the key unclaimed (a key already claimed,
    /// running or answered, leaves the commit unwritten and the request to run again the
    /// usual way, whose key check answers the replay, the 409 or the mismatch).
    pub claim: Option<Ask>,
    state: Mutex<KeyCheck>,
}

/// Where a deferred key check stands once the handler is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// No commit carried it, or the one that did found a remembered object changed and wrote
    /// nothing: the request is to be run again with a fresh key check.
    NotDone,
    /// A commit carrying it was sent and its outcome is unknown (Redis did not answer): the
    /// handler's answer stands, as any answer after an ambiguous write does.
    Sent,
    Passed,
    Refused(KeyRefusal),
}

impl DeferredKeyCheck {
    pub fn new(
        record: String,
        per_second: u64,
        remembered: Vec<(String, u64)>,
        claim: Option<Ask>,
    ) -> Self {
        Self {
            record,
            per_second,
            remembered,
            claim,
            state: Mutex::new(KeyCheck::NotDone),
        }
    }

    pub fn state(&self) -> KeyCheck {
        *crate::lock(&self.state)
    }

    fn set(&self, to: KeyCheck) {
        *crate::lock(&self.state) = to;
    }
}

/// Records read in the key check's round trip, each handed out once: a second read of the same
/// id (a retry after a version conflict) goes to Redis and sees what changed meanwhile.
#[derive(Debug, Default)]
pub struct Prefetched(Mutex<Vec<(String, Unread)>>);

impl Prefetched {
    /// `(id, its fields as read)` for each id read.
    pub fn new(read: Vec<(String, Unread)>) -> Self {
        Self(Mutex::new(read))
    }

    /// What the key check read of `id`, unless it read nothing of it or handed it out already.
    fn take(&self, id: &str) -> Option<Unread> {
        let mut read = crate::lock(&self.0);
        let at = read.iter().position(|(i, _)| i == id)?;
        Some(read.swap_remove(at).1)
    }
}

impl Clone for Prefetched {
    fn clone(&self) -> Self {
        Self::new(crate::lock(&self.0).clone())
    }
}

impl RequestContext {
    /// Record `id` of the request's scope: as the key check read it if it did (once), else
    /// from Redis now.
    pub async fn read(&self, store: &Store, id: &str) -> Result<Option<Fetched>, StoreError> {
        let key = self.scope.record(id);
        match self.prefetched.take(id) {
            Some(read) => read.decode(&key),
            None => store.fetch(&key).await,
        }
    }

    /// Put a deferred key check into `tx`, the change that will answer the request: the key,
    /// that the remembered objects have not changed, and the idempotency claim the key check
    /// would have made. A request without one is unchanged.
    pub fn vouch(&self, tx: &mut Tx) {
        let Some(d) = &self.deferred else { return };
        // Once a commit carried the check and may have landed, the request's later commits
        // need not (and must not claim its key again).
        if matches!(d.state(), KeyCheck::Passed | KeyCheck::Sent) {
            return;
        }
        for (key, version) in &d.remembered {
            tx.expect_version(key, *version);
        }
        if let (Some(ask), Some(claim)) = (&d.claim, &self.idempotency) {
            tx.claim_fresh(ask.fresh(claim));
        }
        tx.check_key(&d.record, d.per_second, &self.scope);
        d.set(KeyCheck::Sent);
    }

    /// Record what the commit of a vouched change found (see [`KeyCheck`]). An error leaves
    /// it [`KeyCheck::Sent`]: Redis may or may not have applied the change.
    pub fn settle(&self, outcome: &Result<Commit, ApiError>) {
        let Some(d) = &self.deferred else { return };
        match outcome {
            Ok(Commit::Refused(r)) => d.set(KeyCheck::Refused(*r)),
            Ok(Commit::Conflict) => d.set(KeyCheck::NotDone),
            Ok(_) => d.set(KeyCheck::Passed),
            Err(_) => {}
        }
    }

    /// What an event caused by this request records about it.
    pub fn event_request(&self) -> EventRequest {
        EventRequest {
            id: Some(self.request_id.clone()),
            idempotency_key: self.idempotency.as_ref().map(|c| c.key.clone()),
        }
    }
}

/// A request's answer is kept under its `Idempotency-Key` claim, if it made one, for as long
/// as the project keeps answers: what `tx.respond(ctx, status, body)` stores.
impl Answers for RequestContext {
    fn answer(&self) -> Option<Answer<'_>> {
        self.idempotency.as_ref().map(|claim| Answer {
            claim: claim.into(),
            ttl_secs: self.idempotency_ttl_secs,
        })
    }
}

/// A successful answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// The edge must not store this answer under the idempotency key: it is stored already
    /// (atomically with the change it reports), or the work continues elsewhere (a payment
    /// left to recovery) and whoever finishes it stores the final answer.
    pub stored: bool,
}

impl Reply {
    pub fn ok(body: String) -> Self {
        Self {
            status: 200,
            body,
            stored: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deferred check rides in the first commit that may land, and only in that one; a
    /// refused or conflicting commit wrote nothing, so the next carries it again.
    #[test]
    fn a_deferred_check_rides_in_one_commit() {
        let scope = Scope::new("prj_1", calmony_protocol::Mode::Test);
        let check = DeferredKeyCheck::new("cp:apikey:{k}".into(), 100, Vec::new(), None);
        let ctx = RequestContext {
            request_id: "req_1".into(),
            scope,
            idempotency: None,
            idempotency_ttl_secs: 60,
            prefetched: Prefetched::default(),
            deferred: Some(Arc::new(check)),
        };
        let vouched = |ctx: &RequestContext| {
            let mut tx = Tx::new();
            ctx.vouch(&mut tx);
            !tx.is_unchecked()
        };
        assert!(vouched(&ctx));
        ctx.settle(&Ok(Commit::Refused(KeyRefusal::Revoked)));
        assert!(vouched(&ctx), "refused: nothing landed, check again");
        ctx.settle(&Ok(Commit::Conflict));
        assert!(vouched(&ctx), "conflict: nothing landed, check again");
        assert!(!vouched(&ctx), "sent, outcome unknown: never twice");
        ctx.settle(&Ok(Commit::Done(None)));
        assert!(!vouched(&ctx), "passed: the later commits carry nothing");
    }

    #[test]
    fn a_prefetched_record_is_handed_out_once() {
        let found = Unread([Some(b"3".to_vec()), Some(b"{}".to_vec()), None, None]);
        let read = Prefetched::new(vec![
            ("pi_1".into(), found),
            ("cus_1".into(), Unread::default()),
        ]);
        let copy = read.clone();
        let version = |u: Option<Unread>| {
            u.and_then(|u| u.decode("k").ok().flatten())
                .map(|f| f.record.version)
        };
        assert_eq!(version(read.take("pi_1")), Some(3));
        assert!(read.take("pi_1").is_none(), "a retry reads Redis afresh");
        assert!(
            matches!(read.take("cus_1").map(|u| u.decode("k")), Some(Ok(None))),
            "read, and absent"
        );
        assert!(read.take("pm_1").is_none(), "never read");
        assert!(copy.take("pi_1").is_some(), "a clone holds its own list");
    }
}
