//! The API error model.
//!
//! Every non-2xx answer carries `{"error": {type, code, message, param, ...}}`: the official
//! Stripe clients pick their exception class from the HTTP status and read the fields from this
//! envelope, and treat a non-2xx body without `error` as a success (stripe-node) or as an
//! unparseable answer (stripe-python). So there is exactly one way to build an error body.
//!
//! Validation failures are marked: the idempotency layer must not keep their answer, so a client
//! may fix the request and retry with the same key (Stripe's documented behaviour).

use serde::Serialize;
use serde_json::Value;

/// Stripe's error `type`, which tells a client what kind of problem it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    ApiError,
    AuthenticationError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
    RateLimitError,
}

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: ErrorType,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
    pub decline_code: Option<String>,
    /// Extra fields merged into the error object (`payment_intent` on a card error).
    pub extra: Option<Value>,
    /// The request failed validation: nothing ran, so nothing is kept under its idempotency key.
    pub validation: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.status, self.kind, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(status: u16, kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
            decline_code: None,
            extra: None,
            validation: false,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A parameter error (400 `invalid_request_error`) naming the parameter.
    pub fn invalid_param(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(400, ErrorType::InvalidRequestError, message)
            .with_code(code)
            .with_param(param);
        e.validation = true;
        e
    }

    pub fn missing_param(param: &str) -> Self {
        Self::invalid_param(
            "parameter_missing",
            param,
            format!("Missing required param: {param}."),
        )
    }

    pub fn unknown_param(param: &str) -> Self {
        Self::invalid_param(
            "parameter_unknown",
            param,
            format!("Received unknown parameter: {param}"),
        )
    }

    /// A request that cannot be understood at all (bad JSON, bad encoding).
    pub fn malformed(message: impl Into<String>) -> Self {
        let mut e = Self::new(400, ErrorType::InvalidRequestError, message);
        e.validation = true;
        e
    }

    /// 404 for an object that does not exist in the caller's project and mode. Objects of
    /// another project or mode answer exactly this too, so their existence never leaks.
    pub fn no_such(object: &str, id: &str, param: &str) -> Self {
        Self::new(
            404,
            ErrorType::InvalidRequestError,
            format!("No such {object}: '{id}'"),
        )
        .with_code("resource_missing")
        .with_param(param)
    }

    pub fn unknown_route(method: &str, path: &str) -> Self {
        let mut e = Self::new(
            404,
            ErrorType::InvalidRequestError,
            format!("Unrecognized request URL ({method}: {path})."),
        );
        e.validation = true;
        e
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        let mut e = Self::new(
            405,
            ErrorType::InvalidRequestError,
            format!("The {method} method is not allowed on {path}."),
        );
        e.validation = true;
        e
    }

    pub fn authentication(message: impl Into<String>) -> Self {
        Self::new(401, ErrorType::AuthenticationError, message)
    }

    pub fn rate_limited() -> Self {
        Self::new(
            429,
            ErrorType::RateLimitError,
            "Too many requests hit the API too quickly. Back off and retry.",
        )
        .with_code("rate_limit")
    }

    /// Another request holds the object; Stripe's `lock_timeout`, which the clients retry.
    pub fn lock_timeout() -> Self {
        Self::new(
            429,
            ErrorType::InvalidRequestError,
            "This object cannot be accessed right now because another API request is \
             currently accessing it. Please retry shortly.",
        )
        .with_code("lock_timeout")
    }

    pub fn body_too_large(limit: usize) -> Self {
        let mut e = Self::new(
            413,
            ErrorType::InvalidRequestError,
            format!("The request body is larger than the limit of {limit} bytes."),
        )
        .with_code("request_too_large");
        e.validation = true;
        e
    }

    /// The body did not arrive within the time allowed (`http.body_read_timeout_seconds`).
    pub fn body_timeout(seconds: u64) -> Self {
        let mut e = Self::new(
            408,
            ErrorType::InvalidRequestError,
            format!("The request body did not arrive within {seconds} seconds."),
        )
        .with_code("request_timeout");
        e.validation = true;
        e
    }

    /// A connection beyond `http.max_connections`; safe to retry.
    pub fn too_many_connections() -> Self {
        Self::new(
            503,
            ErrorType::ApiError,
            "The server has too many open connections. Please retry shortly.",
        )
        .with_code("service_unavailable")
    }

    /// The store cannot be reached; safe to retry.
    pub fn unavailable() -> Self {
        Self::new(
            503,
            ErrorType::ApiError,
            "The service is temporarily unavailable. Please retry shortly.",
        )
        .with_code("service_unavailable")
    }

    /// An internal fault: the detail goes to the log, the client gets the request id.
    pub fn internal(request_id: &str) -> Self {
        Self::new(
            500,
            ErrorType::ApiError,
            format!(
                "An unexpected error occurred while processing the request. \
                 Quote request id {request_id} when contacting support."
            ),
        )
    }

    pub fn unexpected_state(object: &str, status: &str, action: &str) -> Self {
        Self::new(
            400,
            ErrorType::InvalidRequestError,
            format!("This {object} cannot be {action} because it has a status of {status}."),
        )
        .with_code(match object {
            "PaymentIntent" => "payment_intent_unexpected_state",
            _ => "resource_unexpected_state",
        })
    }

    /// Whether a retry of the same request could succeed (`Stripe-Should-Retry`).
    pub fn should_retry(&self) -> bool {
        matches!(self.status, 409 | 503) || self.code == Some("lock_timeout")
    }

    /// The JSON envelope sent to the client.
    pub fn body(&self) -> Value {
        let mut err = serde_json::Map::new();
        err.insert(
            "type".into(),
            serde_json::to_value(self.kind).unwrap_or(Value::Null),
        );
        if let Some(code) = self.code {
            err.insert("code".into(), Value::String(code.into()));
        }
        err.insert("message".into(), Value::String(self.message.clone()));
        if let Some(param) = &self.param {
            err.insert("param".into(), Value::String(param.clone()));
        }
        if let Some(dc) = &self.decline_code {
            err.insert("decline_code".into(), Value::String(dc.clone()));
        }
        if let Some(Value::Object(extra)) = &self.extra {
            for (k, v) in extra {
                err.insert(k.clone(), v.clone());
            }
        }
        let mut outer = serde_json::Map::new();
        outer.insert("error".into(), Value::Object(err));
        Value::Object(outer)
    }
}

/// Stripe's error `code` and message for a card refused with `decline_code` (Stripe's
/// spelling, as [`crate::cardstream::codes::Outcome::decline_code`] gives it). Stripe answers
/// most declines `card_declined` and names a few in `code` itself (its testing documentation:
/// an expired card is `expired_card`, a wrong CVC `incorrect_cvc`, a processor failure
/// `processing_error`). One table for every path a card can be refused on.
pub fn decline_words(decline_code: &str) -> (&'static str, &'static str) {
    match decline_code {
        "insufficient_funds" => ("card_declined", "Your card has insufficient funds."),
        "expired_card" => ("expired_card", "Your card has expired."),
        "incorrect_cvc" => ("incorrect_cvc", "Your card's security code is incorrect."),
        "incorrect_number" => ("incorrect_number", "Your card number is incorrect."),
        "processing_error" => (
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
        "authentication_required" => (
            "payment_intent_authentication_failure",
            "We are unable to authenticate your payment method. Please choose a different \
             payment method and try again.",
        ),
        "call_issuer" => (
            "card_declined",
            "Your card was declined. Please contact your card issuer.",
        ),
        _ => ("card_declined", "Your card was declined."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_names_type_code_and_param() {
        let body = ApiError::missing_param("amount").body();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "parameter_missing");
        assert_eq!(body["error"]["param"], "amount");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("amount"))
        );
    }

    #[test]
    fn statuses_match_the_reference() {
        assert_eq!(ApiError::authentication("x").status, 401);
        assert_eq!(ApiError::rate_limited().status, 429);
        assert_eq!(ApiError::no_such("customer", "cus_x", "id").status, 404);
        assert_eq!(ApiError::body_too_large(10).status, 413);
        assert_eq!(ApiError::unavailable().status, 503);
        assert_eq!(ApiError::internal("req_1").status, 500);
        assert!(ApiError::internal("req_1").message.contains("req_1"));
    }

    #[test]
    fn validation_errors_are_marked_and_others_are_not() {
        assert!(ApiError::unknown_param("x").validation);
        assert!(ApiError::malformed("x").validation);
        assert!(!ApiError::no_such("customer", "cus_x", "id").validation);
        assert!(!ApiError::internal("r").validation);
    }

    #[test]
    fn extra_fields_are_merged_and_absent_fields_omitted() {
        let mut e = ApiError::new(402, ErrorType::CardError, "Your card was declined.");
        e.decline_code = Some("insufficient_funds".into());
        e.extra = Some(serde_json::json!({"payment_intent": {"id": "pi_1"}}));
        let body = e.body();
        assert_eq!(body["error"]["decline_code"], "insufficient_funds");
        assert_eq!(body["error"]["payment_intent"]["id"], "pi_1");
        assert!(body["error"].get("param").is_none());
    }
}
