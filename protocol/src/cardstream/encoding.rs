//! The gateway's form encoding: PHP's `urlencode` one way, PHP's `urldecode` the other.
//!
//! The gateway is written in PHP and hashes `http_build_query` output, so our encoder must
//! produce the same bytes, not merely an equivalent URL: PHP follows RFC 1738, which encodes
//! `~`, `*`, `!`, `'`, `(` and `)` where most URL libraries (and RFC 3986) leave them bare. One
//! byte of difference and every signature fails, which is why this is written out here rather
//! than borrowed from a URL crate.
//!
//! Decoding is lenient the way PHP's is: `+` is a space, `%XX` is a byte, and a `%` that does not
//! start a valid escape is kept as it is. Only the UTF-8 check is strict, because our fields are
//! Rust strings.

use std::string::FromUtf8Error;

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Encode `s` exactly as PHP's `urlencode()` does (the RFC 1738 rules `http_build_query` uses).
///
/// `A–Z a–z 0–9 - _ .` pass through, a space becomes `+`, and every other UTF-8 byte becomes
/// `%XX` in uppercase hex: `~` is `%7E`, `*` is `%2A`, `£` is `%C2%A3`.
pub fn php_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    push_php_urlencoded(&mut out, s);
    out
}

/// [`php_urlencode`] appending to `out`, so building a whole body allocates once.
pub(crate) fn push_php_urlencoded(out: &mut String, s: &str) {
    // Runs of bytes that stand for themselves are copied whole: most values are all of them.
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if unreserved(b) {
            continue;
        }
        // A run is ASCII, so it starts and ends on character boundaries (an empty one may
        // sit inside a character, and `get` gives nothing for it).
        out.push_str(s.get(run..i).unwrap_or_default());
        if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(b >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(b & 0x0f)]));
        }
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
}

/// Bytes PHP's `urlencode` leaves as they are.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// Decode one name or value of a form body: `+` is a space, `%XX` a byte (either case of hex).
pub(crate) fn form_decode(raw: &[u8]) -> Result<String, FromUtf8Error> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (
                raw.get(i + 1).and_then(hex_value),
                raw.get(i + 2).and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                // Not an escape: PHP keeps the `%` literally.
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
}

fn hex_value(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Split a field name into its root and, for a record field, the sub-key:
/// `threeDSRequest[threeDSMethodData]` is `("threeDSRequest", Some("threeDSMethodData"))`.
///
/// The sub-key is everything between the first `[` and the final `]`, so a deeper name such as
/// `items[0][description]` keeps `0][description` as one opaque sub-key and is rebuilt
/// byte-for-byte when encoded. A name that does not end in `]`, or starts with `[`, is a plain
/// field name.
pub(crate) fn split_name(name: &str) -> (&str, Option<&str>) {
    match (name.find('['), name.strip_suffix(']')) {
        (Some(open), Some(inner)) if open > 0 => (&name[..open], inner.get(open + 1..)),
        _ => (name, None),
    }
}

/// Turn every CRLF, LFCR and lone CR in an *encoded* string into LF (`%0A`), as the gateway does
/// before hashing (PHP: `preg_replace('/%0D%0A|%0A%0D|%0D/i', '%0A', …)`).
///
/// Working on the encoded text means a value that literally reads `%0D` (sent as `%250D`) is
/// left alone. Every `%` in `php_urlencode` output starts an escape, so scanning from one `%` to
/// the next sees the same matches as the regex.
///
/// Most messages carry no carriage return at all: those are returned as they are, without a
/// copy (the scan for one was a visible share of a payment's signing).
pub(crate) fn normalise_line_endings(encoded: String) -> String {
    let has_cr = encoded
        .match_indices('%')
        .any(|(at, _)| starts_with_ignore_case(&encoded[at..], "%0D"));
    if !has_cr {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded.as_str();
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let matched = ["%0D%0A", "%0A%0D", "%0D"]
            .into_iter()
            .find(|line_end| starts_with_ignore_case(tail, line_end));
        let consumed = match matched {
            Some(line_end) => {
                out.push_str("%0A");
                line_end.len()
            }
            None => {
                out.push('%');
                1
            }
        };
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    out
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_urlencode_follows_rfc1738_not_rfc3986() {
        assert_eq!(php_urlencode("~"), "%7E");
        assert_eq!(php_urlencode("*"), "%2A");
        assert_eq!(php_urlencode("!"), "%21");
        assert_eq!(php_urlencode("'"), "%27");
        assert_eq!(php_urlencode("("), "%28");
        assert_eq!(php_urlencode(")"), "%29");
        assert_eq!(php_urlencode("£"), "%C2%A3");
        assert_eq!(php_urlencode(" "), "+");
        assert_eq!(php_urlencode("+"), "%2B");
        assert_eq!(php_urlencode("[]"), "%5B%5D");
        assert_eq!(php_urlencode("a-b_c.d"), "a-b_c.d");
        assert_eq!(php_urlencode("AZaz09"), "AZaz09");
        assert_eq!(php_urlencode("\r\n"), "%0D%0A");
        assert_eq!(php_urlencode(""), "");
    }

    #[test]
    fn runs_and_escapes_interleave_at_any_position() {
        assert_eq!(php_urlencode(""), "");
        assert_eq!(php_urlencode("£"), "%C2%A3");
        assert_eq!(php_urlencode("£a£"), "%C2%A3a%C2%A3");
        assert_eq!(php_urlencode("ab cd"), "ab+cd");
        assert_eq!(php_urlencode("x€"), "x%E2%82%AC");
        assert_eq!(php_urlencode("€x"), "%E2%82%ACx");
        assert_eq!(php_urlencode("a&b=c"), "a%26b%3Dc");
        // Every byte alone agrees with the byte-by-byte rule.
        for c in ['a', 'Z', '0', '-', '_', '.', ' ', '~', '%', 'é', '😀'] {
            let mut one = String::new();
            for b in c.to_string().bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        one.push(char::from(b))
                    }
                    b' ' => one.push('+'),
                    _ => one.push_str(&format!("%{b:02X}")),
                }
            }
            assert_eq!(php_urlencode(&c.to_string()), one, "{c}");
        }
    }

    #[test]
    fn form_decode_reads_plus_escapes_and_keeps_stray_percents() {
        assert_eq!(form_decode(b"a+b").as_deref(), Ok("a b"));
        assert_eq!(form_decode(b"%C2%a3%7e").as_deref(), Ok("£~"));
        assert_eq!(form_decode(b"%2B").as_deref(), Ok("+"));
        assert_eq!(form_decode(b"100%").as_deref(), Ok("100%"));
        assert_eq!(form_decode(b"%zz%4").as_deref(), Ok("%zz%4"));
        assert!(form_decode(b"%FF").is_err());
    }

    #[test]
    fn decoding_undoes_encoding() {
        let text = "Flat 6 ~ Primrose Rise *!'() £10 & 100% = a+b\r\n[x]";
        assert_eq!(
            form_decode(php_urlencode(text).as_bytes()).as_deref(),
            Ok(text)
        );
    }

    #[test]
    fn names_split_into_root_and_sub_key() {
        assert_eq!(split_name("amount"), ("amount", None));
        assert_eq!(
            split_name("threeDSRequest[threeDSMethodData]"),
            ("threeDSRequest", Some("threeDSMethodData"))
        );
        assert_eq!(
            split_name("items[0][description]"),
            ("items", Some("0][description"))
        );
        assert_eq!(split_name("a[]"), ("a", Some("")));
        assert_eq!(split_name("[a]"), ("[a]", None));
        assert_eq!(split_name("a[b"), ("a[b", None));
        assert_eq!(split_name("a]"), ("a]", None));
    }

    #[test]
    fn line_endings_are_normalised_like_the_gateway_regex() {
        assert_eq!(normalise_line_endings("a%0D%0Ab".into()), "a%0Ab");
        assert_eq!(normalise_line_endings("a%0A%0Db".into()), "a%0Ab");
        assert_eq!(normalise_line_endings("a%0Db".into()), "a%0Ab");
        assert_eq!(normalise_line_endings("a%0Ab".into()), "a%0Ab");
        assert_eq!(normalise_line_endings("%0d%0a".into()), "%0A");
        // LF CR LF: the first pair is LFCR, the last LF stands alone.
        assert_eq!(normalise_line_endings("%0A%0D%0A".into()), "%0A%0A");
        // A literal "%0D" in a value is encoded as %250D and must survive.
        assert_eq!(
            normalise_line_endings("%250D+%250D%250A".into()),
            "%250D+%250D%250A"
        );
        assert_eq!(normalise_line_endings("100%".into()), "100%");
        assert_eq!(normalise_line_endings("%0".into()), "%0");
    }
}
