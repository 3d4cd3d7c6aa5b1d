//! The `/v1` resources: a thin mapping from each endpoint to the operation that does the
//! work (in `calmony_actors`). Customers go straight to the store; the payment commands
//! (create, confirm, capture, cancel, refund) go to the IntentProcessor actor
//! (`calmony_actors::system::intent_processor`) by message; invoice and subscription charges run
//! the payments code on the request's task, and every gateway call goes to the
//! CardstreamGateway actor by message.

use calmony_actors::billing::{self, clocks};
use calmony_actors::money::api as money;
use calmony_actors::payments;
use calmony_actors::system::PaymentOp;
use calmony_actors::webhooks::{endpoints, events};
use calmony_actors::{Reply, RequestContext, customers, payment_methods};
use calmony_protocol::expand::Answer;
use calmony_protocol::{ApiError, Params};

use crate::edge::routes::{ApiRoute, Endpoint};
use crate::state::AppState;

/// Run the endpoint, with its `expand[]` checked before it does anything and applied to its
/// answer after (`calmony_actors::expand`), the same way for every endpoint.
pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    route: ApiRoute,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let paths = params.expand()?;
    let plan = if paths.is_empty() {
        Vec::new()
    } else {
        match answers(route.endpoint) {
            Some(answer) => calmony_protocol::expand::plan(answer, &paths)?,
            None => calmony_protocol::expand::plan(Answer::One("none"), &paths)?,
        }
    };
    let mut reply = run(state, ctx, route, params).await?;
    if !plan.is_empty() && reply.status == 200 {
        reply.body =
            calmony_actors::expand::apply(&state.payments.store, &ctx.scope, reply.body, &plan)
                .await?;
    }
    Ok(reply)
}

/// What each endpoint answers, for `expand[]`.
fn answers(endpoint: Endpoint) -> Option<Answer> {
    use Answer::{List, One};
    use Endpoint::*;
    Some(match endpoint {
        CustomerCreate | CustomerRetrieve | CustomerUpdate => One("customer"),
        CustomerList => List("customer"),
        CustomerPaymentMethods | PaymentMethodList => List("payment_method"),
        PaymentMethodCreate | PaymentMethodRetrieve | PaymentMethodAttach | PaymentMethodDetach => {
            One("payment_method")
        }
        IntentCreate | IntentRetrieve | IntentUpdate | IntentConfirm | IntentCapture
        | IntentCancel => One("payment_intent"),
        IntentList => List("payment_intent"),
        RefundCreate | RefundRetrieve => One("refund"),
        RefundList => List("refund"),
        ChargeRetrieve => One("charge"),
        ChargeList => List("charge"),
        ProductCreate | ProductRetrieve | ProductUpdate => One("product"),
        ProductList => List("product"),
        PriceCreate | PriceRetrieve | PriceUpdate => One("price"),
        PriceList => List("price"),
        InvoiceCreate | InvoiceRetrieve | InvoiceFinalize | InvoicePay | InvoiceVoid
        | InvoiceUncollectible => One("invoice"),
        InvoiceList => List("invoice"),
        InvoiceItemCreate | InvoiceItemRetrieve => One("invoiceitem"),
        InvoiceItemList => List("invoiceitem"),
        SubscriptionCreate | SubscriptionRetrieve | SubscriptionUpdate | SubscriptionCancel => {
            One("subscription")
        }
        SubscriptionList => List("subscription"),
        CheckoutCreate | CheckoutRetrieve | CheckoutExpire => One("checkout.session"),
        CheckoutList => List("checkout.session"),
        PortalSessionCreate => One("billing_portal.session"),
        PortalConfigCreate | PortalConfigRetrieve | PortalConfigUpdate => {
            One("billing_portal.configuration")
        }
        PortalConfigList => List("billing_portal.configuration"),
        // Nothing of these can be expanded: any path is refused by name.
        BalanceRetrieve
        | BalanceTxnList
        | BalanceTxnRetrieve
        | PayoutList
        | PayoutRetrieve
        | CustomerDelete
        | ProductDelete
        | EventList
        | EventRetrieve
        | EventAttempts
        | EventResend
        | HookEndpointCreate
        | HookEndpointList
        | HookEndpointRetrieve
        | HookEndpointUpdate
        | HookEndpointDelete
        | HookEndpointRollSecret
        | HookEndpointAttempts
        | TaxRateCreate
        | TaxRateList
        | TaxRateRetrieve
        | TaxRateUpdate
        | InvoiceDelete
        | InvoiceLines
        | InvoicePdf
        | TestClockCreate
        | TestClockList
        | TestClockRetrieve
        | TestClockDelete
        | TestClockAdvance
        | CheckoutLineItems => return None,
    })
}

async fn run(
    state: &AppState,
    ctx: &RequestContext,
    route: ApiRoute,
    params: Params,
) -> Result<Reply, ApiError> {
    use Endpoint::*;
    let p = &state.payments;
    // Payment commands go to the IntentProcessor actor, by message.
    let i = &state.intents;
    let w = &state.webhooks;
    let b = &state.billing;
    let store = &p.store;
    let id = route.id.as_str();
    match route.endpoint {
        CustomerCreate => customers::create(store, ctx, params).await,
        CustomerList => customers::list(store, ctx, params).await,
        CustomerRetrieve => customers::retrieve(store, ctx, id, params).await,
        CustomerUpdate => {
            let card_change = params
                .keys()
                .iter()
                .any(|k| k == "invoice_settings" || k == "invoiceSettings");
            let reply = customers::update(store, ctx, id, params).await?;
            if card_change {
                // A new default card retries the customer's open subscription invoices at once.
                if let Err(e) = billing::retry_for_customer(b, &ctx.scope, id).await {
                    tracing::warn!(customer = id, error = %e.message, "retrying open invoices failed");
                }
            }
            Ok(reply)
        }
        CustomerDelete => customers::delete(store, ctx, id, params).await,
        CustomerPaymentMethods => payment_methods::list(p, ctx, Some(id.to_string()), params).await,
        PaymentMethodCreate => payment_methods::create(p, ctx, params).await,
        PaymentMethodList => payment_methods::list(p, ctx, None, params).await,
        PaymentMethodRetrieve => payment_methods::retrieve(p, ctx, id, params).await,
        PaymentMethodAttach => payment_methods::attach(p, ctx, id, params).await,
        PaymentMethodDetach => payment_methods::detach(p, ctx, id, params).await,
        IntentCreate => i.run(PaymentOp::Create, ctx.clone(), id, params).await,
        IntentList => payments::list(p, ctx, params).await,
        IntentRetrieve => payments::retrieve(p, ctx, id, params).await,
        IntentUpdate => payments::update(p, ctx, id, params).await,
        IntentConfirm => i.run(PaymentOp::Confirm, ctx.clone(), id, params).await,
        IntentCapture => i.run(PaymentOp::Capture, ctx.clone(), id, params).await,
        IntentCancel => i.run(PaymentOp::Cancel, ctx.clone(), id, params).await,
        RefundCreate => i.run(PaymentOp::Refund, ctx.clone(), id, params).await,
        RefundList => payments::list_refunds(p, ctx, params).await,
        RefundRetrieve => payments::retrieve_refund(p, ctx, id, params).await,
        BalanceRetrieve => money::retrieve_balance(store, ctx, params).await,
        BalanceTxnList => money::list_balance_transactions(store, ctx, params).await,
        BalanceTxnRetrieve => money::retrieve_balance_transaction(store, ctx, id, params).await,
        PayoutList => money::list_payouts(store, ctx, params).await,
        PayoutRetrieve => money::retrieve_payout(store, ctx, id, params).await,
        ChargeList => payments::list_charges(p, ctx, params).await,
        ChargeRetrieve => payments::retrieve_charge(p, ctx, id, params).await,
        EventList => events::list(w, ctx, params).await,
        EventRetrieve => events::retrieve(w, ctx, id, params).await,
        EventAttempts => events::attempts(w, ctx, id, params).await,
        EventResend => events::resend(w, ctx, id, params).await,
        HookEndpointCreate => endpoints::create(w, ctx, params).await,
        HookEndpointList => endpoints::list(w, ctx, params).await,
        HookEndpointRetrieve => endpoints::retrieve(w, ctx, id, params).await,
        HookEndpointUpdate => endpoints::update(w, ctx, id, params).await,
        HookEndpointDelete => endpoints::delete(w, ctx, id, params).await,
        HookEndpointRollSecret => endpoints::roll_secret(w, ctx, id, params).await,
        HookEndpointAttempts => endpoints::attempts(w, ctx, id, params).await,
        ProductCreate => billing::create_product(store, ctx, params).await,
        ProductList => billing::list_products(store, ctx, params).await,
        ProductRetrieve => billing::retrieve_product(store, ctx, id, params).await,
        ProductUpdate => billing::update_product(store, ctx, id, params).await,
        ProductDelete => billing::delete_product(store, ctx, id, params).await,
        PriceCreate => billing::create_price(store, ctx, params).await,
        PriceList => billing::list_prices(store, ctx, params).await,
        PriceRetrieve => billing::retrieve_price(store, ctx, id, params).await,
        PriceUpdate => billing::update_price(store, ctx, id, params).await,
        TaxRateCreate => billing::create_tax_rate(store, ctx, params).await,
        TaxRateList => billing::list_tax_rates(store, ctx, params).await,
        TaxRateRetrieve => billing::retrieve_tax_rate(store, ctx, id, params).await,
        TaxRateUpdate => billing::update_tax_rate(store, ctx, id, params).await,
        InvoiceCreate => billing::create_invoice(b, ctx, params).await,
        InvoiceList => billing::list_invoices(b, ctx, params).await,
        InvoiceRetrieve => billing::retrieve_invoice(b, ctx, id, params).await,
        InvoiceDelete => billing::delete_invoice(b, ctx, id, params).await,
        InvoiceFinalize => billing::finalize_invoice(b, ctx, id, params).await,
        InvoicePay => billing::pay_invoice(b, ctx, id, params).await,
        InvoiceVoid => billing::void_invoice(b, ctx, id, params).await,
        InvoiceUncollectible => billing::mark_uncollectible(b, ctx, id, params).await,
        InvoiceLines => billing::invoice_lines(b, ctx, id, params).await,
        // Answered by the edge (a PDF, not JSON).
        InvoicePdf => Err(ApiError::unknown_route("GET", "/v1/invoices/:id/pdf")),
        InvoiceItemCreate => billing::create_invoice_item(b, ctx, params).await,
        InvoiceItemList => billing::list_invoice_items(b, ctx, params).await,
        InvoiceItemRetrieve => billing::retrieve_invoice_item(b, ctx, id, params).await,
        SubscriptionCreate => billing::create_subscription(b, ctx, params).await,
        SubscriptionList => billing::list_subscriptions(b, ctx, params).await,
        SubscriptionRetrieve => billing::retrieve_subscription(b, ctx, id, params).await,
        SubscriptionUpdate => billing::update_subscription(b, ctx, id, params).await,
        SubscriptionCancel => billing::cancel_subscription(b, ctx, id, params).await,
        TestClockCreate => clocks::create(b, ctx, params).await,
        TestClockList => clocks::list(b, ctx, params).await,
        TestClockRetrieve => clocks::retrieve(b, ctx, id, params).await,
        TestClockDelete => clocks::delete(b, ctx, id, params).await,
        TestClockAdvance => clocks::advance(b, ctx, id, params).await,
        CheckoutCreate => state.checkout.create(ctx, params).await,
        CheckoutList => state.checkout.list(ctx, params).await,
        CheckoutRetrieve => state.checkout.retrieve(ctx, id, params).await,
        CheckoutLineItems => state.checkout.line_items(ctx, id, params).await,
        CheckoutExpire => {
            params.finish()?;
            state.checkout.expire(&ctx.scope, id, Some(ctx)).await
        }
        PortalSessionCreate => state.portal.create_session(ctx, params).await,
        PortalConfigCreate => state.portal.create_configuration(ctx, params).await,
        PortalConfigList => state.portal.list_configurations(ctx, params).await,
        PortalConfigRetrieve => state.portal.retrieve_configuration(ctx, id, params).await,
        PortalConfigUpdate => state.portal.update_configuration(ctx, id, params).await,
    }
}
