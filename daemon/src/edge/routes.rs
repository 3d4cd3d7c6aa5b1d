//! Routing: a request's method and path to a route, and the route's label for metrics (the
//! path template, never the raw path, so ids do not explode the label set).
//!
//! The `/v1` API is one table, [`API`]: method, template, endpoint. Adding an endpoint is one
//! line here and one arm in `api::dispatch`.

use hyper::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Metrics,
    /// The OpenAPI description of `/v1` (`crate::openapi`).
    OpenApi,
    /// The developer docs (`crate::pages::docs`): the reference, a guide, or a screenshot.
    Docs {
        page: String,
    },
    Api(ApiRoute),
    /// A `/v1` path that exists with another method.
    ApiMethodNotAllowed,
    /// A `/v1` path that does not exist.
    ApiUnknown,
    /// The 3-D Secure page a payment's `next_action` sends the browser to.
    ThreeDsPage {
        project: String,
        mode: String,
        intent: String,
    },
    /// Where the issuer's page posts the cardholder back.
    ThreeDsComplete {
        project: String,
        mode: String,
        intent: String,
    },
    /// The Pay by Bank page a payment's `next_action` points at (`GET`), and the payer's
    /// choice of bank (`POST`).
    BankPage {
        project: String,
        mode: String,
        intent: String,
        choose: bool,
    },
    /// Where the payer's bank sends them back.
    BankReturn,
    /// A bank's event notifications (signed SETs), per mode and bank.
    BankNotification {
        mode: String,
        bank: String,
    },
    /// Griffin's signed webhook deliveries, per mode (`/webhooks/griffin/{mode}`).
    GriffinWebhook {
        mode: String,
    },
    /// The Cardstream simulator.
    Sandbox,
    /// A checkout session's page (`url`), and where the hosted payment page answers.
    Checkout {
        project: String,
        mode: String,
        session: String,
        step: CheckoutStep,
    },
    /// The customer portal's page (a `billing_portal.session`'s `url`) and its forms.
    Portal {
        project: String,
        mode: String,
        session: String,
        step: PortalStep,
    },
    /// An invoice's public PDF link (`invoice_pdf`): the token is the credential.
    InvoicePublicPdf {
        project: String,
        mode: String,
        invoice: String,
        token: String,
    },
    /// The merchant dashboard: every path under `/dashboard`.
    Dashboard {
        post: bool,
    },
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    CustomerCreate,
    CustomerList,
    CustomerRetrieve,
    CustomerUpdate,
    CustomerDelete,
    CustomerPaymentMethods,
    PaymentMethodCreate,
    PaymentMethodList,
    PaymentMethodRetrieve,
    PaymentMethodAttach,
    PaymentMethodDetach,
    IntentCreate,
    IntentList,
    IntentRetrieve,
    IntentUpdate,
    IntentConfirm,
    IntentCapture,
    IntentCancel,
    RefundCreate,
    RefundList,
    RefundRetrieve,
    BalanceRetrieve,
    BalanceTxnList,
    BalanceTxnRetrieve,
    PayoutList,
    PayoutRetrieve,
    ChargeList,
    ChargeRetrieve,
    EventList,
    EventRetrieve,
    EventAttempts,
    EventResend,
    HookEndpointCreate,
    HookEndpointList,
    HookEndpointRetrieve,
    HookEndpointUpdate,
    HookEndpointDelete,
    HookEndpointRollSecret,
    HookEndpointAttempts,
    ProductCreate,
    ProductList,
    ProductRetrieve,
    ProductUpdate,
    ProductDelete,
    PriceCreate,
    PriceList,
    PriceRetrieve,
    PriceUpdate,
    TaxRateCreate,
    TaxRateList,
    TaxRateRetrieve,
    TaxRateUpdate,
    InvoiceCreate,
    InvoiceList,
    InvoiceRetrieve,
    InvoiceDelete,
    InvoiceFinalize,
    InvoicePay,
    InvoiceVoid,
    InvoiceUncollectible,
    InvoiceLines,
    InvoicePdf,
    InvoiceItemCreate,
    InvoiceItemList,
    InvoiceItemRetrieve,
    SubscriptionCreate,
    SubscriptionList,
    SubscriptionRetrieve,
    SubscriptionUpdate,
    SubscriptionCancel,
    TestClockCreate,
    TestClockList,
    TestClockRetrieve,
    TestClockDelete,
    TestClockAdvance,
    CheckoutCreate,
    CheckoutList,
    CheckoutRetrieve,
    CheckoutLineItems,
    CheckoutExpire,
    PortalSessionCreate,
    PortalConfigCreate,
    PortalConfigList,
    PortalConfigRetrieve,
    PortalConfigUpdate,
}

/// Every `/v1` endpoint: method, path template (`:id` matches one segment), endpoint.
/// Each needs a row in `crate::openapi::operations::OPERATIONS` too (a test checks), and a
/// call in `tests/e2e/docs.rs` for its example in `/docs`.
pub const API: &[(Method, &str, Endpoint)] = {
    use Endpoint::*;
    &[
        (Method::POST, "/v1/customers", CustomerCreate),
        (Method::GET, "/v1/customers", CustomerList),
        (Method::GET, "/v1/customers/:id", CustomerRetrieve),
        (Method::POST, "/v1/customers/:id", CustomerUpdate),
        (Method::DELETE, "/v1/customers/:id", CustomerDelete),
        (
            Method::GET,
            "/v1/customers/:id/payment_methods",
            CustomerPaymentMethods,
        ),
        (Method::POST, "/v1/payment_methods", PaymentMethodCreate),
        (Method::GET, "/v1/payment_methods", PaymentMethodList),
        (
            Method::GET,
            "/v1/payment_methods/:id",
            PaymentMethodRetrieve,
        ),
        (
            Method::POST,
            "/v1/payment_methods/:id/attach",
            PaymentMethodAttach,
        ),
        (
            Method::POST,
            "/v1/payment_methods/:id/detach",
            PaymentMethodDetach,
        ),
        (Method::POST, "/v1/payment_intents", IntentCreate),
        (Method::GET, "/v1/payment_intents", IntentList),
        (Method::GET, "/v1/payment_intents/:id", IntentRetrieve),
        (Method::POST, "/v1/payment_intents/:id", IntentUpdate),
        (
            Method::POST,
            "/v1/payment_intents/:id/confirm",
            IntentConfirm,
        ),
        (
            Method::POST,
            "/v1/payment_intents/:id/capture",
            IntentCapture,
        ),
        (Method::POST, "/v1/payment_intents/:id/cancel", IntentCancel),
        (Method::POST, "/v1/refunds", RefundCreate),
        (Method::GET, "/v1/refunds", RefundList),
        (Method::GET, "/v1/refunds/:id", RefundRetrieve),
        (Method::GET, "/v1/balance", BalanceRetrieve),
        (Method::GET, "/v1/balance_transactions", BalanceTxnList),
        (
            Method::GET,
            "/v1/balance_transactions/:id",
            BalanceTxnRetrieve,
        ),
        (Method::GET, "/v1/payouts", PayoutList),
        (Method::GET, "/v1/payouts/:id", PayoutRetrieve),
        (Method::GET, "/v1/charges", ChargeList),
        (Method::GET, "/v1/charges/:id", ChargeRetrieve),
        (Method::GET, "/v1/events", EventList),
        (Method::GET, "/v1/events/:id", EventRetrieve),
        (Method::GET, "/v1/events/:id/attempts", EventAttempts),
        (Method::POST, "/v1/events/:id/resend", EventResend),
        (Method::POST, "/v1/webhook_endpoints", HookEndpointCreate),
        (Method::GET, "/v1/webhook_endpoints", HookEndpointList),
        (
            Method::GET,
            "/v1/webhook_endpoints/:id",
            HookEndpointRetrieve,
        ),
        (
            Method::POST,
            "/v1/webhook_endpoints/:id",
            HookEndpointUpdate,
        ),
        (
            Method::DELETE,
            "/v1/webhook_endpoints/:id",
            HookEndpointDelete,
        ),
        (
            Method::POST,
            "/v1/webhook_endpoints/:id/roll_secret",
            HookEndpointRollSecret,
        ),
        (
            Method::GET,
            "/v1/webhook_endpoints/:id/attempts",
            HookEndpointAttempts,
        ),
        (Method::POST, "/v1/products", ProductCreate),
        (Method::GET, "/v1/products", ProductList),
        (Method::GET, "/v1/products/:id", ProductRetrieve),
        (Method::POST, "/v1/products/:id", ProductUpdate),
        (Method::DELETE, "/v1/products/:id", ProductDelete),
        (Method::POST, "/v1/prices", PriceCreate),
        (Method::GET, "/v1/prices", PriceList),
        (Method::GET, "/v1/prices/:id", PriceRetrieve),
        (Method::POST, "/v1/prices/:id", PriceUpdate),
        (Method::POST, "/v1/tax_rates", TaxRateCreate),
        (Method::GET, "/v1/tax_rates", TaxRateList),
        (Method::GET, "/v1/tax_rates/:id", TaxRateRetrieve),
        (Method::POST, "/v1/tax_rates/:id", TaxRateUpdate),
        (Method::POST, "/v1/invoices", InvoiceCreate),
        (Method::GET, "/v1/invoices", InvoiceList),
        (Method::GET, "/v1/invoices/:id", InvoiceRetrieve),
        (Method::DELETE, "/v1/invoices/:id", InvoiceDelete),
        (Method::POST, "/v1/invoices/:id/finalize", InvoiceFinalize),
        (Method::POST, "/v1/invoices/:id/pay", InvoicePay),
        (Method::POST, "/v1/invoices/:id/void", InvoiceVoid),
        (
            Method::POST,
            "/v1/invoices/:id/mark_uncollectible",
            InvoiceUncollectible,
        ),
        (Method::GET, "/v1/invoices/:id/lines", InvoiceLines),
        (Method::GET, "/v1/invoices/:id/pdf", InvoicePdf),
        (Method::POST, "/v1/invoiceitems", InvoiceItemCreate),
        (Method::GET, "/v1/invoiceitems", InvoiceItemList),
        (Method::GET, "/v1/invoiceitems/:id", InvoiceItemRetrieve),
        (Method::POST, "/v1/subscriptions", SubscriptionCreate),
        (Method::GET, "/v1/subscriptions", SubscriptionList),
        (Method::GET, "/v1/subscriptions/:id", SubscriptionRetrieve),
        (Method::POST, "/v1/subscriptions/:id", SubscriptionUpdate),
        (Method::DELETE, "/v1/subscriptions/:id", SubscriptionCancel),
        (
            Method::POST,
            "/v1/test_helpers/test_clocks",
            TestClockCreate,
        ),
        (Method::GET, "/v1/test_helpers/test_clocks", TestClockList),
        (
            Method::GET,
            "/v1/test_helpers/test_clocks/:id",
            TestClockRetrieve,
        ),
        (
            Method::DELETE,
            "/v1/test_helpers/test_clocks/:id",
            TestClockDelete,
        ),
        (
            Method::POST,
            "/v1/test_helpers/test_clocks/:id/advance",
            TestClockAdvance,
        ),
        (Method::POST, "/v1/checkout/sessions", CheckoutCreate),
        (Method::GET, "/v1/checkout/sessions", CheckoutList),
        (Method::GET, "/v1/checkout/sessions/:id", CheckoutRetrieve),
        (
            Method::GET,
            "/v1/checkout/sessions/:id/line_items",
            CheckoutLineItems,
        ),
        (
            Method::POST,
            "/v1/checkout/sessions/:id/expire",
            CheckoutExpire,
        ),
        (
            Method::POST,
            "/v1/billing_portal/sessions",
            PortalSessionCreate,
        ),
        (
            Method::POST,
            "/v1/billing_portal/configurations",
            PortalConfigCreate,
        ),
        (
            Method::GET,
            "/v1/billing_portal/configurations",
            PortalConfigList,
        ),
        (
            Method::GET,
            "/v1/billing_portal/configurations/:id",
            PortalConfigRetrieve,
        ),
        (
            Method::POST,
            "/v1/billing_portal/configurations/:id",
            PortalConfigUpdate,
        ),
    ]
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    pub endpoint: Endpoint,
    /// The `:id` segment, if the template has one.
    pub id: String,
    pub label: &'static str,
}

impl Route {
    pub fn label(&self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::Docs { .. } => "/docs",
            Route::Api(r) => r.label,
            Route::ApiMethodNotAllowed => "method_not_allowed",
            Route::ThreeDsPage { .. } => "/pay/3ds/:intent",
            Route::ThreeDsComplete { .. } => "/pay/3ds/:intent/complete",
            Route::BankPage { choose: false, .. } => "/pay/bank/:intent",
            Route::BankPage { choose: true, .. } => "/pay/bank/:intent (choose)",
            Route::BankReturn => "/pay/bank/return",
            Route::BankNotification { .. } => "/pay/bank/notifications/:mode/:bank",
            Route::GriffinWebhook { .. } => "/webhooks/griffin/:mode",
            Route::Sandbox => "/sandbox",
            Route::InvoicePublicPdf { .. } => "/invoices/:id/pdf",
            Route::Checkout { step, .. } => match step {
                CheckoutStep::Page => "/pay/checkout/:id",
                CheckoutStep::Return => "/pay/checkout/:id/return",
                CheckoutStep::Callback => "/pay/checkout/:id/callback",
                CheckoutStep::Bank => "/pay/checkout/:id/bank",
            },
            Route::Portal { step, .. } => step.label(),
            Route::Dashboard { .. } => "/dashboard",
            Route::ApiUnknown | Route::NotFound => "unknown",
        }
    }
}

/// A step of the portal page: what the browser asked for, with the ids its path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalStep {
    /// The session's link: `GET …/t/:token` binds the browser.
    Open {
        token: String,
    },
    /// The page itself.
    Home,
    /// `GET`: the cancel confirmation; `POST`: cancel.
    CancelForm {
        subscription: String,
    },
    Cancel {
        subscription: String,
    },
    Resume {
        subscription: String,
    },
    SwitchPrice {
        subscription: String,
    },
    /// `POST`: off to the hosted card page; `GET …/card/saved`: back from it.
    Card,
    CardSaved,
    Details,
    InvoicePdf {
        invoice: String,
    },
}

impl PortalStep {
    fn label(&self) -> &'static str {
        match self {
            PortalStep::Open { .. } => "/portal/:session/t/:token",
            PortalStep::Home => "/portal/:session",
            PortalStep::CancelForm { .. } => "/portal/:session/subscriptions/:id/cancel (form)",
            PortalStep::Cancel { .. } => "/portal/:session/subscriptions/:id/cancel",
            PortalStep::Resume { .. } => "/portal/:session/subscriptions/:id/resume",
            PortalStep::SwitchPrice { .. } => "/portal/:session/subscriptions/:id/price",
            PortalStep::Card => "/portal/:session/card",
            PortalStep::CardSaved => "/portal/:session/card/saved",
            PortalStep::Details => "/portal/:session/details",
            PortalStep::InvoicePdf { .. } => "/portal/:session/invoices/:id/pdf",
        }
    }

    /// Whether the step reads a form body.
    pub fn posts(&self) -> bool {
        matches!(
            self,
            PortalStep::Cancel { .. }
                | PortalStep::Resume { .. }
                | PortalStep::SwitchPrice { .. }
                | PortalStep::Card
                | PortalStep::Details
        )
    }
}

fn portal_step(method: &Method, rest: &[&str]) -> Option<PortalStep> {
    let id = |s: &&str| s.to_string();
    Some(match (method, rest) {
        (&Method::GET, ["t", token]) => PortalStep::Open { token: id(token) },
        (&Method::GET, []) => PortalStep::Home,
        (&Method::GET, ["subscriptions", sub, "cancel"]) => PortalStep::CancelForm {
            subscription: id(sub),
        },
        (&Method::POST, ["subscriptions", sub, "cancel"]) => PortalStep::Cancel {
            subscription: id(sub),
        },
        (&Method::POST, ["subscriptions", sub, "resume"]) => PortalStep::Resume {
            subscription: id(sub),
        },
        (&Method::POST, ["subscriptions", sub, "price"]) => PortalStep::SwitchPrice {
            subscription: id(sub),
        },
        (&Method::POST, ["card"]) => PortalStep::Card,
        (&Method::GET, ["card", "saved"]) => PortalStep::CardSaved,
        (&Method::POST, ["details"]) => PortalStep::Details,
        (&Method::GET, ["invoices", inv, "pdf"]) => PortalStep::InvoicePdf { invoice: id(inv) },
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutStep {
    Page,
    /// The customer's browser, posted back by the hosted page.
    Return,
    /// The gateway, server to server.
    Callback,
    /// The payer chose Pay by Bank.
    Bank,
}

fn checkout(project: &str, mode: &str, session: &str, step: CheckoutStep) -> Route {
    Route::Checkout {
        project: project.into(),
        mode: mode.into(),
        session: session.into(),
        step,
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

fn matches(template: &str, segs: &[&str]) -> Option<String> {
    // Walked side by side, not collected: every API request is tried against each template.
    let mut parts = template.trim_start_matches('/').split('/');
    let mut id = "";
    for s in segs {
        match parts.next()? {
            ":id" => id = s,
            t if t == *s => {}
            _ => return None,
        }
    }
    match parts.next() {
        Some(_) => None,
        None => Some(id.to_string()),
    }
}

pub fn route(method: &Method, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (&Method::GET, ["healthz"]) => Route::Healthz,
        (&Method::GET, ["readyz"]) => Route::Readyz,
        (&Method::GET, ["metrics"]) => Route::Metrics,
        (&Method::GET, ["openapi.json"]) => Route::OpenApi,
        (&Method::GET, ["docs"]) => Route::Docs {
            page: String::new(),
        },
        (&Method::GET, ["docs", page]) => Route::Docs {
            page: page.to_string(),
        },
        (_, ["sandbox", ..]) => Route::Sandbox,
        (&Method::GET, ["invoices", project, mode, invoice, file]) if file.ends_with(".pdf") => {
            Route::InvoicePublicPdf {
                project: project.to_string(),
                mode: mode.to_string(),
                invoice: invoice.to_string(),
                token: file.trim_end_matches(".pdf").to_string(),
            }
        }
        (&Method::GET, ["pay", "checkout", project, mode, session]) => {
            checkout(project, mode, session, CheckoutStep::Page)
        }
        (&Method::POST, ["pay", "checkout", project, mode, session, "return"]) => {
            checkout(project, mode, session, CheckoutStep::Return)
        }
        (&Method::POST, ["pay", "checkout", project, mode, session, "callback"]) => {
            checkout(project, mode, session, CheckoutStep::Callback)
        }
        (&Method::POST, ["pay", "checkout", project, mode, session, "bank"]) => {
            checkout(project, mode, session, CheckoutStep::Bank)
        }
        (&Method::GET, ["dashboard", ..]) => Route::Dashboard { post: false },
        (&Method::POST, ["dashboard", ..]) => Route::Dashboard { post: true },
        (m, ["portal", project, mode, session, rest @ ..]) => match portal_step(m, rest) {
            Some(step) => Route::Portal {
                project: project.to_string(),
                mode: mode.to_string(),
                session: session.to_string(),
                step,
            },
            None => Route::NotFound,
        },
        (&Method::GET, ["pay", "bank", "return"]) => Route::BankReturn,
        (&Method::POST, ["webhooks", "griffin", mode]) => Route::GriffinWebhook {
            mode: mode.to_string(),
        },
        (&Method::POST, ["pay", "bank", "notifications", mode, bank]) => Route::BankNotification {
            mode: mode.to_string(),
            bank: bank.to_string(),
        },
        (m @ (&Method::GET | &Method::POST), ["pay", "bank", project, mode, intent]) => {
            Route::BankPage {
                project: project.to_string(),
                mode: mode.to_string(),
                intent: intent.to_string(),
                choose: m == Method::POST,
            }
        }
        (&Method::GET, ["pay", "3ds", project, mode, intent]) => Route::ThreeDsPage {
            project: project.to_string(),
            mode: mode.to_string(),
            intent: intent.to_string(),
        },
        (&Method::POST, ["pay", "3ds", project, mode, intent, "complete"]) => {
            Route::ThreeDsComplete {
                project: project.to_string(),
                mode: mode.to_string(),
                intent: intent.to_string(),
            }
        }
        (_, ["v1", ..]) => {
            let mut other_method = false;
            for (m, template, endpoint) in API {
                if let Some(id) = matches(template, &segs) {
                    if m == method {
                        return Route::Api(ApiRoute {
                            endpoint: *endpoint,
                            id,
                            label: template,
                        });
                    }
                    other_method = true;
                }
            }
            if other_method {
                Route::ApiMethodNotAllowed
            } else {
                Route::ApiUnknown
            }
        }
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_labels() {
        assert_eq!(route(&Method::GET, "/healthz"), Route::Healthz);
        let r = route(&Method::GET, &normalize("//v1//customers/cus_1/"));
        assert_eq!(
            r,
            Route::Api(ApiRoute {
                endpoint: Endpoint::CustomerRetrieve,
                id: "cus_1".into(),
                label: "/v1/customers/:id"
            })
        );
        let r = route(&Method::POST, "/v1/payment_intents/pi_1/confirm");
        assert!(matches!(
            r,
            Route::Api(ApiRoute {
                endpoint: Endpoint::IntentConfirm,
                ..
            })
        ));
        assert_eq!(
            route(&Method::PUT, "/v1/customers"),
            Route::ApiMethodNotAllowed
        );
        assert_eq!(route(&Method::GET, "/v1/nothing"), Route::ApiUnknown);
        // A path longer or shorter than every template of its prefix matches none.
        assert_eq!(
            route(&Method::GET, "/v1/customers/cus_1/extra"),
            Route::ApiUnknown
        );
        assert_eq!(
            route(&Method::POST, "/v1/payment_intents/pi_1/"),
            Route::ApiUnknown
        );
        match route(&Method::POST, "/v1/payment_intents/pi_2/capture") {
            Route::Api(a) => assert_eq!(
                (a.endpoint, a.id.as_str()),
                (Endpoint::IntentCapture, "pi_2")
            ),
            other => panic!("capture routed to {other:?}"),
        }
        assert_eq!(route(&Method::GET, "/nothing"), Route::NotFound);
        assert_eq!(
            route(&Method::DELETE, "/v1/customers/x").label(),
            "/v1/customers/:id"
        );
        assert_eq!(route(&Method::POST, "/sandbox/direct"), Route::Sandbox);
        match route(
            &Method::POST,
            "/portal/prj_1/test/bps_1/subscriptions/sub_9/cancel",
        ) {
            Route::Portal { session, step, .. } => assert_eq!(
                (session.as_str(), step),
                (
                    "bps_1",
                    PortalStep::Cancel {
                        subscription: "sub_9".into()
                    }
                )
            ),
            other => panic!("portal cancel routed to {other:?}"),
        }
        assert_eq!(
            route(&Method::DELETE, "/portal/prj_1/test/bps_1"),
            Route::NotFound
        );
        assert!(matches!(
            route(&Method::POST, "/v1/billing_portal/sessions"),
            Route::Api(ApiRoute {
                endpoint: Endpoint::PortalSessionCreate,
                ..
            })
        ));
        assert_eq!(
            route(&Method::POST, "/webhooks/griffin/test"),
            Route::GriffinWebhook {
                mode: "test".into()
            }
        );
        assert_eq!(
            route(&Method::GET, "/webhooks/griffin/test"),
            Route::NotFound
        );
    }
}
