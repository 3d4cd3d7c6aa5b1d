//! The machine-readable description of the `/v1` API (`GET /openapi.json`, no key needed):
//! [`document`] walks the route table, [`operations`] describes each route, and the objects'
//! schemas come from the protocol types (schemars), checked against real answers. The developer
//! docs (`/docs`, `pages::docs`) and the TypeScript SDK's types are made from the same
//! description, so none of them can describe a route the daemon does not have.
//!
//! Adding a route: one row in `edge::routes::API` and one row in [`operations::OPERATIONS`].

pub mod captured;
pub mod document;
pub mod operations;

pub use captured::examples;

use std::sync::OnceLock;

use hyper::Response;

use crate::response::{Body, json_response, set};

/// The description's JSON text, built once.
pub fn text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        serde_json::to_string_pretty(&document::document()).unwrap_or_else(|_| "{}".into())
    })
}

/// `GET /openapi.json`.
pub fn serve() -> Response<Body> {
    let mut resp = json_response(200, text().to_string());
    set(&mut resp, "access-control-allow-origin", "*");
    resp
}

#[cfg(test)]
mod tests;
