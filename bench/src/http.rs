//! The load tool's HTTP/1.1 client: kept-alive connections straight on hyper, each carrying
//! one request at a time, as a load generator's workers do.
//!
//! The load tool shares the machine with what it measures, so its own cost per request is
//! taken from the daemon's. A general client (reqwest) parsed the URL, ran its IDNA host
//! check, cloned its connector and pooled per request, and under `read` the load tool used as
//! much CPU as the daemon. Here the target is parsed once and an idle connection is a pop
//! from a list.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take before it counts as an error.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Http {
    /// `host:port` to connect to.
    addr: String,
    /// The base URL's path, put before every request's.
    prefix: String,
    host: HeaderValue,
    auth: HeaderValue,
    form: HeaderValue,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Http {
    /// `base` is `http://host:port` (the daemon serves plain HTTP; TLS belongs to the proxy in
    /// front of it, so the load tool does not speak it).
    pub fn new(base: &str, key: &str) -> Result<Http, String> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| format!("{base}: the load tool speaks plain http:// only"))?
            .trim_end_matches('/');
        // A daemon behind a path prefix (`http://host/pay`) is asked for `/pay/v1/...`.
        let (addr, prefix) = match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), String::new()),
        };
        let header = |v: &str| HeaderValue::from_str(v).map_err(|e| format!("{v:?}: {e}"));
        Ok(Http {
            host: header(&addr)?,
            auth: header(&format!("Bearer {key}"))?,
            form: HeaderValue::from_static("application/x-www-form-urlencoded"),
            addr,
            prefix,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Send one request and read its whole answer: the status and the body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Bytes), String> {
        let mut req = if self.prefix.is_empty() {
            Request::builder().method(method).uri(path)
        } else {
            Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.prefix))
        };
        if let Some(h) = req.headers_mut() {
            h.insert(HOST, self.host.clone());
            h.insert(AUTHORIZATION, self.auth.clone());
            if body.is_some() {
                h.insert(CONTENT_TYPE, self.form.clone());
            }
            if let Some(k) = idempotency_key {
                let k = HeaderValue::from_str(k).map_err(|e| format!("{k:?}: {e}"))?;
                h.insert("idempotency-key", k);
            }
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(TIMEOUT, self.exchange(req))
            .await
            .map_err(|_| format!("{path}: no answer in {TIMEOUT:?}"))?
            .map_err(|e| format!("{path}: {e}"))
    }

    /// A browser's `GET` with a cookie (a dashboard session): the status and the body.
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Result<(u16, Bytes), String> {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.prefix));
        if let Some(h) = req.headers_mut() {
            h.insert(HOST, self.host.clone());
            let c = HeaderValue::from_str(cookie).map_err(|e| e.to_string())?;
            h.insert(hyper::header::COOKIE, c);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(TIMEOUT, self.exchange(req))
            .await
            .map_err(|_| format!("{path}: no answer in {TIMEOUT:?}"))?
            .map_err(|e| format!("{path}: {e}"))
    }

    /// Send one request as a browser would, without following a redirect: the status, the
    /// `Location` if any, and the body (the pages' steps, where the redirect is the answer).
    pub async fn send_page(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, Option<String>, Bytes), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix));
        if let Some(h) = req.headers_mut() {
            h.insert(HOST, self.host.clone());
            if body.is_some() {
                h.insert(CONTENT_TYPE, self.form.clone());
            }
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(TIMEOUT, self.exchange_with_location(req))
            .await
            .map_err(|_| format!("{path}: no answer in {TIMEOUT:?}"))?
            .map_err(|e| format!("{path}: {e}"))
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        self.exchange_with_location(req)
            .await
            .map(|(status, _, body)| (status, body))
    }

    async fn exchange_with_location(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(u16, Option<String>, Bytes), String> {
        let mut conn = match self.take_idle().await {
            Some(c) => c,
            None => self.connect().await?,
        };
        let resp = conn.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        // Only a connection that carried a whole exchange goes back for the next request.
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        Ok((status, location, body))
    }

    /// An idle connection ready for a request (one the daemon closed is dropped).
    async fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let mut c = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            if c.ready().await.is_ok() {
                return Some(c);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(send)
    }
}
