//! Cursor pagination as Stripe does it: `limit` (1 to 100, default 10), `starting_after` (older
//! than this id) or `ending_before` (newer than this id), never both. Pages are always newest
//! first; `has_more` tells whether more exist in the direction of travel.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::params::{Field, Params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The newest page.
    Start,
    /// Objects older than this id.
    After(String),
    /// Objects newer than this id.
    Before(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub limit: usize,
    pub cursor: Cursor,
}

impl ListParams {
    /// Read `limit`, `starting_after` and `ending_before`. Cursor ids must carry `prefix`.
    pub fn take(params: &mut Params, prefix: &str) -> Result<Self, ApiError> {
        let limit = params
            .integer(&["limit"], 1, 100)?
            .into_option()
            .unwrap_or(10) as usize;
        let after = params.string_max(&["starting_after"], 200)?.into_option();
        let before = params.string_max(&["ending_before"], 200)?.into_option();
        let check = |name: &str, id: &str| {
            if crate::ids::is_valid(prefix, id) {
                Ok(())
            } else {
                Err(ApiError::invalid_param(
                    "parameter_invalid",
                    name,
                    format!("Invalid {name}: {id:?} is not an id of this list."),
                ))
            }
        };
        let cursor = match (after, before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_param(
                    "parameter_invalid",
                    "ending_before",
                    "starting_after and ending_before cannot be used together.",
                ));
            }
            (Some(a), None) => {
                check("starting_after", &a)?;
                Cursor::After(a)
            }
            (None, Some(b)) => {
                check("ending_before", &b)?;
                Cursor::Before(b)
            }
            (None, None) => Cursor::Start,
        };
        Ok(Self { limit, cursor })
    }
}

/// A page of objects, serialized from their stored JSON without re-parsing it.
#[derive(Debug, Serialize)]
pub struct ListPage<'a> {
    pub object: &'static str,
    pub data: Vec<&'a RawValue>,
    pub has_more: bool,
    pub url: &'a str,
}

/// Whether a filter field was given at all.
pub fn given<T>(f: &Field<T>) -> bool {
    !f.is_absent()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_form;

    fn read(s: &str) -> Result<ListParams, ApiError> {
        let mut p = Params::new(parse_form(s.as_bytes()).expect("form"));
        ListParams::take(&mut p, "cus")
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(read("").expect("ok").limit, 10);
        assert_eq!(read("limit=100").expect("ok").limit, 100);
        assert_eq!(
            read("limit=0").expect_err("0").param.as_deref(),
            Some("limit")
        );
        assert_eq!(
            read("limit=101").expect_err("101").param.as_deref(),
            Some("limit")
        );
        assert_eq!(
            read("limit=ten").expect_err("ten").code,
            Some("parameter_invalid_integer")
        );
    }

    #[test]
    fn cursors_are_exclusive_and_checked() {
        assert_eq!(
            read("starting_after=cus_A").expect("ok").cursor,
            Cursor::After("cus_A".into())
        );
        assert!(read("starting_after=cus_A&ending_before=cus_B").is_err());
        assert_eq!(
            read("ending_before=pi_A")
                .expect_err("wrong prefix")
                .param
                .as_deref(),
            Some("ending_before")
        );
    }
}
