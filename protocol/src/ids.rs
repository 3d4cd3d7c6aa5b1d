//! Resource IDs: the Stripe-style prefix (`cus_`, `evt_`, `pi_`) and a ULID.
//!
//! ULIDs start with the creation time, so IDs sort lexicographically by creation. Lists are kept
//! as Redis sorted sets of IDs with equal scores and paged with `ZRANGEBYLEX`, which gives
//! Stripe's newest-first order and exact cursors without a second index. Within one process the
//! generator is monotonic, so two IDs made in the same millisecond still sort in creation order.

use std::sync::Mutex;

static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A new ID with the given prefix, e.g. `new_id("cus")` -> `cus_01JD2…`.
pub fn new_id(prefix: &str) -> String {
    let ulid = {
        let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
        let generator = guard.get_or_insert_with(ulid::Generator::new);
        // Overflow needs 2^80 IDs in one millisecond; fall back to a fresh random ULID.
        generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
    };
    format!("{prefix}_{ulid}")
}

/// Whether `id` is shaped like an ID with this prefix. Anything else cannot exist, so callers
/// answer 404 without a store lookup, and hostile strings never reach a Redis key name.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.len() <= 100
        && id
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
}

/// Whether `id` is shaped like the ID of some object (a lowercase prefix, `_`, then what
/// [`is_valid`] allows), when the object it names is not known yet.
pub fn is_any(id: &str) -> bool {
    id.split_once('_').is_some_and(|(prefix, _)| {
        !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_lowercase()) && is_valid(prefix, id)
    })
}

/// When an id made by [`new_id`] was made (its ULID's millisecond); `None` for any other
/// shape.
pub fn time_ms(id: &str) -> Option<u64> {
    let (_, ulid) = id.split_once('_')?;
    Some(ulid::Ulid::from_string(ulid).ok()?.timestamp_ms())
}

/// A random string of letters and digits, for secrets and request IDs.
pub fn random_alnum(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A request ID (`req_` and 14 letters and digits, as Stripe's).
pub fn request_id() -> String {
    format!("req_{}", random_alnum(14))
}

/// The smallest and largest ids with `prefix` created within `[from, to]` seconds: a
/// `created` range as a lexicographic range of ULID ids.
pub fn time_bounds(
    prefix: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> (Option<String>, Option<String>) {
    let lo = from.map(|s| {
        let ms = (s.max(0) as u64).saturating_mul(1000);
        format!("{prefix}_{}", ulid::Ulid::from_parts(ms, 0))
    });
    let hi = to.map(|s| {
        let ms = (s.max(0) as u64).saturating_mul(1000).saturating_add(999);
        format!("{prefix}_{}", ulid::Ulid::from_parts(ms, u128::MAX))
    });
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_id("cus")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids[0].starts_with("cus_"));
    }

    #[test]
    fn validity() {
        assert!(is_valid("cus", &new_id("cus")));
        assert!(!is_valid("cus", &new_id("pi")));
        assert!(!is_valid("cus", "cus_"));
        assert!(!is_valid("cus", "cus_a:b"));
        assert!(!is_valid("cus", "cus_a}b{"));
        assert!(!is_valid("cus", &format!("cus_{}", "a".repeat(200))));
    }

    #[test]
    fn an_id_tells_when_it_was_made() {
        let (lo, _) = time_bounds("pi", Some(1_733_000_000), None);
        assert_eq!(time_ms(&lo.expect("bound")), Some(1_733_000_000_000));
        assert_eq!(time_ms("pi_notaulid"), None);
        assert_eq!(time_ms("pi"), None);
    }

    #[test]
    fn any_object_id_shape() {
        assert!(is_any(&new_id("pi")));
        assert!(is_any("whsec_x"));
        for bad in ["", "pi", "_x", "Pi_x", "pi_", "pi_a:b", "pi_a}b{", "pi_a/b"] {
            assert!(!is_any(bad), "{bad:?}");
        }
    }
}
