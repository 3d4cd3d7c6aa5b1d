//! What a commit found ([`Commit`]), and [`Store::commit`], which applies a [`Tx`] through
//! [`scripts::COMMIT`]: it names both the connection ([`Store`]) and the transaction, so it
//! sits above them and neither names it.

use super::client::Store;
use super::error::StoreError;
use super::scripts;
use super::tx::Tx;

/// What a commit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Applied; carries the id of the command it appended, if any.
    Done(Option<String>),
    /// A record changed since it was read; read again and retry.
    Conflict,
    /// The idempotency claim expired and was taken by another request.
    LostClaim,
    /// The request's API key, checked in the commit ([`Tx::check_key`]), was refused; nothing
    /// was written.
    Refused(KeyRefusal),
}

/// Why a key check refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No such key (or, checked in a commit, not of the project and mode expected).
    Unknown,
    Revoked,
    /// Over the key's rate limit: retry after this long.
    Limited {
        retry_after_ms: u64,
    },
}

impl KeyRefusal {
    /// The refusal the key check answered, from its first word (and the wait, if limited).
    pub fn from_answer(word: &str, retry_after_ms: Option<&str>) -> Option<KeyRefusal> {
        match word {
            "unknown" => Some(KeyRefusal::Unknown),
            "revoked" => Some(KeyRefusal::Revoked),
            "limited" => Some(KeyRefusal::Limited {
                retry_after_ms: retry_after_ms
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(1000),
            }),
            _ => None,
        }
    }
}

impl Store {
    /// Apply a transaction atomically. See the module documentation.
    pub async fn commit(&self, tx: &Tx) -> Result<Commit, StoreError> {
        self.commit_numbered(tx).await.map(|(c, _)| c)
    }

    /// [`Store::commit`], answering too the numbers the commit took (`Tx::number`), in the
    /// order it took them: a caller that goes on with what it wrote then holds the real
    /// number instead of the placeholder.
    pub async fn commit_numbered(&self, tx: &Tx) -> Result<(Commit, Vec<String>), StoreError> {
        let (header, values) = tx.script_args();
        let mut c = self.conn();
        let mut inv = scripts::COMMIT.prepare_invoke();
        for k in &tx.keys {
            inv.key(k);
        }
        inv.arg(header);
        for v in &values {
            inv.arg(&**v);
        }
        let out: Vec<String> = self
            .run(async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(match out.first().map(String::as_str) {
            Some("ok") => (
                Commit::Done(out.get(1).filter(|s| !s.is_empty()).cloned()),
                out.get(2..).map(<[String]>::to_vec).unwrap_or_default(),
            ),
            Some("lost") => (Commit::LostClaim, Vec::new()),
            Some(word) => match KeyRefusal::from_answer(word, out.get(1).map(String::as_str)) {
                Some(refusal) => (Commit::Refused(refusal), Vec::new()),
                None => (Commit::Conflict, Vec::new()),
            },
            None => (Commit::Conflict, Vec::new()),
        })
    }
}
