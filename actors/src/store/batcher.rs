//! The [`Batcher`]: write-only commits that share one script call under load.

use super::client::Store;
use super::commit::Commit;
use super::error::StoreError;
use super::tx::Tx;

type Pending = (Tx, tokio::sync::oneshot::Sender<Result<Commit, StoreError>>);

/// Commits that only write, gathered into one script call: while one batch is in Redis the
/// next waits in a queue, so under load many changes share a round trip and a script run, and
/// when idle each goes alone at once. Each caller still learns whether its change landed.
#[derive(Clone)]
pub struct Batcher {
    queue: tokio::sync::mpsc::Sender<Pending>,
    store: Store,
}

impl Batcher {
    /// Start the batching task (inside a Tokio runtime); at most `max` changes per commit.
    pub fn start(store: Store, max: usize) -> Batcher {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Pending>(max * 4);
        let committer = store.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let mut merged = Tx::new();
                let mut replies = Vec::with_capacity(batch.len());
                for (tx, reply) in batch {
                    merged.absorb(tx);
                    replies.push(reply);
                }
                let result = committer.commit(&merged).await;
                for reply in replies {
                    let shared = match &result {
                        Ok(c) => Ok(c.clone()),
                        Err(e) => Err(StoreError::Unavailable(e.to_string())),
                    };
                    let _ = reply.send(shared);
                }
            }
        });
        Batcher { queue, store }
    }

    /// Commit `tx`, sharing the script call with others when it only writes.
    pub async fn commit(&self, tx: Tx) -> Result<Commit, StoreError> {
        if !tx.is_unchecked() {
            return self.store.commit(&tx).await;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.queue.send((tx, reply)).await.is_err() {
            return Err(StoreError::Unavailable("commit batcher stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("commit batcher stopped".into())))
    }
}
