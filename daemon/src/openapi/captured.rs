//! The examples the tests captured from a real daemon (`docs/developer/examples.json`): a
//! leaf, read by the generator (request examples, object fields) and by `/docs`.

use std::sync::OnceLock;

/// Real requests and answers, one per operation id, captured by the e2e test
/// `docs::examples_are_captured` (see `pages::docs`): shown by `/docs`, and the request
/// examples of the description.
pub const EXAMPLES: &str = include_str!("../../../docs/developer/examples.json");

/// [`EXAMPLES`], parsed (`Null` if the file is not JSON).
pub fn examples() -> &'static serde_json::Value {
    static PARSED: OnceLock<serde_json::Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(EXAMPLES).unwrap_or(serde_json::Value::Null))
}
