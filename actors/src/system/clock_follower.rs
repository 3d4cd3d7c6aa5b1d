//! ClockFollower: with `clock.controllable`, follow the shared clock offset that
//! `calmony-payd clock advance` moves, so every daemon on the Redis sees the same time. The
//! offset lives in Redis (`clock::OFFSET_KEY`); a restarted actor reads it again at its next
//! pass, so nothing is lost with a panic.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::store::Store;

use super::periodic::Pass;

pub const NAME: &str = "clock_follower";

#[derive(Clone)]
pub struct ClockFollower {
    pub store: Store,
}

impl Pass for ClockFollower {
    const NAME: &'static str = NAME;
    /// Often enough that a `clock advance` reaches every daemon before the next request.
    const EVERY: Duration = Duration::from_millis(50);

    fn run(self) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            let mut c = self.store.conn();
            let offset: Result<Option<i64>, _> = self
                .store
                .run(async move {
                    redis::cmd("GET")
                        .arg(crate::clock::OFFSET_KEY)
                        .query_async(&mut c)
                        .await
                })
                .await;
            if let Ok(ms) = offset {
                crate::clock::set_offset_ms(ms.unwrap_or(0));
            }
            self
        })
    }
}
