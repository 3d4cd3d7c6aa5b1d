//! OBErrorResponse1: how a bank says no, v3.1 dialect (`UK.OBIE.`-prefixed codes).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorResponse {
    /// The HTTP status as text, e.g. `400 BadRequest`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorItem {
    /// e.g. `UK.OBIE.Resource.InvalidConsentStatus`.
    pub error_code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ErrorResponse {
    /// One error: `code` (the HTTP status as text), one item of `error_code` at `path`.
    pub fn one(code: &str, error_code: &str, message: &str, path: Option<&str>) -> Self {
        Self {
            code: code.to_owned(),
            id: None,
            message: message.to_owned(),
            errors: vec![ErrorItem {
                error_code: error_code.to_owned(),
                message: message.to_owned(),
                path: path.map(str::to_owned),
                url: None,
            }],
        }
    }

    /// The first item's code, what a client acts on.
    pub fn first_code(&self) -> Option<&str> {
        self.errors.first().map(|e| e.error_code.as_str())
    }
}
