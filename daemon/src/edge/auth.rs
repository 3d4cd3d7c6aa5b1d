//! Reading the API key from `Authorization`: `Bearer <key>`, or Basic with the key as the user
//! name (what `curl -u sk_test_…:` and Stripe's docs send).

use base64::Engine;
use calmony_protocol::ApiError;

/// The raw key from the header, or the 401 to answer.
pub fn key_from_header(header: Option<&[u8]>) -> Result<String, ApiError> {
    let Some(raw) = header else {
        return Err(ApiError::authentication(
            "You did not provide an API key. Provide it in the Authorization header as \
             `Bearer sk_test_…` or as the Basic auth user name (curl -u sk_test_…:).",
        ));
    };
    let value = std::str::from_utf8(raw).map_err(|_| malformed())?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_string()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| malformed())?;
        let text = String::from_utf8(decoded).map_err(|_| malformed())?;
        text.split_once(':')
            .map(|(user, _)| user)
            .unwrap_or(&text)
            .to_string()
    } else {
        return Err(malformed());
    };
    if key.is_empty() {
        return Err(malformed());
    }
    Ok(key)
}

fn malformed() -> ApiError {
    ApiError::authentication(
        "Invalid Authorization header. Use `Bearer <secret key>` or Basic auth with the key as \
         the user name.",
    )
}

/// How an unknown key is named in the error: enough to recognise it, not enough to use it.
pub fn redact(key: &str) -> String {
    let tail = calmony_protocol::card::last4_of(key);
    let head: String = key.chars().take(8).collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic() {
        assert_eq!(
            key_from_header(Some(b"Bearer sk_test_x")).ok().as_deref(),
            Some("sk_test_x")
        );
        assert_eq!(
            key_from_header(Some(b"bearer  sk_test_x ")).ok().as_deref(),
            Some("sk_test_x")
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("sk_test_y:")
        );
        assert_eq!(
            key_from_header(Some(basic.as_bytes())).ok().as_deref(),
            Some("sk_test_y")
        );
    }

    #[test]
    fn missing_and_malformed_are_401() {
        for bad in [
            &b"Bearer"[..],
            b"Token x",
            b"Basic !!!",
            b"Bearer ",
            b"\xff\xfe",
        ] {
            assert_eq!(key_from_header(Some(bad)).expect_err("bad").status, 401);
        }
        assert_eq!(key_from_header(None).expect_err("missing").status, 401);
        assert_eq!(redact("sk_test_abcdefghijkl"), "sk_test_****ijkl");
    }
}
