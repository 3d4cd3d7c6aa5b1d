//! List filters read indexes: among 250 objects, a filter that selects the ten newest gives
//! exactly those, in order, page by page, however many others there are.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::{Api, World, ids};

const ALL: usize = 250;
const WANTED: usize = 10;

fn world() -> World {
    World::with(&[("CALMONY_API_RATE_LIMIT_PER_SECOND", "100000")])
}

/// `POST` each of `paths` with `body`, sixteen at a time; every one must succeed. Answers the
/// ids created, newest first (ids are ULIDs, so a list's order is theirs).
async fn post_all(api: &Api, paths: Vec<String>, body: &str) -> Vec<String> {
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (api, paths, next, body) = (api.clone(), paths.clone(), next.clone(), body.to_string());
        workers.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else {
                    return made;
                };
                let r = api.post_form(path, &body).await;
                assert_eq!(r.status, 200, "{path}: {}", r.text);
                made.push(r.json["id"].as_str().expect("id").to_string());
            }
        }));
    }
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.expect("worker"));
    }
    ids.sort();
    ids.reverse();
    ids
}

/// `DELETE` each of `paths`, sixteen at a time; every one must succeed.
async fn delete_all(api: &Api, paths: Vec<String>) {
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (api, paths, next) = (api.clone(), paths.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            while let Some(path) = paths.get(next.fetch_add(1, Ordering::Relaxed)) {
                let r = api.delete(path).await;
                assert_eq!(r.status, 200, "{path}: {}", r.text);
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
}

/// `path?filter&rest`, or `path?rest` without a filter.
fn query(path: &str, filter: &str, rest: &str) -> String {
    match filter {
        "" => format!("{path}?{rest}"),
        f => format!("{path}?{f}&{rest}"),
    }
}

/// The list at `path` filtered by `filter` is exactly `want` (newest first): whole, three at a
/// time with `starting_after`, and three back from its oldest with `ending_before`.
async fn lists_exactly(api: &Api, path: &str, filter: &str, want: &[String]) {
    let whole = api.get(&query(path, filter, "limit=100")).await;
    assert_eq!(whole.status, 200, "{}", whole.text);
    assert_eq!(ids(&whole.json), want, "{path}?{filter}");
    assert_eq!(whole.json["has_more"], false, "{path}?{filter}");

    let (mut seen, mut flags) = (Vec::new(), Vec::new());
    let mut cursor = String::new();
    loop {
        let after = if cursor.is_empty() {
            String::new()
        } else {
            format!("&starting_after={cursor}")
        };
        let page = api
            .get(&query(path, filter, &format!("limit=3{after}")))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let more = page.json["has_more"].as_bool().expect("has_more");
        let got = ids(&page.json);
        cursor = got.last().cloned().unwrap_or_default();
        seen.extend(got);
        flags.push(more);
        if !more {
            break;
        }
    }
    assert_eq!(seen, want, "{path}?{filter} by pages of three");
    assert_eq!(flags, [true, true, true, false], "{path}?{filter}");

    let oldest = &want[want.len() - 1];
    let back = api
        .get(&query(
            path,
            filter,
            &format!("limit=3&ending_before={oldest}"),
        ))
        .await;
    assert_eq!(ids(&back.json), want[want.len() - 4..want.len() - 1]);
    assert_eq!(back.json["has_more"], true);
}

/// The first page of 100 of the list at `path` filtered by `filter` is the newest 100 of
/// `want`, with more to come.
async fn first_hundred(api: &Api, path: &str, filter: &str, want: &[String]) {
    let page = api.get(&query(path, filter, "limit=100")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(ids(&page.json), want[..100], "{path}?{filter}");
    assert_eq!(page.json["has_more"], true);
}

/// How many ids the index `cp:{prj}:test:<rest>` holds (the README's keyspace: an operator's
/// `ZCARD`).
fn index_size(w: &World, rest: &str) -> usize {
    let mut c = w.redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("cp:{{*}}:test:{rest}"))
        .query(&mut c)
        .expect("KEYS");
    assert_eq!(keys.len(), 1, "{rest}: {keys:?}");
    redis::cmd("ZCARD")
        .arg(&keys[0])
        .query(&mut c)
        .expect("ZCARD")
}

#[tokio::test]
async fn subscriptions_by_status_list_the_ten_trialing_among_250() {
    let w = world();
    let cus = w.api.customer().await;
    let card = w.api.card("4242424242424242", 12, 2035, Some(&cus)).await;
    let price = w
        .api
        .post_form(
            "/v1/prices",
            "currency=gbp&unit_amount=500&recurring[interval]=month&product_data[name]=Basic",
        )
        .await;
    let price = price.json["id"].as_str().expect("price").to_string();
    let body = format!(
        "customer={cus}&items[0][price]={price}&trial_period_days=30&default_payment_method={card}"
    );
    // The ten a second after the rest, so `created` tells them apart too.
    let others = post_all(
        &w.api,
        vec!["/v1/subscriptions".into(); ALL - WANTED],
        &body,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let wanted = post_all(&w.api, vec!["/v1/subscriptions".into(); WANTED], &body).await;
    let subs: Vec<String> = wanted.iter().chain(&others).cloned().collect();
    let (wanted, others) = subs.split_at(WANTED);
    delete_all(
        &w.api,
        others
            .iter()
            .map(|s| format!("/v1/subscriptions/{s}"))
            .collect(),
    )
    .await;

    let path = "/v1/subscriptions";
    lists_exactly(&w.api, path, "status=trialing", wanted).await;
    // Without `status`: those not canceled.
    lists_exactly(&w.api, path, "", wanted).await;
    lists_exactly(&w.api, path, &format!("customer={cus}"), wanted).await;
    lists_exactly(
        &w.api,
        path,
        &format!("price={price}&status=trialing"),
        wanted,
    )
    .await;
    let oldest = w.api.get(&format!("{path}/{}", wanted[WANTED - 1])).await;
    let since = oldest.json["created"].as_i64().expect("created");
    lists_exactly(
        &w.api,
        path,
        &format!("status=all&created[gte]={since}"),
        wanted,
    )
    .await;
    first_hundred(
        &w.api,
        path,
        &format!("status=all&created[lt]={since}"),
        others,
    )
    .await;
    first_hundred(&w.api, path, "status=canceled", others).await;
    first_hundred(&w.api, path, "status=ended", others).await;
    first_hundred(&w.api, path, "status=all", &subs).await;
    let none = w.api.get(&format!("{path}?status=active")).await;
    assert_eq!(
        (ids(&none.json).len(), &none.json["has_more"]),
        (0, &false.into())
    );
    assert_eq!(index_size(&w, "subscriptions:status:trialing"), WANTED);
    assert_eq!(
        index_size(&w, "subscriptions:status:canceled"),
        ALL - WANTED
    );
}

#[tokio::test]
async fn invoices_by_status_list_the_ten_open_among_250() {
    let w = world();
    let cus = w.api.customer().await;
    // The ten last, due in 60 days rather than 30, so `due_date` tells them apart too.
    let terms =
        |days: u32| format!("customer={cus}&collection_method=send_invoice&days_until_due={days}");
    let drafts = post_all(
        &w.api,
        vec!["/v1/invoices".into(); ALL - WANTED],
        &terms(30),
    )
    .await;
    let wanted = post_all(&w.api, vec!["/v1/invoices".into(); WANTED], &terms(60)).await;
    let invoices: Vec<String> = wanted.iter().chain(&drafts).cloned().collect();
    let (wanted, drafts) = invoices.split_at(WANTED);
    for id in wanted {
        // Something to pay: an invoice of £0 is paid as it is finalized.
        let item = w
            .api
            .post_form(
                "/v1/invoiceitems",
                &format!("customer={cus}&invoice={id}&amount=1200&currency=gbp"),
            )
            .await;
        assert_eq!(item.status, 200, "{}", item.text);
        let r = w
            .api
            .post_form(&format!("/v1/invoices/{id}/finalize"), "")
            .await;
        assert_eq!(r.json["status"], "open", "{}", r.text);
    }

    let path = "/v1/invoices";
    lists_exactly(&w.api, path, "status=open", wanted).await;
    lists_exactly(&w.api, path, &format!("customer={cus}&status=open"), wanted).await;
    let newest = w.api.get(&format!("{path}/{}", wanted[0])).await;
    let after = newest.json["created"].as_i64().expect("created") + 45 * 86_400;
    lists_exactly(&w.api, path, &format!("due_date[gt]={after}"), wanted).await;
    lists_exactly(
        &w.api,
        path,
        &format!("due_date[gte]={after}&status=open&customer={cus}"),
        wanted,
    )
    .await;
    first_hundred(&w.api, path, &format!("due_date[lte]={after}"), drafts).await;
    first_hundred(&w.api, path, "status=draft", drafts).await;
    first_hundred(&w.api, path, "collection_method=send_invoice", &invoices).await;
    assert_eq!(index_size(&w, "invoices:status:open"), WANTED);
    assert_eq!(index_size(&w, "invoices:status:draft"), ALL - WANTED);
}

#[tokio::test]
async fn checkout_sessions_by_status_list_the_ten_open_among_250() {
    let w = world();
    let body = "mode=payment&success_url=https%3A%2F%2Fagency.example%2Fpaid&cancel_url=https%3A%2F%2Fagency.example%2Fcancelled\
                &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=2500&line_items[0][price_data][product_data][name]=Holding+deposit\
                &line_items[0][quantity]=1";
    let sessions = post_all(&w.api, vec!["/v1/checkout/sessions".into(); ALL], body).await;
    let (wanted, expired) = sessions.split_at(WANTED);
    let paths: Vec<String> = expired
        .iter()
        .map(|s| format!("/v1/checkout/sessions/{s}/expire"))
        .collect();
    post_all(&w.api, paths, "").await;

    let path = "/v1/checkout/sessions";
    lists_exactly(&w.api, path, "status=open", wanted).await;
    first_hundred(&w.api, path, "status=expired", expired).await;
    assert_eq!(index_size(&w, "checkout_sessions:status:open"), WANTED);
    assert_eq!(
        index_size(&w, "checkout_sessions:status:expired"),
        ALL - WANTED
    );
}

/// Records written before lists filtered through indexes (no `ix:` fields, no sets) are put in
/// the sets once, when a daemon starts.
#[tokio::test]
async fn records_written_before_the_filter_indexes_are_indexed_at_start() {
    let mut w = world();
    let body = "mode=payment&success_url=https%3A%2F%2Fagency.example%2Fpaid&cancel_url=https%3A%2F%2Fagency.example%2Fcancelled\
                &line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=900&line_items[0][price_data][product_data][name]=Deposit\
                &line_items[0][quantity]=1";
    let sessions = post_all(&w.api, vec!["/v1/checkout/sessions".into(); ALL], body).await;
    let (wanted, expired) = sessions.split_at(WANTED);
    let paths: Vec<String> = expired
        .iter()
        .map(|s| format!("/v1/checkout/sessions/{s}/expire"))
        .collect();
    post_all(&w.api, paths, "").await;
    let cus = w.api.customer().await;
    let invoices = post_all(
        &w.api,
        vec!["/v1/invoices".into(); 5],
        &format!("customer={cus}&collection_method=send_invoice&days_until_due=30"),
    )
    .await;
    // As an older daemon left them: no filter sets, no `ix:` fields, no mark.
    {
        let mut c = w.redis.conn();
        let mut sets = Vec::new();
        for list in ["checkout_sessions", "invoices"] {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("cp:{{*}}:test:{list}:*"))
                .query(&mut c)
                .expect("KEYS");
            assert!(!keys.is_empty(), "{list}");
            sets.extend(keys);
        }
        let records: Vec<String> = redis::cmd("KEYS")
            .arg("cp:{*}:test:obj:*")
            .query(&mut c)
            .expect("KEYS");
        let mut pipe = redis::pipe();
        pipe.del(&sets).del("cp:migrations:list_filters");
        for r in &records {
            let fields: Vec<String> = redis::cmd("HKEYS").arg(r).query(&mut c).expect("HKEYS");
            for f in fields.iter().filter(|f| f.starts_with("ix:")) {
                pipe.hdel(r, f);
            }
        }
        let () = pipe.query(&mut c).expect("forget the indexes");
    }
    let open = w
        .api
        .get("/v1/checkout/sessions?status=open&limit=100")
        .await;
    assert!(ids(&open.json).is_empty(), "{}", open.text);

    w.daemon.restart();
    lists_exactly(&w.api, "/v1/checkout/sessions", "status=open", wanted).await;
    first_hundred(&w.api, "/v1/checkout/sessions", "status=expired", expired).await;
    assert_eq!(index_size(&w, "checkout_sessions:status:open"), WANTED);
    let due = w.api.get("/v1/invoices?due_date[gt]=0&status=draft").await;
    assert_eq!(ids(&due.json), invoices);
}

/// Two filters whose sets are large but meet in only the ten oldest objects: the page reader
/// gives up a call after looking at its budget of ids and goes on from there in the next, so
/// the pages are exact still.
#[tokio::test]
async fn two_large_filters_that_meet_in_ten_old_objects_page_exactly() {
    use calmony_actors::store::{Commit, Scope, Store, Tx, filters};
    use calmony_protocol::list::{Cursor, ListParams};

    const N: usize = 4_500;
    let redis = crate::harness::Redis::start();
    let store = Store::connect(&redis.url(), std::time::Duration::from_secs(5))
        .await
        .expect("store");
    let scope = Scope::new("prj_t", calmony_protocol::Mode::Test);
    let list = scope.key("invoices");
    let mut made = Vec::new();
    for i in 0..N {
        let id = calmony_protocol::ids::new_id("in");
        // Draft: the ten oldest and every even one; sent: the ten oldest and every odd one.
        let status = if i < WANTED || i % 2 == 0 {
            "draft"
        } else {
            "open"
        };
        let method = if i < WANTED || i % 2 == 1 {
            "send_invoice"
        } else {
            "charge_automatically"
        };
        let json = format!(
            r#"{{"id":"{id}","object":"invoice","status":"{status}","collection_method":"{method}"}}"#
        );
        let mut tx = Tx::new();
        tx.put(&scope.record(&id), 1, &json).index(&list, &id);
        assert_eq!(store.commit(&tx).await.expect("commit"), Commit::Done(None));
        made.push(id);
    }
    let wanted: Vec<String> = made[..WANTED].iter().rev().cloned().collect();
    let sets = filters::sets(
        &list,
        &list,
        &[
            ("status", Some("draft")),
            ("collection_method", Some("send_invoice")),
        ],
    );
    let page = |limit: usize, cursor: Cursor| {
        let (store, scope, sets) = (store.clone(), scope.clone(), sets.clone());
        async move {
            let (items, more) = store
                .page_where(&scope, &sets, &[], &ListParams { limit, cursor })
                .await
                .expect("page");
            let ids: Vec<String> = items
                .iter()
                .map(|j| {
                    let v: serde_json::Value = serde_json::from_str(j).expect("json");
                    v["id"].as_str().expect("id").to_string()
                })
                .collect();
            (ids, more)
        }
    };
    assert_eq!(page(100, Cursor::Start).await, (wanted.clone(), false));
    let (mut seen, mut flags, mut cursor) = (Vec::new(), Vec::new(), Cursor::Start);
    loop {
        let (ids, more) = page(3, cursor).await;
        cursor = Cursor::After(ids.last().cloned().unwrap_or_default());
        seen.extend(ids);
        flags.push(more);
        if !more {
            break;
        }
    }
    assert_eq!(seen, wanted);
    assert_eq!(flags, [true, true, true, false]);
    let oldest = wanted[WANTED - 1].clone();
    assert_eq!(
        page(3, Cursor::Before(oldest)).await,
        (wanted[WANTED - 4..WANTED - 1].to_vec(), true)
    );
    // From the newest object, backwards: the newest of the ten are far from it.
    let newest = made[N - 1].clone();
    assert_eq!(page(100, Cursor::Before(newest)).await, (Vec::new(), false));
}
