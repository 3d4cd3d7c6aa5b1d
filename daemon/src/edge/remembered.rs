//! What the edge remembers of earlier key checks, so that a payment's create can leave its key
//! check to its own commit: one Redis round trip and one script less on the checkout path.
//!
//! A key check answers which project and mode a key belongs to (which never changes) and reads
//! the customer and card a payment names (which rarely do). For a `POST /v1/payment_intents`
//! whose key and named objects are all remembered, the edge hands
//! the remembered objects to the handler with a [`DeferredKeyCheck`]; the handler's commit then
//! checks the key (still good, of this project and mode, within its rate limit) and that each
//! remembered object is at the version remembered, and makes the `Idempotency-Key` claim the
//! key check would have made (the key must be unclaimed), before writing anything. A request that
//! ends without that commit (a parameter error, say) or whose commit found an object changed
//! wrote nothing and is run again the usual way: its answer is the one a fresh key check gives.
//!
//! Besides, the edge remembers which keys passed a check at all ([`Remembered::recognises`]):
//! a `/v1` request's body is read only once its key is known good, and a remembered key is
//! (it passed a check earlier, and the check after the body still refuses a key revoked since).
//!
//! What is remembered is keyed by the key's SHA-256 and by the object's record key, which
//! names its project and mode, so nothing crosses a project or mode. Both maps are bounded and
//! simply emptied when full.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use calmony_actors::api_keys;
use calmony_actors::context::DeferredKeyCheck;
use calmony_actors::idempotency::Ask;
use calmony_actors::store::Unread;
use calmony_actors::{Scope, lock};

/// Keys remembered at most (a deployment has a handful).
const MAX_KEYS: usize = 1024;
/// Objects remembered at most (each a packed record, about a kilobyte).
const MAX_OBJECTS: usize = 8192;

#[derive(Debug, Default)]
pub struct Remembered {
    /// Key SHA-256 → its project and mode.
    keys: Mutex<HashMap<String, Scope>>,
    /// Record key → the record as the key check read it.
    objects: Mutex<HashMap<String, Unread>>,
    /// Key SHA-256s that passed a check (any request's).
    good: Mutex<HashSet<String>>,
}

/// A request that may defer its key check: its scope, the objects it names as remembered, and
/// the check for its commit to carry.
pub struct Deferral {
    pub scope: Scope,
    pub read: Vec<(String, Unread)>,
    pub check: Arc<DeferredKeyCheck>,
}

impl Remembered {
    /// Remember what a key check that passed answered: the key's scope, and the objects it
    /// read that exist.
    pub fn keep(&self, sha: &str, scope: &Scope, read: &[(String, Unread)]) {
        let mut keys = lock(&self.keys);
        if !keys.contains_key(sha) {
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
            keys.insert(sha.to_string(), scope.clone());
        }
        drop(keys);
        let mut objects = lock(&self.objects);
        for (id, fields) in read.iter().filter(|(_, f)| f.version().is_some()) {
            if objects.len() >= MAX_OBJECTS {
                objects.clear();
            }
            objects.insert(scope.record(id), fields.clone());
        }
    }

    /// Whether key `sha` passed a check earlier, so its request's body may be read before
    /// this request's own check.
    pub fn recognises(&self, sha: &str) -> bool {
        lock(&self.good).contains(sha) || lock(&self.keys).contains_key(sha)
    }

    /// Remember that key `sha` passed a check.
    pub fn recognise(&self, sha: &str) {
        let mut good = lock(&self.good);
        if !good.contains(sha) {
            if good.len() >= MAX_KEYS {
                good.clear();
            }
            good.insert(sha.to_string());
        }
    }

    /// Forget key `sha`, which a check refused (revoked, or gone).
    pub fn forget(&self, sha: &str) {
        lock(&self.good).remove(sha);
        lock(&self.keys).remove(sha);
    }

    /// The deferral for a request with key `sha` naming `ids` (and making `claim`, if it
    /// carries an `Idempotency-Key`), if the key and every object are remembered.
    pub fn deferral(
        &self,
        sha: &str,
        ids: &[&str],
        per_second: u64,
        claim: Option<Ask>,
    ) -> Option<Deferral> {
        let scope = lock(&self.keys).get(sha)?.clone();
        let objects = lock(&self.objects);
        let mut read = Vec::with_capacity(ids.len());
        let mut versions = Vec::with_capacity(ids.len());
        for id in ids {
            let key = scope.record(id);
            let fields = objects.get(&key)?;
            versions.push((key, fields.version()?));
            read.push((id.to_string(), fields.clone()));
        }
        drop(objects);
        let check = DeferredKeyCheck::new(api_keys::record_key(sha), per_second, versions, claim);
        Some(Deferral {
            scope,
            read,
            check: Arc::new(check),
        })
    }
}

#[cfg(test)]
mod tests {
    use calmony_protocol::Mode;

    use super::*;

    #[test]
    fn a_key_is_recognised_once_a_check_passed_until_one_refuses_it() {
        let r = Remembered::default();
        assert!(!r.recognises("sha1"));
        r.recognise("sha1");
        assert!(r.recognises("sha1"));
        r.keep("sha2", &Scope::new("prj_a", Mode::Test), &[]);
        assert!(
            r.recognises("sha2"),
            "a key kept for deferral is recognised"
        );
        r.forget("sha1");
        r.forget("sha2");
        assert!(!r.recognises("sha1") && !r.recognises("sha2"));
        assert!(r.deferral("sha2", &[], 100, None).is_none());
    }

    fn read(id: &str, version: Option<&str>) -> (String, Unread) {
        let v = version.map(|v| v.as_bytes().to_vec());
        (id.into(), Unread([v, Some(b"{}".to_vec()), None, None]))
    }

    #[test]
    fn a_deferral_needs_the_key_and_every_object_remembered_in_its_own_scope() {
        let mine = Scope::new("prj_a", Mode::Test);
        let r = Remembered::default();
        assert!(r.deferral("sha1", &[], 100, None).is_none(), "unknown key");
        r.keep(
            "sha1",
            &mine,
            &[read("pm_1", Some("3")), read("cus_gone", None)],
        );
        let d = r
            .deferral("sha1", &["pm_1"], 100, None)
            .expect("remembered");
        assert_eq!(d.scope, mine);
        assert_eq!(d.check.remembered, vec![(mine.record("pm_1"), 3)]);
        assert_eq!(d.check.record, api_keys::record_key("sha1"));
        assert!(
            r.deferral("sha1", &["pm_1", "cus_gone"], 100, None)
                .is_none(),
            "an absent object is not remembered"
        );
        r.keep("sha2", &Scope::new("prj_b", Mode::Test), &[]);
        assert!(
            r.deferral("sha2", &["pm_1"], 100, None).is_none(),
            "another project's key does not see the object"
        );
        r.keep("sha3", &Scope::new("prj_a", Mode::Live), &[]);
        assert!(
            r.deferral("sha3", &["pm_1"], 100, None).is_none(),
            "nor does the live key of the same project"
        );
    }
}
