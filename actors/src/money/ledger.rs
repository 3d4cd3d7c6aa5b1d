//! Writing balance transactions, in the commit of the change that moves the money.
//!
//! A balance transaction is written once, `pending`, and joins its settlement batch: its net
//! is added to the batch's expected credit and to its project's share. The follower makes it
//! `available` when the batch closes. Only these increments touch a batch from a payment's
//! commit, so payments never contend on it.

use calmony_protocol::balance::{BalanceTransaction, FeeDetail, TXN_PREFIX, TxnType};
use calmony_protocol::{ApiError, ids};

use super::{ModeSettlement, keys};
use crate::resource::to_json;
use crate::store::{Scope, Store, StoreError, Tx};

/// What a batch gathers: a day of card takings, or one payment by bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Card,
    Bank,
}

impl BatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchKind::Card => "card",
            BatchKind::Bank => "bank",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "card" => Some(BatchKind::Card),
            "bank" => Some(BatchKind::Bank),
            _ => None,
        }
    }
}

/// The batch a balance transaction settles in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRef {
    /// The credit's reference on the settlement account.
    pub reference: String,
    pub kind: BatchKind,
    /// Unix seconds.
    pub closes_at: i64,
}

impl BatchRef {
    /// The day's card batch for something captured (or refunded after settlement) at `at`.
    pub fn card(st: &ModeSettlement, at: i64) -> Self {
        let day = st.cutoff.batch_day(at);
        Self {
            reference: calmony_protocol::settlement::card_batch_reference(&st.merchant_id, day),
            kind: BatchKind::Card,
            closes_at: st.cutoff.closes_at(day),
        }
    }

    /// A Pay by Bank payment's own batch: its Faster Payment is on its way now.
    pub fn bank(reference: &str, at: i64) -> Self {
        Self {
            reference: reference.to_owned(),
            kind: BatchKind::Bank,
            closes_at: at,
        }
    }
}

/// A balance transaction to write.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub kind: TxnType,
    pub amount: i64,
    pub fee: i64,
    pub currency: &'a str,
    pub source: Option<&'a str>,
    pub description: Option<String>,
    pub created: i64,
    /// `None`: available at once (money already on the account), in no batch.
    pub batch: Option<&'a BatchRef>,
    /// The card scheme whose fee applies, kept for the refunds of this charge.
    pub scheme: Option<&'a str>,
}

fn reporting_category(kind: TxnType) -> &'static str {
    match kind {
        TxnType::Charge => "charge",
        TxnType::Refund => "refund",
        TxnType::Payout => "payout",
        TxnType::PayoutFailure => "payout_reversal",
        TxnType::Topup => "topup",
        TxnType::Adjustment => "other_adjustment",
    }
}

/// The balance transaction `e` describes, with a fresh id.
pub fn build(e: &NewEntry<'_>) -> BalanceTransaction {
    let pending = e.batch.is_some();
    BalanceTransaction {
        id: ids::new_id(TXN_PREFIX),
        object: "balance_transaction".into(),
        amount: e.amount,
        available_on: e.batch.map_or(e.created, |b| b.closes_at),
        created: e.created,
        currency: e.currency.to_ascii_lowercase(),
        description: e.description.clone(),
        exchange_rate: None,
        fee: e.fee,
        fee_details: if e.fee == 0 {
            Vec::new()
        } else {
            vec![FeeDetail {
                amount: e.fee,
                application: None,
                currency: e.currency.to_ascii_lowercase(),
                description: "Card processing fees (acquirer)".into(),
                kind: "stripe_fee".into(),
            }]
        },
        net: e.amount - e.fee,
        reporting_category: reporting_category(e.kind).into(),
        source: e.source.map(str::to_owned),
        status: if pending { "pending" } else { "available" }.into(),
        kind: e.kind,
    }
}

/// Write `e` into `tx`: the record, its list index, the balance, and its batch. Answers the
/// transaction written.
pub fn write(tx: &mut Tx, scope: &Scope, e: &NewEntry<'_>) -> Result<BalanceTransaction, ApiError> {
    let bt = build(e);
    let batch = e.batch.map_or("", |b| b.reference.as_str());
    tx.put_with(
        &scope.record(&bt.id),
        1,
        &to_json(&bt)?,
        &[
            ("batch", batch),
            ("batch_kind", e.batch.map_or("", |b| b.kind.as_str())),
            ("scheme", e.scheme.unwrap_or("")),
        ],
    )
    .index(&keys::balance_transactions(scope), &bt.id)
    .index(
        &keys::balance_transactions_of(scope, bt.kind.as_str()),
        &bt.id,
    );
    tx.hincrby(
        &keys::balance(scope),
        &format!("{}:{}", bt.status, bt.currency),
        bt.net,
    );
    if let Some(b) = e.batch {
        join_batch(tx, scope, b, &bt.id, bt.net, &bt.currency);
    }
    // The dashboard's per-day figures, in this same commit.
    super::stats::entry(tx, scope, bt.created, bt.kind, bt.amount, &bt.currency);
    Ok(bt)
}

fn join_batch(tx: &mut Tx, scope: &Scope, b: &BatchRef, txn: &str, net: i64, currency: &str) {
    let mode = scope.mode;
    let k = keys::batch(mode, &b.reference);
    // The batch's own fields and its place in the list of batches are written by the first
    // transaction to join; every one (re-)adds it to the due set, so a late joiner after the
    // close is seen by the follower. `expected` (the sum of the shares) is still kept: a
    // follower of the previous release, sharing this Redis during an upgrade, reads it.
    tx.hincrby(&k, "expected", net)
        .hincrby(&k, &format!("share:{}", scope.project), net)
        .create_once(
            &k,
            &[
                ("kind", b.kind.as_str()),
                ("closes_at", &b.closes_at.to_string()),
                ("currency", currency),
            ],
            &keys::batches(mode),
            b.closes_at * 1000,
            &b.reference,
        )
        .index(
            &keys::batch_members(mode, &b.reference),
            &format!("{}|{txn}", scope.project),
        )
        .schedule(&keys::due(mode), b.closes_at * 1000, &b.reference);
}

/// What a charge's balance transaction says about the refunds to come: its batch and scheme.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargeEntry {
    pub batch: Option<BatchRef>,
    pub scheme: String,
}

/// Read a charge's balance transaction's batch and scheme.
pub async fn charge_entry(
    store: &Store,
    scope: &Scope,
    txn: &str,
) -> Result<Option<ChargeEntry>, StoreError> {
    let key = scope.record(txn);
    let Some((rec, fields)) = store
        .get_with(&key, &["batch", "batch_kind", "scheme"])
        .await?
    else {
        return Ok(None);
    };
    let bt: BalanceTransaction = rec.parse(&key)?;
    let field = |i: usize| fields.get(i).cloned().flatten().unwrap_or_default();
    let (reference, kind, scheme) = (field(0), field(1), field(2));
    let batch = BatchKind::parse(&kind)
        .filter(|_| !reference.is_empty())
        .map(|kind| BatchRef {
            reference,
            kind,
            closes_at: bt.available_on,
        });
    Ok(Some(ChargeEntry { batch, scheme }))
}

/// The fee given back when a refund before settlement lowers what the acquirer will settle
/// from `kept_before` to `kept_after` (the fee is charged on what settles).
pub fn fee_returned(st: &ModeSettlement, scheme: &str, kept_before: i64, kept_after: i64) -> i64 {
    st.card_fees.fee(scheme, kept_before) - st.card_fees.fee(scheme, kept_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_before_settlement_returns_the_fee_on_what_no_longer_settles() {
        let st = crate::money::Settlement::default().test;
        // 1.5 % + 20p: £10.00 costs 35p; £6.00 costs 29p; nothing costs nothing.
        for (before, after, back) in [(1_000, 600, 6), (1_000, 0, 35), (600, 600, 0)] {
            assert_eq!(fee_returned(&st, "visa", before, after), back);
        }
    }

    #[test]
    fn net_is_amount_less_fee_and_a_batch_makes_it_pending() {
        let batch = BatchRef::bank("CPREF", 100);
        let bt = build(&NewEntry {
            kind: TxnType::Charge,
            amount: 1_000,
            fee: 35,
            currency: "GBP",
            source: Some("ch_1"),
            description: None,
            created: 90,
            batch: Some(&batch),
            scheme: Some("visa"),
        });
        assert_eq!(
            (bt.net, bt.status.as_str(), bt.available_on),
            (965, "pending", 100)
        );
        assert_eq!(bt.currency, "gbp");
    }
}

/// A card charge's balance transaction, written as it is captured: its fee by the card's
/// scheme, into the day's card batch. Sets `charge.balance_transaction`.
pub fn card_charge(
    tx: &mut Tx,
    scope: &Scope,
    st: &ModeSettlement,
    charge: &mut calmony_protocol::charge::Charge,
    now: i64,
) -> Result<(), ApiError> {
    if charge.amount_captured <= 0 || charge.balance_transaction.is_some() {
        return Ok(());
    }
    let scheme = charge.payment_method_details["card"]["brand"]
        .as_str()
        .unwrap_or("card")
        .to_owned();
    let batch = BatchRef::card(st, now);
    let bt = write(
        tx,
        scope,
        &NewEntry {
            kind: TxnType::Charge,
            amount: charge.amount_captured,
            fee: st.card_fees.fee(&scheme, charge.amount_captured),
            currency: &charge.currency,
            source: Some(&charge.id),
            description: charge.description.clone(),
            created: now,
            batch: Some(&batch),
            scheme: Some(&scheme),
        },
    )?;
    charge.balance_transaction = Some(bt.id);
    Ok(())
}

/// A Pay by Bank charge's balance transaction: no fee is taken from a Faster Payment, and
/// the payment is its own batch, under the reference the payer's bank sends with it.
pub fn bank_charge(
    tx: &mut Tx,
    scope: &Scope,
    charge: &mut calmony_protocol::charge::Charge,
    reference: &str,
    now: i64,
) -> Result<(), ApiError> {
    if charge.amount_captured <= 0 || charge.balance_transaction.is_some() {
        return Ok(());
    }
    let batch = BatchRef::bank(reference, now);
    let bt = write(
        tx,
        scope,
        &NewEntry {
            kind: TxnType::Charge,
            amount: charge.amount_captured,
            fee: 0,
            currency: &charge.currency,
            source: Some(&charge.id),
            description: charge.description.clone(),
            created: now,
            batch: Some(&batch),
            scheme: None,
        },
    )?;
    charge.balance_transaction = Some(bt.id);
    Ok(())
}

/// How a card refund reached the acquirer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRoute {
    /// Before settlement (a lower capture or a cancel): the sale settles for less, in its
    /// own batch, and the fee on what no longer settles comes back.
    BeforeSettlement { kept_before: i64, kept_after: i64 },
    /// After settlement (REFUND_SALE): taken from the day's batch it is made in.
    AfterSettlement,
}

/// A card refund's balance transaction, written as the refund succeeds. Sets
/// `refund.balance_transaction`.
pub fn card_refund(
    tx: &mut Tx,
    scope: &Scope,
    st: &ModeSettlement,
    refund: &mut calmony_protocol::refund::Refund,
    charge: Option<&ChargeEntry>,
    route: RefundRoute,
    now: i64,
) -> Result<(), ApiError> {
    if refund.balance_transaction.is_some() {
        return Ok(());
    }
    let scheme = charge.map_or("card", |c| c.scheme.as_str());
    let (batch, fee) = match (route, charge.and_then(|c| c.batch.clone())) {
        (
            RefundRoute::BeforeSettlement {
                kept_before,
                kept_after,
            },
            Some(b),
        ) => (b, -fee_returned(st, scheme, kept_before, kept_after)),
        _ => (BatchRef::card(st, now), 0),
    };
    let bt = write(
        tx,
        scope,
        &NewEntry {
            kind: TxnType::Refund,
            amount: -refund.amount,
            fee,
            currency: &refund.currency,
            source: Some(&refund.id),
            description: Some("REFUND FOR CHARGE".into()),
            created: now,
            batch: Some(&batch),
            scheme: None,
        },
    )?;
    refund.balance_transaction = Some(bt.id);
    Ok(())
}

/// A Pay by Bank refund's balance transactions, written as Griffin delivers it: the refund,
/// and the `topup` that paid it, because the money left the merchant's own (Griffin) account,
/// not the balance here. Sets `refund.balance_transaction`.
pub fn bank_refund(
    tx: &mut Tx,
    scope: &Scope,
    refund: &mut calmony_protocol::refund::Refund,
    now: i64,
) -> Result<(), ApiError> {
    if refund.balance_transaction.is_some() {
        return Ok(());
    }
    let back = write(
        tx,
        scope,
        &NewEntry {
            kind: TxnType::Refund,
            amount: -refund.amount,
            fee: 0,
            currency: &refund.currency,
            source: Some(&refund.id),
            description: Some("REFUND FOR PAY BY BANK PAYMENT".into()),
            created: now,
            batch: None,
            scheme: None,
        },
    )?;
    write(
        tx,
        scope,
        &NewEntry {
            kind: TxnType::Topup,
            amount: refund.amount,
            fee: 0,
            currency: &refund.currency,
            source: Some(&refund.id),
            description: Some("Paid from the settlement account (Griffin)".into()),
            created: now,
            batch: None,
            scheme: None,
        },
    )?;
    refund.balance_transaction = Some(back.id);
    Ok(())
}
