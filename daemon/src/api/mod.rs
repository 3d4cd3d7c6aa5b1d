//! The `/v1` resources: a thin mapping from each endpoint to the operation that does the
//! work (in `calmony_actors`). Customers go straight to the store; everything that moves money
//! goes through the IntentProcessor ([`Payments`]).

use calmony_actors::payments;
use calmony_actors::webhooks::{endpoints, events};
use calmony_actors::{Reply, RequestContext, customers, payment_methods};
use calmony_protocol::{ApiError, Params};

use crate::edge::AppState;
use crate::edge::routes::{ApiRoute, Endpoint};

pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    route: ApiRoute,
    params: Params,
) -> Result<Reply, ApiError> {
    use Endpoint::*;
    let p = &state.payments;
    let w = &state.webhooks;
    let store = &p.store;
    let id = route.id.as_str();
    match route.endpoint {
        CustomerCreate => customers::create(store, ctx, params).await,
        CustomerList => customers::list(store, ctx, params).await,
        CustomerRetrieve => customers::retrieve(store, ctx, id, params).await,
        CustomerUpdate => customers::update(store, ctx, id, params).await,
        CustomerDelete => customers::delete(store, ctx, id, params).await,
        CustomerPaymentMethods => payment_methods::list(p, ctx, Some(id.to_string()), params).await,
        PaymentMethodCreate => payment_methods::create(p, ctx, params).await,
        PaymentMethodList => payment_methods::list(p, ctx, None, params).await,
        PaymentMethodRetrieve => payment_methods::retrieve(p, ctx, id, params).await,
        PaymentMethodAttach => payment_methods::attach(p, ctx, id, params).await,
        PaymentMethodDetach => payment_methods::detach(p, ctx, id, params).await,
        IntentCreate => payments::create(p, ctx, params).await,
        IntentList => payments::list(p, ctx, params).await,
        IntentRetrieve => payments::retrieve(p, ctx, id, params).await,
        IntentUpdate => payments::update(p, ctx, id, params).await,
        IntentConfirm => payments::confirm(p, ctx, id, params).await,
        IntentCapture => payments::capture(p, ctx, id, params).await,
        IntentCancel => payments::cancel(p, ctx, id, params).await,
        RefundCreate => payments::create_refund(p, ctx, params).await,
        RefundList => payments::list_refunds(p, ctx, params).await,
        RefundRetrieve => payments::retrieve_refund(p, ctx, id, params).await,
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
    }
}
