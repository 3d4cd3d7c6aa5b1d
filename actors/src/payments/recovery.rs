//! Recovery of payment commands left pending by a crash, a lost gateway answer, or a daemon
//! that died: see the module documentation of [`super`].

use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamPendingCountReply};

use super::refunds::{Driver, GaveUp};
use super::transitions::CommandOp;
use super::{COMMANDS, Command, DEAD_LETTERS, GROUP, MAX_DELIVERIES, Payments};
use crate::store::StoreError;

/// Own pending commands idle this long (and not in hand) are orphans of a previous life or
/// of an unknown gateway answer.
const OWN_IDLE_MS: u64 = 1000;

impl Payments {
    /// Create the consumer group if needed (safe to race).
    pub async fn ensure_group(&self) -> Result<(), StoreError> {
        let mut c = self.store.conn();
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(COMMANDS)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        }
    }

    /// One pass: own orphans first, then other daemons' stale work. Returns how many it ran.
    pub async fn recover_once(&self) -> Result<usize, StoreError> {
        let _ = self.ensure_group().await;
        let mut entries = self.own_orphans().await?;
        entries.extend(self.claim_stale().await?);
        let mut done = 0;
        for (id, deliveries, fields) in entries {
            if self.is_in_flight(&id) {
                continue;
            }
            let readable = fields
                .as_deref()
                .and_then(|f| serde_json::from_str::<Command>(f).ok());
            let Some(cmd) = readable else {
                // A refund it names must not hold up its sale's other refunds.
                let named = fields.as_deref().and_then(Command::refund_named);
                if let Some(cmd) = &named
                    && !self.give_up_refund(cmd, &id).await
                {
                    continue;
                }
                self.park(&id, "unreadable command").await?;
                continue;
            };
            if deliveries > MAX_DELIVERIES {
                if cmd.op == CommandOp::Refund && !self.give_up_refund(&cmd, &id).await {
                    continue;
                }
                self.park(&id, "too many deliveries").await?;
                continue;
            }
            let result = match cmd.op {
                CommandOp::Refund => super::refunds::run(self, &cmd, &id, Driver::Recovery)
                    .await
                    .map(|ran| ran.settled),
                _ => super::intents::run(self, &cmd, &id, super::intents::Begun::Recovered)
                    .await
                    .map(|_| true),
            };
            match result {
                Ok(true) => done += 1,
                // A refund waiting its turn, or for the daemon acting on its sale: not news.
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(command = %id, error = %e.message, "recovery of a payment failed; will retry")
                }
            }
        }
        metrics::gauge!("calmony_payment_commands_pending")
            .set(self.pending_count().await.unwrap_or(0) as f64);
        Ok(done)
    }

    /// This daemon's own pending commands, idle for a while and not being worked on.
    async fn own_orphans(&self) -> Result<Vec<(String, u64, Option<String>)>, StoreError> {
        let mut c = self.store.conn();
        let consumer = self.consumer.clone();
        let pending: StreamPendingCountReply = self
            .store
            .run(async move {
                redis::cmd("XPENDING")
                    .arg(COMMANDS)
                    .arg(GROUP)
                    .arg("IDLE")
                    .arg(OWN_IDLE_MS)
                    .arg("-")
                    .arg("+")
                    .arg(100)
                    .arg(&consumer)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut out = Vec::new();
        for p in pending.ids {
            if self.is_in_flight(&p.id) {
                continue;
            }
            let fields = self.read_entry(&p.id).await?;
            out.push((p.id, p.times_delivered as u64, fields));
        }
        Ok(out)
    }

    /// Other daemons' commands idle past `recovery_after`: claimed (XAUTOCLAIM) and taken over.
    async fn claim_stale(&self) -> Result<Vec<(String, u64, Option<String>)>, StoreError> {
        let mut c = self.store.conn();
        let consumer = self.consumer.clone();
        let idle = self.recovery_after.as_millis() as u64;
        let reply: StreamAutoClaimReply = self
            .store
            .run(async move {
                redis::cmd("XAUTOCLAIM")
                    .arg(COMMANDS)
                    .arg(GROUP)
                    .arg(&consumer)
                    .arg(idle)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(50)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let _ = StreamAutoClaimOptions::default();
        Ok(reply
            .claimed
            .into_iter()
            .map(|e| {
                let f = e.get::<String>("cmd");
                (e.id, 2, f)
            })
            .collect())
    }

    async fn read_entry(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.store.stream_field(COMMANDS, id, "cmd").await
    }

    /// Before its command is parked: fail the refund (see [`super::refunds::give_up`]), so its
    /// sale's later refunds go on. `false` to park it later (another daemon acts on the sale,
    /// or the store failed).
    async fn give_up_refund(&self, cmd: &Command, id: &str) -> bool {
        match super::refunds::give_up(self, cmd, id).await {
            Ok(GaveUp::Failed) => true,
            // Recorded as succeeded, its command acknowledged: nothing left to park.
            Ok(GaveUp::Recorded) => false,
            Ok(GaveUp::Busy) => false,
            Err(e) => {
                tracing::warn!(command = %id, error = %e.message, "could not fail the refund of a parked command; will retry");
                false
            }
        }
    }

    /// Move a poison command to the dead-letter list and out of the way.
    async fn park(&self, id: &str, why: &str) -> Result<(), StoreError> {
        tracing::error!(command = %id, why, "parking a payment command in {DEAD_LETTERS}");
        self.store
            .dead_letter((COMMANDS, GROUP, "cmd"), DEAD_LETTERS, id, why)
            .await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        let mut c = self.store.conn();
        let reply: redis::streams::StreamPendingReply = self
            .store
            .run(async move {
                redis::cmd("XPENDING")
                    .arg(COMMANDS)
                    .arg(GROUP)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(reply.count() as u64)
    }
}
