//! The HTTP client for the addresses integrations name — ICS feeds, outbound receivers,
//! Slack's and Graph's APIs — all of them typed by an org's admins. Unless the operator
//! allows private addresses (`TALLY_WEBHOOK_ALLOW_PRIVATE`), it reaches only public ones:
//! not the machine itself, its network, link-local addresses (the cloud's metadata service)
//! or anything reserved. The check is made on the addresses a name resolves to, when
//! connecting (so a name that resolves differently later gains nothing), and on every
//! redirect.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use reqwest::{
    RequestBuilder, Url,
    dns::{Addrs, Name, Resolve, Resolving},
    redirect::Policy,
};
use tally_core::config::IntegrationSettings;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 3;

/// A client that reaches only public addresses, unless told otherwise.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    allow_private: bool,
}

/// A URL the client will not call: why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

impl Egress {
    /// A client whose requests take at most `timeout`; `allow_private` lets it reach
    /// loopback and private networks (a deployment whose tools live there, tests).
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        let policy = Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match allowed(attempt.url(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(policy)
            .user_agent(concat!("Tally-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            // A proxy would resolve names itself, past the check.
            builder = builder.dns_resolver(PublicOnly).no_proxy();
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
        })
    }

    /// The client `settings` describe (`TALLY_WEBHOOK_TIMEOUT`, `TALLY_WEBHOOK_ALLOW_PRIVATE`).
    pub fn from_settings(settings: &IntegrationSettings) -> Result<Self, reqwest::Error> {
        Self::new(
            Duration::from_secs(settings.webhook_timeout),
            settings.webhook_allow_private,
        )
    }

    /// A GET of `url`, unless it names an address the client may not reach.
    pub fn get(&self, url: &str) -> Result<RequestBuilder, Refused> {
        Ok(self.client.get(self.checked(url)?))
    }

    /// A POST to `url`, unless it names an address the client may not reach.
    pub fn post(&self, url: &str) -> Result<RequestBuilder, Refused> {
        Ok(self.client.post(self.checked(url)?))
    }

    /// A request of `method` to `url`, unless it names an address the client may not reach.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<RequestBuilder, Refused> {
        Ok(self.client.request(method, self.checked(url)?))
    }

    fn checked(&self, url: &str) -> Result<Url, Refused> {
        let parsed = Url::parse(url).map_err(|e| Refused(format!("invalid URL {url}: {e}")))?;
        allowed(&parsed, self.allow_private)?;
        Ok(parsed)
    }
}

/// Whether `url` may be called: http(s) only, and, unless private addresses are allowed, no
/// literal address that is not public (names are checked when they are resolved).
fn allowed(url: &Url, allow_private: bool) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused(format!(
            "{url}: only http and https URLs are called"
        )));
    }
    let host = url.host_str().unwrap_or_default();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) if !allow_private && !is_public(ip) => {
            Err(Refused(format!("{url}: {ip} is not a public address")))
        }
        _ => Ok(()),
    }
}

/// Resolves names to their public addresses only; a name with none is refused.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Refused(format!("{host} has no public address")).into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`), NAT64's
/// well-known prefix (`64:ff9b::a.b.c.d`, RFC 6052) or 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => ip.to_ipv4_mapped(),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (b & 0b1100_0000) == 64)
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && second == 0x0db8)
        // The rest of 64:ff9b::/32: NAT64 prefixes for local use (RFC 8215).
        || (first == 0x64 && second == 0xff9b))
}

/// An error and its causes in one line (reqwest's own message leaves out why a connection
/// failed).
pub fn explain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "2002:c0a8:101::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "100.128.0.1",
            "2606:4700::1111",
            "64:ff9b::101:101",
            "2002:101:101::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literal_private_urls_and_other_schemes_are_refused() {
        let guarded = Egress::new(Duration::from_secs(1), false).unwrap();
        for url in [
            "http://127.0.0.1:8080/feed.ics",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::1]/hook",
            "http://[::ffff:10.0.0.1]/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(guarded.get(url).is_err(), "{url}");
        }
        assert!(guarded.post("https://hooks.example.com/tally").is_ok());
        let open = Egress::new(Duration::from_secs(1), true).unwrap();
        assert!(open.get("http://127.0.0.1:8080/feed.ics").is_ok());
        assert!(open.get("file:///etc/passwd").is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let guarded = Egress::new(Duration::from_secs(5), false).unwrap();
        let error = guarded
            .get("http://localhost:9/")
            .unwrap()
            .send()
            .await
            .unwrap_err();
        assert!(
            explain(&error).contains("localhost has no public address"),
            "{}",
            explain(&error)
        );
    }
}
