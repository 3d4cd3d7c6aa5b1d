//! Which way a page of a list is read, and between which lexicographic bounds.

use calmony_protocol::list::{Cursor, ListParams};

/// Which way a page is read: `Desc` newest first, `Asc` oldest first (the caller reverses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Desc,
    Asc,
}

impl Direction {
    /// The command that reads a range this way: `desc` (takes the upper bound first) or `asc`.
    pub fn range(self, desc: &str, asc: &str, key: &str, min: &str, max: &str) -> redis::Cmd {
        let (name, first, second) = match self {
            Direction::Desc => (desc, max, min),
            Direction::Asc => (asc, min, max),
        };
        redis::cmd(name).arg(key).arg(first).arg(second).to_owned()
    }

    /// As the list script takes it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Direction::Desc => "desc",
            Direction::Asc => "asc",
        }
    }
}

/// A page's direction and lexicographic bounds (`-`, `+`, `[id`, `(id`) from its cursor and
/// the inclusive `lo` and `hi` of a `created` range. An `ending_before` page is read oldest
/// first from the cursor; the caller turns it newest first.
pub fn lex_range(
    list: &ListParams,
    lo: Option<&str>,
    hi: Option<&str>,
) -> (Direction, String, String) {
    let lo_bound = lo.map_or("-".to_string(), |l| format!("[{l}"));
    let hi_bound = hi.map_or("+".to_string(), |h| format!("[{h}"));
    match &list.cursor {
        Cursor::Start => (Direction::Desc, lo_bound, hi_bound),
        Cursor::After(id) => {
            let max = match hi {
                Some(h) if h < id.as_str() => hi_bound,
                _ => format!("({id}"),
            };
            (Direction::Desc, lo_bound, max)
        }
        Cursor::Before(id) => {
            let min = match lo {
                Some(l) if l > id.as_str() => lo_bound,
                _ => format!("({id}"),
            };
            (Direction::Asc, min, hi_bound)
        }
    }
}
