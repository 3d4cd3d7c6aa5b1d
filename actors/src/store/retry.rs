//! The one retry-on-conflict loop: read, decide, commit; if a record changed between the read
//! and the commit, read again. Every operation that commits with version checks runs through
//! [`until_committed`], so how often it tries is decided here once.

/// How many times an operation reads and commits before it gives up: a conflict means another
/// writer won the race, and five losses in a row means the record is too hot to wait for.
pub const CONFLICT_ATTEMPTS: usize = 5;

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T> {
    /// Committed (or nothing to commit): the operation's result.
    Done(T),
    /// A checked record changed since it was read: read again.
    Conflict,
}

/// Run `attempt` until it is [`Attempt::Done`] or fails, at most `attempts` times; after that
/// many conflicts, the error `exhausted` makes (for the API, `lock_timeout`).
///
/// `attempt` is a closure making a fresh future per try (`|| async move { .. }`, with the
/// values it needs bound as references beforehand), not an `async` closure: the futures of
/// async closures are not provably `Send` today, and the edge spawns handlers on a
/// multi-threaded runtime.
pub async fn until_committed_within<T, E, F, Fut>(
    attempts: usize,
    mut attempt: F,
    exhausted: impl FnOnce() -> E,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, E>>,
{
    for _ in 0..attempts {
        if let Attempt::Done(value) = attempt().await? {
            return Ok(value);
        }
    }
    Err(exhausted())
}

/// [`until_committed_within`] with the usual [`CONFLICT_ATTEMPTS`].
pub async fn until_committed<T, E, F, Fut>(
    attempt: F,
    exhausted: impl FnOnce() -> E,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, E>>,
{
    until_committed_within(CONFLICT_ATTEMPTS, attempt, exhausted).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn conflicts_are_retried_until_done_errors_stop_at_once_and_attempts_are_bounded() {
        /// Conflicts before the outcome, the outcome, the expected result, the expected calls.
        type Case = (
            usize,
            Result<u8, &'static str>,
            Result<u8, &'static str>,
            usize,
        );
        let cases: [Case; 5] = [
            (0, Ok(7), Ok(7), 1),
            (4, Ok(7), Ok(7), 5),
            (5, Ok(7), Err("exhausted"), 5),
            (0, Err("boom"), Err("boom"), 1),
            (2, Err("boom"), Err("boom"), 3),
        ];
        for (conflicts, outcome, expected, calls) in cases {
            let n = std::cell::Cell::new(0);
            let n = &n;
            let got = block_on(until_committed(
                || async move {
                    n.set(n.get() + 1);
                    if n.get() <= conflicts {
                        return Ok(Attempt::Conflict);
                    }
                    outcome.map(Attempt::Done)
                },
                || "exhausted",
            ));
            let n = n.get();
            assert_eq!(got, expected, "conflicts {conflicts}, outcome {outcome:?}");
            assert_eq!(n, calls, "conflicts {conflicts}, outcome {outcome:?}");
        }
    }
}
