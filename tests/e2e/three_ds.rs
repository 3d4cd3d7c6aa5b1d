//! 3-D Secure: each outcome, the challenge driven by posting the pages' forms as a browser
//! would (the page -> the issuer's page -> back to the daemon -> back to the merchant).

use crate::harness::{Form, World, form, get_page, ledger, sales_per_order};

/// Walk a challenge: returns where the browser lands (the Location of the final redirect).
async fn walk(w: &World, next_action_url: &str, outcome: &str) -> Option<String> {
    let base = w.daemon.base();
    let (status, html) = get_page(next_action_url).await;
    assert_eq!(status, 200, "{html}");
    let to_issuer = form(&html, "threeds");
    assert!(
        to_issuer.action.contains("/sandbox/acs"),
        "{}",
        to_issuer.action
    );
    let (status, _, challenge) = to_issuer.submit(&base).await;
    assert_eq!(status, 200, "{challenge}");
    let answer = form(&challenge, "challenge").with("outcome", outcome);
    let (_, _, result_page) = answer.submit(&base).await;
    let back = form(&result_page, "acs-result");
    assert!(back.action.contains("/pay/3ds/"), "{}", back.action);
    let (status, location, body) = back.submit(&base).await;
    assert!(status == 303 || status == 200, "{status}: {body}");
    location
}

#[tokio::test]
async fn challenge_authenticated_then_paid_and_redirected() {
    let w = World::new();
    let pm = w.api.card("4000002500003155", 12, 2030, None).await;
    let r = w
        .api
        .pay(
            2500,
            &pm,
            "&return_url=https%3A%2F%2Fshop.example%2Fdone%3Forder%3D9",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "requires_action");
    assert_eq!(r.json["next_action"]["type"], "redirect_to_url");
    let pi = r.json["id"].as_str().expect("id").to_string();
    assert!(
        !sales_per_order(&ledger(&w.daemon.base(), Some(&pi)).await).contains_key(&pi),
        "not charged yet"
    );
    let url = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let landed = walk(&w, &url, "Y").await.expect("a redirect to return_url");
    assert!(
        landed.starts_with("https://shop.example/done?order=9&"),
        "{landed}"
    );
    assert!(
        landed.contains(&format!("payment_intent={pi}"))
            && landed.contains("redirect_status=succeeded"),
        "{landed}"
    );
    let got = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(got.json["status"], "succeeded");
    assert_eq!(
        sales_per_order(&ledger(&w.daemon.base(), Some(&pi)).await).get(&pi),
        Some(&1)
    );

    // Posting the issuer's answer again changes nothing.
    let (status, _) = get_page(&url).await;
    assert!(status == 303 || status == 200);
    assert_eq!(
        sales_per_order(&ledger(&w.daemon.base(), Some(&pi)).await).get(&pi),
        Some(&1)
    );
}

#[tokio::test]
async fn failed_and_rejected_authentication_decline_without_charging() {
    let w = World::new();
    for outcome in ["N", "R"] {
        let pm = w.api.card("4000000000003220", 12, 2030, None).await;
        let r = w
            .api
            .pay(2500, &pm, "&return_url=https%3A%2F%2Fshop.example%2Fback")
            .await;
        let pi = r.json["id"].as_str().expect("id").to_string();
        let url = r.json["next_action"]["redirect_to_url"]["url"]
            .as_str()
            .expect("url")
            .to_string();
        let landed = walk(&w, &url, outcome).await.expect("redirect");
        assert!(
            landed.contains("redirect_status=failed"),
            "{outcome}: {landed}"
        );
        let got = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
        assert_eq!(got.json["status"], "requires_payment_method", "{outcome}");
        assert_eq!(
            got.json["last_payment_error"]["code"],
            "payment_intent_authentication_failure"
        );
        assert!(!sales_per_order(&ledger(&w.daemon.base(), Some(&pi)).await).contains_key(&pi));
    }
}

#[tokio::test]
async fn the_guide_cards_expiry_month_picks_the_3ds_result() {
    let w = World::new();
    // 12: challenge; 01: frictionless success; 02: not authenticated (declined); 11: not
    // enrolled (authorised without authentication).
    let pm = w.api.card("4929421234600821", 12, 2030, None).await;
    let r = w.api.pay(1000, &pm, "").await;
    assert_eq!(r.json["status"], "requires_action", "{}", r.text);
    let url = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    walk(&w, &url, "Y").await;
    let pi = r.json["id"].as_str().expect("id");
    assert_eq!(
        w.api.get(&format!("/v1/payment_intents/{pi}")).await.json["status"],
        "succeeded"
    );

    let pm = w.api.card("4929421234600821", 1, 2030, None).await;
    assert_eq!(w.api.pay(1000, &pm, "").await.json["status"], "succeeded");
    let pm = w.api.card("4929421234600821", 2, 2030, None).await;
    let r = w.api.pay(1000, &pm, "").await;
    assert_eq!(
        (r.status, r.err("code")),
        (402, "payment_intent_authentication_failure"),
        "{}",
        r.text
    );
    let pm = w.api.card("4929421234600821", 11, 2030, None).await;
    assert_eq!(w.api.pay(1000, &pm, "").await.json["status"], "succeeded");
}

#[tokio::test]
async fn the_page_needs_the_client_secret() {
    let w = World::new();
    let pm = w.api.card("4000002500003155", 12, 2030, None).await;
    let r = w.api.pay(2500, &pm, "").await;
    let url = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let wrong = url.split("client_secret=").next().unwrap_or("").to_string() + "client_secret=nope";
    assert_eq!(get_page(&wrong).await.0, 404);
    assert_eq!(get_page(&url).await.0, 200);
}

/// Run a challenge up to the issuer's hand-back: the form the issuer's page would post to the
/// daemon, not yet posted.
async fn issuer_hand_back(w: &World, next_action_url: &str, outcome: &str) -> Form {
    let base = w.daemon.base();
    let (status, html) = get_page(next_action_url).await;
    assert_eq!(status, 200, "{html}");
    let (status, _, challenge) = form(&html, "threeds").submit(&base).await;
    assert_eq!(status, 200, "{challenge}");
    let answer = form(&challenge, "challenge").with("outcome", outcome);
    let (_, _, result_page) = answer.submit(&base).await;
    form(&result_page, "acs-result")
}

/// An intent of `w`'s project waiting in `requires_action`: (id, next action's URL).
async fn waiting_for_challenge(w: &World) -> (String, String) {
    let pm = w.api.card("4000002500003155", 12, 2030, None).await;
    let r = w
        .api
        .pay(2500, &pm, "&return_url=https%3A%2F%2Fshop.example%2Fdone")
        .await;
    assert_eq!(r.json["status"], "requires_action", "{}", r.text);
    let pi = r.json["id"].as_str().expect("id").to_string();
    let url = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    (pi, url)
}

fn without(form: &Form, name: &str) -> Form {
    Form {
        action: form.action.clone(),
        fields: form
            .fields
            .iter()
            .filter(|(k, _)| k != name)
            .cloned()
            .collect(),
    }
}

#[tokio::test]
async fn a_completion_without_the_issuers_session_secret_is_not_found_and_changes_nothing() {
    let w = World::new();
    let base = w.daemon.base();
    let (pi, url) = waiting_for_challenge(&w).await;
    let (other_pi, other_url) = waiting_for_challenge(&w).await;
    // The issuer's page hands back the cres and the session secret it was given.
    let back = issuer_hand_back(&w, &url, "N").await;
    let secret = back
        .field("threeDSSessionData")
        .expect("the issuer carries the session secret back")
        .to_string();
    assert!(secret.len() >= 22, "{secret}");
    let other_back = issuer_hand_back(&w, &other_url, "Y").await;
    let other_secret = other_back
        .field("threeDSSessionData")
        .expect("secret")
        .to_string();
    assert_ne!(secret, other_secret);

    let bare = without(&back, "threeDSSessionData");
    let forged = [
        ("no secret", bare.clone()),
        (
            "a wrong secret",
            bare.clone()
                .with("threeDSSessionData", "x".repeat(32).as_str()),
        ),
        (
            "another attempt's secret",
            bare.clone().with("threeDSSessionData", &other_secret),
        ),
        (
            "the secret twice",
            back.clone().with("threeDSSessionData", &secret),
        ),
        (
            "no form at all",
            Form {
                action: back.action.clone(),
                fields: Vec::new(),
            },
        ),
    ];
    for (what, attempt) in forged {
        let (status, location, body) = attempt.submit(&base).await;
        assert_eq!(status, 404, "{what}: {body}");
        assert!(location.is_none(), "{what}: {location:?}");
        assert!(
            !body.contains("pi_") && !body.contains("secret"),
            "{what}: {body}"
        );
        let got = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
        assert_eq!(got.json["status"], "requires_action", "{what}");
    }

    // The real round trip still completes, and only its own intent.
    let (status, location, body) = back.submit(&base).await;
    assert_eq!(status, 303, "{body}");
    assert!(
        location
            .as_deref()
            .is_some_and(|l| l.contains("redirect_status=failed")),
        "{location:?}"
    );
    let got = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(got.json["status"], "requires_payment_method");
    let got = w.api.get(&format!("/v1/payment_intents/{other_pi}")).await;
    assert_eq!(got.json["status"], "requires_action");
    // Once finished, the same secret still shows where it stands; no secret still does not.
    assert_eq!(back.submit(&base).await.0, 303);
    assert_eq!(bare.submit(&base).await.0, 404);
    let (status, location, _) = other_back.submit(&base).await;
    assert_eq!(status, 303);
    assert!(
        location
            .as_deref()
            .is_some_and(|l| l.contains("redirect_status=succeeded")),
        "{location:?}"
    );
}

#[tokio::test]
async fn a_new_attempt_refuses_the_secret_of_the_last_one() {
    let w = World::new();
    let base = w.daemon.base();
    let (pi, url) = waiting_for_challenge(&w).await;
    let first = issuer_hand_back(&w, &url, "N").await;
    assert_eq!(first.submit(&base).await.0, 303);
    // Confirmed again: a new attempt, a new challenge, a new secret.
    let pm = w.api.card("4000002500003155", 12, 2030, None).await;
    let r = w
        .api
        .post_form(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &format!("payment_method={pm}&return_url=https%3A%2F%2Fshop.example%2Fdone"),
        )
        .await;
    assert_eq!(r.json["status"], "requires_action", "{}", r.text);
    let url = r.json["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let second = issuer_hand_back(&w, &url, "Y").await;
    let old_secret = first.field("threeDSSessionData").expect("secret");
    let replay = without(&second, "threeDSSessionData").with("threeDSSessionData", old_secret);
    assert_eq!(replay.submit(&base).await.0, 404);
    let got = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(got.json["status"], "requires_action");
    assert_eq!(second.submit(&base).await.0, 303);
    let got = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(got.json["status"], "succeeded");
}
