//! `expand[]` on every answer: the paths checked by `calmony_protocol::expand::plan` are
//! walked over the answer's JSON, each id replaced by its object as the API would answer it
//! (read from its record in the caller's project and mode). One walk for every endpoint, so
//! a new endpoint expands by naming what it answers, not by code of its own.
//!
//! An id whose object is not found (deleted, or never this caller's) stays an id, as a
//! field that is `null` stays `null`.

use std::collections::HashMap;

use calmony_protocol::ApiError;
use calmony_protocol::expand::{Path, Step};
use serde_json::Value;

use crate::store::{Scope, Store};

/// Expand `paths` in `body` (an answer's JSON); an answer that is not JSON is left as it is.
pub async fn apply(
    store: &Store,
    scope: &Scope,
    body: String,
    paths: &[Path],
) -> Result<String, ApiError> {
    if paths.is_empty() {
        return Ok(body);
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&body) else {
        return Ok(body);
    };
    let mut loaded: HashMap<String, Option<Value>> = HashMap::new();
    for path in paths {
        let mut here: Vec<&mut Value> = if path.each {
            match value.get_mut("data") {
                Some(Value::Array(items)) => items.iter_mut().collect(),
                _ => Vec::new(),
            }
        } else {
            vec![&mut value]
        };
        for step in &path.steps {
            let mut next = Vec::new();
            for obj in here {
                if let Some(slot) = field(obj, step) {
                    expand_slot(store, scope, slot, &mut loaded).await?;
                    if slot.is_object() {
                        next.push(slot);
                    }
                }
            }
            here = next;
        }
    }
    Ok(value.to_string())
}

/// The place in `obj` that `step` names (a field, or a field of a sub-hash).
fn field<'a>(obj: &'a mut Value, step: &Step) -> Option<&'a mut Value> {
    step.keys.iter().try_fold(obj, |v, k| v.get_mut(*k))
}

/// Replace an id with its object; an object already expanded (by an earlier path) stays.
async fn expand_slot(
    store: &Store,
    scope: &Scope,
    slot: &mut Value,
    loaded: &mut HashMap<String, Option<Value>>,
) -> Result<(), ApiError> {
    let Some(id) = slot.as_str().map(str::to_string) else {
        return Ok(());
    };
    if !loaded.contains_key(&id) {
        let object = match store.get(&scope.record(&id)).await? {
            Some(rec) => serde_json::from_str(&rec.json).ok(),
            None => None,
        };
        loaded.insert(id.clone(), object);
    }
    if let Some(Some(object)) = loaded.get(&id) {
        *slot = object.clone();
    }
    Ok(())
}
