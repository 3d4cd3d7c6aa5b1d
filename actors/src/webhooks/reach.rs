//! The webhook client's guard against request forgery, at connect time.
//!
//! Creation refuses endpoint URLs that name a local address ([`calmony_protocol::destination`]),
//! but a public-looking name can resolve to 127.0.0.1 today, or tomorrow. So the client that
//! delivers to public-only endpoints resolves names through a [`GuardedResolver`], which fails
//! the lookup when *any* address of the name is not public: the attempt then fails (recorded
//! and retried like any failure) and nothing is connected to. A URL whose host is an address
//! literal never reaches a resolver, so [`refused_literal`] checks it before each send.
//! Redirects are never followed (a 3xx is a failed attempt), and proxies from the
//! environment are ignored, since a proxy would resolve the name where this check cannot see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use calmony_protocol::destination::{self, Reach};

/// A name that resolved to an address a public-only endpoint may not reach.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {addr}, which is {why}: this endpoint may only reach public servers")]
pub struct NotPublic {
    pub host: String,
    pub addr: std::net::IpAddr,
    pub why: destination::Refusal,
}

/// Refuse the whole name if any of its addresses is one `reach` does not allow (the client may
/// try each).
pub fn check_resolved(host: &str, addrs: &[SocketAddr], reach: Reach) -> Result<(), NotPublic> {
    for a in addrs {
        if let Some(why) = destination::refusal(a.ip()).filter(|r| !reach.allows(*r)) {
            return Err(NotPublic {
                host: host.to_string(),
                addr: a.ip(),
                why,
            });
        }
    }
    Ok(())
}

/// The system resolver, refusing names with any address its reach does not allow: public
/// only (live endpoints, the bank and Griffin clients), or public and the loopback (test
/// mode's default).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver(pub Reach);

impl GuardedResolver {
    /// The addresses of `host`, all allowed, or why not.
    pub async fn lookup(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        check_resolved(host, &addrs, self.0)?;
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (host, guard) = (name.as_str().to_string(), *self);
        Box::pin(async move {
            let addrs = guard.lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a delivery to `url` may not be sent under `reach`, if its host is a refused literal.
pub fn refused_literal(url: &reqwest::Url, reach: Reach) -> Option<String> {
    if reach == Reach::Anywhere {
        return None;
    }
    let ip = destination::literal(url)?;
    destination::refusal(ip)
        .filter(|why| !reach.allows(*why))
        .map(|why| format!("{ip} is {why}: this endpoint may not reach it"))
}

/// The webhook client could not be made. Never replaced by a default client: that one
/// would lack the address check, and deliver anywhere.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook client ({which}): {source}")]
pub struct ClientError {
    pub which: &'static str,
    pub source: reqwest::Error,
}

/// One client per [`Reach`], each but `Anywhere` resolving through a [`GuardedResolver`].
#[derive(Clone)]
pub struct Clients {
    public_only: reqwest::Client,
    loopback: reqwest::Client,
    anywhere: reqwest::Client,
}

impl Clients {
    pub fn new(timeout: Duration, idle_per_host: usize) -> Result<Self, ClientError> {
        Self::with(|| {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .pool_max_idle_per_host(idle_per_host)
                .user_agent("Calmony-Pay/1.0 (+webhooks)")
        })
    }

    /// The clients from `base`, the public-only and loopback ones with their guarded
    /// resolvers, or the error: the daemon does not start without its guard.
    fn with(base: impl Fn() -> reqwest::ClientBuilder) -> Result<Self, ClientError> {
        let build = |b: reqwest::ClientBuilder, which: &'static str| {
            b.build().map_err(|source| ClientError { which, source })
        };
        Ok(Self {
            public_only: build(
                base().dns_resolver(Arc::new(GuardedResolver(Reach::PublicOnly))),
                "public-only",
            )?,
            loopback: build(
                base().dns_resolver(Arc::new(GuardedResolver(Reach::Loopback))),
                "public or loopback",
            )?,
            anywhere: build(base(), "any address")?,
        })
    }

    pub fn for_reach(&self, reach: Reach) -> &reqwest::Client {
        match reach {
            Reach::PublicOnly => &self.public_only,
            Reach::Loopback => &self.loopback,
            Reach::Anywhere => &self.anywhere,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_lookup() {
        for host in ["localhost", "127.0.0.1", "::1"] {
            let e = GuardedResolver(Reach::PublicOnly)
                .lookup(host)
                .await
                .expect_err(host);
            let e = e.downcast::<NotPublic>().expect("refused as not public");
            assert_eq!(e.why.kind, "loopback", "{host}");
        }
    }

    #[test]
    fn any_refused_address_refuses_the_name() {
        let public: SocketAddr = "8.8.8.8:0".parse().expect("addr");
        let private: SocketAddr = "[fd00::1]:0".parse().expect("addr");
        assert!(check_resolved("a.example", &[public], Reach::PublicOnly).is_ok());
        let e =
            check_resolved("a.example", &[public, private], Reach::PublicOnly).expect_err("mixed");
        assert_eq!(e.addr, private.ip());
    }

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_not_an_unguarded_default() {
        crate::gateway::install_tls_provider();
        let refused = Clients::with(|| reqwest::Client::builder().user_agent("bad\nagent"));
        let e = refused.err().expect("no client without its guard");
        assert_eq!(e.which, "public-only");
        assert!(Clients::new(Duration::from_secs(5), 4).is_ok());
    }

    #[test]
    fn literals_are_checked_without_dns() {
        let url = |s: &str| reqwest::Url::parse(s).expect(s);
        assert!(refused_literal(&url("https://2130706433/"), Reach::PublicOnly).is_some());
        assert!(refused_literal(&url("https://[::ffff:7f00:1]/"), Reach::PublicOnly).is_some());
        assert!(refused_literal(&url("http://127.0.0.1:9/"), Reach::Anywhere).is_none());
        assert!(refused_literal(&url("https://8.8.8.8/"), Reach::PublicOnly).is_none());
        assert!(refused_literal(&url("https://localhost/"), Reach::PublicOnly).is_none());
    }
}
