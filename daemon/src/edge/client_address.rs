//! Whose request it is: the connection's address, or, when that is one of the reverse proxies
//! `http.trusted_proxies` names, the client its `X-Forwarded-For` names (the last entry, the
//! one the trusted proxy appended; earlier ones come from the client and may be made up).

use std::net::IpAddr;

/// The client's address for the sign-in throttle and the audit log.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    forwarded_for
        .and_then(|h| h.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_s_last_forwarded_address_is_believed() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let proxy = ip("10.0.0.5");
        for (peer, header, want) in [
            ("203.0.113.9", Some("198.51.100.1"), "203.0.113.9"),
            ("10.0.0.5", Some("198.51.100.1"), "198.51.100.1"),
            ("10.0.0.5", Some("1.2.3.4, 198.51.100.1"), "198.51.100.1"),
            ("10.0.0.5", Some("nonsense"), "10.0.0.5"),
            ("10.0.0.5", None, "10.0.0.5"),
        ] {
            assert_eq!(
                client_address(ip(peer), header, &[proxy]),
                ip(want),
                "{peer} {header:?}"
            );
        }
    }
}
