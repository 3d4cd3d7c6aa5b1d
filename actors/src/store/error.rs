//! What a store operation can fail with, and how each failure answers an API request.

use calmony_protocol::ApiError;

use super::unavailability::Unavailability;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    #[error("redis command failed: {0}")]
    Command(#[source] redis::RedisError),
    #[error("record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("managed redis-server: {0}")]
    Managed(String),
}

impl StoreError {
    pub(super) fn from_redis(e: redis::RedisError) -> Self {
        match Unavailability::of(&e) {
            Some(_) => StoreError::Unavailable(e.to_string()),
            None => StoreError::Command(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::unavailable(),
            // The edge logs internal errors with the request id and answers a bare 500.
            other => {
                let mut api = ApiError::internal("");
                api.message = other.to_string();
                api.code = Some("internal");
                api
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 503 that says "retry", not a 500 that says "do not".
    #[test]
    fn an_unavailable_redis_answers_a_retryable_503() {
        let api = ApiError::from(StoreError::Unavailable("OOM".into()));
        assert_eq!((api.status, api.should_retry()), (503, true));
    }
}
