//! Finding the client's address behind trusted proxies.
//!
//! Only a peer inside a trusted network is believed, and then only as far as
//! the chain of trusted hops goes: the right-most address of the configured
//! header (`X-Forwarded-For`, or `Forwarded: for=` of RFC 7239) that is not
//! itself a trusted proxy is the client. Only the header the operator's
//! proxies set is read: a proxy appends to its own header and passes the
//! other through untouched, so reading both would let the client choose.
//! An entry that cannot be parsed stops the walk at the last trusted hop,
//! so a garbled header can never make the client look like someone else.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

use crate::settings::ForwardedHeader;

/// Folds IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) to IPv4, so one host
/// has one key whichever socket family it arrived on.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client address for a request from `peer` with `headers`.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    header: ForwardedHeader,
    proxies: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops = forwarded_chain(headers, header);
    let mut last_trusted = peer;
    for hop in hops.iter().rev() {
        match parse_node(hop) {
            Some(ip) if trusted(ip, proxies) => last_trusted = ip,
            Some(ip) => return ip,
            None => return last_trusted,
        }
    }
    last_trusted
}

/// The hops of the configured header, left to right: the `for=` values of
/// every `Forwarded` header, or the `X-Forwarded-For` entries.
fn forwarded_chain(headers: &HeaderMap, header: ForwardedHeader) -> Vec<&str> {
    let mut chain = Vec::new();
    if header == ForwardedHeader::XForwardedFor {
        for value in headers.get_all("x-forwarded-for") {
            match value.to_str() {
                Ok(text) => chain.extend(text.split(',').map(str::trim)),
                Err(_) => chain.push(""),
            }
        }
        return chain;
    }
    for value in headers.get_all(http::header::FORWARDED) {
        let Ok(text) = value.to_str() else {
            chain.push("");
            continue;
        };
        for element in text.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            });
            // An element without `for=` still was a hop we cannot place.
            chain.push(node.unwrap_or(""));
        }
    }
    chain
}

/// Whether a trusted proxy says the client reached it over plain HTTP:
/// the peer is trusted and every scheme it passes on (`X-Forwarded-Proto`,
/// or the `proto=` of `Forwarded`, whichever header is configured) is
/// `http`. No header, or any `https`, is not a claim of plain HTTP.
pub fn says_plain_http(
    peer: IpAddr,
    headers: &HeaderMap,
    header: ForwardedHeader,
    proxies: &[IpNet],
) -> bool {
    if !trusted(canonical(peer), proxies) {
        return false;
    }
    let mut schemes = Vec::new();
    if header == ForwardedHeader::XForwardedFor {
        for value in headers.get_all("x-forwarded-proto") {
            let Ok(text) = value.to_str() else {
                return false;
            };
            schemes.extend(text.split(',').map(str::trim));
        }
    } else {
        for value in headers.get_all(http::header::FORWARDED) {
            let Ok(text) = value.to_str() else {
                return false;
            };
            schemes.extend(
                text.split([',', ';'])
                    .filter_map(|pair| pair.split_once('='))
                    .filter(|(name, _)| name.trim().eq_ignore_ascii_case("proto"))
                    .map(|(_, value)| value.trim().trim_matches('"')),
            );
        }
    }
    !schemes.is_empty() && schemes.iter().all(|s| s.eq_ignore_ascii_case("http"))
}

/// One node: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`,
/// optionally quoted. `unknown` and obfuscated names are not addresses.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = text.parse::<SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    let inner = text.strip_prefix('[')?.split(']').next()?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

/// The key an address is limited by: IPv4 as is, IPv6 reduced to its first
/// `v6_prefix` bits, since one host commonly owns a whole /64 or /56.
pub fn limit_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, v6_prefix.min(128))
            .map_or(ip, |net| IpAddr::V6(net.trunc().addr())),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const FWD: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        for header in [XFF, FWD] {
            assert_eq!(
                client_ip(ip("9.9.9.9"), &h, header, &nets(&["10.0.0.0/8"])),
                ip("9.9.9.9")
            );
        }
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.7")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, XFF, &nets(&["10.0.0.0/8"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn only_the_configured_header_is_read_and_forwarded_understands_ports_and_quotes() {
        let h = headers(&[
            ("x-forwarded-for", "7.7.7.7"),
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8::1]:4711\";proto=https",
            ),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, FWD, &nets(&["10.0.0.0/8"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, XFF, &nets(&["10.0.0.0/8"])),
            ip("7.7.7.7")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_trusted_hop() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4, nonsense, 10.0.0.9")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, XFF, &nets(&["10.0.0.0/8"])),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn only_a_trusted_proxy_can_say_the_client_came_over_plain_http() {
        let proxies = nets(&["10.0.0.0/8"]);
        let xff = ForwardedHeader::XForwardedFor;
        let fwd = ForwardedHeader::Forwarded;
        let plain = headers(&[("x-forwarded-proto", "http")]);
        assert!(says_plain_http(ip("10.0.0.1"), &plain, xff, &proxies));
        assert!(
            !says_plain_http(ip("192.0.2.1"), &plain, xff, &proxies),
            "untrusted peer"
        );
        assert!(
            !says_plain_http(ip("10.0.0.1"), &plain, fwd, &proxies),
            "other header"
        );
        assert!(
            !says_plain_http(ip("10.0.0.1"), &HeaderMap::new(), xff, &proxies),
            "no claim"
        );
        let mixed = headers(&[("x-forwarded-proto", "https, http")]);
        assert!(
            !says_plain_http(ip("10.0.0.1"), &mixed, xff, &proxies),
            "one https"
        );
        let forwarded = headers(&[("forwarded", "for=192.0.2.7;proto=http;by=10.0.0.1")]);
        assert!(says_plain_http(ip("10.0.0.1"), &forwarded, fwd, &proxies));
        let secure = headers(&[("forwarded", "for=192.0.2.7;proto=\"https\"")]);
        assert!(!says_plain_http(ip("10.0.0.1"), &secure, fwd, &proxies));
    }

    #[test]
    fn mapped_ipv4_is_folded() {
        assert_eq!(canonical(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn ipv6_is_keyed_by_prefix() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2ff:1:2:3:4"), 56),
            ip("2001:db8:1:200::")
        );
        assert_eq!(limit_key(ip("1.2.3.4"), 56), ip("1.2.3.4"));
    }

    proptest! {
        #[test]
        fn the_client_is_the_peer_or_an_address_from_the_header(
            xff in "[0-9a-f:., \\[\\]\"]{0,80}",
            fwd in "[a-zA-Z0-9:.,;=\" \\[\\]_]{0,80}",
            peer_trusted in any::<bool>(),
            use_forwarded in any::<bool>(),
        ) {
            let header = if use_forwarded { FWD } else { XFF };
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&xff) { h.insert("x-forwarded-for", v); }
            if let Ok(v) = HeaderValue::from_str(&fwd) { h.insert("forwarded", v); }
            let peer = if peer_trusted { ip("10.0.0.1") } else { ip("203.0.113.5") };
            let got = client_ip(peer, &h, header, &nets(&["10.0.0.0/8"]));
            if !peer_trusted {
                prop_assert_eq!(got, peer);
            } else {
                let named: Vec<IpAddr> = forwarded_chain(&h, header).into_iter().filter_map(parse_node).collect();
                prop_assert!(got == peer || named.contains(&got), "{} is neither the peer nor named", got);
            }
        }

        #[test]
        fn an_attacker_behind_a_trusted_proxy_cannot_hide_its_address(
            spoofed in proptest::collection::vec(any::<[u8; 4]>(), 0..6),
        ) {
            // The proxy appends the real client (5.6.7.8) to whatever the
            // client sent; nothing the client sent may win.
            let mut list: Vec<String> = spoofed.iter().map(|b| std::net::Ipv4Addr::from(*b).to_string()).collect();
            list.push("5.6.7.8".into());
            let h = headers(&[("x-forwarded-for", &list.join(", "))]);
            prop_assert_eq!(client_ip(ip("10.0.0.1"), &h, XFF, &nets(&["10.0.0.0/8"])), ip("5.6.7.8"));
        }
    }
}
