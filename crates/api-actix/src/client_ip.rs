//! The client's IP address: the TCP peer, or, when the peer is a trusted proxy
//! (`UMS_TRUSTED_PROXIES`), the client its `X-Forwarded-For` / `Forwarded` chain names. What
//! the rate limits count and what sessions and the audit trail record.
//!
//! A forwarded chain is read from the right, the end nearest this service: each entry was
//! written by the hop to its right, so it is believed only while that hop is a trusted proxy.
//! The client is the right-most entry that is not itself a trusted proxy; anything further
//! left was written by the client (or its own proxies) and is ignored, so a client cannot pick
//! its address by sending a header of its own.
//!
//! Nor can it spoil what the proxies wrote: each header line, and each entry of a line, is
//! read on its own, as bytes, from the right, so only the entries actually walked over are
//! ever parsed. A byte that is not visible ASCII, a stray quote or an unterminated quoted
//! string in what the client sent makes only the client's own entries unreadable, and the
//! walk stops at the proxy's entry to their right before it reaches them. An unreadable entry
//! that the walk does reach was written by a trusted proxy (the hop to its right) that named
//! nothing usable (`unknown`, an obfuscated name, garbage): the walk stops there, and the
//! client is the right-most address resolved so far, that trusted proxy. It is the nearest
//! hop known for certain, and attributing the request to it errs towards a shared (stricter)
//! budget, never towards an address the client chose.
//!
//! Only one header is read, the one the proxies are configured to write
//! (`UMS_FORWARDED_HEADER`, required with `UMS_TRUSTED_PROXIES`): when proxies write one,
//! the other is whatever the client sent, and reading both (and, say, falling back to the
//! proxy when they disagree) would let a client move itself to the proxy's address at will.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;

use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{HttpRequest, web};
use ipnet::IpNet;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Which header the trusted proxies name the client in (`UMS_FORWARDED_HEADER`). There is no
/// default: no single header is right for every proxy, and a wrong one can be a hole (a proxy
/// that writes `Forwarded` and passes a client's `X-Forwarded-For` on untouched would let the
/// client choose its address if `X-Forwarded-For` were read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` only (nginx, HAProxy, Envoy, Traefik, most load balancers);
    /// `Forwarded` is ignored.
    XForwardedFor,
    /// `Forwarded` (RFC 7239) only; `X-Forwarded-For` is ignored.
    Forwarded,
}

impl ForwardedHeader {
    /// `x-forwarded-for` or `forwarded` (any case).
    ///
    /// # Errors
    /// A message saying what is accepted (`auto`, which read either, is no longer).
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            "auto" => Err(
                "`auto` is no longer accepted (a client could choose which of the two \
                 headers counted): name the one your proxies write, `x-forwarded-for` or \
                 `forwarded`"
                    .to_owned(),
            ),
            _ => Err(format!(
                "must be `x-forwarded-for` or `forwarded`, got {raw:?}"
            )),
        }
    }

    fn name(self) -> HeaderName {
        match self {
            Self::XForwardedFor => X_FORWARDED_FOR,
            Self::Forwarded => header::FORWARDED,
        }
    }
}

/// How to find a request's client address: the trusted proxies and the header they write.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    header: ForwardedHeader,
}

impl Default for ClientIpResolver {
    /// Trusts no proxy (so no header is ever read).
    fn default() -> Self {
        Self {
            trusted: Vec::new(),
            header: ForwardedHeader::XForwardedFor,
        }
    }
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
    /// Trusts the proxies of `trusted`, a comma-separated list of IPv4 and IPv6 addresses and
    /// CIDR blocks (`10.0.0.1, 10.1.0.0/16, 2001:db8::/32`; empty trusts none), which name
    /// the client in `header`.
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
        // The lines in order; each is read from its right end, the last line first.
        let lines: Vec<&[u8]> = headers
            .get_all(self.header.name())
            .map(|value| value.as_bytes())
            .collect();
        let entries = lines.into_iter().rev().flat_map(|line| match self.header {
            ForwardedHeader::XForwardedFor => EntriesFromRight::x_forwarded_for(line),
            ForwardedHeader::Forwarded => EntriesFromRight::forwarded(line),
        });
        Some(self.walk(peer, entries))
    }

    /// The right-most entry of `entries` (right-most first; `None` for an entry that names no
    /// address) that is not a trusted proxy, reading leftwards from the trusted `peer`. An
    /// entry naming no address stops the walk at the hop that wrote it (the right-most
    /// address resolved so far); a chain of trusted proxies only ends at its left-most entry.
    fn walk(&self, peer: IpAddr, entries: impl Iterator<Item = Option<IpAddr>>) -> IpAddr {
        let mut client = peer;
        for entry in entries {
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

/// The entries of one header line, right-most first, each as the address it names (`None`
/// when it names none or cannot be read). Empty entries (` , `) are skipped, as RFC 9110
/// says of empty list elements. Lazy: an entry is only split off and parsed when the walk
/// gets to it.
struct EntriesFromRight<'a> {
    /// What is left of the line, left of every entry yielded so far.
    rest: &'a [u8],
    /// Whether the line is `Forwarded` (quoted strings, `for=` parameters) or
    /// `X-Forwarded-For` (bare addresses).
    forwarded: bool,
    /// Set once an element without a start was yielded: nothing left of it is read.
    done: bool,
}

impl<'a> EntriesFromRight<'a> {
    fn x_forwarded_for(line: &'a [u8]) -> Self {
        Self {
            rest: line,
            forwarded: false,
            done: false,
        }
    }

    fn forwarded(line: &'a [u8]) -> Self {
        Self {
            rest: line,
            forwarded: true,
            done: false,
        }
    }
}

impl Iterator for EntriesFromRight<'_> {
    type Item = Option<IpAddr>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let (entry, left) = if self.forwarded {
                match last_element(self.rest) {
                    Some(split) => split,
                    // An unterminated quoted string runs to the start of the line: the rest of
                    // the line is one unreadable entry.
                    None => {
                        self.done = true;
                        return Some(None);
                    }
                }
            } else {
                match self.rest.iter().rposition(|&b| b == b',') {
                    Some(comma) => (&self.rest[comma + 1..], Some(&self.rest[..comma])),
                    None => (self.rest, None),
                }
            };
            match left {
                Some(left) => self.rest = left,
                None => self.done = true,
            }
            let entry = trim_ows(entry);
            if entry.is_empty() {
                continue;
            }
            return Some(if self.forwarded {
                parse_forwarded_element(entry)
            } else {
                parse_node(entry)
            });
        }
    }
}

/// Spaces and tabs off both ends.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The last element of a `Forwarded` line and what lies left of its comma (`None` when it is
/// the first): the line scanned from its right end, a comma inside a quoted string not
/// splitting anything. `None` when a quoted string is still open at the start of the line.
///
/// Scanning from the right, a quote opens a quoted string, and inside one a quote closes it
/// unless an odd number of backslashes stands before it (a `quoted-pair`, `\"`). For a line
/// whose elements are well formed this splits exactly as reading from the left does; for one
/// that is not, the elements to the right of the flaw (the ones later hops appended) still
/// come out whole.
fn last_element(line: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut quoted = false;
    let mut i = line.len();
    while i > 0 {
        i -= 1;
        match line[i] {
            b'"' if quoted => {
                let backslashes = line[..i].iter().rev().take_while(|&&b| b == b'\\').count();
                if backslashes % 2 == 0 {
                    quoted = false;
                } else {
                    // The escaped quote and its backslash.
                    i -= 1;
                }
            }
            b'"' => quoted = true,
            b',' if !quoted => return Some((&line[i + 1..], Some(&line[..i]))),
            _ => {}
        }
    }
    (!quoted).then_some((line, None))
}

/// An address as a proxy may write it: `192.0.2.1`, `2001:db8::1`, `192.0.2.1:8080`,
/// `[2001:db8::1]` or `[2001:db8::1]:8080`; `None` for anything else, and for any byte that is
/// not visible ASCII.
fn parse_node(bytes: &[u8]) -> Option<IpAddr> {
    if !bytes.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
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

/// The address of one `Forwarded` element (RFC 7239: `for=192.0.2.60;proto=http`,
/// `for="[2001:db8::17]:4711"`): its `for` parameter. An element without a `for` (or with
/// two), with `for` naming no address (`unknown`, an obfuscated `_name`), or that does not
/// parse (a stray quote, a pair without `=`), names no address.
fn parse_forwarded_element(element: &[u8]) -> Option<IpAddr> {
    let mut found = None;
    for pair in split_outside_quotes(element, b';')? {
        let pair = trim_ows(pair);
        if pair.is_empty() {
            continue;
        }
        let equals = pair.iter().position(|&b| b == b'=')?;
        let (name, value) = (trim_ows(&pair[..equals]), trim_ows(&pair[equals + 1..]));
        if name.eq_ignore_ascii_case(b"for") {
            if found.is_some() {
                return None;
            }
            found = Some(unquote(value)?);
        }
    }
    parse_node(&found?)
}

/// `bytes` split at `separator` where it is not inside a quoted string; `None` when a quoted
/// string is not closed.
fn split_outside_quotes(bytes: &[u8], separator: u8) -> Option<Vec<&[u8]>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == separator && !quoted {
            parts.push(&bytes[start..i]);
            start = i + 1;
        }
    }
    if quoted {
        return None;
    }
    parts.push(&bytes[start..]);
    Some(parts)
}

/// A token as it is, or a quoted string without its quotes and escapes; `None` for a value
/// with a stray quote.
fn unquote(value: &[u8]) -> Option<Vec<u8>> {
    let Some(inner) = value.strip_prefix(b"\"") else {
        return (!value.contains(&b'"')).then(|| value.to_vec());
    };
    let inner = inner.strip_suffix(b"\"")?;
    let mut text = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => text.push(*bytes.next()?),
            b'"' => return None,
            b => text.push(b),
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

    /// Trusts `trusted`, which write `X-Forwarded-For`.
    fn resolver(trusted: &str) -> ClientIpResolver {
        ClientIpResolver::parse(trusted, ForwardedHeader::XForwardedFor).unwrap()
    }

    /// Trusts `trusted`, which write `Forwarded`.
    fn rfc_resolver(trusted: &str) -> ClientIpResolver {
        ClientIpResolver::parse(trusted, ForwardedHeader::Forwarded).unwrap()
    }

    /// Header lines, in order, as raw bytes.
    fn raw_headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let raw: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        raw_headers(&raw)
    }

    /// The client of a request from `peer` with `pairs` as headers.
    fn client(resolver: &ClientIpResolver, peer: &str, pairs: &[(&str, &str)]) -> IpAddr {
        resolver.resolve(Some(ip(peer)), &headers(pairs)).unwrap()
    }

    /// The same, with raw header values.
    fn raw_client(resolver: &ClientIpResolver, peer: &str, pairs: &[(&str, &[u8])]) -> IpAddr {
        resolver
            .resolve(Some(ip(peer)), &raw_headers(pairs))
            .unwrap()
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
        assert!(ClientIpResolver::trust_none().trusts_none());
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
            let error = ClientIpResolver::parse(bad, ForwardedHeader::XForwardedFor).unwrap_err();
            assert!(error.contains(named), "{bad}: {error}");
        }
    }

    #[test]
    fn the_header_is_one_of_two_and_auto_is_refused() {
        assert_eq!(
            ForwardedHeader::parse("X-Forwarded-For"),
            Ok(ForwardedHeader::XForwardedFor)
        );
        assert_eq!(
            ForwardedHeader::parse(" forwarded "),
            Ok(ForwardedHeader::Forwarded)
        );
        let auto = ForwardedHeader::parse("auto").unwrap_err();
        assert!(auto.contains("x-forwarded-for"), "{auto}");
        assert!(ForwardedHeader::parse("AUTO").is_err());
        assert!(ForwardedHeader::parse("x-real-ip").is_err());
        assert!(ForwardedHeader::parse("").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let spoofed = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ];
        for r in [
            resolver(""),
            resolver("10.0.0.0/8"),
            rfc_resolver("10.0.0.0/8"),
        ] {
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
        // No header, or an empty one: the proxy itself.
        assert_eq!(client(&r, "10.0.0.1", &[]), ip("10.0.0.1"));
        assert_eq!(
            client(&r, "10.0.0.1", &[("x-forwarded-for", " , ")]),
            ip("10.0.0.1")
        );
        // With ports and brackets, as some proxies write them.
        for written in ["203.0.113.9:4711", " 203.0.113.9 ", "\t203.0.113.9"] {
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
        // Empty list elements are skipped (RFC 9110), wherever they are.
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[("x-forwarded-for", "203.0.113.9,, 10.0.0.2 ,")]
            ),
            ip("203.0.113.9")
        );
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
            "\"",
            "[",
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
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[
                    ("x-forwarded-for", "1.2.3.4, 203.0.113.9"),
                    ("x-forwarded-for", "10.0.0.2")
                ]
            ),
            ip("203.0.113.9")
        );
    }

    /// The review's case: a byte that is not visible ASCII in the client's own
    /// `X-Forwarded-For` spoils only the client's entry, whether the proxy appended to the
    /// client's line or added a line of its own, and however many trusted hops follow.
    #[test]
    fn a_byte_that_is_not_ascii_spoils_only_the_entry_it_is_in() {
        let r = resolver("10.0.0.0/8");
        let xff = "x-forwarded-for";
        for line in [
            &b"1.2.3.4\xff, 203.0.113.9"[..],
            b"\xff, 203.0.113.9",
            b"\xff\xfe,203.0.113.9",
            b"caf\xc3\xa9, 203.0.113.9",
            b"1.2.3.4, \x80garbage, 203.0.113.9",
            b"\xff, 203.0.113.9, 10.0.0.2",
        ] {
            assert_eq!(
                raw_client(&r, "10.0.0.1", &[(xff, line)]),
                ip("203.0.113.9"),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // On lines of their own: the client's, then the proxies'.
        assert_eq!(
            raw_client(
                &r,
                "10.0.0.1",
                &[(xff, b"1.2.3.4\xff"), (xff, b"203.0.113.9")]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            raw_client(
                &r,
                "10.0.0.1",
                &[(xff, b"\xff"), (xff, b"203.0.113.9"), (xff, b"10.0.0.2")]
            ),
            ip("203.0.113.9")
        );
        // Written by a trusted proxy (the walk reaches it): the walk stops at that proxy.
        assert_eq!(
            raw_client(&r, "10.0.0.1", &[(xff, b"203.0.113.9, \xff")]),
            ip("10.0.0.1")
        );
        assert_eq!(
            raw_client(
                &r,
                "10.0.0.1",
                &[(xff, b"203.0.113.9, 1.2\xff.3.4, 10.0.0.2")]
            ),
            ip("10.0.0.2")
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
        let r = rfc_resolver("10.0.0.0/8");
        for (value, expected) in [
            ("for=203.0.113.9", "203.0.113.9"),
            ("For=203.0.113.9;proto=https;by=10.0.0.1", "203.0.113.9"),
            ("proto=https; for=203.0.113.9", "203.0.113.9"),
            (r#"for="203.0.113.9:4711""#, "203.0.113.9"),
            (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
            (r#"for="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
            ("for=198.51.100.1, for=203.0.113.9", "203.0.113.9"),
            ("for=203.0.113.9, for=10.0.0.2", "203.0.113.9"),
            ("for=203.0.113.9,, for=10.0.0.2 ,", "203.0.113.9"),
            // A quoted comma or semicolon does not split anything, left or right of the
            // client's element, nor does an escaped quote end a quoted string.
            (r#"for=1.2.3.4;x="a,b;c", for=203.0.113.9"#, "203.0.113.9"),
            (r#"for=203.0.113.9;x="a,\"b\";c""#, "203.0.113.9"),
            (r#"for=203.0.113.9;x="a,b", for=10.0.0.2"#, "203.0.113.9"),
            (
                r#"for=203.0.113.9;x="a,\"b\",c", for=10.0.0.2"#,
                "203.0.113.9",
            ),
            (r#"for=203.0.113.9;x="a\\", for=10.0.0.2"#, "203.0.113.9"),
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
        // An unterminated quoted string reached by the walk (a trusted hop wrote it) stops
        // it at that hop.
        assert_eq!(
            client(
                &r,
                "10.0.0.1",
                &[("forwarded", r#"for="203.0.113.9, for=10.0.0.2"#)]
            ),
            ip("10.0.0.2")
        );
    }

    /// The review's case: an unbalanced quote in the client's own `Forwarded` cannot swallow
    /// the elements the proxies appended, on its line or on lines of their own; nor can a
    /// byte that is not ASCII.
    #[test]
    fn a_clients_broken_forwarded_cannot_swallow_what_proxies_appended() {
        let r = rfc_resolver("10.0.0.0/8");
        for sent in [
            r#"for="1.2.3.4"#,
            r#"for=1.2.3.4;x="a"#,
            r#"x="a\", y="#,
            r#"""#,
            r#"for="[2001:db8::1]:80, for="#,
            r#"for=1.2.3.4;x="a\"#,
        ] {
            let appended = format!("{sent}, for=203.0.113.9");
            assert_eq!(
                client(&r, "10.0.0.1", &[("forwarded", &appended)]),
                ip("203.0.113.9"),
                "{appended}"
            );
            let through_two = format!("{sent}, for=203.0.113.9, for=10.0.0.2");
            assert_eq!(
                client(&r, "10.0.0.1", &[("forwarded", &through_two)]),
                ip("203.0.113.9"),
                "{through_two}"
            );
            assert_eq!(
                client(
                    &r,
                    "10.0.0.1",
                    &[("forwarded", sent), ("forwarded", "for=203.0.113.9")]
                ),
                ip("203.0.113.9"),
                "{sent} on a line of its own"
            );
        }
        assert_eq!(
            raw_client(
                &r,
                "10.0.0.1",
                &[("forwarded", b"for=1.2.3.4;x=\"\xff\", for=203.0.113.9")]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            raw_client(
                &r,
                "10.0.0.1",
                &[
                    ("forwarded", b"for=\"\xff"),
                    ("forwarded", b"for=203.0.113.9")
                ]
            ),
            ip("203.0.113.9")
        );
    }

    /// Only the configured header is read: the other one is whatever the client sent, so it
    /// neither names the client nor, by disagreeing, moves it to the proxy.
    #[test]
    fn only_the_configured_header_is_read() {
        let both = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.1"),
        ];
        let xff = resolver("10.0.0.0/8");
        assert_eq!(client(&xff, "10.0.0.1", &both), ip("203.0.113.9"));
        assert_eq!(
            client(&xff, "10.0.0.1", &[("forwarded", "for=198.51.100.1")]),
            ip("10.0.0.1")
        );
        let rfc = rfc_resolver("10.0.0.0/8");
        assert_eq!(client(&rfc, "10.0.0.1", &both), ip("198.51.100.1"));
        assert_eq!(
            client(&rfc, "10.0.0.1", &[("x-forwarded-for", "203.0.113.9")]),
            ip("10.0.0.1")
        );
        // A broken header of the other kind changes nothing either.
        assert_eq!(
            raw_client(
                &xff,
                "10.0.0.1",
                &[
                    ("forwarded", b"for=\"\xff"),
                    ("x-forwarded-for", b"203.0.113.9")
                ]
            ),
            ip("203.0.113.9")
        );
    }

    /// The forwarded elements of a line, right-most first, as the walk reads them.
    #[test]
    fn lines_split_into_entries_from_the_right() {
        let xff: Vec<Option<IpAddr>> =
            EntriesFromRight::x_forwarded_for(b"1.2.3.4, x, ,5.6.7.8").collect();
        assert_eq!(xff, [Some(ip("5.6.7.8")), None, Some(ip("1.2.3.4"))]);
        // The quoted comma does not split; the unterminated quote at the left is one entry
        // that names nothing, and ends the line.
        let rfc: Vec<Option<IpAddr>> =
            EntriesFromRight::forwarded(br#"for="oops, for=1.2.3.4;x="a,b", , for=5.6.7.8"#)
                .collect();
        assert_eq!(rfc, [Some(ip("5.6.7.8")), Some(ip("1.2.3.4")), None]);
        assert_eq!(
            last_element(br#"a="x,y""#),
            Some((&br#"a="x,y""#[..], None))
        );
        assert_eq!(last_element(br#"a="x"#), None);
        assert_eq!(
            last_element(br#"a, b="\",""#),
            Some((&br#" b="\",""#[..], Some(&b"a"[..])))
        );
    }
}
