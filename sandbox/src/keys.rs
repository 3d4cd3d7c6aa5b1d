//! The simulated gateway's Redis keyspace, in one place so the README table can be read off it.
//!
//! Everything lives under `cp:sandbox:` and is shared by every daemon on the same Redis: they
//! all talk to one simulated gateway, so an `xref` issued through one daemon can be captured
//! through another, and settlement moves each transaction once however many timers fire.
//! Keys carry no hash tag: the simulator's atomic changes span several of them and it assumes
//! a single Redis, never a Cluster.
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `cp:sandbox:txn:<xref>` | string (packed JSON, `store::packed`) | one transaction: state, amounts, card profile (no PAN), last answer |
//! | `cp:sandbox:unique:<merchantID>:<transactionUnique>` | string | the `xref` that used it (duplicate check, QUERY by `transactionUnique`) |
//! | `cp:sandbox:transaction_id` | counter | the end of the last block of numeric `transactionID`s reserved (a hundred at a time) |
//! | `cp:sandbox:unsettled` | set | `xref`s in state `captured`, for the next settlement run |
//! | `cp:sandbox:ledger` | list (JSON) | every charge, capture, cancel and refund, oldest first |
//! | `cp:sandbox:3ds:ref:<threeDSRef>` | string, 1 h TTL | the pending transaction's `xref` |
//! | `cp:sandbox:3ds:creq:<creq>` | string, 1 h TTL | the pending transaction's `xref`, for the ACS page |
//! | `cp:sandbox:3ds:cres:<cres>` | string (JSON), 1 h TTL | the challenge outcome chosen on the ACS page |
//! | `cp:sandbox:hosted:<session>` | string (JSON), 1 h TTL | a Hosted Payment Page session: the merchant's signed request (no card data) and how far the payment got |
//! | `cp:sandbox:faults` | hash | fault injection: `tamper_signatures`, `delay_ms`, `drop_next`, `fail_next` |
//! | `cp:sandbox:merchant_secret` | string | the installation's test merchant signature secret, made at first start (see [`crate::merchant`]) |
//! | `cp:sandbox:bank:consent:<ConsentId>` | string (JSON) | a sandbox bank's payment consent, its status and the payer's choice |
//! | `cp:sandbox:bank:payment:<DomesticPaymentId>` | string (JSON) | a payment the bank accepted (its status is computed when read) |
//! | `cp:sandbox:bank:idem:<bank>:<op>:<key>` | string (JSON), 24 h TTL | an `x-idempotency-key`'s body hash and the resource it made |
//! | `cp:sandbox:bank:token:<sha256>` | string (JSON), 300 s TTL | an access token (stored hashed): its bank, grant and consent |
//! | `cp:sandbox:bank:code:<sha256>` | string (JSON), 10 min TTL | an authorisation code (hashed), single use, bound to its consent |
//! | `cp:sandbox:bank:ledger` | list (JSON) | every payment the banks accepted, oldest first |
//! | `cp:sandbox:griffin:balance` | integer | the Griffin sandbox account's ledger balance, pence |
//! | `cp:sandbox:griffin:holds` | integer | pence held for submitted payments not yet delivered |
//! | `cp:sandbox:griffin:ledger` | list (JSON) | every ledger entry with its running balance, oldest first |
//! | `cp:sandbox:griffin:pending` | sorted set | submitted payments by when they are delivered (ms) |
//! | `cp:sandbox:griffin:payments` | list | every payment id, oldest first |
//! | `cp:sandbox:griffin:payment:<pm>` | string (JSON) | a payment, its submission or admission |
//! | `cp:sandbox:griffin:once:<key>` | string (JSON) | a credit already made under a caller's key: its answer |
//! | `cp:sandbox:griffin:nonce:<keyid>:<nonce>` | string, 10 min TTL | a request signature's nonce, seen once |
//! | `cp:sandbox:griffin:version` | integer | bumped by every posting: the delivery pass rereads events only when it moved |
//! | `cp:sandbox:griffin:signing-keys` | hash | webhook signing keys (ES512, P-521): key id → secret scalar (hex) |
//! | `cp:sandbox:griffin:signing-key` | string | the key id webhooks are signed with now |
//! | `cp:sandbox:griffin:key-fetches` | integer | how often `/v0/security/public-keys` was read |
//! | `cp:sandbox:griffin:webhook` | string (JSON) | the organization's one webhook |
//! | `cp:sandbox:griffin:webhook-test` | string (JSON) | how the last test delivery went |
//! | `cp:sandbox:griffin:webhook-test-running` | string, 30 s TTL | a test delivery is in flight |
//! | `cp:sandbox:griffin:claimed` | set | event URLs the delivery pass has taken (each is sent once, by one daemon) |
//! | `cp:sandbox:griffin:attempts` | list (JSON), newest first, capped | every delivery attempt and its outcome |
//! | `cp:sandbox:griffin:faults` | hash | injected faults: `drop`, `duplicate`, `delay_ms`, `hold`, `delta` |
//! | `cp:sandbox:griffin:held` | sorted set (JSON) | credits held back by a fault, by when they post (ms; `+inf` until released) |
//! | `cp:sandbox:faults_gen` | string (integer) | incremented by every setting of the faults: a simulator serving on the faults it last read checks it in each change (see `direct::handle`) |

/// How long a 3-D Secure token stays usable: the cardholder has this long to finish the
/// challenge and the merchant to continue.
pub const THREE_DS_TTL_MS: u64 = 60 * 60 * 1000;

/// How long a Hosted Payment Page session lives: the customer has this long to pay, and a
/// finished session re-posts its result for the rest of it.
pub const HOSTED_TTL_MS: u64 = 60 * 60 * 1000;

pub const TRANSACTION_ID: &str = "cp:sandbox:transaction_id";
pub const UNSETTLED: &str = "cp:sandbox:unsettled";
pub const LEDGER: &str = "cp:sandbox:ledger";
pub const FAULTS: &str = "cp:sandbox:faults";
pub const FAULTS_GEN: &str = "cp:sandbox:faults_gen";
pub const MERCHANT_SECRET: &str = "cp:sandbox:merchant_secret";
/// The built-in Griffin sandbox's API key of this installation (see [`crate::merchant`]).
pub const GRIFFIN_API_KEY: &str = "cp:sandbox:griffin:api_key";

pub fn transaction(xref: &str) -> String {
    format!("cp:sandbox:txn:{xref}")
}

pub fn unique(merchant_id: &str, transaction_unique: &str) -> String {
    format!("cp:sandbox:unique:{merchant_id}:{transaction_unique}")
}

pub fn three_ds_ref(reference: &str) -> String {
    format!("cp:sandbox:3ds:ref:{reference}")
}

pub fn creq(creq: &str) -> String {
    format!("cp:sandbox:3ds:creq:{creq}")
}

pub fn cres(cres: &str) -> String {
    format!("cp:sandbox:3ds:cres:{cres}")
}

pub fn hosted(session: &str) -> String {
    format!("cp:sandbox:hosted:{session}")
}

pub const BANK_LEDGER: &str = "cp:sandbox:bank:ledger";

pub fn bank_consent(id: &str) -> String {
    format!("cp:sandbox:bank:consent:{id}")
}

pub fn bank_payment(id: &str) -> String {
    format!("cp:sandbox:bank:payment:{id}")
}

/// `op`: `consent` or `payment`; keys are per bank (each is another TPP registration).
pub fn bank_idempotency(bank: &str, op: &str, key: &str) -> String {
    format!("cp:sandbox:bank:idem:{bank}:{op}:{key}")
}

pub fn bank_token(sha256_hex: &str) -> String {
    format!("cp:sandbox:bank:token:{sha256_hex}")
}

pub fn bank_code(sha256_hex: &str) -> String {
    format!("cp:sandbox:bank:code:{sha256_hex}")
}

pub const GRIFFIN_BALANCE: &str = "cp:sandbox:griffin:balance";
pub const GRIFFIN_HOLDS: &str = "cp:sandbox:griffin:holds";
pub const GRIFFIN_LEDGER: &str = "cp:sandbox:griffin:ledger";
pub const GRIFFIN_PENDING: &str = "cp:sandbox:griffin:pending";
pub const GRIFFIN_PAYMENTS: &str = "cp:sandbox:griffin:payments";

pub const GRIFFIN_VERSION: &str = "cp:sandbox:griffin:version";
pub const GRIFFIN_SIGNING_KEYS: &str = "cp:sandbox:griffin:signing-keys";
pub const GRIFFIN_SIGNING_KEY: &str = "cp:sandbox:griffin:signing-key";
pub const GRIFFIN_KEY_FETCHES: &str = "cp:sandbox:griffin:key-fetches";
pub const GRIFFIN_WEBHOOK: &str = "cp:sandbox:griffin:webhook";
pub const GRIFFIN_WEBHOOK_TEST: &str = "cp:sandbox:griffin:webhook-test";
pub const GRIFFIN_WEBHOOK_TEST_RUNNING: &str = "cp:sandbox:griffin:webhook-test-running";
pub const GRIFFIN_CLAIMED: &str = "cp:sandbox:griffin:claimed";
pub const GRIFFIN_ATTEMPTS: &str = "cp:sandbox:griffin:attempts";
pub const GRIFFIN_FAULTS: &str = "cp:sandbox:griffin:faults";
pub const GRIFFIN_HELD: &str = "cp:sandbox:griffin:held";

pub fn griffin_payment(id: &str) -> String {
    format!("cp:sandbox:griffin:payment:{id}")
}

pub fn griffin_once(key: &str) -> String {
    format!("cp:sandbox:griffin:once:{key}")
}

pub fn griffin_nonce(keyid: &str, nonce: &str) -> String {
    format!("cp:sandbox:griffin:nonce:{keyid}:{nonce}")
}
