//! Losing a race is not an error: an action whose transaction changed between its read and its
//! write reads again and decides again, a few times, before answering "in progress".

use calmony_protocol::cardstream::Fields;

use super::answer::contended;
use crate::error::SandboxError;

/// How often an action re-reads and re-decides after losing a race before answering 65536.
const ATTEMPTS: usize = 5;

/// Run an action's attempt until it commits: an attempt answers `None` when another request
/// changed the transaction between its read and its write, and is simply run again; after
/// `ATTEMPTS` tries the answer is "in progress".
pub(crate) async fn retried<F, Fut>(
    request: &Fields,
    mut attempt: F,
) -> Result<Fields, SandboxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Fields>, SandboxError>>,
{
    for _ in 0..ATTEMPTS {
        if let Some(answer) = attempt().await? {
            return Ok(answer);
        }
    }
    Ok(contended(request))
}
