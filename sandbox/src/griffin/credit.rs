//! Money in: an incoming Faster Payment to the sandbox account ([`credit`]), and the credit
//! faults that hold one back or change its amount ([`super::faults`]).

use calmony_actors::Store;
use calmony_protocol::griffin::{Debtor, Direction, OriginType, PaymentDirection};
use serde::{Deserialize, Serialize};

use super::ctx::new_id;
use super::store::{self, AdmissionRecord, Entry, PaymentRecord, Posted, Posting};
use super::{decide, faults, wire};
use crate::error::SandboxError;
use crate::keys;

/// An incoming Faster Payment to the sandbox account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Credit {
    /// Pence, positive.
    pub amount: i64,
    pub reference: String,
    #[serde(default)]
    pub end_to_end_id: Option<String>,
    pub debtor_name: String,
    #[serde(default)]
    pub debtor_sort_code: Option<String>,
    #[serde(default)]
    pub debtor_account_number: Option<String>,
    /// The caller's key for this credit: a second credit under it changes nothing and answers
    /// as the first did (a settlement is credited once, however often it is retried).
    #[serde(default)]
    pub once_key: Option<String>,
}

/// What a credit made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Credited {
    pub payment_url: String,
    pub admission_url: String,
    pub account_transaction_url: String,
    /// True when `once_key` had been used: nothing new was written.
    #[serde(default)]
    pub replayed: bool,
    /// Pence the ledger entry is (or will be) for: the amount asked, unless a wrong-amount
    /// fault changed it.
    #[serde(default)]
    pub amount: i64,
    /// True when a fault holds the credit back: it posts later (or when released), under
    /// these URLs.
    #[serde(default)]
    pub held: bool,
}

/// Why a credit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("a credit's amount must be positive")]
    NotPositive,
    #[error("a credit's reference is 1 to 35 characters")]
    Reference,
    #[error(transparent)]
    Store(#[from] SandboxError),
}

/// A credit held back by a fault, with the ids it will post under.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldCredit {
    credit: Credit,
    payment_id: String,
    entry_id: String,
}

/// The payment, admission and ledger entry a credit makes at `now_ms`, and its answer.
fn build(
    credit: &Credit,
    id: &str,
    entry_id: &str,
    now_ms: i64,
) -> (PaymentRecord, Entry, Credited) {
    let suffix = id.trim_start_matches("pm.").to_owned();
    let record = PaymentRecord {
        id: id.to_owned(),
        direction: PaymentDirection::InboundPayment,
        amount: credit.amount,
        reference: Some(credit.reference.clone()),
        creditor: None,
        debtor: Some(Debtor {
            account_holder: credit.debtor_name.clone(),
            bank_id: credit.debtor_sort_code.clone(),
            account_number: credit.debtor_account_number.clone(),
        }),
        created_ms: now_ms,
        submission: None,
        admission: Some(AdmissionRecord {
            id: format!("pa.{suffix}"),
            end_to_end_id: credit.end_to_end_id.clone(),
            scheme_id: format!("CALMONYSBXIN{}", suffix.to_ascii_uppercase()),
            created_ms: now_ms,
        }),
    };
    let entry = Entry {
        id: entry_id.to_owned(),
        processed_ms: now_ms,
        amount: credit.amount,
        direction: Direction::Credit,
        balance_after: 0,
        origin: OriginType::Payment,
        payment_id: Some(id.to_owned()),
        reference: Some(credit.reference.clone()),
        description: Some(format!("Faster Payment from {}", credit.debtor_name)),
    };
    let credited = Credited {
        payment_url: wire::payment_url(id),
        admission_url: format!("/v0/admissions/pa.{suffix}"),
        account_transaction_url: format!("/v0/bank/transactions/{entry_id}"),
        replayed: false,
        amount: credit.amount,
        held: false,
    };
    (record, entry, credited)
}

/// Credit the sandbox account by Faster Payment: an inbound payment, its admission
/// (`delivered`) and a `credit` ledger entry, in one atomic posting. Moves money: the balance
/// rises by `credit.amount`. Under a `once_key` already used, nothing moves and the first
/// answer is returned with `replayed`.
///
/// The credit faults ([`faults`]) are taken here, whoever credits: a wrong-amount fault
/// changes what posts; a delay or hold keeps the credit back (answered with `held`), to post
/// at its time ([`post_held_credits`]) under the URLs already answered.
pub async fn credit(store: &Store, now_ms: i64, credit: Credit) -> Result<Credited, CreditError> {
    if credit.amount <= 0 {
        return Err(CreditError::NotPositive);
    }
    if credit.reference.is_empty()
        || credit.reference.chars().count() > calmony_protocol::griffin::payment::REFERENCE_MAX
    {
        return Err(CreditError::Reference);
    }
    let once_key = credit
        .once_key
        .as_ref()
        .map(|k| keys::griffin_once(&format!("credit:{k}")));
    if let Some(key) = &once_key
        && let Some(first) = store::load::<Credited>(store, key).await?
    {
        return Ok(Credited {
            replayed: true,
            ..first
        });
    }
    let injected = faults::take_credit_faults(store).await?;
    let mut credit = credit;
    credit.amount = decide::injected_amount(credit.amount, injected.delta);
    let id = new_id("pm");
    let entry_id = new_id("tr");
    if let Some(due) = decide::credit_due(now_ms, injected.delay_ms, injected.hold) {
        return hold(store, now_ms, credit, &id, &entry_id, due, once_key).await;
    }
    post_credit(store, now_ms, &credit, &id, &entry_id, once_key).await
}

/// Post a credit under `id` and `entry_id`; `once` as [`credit`] describes.
async fn post_credit(
    store: &Store,
    now_ms: i64,
    credit: &Credit,
    id: &str,
    entry_id: &str,
    once_key: Option<String>,
) -> Result<Credited, CreditError> {
    let (record, entry, credited) = build(credit, id, entry_id, now_ms);
    let key = keys::griffin_payment(id);
    let once = match once_key {
        Some(k) => Some((k, store::to_json(&key, &credited)?)),
        None => None,
    };
    let posted = store::post(
        store,
        now_ms,
        Posting {
            once,
            entry: Some(entry),
            sets: vec![(key.clone(), store::to_json(&key, &record)?)],
            new_payment: Some(id.to_owned()),
            ..Posting::default()
        },
    )
    .await?;
    match posted {
        Posted::Replay(first) => {
            let mut first: Credited = store::parse(&key, &first)?;
            first.replayed = true;
            Ok(first)
        }
        _ => Ok(credited),
    }
}

/// Keep a credit back until `due` (ms; infinite until released), answering the URLs it will
/// post under. The caller's once-key is taken now, so a retry of the same credit while it is
/// held is answered as the first was.
async fn hold(
    store: &Store,
    now_ms: i64,
    credit: Credit,
    id: &str,
    entry_id: &str,
    due: f64,
    once_key: Option<String>,
) -> Result<Credited, CreditError> {
    static HOLD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"
if ARGV[1] ~= '' then
  local first = redis.call('GET', KEYS[2])
  if first then return first end
  redis.call('SET', KEYS[2], ARGV[2])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
return ''
",
        )
    });
    let (_, _, mut credited) = build(&credit, id, entry_id, now_ms);
    credited.held = true;
    let held = HeldCredit {
        credit,
        payment_id: id.to_owned(),
        entry_id: entry_id.to_owned(),
    };
    let mut inv = HOLD.prepare_invoke();
    inv.key(keys::GRIFFIN_HELD)
        .key(once_key.as_deref().unwrap_or(keys::GRIFFIN_HELD))
        .arg(if once_key.is_some() { "1" } else { "" })
        .arg(store::to_json(keys::GRIFFIN_HELD, &credited)?)
        .arg(if due.is_infinite() {
            "+inf".to_owned()
        } else {
            format!("{due}")
        })
        .arg(store::to_json(keys::GRIFFIN_HELD, &held)?);
    let mut c = store.conn();
    let first: String = store
        .run(inv.invoke_async(&mut c))
        .await
        .map_err(SandboxError::from)?;
    if !first.is_empty() {
        let mut first: Credited = store::parse(keys::GRIFFIN_HELD, &first)?;
        first.replayed = true;
        return Ok(first);
    }
    tracing::info!(payment = %id, due, "Griffin sandbox: credit held back (fault)");
    Ok(credited)
}

/// Post the held credits whose time has come (all of them with `release`), each once however
/// many daemons race: the posting's once-key is the held payment's id, and the credit leaves
/// the held set only after it posted. The credits posted.
pub async fn post_held_credits(
    store: &Store,
    now_ms: i64,
    release: bool,
) -> Result<Vec<Credited>, SandboxError> {
    let mut c = store.conn();
    let upto = if release {
        "+inf".to_owned()
    } else {
        now_ms.to_string()
    };
    let due: Vec<String> = store
        .run(async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys::GRIFFIN_HELD)
                .arg("-inf")
                .arg(upto)
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut out = Vec::new();
    for raw in due {
        let held: HeldCredit = store::parse(keys::GRIFFIN_HELD, &raw)?;
        let once = keys::griffin_once(&format!("held:{}", held.payment_id));
        let posted = post_credit(
            store,
            now_ms,
            &held.credit,
            &held.payment_id,
            &held.entry_id,
            Some(once),
        )
        .await
        .map_err(|e| match e {
            CreditError::Store(e) => e,
            other => SandboxError::Corrupt {
                key: keys::GRIFFIN_HELD.to_owned(),
                reason: other.to_string(),
            },
        })?;
        let mut c = store.conn();
        store
            .run(async move {
                redis::cmd("ZREM")
                    .arg(keys::GRIFFIN_HELD)
                    .arg(raw)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
        if !posted.replayed {
            tracing::info!(payment = %held.payment_id, "Griffin sandbox: held credit posted");
            out.push(posted);
        }
    }
    Ok(out)
}
