//! Projects and modes are walls: another project's or mode's object is indistinguishable from
//! one that does not exist.

use crate::harness::World;

#[tokio::test]
async fn projects_and_modes_cannot_see_each_other() {
    let w = World::new();
    let other_project = w.daemon.api(&w.daemon.key("globex", "test"));
    let live_same_project = w.daemon.api(&w.daemon.key("acme", "live"));

    let c = w
        .api
        .post_form("/v1/customers", "email=a%40acme.co&name=A")
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.json["livemode"], false);
    let id = c.json["id"].as_str().expect("id").to_string();

    let unknown = w
        .api
        .get("/v1/customers/cus_01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        .await;
    assert_eq!(unknown.status, 404);

    for (who, api) in [
        ("other project", &other_project),
        ("live mode", &live_same_project),
    ] {
        let r = api.get(&format!("/v1/customers/{id}")).await;
        assert_eq!(r.status, 404, "{who}: {}", r.text);
        assert_eq!(r.err("code"), "resource_missing");
        assert_eq!(r.err("type"), unknown.err("type"));
        assert_eq!(r.err("message"), format!("No such customer: '{id}'"));
        let upd = api
            .post_form(&format!("/v1/customers/{id}"), "name=Mallory")
            .await;
        assert_eq!(upd.status, 404, "{who}");
        let del = api.delete(&format!("/v1/customers/{id}")).await;
        assert_eq!(del.status, 404, "{who}");
        let list = api.get("/v1/customers").await;
        assert_eq!(list.json["data"].as_array().map(Vec::len), Some(0), "{who}");
    }

    // Live objects say so.
    let live = live_same_project.post_form("/v1/customers", "name=L").await;
    assert_eq!(live.json["livemode"], true);
    let mine = w.api.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.json["name"], "A", "nobody else changed it");
}

/// A retrieve reads the object in the same round trip as the key check; that read is made in
/// the key's own project and mode, so it can never reach across the wall either.
#[tokio::test]
async fn payments_read_with_the_key_check_stay_in_their_project_and_mode() {
    let w = World::new();
    let other_project = w.daemon.api(&w.daemon.key("globex", "test"));
    let pm = w.api.card("4242424242424242", 12, 2030, None).await;
    let paid = w.api.pay(2500, &pm, "").await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let pi = paid.json["id"].as_str().expect("intent").to_string();
    let ch = paid.json["latest_charge"]
        .as_str()
        .expect("charge")
        .to_string();

    let mine = w.api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.json, paid.json, "answered exactly as stored");
    assert_eq!(w.api.get(&format!("/v1/charges/{ch}")).await.status, 200);

    for path in [
        format!("/v1/payment_intents/{pi}"),
        format!("/v1/charges/{ch}"),
    ] {
        let r = other_project.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.err("code"), "resource_missing");
    }
    // A POST's named objects are read with the key check too, in the key's scope: another
    // project can neither pay with this card, nor for this customer, nor confirm this intent.
    let cus = w.api.post_form("/v1/customers", "name=Mine").await;
    let cus = cus.json["id"].as_str().expect("customer").to_string();
    for (body, param) in [
        (
            format!("amount=100&currency=gbp&payment_method={pm}&confirm=true"),
            "payment_method",
        ),
        (
            format!("amount=100&currency=gbp&customer={cus}"),
            "customer",
        ),
    ] {
        let theirs = other_project.post_form("/v1/payment_intents", &body).await;
        assert_eq!(theirs.status, 400, "{}", theirs.text);
        assert_eq!(theirs.err("code"), "resource_missing");
        assert_eq!(theirs.err("param"), param);
    }
    let open = w
        .api
        .post_form("/v1/payment_intents", "amount=100&currency=gbp")
        .await;
    let open = open.json["id"].as_str().expect("intent").to_string();
    let theirs = other_project
        .post_form(&format!("/v1/payment_intents/{open}/confirm"), "")
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    // An id of another kind in the path is still a missing object of the route's kind.
    let wrong_kind = w.api.get(&format!("/v1/payment_intents/{ch}")).await;
    assert_eq!(wrong_kind.status, 404, "{}", wrong_kind.text);
    // Hostile ids never name a key: refused as missing, nothing read.
    let hostile = w.api.get("/v1/payment_intents/pi_x}:test:obj:pi_y").await;
    assert_eq!(hostile.status, 404, "{}", hostile.text);
}
