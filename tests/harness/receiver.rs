//! A recording webhook receiver: a real HTTP server in the test process that keeps every
//! request and answers as the test commands (200, 500, hang, redirect, Retry-After).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Fail,
    /// Answer 200 after this long.
    Hang(Duration),
    Redirect,
    /// 503 with `Retry-After: n`.
    RetryAfter(u64),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub body: String,
    pub calmony_signature: String,
    pub stripe_signature: String,
    pub answered: u16,
}

impl Received {
    pub fn event_id(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn event_type(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    answer: Arc<Mutex<Answer>>,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let me = Receiver {
            url: format!("http://{addr}/hooks"),
            answer: Arc::new(Mutex::new(Answer::Ok)),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let server = me.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let r = server.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let r = r.clone();
                        async move { Ok::<_, Infallible>(r.answer_to(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        me
    }

    async fn answer_to(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        // A browser landing on the merchant's `success_url` or `cancel_url`: a plain page.
        if req.method() == hyper::Method::GET {
            let target = req.uri().to_string();
            let html = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
                 <title>Hart &amp; Co lettings</title></head>\
                 <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem\">\
                 <h1 id=\"merchant-landing\">Thank you: holding deposit received</h1>\
                 <p>Back on the merchant's site at <code id=\"landed\">{}</code></p></body></html>",
                target.replace('&', "&amp;").replace('<', "&lt;")
            );
            let mut resp = Response::new(Full::new(Bytes::from(html)));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return resp;
        }
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (cs, ss) = (header("calmony-signature"), header("stripe-signature"));
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let answer = *self.answer.lock().expect("lock");
        let (status, extra): (u16, Option<(&str, String)>) = match answer {
            Answer::Ok => (200, None),
            Answer::Fail => (500, None),
            Answer::Hang(d) => {
                tokio::time::sleep(d).await;
                (200, None)
            }
            Answer::Redirect => (
                302,
                Some(("location", "http://127.0.0.1:1/elsewhere".into())),
            ),
            Answer::RetryAfter(n) => (503, Some(("retry-after", n.to_string()))),
        };
        self.log.lock().expect("lock").push(Received {
            body: String::from_utf8_lossy(&body).into_owned(),
            calmony_signature: cs,
            stripe_signature: ss,
            answered: status,
        });
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"received\":true}")));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        if let Some((k, v)) = extra
            && let Ok(v) = hyper::header::HeaderValue::from_str(&v)
        {
            resp.headers_mut().insert(k, v);
        }
        resp
    }

    pub fn set(&self, a: Answer) {
        *self.answer.lock().expect("lock") = a;
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("lock").clone()
    }

    /// How many requests arrived so far, without copying them (a load run polls this often).
    pub fn count(&self) -> usize {
        self.log.lock().expect("lock").len()
    }

    /// Wait until `pred` holds for what was received. The predicate looks at the log in place:
    /// copying thousands of bodies every poll would cost the machine more than the deliveries.
    pub async fn wait(&self, limit: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let holds = || pred(&self.log.lock().expect("lock"));
        while std::time::Instant::now() < deadline {
            if holds() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        holds()
    }
}
