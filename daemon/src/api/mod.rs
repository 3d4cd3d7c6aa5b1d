//! The `/v1` resources: one module per resource, each a thin mapping from a route to the
//! operation that does the work.

mod customers;

use calmony_actors::{Reply, RequestContext, Store};
use calmony_protocol::{ApiError, Params};

use crate::edge::routes::ApiRoute;

pub async fn dispatch(
    store: &Store,
    ctx: &RequestContext,
    route: ApiRoute,
    params: Params,
) -> Result<Reply, ApiError> {
    match route {
        ApiRoute::CustomersCreate
        | ApiRoute::CustomersList
        | ApiRoute::CustomerRetrieve(_)
        | ApiRoute::CustomerUpdate(_)
        | ApiRoute::CustomerDelete(_) => customers::handle(store, ctx, route, params).await,
    }
}
