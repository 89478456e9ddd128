//! The client's IP address: the TCP peer, or, when the peer is a trusted proxy
//! (`UMS_TRUSTED_PROXIES`), the client its `X-Forwarded-For` / `Forwarded` chain names. What
//! the rate limits count and what sessions and the audit trail record.
//!
//! A forwarded chain is read from the right, the end nearest this service: each entry was
//! written by the hop to its right, so it is believed only while that hop is a trusted proxy.
//! The client is the right-most entry that is not itself a trusted proxy; anything further
//! left was written by the client (or its own proxies) and is ignored, so a client cannot pick
//! its address by sending a header of its own.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;

use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{HttpRequest, web};
use ipnet::IpNet;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Which header a trusted proxy names the client in (`UMS_FORWARDED_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// Either: when a request carries both and they name different clients, one of them was
    /// written by the client, and it is not known which, so the request is attributed to the
    /// trusted proxy that sent it (a client cannot escape a limit that way, but clients behind
    /// a proxy of their own that adds the other header share that proxy's budget). Naming the
    /// header the proxies write avoids that.
    #[default]
    Auto,
    /// `X-Forwarded-For` only (nginx, HAProxy, most load balancers); `Forwarded` is ignored.
    XForwardedFor,
    /// `Forwarded` (RFC 7239) only; `X-Forwarded-For` is ignored.
    Forwarded,
}

impl ForwardedHeader {
    /// `auto`, `x-forwarded-for` or `forwarded` (any case).
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            _ => Err(format!(
                "must be `auto`, `x-forwarded-for` or `forwarded`, got {raw:?}"
            )),
        }
    }
}

/// How to find a request's client address: the trusted proxies and the header they write.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    header: ForwardedHeader,
}

impl fmt::Debug for ClientIpResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trusted: Vec<String> = self.trusted.iter().map(ToString::to_string).collect();
        f.debug_struct("ClientIpResolver")
            .field("trusted", &trusted)
            .field("header", &self.header)
            .finish()
    }
}

impl ClientIpResolver {
    /// Trusts the proxies of `trusted`: a comma-separated list of IPv4 and IPv6 addresses and
    /// CIDR blocks (`10.0.0.1, 10.1.0.0/16, 2001:db8::/32`); empty trusts none.
    ///
    /// # Errors
    /// A message naming the entry that is neither an address nor a CIDR block.
    pub fn parse(trusted: &str, header: ForwardedHeader) -> Result<Self, String> {
        let mut nets = Vec::new();
        if !trusted.trim().is_empty() {
            for entry in trusted.split(',').map(str::trim) {
                if entry.is_empty() {
                    return Err("has an empty entry (two commas in a row?)".to_owned());
                }
                let net = if entry.contains('/') {
                    IpNet::from_str(entry).ok().map(|net| net.trunc())
                } else {
                    IpAddr::from_str(entry).ok().map(IpNet::from)
                };
                let net = net.ok_or_else(|| {
                    format!(
                        "{entry:?} is neither an IP address nor a CIDR block \
                         (e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::/32)"
                    )
                })?;
                nets.push(canonical_net(net));
            }
        }
        Ok(Self {
            trusted: nets,
            header,
        })
    }

    /// Trusts no proxy: the client is always the TCP peer.
    #[must_use]
    pub fn trust_none() -> Self {
        Self::default()
    }

    /// Whether no proxy is trusted.
    #[must_use]
    pub fn trusts_none(&self) -> bool {
        self.trusted.is_empty()
    }

    /// The trusted blocks, for the log.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.trusted.is_empty() {
            return "none (the client is the TCP peer)".to_owned();
        }
        let nets: Vec<String> = self.trusted.iter().map(ToString::to_string).collect();
        format!("{} ({:?})", nets.join(", "), self.header)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` with `headers`; `None` only without a peer (a
    /// request that did not come over TCP).
    #[must_use]
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded_for = || chain(headers, &X_FORWARDED_FOR).map(|c| parse_x_forwarded_for(&c));
        let forwarded = || chain(headers, &header::FORWARDED).map(|c| parse_forwarded(&c));
        let client = match self.header {
            ForwardedHeader::XForwardedFor => forwarded_for().map(|c| self.walk(peer, &c)),
            ForwardedHeader::Forwarded => forwarded().map(|c| self.walk(peer, &c)),
            ForwardedHeader::Auto => match (forwarded_for(), forwarded()) {
                (None, None) => None,
                (Some(one), None) | (None, Some(one)) => Some(self.walk(peer, &one)),
                (Some(xff), Some(rfc)) => {
                    let (a, b) = (self.walk(peer, &xff), self.walk(peer, &rfc));
                    Some(if a == b { a } else { peer })
                }
            },
        };
        Some(client.unwrap_or(peer))
    }

    /// The right-most entry of `chain` (as parsed; `None` for an entry that names no address)
    /// that is not a trusted proxy, reading leftwards from the trusted `peer`. An entry naming
    /// no address stops the walk at the hop that wrote it; a chain of trusted proxies only
    /// ends at its left-most entry.
    fn walk(&self, peer: IpAddr, chain: &[Option<IpAddr>]) -> IpAddr {
        let mut client = peer;
        for entry in chain.iter().rev() {
            let Some(ip) = entry else {
                return client;
            };
            client = ip.to_canonical();
            if !self.is_trusted(client) {
                return client;
            }
        }
        client
    }
}

/// A trusted block of IPv4-mapped IPv6 addresses (`::ffff:10.0.0.0/104`) as the IPv4 block,
/// since addresses are compared in canonical form.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) => match (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
            (Some(v4), Some(len)) => ipnet::Ipv4Net::new(v4, len).map_or(net, IpNet::V4),
            _ => net,
        },
        IpNet::V4(_) => net,
    }
}

/// Every value of the header `name`, in order, joined by commas (as RFC 9110 allows a list
/// header to be split over several lines); `None` when there is none. A value that is not
/// visible ASCII makes the whole chain unreadable, which reads as one entry naming no address.
fn chain(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).peekable();
    values.peek()?;
    let mut joined = String::new();
    for value in values {
        let Ok(text) = value.to_str() else {
            return Some("\u{0}".to_owned());
        };
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(text);
    }
    Some(joined)
}

/// An address as a proxy may write it: `192.0.2.1`, `2001:db8::1`, `192.0.2.1:8080`,
/// `[2001:db8::1]` or `[2001:db8::1]:8080`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = IpAddr::from_str(text) {
        return Some(ip);
    }
    if let Ok(socket) = SocketAddr::from_str(text) {
        return Some(socket.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| IpAddr::from_str(inner).ok())
}

/// `X-Forwarded-For: client, proxy1, proxy2`: one entry per comma.
fn parse_x_forwarded_for(chain: &str) -> Vec<Option<IpAddr>> {
    chain.split(',').map(parse_node).collect()
}

/// `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"` (RFC 7239): one entry
/// per element, its `for` parameter. An element without a `for` (or with two), with `for`
/// naming no address (`unknown`, an obfuscated `_name`), or that does not parse, is an entry
/// naming no address.
fn parse_forwarded(chain: &str) -> Vec<Option<IpAddr>> {
    let Some(elements) = split_outside_quotes(chain, ',') else {
        // An unterminated quoted string: nothing in it can be located.
        return vec![None];
    };
    elements
        .iter()
        .map(|element| {
            let pairs = split_outside_quotes(element, ';')?;
            let mut found = None;
            for pair in pairs {
                let pair = pair.trim();
                if pair.is_empty() {
                    continue;
                }
                let (name, value) = pair.split_once('=')?;
                if name.trim().eq_ignore_ascii_case("for") {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(unquote(value.trim())?);
                }
            }
            parse_node(&found?)
        })
        .collect()
}

/// `text` split at `separator` where it is not inside a quoted string; `None` when a quoted
/// string is not closed.
fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(std::mem::take(&mut current));
            continue;
        }
        current.push(c);
    }
    if quoted {
        return None;
    }
    parts.push(current);
    Some(parts)
}

/// A token as it is, or a quoted string without its quotes and escapes; `None` for a value
/// with a stray quote.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return None,
            c => text.push(c),
        }
    }
    Some(text)
}

/// The client address of `req`, by the [`ClientIpResolver`] the application registered
/// (`web::Data`); without one, no proxy is trusted and it is the TCP peer.
#[must_use]
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|addr| addr.ip());
    match req.app_data::<web::Data<ClientIpResolver>>() {
        Some(resolver) => resolver.resolve(peer, req.headers()),
        None => peer.map(|ip| ip.to_canonical()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn resolver(trusted: &str) -> ClientIpResolver {
        ClientIpResolver::parse(trusted, ForwardedHeader::Auto).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The client of a request from `peer` with `pairs` as headers.
    fn client(resolver: &ClientIpResolver, peer: &str, pairs: &[(&str, &str)]) -> IpAddr {
        resolver.resolve(Some(ip(peer)), &headers(pairs)).unwrap()
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_blocks_of_both_families() {
        let r = resolver(" 10.0.0.1, 192.168.0.0/16 ,2001:db8::/32,::1, 172.16.5.9/12 ");
        for trusted in [
            "10.0.0.1",
            "192.168.44.1",
            "2001:db8:ffff::1",
            "::1",
            "172.31.0.1",
        ] {
            assert!(r.is_trusted(ip(trusted)), "{trusted}");
        }
        for untrusted in [
            "10.0.0.2",
            "192.169.0.1",
            "2001:db9::1",
            "::2",
            "172.32.0.1",
        ] {
            assert!(!r.is_trusted(ip(untrusted)), "{untrusted}");
        }
        assert!(resolver("").trusts_none());
        assert!(resolver("  ").trusts_none());
        assert!(!r.trusts_none());
        assert!(r.describe().contains("172.16.0.0/12"), "{}", r.describe());
        let mapped = resolver("::ffff:10.0.0.0/104");
        assert!(mapped.is_trusted(ip("10.9.9.9")));
    }

    #[test]
    fn invalid_trusted_proxies_name_the_entry() {
        for (bad, named) in [
            ("10.0.0.1,nonsense", "nonsense"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("10.0.0.1,,10.0.0.2", "empty"),
            ("10.0.0.1,", "empty"),
            ("localhost", "localhost"),
            ("2001:db8::/129", "2001:db8::/129"),
            ("10.0.0.1/8/8", "10.0.0.1/8/8"),
        ] {
            let error = ClientIpResolver::parse(bad, ForwardedHeader::Auto).unwrap_err();
            assert!(error.contains(named), "{bad}: {error}");
        }
        assert_eq!(
            ForwardedHeader::parse("X-Forwarded-For"),
            Ok(ForwardedHeader::XForwardedFor)
        );
        assert_eq!(
            ForwardedHeader::parse("forwarded"),
            Ok(ForwardedHeader::Forwarded)
        );
        assert_eq!(ForwardedHeader::parse(" AUTO "), Ok(ForwardedHeader::Auto));
        assert!(ForwardedHeader::parse("x-real-ip").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let spoofed = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ];
        for r in [resolver(""), resolver("10.0.0.0/8")] {
            assert_eq!(client(&r, "198.51.100.7", &spoofed), ip("198.51.100.7"));
            assert_eq!(client(&r, "198.51.100.7", &[]), ip("198.51.100.7"));
        }
        assert_eq!(
            client(&resolver("10.0.0.0/8"), "2001:db8::7", &spoofed),
            ip("2001:db8::7")
        );
        assert_eq!(resolver("").resolve(None, &headers(&spoofed)), None);
    }

    #[test]
    fn a_trusted_peer_names_the_client_in_x_forwarded_for() {
        let r = resolver("10.0.0.0/8");
        assert_eq!(
            client(&r, "10.0.0.1", &[("x-forwarded-for", "203.0.113.9")]),
            ip("203.0.113.9")
        );
        // Through a second trusted proxy.
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[("x-forwarded-for", "203.0.113.9, 10.0.0.2")]
            ),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(client(&r, "10.0.0.1", &[]), ip("10.0.0.1"));
        // With ports and brackets, as some proxies write them.
        for written in ["203.0.113.9:4711", " 203.0.113.9 "] {
            assert_eq!(
                client(&r, "10.0.0.1", &[("x-forwarded-for", written)]),
                ip("203.0.113.9"),
                "{written}"
            );
        }
        for written in ["2001:db8::9", "[2001:db8::9]", "[2001:db8::9]:4711"] {
            assert_eq!(
                client(&r, "10.0.0.1", &[("x-forwarded-for", written)]),
                ip("2001:db8::9"),
                "{written}"
            );
        }
    }

    #[test]
    fn a_spoofed_chain_does_not_move_the_client() {
        let r = resolver("10.0.0.0/8");
        // The client prepends whatever it likes; the proxy appends what it saw.
        for sent in [
            "1.2.3.4",
            "1.2.3.4, 5.6.7.8",
            "10.0.0.99",
            "garbage, 1.2.3.4",
            "unknown",
            "",
        ] {
            let chain = if sent.is_empty() {
                "203.0.113.9".to_owned()
            } else {
                format!("{sent}, 203.0.113.9")
            };
            assert_eq!(
                client(&r, "10.0.0.1", &[("x-forwarded-for", &chain)]),
                ip("203.0.113.9"),
                "{chain}"
            );
        }
        // A trusted address the client wrote left of its own is skipped only while every
        // entry to its right is trusted: here the client's real address stops the walk.
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[("x-forwarded-for", "10.0.0.5, 203.0.113.9, 10.0.0.2")]
            ),
            ip("203.0.113.9")
        );
        // Split over several header lines, in order.
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-forwarded-for", "203.0.113.9")
                ]
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_entry_naming_no_address_stops_at_the_proxy_that_wrote_it() {
        let r = resolver("10.0.0.0/8");
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[("x-forwarded-for", "203.0.113.9, unknown")]
            ),
            ip("10.0.0.1")
        );
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[("x-forwarded-for", "203.0.113.9, junk, 10.0.0.2")]
            ),
            ip("10.0.0.2")
        );
        // Only trusted proxies in the chain: the left-most of them.
        assert_eq!(
            client(&r, "10.0.0.1", &[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn ipv6_and_ipv4_mapped_addresses_compare_canonically() {
        let r = resolver("10.0.0.0/8, fd00::/8");
        assert_eq!(
            client(
                &r,
                "::ffff:10.0.0.1",
                &[("x-forwarded-for", "::ffff:203.0.113.9")]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(
                &r,
                "fd00::1",
                &[("x-forwarded-for", "2001:db8::1, fd00::2")]
            ),
            ip("2001:db8::1")
        );
        assert_eq!(
            client(&resolver(""), "::ffff:198.51.100.7", &[]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_forwarded_header_is_parsed_as_rfc_7239_says() {
        let r = resolver("10.0.0.0/8");
        for (value, expected) in [
            ("for=203.0.113.9", "203.0.113.9"),
            ("For=203.0.113.9;proto=https;by=10.0.0.1", "203.0.113.9"),
            ("proto=https; for=203.0.113.9", "203.0.113.9"),
            (r#"for="203.0.113.9:4711""#, "203.0.113.9"),
            (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
            (r#"for="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
            ("for=198.51.100.1, for=203.0.113.9", "203.0.113.9"),
            ("for=203.0.113.9, for=10.0.0.2", "203.0.113.9"),
            // A quoted comma or semicolon does not split anything.
            (r#"for=1.2.3.4;x="a,b;c", for=203.0.113.9"#, "203.0.113.9"),
            (r#"for=203.0.113.9;x="a,\"b\";c""#, "203.0.113.9"),
        ] {
            assert_eq!(
                client(&r, "10.0.0.1", &[("forwarded", value)]),
                ip(expected),
                "{value}"
            );
        }
        // Elements naming no address stop at the proxy that wrote them.
        for value in [
            "for=unknown",
            "for=_hidden",
            "by=10.0.0.9",
            "for=203.0.113.9;for=198.51.100.1",
            r#"for="203.0.113.9"#,
            r#"for=203.0.113.9"x"#,
            "for=[2001:db8::1]x",
            "for",
        ] {
            assert_eq!(
                client(&r, "10.0.0.1", &[("forwarded", value)]),
                ip("10.0.0.1"),
                "{value}"
            );
        }
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[("forwarded", "for=203.0.113.9, for=unknown;by=10.0.0.2")]
            ),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn both_headers_must_agree_unless_one_is_chosen() {
        let auto = resolver("10.0.0.0/8");
        let agree = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ];
        assert_eq!(client(&auto, "10.0.0.1", &agree), ip("203.0.113.9"));
        // One of them was written by the client, and it is not known which.
        let disagree = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.1"),
        ];
        assert_eq!(client(&auto, "10.0.0.1", &disagree), ip("10.0.0.1"));
        let xff = ClientIpResolver::parse("10.0.0.0/8", ForwardedHeader::XForwardedFor).unwrap();
        assert_eq!(client(&xff, "10.0.0.1", &disagree), ip("203.0.113.9"));
        assert_eq!(
            client(&xff, "10.0.0.1", &[("forwarded", "for=198.51.100.1")]),
            ip("10.0.0.1")
        );
        let rfc = ClientIpResolver::parse("10.0.0.0/8", ForwardedHeader::Forwarded).unwrap();
        assert_eq!(client(&rfc, "10.0.0.1", &disagree), ip("198.51.100.1"));
        assert_eq!(
            client(&rfc, "10.0.0.1", &[("x-forwarded-for", "203.0.113.9")]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_header_that_is_not_ascii_names_no_address() {
        let r = resolver("10.0.0.0/8");
        let mut map = HeaderMap::new();
        map.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"203.0.113.9, \xff").unwrap(),
        );
        assert_eq!(r.resolve(Some(ip("10.0.0.1")), &map), Some(ip("10.0.0.1")));
    }
}
