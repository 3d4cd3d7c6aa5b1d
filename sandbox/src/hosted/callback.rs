//! Delivering a hosted payment's result to the merchant's `callbackURL`, server to server.
//!
//! The browser's POST to `redirectURL` is for showing a confirmation: the customer may close the
//! tab first. The callback is the merchant's reliable copy, so it is sent from a background task
//! that outlives the browser's request, with the same signed, form-encoded body.
//!
//! Cardstream documents no retry policy. The simulator's, so the daemon's handler can be tested
//! against something definite:
//! - an attempt succeeds on any 2xx answer; any other status (redirects are not followed), a
//!   refused connection or no status line within [`ATTEMPT_TIMEOUT`] fails it;
//! - a failed attempt is retried after each delay of [`DEFAULT_BACKOFF`] in turn (1 s, 5 s,
//!   30 s, 2 min: five attempts over about 2.5 minutes), then given up with an error log;
//! - retries live in this process only: a restart forgets them, and the merchant must then
//!   QUERY (by `xref` or `transactionUnique`), as it must when any callback never arrives;
//! - delivery is at least once and unordered relative to the browser's redirect, so the
//!   handler must be idempotent.
//!
//! Only `http://` URLs are delivered: the simulator carries no TLS client. An `https://`
//! `callbackURL` is accepted on the request (Cardstream requires nothing else) but its delivery
//! is skipped with a warning; the redirect still carries the result.
//!
//! The client is a few lines of HTTP/1.1 (one request per connection, `Connection: close`,
//! only the status line read), because the callback needs nothing more.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The delays before each retry.
pub const DEFAULT_BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];

/// How long one attempt may take, connection to status line.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer read while looking for its status line.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("only http:// callback URLs are delivered")]
    Unsupported,
    #[error("the callback URL is not a usable http URL")]
    BadUrl,
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {ATTEMPT_TIMEOUT:?}")]
    Timeout,
    #[error("the answer has no HTTP status line")]
    NoStatus,
}

/// Where an `http://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// As written in the URL, for the `Host` header.
    authority: String,
    host: String,
    port: u16,
    /// Path and query, at least `/`.
    path: String,
}

fn target(url: &str) -> Result<Target, AttemptError> {
    if url.starts_with("https://") {
        return Err(AttemptError::Unsupported);
    }
    let rest = url.strip_prefix("http://").ok_or(AttemptError::BadUrl)?;
    if rest.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(AttemptError::BadUrl);
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(AttemptError::BadUrl);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(AttemptError::BadUrl)?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().map_err(|_| AttemptError::BadUrl)?,
    };
    if host.is_empty() {
        return Err(AttemptError::BadUrl);
    }
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    Ok(Target {
        authority: authority.to_owned(),
        host: host.to_owned(),
        port,
        path,
    })
}

/// POST `body` (form-encoded) to `url` once; the answer's status code.
async fn post_form(url: &str, body: &str) -> Result<u16, AttemptError> {
    post(url, "application/x-www-form-urlencoded", body).await
}

/// POST `body` of `content_type` to an `http://` `url` once; the answer's status code.
pub(crate) async fn post(url: &str, content_type: &str, body: &str) -> Result<u16, AttemptError> {
    let length = body.len().to_string();
    let headers = [("Content-Type", content_type), ("Content-Length", &length)];
    post_with(url, &headers, body.as_bytes()).await
}

/// POST `body` to an `http://` `url` once with exactly `headers` (besides `Host`,
/// `User-Agent` and `Connection`), which must include the body's `Content-Length`: what a
/// signed delivery needs, whose signature covers the headers as sent. The answer's status.
pub(crate) async fn post_with(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<u16, AttemptError> {
    let target = target(url)?;
    if headers
        .iter()
        .any(|(n, v)| n.bytes().chain(v.bytes()).any(|b| b == b'\r' || b == b'\n'))
    {
        return Err(AttemptError::BadUrl);
    }
    let exchange = async {
        let mut stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: calmony-sandbox\r\n",
            target.path, target.authority,
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while !answer.windows(2).any(|w| w == b"\r\n") && answer.len() < MAX_STATUS_LINE {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        status_of(&answer).ok_or(AttemptError::NoStatus)
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, exchange)
        .await
        .map_err(|_| AttemptError::Timeout)?
}

/// The code of an `HTTP/1.x NNN …` status line.
fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Send the result to `url` in the background, retrying after each of `backoff`.
pub fn spawn(url: String, body: String, backoff: Vec<Duration>, xref: String) {
    tokio::spawn(async move { deliver(&url, &body, &backoff, &xref).await });
}

async fn deliver(url: &str, body: &str, backoff: &[Duration], xref: &str) {
    let attempts = backoff.len() + 1;
    for attempt in 1..=attempts {
        if let Some(delay) = attempt.checked_sub(2).and_then(|i| backoff.get(i)) {
            tokio::time::sleep(*delay).await;
        }
        match post_form(url, body).await {
            Ok(status) if (200..300).contains(&status) => {
                tracing::info!(xref, attempt, status, "sandbox hosted callback delivered");
                return;
            }
            Ok(status) => {
                tracing::warn!(xref, attempt, status, "sandbox hosted callback refused");
            }
            Err(AttemptError::Unsupported) => {
                tracing::warn!(
                    xref,
                    "sandbox hosted callback skipped: only http:// callback URLs are delivered"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(xref, attempt, %error, "sandbox hosted callback failed");
            }
        }
    }
    tracing::error!(
        xref,
        attempts,
        "sandbox hosted callback given up; the merchant must QUERY"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_split_for_the_request() {
        let t = target("http://127.0.0.1:8080/hooks/cs?x=1#frag").expect("url");
        assert_eq!(
            t,
            Target {
                authority: "127.0.0.1:8080".into(),
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/hooks/cs?x=1".into(),
            }
        );
        let t = target("http://shop.example").expect("url");
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = target("http://[::1]:9000?a=b").expect("url");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 9000, "/?a=b")
        );
        assert!(matches!(
            target("https://shop.example/cb"),
            Err(AttemptError::Unsupported)
        ));
        for bad in [
            "ftp://x/",
            "http://",
            "http://user@host/",
            "http://host:port/",
            "http://host/a b",
            "http://host/\r\nX-Evil: 1",
        ] {
            assert!(matches!(target(bad), Err(AttemptError::BadUrl)), "{bad}");
        }
    }

    #[test]
    fn the_status_line_gives_the_code() {
        assert_eq!(status_of(b"HTTP/1.1 204 No Content\r\n\r\n"), Some(204));
        assert_eq!(status_of(b"HTTP/1.0 500\r\n"), Some(500));
        assert_eq!(status_of(b"garbage"), None);
        assert_eq!(status_of(b""), None);
    }
}
