//! Where the `http` tool may connect: allowlist entries (host and port), which addresses count as
//! public, and the DNS resolver that keeps a hostname off every other address on each connection,
//! so a name that resolves (or later rebinds) to loopback, a private network or a cloud metadata
//! service is refused.

use std::error::Error;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// One allowlist entry: a host, and the port it may be reached on (`None`: the scheme's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostPort {
    host: String,
    port: Option<u16>,
}

impl HostPort {
    /// Parses `host` or `host:port` (`[v6]:port` for IPv6 literals), as a URL's authority.
    pub(crate) fn parse(entry: &str) -> Result<Self, String> {
        let url = url::Url::parse(&format!("http://{entry}/"))
            .map_err(|e| format!("{entry:?} is not host or host:port: {e}"))?;
        let host = url
            .host_str()
            .filter(|_| url.username().is_empty() && url.path() == "/" && url.query().is_none())
            .ok_or_else(|| format!("{entry:?} is not host or host:port"))?;
        // The url crate drops `:80` as http's default; keep what the operator wrote.
        let port = url.port().or_else(|| entry.ends_with(":80").then_some(80));
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// Whether `url` names this host and port; an entry without a port admits only the scheme's
    /// default port.
    pub(crate) fn matches(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let port = url.port_or_known_default();
        host.eq_ignore_ascii_case(&self.host)
            && match self.port {
                Some(p) => port == Some(p),
                None => url.port().is_none(),
            }
    }
}

/// Why a connection was refused after resolution; found again in the error's source chain to
/// classify the failure as final.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to addresses the http tool does not call ({addresses}); list it under http.private_hosts to allow them"
)]
pub(crate) struct NotPublic {
    host: String,
    addresses: String,
}

/// Whether `e` or any error under it is a [`NotPublic`] refusal.
pub(crate) fn is_not_public(e: &(dyn Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<NotPublic>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// Whether `ip` is an address on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local (where cloud metadata services live: 169.254.169.254, fd00:ec2::254 is
/// unique local), shared (CGNAT), multicast, documentation, benchmarking or reserved. IPv6
/// forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                    // this network
        || a == 10                              // private
        || a == 127                             // loopback
        || (a == 100 && (64..128).contains(&b)) // shared (CGNAT)
        || (a == 169 && b == 254)               // link-local, metadata
        || (a == 172 && (16..32).contains(&b))  // private
        || (a == 192 && b == 0 && c == 0)       // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)       // documentation
        || (a == 192 && b == 88 && c == 99)     // 6to4 relay anycast
        || (a == 192 && b == 168)               // private
        || (a == 198 && (b == 18 || b == 19))   // benchmarking
        || (a == 198 && b == 51 && c == 100)    // documentation
        || (a == 203 && b == 0 && c == 113)     // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // NAT64 well-known prefix: the IPv4 address is the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return is_public_v4(embedded(hi, lo)),
        // 6to4: the IPv4 address follows the prefix.
        [0x2002, hi, lo, ..] => return is_public_v4(embedded(hi, lo)),
        _ => {}
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0; 6]              // IPv4-compatible (deprecated)
        || (s[0] & 0xfe00) == 0xfc00      // unique local fc00::/7 (fd00::/8 within)
        || (s[0] & 0xffc0) == 0xfe80      // link-local
        || (s[0] & 0xffc0) == 0xfec0      // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00      // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0)  // Teredo: tunnels to anywhere
        || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only
}

/// Looks a name up; replaceable in tests to play a rebinding DNS server.
pub(crate) type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver (getaddrinfo, on tokio's blocking pool).
pub(crate) fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
    })
}

/// A resolver for reqwest that keeps only public addresses, or every address for a client used
/// with hosts the operator listed as private. reqwest asks it for each new connection, so an
/// answer that changes between the allowlist check and the connection is judged again.
#[derive(Clone)]
pub(crate) struct Guarded {
    pub(crate) lookup: Lookup,
    pub(crate) allow_private: bool,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = (this.lookup)(host.clone()).await?;
            let keep: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| this.allow_private || is_public(a.ip()))
                .collect();
            if keep.is_empty() {
                let addresses = found
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(NotPublic { host, addresses }) as _);
            }
            Ok(Box::new(keep.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn loopback_private_link_local_and_metadata_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} counted as private");
        }
    }

    #[test]
    fn entries_match_host_and_port() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        let with_port = HostPort::parse("API.example.com:8443").unwrap();
        assert!(with_port.matches(&url("https://api.example.com:8443/x")));
        assert!(!with_port.matches(&url("https://api.example.com/x")));
        assert!(!with_port.matches(&url("https://api.example.com:8444/x")));
        let bare = HostPort::parse("api.example.com").unwrap();
        assert!(bare.matches(&url("https://api.example.com/x")));
        assert!(bare.matches(&url("http://api.example.com:80/x")));
        assert!(!bare.matches(&url("http://api.example.com:8080/x")));
        assert!(!bare.matches(&url("http://api.example.com.evil.test/x")));
        let v6 = HostPort::parse("[::1]:9000").unwrap();
        assert!(v6.matches(&url("http://[::1]:9000/")));
        for bad in ["", "http://x", "x/y", "u@x", "x:99999"] {
            assert!(HostPort::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// A DNS server that answers a public address first, then loopback: each connection is
    /// judged on its own answer.
    #[tokio::test]
    async fn every_resolution_is_judged_so_a_rebinding_name_is_refused() {
        let answers = Arc::new(Mutex::new(vec!["127.0.0.1", "93.184.216.34"]));
        let lookup: Lookup = Arc::new(move |_| {
            let ip: IpAddr = answers.lock().unwrap().pop().unwrap().parse().unwrap();
            Box::pin(async move { Ok(vec![SocketAddr::new(ip, 0)]) })
        });
        let guarded = Guarded {
            lookup,
            allow_private: false,
        };
        let name = |s: &str| s.parse::<Name>().unwrap();
        let first: Vec<_> = guarded
            .resolve(name("rebind.test"))
            .await
            .unwrap()
            .collect();
        assert_eq!(first, ["93.184.216.34:0".parse().unwrap()]);
        let Err(second) = guarded.resolve(name("rebind.test")).await else {
            panic!("the rebound answer was accepted");
        };
        assert!(is_not_public(second.as_ref()), "{second}");
        assert!(second.to_string().contains("127.0.0.1"), "{second}");
    }

    #[tokio::test]
    async fn mixed_answers_keep_only_public_addresses_unless_private_is_allowed() {
        let lookup: Lookup = Arc::new(|_| {
            Box::pin(async {
                Ok(vec![
                    "10.0.0.5:0".parse().unwrap(),
                    "93.184.216.34:0".parse().unwrap(),
                ])
            })
        });
        let public = Guarded {
            lookup: lookup.clone(),
            allow_private: false,
        };
        let kept: Vec<_> = public
            .resolve("mixed.test".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(kept, ["93.184.216.34:0".parse().unwrap()]);
        let private = Guarded {
            lookup,
            allow_private: true,
        };
        let kept = private
            .resolve("mixed.test".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(kept.count(), 2);
    }
}
