//! The client address of a request: the TCP peer, or — when the peer is one of the reverse
//! proxies named in `LETSCHAT_TRUSTED_PROXIES` — the address that proxy forwarded in
//! `X-Forwarded-For` (or RFC 7239 `Forwarded: for=`). Every per-address rule (the sign-in rate
//! limits, the password hashers' fair share, a session's recorded address, the request log) asks
//! [`client_ip`], so they all agree.
//!
//! The chain is read from the right, the side the trusted proxies wrote: each hop that is itself
//! a trusted proxy is stepped over, and the first one that is not is the client. Entries further
//! left were written by the client (or by proxies nobody vouches for) and are never believed. An
//! entry that is not an address (`unknown`, an obfuscated `_name`, garbage) stops the walk: the
//! client is then the last trusted hop read, i.e. the proxy itself, never a guess.
//!
//! `X-Forwarded-For` is read when the request has one; `Forwarded` only when it has none. A
//! proxy that sets only `Forwarded` must therefore remove `X-Forwarded-For` from what clients
//! send (nginx: `proxy_set_header X-Forwarded-For "";`), or a client could name itself.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::{web, HttpMessage, HttpRequest};
use ipnet::IpNet;

use crate::state::AppState;

/// `LETSCHAT_TRUSTED_PROXIES`: the networks whose connections may say whom they forward.
/// Empty (the default): nobody's forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma-separated CIDRs (`10.0.0.0/8`, `::1/128`) or single addresses (`127.0.0.1`, the
    /// same as `/32`, `/128` for IPv6); spaces and empty items are ignored.
    pub fn parse(raw: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(canonical(ip)),
                    Err(_) => {
                        return Err(format!(
                            "'{item}' is not a network like 10.0.0.0/8 or ::1/128"
                        ))
                    }
                },
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address as its IPv4 address) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 peer) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The client address of a request whose TCP peer is `peer` (unspecified when unknown).
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = canonical(peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
    if trusted.is_empty() || !trusted.contains(client) {
        return client;
    }
    let hops = forwarded_chain(headers);
    for hop in hops.iter().rev() {
        let Some(ip) = hop else {
            // Not an address: nothing left of it can be placed; the last trusted hop stands.
            return client;
        };
        client = canonical(*ip);
        if !trusted.contains(client) {
            return client;
        }
    }
    client
}

/// The forwarded chain, leftmost (farthest) first; `None` for an entry that is not an address.
/// From every `X-Forwarded-For` line in order; from `Forwarded`'s `for=` when there is none.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect();
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|line| line.split(','))
            .map(|entry| parse_node(entry.trim()))
            .collect();
    }
    headers
        .get_all("forwarded")
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(|element| {
            // `for=…;proto=…;by=…`: an element without `for` names no hop we can place.
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
        })
        .collect()
}

/// One hop: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok
            .then(|| addr.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
            .flatten();
    }
    let (addr, port) = s.split_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The request's client address, worked out once per request (and kept in its extensions).
#[derive(Debug, Clone, Copy)]
struct ClientAddr(IpAddr);

/// The client address of `req` (see the module documentation).
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    if let Some(known) = req.extensions().get::<ClientAddr>() {
        return known.0;
    }
    let peer = req.peer_addr().map(|a| a.ip());
    let ip = match req.app_data::<web::Data<AppState>>() {
        Some(state) => resolve(peer, req.headers(), &state.config.trusted_proxies),
        None => resolve(peer, req.headers(), &TrustedProxies::default()),
    };
    req.extensions_mut().insert(ClientAddr(ip));
    ip
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    fn trusted(raw: &str) -> TrustedProxies {
        TrustedProxies::parse(raw).unwrap()
    }

    #[test]
    fn parses_networks_and_single_addresses() {
        let t = trusted(" 127.0.0.1/32, ::1/128 ,10.1.2.3/8,,192.0.2.9, 2001:db8::/32");
        assert_eq!(
            t.to_string(),
            "127.0.0.1/32,::1/128,10.0.0.0/8,192.0.2.9/32,2001:db8::/32"
        );
        assert!(t.contains(ip("10.200.0.1")));
        assert!(t.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped");
        assert!(t.contains(ip("2001:db8:ffff::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(!t.contains(ip("::2")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "localhost",
            "10.0.0.0/8;",
            "::1/129",
            "1.2.3",
        ] {
            let e = TrustedProxies::parse(bad).expect_err(bad);
            assert!(e.contains(bad.trim()), "{e}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        let peer = Some(ip("192.0.2.1"));
        assert_eq!(
            resolve(peer, &h, &TrustedProxies::default()),
            ip("192.0.2.1")
        );
        assert_eq!(resolve(peer, &h, &trusted("10.0.0.0/8")), ip("192.0.2.1"));
        assert_eq!(
            resolve(Some(ip("::ffff:192.0.2.1")), &h, &trusted("10.0.0.0/8")),
            ip("192.0.2.1")
        );
        assert_eq!(resolve(None, &h, &trusted("10.0.0.0/8")), ip("0.0.0.0"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted("10.0.0.0/8,::1/128");
        let peer = Some(ip("10.0.0.2"));
        // What the client wrote (left) is not believed; the proxies' hops are stepped over.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.5")]);
        assert_eq!(resolve(peer, &h, &t), ip("203.0.113.7"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7:5123"),
        ]);
        assert_eq!(resolve(peer, &h, &t), ip("203.0.113.7"));
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:443")]);
        assert_eq!(resolve(peer, &h, &t), ip("2001:db8::7"));
        let h = headers(&[("x-forwarded-for", "2001:db8::8")]);
        assert_eq!(resolve(Some(ip("::1")), &h, &t), ip("2001:db8::8"));
        // Every hop trusted: the farthest one is the client.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(resolve(peer, &h, &t), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(resolve(peer, &HeaderMap::new(), &t), ip("10.0.0.2"));
    }

    #[test]
    fn a_malformed_hop_stops_the_walk_at_the_last_trusted_one() {
        let t = trusted("10.0.0.0/8");
        let peer = Some(ip("10.0.0.2"));
        for (xff, client) in [
            ("203.0.113.7, unknown", "10.0.0.2"),
            ("203.0.113.7, not an address, 10.0.0.5", "10.0.0.5"),
            ("unknown, 203.0.113.7", "203.0.113.7"),
            ("203.0.113.7, ", "10.0.0.2"),
            ("203.0.113.7:99999", "10.0.0.2"),
            ("[2001:db8::1", "10.0.0.2"),
        ] {
            let h = headers(&[("x-forwarded-for", xff)]);
            assert_eq!(resolve(peer, &h, &t), ip(client), "{xff}");
        }
    }

    #[test]
    fn forwarded_is_read_only_without_x_forwarded_for() {
        let t = trusted("10.0.0.0/8");
        let peer = Some(ip("10.0.0.2"));
        let h = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, For="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.9;by=10.0.0.2"#,
        )]);
        assert_eq!(resolve(peer, &h, &t), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "proto=https;for=192.0.2.60:80")]);
        assert_eq!(resolve(peer, &h, &t), ip("192.0.2.60"));
        for hidden in ["for=unknown", "for=_hidden", "by=10.0.0.1", "for=\"_x:80\""] {
            let h = headers(&[("forwarded", hidden)]);
            assert_eq!(resolve(peer, &h, &t), ip("10.0.0.2"), "{hidden}");
        }
        let h = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(resolve(peer, &h, &t), ip("203.0.113.7"));
    }
}
