//! Griffin's error body (§10): JSON:API-like, `{"errors": [{title, detail, source, links}]}`,
//! where `source.pointer` is a JSON pointer into the request body. Not strict: every member
//! but `title` may be absent.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorItem {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

/// Where in the request body the fault lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorSource {
    pub pointer: String,
}

impl ErrorBody {
    /// One error with its detail and, for a body field, the pointer to it.
    pub fn one(title: &str, detail: &str, pointer: Option<&str>) -> Self {
        Self {
            errors: vec![ErrorItem {
                title: title.to_owned(),
                detail: Some(detail.to_owned()),
                source: pointer.map(|p| ErrorSource {
                    pointer: p.to_owned(),
                }),
            }],
        }
    }

    /// The first error's title and detail as one line, for logs and client errors.
    pub fn summary(&self) -> String {
        match self.errors.first() {
            Some(e) => match &e.detail {
                Some(d) => format!("{}: {d}", e.title),
                None => e.title.clone(),
            },
            None => "no error detail".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_its_pointer() {
        let body = ErrorBody::one(
            "Invalid value",
            "must be GBP",
            Some("/payment-amount/currency"),
        );
        assert_eq!(
            serde_json::to_value(&body).ok(),
            Some(serde_json::json!({"errors": [{
                "title": "Invalid value", "detail": "must be GBP",
                "source": {"pointer": "/payment-amount/currency"}
            }]}))
        );
        assert_eq!(body.summary(), "Invalid value: must be GBP");
        let loose: ErrorBody =
            serde_json::from_str(r#"{"errors":[{"title":"Unauthorized","links":{}}]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loose.summary(), "Unauthorized");
    }
}
