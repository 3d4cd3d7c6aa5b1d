//! Who may do what on the dashboard, and when a session or a sign-in is refused: pure
//! decisions, table-tested. The store side is in [`super::accounts`].

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A session ends after this long without a request.
pub const IDLE_SECS: i64 = 30 * 60;
/// And after this long whatever happens: a stolen cookie is not good for ever.
pub const ABSOLUTE_SECS: i64 = 12 * 60 * 60;
/// Failed sign-ins are counted over this window.
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;
/// Failed sign-ins to one account within the window before it is refused.
pub const MAX_ACCOUNT_FAILURES: i64 = 5;
/// Failed sign-ins from one address within the window (any accounts) before it is refused.
pub const MAX_ADDRESS_FAILURES: i64 = 20;
/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// A user's role in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read-only.
    Viewer,
    /// Everything but managing the project's users.
    Admin,
    /// Everything.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// Something a user asks the dashboard to do in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See figures, payments, customers, events.
    Read,
    /// Refund, capture, cancel; settings, keys, webhooks.
    Change,
    /// Read the audit log.
    ReadAudit,
    /// Add or remove the project's users.
    ManageUsers,
}

/// Whether `role` may do `action`.
pub fn permitted(role: Role, action: Action) -> bool {
    match action {
        Action::Read => true,
        Action::Change => role >= Role::Admin,
        Action::ReadAudit | Action::ManageUsers => role == Role::Owner,
    }
}

/// Whether a session still opens the dashboard: within both expiries, and not ended by a
/// "sign out everywhere" since it began (the user's generation moved on).
pub fn session_live(
    now: i64,
    created: i64,
    last_seen: i64,
    generation: u64,
    user_generation: u64,
) -> bool {
    generation == user_generation && now < created + ABSOLUTE_SECS && now < last_seen + IDLE_SECS
}

/// Whether a sign-in may be tried, given the failures counted in the window.
pub fn sign_in_allowed(account_failures: i64, address_failures: i64) -> bool {
    account_failures < MAX_ACCOUNT_FAILURES && address_failures < MAX_ADDRESS_FAILURES
}

/// What is wrong with a new password, if anything (said beside the field).
pub fn password_problem(password: &str, email: &str) -> Option<&'static str> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        Some("Use at least 10 characters.")
    } else if password.len() > 1024 {
        Some("Use at most 1024 characters.")
    } else if password.eq_ignore_ascii_case(email) {
        Some("Do not use your email address as your password.")
    } else {
        None
    }
}

/// An email address as accounts are keyed by: trimmed, lower case; `None` if it is not
/// shaped like one.
pub fn normalise_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_ascii_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && e.chars()
            .all(|c| c.is_ascii_graphic() && c != '{' && c != '}');
    ok.then_some(e)
}

/// Whether `email`'s role in a project may be changed to `to` (`None`: removed), given the
/// project's members: never so that the project is left without an owner.
pub fn role_change_allowed(members: &[(String, Role)], email: &str, to: Option<Role>) -> bool {
    let owners_after = members
        .iter()
        .filter(|(e, r)| {
            if e == email {
                to == Some(Role::Owner)
            } else {
                *r == Role::Owner
            }
        })
        .count();
    owners_after > 0
}

/// The SHA-256 of a secret, hex: what is stored in its place.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The token every form carries: derived from the session's secret (which only the browser's
/// cookie holds), so another site can neither read nor forge it.
pub fn csrf_token(session_secret: &str) -> String {
    digest(&format!("dashboard-csrf|{session_secret}"))
}

pub fn csrf_ok(session_secret: &str, given: &str) -> bool {
    let want = csrf_token(session_secret);
    want.len() == given.len() && bool::from(want.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_issue_says() {
        use Action::*;
        use Role::*;
        for (role, action, want) in [
            (Viewer, Read, true),
            (Viewer, Change, false),
            (Viewer, ReadAudit, false),
            (Admin, Change, true),
            (Admin, ManageUsers, false),
            (Admin, ReadAudit, false),
            (Owner, ManageUsers, true),
            (Owner, ReadAudit, true),
        ] {
            assert_eq!(permitted(role, action), want, "{role:?} {action:?}");
        }
        for r in [Viewer, Admin, Owner] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn sessions_end_when_idle_at_the_absolute_limit_or_signed_out_everywhere() {
        let t = 1_000_000;
        for (now, last_seen, generation, user_generation, want) in [
            (t + 60, t + 30, 1, 1, true),
            (t + IDLE_SECS + 31, t + 30, 1, 1, false),
            (t + ABSOLUTE_SECS, t + ABSOLUTE_SECS - 5, 1, 1, false),
            (t + 60, t + 30, 1, 2, false),
        ] {
            assert_eq!(
                session_live(now, t, last_seen, generation, user_generation),
                want
            );
        }
    }

    #[test]
    fn sign_in_is_throttled_per_account_and_per_address() {
        assert!(sign_in_allowed(0, 0));
        assert!(sign_in_allowed(MAX_ACCOUNT_FAILURES - 1, 0));
        assert!(!sign_in_allowed(MAX_ACCOUNT_FAILURES, 0));
        assert!(!sign_in_allowed(0, MAX_ADDRESS_FAILURES));
    }

    #[test]
    fn passwords_and_emails_are_checked() {
        assert!(password_problem("short", "a@b.co").is_some());
        assert!(password_problem("a@b.co.uk1", "a@b.co.uk1").is_some());
        assert_eq!(password_problem("correct horse battery", "a@b.co"), None);
        assert_eq!(
            normalise_email("  Ann@Example.COM "),
            Some("ann@example.com".into())
        );
        for bad in [
            "",
            "ann",
            "@x.com",
            "ann@x",
            "ann@.com",
            "a b@x.com",
            "a{b}@x.com",
        ] {
            assert_eq!(normalise_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_project_always_keeps_an_owner() {
        let m = |v: &[(&str, Role)]| -> Vec<(String, Role)> {
            v.iter().map(|(e, r)| (e.to_string(), *r)).collect()
        };
        let one = m(&[("a", Role::Owner), ("b", Role::Viewer)]);
        assert!(!role_change_allowed(&one, "a", None));
        assert!(!role_change_allowed(&one, "a", Some(Role::Admin)));
        assert!(role_change_allowed(&one, "b", None));
        assert!(role_change_allowed(&one, "b", Some(Role::Owner)));
        let two = m(&[("a", Role::Owner), ("b", Role::Owner)]);
        assert!(role_change_allowed(&two, "a", None));
        assert!(
            role_change_allowed(&one, "c", Some(Role::Viewer)),
            "a new member"
        );
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        let t = csrf_token("secret-1");
        assert!(csrf_ok("secret-1", &t));
        assert!(!csrf_ok("secret-2", &t));
        assert!(!csrf_ok("secret-1", ""));
    }
}
