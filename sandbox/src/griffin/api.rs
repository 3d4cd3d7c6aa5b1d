//! The `/v0` resources: the account, its ledger, payments with their submissions and
//! admissions. Each handler reads, decides (see [`super::decide`]) and changes state in one
//! [`store::post`].

use calmony_protocol::griffin::page::{PaymentItems, SubmissionItems, TransactionItems};
use calmony_protocol::griffin::{
    Creditor, Direction, Links, NewPayment, NewSubmission, OriginType, Page, PaymentDirection,
    SearchQuery, payment::REFERENCE_MAX,
};
use hyper::StatusCode;

use super::ctx::{Ctx, new_id};
use super::decide;
use super::store::{self, Entry, PaymentRecord, Posted, Posting, SubmissionRecord};
use super::wire;
use crate::keys;
use crate::reply::Reply;

/// The most a page may hold, and what it holds when not told.
const PAGE_MAX: usize = 200;
const PAGE_DEFAULT: usize = 25;

/// Post the debit of every submitted payment whose delay has passed, and release its hold,
/// each exactly once however many requests race (the script takes it off the pending set).
/// Moves money: `processing` → `delivered` debits the account; `failed` only releases.
pub async fn mature(ctx: &Ctx<'_>) -> Result<(), crate::SandboxError> {
    for id in store::due(&ctx.gw.store, ctx.now_ms).await? {
        let Some(p) =
            store::load::<PaymentRecord>(&ctx.gw.store, &keys::griffin_payment(&id)).await?
        else {
            continue;
        };
        let Some(s) = &p.submission else { continue };
        let due_ms = s.submitted_ms.saturating_add(ctx.delay_ms());
        let entry = (s.fate == store::Fate::Deliver).then(|| Entry {
            id: new_id("tr"),
            processed_ms: due_ms,
            amount: p.amount,
            direction: Direction::Debit,
            balance_after: 0,
            origin: OriginType::Payment,
            payment_id: Some(p.id.clone()),
            reference: p.reference.clone(),
            description: None,
        });
        store::post(
            &ctx.gw.store,
            ctx.now_ms,
            Posting {
                take_pending: Some(p.id.clone()),
                hold_delta: -p.amount,
                entry,
                ..Posting::default()
            },
        )
        .await?;
    }
    Ok(())
}

pub async fn get_account(ctx: &Ctx<'_>) -> Result<Reply, crate::SandboxError> {
    let (balance, holds) = store::balances(&ctx.gw.store, ctx.now_ms).await?;
    let ledger = store::ledger(&ctx.gw.store).await?;
    let opened = ledger.first().map_or(ctx.now_ms, |e| e.processed_ms);
    Ok(wire::ok(
        StatusCode::OK,
        &wire::account(&ctx.setup.config, balance, holds, opened),
    ))
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn cursor(position: usize) -> String {
    hex::encode(format!("tr:{position}"))
}

fn read_cursor(text: &str) -> Option<usize> {
    let bytes = hex::decode(text).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("tr:")?
        .parse()
        .ok()
}

/// `GET .../transactions` (`path` as links name it, `/v0/...`): newest first unless `sort` says otherwise; `page[size]`,
/// `page[after]`, `page[before]`; `filter[processed-at][gte|gt|lte|lt]`.
pub async fn list_transactions(
    ctx: &Ctx<'_>,
    path: &str,
    query: &str,
) -> Result<Reply, crate::SandboxError> {
    store::balances(&ctx.gw.store, ctx.now_ms).await?;
    let ledger = store::ledger(&ctx.gw.store).await?;
    let pairs = query_pairs(query);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let size = match get("page[size]").map(str::parse::<usize>) {
        None => PAGE_DEFAULT,
        Some(Ok(n)) if (1..=PAGE_MAX).contains(&n) => n,
        Some(_) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid page size",
                "page[size] is a number from 1 to 200",
                None,
            ));
        }
    };
    let ascending = match get("sort") {
        None | Some("-created-at" | "-processed-at") => false,
        Some("created-at" | "processed-at") => true,
        Some(_) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid sort",
                "sort is created-at, -created-at, processed-at or -processed-at",
                None,
            ));
        }
    };
    let mut cursors = [None, None];
    for (i, name) in ["page[after]", "page[before]"].into_iter().enumerate() {
        if let Some(text) = get(name) {
            match read_cursor(text) {
                Some(p) => cursors[i] = Some(p),
                None => {
                    return Ok(wire::error(
                        StatusCode::BAD_REQUEST,
                        "Invalid cursor",
                        &format!("{name} is not a cursor this API gave"),
                        None,
                    ));
                }
            }
        }
    }
    let stamps: Vec<String> = ledger.iter().map(|e| wire::iso(e.processed_ms)).collect();
    let keep = |i: &usize| {
        let at = stamps[*i].as_str();
        [("gte", 0), ("gt", 1), ("lte", 2), ("lt", 3)]
            .iter()
            .all(
                |(op, n)| match get(&format!("filter[processed-at][{op}]")) {
                    None => true,
                    Some(bound) => match n {
                        0 => at >= bound,
                        1 => at > bound,
                        2 => at <= bound,
                        _ => at < bound,
                    },
                },
            )
    };
    let mut ordered: Vec<usize> = (0..ledger.len()).filter(keep).collect();
    if !ascending {
        ordered.reverse();
    }
    let (page, prev, next) = decide::paginate(&ordered, size, cursors[0], cursors[1]);
    let link = |name: &str, position: usize| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs
            .iter()
            .filter(|(k, _)| k != "page[after]" && k != "page[before]")
        {
            s.append_pair(k, v);
        }
        s.append_pair(name, &cursor(position));
        format!("{path}?{}", s.finish())
    };
    let body = Page {
        items: TransactionItems {
            account_transactions: page
                .iter()
                .map(|i| wire::transaction(&ledger[*i]))
                .collect(),
        },
        links: Links {
            prev: prev.map(|p| link("page[before]", p)),
            next: next.map(|p| link("page[after]", p)),
        },
    };
    Ok(wire::ok(StatusCode::OK, &body))
}

pub async fn get_transaction(ctx: &Ctx<'_>, id: &str) -> Result<Reply, crate::SandboxError> {
    let ledger = store::ledger(&ctx.gw.store).await?;
    Ok(match ledger.iter().find(|e| e.id == id) {
        Some(e) => wire::ok(StatusCode::OK, &wire::transaction(e)),
        None => wire::not_found(),
    })
}

/// Why a new payment is refused: (title, detail, pointer).
fn check_new_payment(p: &NewPayment) -> Result<i64, (&'static str, &'static str, &'static str)> {
    let amount = p.payment_amount.pence().map_err(|_| {
        (
            "Invalid value",
            "a GBP amount such as \"12.50\"",
            "/payment-amount",
        )
    })?;
    if amount <= 0 {
        return Err((
            "Invalid value",
            "the amount must be positive",
            "/payment-amount/value",
        ));
    }
    if let Some(r) = &p.payment_reference
        && (r.is_empty() || r.chars().count() > REFERENCE_MAX)
    {
        return Err((
            "Invalid value",
            "a reference is 1 to 35 characters",
            "/payment-reference",
        ));
    }
    match &p.creditor {
        Creditor::UkDomestic {
            bank_id,
            account_number,
            ..
        } => {
            let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(bank_id, 6) {
                return Err((
                    "Invalid value",
                    "bank-id is a 6-digit sort code",
                    "/creditor/bank-id",
                ));
            }
            if !digits(account_number, 8) {
                return Err((
                    "Invalid value",
                    "account-number is 8 digits",
                    "/creditor/account-number",
                ));
            }
            Ok(amount)
        }
        _ => Err((
            "Unsupported creditor",
            "the sandbox pays uk-domestic creditors only",
            "/creditor/creditor-type",
        )),
    }
}

/// `POST /v0/bank/accounts/{ba}/payments` → 201. Changes nothing but records the intent.
pub async fn create_payment(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply, crate::SandboxError> {
    let new: NewPayment = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid body",
                &e.to_string(),
                None,
            ));
        }
    };
    let amount = match check_new_payment(&new) {
        Ok(a) => a,
        Err((title, detail, pointer)) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                title,
                detail,
                Some(pointer),
            ));
        }
    };
    let record = PaymentRecord {
        id: new_id("pm"),
        direction: PaymentDirection::OutboundPayment,
        amount,
        reference: Some(
            new.payment_reference
                .clone()
                .unwrap_or_else(|| format!("Sent from {}", ctx.setup.config.account_holder)),
        ),
        creditor: Some(new.creditor),
        debtor: None,
        created_ms: ctx.now_ms,
        submission: None,
        admission: None,
    };
    let key = keys::griffin_payment(&record.id);
    store::post(
        &ctx.gw.store,
        ctx.now_ms,
        Posting {
            sets: vec![(key.clone(), store::to_json(&key, &record)?)],
            new_payment: Some(record.id.clone()),
            ..Posting::default()
        },
    )
    .await?;
    Ok(wire::ok(StatusCode::CREATED, &wire::payment(&record)))
}

/// `POST /v0/payments/{pm}/submissions` → 200 `processing`. Holds the amount; the debit is
/// posted when the payment is delivered ([`mature`]). 409 if submitted before, 422 if the
/// available balance cannot cover it.
pub async fn submit(ctx: &Ctx<'_>, id: &str, body: &[u8]) -> Result<Reply, crate::SandboxError> {
    let new: NewSubmission = match serde_json::from_slice(body) {
        Ok(s) => s,
        Err(e) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid body",
                &e.to_string(),
                None,
            ));
        }
    };
    let key = keys::griffin_payment(id);
    let Some(mut record) = store::load::<PaymentRecord>(&ctx.gw.store, &key).await? else {
        return Ok(wire::not_found());
    };
    if record.direction != PaymentDirection::OutboundPayment || record.submission.is_some() {
        return Ok(wire::error(
            StatusCode::CONFLICT,
            "Conflict",
            "the payment has been submitted already",
            None,
        ));
    }
    let fate = record
        .creditor
        .as_ref()
        .map_or(store::Fate::Deliver, decide::fate);
    let suffix = id.trim_start_matches("pm.");
    record.submission = Some(SubmissionRecord {
        id: format!("ps.{suffix}"),
        scheme: new.payment_scheme,
        submitted_ms: ctx.now_ms,
        fate,
        end_to_end_id: format!("E2E{}", suffix.chars().take(16).collect::<String>()),
        scheme_id: format!("CALMONYSBX{}", suffix.to_ascii_uppercase()),
    });
    let due = ctx.now_ms.saturating_add(ctx.delay_ms());
    // The once-key makes a racing second submit of the same payment a replay, not a
    // second hold.
    let posted = store::post(
        &ctx.gw.store,
        ctx.now_ms,
        Posting {
            once: Some((keys::griffin_once(&format!("submit:{id}")), "1".to_owned())),
            require_available: record.amount,
            add_pending: Some((id.to_owned(), due)),
            hold_delta: record.amount,
            sets: vec![(key.clone(), store::to_json(&key, &record)?)],
            ..Posting::default()
        },
    )
    .await?;
    Ok(match posted {
        Posted::Done => match wire::submission(&record, ctx.now_ms, ctx.delay_ms()) {
            Some(s) => wire::ok(StatusCode::OK, &s),
            None => wire::not_found(),
        },
        Posted::Insufficient => wire::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Insufficient funds",
            "the account's available balance does not cover the payment",
            Some("/payment-amount"),
        ),
        Posted::Replay(_) | Posted::Gone => wire::error(
            StatusCode::CONFLICT,
            "Conflict",
            "the payment has been submitted already",
            None,
        ),
    })
}

async fn payment_record(
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<Option<PaymentRecord>, crate::SandboxError> {
    store::load(&ctx.gw.store, &keys::griffin_payment(id)).await
}

pub async fn get_payment(ctx: &Ctx<'_>, id: &str) -> Result<Reply, crate::SandboxError> {
    Ok(match payment_record(ctx, id).await? {
        Some(p) => wire::ok(StatusCode::OK, &wire::payment(&p)),
        None => wire::not_found(),
    })
}

pub async fn payment_submissions(ctx: &Ctx<'_>, id: &str) -> Result<Reply, crate::SandboxError> {
    let Some(p) = payment_record(ctx, id).await? else {
        return Ok(wire::not_found());
    };
    let body = Page {
        items: SubmissionItems {
            submissions: wire::submission(&p, ctx.now_ms, ctx.delay_ms())
                .into_iter()
                .collect(),
        },
        links: Links::default(),
    };
    Ok(wire::ok(StatusCode::OK, &body))
}

pub async fn get_submission(ctx: &Ctx<'_>, id: &str) -> Result<Reply, crate::SandboxError> {
    let payment = format!("pm.{}", id.trim_start_matches("ps."));
    Ok(
        match payment_record(ctx, &payment)
            .await?
            .and_then(|p| wire::submission(&p, ctx.now_ms, ctx.delay_ms()))
        {
            Some(s) => wire::ok(StatusCode::OK, &s),
            None => wire::not_found(),
        },
    )
}

pub async fn payment_admissions(ctx: &Ctx<'_>, id: &str) -> Result<Reply, crate::SandboxError> {
    let Some(p) = payment_record(ctx, id).await? else {
        return Ok(wire::not_found());
    };
    let body = serde_json::json!({
        "admissions": wire::admission(&p).into_iter().collect::<Vec<_>>(),
        "links": Links::default(),
    });
    Ok(wire::ok(StatusCode::OK, &body))
}

pub async fn get_admission(ctx: &Ctx<'_>, id: &str) -> Result<Reply, crate::SandboxError> {
    let payment = format!("pm.{}", id.trim_start_matches("pa."));
    Ok(
        match payment_record(ctx, &payment)
            .await?
            .and_then(|p| wire::admission(&p))
        {
            Some(a) => wire::ok(StatusCode::OK, &a),
            None => wire::not_found(),
        },
    )
}

/// Every payment, newest first, that `keep` admits.
async fn payments_where(
    ctx: &Ctx<'_>,
    keep: impl Fn(&PaymentRecord) -> bool,
) -> Result<Reply, crate::SandboxError> {
    let mut out = Vec::new();
    for id in store::payment_ids(&ctx.gw.store).await?.iter().rev() {
        if let Some(p) = payment_record(ctx, id).await?
            && keep(&p)
        {
            out.push(wire::payment(&p));
        }
    }
    let body = Page {
        items: PaymentItems { payments: out },
        links: Links::default(),
    };
    Ok(wire::ok(StatusCode::OK, &body))
}

/// `GET .../payments`, with `filter[payment-direction][eq]`.
pub async fn list_payments(ctx: &Ctx<'_>, query: &str) -> Result<Reply, crate::SandboxError> {
    let pairs = query_pairs(query);
    let direction = pairs
        .iter()
        .find(|(k, _)| k == "filter[payment-direction][eq]")
        .map(|(_, v)| v.clone());
    payments_where(ctx, |p| match &direction {
        None => true,
        Some(d) => serde_json::to_value(p.direction).ok() == Some(serde_json::json!(d)),
    })
    .await
}

/// `POST .../payments/search`: the reference or the scheme id, as Griffin matches them.
pub async fn search_payments(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply, crate::SandboxError> {
    let q: SearchQuery = match serde_json::from_slice(body) {
        Ok(q) => q,
        Err(e) => {
            return Ok(wire::error(
                StatusCode::BAD_REQUEST,
                "Invalid body",
                &e.to_string(),
                None,
            ));
        }
    };
    let needle = q.search_query;
    payments_where(ctx, |p| {
        p.reference
            .as_deref()
            .is_some_and(|r| r.contains(needle.as_str()))
            || p.submission.as_ref().is_some_and(|s| s.scheme_id == needle)
            || p.admission.as_ref().is_some_and(|a| a.scheme_id == needle)
    })
    .await
}

/// `GET /v0/organizations/{og}/events` (newest first, `filter[event-type][eq]`) or, with
/// `id`, `GET /v0/events/{id}`.
pub async fn events(
    ctx: &Ctx<'_>,
    id: Option<&str>,
    query: &str,
) -> Result<Reply, crate::SandboxError> {
    let mut payments = Vec::new();
    for pid in store::payment_ids(&ctx.gw.store).await? {
        if let Some(p) = payment_record(ctx, &pid).await? {
            payments.push(p);
        }
    }
    let ledger = store::ledger(&ctx.gw.store).await?;
    let all = super::events::all(&payments, &ledger, ctx.now_ms, ctx.delay_ms());
    if let Some(id) = id {
        let url = format!("/v0/events/{id}");
        return Ok(match all.iter().find(|e| e.event_url == url) {
            Some(e) => wire::ok(StatusCode::OK, e),
            None => wire::not_found(),
        });
    }
    let pairs = query_pairs(query);
    let kind = pairs
        .iter()
        .find(|(k, _)| k == "filter[event-type][eq]")
        .map(|(_, v)| v.as_str());
    let body = Page {
        items: calmony_protocol::griffin::page::EventItems {
            events: all
                .into_iter()
                .filter(|e| kind.is_none_or(|k| e.event_type == k))
                .collect(),
        },
        links: Links::default(),
    };
    Ok(wire::ok(StatusCode::OK, &body))
}
