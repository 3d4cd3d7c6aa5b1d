//! Who may do what on the portal page: pure decisions, table-tested.
//!
//! A session's link opens the page for [`LINK_LIFE`] seconds; opening it binds the browser
//! with a cookie for [`BROWSER_LIFE`]. Every secret (the link's token, the cookie) is kept as
//! its SHA-256 and compared in constant time, so neither Redis nor a timing side channel gives
//! one away. Each action on the page is checked against the configuration's features here,
//! so a disabled feature is refused by the page's handler, not just hidden from the page.

use calmony_protocol::billing_portal::{BROWSER_LIFE, Features, LINK_LIFE};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a secret, hex: what is stored in its place.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one whose digest is `stored` (constant time in the digest).
pub fn matches(stored: &str, secret: &str) -> bool {
    let given = digest(secret);
    stored.len() == given.len() && bool::from(stored.as_bytes().ct_eq(given.as_bytes()))
}

/// The token every form on the page carries: derived from the browser's cookie secret (which
/// only that browser holds), so another site can neither read nor forge it.
pub fn csrf_token(session: &str, cookie_secret: &str) -> String {
    digest(&format!("billing-portal-csrf|{session}|{cookie_secret}"))
}

pub fn csrf_ok(session: &str, cookie_secret: &str, given: &str) -> bool {
    let want = csrf_token(session, cookie_secret);
    want.len() == given.len() && bool::from(want.as_bytes().ct_eq(given.as_bytes()))
}

/// What opening a session's link comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Bind this browser: set the cookie, until `now + BROWSER_LIFE`.
    Bind { until: i64 },
    /// The link is older than [`LINK_LIFE`], or the token is not the session's.
    Expired,
}

pub fn on_open(now: i64, created: i64, token_ok: bool) -> LinkState {
    if token_ok && now >= created && now < created + LINK_LIFE {
        LinkState::Bind {
            until: now + BROWSER_LIFE,
        }
    } else {
        LinkState::Expired
    }
}

/// Whether a browser's cookie still opens the page: it is the one bound, within the hour.
pub fn browser_ok(now: i64, bound_until: Option<i64>, cookie_ok: bool) -> bool {
    cookie_ok && bound_until.is_some_and(|until| now < until)
}

/// Something the customer asks the page to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    SeeInvoices,
    UpdateCard,
    Cancel { feedback: Option<&'a str> },
    Resume,
    SwitchPrice { price: &'a str },
    UpdateDetail { field: &'a str },
}

/// Why the page refuses an action; the message is the customer's to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("This business does not offer that here.")]
    NotOffered,
    #[error("Please choose one of the reasons listed.")]
    UnknownReason,
    #[error("That plan is not one you can switch to here.")]
    PriceNotOffered,
}

/// Whether the configuration's features allow `action`.
pub fn permitted(f: &Features, action: Action<'_>) -> Result<(), Refusal> {
    let on = |b: bool| if b { Ok(()) } else { Err(Refusal::NotOffered) };
    match action {
        Action::SeeInvoices => on(f.invoice_history.enabled),
        Action::UpdateCard => on(f.payment_method_update.enabled),
        Action::Resume => on(f.subscription_cancel.enabled),
        Action::Cancel { feedback } => {
            on(f.subscription_cancel.enabled)?;
            let reasons = &f.subscription_cancel.cancellation_reason;
            match feedback {
                None => Ok(()),
                Some(r) if reasons.enabled && reasons.options.iter().any(|o| o == r) => Ok(()),
                Some(_) => Err(Refusal::UnknownReason),
            }
        }
        Action::SwitchPrice { price } => {
            let u = &f.subscription_update;
            on(u.enabled && u.default_allowed_updates.iter().any(|a| a == "price"))?;
            if u.products
                .iter()
                .any(|p| p.prices.iter().any(|x| x == price))
            {
                Ok(())
            } else {
                Err(Refusal::PriceNotOffered)
            }
        }
        Action::UpdateDetail { field } => on(f.customer_update.enabled
            && f.customer_update.allowed_updates.iter().any(|a| a == field)),
    }
}

/// Where the browser goes once a flow's task is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterTask {
    Home,
    Redirect(String),
    Confirmation(Option<String>),
}

pub fn after_task(flow: Option<&calmony_protocol::billing_portal::Flow>) -> AfterTask {
    let Some(a) = flow.map(|f| &f.after_completion) else {
        return AfterTask::Home;
    };
    match (a.kind.as_str(), &a.redirect, &a.hosted_confirmation) {
        ("redirect", Some(r), _) => AfterTask::Redirect(r.return_url.clone()),
        ("hosted_confirmation", _, h) => {
            AfterTask::Confirmation(h.as_ref().and_then(|h| h.custom_message.clone()))
        }
        _ => AfterTask::Home,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calmony_protocol::billing_portal::ProductPrices;

    #[test]
    fn a_link_opens_for_five_minutes_and_a_browser_for_an_hour() {
        let t = 1_000_000;
        for (now, token_ok, want) in [
            (t, true, LinkState::Bind { until: t + 3600 }),
            (
                t + 299,
                true,
                LinkState::Bind {
                    until: t + 299 + 3600,
                },
            ),
            (t + 300, true, LinkState::Expired),
            (t + 10, false, LinkState::Expired),
            (t - 5, true, LinkState::Expired),
        ] {
            assert_eq!(
                on_open(now, t, token_ok),
                want,
                "at {now}, token {token_ok}"
            );
        }
        for (now, until, cookie_ok, want) in [
            (t, Some(t + 1), true, true),
            (t + 1, Some(t + 1), true, false),
            (t, None, true, false),
            (t, Some(t + 100), false, false),
        ] {
            assert_eq!(browser_ok(now, until, cookie_ok), want);
        }
    }

    #[test]
    fn secrets_are_compared_by_digest_and_the_csrf_token_is_bound_to_the_cookie() {
        let stored = digest("s3cret");
        assert!(matches(&stored, "s3cret"));
        assert!(!matches(&stored, "s3cret "));
        assert!(!matches("", ""));
        let t = csrf_token("bps_1", "cookie");
        assert!(csrf_ok("bps_1", "cookie", &t));
        assert!(!csrf_ok("bps_1", "other cookie", &t));
        assert!(!csrf_ok("bps_2", "cookie", &t));
        assert!(!csrf_ok("bps_1", "cookie", ""));
    }

    #[test]
    fn after_a_flow_s_task_the_browser_goes_where_after_completion_says() {
        use calmony_protocol::billing_portal::{
            AfterCompletion, Flow, HostedConfirmation, RedirectTo,
        };
        let flow = |kind: &str, redirect: Option<&str>, message: Option<Option<&str>>| Flow {
            kind: "payment_method_update".into(),
            after_completion: AfterCompletion {
                kind: kind.into(),
                redirect: redirect.map(|u| RedirectTo {
                    return_url: u.into(),
                }),
                hosted_confirmation: message.map(|m| HostedConfirmation {
                    custom_message: m.map(String::from),
                }),
            },
            subscription_cancel: None,
            subscription_update: None,
            subscription_update_confirm: None,
        };
        for (f, want) in [
            (None, AfterTask::Home),
            (Some(flow("portal_homepage", None, None)), AfterTask::Home),
            (
                Some(flow("redirect", Some("https://h.example/"), None)),
                AfterTask::Redirect("https://h.example/".into()),
            ),
            (
                Some(flow("hosted_confirmation", None, Some(Some("Thanks")))),
                AfterTask::Confirmation(Some("Thanks".into())),
            ),
            (
                Some(flow("hosted_confirmation", None, Some(None))),
                AfterTask::Confirmation(None),
            ),
        ] {
            assert_eq!(after_task(f.as_ref()), want, "{f:?}");
        }
    }

    #[test]
    fn the_page_refuses_what_the_configuration_does_not_offer() {
        let mut f = Features::default();
        f.subscription_update.enabled = true;
        f.subscription_update.default_allowed_updates = vec!["price".into()];
        f.subscription_update.products = vec![ProductPrices {
            product: "prod_1".into(),
            prices: vec!["price_a".into(), "price_b".into()],
        }];
        let mut off = Features::default();
        off.invoice_history.enabled = false;
        off.payment_method_update.enabled = false;
        off.subscription_cancel.enabled = false;
        off.customer_update.allowed_updates = vec!["email".into()];
        off.subscription_cancel.cancellation_reason.enabled = false;
        use Action::*;
        for (features, action, want) in [
            (&f, SeeInvoices, Ok(())),
            (&off, SeeInvoices, Err(Refusal::NotOffered)),
            (&f, UpdateCard, Ok(())),
            (&off, UpdateCard, Err(Refusal::NotOffered)),
            (&f, Cancel { feedback: None }, Ok(())),
            (
                &f,
                Cancel {
                    feedback: Some("unused"),
                },
                Ok(()),
            ),
            (
                &f,
                Cancel {
                    feedback: Some("hate it"),
                },
                Err(Refusal::UnknownReason),
            ),
            (&off, Cancel { feedback: None }, Err(Refusal::NotOffered)),
            (&off, Resume, Err(Refusal::NotOffered)),
            (&f, SwitchPrice { price: "price_b" }, Ok(())),
            (
                &f,
                SwitchPrice { price: "price_z" },
                Err(Refusal::PriceNotOffered),
            ),
            (
                &off,
                SwitchPrice { price: "price_b" },
                Err(Refusal::NotOffered),
            ),
            (&f, UpdateDetail { field: "address" }, Ok(())),
            (&off, UpdateDetail { field: "email" }, Ok(())),
            (
                &off,
                UpdateDetail { field: "name" },
                Err(Refusal::NotOffered),
            ),
        ] {
            assert_eq!(permitted(features, action), want, "{action:?}");
        }
    }
}
