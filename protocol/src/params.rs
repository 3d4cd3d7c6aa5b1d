//! Request parameters, read the way Stripe reads them.
//!
//! Clients send JSON, or form encoding with Rack's bracket syntax (`metadata[k]=v`,
//! `line_items[0][price_data][currency]=gbp`, `expand[]=x`); GET and DELETE carry the same syntax
//! in the query string. Both become one JSON tree, so a handler reads parameters one way and
//! form and JSON requests give identical results.
//!
//! A handler *takes* each parameter it knows, by its snake_case name and any camelCase spelling
//! of the Calmony docs (`customer` / `customerId`). Whatever is left when it calls
//! [`Params::finish`] is unknown and answered with `parameter_unknown` naming it, so a typo never
//! silently does nothing. Form values are strings, so numbers and booleans accept their string
//! spellings; `""` stays distinct from absent, because on update it means "unset".

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Largest array index accepted in form keys (`a[1000]`), as stripe-mock caps it.
const MAX_FORM_INDEX: usize = 1000;
/// Deepest nesting accepted, in form keys and JSON alike.
const MAX_DEPTH: usize = 8;

/// Parse a form-encoded body or query string into a JSON object tree.
pub fn parse_form(input: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut root = Map::new();
    for (key, value) in form_urlencoded::parse(input) {
        if key.is_empty() {
            continue;
        }
        let path = split_key(&key)?;
        insert(&mut root, &key, &path, value.into_owned())?;
    }
    let mut root = Value::Object(root);
    arrays_from_index_maps(&mut root, "")?;
    match root {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// Parse a JSON body; it must be an object. Errors name the line and column.
pub fn parse_json(input: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(input) {
        Ok(Value::Object(map)) => {
            check_depth(&Value::Object(map.clone()), 0)?;
            Ok(map)
        }
        Ok(_) => Err(ApiError::malformed(
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(ApiError::malformed(format!(
            "Invalid JSON in the request body at line {} column {}: {}.",
            e.line(),
            e.column(),
            json_error_reason(&e)
        ))),
    }
}

fn json_error_reason(e: &serde_json::Error) -> String {
    // serde_json's message ends with " at line X column Y"; keep only the reason.
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn check_depth(v: &Value, depth: usize) -> Result<(), ApiError> {
    if depth > MAX_DEPTH {
        return Err(ApiError::malformed(format!(
            "The request nests objects more than {MAX_DEPTH} levels deep."
        )));
    }
    match v {
        Value::Object(m) => m.values().try_for_each(|c| check_depth(c, depth + 1)),
        Value::Array(a) => a.iter().try_for_each(|c| check_depth(c, depth + 1)),
        _ => Ok(()),
    }
}

/// `a[b][0][]` -> `["a", "b", "0", ""]`.
fn split_key(key: &str) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::invalid_param(
            "parameter_invalid",
            key,
            format!("Invalid parameter name: {key}"),
        )
    };
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() || head.contains(']') {
        return Err(bad());
    }
    let mut path = vec![head.to_string()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(bad)?;
        let close = inner.find(']').ok_or_else(bad)?;
        let seg = &inner[..close];
        if seg.contains('[') {
            return Err(bad());
        }
        path.push(seg.to_string());
        rest = &inner[close + 1..];
        if path.len() > MAX_DEPTH {
            return Err(ApiError::malformed(format!(
                "The parameter {key} nests more than {MAX_DEPTH} levels deep."
            )));
        }
    }
    Ok(path)
}

fn insert(
    map: &mut Map<String, Value>,
    full_key: &str,
    path: &[String],
    value: String,
) -> Result<(), ApiError> {
    let conflict = || {
        ApiError::invalid_param(
            "parameter_invalid",
            full_key,
            format!("The parameter {full_key} is given both as a value and as an object."),
        )
    };
    let (first, rest) = match path.split_first() {
        Some(x) => x,
        None => return Ok(()),
    };
    if rest.is_empty() {
        // A later scalar replaces an earlier one (Rack's rule), never an object.
        if matches!(map.get(first), Some(Value::Object(_) | Value::Array(_))) {
            return Err(conflict());
        }
        map.insert(first.clone(), Value::String(value));
        return Ok(());
    }
    if rest[0].is_empty() {
        // `a[]=x` appends; `a[][b]=x` is not supported by Stripe's clients either.
        if rest.len() > 1 {
            return Err(ApiError::malformed(format!(
                "Invalid parameter name: {full_key}"
            )));
        }
        let entry = map
            .entry(first.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        match entry {
            Value::Array(items) => {
                if items.len() >= MAX_FORM_INDEX {
                    return Err(ApiError::invalid_param(
                        "parameter_invalid_array",
                        first,
                        format!("The array {first} has more than {MAX_FORM_INDEX} items."),
                    ));
                }
                items.push(Value::String(value));
                Ok(())
            }
            _ => Err(conflict()),
        }
    } else {
        let entry = map
            .entry(first.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        match entry {
            Value::Object(child) => insert(child, full_key, rest, value),
            _ => Err(conflict()),
        }
    }
}

/// Objects whose keys are all integers become arrays ordered by index, as Stripe's clients send
/// arrays as `a[0]=x&a[1]=y`.
fn arrays_from_index_maps(v: &mut Value, name: &str) -> Result<(), ApiError> {
    if let Value::Object(map) = v {
        for (k, child) in map.iter_mut() {
            let child_name = if name.is_empty() {
                k.clone()
            } else {
                format!("{name}[{k}]")
            };
            arrays_from_index_maps(child, &child_name)?;
        }
        let all_indices = !map.is_empty() && map.keys().all(|k| is_index(k));
        if all_indices && !name.is_empty() {
            let mut items: Vec<(usize, Value)> = Vec::with_capacity(map.len());
            for (k, child) in std::mem::take(map) {
                let idx: usize = k.parse().unwrap_or(usize::MAX);
                if idx > MAX_FORM_INDEX {
                    return Err(ApiError::invalid_param(
                        "parameter_invalid_array",
                        name,
                        format!("Array indices in {name} must be at most {MAX_FORM_INDEX}."),
                    ));
                }
                items.push((idx, child));
            }
            items.sort_by_key(|(i, _)| *i);
            *v = Value::Array(items.into_iter().map(|(_, c)| c).collect());
        }
    }
    Ok(())
}

fn is_index(k: &str) -> bool {
    !k.is_empty() && k.len() <= 4 && k.bytes().all(|b| b.is_ascii_digit())
}

/// The Calmony docs' names for a parameter that are not its camelCase spelling: a
/// subscription's `default_payment_method` is the docs' `paymentMethodId`.
const DOCS_NAMES: &[(&str, &str)] = &[("default_payment_method", "paymentMethodId")];

/// Whether `alias` is another spelling of the parameter `name`: its camelCase form
/// (`customer_email` -> `customerEmail`), or that with `Id` for a parameter that names an
/// object, as the Calmony docs write them (`customer` -> `customerId`, `payment_method` ->
/// `paymentMethodId`), or the docs' own name for it ([`DOCS_NAMES`]). Nothing else is: two
/// different parameters are never one.
pub fn is_spelling_of(name: &str, alias: &str) -> bool {
    let camel = camel_case(name);
    alias == camel
        || alias.strip_suffix("Id") == Some(camel.as_str())
        || DOCS_NAMES.contains(&(name, alias))
}

/// `payment_method_types` -> `paymentMethodTypes`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for ch in name.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// A field that may be absent, explicitly unset (`""` or `null`), or set.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T> {
    #[default]
    Absent,
    Unset,
    Set(T),
}

impl<T> Field<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }

    /// The value for a create call, where unset and absent mean the same thing.
    pub fn into_option(self) -> Option<T> {
        match self {
            Field::Set(v) => Some(v),
            _ => None,
        }
    }
}

/// The parameters of one request (or of one nested object), consumed by name.
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: Map<String, Value>,
    /// How this object is named in errors: `""` at the top, `address` or `items[0]` below.
    prefix: String,
}

/// `card[...]` hashes anywhere in `map` with their number cut to the first six and last four
/// digits (what may be kept in clear) and their `cvc` left out.
pub fn without_card_data(map: &mut Map<String, Value>) {
    for (name, value) in map.iter_mut() {
        match value {
            Value::Object(inner) if name == "card" => {
                inner.remove("cvc");
                if let Some(Value::String(number)) = inner.get_mut("number") {
                    *number = truncated_pan(number);
                }
                without_card_data(inner);
            }
            Value::Object(inner) => without_card_data(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        without_card_data(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A card number as it may be kept: its first six and last four digits.
fn truncated_pan(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 13 {
        return "…".to_owned();
    }
    let head: String = digits[..6].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

impl Params {
    pub fn new(map: Map<String, Value>) -> Self {
        Self {
            map,
            prefix: String::new(),
        }
    }

    pub(crate) fn nested(map: Map<String, Value>, prefix: String) -> Self {
        Self { map, prefix }
    }

    /// The full name of a parameter of this object, as errors show it.
    pub fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}[{key}]", self.prefix)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The names of the parameters not yet taken.
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// The string under `key`, left in place (for reading ahead what a handler will take).
    pub fn peek_str(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    /// Canonical JSON of what is left, for fingerprinting (keys sorted, as `Map` keeps them).
    /// Card data never enters it (see [`without_card_data`]): the fingerprint is kept in Redis
    /// beside an idempotency key for a day, and a hash of a card number and its CVC could be
    /// reversed by trying every number of the card's BIN and last four.
    pub fn canonical(&self) -> String {
        let mut map = self.map.clone();
        without_card_data(&mut map);
        serde_json::to_string(&map).unwrap_or_default()
    }

    /// Remove and return one parameter, given as its snake_case name and then its other
    /// spellings (see [`is_spelling_of`]); two spellings of it in one request are ambiguous and
    /// refused. Only spellings are read: a different parameter named here by mistake is left
    /// for [`Params::finish`] to name as unknown, never called "the same parameter". To accept
    /// several different parameters without acting on them, use [`Params::ignore`].
    pub fn take(&mut self, names: &[&str]) -> Result<Option<(String, Value)>, ApiError> {
        let Some((&canonical, _)) = names.split_first() else {
            return Ok(None);
        };
        debug_assert!(
            names.iter().skip(1).all(|n| is_spelling_of(canonical, n)),
            "Params::take({names:?}): only spellings of one parameter are aliases"
        );
        let mut found: Option<(String, Value)> = None;
        for (i, n) in names.iter().enumerate() {
            if i > 0 && !is_spelling_of(canonical, n) {
                continue;
            }
            if let Some(v) = self.map.remove(*n) {
                if let Some((first, _)) = &found {
                    return Err(ApiError::invalid_param(
                        "parameter_invalid",
                        &self.name(n),
                        format!(
                            "{} and {} are the same parameter; send only one.",
                            first,
                            self.name(n)
                        ),
                    ));
                }
                found = Some((self.name(n), v));
            }
        }
        Ok(found)
    }

    /// Accept each of several different parameters and do nothing with it. Every name given
    /// here is listed, with why, in the README's "Accepted, not acted on".
    pub fn ignore(&mut self, names: &[&str]) {
        for n in names {
            self.map.remove(*n);
        }
    }

    /// A string parameter. Numbers and booleans are accepted and turned into their text.
    pub fn string(&mut self, names: &[&str]) -> Result<Field<String>, ApiError> {
        match self.take(names)? {
            None => Ok(Field::Absent),
            Some((_, Value::Null)) => Ok(Field::Unset),
            Some((_, Value::String(s))) if s.is_empty() => Ok(Field::Unset),
            Some((_, Value::String(s))) => Ok(Field::Set(s)),
            Some((_, Value::Number(n))) => Ok(Field::Set(n.to_string())),
            Some((_, Value::Bool(b))) => Ok(Field::Set(b.to_string())),
            Some((name, _)) => Err(ApiError::invalid_param(
                "parameter_invalid_string",
                &name,
                format!("Invalid string: {name} must be a string."),
            )),
        }
    }

    /// A string of at most `max` characters.
    pub fn string_max(&mut self, names: &[&str], max: usize) -> Result<Field<String>, ApiError> {
        let field = self.string(names)?;
        if let Field::Set(s) = &field
            && s.chars().count() > max
        {
            return Err(ApiError::invalid_param(
                "parameter_invalid_string",
                &self.name(names[0]),
                format!(
                    "Invalid string: {} must be at most {max} characters long.",
                    self.name(names[0])
                ),
            ));
        }
        Ok(field)
    }

    /// A required string.
    pub fn required_string(&mut self, names: &[&str], max: usize) -> Result<String, ApiError> {
        match self.string_max(names, max)? {
            Field::Set(s) => Ok(s),
            _ => Err(ApiError::missing_param(&self.name(names[0]))),
        }
    }

    /// An integer in `[min, max]`; form strings like `"2500"` are accepted.
    pub fn integer(&mut self, names: &[&str], min: i64, max: i64) -> Result<Field<i64>, ApiError> {
        let (name, value) = match self.take(names)? {
            None => return Ok(Field::Absent),
            Some((_, Value::Null)) => return Ok(Field::Unset),
            Some((_, Value::String(s))) if s.is_empty() => return Ok(Field::Unset),
            Some(x) => x,
        };
        let parsed = match &value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let n = parsed.ok_or_else(|| {
            ApiError::invalid_param(
                "parameter_invalid_integer",
                &name,
                format!("Invalid integer: {name} must be a whole number."),
            )
        })?;
        if n < min || n > max {
            return Err(ApiError::invalid_param(
                "parameter_invalid_integer",
                &name,
                format!("Invalid integer: {name} must be between {min} and {max}."),
            ));
        }
        Ok(Field::Set(n))
    }

    /// A boolean: JSON `true`/`false` or the words `true`/`false`.
    pub fn boolean(&mut self, names: &[&str]) -> Result<Field<bool>, ApiError> {
        match self.take(names)? {
            None => Ok(Field::Absent),
            Some((_, Value::Null)) => Ok(Field::Unset),
            Some((_, Value::Bool(b))) => Ok(Field::Set(b)),
            Some((_, Value::String(s))) if s == "true" => Ok(Field::Set(true)),
            Some((_, Value::String(s))) if s == "false" => Ok(Field::Set(false)),
            Some((_, Value::String(s))) if s.is_empty() => Ok(Field::Unset),
            Some((name, _)) => Err(ApiError::invalid_param(
                "parameter_invalid_boolean",
                &name,
                format!("Invalid boolean: {name} must be true or false."),
            )),
        }
    }

    /// A string that must be one of `allowed`.
    pub fn one_of(&mut self, names: &[&str], allowed: &[&str]) -> Result<Field<String>, ApiError> {
        let field = self.string(names)?;
        if let Field::Set(s) = &field
            && !allowed.contains(&s.as_str())
        {
            return Err(ApiError::invalid_param(
                "parameter_invalid_value",
                &self.name(names[0]),
                format!(
                    "Invalid {}: must be one of {}.",
                    self.name(names[0]),
                    allowed.join(", ")
                ),
            ));
        }
        Ok(field)
    }

    /// A nested object, read with its own `Params` whose errors carry the full name.
    pub fn object(&mut self, names: &[&str]) -> Result<Field<Params>, ApiError> {
        match self.take(names)? {
            None => Ok(Field::Absent),
            Some((_, Value::Null)) => Ok(Field::Unset),
            Some((_, Value::String(s))) if s.is_empty() => Ok(Field::Unset),
            Some((name, Value::Object(map))) => Ok(Field::Set(Params::nested(map, name))),
            Some((name, _)) => Err(ApiError::invalid_param(
                "parameter_invalid_object",
                &name,
                format!("Invalid object: {name} must be an object."),
            )),
        }
    }

    /// An array of values (form `a[0]=x` / `a[]=x`, or a JSON array).
    pub fn array(&mut self, names: &[&str]) -> Result<Field<Vec<(String, Value)>>, ApiError> {
        match self.take(names)? {
            None => Ok(Field::Absent),
            Some((_, Value::Null)) => Ok(Field::Unset),
            Some((_, Value::String(s))) if s.is_empty() => Ok(Field::Unset),
            Some((name, Value::Array(items))) => Ok(Field::Set(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{name}[{i}]"), v))
                    .collect(),
            )),
            Some((name, _)) => Err(ApiError::invalid_param(
                "parameter_invalid_array",
                &name,
                format!("Invalid array: {name} must be an array."),
            )),
        }
    }

    /// An array of strings.
    pub fn string_array(&mut self, names: &[&str]) -> Result<Field<Vec<String>>, ApiError> {
        let field = self.array(names)?;
        let items = match field {
            Field::Set(items) => items,
            Field::Absent => return Ok(Field::Absent),
            Field::Unset => return Ok(Field::Unset),
        };
        items
            .into_iter()
            .map(|(name, v)| match v {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::invalid_param(
                    "parameter_invalid_string",
                    &name,
                    format!("Invalid string: {name} must be a string."),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Field::Set)
    }

    /// Stripe's `expand[]`. The daemon's dispatch takes it before an endpoint runs, checks it
    /// against [`crate::expand`]'s table and applies it to the answer; an endpoint calling
    /// this finds it taken already.
    pub fn expand(&mut self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .string_array(&["expand"])?
            .into_option()
            .unwrap_or_default())
    }

    /// Everything left over is unknown: name the first one.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::unknown_param(&self.name(k))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn card_numbers_and_cvcs_never_reach_the_fingerprint() {
        for (body, kept, gone) in [
            (
                "type=card&card[number]=4242424242424242&card[cvc]=123&card[exp_month]=12",
                &["424242…4242", "\"exp_month\":\"12\""][..],
                &["4242424242424242", "123"][..],
            ),
            (
                "payment_method_data[card][number]=5555555555554444&payment_method_data[card][cvc]=987&amount=100",
                &["555555…4444", "\"amount\":\"100\""][..],
                &["5555555555554444", "987"][..],
            ),
            // Not a card: a `number` elsewhere is kept as sent.
            (
                "invoice_settings[number]=1234567890123",
                &["1234567890123"][..],
                &[][..],
            ),
        ] {
            let p = match crate::params::parse_form(body.as_bytes()) {
                Ok(map) => Params::new(map),
                Err(e) => panic!("{body}: {e:?}"),
            };
            let c = p.canonical();
            for k in kept {
                assert!(c.contains(k), "{body}: {c} lacks {k}");
            }
            for g in gone {
                assert!(!c.contains(g), "{body}: {c} has {g}");
            }
        }
    }

    use super::*;
    use serde_json::json;

    fn form(s: &str) -> Value {
        Value::Object(parse_form(s.as_bytes()).expect("parses"))
    }

    #[test]
    fn brackets_build_nested_objects_and_arrays() {
        let v = form(
            "email=a%40b.c&metadata[k]=v&metadata[empty]=&line_items[0][price_data][currency]=gbp\
             &line_items[0][quantity]=1&line_items[1][quantity]=2&expand[]=x&expand[]=y&n+m=a+b",
        );
        assert_eq!(
            v,
            json!({
                "email": "a@b.c",
                "metadata": {"k": "v", "empty": ""},
                "line_items": [{"price_data": {"currency": "gbp"}, "quantity": "1"}, {"quantity": "2"}],
                "expand": ["x", "y"],
                "n m": "a b"
            })
        );
    }

    #[test]
    fn percent_encoded_brackets_are_decoded() {
        assert_eq!(form("expand%5B0%5D=data.x"), json!({"expand": ["data.x"]}));
    }

    #[test]
    fn index_maps_are_ordered_by_index() {
        assert_eq!(form("a[10]=z&a[2]=y&a[0]=x"), json!({"a": ["x", "y", "z"]}));
    }

    #[test]
    fn metadata_with_numeric_keys_stays_an_object_at_top_level_only_arrays_nested() {
        // A top-level map is never turned into an array.
        assert_eq!(form("0=x"), json!({"0": "x"}));
    }

    #[test]
    fn malformed_keys_and_conflicts_are_errors() {
        assert!(parse_form(b"a[b=1").is_err());
        assert!(parse_form(b"[a]=1").is_err());
        let e = parse_form(b"a=1&a[b]=2").expect_err("conflict");
        assert_eq!(e.param.as_deref(), Some("a[b]"));
        assert!(parse_form(b"a[b]=1&a=2").is_err());
        assert!(parse_form(b"a[2000]=1").is_err());
        let deep = format!("a{}=1", "[x]".repeat(20));
        assert!(parse_form(deep.as_bytes()).is_err());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_a_panic() {
        let v = parse_form(b"name=%FF%FE").expect("parses");
        assert!(v["name"].as_str().is_some());
    }

    #[test]
    fn json_errors_name_the_position() {
        let e = parse_json(b"{\"a\": 1,\n \"b\": }").expect_err("bad json");
        assert!(e.message.contains("line 2 column"), "{}", e.message);
        assert_eq!(e.status, 400);
        assert!(parse_json(b"[1,2]").is_err());
        assert!(parse_json(b"  ").expect("empty is empty").is_empty());
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(30),
            "1".to_string() + &"}".repeat(30)
        );
        assert!(parse_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn typed_reads_accept_form_strings_and_name_bad_params() {
        let mut p = Params::new(parse_form(b"amount=2500&confirm=true&x=abc").expect("parses"));
        assert_eq!(
            p.integer(&["amount"], 1, 100)
                .expect_err("range")
                .param
                .as_deref(),
            Some("amount")
        );
        let mut p = Params::new(parse_form(b"amount=2500&confirm=true&x=abc").expect("parses"));
        assert_eq!(
            p.integer(&["amount"], 1, 10_000).expect("int"),
            Field::Set(2500)
        );
        assert_eq!(p.boolean(&["confirm"]).expect("bool"), Field::Set(true));
        let e = p.integer(&["x"], 0, 10).expect_err("not an int");
        assert_eq!(e.code, Some("parameter_invalid_integer"));
        assert_eq!(e.param.as_deref(), Some("x"));
        p.finish().expect("all taken");
    }

    #[test]
    fn camel_case_aliases_and_duplicates() {
        let mut p = Params::new(parse_json(br#"{"customerId": "cus_1"}"#).expect("json"));
        assert_eq!(
            p.string(&["customer", "customerId"]).expect("s"),
            Field::Set("cus_1".into())
        );
        let mut p =
            Params::new(parse_json(br#"{"customer": "a", "customerId": "b"}"#).expect("json"));
        assert!(p.string(&["customer", "customerId"]).is_err());
    }

    #[test]
    fn only_spellings_of_one_parameter_are_aliases() {
        for (name, alias, same) in [
            ("customer", "customerId", true),
            ("customer_email", "customerEmail", true),
            ("payment_method", "paymentMethod", true),
            ("payment_method", "paymentMethodId", true),
            ("payment_method_types", "paymentMethodTypes", true),
            ("api_version", "apiVersion", true),
            ("default_payment_method", "paymentMethodId", true),
            ("payment_method_types", "locale", false),
            ("description", "capture_method", false),
            ("description", "metadata", false),
            ("images", "tax_code", false),
            ("off_session", "forgive", false),
            ("limit", "starting_after", false),
            ("starting_after", "ending_before", false),
            ("amount_to_capture", "amount", false),
            ("customer", "customer_email", false),
            ("customer", "Customer", false),
        ] {
            assert_eq!(is_spelling_of(name, alias), same, "{name} / {alias}");
        }
    }

    #[test]
    fn different_parameters_sent_together_are_each_read() {
        // The pairs of issue 23, each sent together: each is read (or ignored) on its own.
        let mut p = Params::new(
            parse_form(b"payment_method_types[]=card&locale=en&limit=10&starting_after=x")
                .expect("parses"),
        );
        assert!(p.string_array(&["payment_method_types"]).is_ok());
        assert_eq!(p.string(&["locale"]).expect("s"), Field::Set("en".into()));
        p.ignore(&["limit", "starting_after", "ending_before"]);
        p.finish().expect("all taken");
        for body in [
            "description=d&capture_method=manual",
            "description=d&metadata[k]=v",
            "images[]=https%3A%2F%2Fx&tax_code=txcd_1",
            "off_session=true&forgive=true",
        ] {
            let mut p = Params::new(parse_form(body.as_bytes()).expect("parses"));
            let keys = p.keys();
            let names: Vec<&str> = keys.iter().map(String::as_str).collect();
            for n in &names {
                assert!(
                    p.take(&[n]).expect("one parameter").is_some(),
                    "{body}: {n}"
                );
            }
            p.finish().expect("all taken");
            let mut p = Params::new(parse_form(body.as_bytes()).expect("parses"));
            p.ignore(&names);
            p.finish().expect("all ignored");
        }
    }

    #[test]
    fn leftovers_are_unknown_and_nested_names_are_full() {
        let mut p = Params::new(parse_form(b"address[city]=x&address[bogus]=1").expect("parses"));
        let mut addr = match p.object(&["address"]).expect("obj") {
            Field::Set(a) => a,
            other => panic!("expected object, got {other:?}"),
        };
        assert_eq!(addr.string(&["city"]).expect("s"), Field::Set("x".into()));
        let e = addr.finish().expect_err("unknown");
        assert_eq!(e.code, Some("parameter_unknown"));
        assert_eq!(e.param.as_deref(), Some("address[bogus]"));
    }

    #[test]
    fn empty_string_unsets() {
        let mut p = Params::new(parse_form(b"description=").expect("parses"));
        assert_eq!(p.string(&["description"]).expect("s"), Field::Unset);
        let mut p = Params::new(parse_json(br#"{"description": null}"#).expect("json"));
        assert_eq!(p.string(&["description"]).expect("s"), Field::Unset);
    }

    #[test]
    fn form_and_json_give_the_same_tree_for_strings() {
        assert_eq!(
            form("name=Alice&metadata[a]=1"),
            Value::Object(parse_json(br#"{"name":"Alice","metadata":{"a":"1"}}"#).expect("json"))
        );
    }
}
