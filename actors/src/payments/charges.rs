//! Charges: read-only views of each attempt to move money (`latest_charge`).

use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::{ApiError, charge};

use super::Payments;
use crate::context::{Reply, RequestContext};
use crate::resource::{page_body, retrieve_stored};

pub async fn retrieve_charge(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    params: Params,
) -> Result<Reply, ApiError> {
    retrieve_stored(&p.store, ctx, charge::PREFIX, "charge", id, params).await
}

pub async fn list_charges(
    p: &Payments,
    ctx: &RequestContext,
    mut params: Params,
) -> Result<Reply, ApiError> {
    let list = ListParams::take(&mut params, charge::PREFIX)?;
    params.expand()?;
    params.finish()?;
    let (items, has_more) = p
        .store
        .page(&ctx.scope, &ctx.scope.key("charges"), &list)
        .await?;
    page_body("/v1/charges", &items, has_more).map(Reply::ok)
}
