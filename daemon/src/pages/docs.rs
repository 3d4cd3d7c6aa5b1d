//! `/docs`: the developer documentation, served without a key.
//!
//! - The reference is rendered from the OpenAPI description (`crate::openapi`), so it lists
//!   exactly the routes the daemon has, with the parameter spellings the handlers take.
//! - Each operation's curl example and its request and answer JSON come from
//!   `docs/developer/examples.json`, which the e2e test `docs::examples_are_captured` writes
//!   from real answers of a real daemon (compiled in by `crate::openapi::captured::EXAMPLES`, which also
//!   gives the description its request examples): the test fails when an answer's
//!   shape no longer matches the committed file, or a route has no example, so the examples
//!   cannot drift from the daemon.
//! - The guides are HTML fragments under `docs/developer/guides/`, compiled in.
//! - `?q=` filters the reference and the guides (a GET form: no script needed).

use hyper::Response;
use serde_json::Value;

use super::html::{escape, html_response};
use crate::response::Body;

/// A written guide: its slug (`/docs/<slug>`), title and HTML body.
pub struct Guide {
    pub slug: &'static str,
    pub title: &'static str,
    pub html: &'static str,
}

macro_rules! guide {
    ($slug:literal, $title:literal) => {
        Guide {
            slug: $slug,
            title: $title,
            html: include_str!(concat!("../../../docs/developer/guides/", $slug, ".html")),
        }
    };
}

pub const GUIDES: &[Guide] = &[
    guide!("quickstart", "Quick start"),
    guide!("sdk", "Installing the SDK"),
    guide!("authentication", "Authentication"),
    guide!("errors", "Errors"),
    guide!("idempotency", "Idempotency"),
    guide!("pagination", "Pagination"),
    guide!("rate-limits", "Rate limits"),
    guide!("testing", "Test cards and test clocks"),
    guide!("webhooks", "Webhooks"),
    guide!("checkout", "Checkout"),
    guide!("subscriptions", "Subscriptions"),
    guide!("pay-by-bank", "Pay by Bank"),
    guide!("portal", "The customer portal"),
];

/// `GET /docs` (the reference, `?q=` to search) and `GET /docs/<guide>`.
pub fn serve(page: &str, query: &str) -> Response<Body> {
    let q = search_term(query);
    match page {
        "" | "reference" => html_response(200, frame("API reference", &q, &reference(&q))),
        slug => match GUIDES.iter().find(|g| g.slug == slug) {
            Some(g) => html_response(
                200,
                frame(
                    g.title,
                    &q,
                    &format!(
                        "<article id=\"guide\"><h1>{}</h1>{}</article>",
                        escape(g.title),
                        render_guide(g.html)
                    ),
                ),
            ),
            None => html_response(
                404,
                frame(
                    "Not found",
                    &q,
                    "<h1>No such page</h1><p><a href=\"/docs\">Back to the reference</a></p>",
                ),
            ),
        },
    }
}

/// The `q` of the query string, trimmed and lower-cased.
pub fn search_term(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().to_lowercase())
        .unwrap_or_default()
}

/// Whether any of `texts` contains every word of `q` (case-insensitive).
pub fn matches(q: &str, texts: &[&str]) -> bool {
    let hay = texts.join(" ").to_lowercase();
    q.split_whitespace().all(|w| hay.contains(w))
}

fn frame(title: &str, q: &str, body: &str) -> String {
    let nav: String = GUIDES
        .iter()
        .map(|g| {
            format!(
                "<li><a href=\"/docs/{}\">{}</a></li>",
                g.slug,
                escape(g.title)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Calmony Pay docs</title><style>{CSS}</style></head><body>\
         <header><a class=\"brand\" href=\"/docs\">Calmony Pay <span>docs</span></a>\
         <form role=\"search\" method=\"get\" action=\"/docs\">\
         <input type=\"search\" name=\"q\" value=\"{q}\" placeholder=\"Search the docs\" aria-label=\"Search the docs\">\
         <button type=\"submit\">Search</button></form></header>\
         <div class=\"wrap\"><nav><h2>Guides</h2><ul>{nav}</ul>\
         <h2>Reference</h2><ul><li><a href=\"/docs\">All endpoints</a></li>\
         <li><a href=\"/openapi.json\">openapi.json</a></li></ul></nav>\
         <main>{body}</main></div></body></html>",
        title = escape(title),
        q = escape(q),
    )
}

const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:15px/1.55 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1a1f36;background:#fff}\
header{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;justify-content:space-between;padding:.75rem 1.25rem;border-bottom:1px solid #e3e8ee;background:#f7f8fb;position:sticky;top:0}\
.brand{font-weight:700;color:#3a4bd9;text-decoration:none;font-size:1.1rem}.brand span{color:#697386;font-weight:500}\
header form{display:flex;gap:.4rem;flex:1 1 16rem;max-width:28rem}\
header input{flex:1;min-width:0;font:inherit;padding:.45rem .7rem;border:1px solid #c1c9d2;border-radius:6px}\
header button{font:inherit;padding:.45rem .9rem;border:0;border-radius:6px;background:#3a4bd9;color:#fff}\
.wrap{display:flex;max-width:80rem;margin:0 auto}\
nav{flex:0 0 15rem;padding:1rem 1.25rem;border-right:1px solid #e3e8ee}nav h2{font-size:.75rem;text-transform:uppercase;color:#697386;margin:1rem 0 .25rem}\
nav ul{list-style:none;margin:0;padding:0}nav a{color:#1a1f36;text-decoration:none;display:block;padding:.15rem 0}nav a:hover{color:#3a4bd9}\
main{flex:1;min-width:0;padding:1rem 1.5rem 3rem}h1{font-size:1.6rem;margin:.5rem 0 1rem}\
h2.tag{margin-top:2rem;border-bottom:1px solid #e3e8ee;padding-bottom:.25rem}\
section.op{margin:1.25rem 0 2rem}section.op h3{font-size:1.05rem;margin:0 0 .25rem;font-family:ui-monospace,Menlo,monospace;word-break:break-all}\
.m{display:inline-block;min-width:3.6rem;font-size:.75rem;font-weight:700;padding:.1rem .4rem;border-radius:4px;color:#fff;text-align:center;margin-right:.4rem}\
.GET{background:#1f8a4c}.POST{background:#3a4bd9}.DELETE{background:#c0392b}\
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}td,th{text-align:left;border-bottom:1px solid #eef0f3;padding:.3rem .4rem;vertical-align:top}\
code{font-family:ui-monospace,Menlo,monospace;font-size:.88em;background:#f3f4f7;border-radius:4px;padding:.05rem .25rem}\
pre{background:#0f1729;color:#e6edf7;padding:.8rem 1rem;border-radius:8px;overflow-x:auto;font-size:.82rem;line-height:1.45;max-height:26rem}pre code{background:none;color:inherit;padding:0}\
details summary{cursor:pointer;color:#3a4bd9;margin:.4rem 0}.alias{color:#697386}.req{color:#c0392b;font-size:.75rem}\
.hits{color:#697386}\
@media (max-width:760px){.wrap{display:block}nav{border-right:0;border-bottom:1px solid #e3e8ee;padding:.5rem 1rem}nav ul{display:flex;flex-wrap:wrap;gap:.25rem .9rem}main{padding:1rem}}";

/// The signature-verification snippets the webhooks guide shows: the files the tests run
/// (the SDK's tests, the stripe-python tests, and this module's tests).
const SNIPPETS: &[(&str, &str)] = &[
    (
        "verify-webhook.ts",
        include_str!("../../../clients/typescript/test/snippets/verify-webhook.ts"),
    ),
    (
        "verify_webhook.py",
        include_str!("../../../clients/official/python/snippets/verify_webhook.py"),
    ),
    (
        "verify_webhook.rs",
        include_str!("../../../docs/developer/snippets/verify_webhook.rs"),
    ),
];

/// A guide's HTML with its markers filled: `<!--catalogue-->` and `<!--snippet:NAME-->`.
fn render_guide(html: &str) -> String {
    let mut out = html.replace("<!--catalogue-->", &catalogue());
    for (name, code) in SNIPPETS {
        out = out.replace(
            &format!("<!--snippet:{name}-->"),
            &format!("<pre><code>{}</code></pre>", escape(code.trim_end())),
        );
    }
    out
}

/// The event types, from the daemon's catalogue (`calmony_protocol::webhook::CATALOGUE`).
fn catalogue() -> String {
    let items: String = calmony_protocol::webhook::CATALOGUE
        .iter()
        .map(|e| format!("<li><code>{}</code></li>", escape(e)))
        .collect();
    format!("<ul class=\"catalogue\">{items}</ul>")
}

/// The reference, from the description: one section per operation, grouped by resource.
fn reference(q: &str) -> String {
    let doc: Value = serde_json::from_str(crate::openapi::text()).unwrap_or(Value::Null);
    let examples = crate::openapi::examples();
    let mut out = String::from("<h1>API reference</h1>");
    if !q.is_empty() {
        let guides: String = GUIDES
            .iter()
            .filter(|g| matches(q, &[g.title, g.html]))
            .map(|g| {
                format!(
                    "<li><a href=\"/docs/{}\">{}</a></li>",
                    g.slug,
                    escape(g.title)
                )
            })
            .collect();
        if !guides.is_empty() {
            out.push_str(&format!("<h2>Guides matching</h2><ul>{guides}</ul>"));
        }
    } else {
        out.push_str(
            "<p>Every endpoint of this daemon, from its <a href=\"/openapi.json\">OpenAPI \
             description</a>. Authenticate with your secret key (<a href=\"/docs/authentication\">\
             how</a>); send parameters form-encoded or as JSON. The examples below are real \
             requests and answers, captured by the test suite; they call the daemon at \
             <code>$BASE</code> (e.g. <code>http://localhost:4242</code>) with your key in \
             <code>$CALMONY_API_KEY</code>.</p>",
        );
    }
    let mut last_tag = String::new();
    let mut hits = 0;
    // In the route table's order (resources as the API lists them), each from the description.
    for (m, template, _) in crate::edge::routes::API {
        let path = crate::openapi::document::openapi_path(template);
        let method = m.as_str().to_ascii_lowercase();
        let op = &doc["paths"][&path][&method];
        if !op.is_object() {
            continue;
        }
        {
            let path = &path;
            let summary = op["summary"].as_str().unwrap_or("");
            let params = params_of(op);
            let names: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
            let names = names.join(" ");
            let method_up = method.to_uppercase();
            if !q.is_empty() && !matches(q, &[path, summary, &names, &method_up]) {
                continue;
            }
            hits += 1;
            let tag = op["tags"][0].as_str().unwrap_or("").to_string();
            if tag != last_tag {
                out.push_str(&format!("<h2 class=\"tag\">{}</h2>", escape(&tag)));
                last_tag = tag;
            }
            let id = op["operationId"].as_str().unwrap_or("");
            let request = &op["requestBody"]["content"]["application/json"]["example"];
            out.push_str(&operation(
                id,
                &method_up,
                path,
                summary,
                &params,
                &examples[id],
                request,
            ));
        }
    }
    if !q.is_empty() {
        out.insert_str(
            "<h1>API reference</h1>".len(),
            &format!(
                "<p class=\"hits\">{hits} endpoint{} matching “{}”. <a href=\"/docs\">Show all</a></p>",
                if hits == 1 { "" } else { "s" },
                escape(q)
            ),
        );
    }
    out
}

/// (name, type, description, required) of each parameter an operation takes.
fn params_of(op: &Value) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    if let Some(ps) = op["parameters"].as_array() {
        for p in ps {
            if p["in"] == "query" {
                out.push((
                    p["name"].as_str().unwrap_or("").to_string(),
                    type_of(&p["schema"]),
                    p["description"].as_str().unwrap_or("").to_string(),
                    false,
                ));
            }
        }
    }
    let body = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let mut required: Vec<&str> = body["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Required by any of its spellings: `allOf: [{anyOf: [{required: [a]}, {required: [b]}]}]`.
    for group in body["allOf"].as_array().into_iter().flatten() {
        for one in group["anyOf"].as_array().into_iter().flatten() {
            required.extend(
                one["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            );
        }
    }
    if let Some(props) = body["properties"].as_object() {
        for (name, schema) in props {
            out.push((
                name.clone(),
                type_of(schema),
                schema["description"].as_str().unwrap_or("").to_string(),
                required.contains(&name.as_str()),
            ));
        }
    }
    out
}

fn type_of(schema: &Value) -> String {
    if let Some(values) = schema["enum"].as_array() {
        let v: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        return format!("one of {}", v.join(", "));
    }
    match schema["type"].as_str() {
        Some("array") => format!("list of {}", type_of(&schema["items"])),
        Some("object") => match schema["properties"].as_object() {
            Some(p) if !p.is_empty() => {
                let keys: Vec<&str> = p.keys().map(String::as_str).collect();
                format!("hash: {}", keys.join(", "))
            }
            _ => "hash".into(),
        },
        Some(t) => t.to_string(),
        None if schema.get("anyOf").is_some() => "timestamp or range (gt, gte, lt, lte)".into(),
        None => "any".into(),
    }
}

fn operation(
    id: &str,
    method: &str,
    path: &str,
    summary: &str,
    params: &[(String, String, String, bool)],
    example: &Value,
    request: &Value,
) -> String {
    let rows: String = params
        .iter()
        .map(|(name, ty, about, required)| {
            format!(
                "<tr><td><code>{}</code>{}</td><td>{}</td><td class=\"alias\">{}</td></tr>",
                escape(name),
                if *required {
                    " <span class=\"req\">required</span>"
                } else {
                    ""
                },
                escape(ty),
                escape(about)
            )
        })
        .collect();
    let table = if rows.is_empty() {
        String::new()
    } else {
        format!(
            "<details><summary>Parameters ({})</summary><table><tr><th>Name</th><th>Type</th><th></th></tr>{rows}</table></details>",
            params.len()
        )
    };
    let example = if example.is_object() {
        let curl = curl(example);
        let answer = serde_json::to_string_pretty(&example["response"]).unwrap_or_default();
        // The same request as JSON (the API takes either): the description's example.
        let request = match request.as_object() {
            Some(_) => format!(
                "<p>Or as JSON (<code>-H \"Content-Type: application/json\"</code>)</p><pre><code>{}</code></pre>",
                escape(&serde_json::to_string_pretty(request).unwrap_or_default())
            ),
            None => String::new(),
        };
        format!(
            "<pre><code>{}</code></pre>{request}<p>Answer ({})</p><pre><code>{}</code></pre>",
            escape(&curl),
            example["status"].as_u64().unwrap_or(200),
            escape(&answer)
        )
    } else {
        String::new()
    };
    format!(
        "<section class=\"op\" id=\"{id}\"><h3><span class=\"m {method}\">{method}</span>{path}</h3>\
         <p>{summary}</p>{table}{example}</section>",
        id = escape(id),
        path = escape(path),
        summary = escape(summary)
    )
}

/// The curl command for a captured request.
pub fn curl(example: &Value) -> String {
    let method = example["method"].as_str().unwrap_or("GET");
    let path = example["path"].as_str().unwrap_or("/");
    // `$BASE` as the guides set it: where this daemon answers.
    let mut out = if path.contains(['?', '[', '&']) {
        format!("curl \"$BASE{path}\"")
    } else {
        format!("curl $BASE{path}")
    };
    if method == "DELETE" {
        out.push_str(" \\\n  -X DELETE");
    }
    out.push_str(" \\\n  -u \"$CALMONY_API_KEY:\"");
    if let Some(form) = example["form"].as_str() {
        for (k, v) in form_urlencoded::parse(form.as_bytes()) {
            out.push_str(&format!(" \\\n  -d \"{k}={v}\""));
        }
    }
    if method == "POST" && example["form"].as_str().is_none_or(str::is_empty) {
        out.push_str(" \\\n  -X POST");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    mod snippet {
        include!("../../../docs/developer/snippets/verify_webhook.rs");

        pub fn run(raw_body: &[u8], signature: &str, secret: &str, now_unix: i64) -> String {
            on_webhook(raw_body, signature, secret, now_unix)
        }
    }

    /// The Rust snippet of the webhooks guide, run on a delivery signed as the daemon signs.
    #[test]
    fn the_rust_webhook_snippet_verifies_and_refuses() {
        let body = br#"{"id":"evt_1","object":"event","type":"customer.created","data":{"object":{"id":"cus_9","object":"customer"}}}"#;
        let now = 1_767_225_600;
        let header = calmony_protocol::webhook::header(now, ["whsec_a"], body);
        let table = [
            (
                &body[..],
                header.as_str(),
                "whsec_a",
                now,
                "received customer.created for cus_9",
            ),
            (
                &body[..],
                header.as_str(),
                "whsec_b",
                now,
                "refused: no v1 signature matches the payload",
            ),
            (
                &body[..],
                header.as_str(),
                "whsec_a",
                now + 301,
                "refused: the timestamp is older than the tolerance",
            ),
            (
                &body[..],
                "v1=00",
                "whsec_a",
                now,
                "refused: the signature header has no timestamp",
            ),
        ];
        for (body, header, secret, at, want) in table {
            assert_eq!(snippet::run(body, header, secret, at), want, "{header}");
        }
    }

    #[test]
    fn the_webhooks_guide_shows_the_tested_snippets() {
        let page = render_guide(
            GUIDES
                .iter()
                .find(|g| g.slug == "webhooks")
                .map(|g| g.html)
                .unwrap_or_default(),
        );
        assert!(!page.contains("<!--snippet:"), "every marker filled");
        assert!(page.contains("verifySignature(rawBody, signature, secret)"));
        assert!(page.contains("stripe.Webhook.construct_event(raw_body, signature, secret)"));
        assert!(page.contains("webhook::verify(raw_body, signature, secret, 300, now_unix)"));
        assert!(page.contains("payment_intent.succeeded"), "the catalogue");
    }

    #[test]
    fn search_terms_and_matching() {
        let table = [
            ("q=Refund", "refund"),
            ("q=%20checkout+sessions%20", "checkout sessions"),
            ("", ""),
            ("other=1", ""),
        ];
        for (query, want) in table {
            assert_eq!(search_term(query), want, "{query}");
        }
        assert!(matches("refund list", &["/v1/refunds", "List refunds"]));
        assert!(!matches("refund capture", &["/v1/refunds", "List refunds"]));
        assert!(matches("", &["anything"]));
    }

    #[test]
    fn curl_of_a_form_post() {
        let ex = serde_json::json!({"method": "POST", "path": "/v1/customers", "form": "email=a%40b.c&metadata[k]=v"});
        let c = curl(&ex);
        assert!(c.contains("-d \"email=a@b.c\""), "{c}");
        assert!(c.contains("-d \"metadata[k]=v\""), "{c}");
        assert!(c.contains("-u \"$CALMONY_API_KEY:\""), "{c}");
        assert!(c.starts_with("curl $BASE/v1/customers"), "{c}");
        let get = curl(&serde_json::json!({"method": "GET", "path": "/v1/customers?limit=2"}));
        assert!(
            get.starts_with("curl \"$BASE/v1/customers?limit=2\""),
            "{get}"
        );
    }

    #[test]
    fn every_guide_has_a_body_and_the_reference_every_route() {
        for g in GUIDES {
            assert!(g.html.len() > 200, "{} is too short", g.slug);
        }
        let page = reference("");
        for (m, t, _) in crate::edge::routes::API {
            let path = crate::openapi::document::openapi_path(t);
            assert!(page.contains(&escape(&path)), "{m} {t} missing from /docs");
        }
        // A POST shows its captured request as curl and as JSON, and its real answer.
        let intents = reference("post payment_intents confirm");
        assert!(intents.contains("-d &quot;confirm=true&quot;"), "curl");
        assert!(intents.contains("Or as JSON"), "request JSON");
        assert!(
            intents.contains("&quot;status&quot;: &quot;succeeded&quot;"),
            "answer"
        );
        let filtered = reference("refund");
        assert!(filtered.contains("/v1/refunds"));
        assert!(!filtered.contains("/v1/test_helpers/test_clocks"));
    }
}
