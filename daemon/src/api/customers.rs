//! `/v1/customers`.

use calmony_actors::{Reply, RequestContext, Store, customers};
use calmony_protocol::{ApiError, Params};

use crate::edge::routes::ApiRoute;

pub async fn handle(
    store: &Store,
    ctx: &RequestContext,
    route: ApiRoute,
    params: Params,
) -> Result<Reply, ApiError> {
    match route {
        ApiRoute::CustomersCreate => customers::create(store, ctx, params).await,
        ApiRoute::CustomersList => customers::list(store, ctx, params).await,
        ApiRoute::CustomerRetrieve(id) => customers::retrieve(store, ctx, &id, params).await,
        ApiRoute::CustomerUpdate(id) => customers::update(store, ctx, &id, params).await,
        ApiRoute::CustomerDelete(id) => customers::delete(store, ctx, &id, params).await,
    }
}
