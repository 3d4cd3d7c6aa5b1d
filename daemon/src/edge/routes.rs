//! Routing: a request's method and path to a route, and the route's label for metrics (the
//! template, never the raw path, so ids do not explode the label set).

use hyper::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Metrics,
    Api(ApiRoute),
    /// A `/v1` path that exists with another method.
    ApiMethodNotAllowed,
    /// A `/v1` path that does not exist.
    ApiUnknown,
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoute {
    CustomersCreate,
    CustomersList,
    CustomerRetrieve(String),
    CustomerUpdate(String),
    CustomerDelete(String),
}

impl ApiRoute {
    pub fn label(&self) -> &'static str {
        match self {
            ApiRoute::CustomersCreate | ApiRoute::CustomersList => "/v1/customers",
            ApiRoute::CustomerRetrieve(_)
            | ApiRoute::CustomerUpdate(_)
            | ApiRoute::CustomerDelete(_) => "/v1/customers/:id",
        }
    }
}

impl Route {
    pub fn label(&self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Api(r) => r.label(),
            Route::ApiMethodNotAllowed => "method_not_allowed",
            Route::ApiUnknown | Route::NotFound => "unknown",
        }
    }
}

/// Collapse `//` as Stripe does, and drop one trailing slash.
pub fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut last_slash = false;
    for ch in path.chars() {
        if ch == '/' {
            if !last_slash {
                out.push('/');
            }
            last_slash = true;
        } else {
            out.push(ch);
            last_slash = false;
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

pub fn route(method: &Method, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (&Method::GET, ["healthz"]) => Route::Healthz,
        (&Method::GET, ["readyz"]) => Route::Readyz,
        (&Method::GET, ["metrics"]) => Route::Metrics,
        (_, ["v1", rest @ ..]) => api(method, rest),
        _ => Route::NotFound,
    }
}

fn api(method: &Method, segs: &[&str]) -> Route {
    use ApiRoute::*;
    let r = match (method, segs) {
        (&Method::POST, ["customers"]) => CustomersCreate,
        (&Method::GET, ["customers"]) => CustomersList,
        (&Method::GET, ["customers", id]) => CustomerRetrieve(id.to_string()),
        (&Method::POST, ["customers", id]) => CustomerUpdate(id.to_string()),
        (&Method::DELETE, ["customers", id]) => CustomerDelete(id.to_string()),
        (_, ["customers"] | ["customers", _]) => return Route::ApiMethodNotAllowed,
        _ => return Route::ApiUnknown,
    };
    Route::Api(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_labels() {
        assert_eq!(route(&Method::GET, "/healthz"), Route::Healthz);
        assert_eq!(
            route(&Method::GET, &normalize("//v1//customers/cus_1/")),
            Route::Api(ApiRoute::CustomerRetrieve("cus_1".into()))
        );
        assert_eq!(
            route(&Method::PUT, "/v1/customers"),
            Route::ApiMethodNotAllowed
        );
        assert_eq!(route(&Method::GET, "/v1/nothing"), Route::ApiUnknown);
        assert_eq!(route(&Method::GET, "/nothing"), Route::NotFound);
        assert_eq!(
            route(&Method::DELETE, "/v1/customers/x").label(),
            "/v1/customers/:id"
        );
    }
}
