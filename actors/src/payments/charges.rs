//! Charges: read-only views of each attempt to move money (`latest_charge`).

use calmony_protocol::list::ListParams;
use calmony_protocol::params::Params;
use calmony_protocol::{ApiError, charge, ids};

use super::Payments;
use crate::context::{Reply, RequestContext};
use crate::resource::page_body;

pub async fn retrieve_charge(
    p: &Payments,
    ctx: &RequestContext,
    id: &str,
    mut params: Params,
) -> Result<Reply, ApiError> {
    params.expand()?;
    params.finish()?;
    if !ids::is_valid(charge::PREFIX, id) {
        return Err(ApiError::no_such("charge", id, "id"));
    }
    let rec = p
        .store
        .get(&ctx.scope.record(id))
        .await?
        .ok_or_else(|| ApiError::no_such("charge", id, "id"))?;
    Ok(Reply::ok(rec.json))
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
