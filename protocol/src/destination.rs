//! Where a webhook may be delivered: the address rules against server-side request forgery.
//!
//! A live endpoint must be a public server. An address is judged by what it *is*, not by how
//! it was spelled: the URL is parsed by the `url` crate, the parser the HTTP client itself
//! uses, so `https://2130706433/`, `0x7f000001`, `127.1` and `0177.0.0.1` all come out as
//! 127.0.0.1 here exactly as they would at connect time, and a backslash or `@` cannot make
//! this check see one host while the client connects to another. IPv6 forms that carry an
//! IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by the address they carry.
//!
//! This check at creation refuses the literals and the names that are local by definition;
//! names are judged again, on every address they resolve to, when a delivery connects (the
//! webhook client's resolver), since DNS can answer anything later.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a public destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// What the address is (`loopback`, `private`, ...).
    pub kind: &'static str,
    /// The IPv6 form that carried an IPv4 address, if any (`IPv4-mapped`, `NAT64`, `6to4`).
    pub via: Option<&'static str>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.via {
            Some(via) => write!(f, "{} (in its {via} IPv6 form)", self.kind),
            None => f.write_str(self.kind),
        }
    }
}

const fn refused(kind: &'static str) -> Option<Refusal> {
    Some(Refusal { kind, via: None })
}

/// Why `ip` is not a public destination, or `None` if it is one. Follows IANA's
/// special-purpose address registries: anything not globally reachable is refused.
pub fn refusal(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, ..) => refused("unspecified (this network, 0.0.0.0/8)"),
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => refused("private"),
        (100, 64..=127, _) => refused("shared address space (CGNAT, 100.64.0.0/10)"),
        (127, ..) => refused("loopback"),
        (169, 254, _) => refused("link-local"),
        (192, 0, 0) => refused("IETF protocol assignment (192.0.0.0/24)"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => refused("documentation"),
        (192, 88, 99) => refused("6to4 relay anycast"),
        (198, 18..=19, _) => refused("benchmarking (198.18.0.0/15)"),
        (224..=239, ..) => refused("multicast"),
        (240..=255, ..) => refused("reserved (240.0.0.0/4) or broadcast"),
        _ => None,
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let s = ip.segments();
    let embedded = |via: &'static str, v4: Ipv4Addr| {
        refusal_v4(v4).map(|r| Refusal {
            kind: r.kind,
            via: Some(via),
        })
    };
    let low32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if ip.is_unspecified() {
        return refused("unspecified");
    }
    if ip.is_loopback() {
        return refused("loopback");
    }
    match s {
        // ::ffff:a.b.c.d reaches a.b.c.d.
        [0, 0, 0, 0, 0, 0xffff, _, _] => embedded("IPv4-mapped", low32),
        // ::a.b.c.d, deprecated and never routed.
        [0, 0, 0, 0, 0, 0, _, _] => refused("IPv4-compatible"),
        // 64:ff9b::a.b.c.d: a NAT64 gateway forwards it to a.b.c.d.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => embedded("NAT64", low32),
        [0x64, 0xff9b, 1, ..] => refused("local-use NAT64 (64:ff9b:1::/48)"),
        [0x100, 0, 0, 0, ..] => refused("discard-only (100::/64)"),
        // 2002:AABB:CCDD::/48 is 6to4 for AA.BB.CC.DD.
        [0x2002, hi, lo, ..] => embedded(
            "6to4",
            Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8),
        ),
        [0x2001, 0xdb8, ..] => refused("documentation"),
        [0x2001, 0..=0x01ff, ..] => refused("IETF protocol assignment (2001::/23)"),
        [0x3fff, 0..=0x0fff, ..] => refused("documentation"),
        [0x5f00, ..] => refused("segment routing (5f00::/16)"),
        [x, ..] if x & 0xfe00 == 0xfc00 => refused("unique local (fc00::/7)"),
        [x, ..] if x & 0xffc0 == 0xfe80 => refused("link-local"),
        [x, ..] if x & 0xffc0 == 0xfec0 => refused("site-local"),
        [x, ..] if x & 0xff00 == 0xff00 => refused("multicast"),
        _ => None,
    }
}

/// Whether a DNS name is local by definition (`localhost`, `*.localhost`, mDNS `.local`,
/// `.internal`, `.home.arpa`), however it is cased or dotted.
pub fn is_local_name(host: &str) -> bool {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || [
            ".localhost",
            ".local",
            ".internal",
            ".home.arpa",
            ".localdomain",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Which destinations an endpoint may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public servers only: every live endpoint, and test ones when local targets are off.
    PublicOnly,
    /// Public servers and this machine's loopback, where a developer's receiver listens (test
    /// mode by default): never a private network's servers or a cloud's metadata address.
    Loopback,
    /// Any address, a private network's included (test mode, `webhooks.local_targets = "test"`).
    Anywhere,
}

impl Reach {
    /// Whether an address refused as not public may still be reached.
    pub fn allows(self, r: Refusal) -> bool {
        match self {
            Reach::PublicOnly => false,
            Reach::Loopback => r.kind == "loopback" && r.via.is_none(),
            Reach::Anywhere => true,
        }
    }

    /// Whether a local name (see [`is_local_name`]) may still be reached.
    pub fn allows_name(self, host: &str) -> bool {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            Reach::PublicOnly => false,
            Reach::Loopback => name == "localhost" || name.ends_with(".localhost"),
            Reach::Anywhere => true,
        }
    }
}

/// Why a URL may not be an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("The url must be an absolute http:// or https:// URL: {0}.")]
    Unparsable(String),
    #[error("The url must be an absolute http:// or https:// URL.")]
    Scheme,
    #[error("Live mode webhook endpoints must use https://.")]
    NotHttps,
    #[error("The url has no valid host.")]
    NoHost,
    #[error(
        "The url must not carry a fragment (#...): it is never sent, and parsers disagree on \
         where the host ends around it."
    )]
    Fragment,
    #[error(
        "The url's host {host} is {why}: this endpoint must be a public server (test mode \
         also allows this machine's loopback, and any local address with \
         `webhooks.local_targets = \"test\"`)."
    )]
    NotPublic { host: String, why: String },
}

/// A URL accepted as an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub url: url::Url,
}

/// Check an endpoint URL: absolute http(s) (https when `https_only`), a host, no fragment, and
/// under [`Reach::PublicOnly`] no refused address literal and no local name.
pub fn check(raw: &str, https_only: bool, reach: Reach) -> Result<Checked, UrlProblem> {
    // The parser would strip these silently; the stored URL must be the one checked.
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::Unparsable(
            "it contains spaces or control characters".into(),
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| UrlProblem::Unparsable(e.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(UrlProblem::Scheme);
    }
    // `https:///x` parses (as host `x`): refuse the spelling with no authority.
    let after_scheme = &raw[url.scheme().len()..];
    if !after_scheme.starts_with("://") || after_scheme[3..].starts_with(['/', '\\']) {
        return Err(UrlProblem::NoHost);
    }
    if https_only && url.scheme() != "https" {
        return Err(UrlProblem::NotHttps);
    }
    if url.fragment().is_some() {
        return Err(UrlProblem::Fragment);
    }
    let not_public = |why: String| UrlProblem::NotPublic {
        host: url.host_str().unwrap_or_default().to_string(),
        why,
    };
    match url.host() {
        None => return Err(UrlProblem::NoHost),
        Some(url::Host::Domain(d)) if d.trim_end_matches('.').is_empty() => {
            return Err(UrlProblem::NoHost);
        }
        Some(_) if reach == Reach::Anywhere => {}
        Some(url::Host::Domain(d)) => {
            if is_local_name(d) && !reach.allows_name(d) {
                return Err(not_public("a local name".into()));
            }
        }
        Some(url::Host::Ipv4(ip)) => {
            if let Some(r) = refusal(IpAddr::V4(ip)).filter(|r| !reach.allows(*r)) {
                return Err(not_public(r.to_string()));
            }
        }
        Some(url::Host::Ipv6(ip)) => {
            if let Some(r) = refusal(IpAddr::V6(ip)).filter(|r| !reach.allows(*r)) {
                return Err(not_public(r.to_string()));
            }
        }
    }
    Ok(Checked { url })
}

/// The address literal a URL names, if its host is one (a literal is connected to without
/// DNS, so the resolver never sees it).
pub fn literal(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn test_mode_reaches_the_loopback_but_no_other_local_address_by_default() {
        for (url, public_only, loopback, anywhere) in [
            ("https://hooks.example.com/x", true, true, true),
            ("http://127.0.0.1:3000/hook", false, true, true),
            ("http://[::1]:3000/hook", false, true, true),
            ("http://localhost:3000/hook", false, true, true),
            ("http://app.localhost/hook", false, true, true),
            ("http://10.0.0.7:9200/", false, false, true),
            ("http://192.168.1.20/", false, false, true),
            (
                "http://169.254.169.254/latest/meta-data/",
                false,
                false,
                true,
            ),
            ("http://[::ffff:127.0.0.1]/", false, false, true),
            ("http://printer.local/", false, false, true),
            ("http://db.internal/", false, false, true),
        ] {
            for (reach, want) in [
                (Reach::PublicOnly, public_only),
                (Reach::Loopback, loopback),
                (Reach::Anywhere, anywhere),
            ] {
                assert_eq!(
                    check(url, false, reach).is_ok(),
                    want,
                    "{url} under {reach:?}"
                );
            }
        }
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect(s)
    }

    #[test]
    fn addresses_are_judged_by_what_they_are() {
        for (addr, kind) in [
            ("0.0.0.0", "unspecified (this network, 0.0.0.0/8)"),
            ("0.1.2.3", "unspecified (this network, 0.0.0.0/8)"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared address space (CGNAT, 100.64.0.0/10)"),
            (
                "100.127.255.254",
                "shared address space (CGNAT, 100.64.0.0/10)",
            ),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "link-local"),
            ("192.0.0.8", "IETF protocol assignment (192.0.0.0/24)"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("192.88.99.1", "6to4 relay anycast"),
            ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
            ("198.19.255.1", "benchmarking (198.18.0.0/15)"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved (240.0.0.0/4) or broadcast"),
            ("255.255.255.255", "reserved (240.0.0.0/4) or broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::8.8.8.8", "IPv4-compatible"),
            ("64:ff9b:1::1", "local-use NAT64 (64:ff9b:1::/48)"),
            ("100::1", "discard-only (100::/64)"),
            ("2001:db8::1", "documentation"),
            ("2001::1", "IETF protocol assignment (2001::/23)"),
            ("3fff::1", "documentation"),
            ("5f00::1", "segment routing (5f00::/16)"),
            ("fc00::1", "unique local (fc00::/7)"),
            ("fd12:3456::1", "unique local (fc00::/7)"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(
                refusal(ip(addr)),
                Some(Refusal { kind, via: None }),
                "{addr}"
            );
        }
        for (addr, kind, via) in [
            ("::ffff:127.0.0.1", "loopback", "IPv4-mapped"),
            ("::ffff:10.1.2.3", "private", "IPv4-mapped"),
            ("64:ff9b::7f00:1", "loopback", "NAT64"),
            ("64:ff9b::a9fe:a9fe", "link-local", "NAT64"),
            ("2002:7f00:1::", "loopback", "6to4"),
            ("2002:c0a8:101::1", "private", "6to4"),
        ] {
            assert_eq!(
                refusal(ip(addr)),
                Some(Refusal {
                    kind,
                    via: Some(via)
                }),
                "{addr}"
            );
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "192.0.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2a00:1450::1",
        ] {
            assert_eq!(refusal(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn every_spelling_of_a_local_address_is_refused_for_a_public_only_endpoint() {
        for url in [
            "https://2130706433/",
            "https://0x7f000001/",
            "https://127.1/",
            "https://0177.0.0.1/",
            "https://127.0.0.1./",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[2002:7f00:1::]/",
            "https://[fe80::1%25eth0]/",
            "https://[fe80::1]/",
            "https://[::]/",
            "https://0/",
            "https://localhost/",
            "https://localhost./",
            "https://LOCALHOST/",
            "https://api.localhost/",
            "https://printer.local/",
            "https://metadata.google.internal/",
            "https://127.0.0.1\\@example.com/",
            "https://example.com#@127.0.0.1",
            "https://10.0.0.5/x",
            "https://100.64.1.1/",
            "https://198.18.0.1/",
            "https://192.0.0.1/",
            "https://240.0.0.1/",
            "https://224.0.0.1/",
            "https://[fd00::1]/",
            "https://[::127.0.0.1]/",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            let e = check(url, true, Reach::PublicOnly).expect_err(url);
            assert!(
                matches!(
                    e,
                    UrlProblem::NotPublic { .. } | UrlProblem::Unparsable(_) | UrlProblem::Fragment
                ),
                "{url}: {e:?}"
            );
        }
    }

    #[test]
    fn the_host_checked_is_the_host_connected_to() {
        // The userinfo trick: the host is example.com, a public name.
        let c = check("https://127.0.0.1@example.com/x", true, Reach::PublicOnly).expect("ok");
        assert_eq!(c.url.host_str(), Some("example.com"));
        // A backslash ends the authority, as it does for the client.
        let c = check("https://127.0.0.1\\@example.com/", true, Reach::Anywhere).expect("ok");
        assert_eq!(literal(&c.url), Some(ip("127.0.0.1")));
        let c = check("https://2130706433/", true, Reach::Anywhere).expect("ok");
        assert_eq!(literal(&c.url), Some(ip("127.0.0.1")));
        assert_eq!(
            literal(
                &check("https://a.example/", true, Reach::Anywhere)
                    .expect("ok")
                    .url
            ),
            None
        );
    }

    #[test]
    fn scheme_host_and_spelling_rules() {
        assert!(check("https://shop.example/hooks", true, Reach::PublicOnly).is_ok());
        assert!(check("https://8.8.8.8/hooks", true, Reach::PublicOnly).is_ok());
        assert!(check("http://127.0.0.1:9000/hooks", false, Reach::Anywhere).is_ok());
        assert!(check("http://localhost:9000/hooks", false, Reach::Anywhere).is_ok());
        for (url, problem) in [
            ("http://shop.example/", UrlProblem::NotHttps),
            ("ftp://x.example/", UrlProblem::Scheme),
            ("https:///nohost", UrlProblem::NoHost),
            ("https:x.example", UrlProblem::NoHost),
        ] {
            assert_eq!(check(url, true, Reach::Anywhere), Err(problem), "{url}");
        }
        for url in [
            "not a url",
            "https://a.example/\tx",
            "https://a b/",
            "https://[::1/",
        ] {
            assert!(
                matches!(
                    check(url, false, Reach::Anywhere),
                    Err(UrlProblem::Unparsable(_))
                ),
                "{url}"
            );
        }
    }
}
