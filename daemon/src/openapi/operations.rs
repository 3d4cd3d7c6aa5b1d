//! What each `/v1` endpoint is for and which parameters it takes: one row per endpoint of the
//! route table (`edge::routes::API`), keyed by its [`Endpoint`].
//!
//! Adding a route is one row here (the route-coverage test fails until it exists, and fails
//! when a row names an endpoint the table no longer routes). Parameter names are the ones the
//! handlers `take`; the first spelling is the canonical one and the rest are the aliases the
//! params code also accepts (`customer` / `customerId`). The source-scan test checks every name
//! the code takes appears here and every name here is one the code takes.

use crate::edge::routes::Endpoint;

/// A parameter's value, as the description shows it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A hash with these keys (`address[city]`).
    Obj(&'static [Param]),
    /// A list of hashes with these keys (`items[0][price]`).
    List(&'static [Param]),
    /// A list of strings (`expand[]`).
    Strs,
    /// Free-form string keys and values (`metadata[k]=v`).
    Map,
    /// A timestamp or a range hash (`created[gte]`).
    Range,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// The canonical name first, then its aliases.
    pub names: &'static [&'static str],
    pub kind: Kind,
    pub required: bool,
}

/// What an endpoint answers with on success.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    One(&'static str),
    List(&'static str),
    /// A `{id, object, deleted: true}` tombstone.
    Deleted(&'static str),
    /// The object, or its tombstone once deleted (a customer, as in Stripe).
    OneOrDeleted(&'static str),
    /// `application/pdf` bytes.
    Pdf,
}

#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub summary: &'static str,
    pub params: &'static [Param],
    pub answer: Answer,
}

const fn p(names: &'static [&'static str], kind: Kind) -> Param {
    Param {
        names,
        kind,
        required: false,
    }
}
const fn s(names: &'static [&'static str]) -> Param {
    p(names, Kind::Str)
}
const fn i(names: &'static [&'static str]) -> Param {
    p(names, Kind::Int)
}
const fn b(names: &'static [&'static str]) -> Param {
    p(names, Kind::Bool)
}
const fn e(names: &'static [&'static str], values: &'static [&'static str]) -> Param {
    p(names, Kind::Enum(values))
}
const fn o(names: &'static [&'static str], keys: &'static [Param]) -> Param {
    p(names, Kind::Obj(keys))
}
const fn l(names: &'static [&'static str], keys: &'static [Param]) -> Param {
    p(names, Kind::List(keys))
}
const fn ss(names: &'static [&'static str]) -> Param {
    p(names, Kind::Strs)
}
const fn req(param: Param) -> Param {
    Param {
        required: true,
        ..param
    }
}

const METADATA: Param = p(&["metadata"], Kind::Map);
const CREATED: Param = p(&["created"], Kind::Range);
const LIMIT: Param = i(&["limit"]);
const AFTER: Param = s(&["starting_after"]);
const BEFORE: Param = s(&["ending_before"]);
const CUSTOMER: Param = s(&["customer", "customerId"]);
const PAYMENT_METHOD: Param = s(&["payment_method", "paymentMethodId", "paymentMethod"]);
const ADDRESS: Param = o(
    &["address"],
    &[
        s(&["line1"]),
        s(&["line2"]),
        s(&["city"]),
        s(&["country"]),
        s(&["postal_code", "postalCode"]),
        s(&["state"]),
    ],
);
const CUSTOMER_FIELDS: &[Param] = &[
    s(&["email"]),
    s(&["name"]),
    s(&["description"]),
    s(&["phone"]),
    ADDRESS,
    ss(&["preferred_locales", "preferredLocales"]),
    e(&["tax_exempt", "taxExempt"], &["none", "exempt", "reverse"]),
    METADATA,
    s(&["test_clock", "testClock"]),
    o(
        &["invoice_settings", "invoiceSettings"],
        &[s(&["default_payment_method", "defaultPaymentMethod"])],
    ),
];
const CARD: Param = o(
    &["card"],
    &[
        req(s(&["number"])),
        req(i(&["exp_month", "expMonth"])),
        req(i(&["exp_year", "expYear"])),
        s(&["cvc"]),
    ],
);
const BILLING_DETAILS: Param = o(
    &["billing_details", "billingDetails"],
    &[s(&["name"]), s(&["email"]), s(&["phone"]), ADDRESS],
);
const RECURRING: Param = o(
    &["recurring"],
    &[
        req(e(&["interval"], &["month", "year"])),
        i(&["interval_count", "intervalCount"]),
        e(&["usage_type"], &["licensed"]),
    ],
);
const PRICE_DATA: Param = o(
    &["price_data", "priceData"],
    &[
        req(s(&["currency"])),
        s(&["product"]),
        i(&["unit_amount", "unitAmount"]),
        RECURRING,
        e(
            &["tax_behavior", "taxBehavior"],
            &["inclusive", "exclusive", "unspecified"],
        ),
    ],
);
const TAX_RATES: Param = ss(&["tax_rates", "taxRates"]);
const DEFAULT_TAX_RATES: Param = ss(&["default_tax_rates", "defaultTaxRates"]);
const COLLECTION: Param = e(
    &["collection_method", "collectionMethod"],
    &["charge_automatically", "send_invoice"],
);
const INTENT_FIELDS: &[Param] = &[
    req(i(&["amount"])),
    req(s(&["currency"])),
    CUSTOMER,
    PAYMENT_METHOD,
    s(&["description"]),
    b(&["confirm"]),
    s(&["receipt_email", "receiptEmail"]),
    s(&["statement_descriptor", "statementDescriptor"]),
    e(
        &["capture_method", "captureMethod"],
        &["automatic", "automatic_async", "manual"],
    ),
    ss(&["payment_method_types", "paymentMethodTypes"]),
    o(
        &["payment_method_data", "paymentMethodData"],
        &[req(e(&["type"], &["pay_by_bank"]))],
    ),
    s(&["return_url", "returnUrl"]),
    o(&["automatic_payment_methods"], &[b(&["enabled"])]),
    METADATA,
];
const ENDPOINT_FIELDS: &[Param] = &[
    req(s(&["url"])),
    req(ss(&["enabled_events", "enabledEvents"])),
    s(&["description"]),
    s(&["api_version", "apiVersion"]),
    b(&["connect"]),
    METADATA,
];
const ITEMS: Param = l(
    &["items"],
    &[
        s(&["price", "priceId"]),
        PRICE_DATA,
        i(&["quantity"]),
        TAX_RATES,
        METADATA,
    ],
);
const PORTAL_CONFIG: &[Param] = &[
    o(
        &["business_profile"],
        &[
            s(&["headline"]),
            s(&["privacy_policy_url"]),
            s(&["terms_of_service_url"]),
        ],
    ),
    s(&["default_return_url"]),
    s(&["name"]),
    o(&["login_page"], &[b(&["enabled"])]),
    o(
        &["features"],
        &[
            o(
                &["customer_update"],
                &[b(&["enabled"]), ss(&["allowed_updates"])],
            ),
            o(&["invoice_history"], &[b(&["enabled"])]),
            o(&["payment_method_update"], &[b(&["enabled"])]),
            o(
                &["subscription_cancel"],
                &[
                    b(&["enabled"]),
                    e(&["mode"], &["at_period_end", "immediately"]),
                    e(&["proration_behavior"], &["none"]),
                    o(
                        &["cancellation_reason"],
                        &[b(&["enabled"]), ss(&["options"])],
                    ),
                ],
            ),
            o(
                &["subscription_update"],
                &[
                    b(&["enabled"]),
                    ss(&["default_allowed_updates"]),
                    e(&["proration_behavior"], &["none"]),
                    l(&["products"], &[s(&["product"]), ss(&["prices"])]),
                ],
            ),
        ],
    ),
    METADATA,
];

/// The description of `endpoint`: a row of [`OPERATIONS`], if it has one.
pub fn describe(endpoint: Endpoint) -> Option<&'static Op> {
    OPERATIONS
        .iter()
        .find(|(e, _)| *e == endpoint)
        .map(|(_, op)| op)
}

const fn op(summary: &'static str, params: &'static [Param], answer: Answer) -> Op {
    Op {
        summary,
        params,
        answer,
    }
}

/// Every described endpoint. `expand[]` is added to every operation by the generator, and
/// `limit`/`starting_after`/`ending_before` are listed where the list takes them.
pub const OPERATIONS: &[(Endpoint, Op)] = {
    use Answer::{Deleted, List, One, OneOrDeleted, Pdf};
    use Endpoint::*;
    &[
        (
            CustomerCreate,
            op("Create a customer", CUSTOMER_FIELDS, One("customer")),
        ),
        (
            CustomerList,
            op(
                "List customers, newest first",
                &[LIMIT, AFTER, BEFORE, s(&["email"]), CREATED],
                List("customer"),
            ),
        ),
        (
            CustomerRetrieve,
            op(
                "Retrieve a customer; a deleted one answers with its tombstone",
                &[],
                OneOrDeleted("customer"),
            ),
        ),
        (
            CustomerUpdate,
            op(
                "Update a customer; an empty string unsets a field",
                CUSTOMER_FIELDS,
                One("customer"),
            ),
        ),
        (
            CustomerDelete,
            op("Delete a customer", &[], Deleted("customer")),
        ),
        (
            CustomerPaymentMethods,
            op(
                "List a customer's payment methods",
                &[LIMIT, AFTER, BEFORE, e(&["type"], &["card", "pay_by_bank"])],
                List("payment_method"),
            ),
        ),
        (
            PaymentMethodCreate,
            op(
                "Tokenise a card (or a Pay by Bank method) as a payment method",
                &[
                    e(&["type"], &["card", "pay_by_bank"]),
                    CARD,
                    o(&["pay_by_bank"], &[]),
                    CUSTOMER,
                    BILLING_DETAILS,
                    METADATA,
                ],
                One("payment_method"),
            ),
        ),
        (
            PaymentMethodList,
            op(
                "List payment methods",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    CUSTOMER,
                    e(&["type"], &["card", "pay_by_bank"]),
                ],
                List("payment_method"),
            ),
        ),
        (
            PaymentMethodRetrieve,
            op("Retrieve a payment method", &[], One("payment_method")),
        ),
        (
            PaymentMethodAttach,
            op(
                "Attach a payment method to a customer",
                &[req(CUSTOMER)],
                One("payment_method"),
            ),
        ),
        (
            PaymentMethodDetach,
            op(
                "Detach a payment method from its customer",
                &[],
                One("payment_method"),
            ),
        ),
        (
            IntentCreate,
            op(
                "Create a payment intent (and confirm it with `confirm=true`)",
                INTENT_FIELDS,
                One("payment_intent"),
            ),
        ),
        (
            IntentList,
            op(
                "List payment intents",
                &[LIMIT, AFTER, BEFORE, CUSTOMER, CREATED],
                List("payment_intent"),
            ),
        ),
        (
            IntentRetrieve,
            op(
                "Retrieve a payment intent",
                &[s(&["client_secret"])],
                One("payment_intent"),
            ),
        ),
        (
            IntentUpdate,
            op(
                "Update a payment intent before it is confirmed",
                &[
                    i(&["amount"]),
                    s(&["currency"]),
                    CUSTOMER,
                    PAYMENT_METHOD,
                    s(&["description"]),
                    s(&["receipt_email", "receiptEmail"]),
                    METADATA,
                ],
                One("payment_intent"),
            ),
        ),
        (
            IntentConfirm,
            op(
                "Confirm a payment intent: charge its payment method",
                &[
                    PAYMENT_METHOD,
                    s(&["return_url", "returnUrl"]),
                    o(
                        &["payment_method_data", "paymentMethodData"],
                        &[req(e(&["type"], &["pay_by_bank"]))],
                    ),
                ],
                One("payment_intent"),
            ),
        ),
        (
            IntentCapture,
            op(
                "Capture an authorised payment intent",
                &[i(&["amount_to_capture", "amountToCapture"])],
                One("payment_intent"),
            ),
        ),
        (
            IntentCancel,
            op(
                "Cancel a payment intent",
                &[e(
                    &["cancellation_reason", "cancellationReason"],
                    &[
                        "duplicate",
                        "fraudulent",
                        "requested_by_customer",
                        "abandoned",
                    ],
                )],
                One("payment_intent"),
            ),
        ),
        (
            RefundCreate,
            op(
                "Refund a payment, in whole or in part",
                &[
                    s(&["payment_intent", "paymentIntent", "paymentIntentId"]),
                    s(&["charge"]),
                    i(&["amount"]),
                    e(
                        &["reason"],
                        &["duplicate", "fraudulent", "requested_by_customer"],
                    ),
                    METADATA,
                ],
                One("refund"),
            ),
        ),
        (
            RefundList,
            op(
                "List refunds",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    s(&["payment_intent", "paymentIntent"]),
                ],
                List("refund"),
            ),
        ),
        (RefundRetrieve, op("Retrieve a refund", &[], One("refund"))),
        (
            BalanceRetrieve,
            op("Retrieve the balance", &[], One("balance")),
        ),
        (
            BalanceTxnList,
            op(
                "List balance transactions",
                &[LIMIT, AFTER, BEFORE, s(&["type"])],
                List("balance_transaction"),
            ),
        ),
        (
            BalanceTxnRetrieve,
            op(
                "Retrieve a balance transaction",
                &[],
                One("balance_transaction"),
            ),
        ),
        (
            PayoutList,
            op("List payouts", &[LIMIT, AFTER, BEFORE], List("payout")),
        ),
        (PayoutRetrieve, op("Retrieve a payout", &[], One("payout"))),
        (
            ChargeList,
            op("List charges", &[LIMIT, AFTER, BEFORE], List("charge")),
        ),
        (ChargeRetrieve, op("Retrieve a charge", &[], One("charge"))),
        (
            EventList,
            op(
                "List events, newest first (30 days are kept)",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    s(&["type"]),
                    ss(&["types"]),
                    b(&["delivery_success"]),
                    CREATED,
                ],
                List("event"),
            ),
        ),
        (EventRetrieve, op("Retrieve an event", &[], One("event"))),
        (
            EventAttempts,
            op(
                "List an event's delivery attempts",
                &[LIMIT, AFTER, BEFORE],
                List("webhook_attempt"),
            ),
        ),
        (
            EventResend,
            op(
                "Send an event again to a webhook endpoint",
                &[s(&["webhook_endpoint", "webhookEndpoint"])],
                One("event"),
            ),
        ),
        (
            HookEndpointCreate,
            op(
                "Register a webhook endpoint; the answer carries its signing secret once",
                ENDPOINT_FIELDS,
                One("webhook_endpoint"),
            ),
        ),
        (
            HookEndpointList,
            op(
                "List webhook endpoints",
                &[LIMIT, AFTER, BEFORE],
                List("webhook_endpoint"),
            ),
        ),
        (
            HookEndpointRetrieve,
            op("Retrieve a webhook endpoint", &[], One("webhook_endpoint")),
        ),
        (
            HookEndpointUpdate,
            op(
                "Update a webhook endpoint",
                &[
                    s(&["url"]),
                    ss(&["enabled_events", "enabledEvents"]),
                    s(&["description"]),
                    b(&["disabled"]),
                    METADATA,
                ],
                One("webhook_endpoint"),
            ),
        ),
        (
            HookEndpointDelete,
            op(
                "Delete a webhook endpoint",
                &[],
                Deleted("webhook_endpoint"),
            ),
        ),
        (
            HookEndpointRollSecret,
            op(
                "Roll a webhook endpoint's signing secret, the old one kept for a while",
                &[i(&["expires_in", "expiresIn"])],
                One("webhook_endpoint"),
            ),
        ),
        (
            HookEndpointAttempts,
            op(
                "List a webhook endpoint's delivery attempts",
                &[LIMIT, AFTER, BEFORE],
                List("webhook_attempt"),
            ),
        ),
        (
            ProductCreate,
            op(
                "Create a product",
                &[
                    req(s(&["name"])),
                    s(&["id"]),
                    s(&["description"]),
                    s(&["unit_label", "unitLabel"]),
                    b(&["active"]),
                    METADATA,
                    // Accepted for Stripe's clients, not used.
                    ss(&["images"]),
                    s(&["tax_code"]),
                    s(&["url"]),
                    s(&["statement_descriptor"]),
                ],
                One("product"),
            ),
        ),
        (
            ProductList,
            op(
                "List products",
                &[LIMIT, AFTER, BEFORE, b(&["active"])],
                List("product"),
            ),
        ),
        (
            ProductRetrieve,
            op("Retrieve a product", &[], One("product")),
        ),
        (
            ProductUpdate,
            op(
                "Update a product",
                &[s(&["name"]), s(&["description"]), b(&["active"]), METADATA],
                One("product"),
            ),
        ),
        (
            ProductDelete,
            op("Delete a product", &[], Deleted("product")),
        ),
        (
            PriceCreate,
            op(
                "Create a price (GBP), one-time or recurring",
                &[
                    req(s(&["currency"])),
                    i(&["unit_amount", "unitAmount"]),
                    s(&["product"]),
                    o(
                        &["product_data", "productData"],
                        &[
                            req(s(&["name"])),
                            s(&["description"]),
                            ss(&["images"]),
                            s(&["tax_code"]),
                        ],
                    ),
                    RECURRING,
                    e(
                        &["tax_behavior", "taxBehavior"],
                        &["inclusive", "exclusive", "unspecified"],
                    ),
                    s(&["nickname"]),
                    s(&["lookup_key", "lookupKey"]),
                    b(&["active"]),
                    METADATA,
                ],
                One("price"),
            ),
        ),
        (
            PriceList,
            op(
                "List prices",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    b(&["active"]),
                    s(&["product"]),
                    e(&["type"], &["one_time", "recurring"]),
                    s(&["currency"]),
                ],
                List("price"),
            ),
        ),
        (PriceRetrieve, op("Retrieve a price", &[], One("price"))),
        (
            PriceUpdate,
            op(
                "Update a price",
                &[b(&["active"]), s(&["nickname"]), METADATA],
                One("price"),
            ),
        ),
        (
            TaxRateCreate,
            op(
                "Create a tax rate",
                &[
                    req(s(&["display_name", "displayName"])),
                    req(p(&["percentage"], Kind::Str)),
                    req(b(&["inclusive"])),
                    b(&["active"]),
                    s(&["country"]),
                    s(&["description"]),
                    s(&["jurisdiction"]),
                    METADATA,
                    // Accepted for Stripe's clients, not used.
                    s(&["tax_type"]),
                    s(&["state"]),
                ],
                One("tax_rate"),
            ),
        ),
        (
            TaxRateList,
            op(
                "List tax rates",
                &[LIMIT, AFTER, BEFORE, b(&["active"]), b(&["inclusive"])],
                List("tax_rate"),
            ),
        ),
        (
            TaxRateRetrieve,
            op("Retrieve a tax rate", &[], One("tax_rate")),
        ),
        (
            TaxRateUpdate,
            op(
                "Update a tax rate",
                &[
                    b(&["active"]),
                    s(&["display_name", "displayName"]),
                    METADATA,
                ],
                One("tax_rate"),
            ),
        ),
        (
            InvoiceCreate,
            op(
                "Create a draft invoice for a customer",
                &[
                    req(CUSTOMER),
                    s(&["description"]),
                    COLLECTION,
                    i(&["days_until_due", "daysUntilDue"]),
                    s(&["default_payment_method", "defaultPaymentMethod"]),
                    DEFAULT_TAX_RATES,
                    e(&["pending_invoice_items_behavior"], &["include", "exclude"]),
                    METADATA,
                ],
                One("invoice"),
            ),
        ),
        (
            InvoiceList,
            op(
                "List invoices",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    CUSTOMER,
                    s(&["status"]),
                    s(&["subscription"]),
                    COLLECTION,
                    CREATED,
                    p(&["due_date"], Kind::Range),
                ],
                List("invoice"),
            ),
        ),
        (
            InvoiceRetrieve,
            op("Retrieve an invoice", &[], One("invoice")),
        ),
        (
            InvoiceDelete,
            op("Delete a draft invoice", &[], Deleted("invoice")),
        ),
        (
            InvoiceFinalize,
            op(
                "Finalise a draft invoice",
                &[b(&["auto_advance"])],
                One("invoice"),
            ),
        ),
        (
            InvoicePay,
            op(
                "Pay an open invoice",
                &[
                    s(&["payment_method", "paymentMethod"]),
                    b(&["paid_out_of_band"]),
                    // Accepted for Stripe's clients, not used.
                    b(&["off_session"]),
                    b(&["forgive"]),
                ],
                One("invoice"),
            ),
        ),
        (InvoiceVoid, op("Void an open invoice", &[], One("invoice"))),
        (
            InvoiceUncollectible,
            op("Mark an open invoice uncollectible", &[], One("invoice")),
        ),
        (
            InvoiceLines,
            op(
                "List an invoice's lines",
                &[LIMIT, AFTER, BEFORE],
                List("line_item"),
            ),
        ),
        (InvoicePdf, op("Download an invoice as a PDF", &[], Pdf)),
        (
            InvoiceItemCreate,
            op(
                "Add an item to a customer's next invoice (or a draft)",
                &[
                    req(CUSTOMER),
                    i(&["amount"]),
                    s(&["currency"]),
                    i(&["quantity"]),
                    i(&["unit_amount", "unitAmount"]),
                    s(&["price"]),
                    PRICE_DATA,
                    TAX_RATES,
                    s(&["description"]),
                    s(&["invoice"]),
                    METADATA,
                    // Accepted for Stripe's clients, not used.
                    p(&["period"], Kind::Range),
                    b(&["discountable"]),
                ],
                One("invoiceitem"),
            ),
        ),
        (
            InvoiceItemList,
            op(
                "List invoice items",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    s(&["customer"]),
                    b(&["pending"]),
                    s(&["invoice"]),
                ],
                List("invoiceitem"),
            ),
        ),
        (
            InvoiceItemRetrieve,
            op("Retrieve an invoice item", &[], One("invoiceitem")),
        ),
        (
            SubscriptionCreate,
            op(
                "Subscribe a customer to recurring prices",
                &[
                    req(CUSTOMER),
                    ITEMS,
                    i(&["trial_period_days", "trialPeriodDays"]),
                    p(&["trial_end", "trialEnd"], Kind::Str),
                    b(&["cancel_at_period_end", "cancelAtPeriodEnd"]),
                    DEFAULT_TAX_RATES,
                    s(&["default_payment_method", "defaultPaymentMethod"]),
                    s(&["description"]),
                    e(
                        &["payment_behavior", "paymentBehavior"],
                        &[
                            "allow_incomplete",
                            "default_incomplete",
                            "error_if_incomplete",
                        ],
                    ),
                    e(
                        &["collection_method", "collectionMethod"],
                        &["charge_automatically"],
                    ),
                    METADATA,
                    // Accepted for Stripe's clients, not used.
                    b(&["off_session"]),
                    e(
                        &["proration_behavior"],
                        &["create_prorations", "none", "always_invoice"],
                    ),
                ],
                One("subscription"),
            ),
        ),
        (
            SubscriptionList,
            op(
                "List subscriptions",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    CUSTOMER,
                    s(&["status"]),
                    s(&["price"]),
                    COLLECTION,
                    CREATED,
                ],
                List("subscription"),
            ),
        ),
        (
            SubscriptionRetrieve,
            op("Retrieve a subscription", &[], One("subscription")),
        ),
        (
            SubscriptionUpdate,
            op(
                "Change a subscription's prices, quantities or renewal",
                &[
                    ITEMS,
                    e(
                        &["proration_behavior", "prorationBehavior"],
                        &["create_prorations", "none", "always_invoice"],
                    ),
                    b(&["cancel_at_period_end", "cancelAtPeriodEnd"]),
                    DEFAULT_TAX_RATES,
                    s(&["default_payment_method", "defaultPaymentMethod"]),
                    e(
                        &["payment_behavior", "paymentBehavior"],
                        &[
                            "allow_incomplete",
                            "default_incomplete",
                            "error_if_incomplete",
                        ],
                    ),
                    e(
                        &["billing_cycle_anchor", "billingCycleAnchor"],
                        &["unchanged", "now"],
                    ),
                    s(&["description"]),
                    METADATA,
                ],
                One("subscription"),
            ),
        ),
        (
            SubscriptionCancel,
            op(
                "Cancel a subscription now",
                &[o(
                    &["cancellation_details"],
                    &[s(&["comment"]), s(&["feedback"])],
                )],
                One("subscription"),
            ),
        ),
        (
            TestClockCreate,
            op(
                "Create a test clock (test mode)",
                &[req(i(&["frozen_time", "frozenTime"])), s(&["name"])],
                One("test_helpers.test_clock"),
            ),
        ),
        (
            TestClockList,
            op(
                "List test clocks",
                &[LIMIT, AFTER, BEFORE],
                List("test_helpers.test_clock"),
            ),
        ),
        (
            TestClockRetrieve,
            op("Retrieve a test clock", &[], One("test_helpers.test_clock")),
        ),
        (
            TestClockDelete,
            op(
                "Delete a test clock and its customers' objects",
                &[],
                Deleted("test_helpers.test_clock"),
            ),
        ),
        (
            TestClockAdvance,
            op(
                "Advance a test clock: renewals, trials and retries fall due",
                &[req(i(&["frozen_time", "frozenTime"]))],
                One("test_helpers.test_clock"),
            ),
        ),
        (
            CheckoutCreate,
            op(
                "Create a hosted checkout session; send the customer to its `url`",
                &[
                    req(e(&["mode"], &["payment", "subscription", "setup"])),
                    s(&["success_url", "successUrl"]),
                    s(&["cancel_url", "cancelUrl"]),
                    CUSTOMER,
                    s(&["customer_email", "customerEmail"]),
                    l(
                        &["line_items", "lineItems"],
                        &[
                            s(&["price"]),
                            i(&["quantity"]),
                            o(
                                &["price_data", "priceData"],
                                &[
                                    req(s(&["currency"])),
                                    i(&["unit_amount", "unitAmount"]),
                                    s(&["product"]),
                                    o(
                                        &["product_data", "productData"],
                                        &[req(s(&["name"])), s(&["description"]), ss(&["images"])],
                                    ),
                                    RECURRING,
                                    e(
                                        &["tax_behavior"],
                                        &["inclusive", "exclusive", "unspecified"],
                                    ),
                                ],
                            ),
                        ],
                    ),
                    o(
                        &["payment_intent_data", "paymentIntentData"],
                        &[
                            s(&["description"]),
                            METADATA,
                            e(&["capture_method"], &["automatic", "manual"]),
                            s(&["setup_future_usage"]),
                        ],
                    ),
                    s(&["locale"]),
                    s(&["submit_type", "submitType"]),
                    e(&["ui_mode", "uiMode"], &["hosted"]),
                    i(&["expires_at", "expiresAt"]),
                    s(&["client_reference_id", "clientReferenceId"]),
                    ss(&["payment_method_types", "paymentMethodTypes"]),
                    METADATA,
                    // Accepted for Stripe's clients, not used.
                    s(&["billing_address_collection"]),
                    b(&["allow_promotion_codes"]),
                ],
                One("checkout.session"),
            ),
        ),
        (
            CheckoutList,
            op(
                "List checkout sessions",
                &[
                    LIMIT,
                    AFTER,
                    BEFORE,
                    s(&["payment_intent"]),
                    s(&["customer"]),
                    e(&["status"], &["open", "complete", "expired"]),
                ],
                List("checkout.session"),
            ),
        ),
        (
            CheckoutRetrieve,
            op("Retrieve a checkout session", &[], One("checkout.session")),
        ),
        (
            CheckoutLineItems,
            op(
                "List a checkout session's line items",
                &[LIMIT, AFTER, BEFORE],
                List("item"),
            ),
        ),
        (
            CheckoutExpire,
            op(
                "Expire an open checkout session",
                &[],
                One("checkout.session"),
            ),
        ),
        (
            PortalSessionCreate,
            op(
                "Open a customer portal session; send the customer to its `url`",
                &[
                    req(s(&["customer"])),
                    s(&["return_url"]),
                    s(&["configuration"]),
                    s(&["locale"]),
                    s(&["on_behalf_of"]),
                    o(
                        &["flow_data"],
                        &[
                            req(e(
                                &["type"],
                                &["payment_method_update", "subscription_cancel"],
                            )),
                            o(
                                &["after_completion"],
                                &[
                                    req(e(
                                        &["type"],
                                        &["portal_homepage", "redirect", "hosted_confirmation"],
                                    )),
                                    o(&["redirect"], &[req(s(&["return_url"]))]),
                                    o(&["hosted_confirmation"], &[s(&["custom_message"])]),
                                ],
                            ),
                            o(
                                &["subscription_cancel"],
                                &[req(s(&["subscription"])), o(&["retention"], &[])],
                            ),
                        ],
                    ),
                ],
                One("billing_portal.session"),
            ),
        ),
        (
            PortalConfigCreate,
            op(
                "Create a customer portal configuration",
                PORTAL_CONFIG,
                One("billing_portal.configuration"),
            ),
        ),
        (
            PortalConfigList,
            op(
                "List customer portal configurations",
                &[LIMIT, AFTER, BEFORE, b(&["active"]), b(&["is_default"])],
                List("billing_portal.configuration"),
            ),
        ),
        (
            PortalConfigRetrieve,
            op(
                "Retrieve a customer portal configuration",
                &[],
                One("billing_portal.configuration"),
            ),
        ),
        (
            PortalConfigUpdate,
            op(
                "Update a customer portal configuration",
                &[
                    b(&["active"]),
                    o(
                        &["business_profile"],
                        &[
                            s(&["headline"]),
                            s(&["privacy_policy_url"]),
                            s(&["terms_of_service_url"]),
                        ],
                    ),
                    s(&["default_return_url"]),
                    s(&["name"]),
                    o(&["login_page"], &[b(&["enabled"])]),
                    METADATA,
                ],
                One("billing_portal.configuration"),
            ),
        ),
    ]
};
