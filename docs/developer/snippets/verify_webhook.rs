use calmony_protocol::webhook;

// Your webhook handler: the raw body, the Calmony-Signature header, your endpoint's secret.
fn on_webhook(raw_body: &[u8], signature: &str, secret: &str, now_unix: i64) -> String {
    if let Err(e) = webhook::verify(raw_body, signature, secret, 300, now_unix) {
        return format!("refused: {e}");
    }
    match serde_json::from_slice::<serde_json::Value>(raw_body) {
        Ok(event) => format!(
            "received {} for {}",
            event["type"].as_str().unwrap_or(""),
            event["data"]["object"]["id"].as_str().unwrap_or("")
        ),
        Err(e) => format!("refused: {e}"),
    }
}
