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

/// One page of a list kept inside its object (an invoice's lines, a session's line items),
/// which Stripe pages in the object's own order, not newest first: `starting_after` a line
/// gives the lines after it, `ending_before` the ones before it. Returns the page and
/// `has_more`; a cursor that is not a line of this list is refused naming its parameter.
pub fn page_embedded<'a, T>(
    items: &'a [T],
    id_of: impl Fn(&T) -> &str,
    list: &ListParams,
) -> Result<(&'a [T], bool), ApiError> {
    let position = |name: &str, id: &str| {
        items.iter().position(|i| id_of(i) == id).ok_or_else(|| {
            ApiError::invalid_param(
                "resource_missing",
                name,
                format!("Invalid {name}: {id:?} is not an item of this list."),
            )
        })
    };
    Ok(match &list.cursor {
        Cursor::Start => {
            let end = list.limit.min(items.len());
            (&items[..end], end < items.len())
        }
        Cursor::After(id) => {
            let start = position("starting_after", id)? + 1;
            let end = (start + list.limit).min(items.len());
            (&items[start..end], end < items.len())
        }
        Cursor::Before(id) => {
            let end = position("ending_before", id)?;
            let start = end.saturating_sub(list.limit);
            (&items[start..end], start > 0)
        }
    })
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
    fn embedded_lists_page_in_their_own_order() {
        let lines: Vec<String> = (0..25).map(|i| format!("il_{i}")).collect();
        let page = |limit: usize, cursor: Cursor| {
            page_embedded(&lines, String::as_str, &ListParams { limit, cursor })
                .map(|(p, more)| (p.first().cloned(), p.len(), more))
        };
        let at = |s: &str| Some(s.to_string());
        for (limit, cursor, want) in [
            (10, Cursor::Start, (at("il_0"), 10, true)),
            (10, Cursor::After("il_9".into()), (at("il_10"), 10, true)),
            (10, Cursor::After("il_19".into()), (at("il_20"), 5, false)),
            (10, Cursor::After("il_24".into()), (None, 0, false)),
            (3, Cursor::Before("il_10".into()), (at("il_7"), 3, true)),
            (30, Cursor::Before("il_10".into()), (at("il_0"), 10, false)),
            (100, Cursor::Start, (at("il_0"), 25, false)),
        ] {
            assert_eq!(
                page(limit, cursor.clone()).expect("page"),
                want,
                "{limit} {cursor:?}"
            );
        }
        let e = page(3, Cursor::After("il_99".into())).expect_err("not a line");
        assert_eq!(e.param.as_deref(), Some("starting_after"));
        let e = page(3, Cursor::Before("il_99".into())).expect_err("not a line");
        assert_eq!(e.param.as_deref(), Some("ending_before"));
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
