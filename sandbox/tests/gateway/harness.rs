//! The test harness: a real `redis-server` of the test's own (a free port, a temporary
//! directory, never 6379) and a [`Sandbox`] on it, driven through `Sandbox::handle` with
//! bodies signed by the protocol codec, exactly as the daemon's client sends them.
//!
//! Every test ends with [`Sim::finish`], which reads every key and value in its Redis and fails
//! if any test card number is there; the redis-server is killed when the `Sim` drops.
//! [`CallbackReceiver`] is a merchant's `callbackURL`: a real local HTTP listener that records
//! what the simulator posts to it.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use bytes::Bytes;
use calmony_actors::Store;
use calmony_protocol::cardstream::{Coverage, Fields, verify};
use calmony_sandbox::{Sandbox, SandboxConfig};
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::Value;

pub const MERCHANT: &str = "100001";
pub const SECRET: &str = "Circle4Take40Idea";
pub const BASE: &str = "http://127.0.0.1:4242";
/// The operator's token: the harness calls every route as the operator.
pub const OPERATOR: &str = "operator-token-of-the-sandbox-tests-0123456789";
/// A card number the simulator does not know (Luhn-valid).
pub const UNKNOWN_CARD: &str = "4000000000000010";
/// A future expiry year (two digits) and a past one.
pub const FUTURE: &str = "40";
pub const PAST: &str = "20";
/// Hosted callbacks are retried after these in tests: four retries within a fifth of a second.
pub const CALLBACK_BACKOFF: [Duration; 4] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
];

pub struct Sim {
    redis: Child,
    _dir: tempfile::TempDir,
    pub store: Store,
    pub sandbox: Sandbox,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A simulator on `store`, as every test configures it.
fn simulator(store: &Store) -> Sandbox {
    let config = SandboxConfig {
        merchant_id: MERCHANT.into(),
        secret: SECRET.into(),
        public_base: BASE.into(),
        operator_token: Some(OPERATOR.into()),
        bank: Default::default(),
        griffin: Default::default(),
        cutoff: Default::default(),
        card_fees: Default::default(),
    };
    Sandbox::with_drop_hold(store.clone(), config, Duration::from_millis(100))
        .with_callback_backoff(CALLBACK_BACKOFF.to_vec())
}

impl Sim {
    /// Another simulator on this one's Redis whose Griffin sandbox is configured by `griffin`.
    pub fn with_griffin(&self, griffin: calmony_sandbox::GriffinSandboxConfig) -> Sandbox {
        let config = SandboxConfig {
            merchant_id: MERCHANT.into(),
            secret: SECRET.into(),
            public_base: BASE.into(),
            operator_token: Some(OPERATOR.into()),
            bank: Default::default(),
            griffin,
            cutoff: Default::default(),
            card_fees: Default::default(),
        };
        Sandbox::new(self.store.clone(), config)
    }

    /// Another simulator sharing this one's Redis, as a second daemon's would.
    pub fn twin(&self) -> Sandbox {
        simulator(&self.store)
    }

    pub async fn start() -> Sim {
        for _ in 0..5 {
            let port = free_port();
            assert_ne!(port, 6379);
            let dir = tempfile::tempdir().expect("temp dir");
            let mut redis = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
                .arg(dir.path())
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs");
            let url = format!("redis://127.0.0.1:{port}/");
            for _ in 0..100 {
                if redis.try_wait().ok().flatten().is_some() {
                    break; // lost the port race; try another
                }
                if let Ok(store) = Store::connect(&url, Duration::from_millis(500)).await {
                    let sandbox = simulator(&store);
                    return Sim {
                        redis,
                        _dir: dir,
                        store,
                        sandbox,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = redis.kill();
            let _ = redis.wait();
        }
        panic!("redis-server did not start");
    }

    /// Any request to the sandbox: status and body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: &str,
    ) -> (StatusCode, String) {
        call_on(&self.sandbox, method, path, query, body).await
    }

    /// POST a raw body to /direct/ and parse the answer, checking its signature.
    pub async fn direct_body(&self, body: &str) -> Fields {
        direct_on(&self.sandbox, body).await
    }

    /// Sign `pairs` with the merchant's secret and send them to /direct/.
    pub async fn direct(&self, pairs: &[(&str, &str)]) -> Fields {
        self.direct_body(&signed(pairs)).await
    }

    /// QUERY a transaction by its `transactionUnique` (the answer's signature checked).
    pub async fn query_unique(&self, unique: &str) -> Fields {
        self.direct(&[
            ("merchantID", MERCHANT),
            ("action", "QUERY"),
            ("transactionUnique", unique),
        ])
        .await
    }

    pub async fn json(&self, method: Method, path: &str, query: &str, body: &str) -> Value {
        let (status, text) = self.call(method, path, query, body).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).expect("json")
    }

    /// The ledger entries for one `orderRef`.
    pub async fn ledger(&self, order_ref: &str) -> Vec<Value> {
        let ledger = self
            .json(
                Method::GET,
                "/sandbox/ledger",
                &format!("orderRef={order_ref}"),
                "",
            )
            .await;
        ledger["entries"].as_array().cloned().expect("entries")
    }

    pub async fn settle(&self) -> u64 {
        self.json(Method::POST, "/sandbox/settle", "", "").await["settled"]
            .as_u64()
            .expect("settled count")
    }

    /// Prove no card number reached Redis, then stop.
    pub async fn finish(self) {
        let mut c = self.store.conn();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .expect("KEYS");
        let mut dump = String::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut c)
                .await
                .expect("TYPE");
            let values: Vec<String> = match kind.as_str() {
                // Transactions are stored packed: decoded, so the grep sees their JSON.
                "string" => vec![
                    calmony_actors::store::packed::text(
                        redis::cmd("GET")
                            .arg(&key)
                            .query_async(&mut c)
                            .await
                            .expect("GET"),
                    )
                    .expect("a readable value"),
                ],
                "list" => redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
                    .expect("LRANGE"),
                "set" => redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut c)
                    .await
                    .expect("SMEMBERS"),
                "hash" => redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut c)
                    .await
                    .expect("HGETALL"),
                other => panic!("unexpected {other} key {key}"),
            };
            assert!(
                key.starts_with("cp:sandbox:"),
                "{key} is outside the keyspace"
            );
            dump.push_str(&key);
            dump.push('\n');
            for value in values {
                dump.push_str(&value);
                dump.push('\n');
            }
        }
        for number in calmony_sandbox::test_card_numbers().chain([UNKNOWN_CARD]) {
            assert!(
                !dump.contains(number),
                "card number {number} found in Redis"
            );
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.redis.kill();
        let _ = self.redis.wait();
    }
}

/// Any request to `sandbox`: status and body.
pub async fn call_on(
    sandbox: &Sandbox,
    method: Method,
    path: &str,
    query: &str,
    body: &str,
) -> (StatusCode, String) {
    let response = sandbox
        .handle(
            &calmony_sandbox::Caller::Operator,
            &method,
            path,
            query,
            &hyper::HeaderMap::new(),
            Bytes::from(body.to_owned()),
        )
        .await;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8(bytes.to_vec()).expect("utf-8"))
}

/// POST a raw body to `sandbox`'s /direct/ and parse the answer, checking its signature.
pub async fn direct_on(sandbox: &Sandbox, body: &str) -> Fields {
    let (status, text) = call_on(sandbox, Method::POST, "/sandbox/direct/", "", body).await;
    assert_eq!(status, StatusCode::OK);
    let answer = Fields::parse(text.as_bytes()).expect("form answer");
    assert_eq!(
        verify(&answer, Some(SECRET)),
        Ok(Coverage::All),
        "the answer must be signed: {answer:?}"
    );
    assert!(answer.get("cardNumber").is_none() && answer.get("cardCVV").is_none());
    answer
}

/// A signed /direct/ body.
pub fn signed(pairs: &[(&str, &str)]) -> String {
    let mut fields: Fields = pairs.iter().copied().collect();
    fields.add_signature(SECRET, None);
    fields.encode()
}

/// A card SALE or VERIFY: the merchant, action and card, plus `extra`.
pub fn with_card<'a>(
    action: &'a str,
    number: &'a str,
    month: &'a str,
    year: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("merchantID", MERCHANT),
        ("action", action),
        ("type", "1"),
        ("currencyCode", "826"),
        ("countryCode", "826"),
        ("cardNumber", number),
        ("cardExpiryMonth", month),
        ("cardExpiryYear", year),
        ("cardCVV", "123"),
    ];
    if action == "VERIFY" {
        pairs.push(("amount", "0"));
    }
    for (name, value) in extra {
        match pairs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => pairs.push((name, value)),
        }
    }
    pairs
}

/// A management request (CAPTURE, CANCEL, REFUND_SALE, QUERY) on `xref`, plus `extra`.
pub fn on_xref<'a>(
    action: &'a str,
    xref: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![("merchantID", MERCHANT), ("action", action), ("xref", xref)];
    pairs.extend_from_slice(extra);
    pairs
}

/// `responseCode` as a number.
pub fn code(answer: &Fields) -> u32 {
    answer
        .get("responseCode")
        .and_then(|c| c.parse().ok())
        .expect("responseCode")
}

pub fn field<'a>(answer: &'a Fields, name: &str) -> &'a str {
    answer
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from {answer:?}"))
}

/// The value of the first `name="…" value="…"` input in an HTML page.
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("input present") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// The `action` of the form with this id.
pub fn form_action(html: &str, id: &str) -> String {
    let marker = format!("<form id=\"{id}\" method=\"post\" action=\"");
    let start = html.find(&marker).expect("form present") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// Undo [`calmony_protocol::html::escape`].
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The hidden inputs of the form with this id, as the browser would post them.
pub fn hidden_fields(html: &str, form_id: &str) -> Fields {
    let start = html
        .find(&format!("<form id=\"{form_id}\""))
        .expect("form present");
    let end = html[start..].find("</form>").expect("form closed") + start;
    let mut fields = Fields::new();
    let marker = "<input type=\"hidden\" name=\"";
    let mut rest = &html[start..end];
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let name_end = rest.find('"').expect("name closed");
        let name = unescape(&rest[..name_end]);
        rest = &rest[name_end..];
        let value_marker = "\" value=\"";
        assert!(rest.starts_with(value_marker), "value follows name");
        rest = &rest[value_marker.len()..];
        let value_end = rest.find('"').expect("value closed");
        fields.insert(&name, unescape(&rest[..value_end]));
        rest = &rest[value_end..];
    }
    fields
}

/// A merchant's `callbackURL`: answers each POST with the next of its statuses (200 once they
/// run out) and records every body it receives, in order.
pub struct CallbackReceiver {
    pub url: String,
    bodies: mpsc::UnboundedReceiver<String>,
}

impl CallbackReceiver {
    pub async fn start(statuses: &[u16]) -> CallbackReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, bodies) = mpsc::unbounded_channel();
        let statuses = statuses.to_vec();
        tokio::spawn(async move {
            let mut statuses = statuses.into_iter();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut raw = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break (None, 0);
                    }
                    raw.extend_from_slice(&chunk[..n]);
                    if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..at]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (Some(at + 4), length);
                    }
                };
                let Some(head_end) = head_end else { continue };
                while raw.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
                assert!(head.starts_with("POST "), "{head}");
                assert!(
                    head.to_lowercase()
                        .contains("content-type: application/x-www-form-urlencoded"),
                    "{head}"
                );
                let body = String::from_utf8_lossy(&raw[head_end..]).to_string();
                let status = statuses.next().unwrap_or(200);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
                let _ = tx.send(body);
            }
        });
        CallbackReceiver {
            url: format!("http://127.0.0.1:{port}/hooks/cardstream?source=hpp"),
            bodies,
        }
    }

    /// The next body posted, waiting up to five seconds.
    pub async fn next(&mut self) -> Fields {
        let body = tokio::time::timeout(Duration::from_secs(5), self.bodies.recv())
            .await
            .expect("a callback within 5 s")
            .expect("receiver running");
        Fields::parse(body.as_bytes()).expect("form body")
    }

    /// Whether anything more arrives within `wait`.
    pub async fn more_within(&mut self, wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.bodies.recv()).await,
            Ok(Some(_))
        )
    }
}
