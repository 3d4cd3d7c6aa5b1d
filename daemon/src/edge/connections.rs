//! How many clients may be connected, and what one more is told.
//!
//! Every open connection holds a file descriptor, a task and its buffers until the client is
//! done or a timeout ends it (`http.header_read_timeout_seconds` for headers and idle
//! keep-alive, `http.body_read_timeout_seconds` for a body). Those bound one slow client; the
//! cap (`http.max_connections`, a semaphore whose permit each connection holds until it closes)
//! bounds many, so that they cannot exhaust the process's descriptors and starve Redis and the
//! gateway of theirs.
//!
//! A connection over the cap is accepted and answered at once with a 503 in Stripe's error
//! envelope, `Stripe-Should-Retry: true`, `Retry-After: 1` and `Connection: close`, then closed,
//! rather than left unaccepted in the kernel's backlog or closed bare: the official clients
//! read that answer and retry with backoff, and the operator sees the refusals counted
//! (`calmony_connections_refused_total`) instead of timeouts nobody can explain. The refusal
//! waits for the request's head but does not parse it, and spends [`REFUSAL_TIME`] at most; a
//! few refusals at a time are answered (their permits are [`REFUSING`]), any more are closed at
//! once.

use std::sync::Arc;
use std::time::Duration;

use calmony_protocol::{API_VERSION, ApiError, ids};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Refusals answered at once; past this a connection over the cap is closed unanswered.
const REFUSING: usize = 64;
/// Longest a refusal spends on its connection: reading the request's head, writing the answer,
/// reading what else the client sent.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Bytes of a request read at most before the refusal is sent anyway.
const MAX_HEAD: usize = 64 * 1024;

/// The cap on open connections.
#[derive(Clone)]
pub struct Cap {
    open: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
}

impl Cap {
    pub fn new(max: usize) -> Cap {
        Cap {
            open: Arc::new(Semaphore::new(max)),
            refusing: Arc::new(Semaphore::new(REFUSING)),
        }
    }

    /// A place for one more connection, held until it closes; `None`: the cap is reached.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.open.clone().try_acquire_owned().ok()
    }

    /// Answer a connection over the cap with the 503 and close it (see the module docs).
    pub fn refuse(&self, mut stream: TcpStream) {
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            metrics::counter!("calmony_connections_refused_total", "answered" => "false")
                .increment(1);
            return;
        };
        metrics::counter!("calmony_connections_refused_total", "answered" => "true").increment(1);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REFUSAL_TIME, answer(&mut stream)).await;
            drop(permit);
        });
    }
}

/// Wait for the request's head (an HTTP client takes an answer that comes before its request
/// for a broken connection), answer it with the refusal, and read what else the client sends
/// until it closes (closing with unread bytes would reset the connection before the client
/// reads the answer).
async fn answer(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut tail = Vec::with_capacity(buf.len() + 3);
    let mut read = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        read += n;
        tail.extend_from_slice(&buf[..n]);
        if tail.windows(4).any(|w| w == b"\r\n\r\n") || read > MAX_HEAD {
            break;
        }
        tail.drain(..tail.len().saturating_sub(3));
    }
    stream.write_all(&refusal()).await?;
    stream.shutdown().await?;
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

/// The whole HTTP answer to a connection over the cap.
fn refusal() -> Vec<u8> {
    let body = ApiError::too_many_connections().body().to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         content-type: application/json\r\n\
         content-length: {}\r\n\
         connection: close\r\n\
         retry-after: 1\r\n\
         stripe-should-retry: true\r\n\
         stripe-version: {API_VERSION}\r\n\
         request-id: {}\r\n\
         \r\n\
         {body}",
        body.len(),
        ids::request_id(),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_503_in_stripes_envelope() {
        let answer = String::from_utf8(refusal()).expect("text");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains("connection: close"));
        assert!(head.contains("stripe-should-retry: true"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"]["type"], "api_error");
    }

    #[tokio::test]
    async fn the_cap_admits_up_to_its_size_and_again_once_one_closes() {
        let cap = Cap::new(2);
        let first = cap.admit().expect("first");
        let _second = cap.admit().expect("second");
        assert!(cap.admit().is_none());
        drop(first);
        assert!(cap.admit().is_some());
    }
}
