//! Which peer addresses the embedded TURN server may relay to (pure policy, no I/O).
//!
//! A TURN relay that forwards to loopback or private addresses lets anyone with credentials
//! reach services inside the server's network (coturn CVE-2020-26262). The relay therefore
//! decides by allow-list: only globally routable unicast addresses pass. IPv6 forms that carry
//! an IPv4 address (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32`)
//! are judged by the IPv4 address they lead to, and the server's own addresses are refused.
//! `allow_loopback_peers` (a development switch, used by tests and the local demo where every
//! peer is on 127.0.0.1) lifts every restriction.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a peer address is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedRange {
    /// `0.0.0.0/8` or `::`.
    Unspecified,
    /// `127.0.0.0/8` or `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 carrier-grade NAT: `100.64/10`.
    CarrierGradeNat,
    /// `169.254/16` or `fe80::/10`.
    LinkLocal,
    /// IPv6 unique local `fc00::/7`.
    UniqueLocal,
    /// IPv6 site-local `fec0::/10` (deprecated, still routed inside some sites).
    SiteLocal,
    /// Multicast (`224/4`, `ff00::/8`) or the limited broadcast address `255.255.255.255`.
    MulticastOrBroadcast,
    /// IETF protocol assignments: `192.0.0.0/24`, `2001::/23` (except Teredo).
    ProtocolAssignment,
    /// Documentation: TEST-NET-1/2/3 (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`),
    /// `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Benchmarking: `198.18.0.0/15`.
    Benchmarking,
    /// Reserved: `240.0.0.0/4`, the deprecated 6to4 relay anycast `192.88.99.0/24`.
    Reserved,
    /// IPv6 outside global unicast `2000::/3` and not a decoded IPv4 form (e.g. `100::/64`,
    /// IPv4-compatible `::a.b.c.d`, the local-use NAT64 prefix `64:ff9b:1::/48`).
    NotGlobalUnicast,
    /// One of the server's own addresses (an interface address or the advertised public IP).
    OwnAddress,
}

/// Classifies `ip` by address alone: `Some(range)` when it is not a legitimate relay peer.
///
/// IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`), 6to4 (`2002:AABB:CCDD::/48`) and
/// Teredo (`2001:0:SERVER:…:~CLIENT`) addresses are judged by their embedded IPv4 addresses.
pub fn denied_range(ip: IpAddr) -> Option<DeniedRange> {
    match ip {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => denied_v6(v6),
    }
}

/// The relay's peer policy: the address allow-list plus the server's own addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Development switch: every peer is allowed.
    pub allow_loopback_peers: bool,
    /// The server's own addresses (interfaces, advertised IP), always refused.
    pub own_addresses: HashSet<IpAddr>,
}

impl PeerPolicy {
    /// A policy refusing `own_addresses` on top of the allow-list.
    pub fn new(
        allow_loopback_peers: bool,
        own_addresses: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        Self {
            allow_loopback_peers,
            own_addresses: own_addresses.into_iter().map(canonical).collect(),
        }
    }

    /// `Ok(())` when the relay may exchange packets with `ip`, otherwise why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), DeniedRange> {
        if self.allow_loopback_peers {
            return Ok(());
        }
        if let Some(range) = denied_range(ip) {
            return Err(range);
        }
        if self.own_addresses.contains(&canonical(ip)) {
            return Err(DeniedRange::OwnAddress);
        }
        Ok(())
    }

    /// `true` when the relay may exchange packets with `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so one address has one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn denied_v4(ip: Ipv4Addr) -> Option<DeniedRange> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        (0, _, _) => DeniedRange::Unspecified,
        (127, _, _) => DeniedRange::Loopback,
        (10, _, _) | (192, 168, _) => DeniedRange::Private,
        (172, 16..=31, _) => DeniedRange::Private,
        (100, 64..=127, _) => DeniedRange::CarrierGradeNat,
        (169, 254, _) => DeniedRange::LinkLocal,
        (192, 0, 0) => DeniedRange::ProtocolAssignment,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => DeniedRange::Documentation,
        (192, 88, 99) => DeniedRange::Reserved,
        (198, 18..=19, _) => DeniedRange::Benchmarking,
        (224..=239, _, _) => DeniedRange::MulticastOrBroadcast,
        (255, 255, 255) if ip.is_broadcast() => DeniedRange::MulticastOrBroadcast,
        (240..=255, _, _) => DeniedRange::Reserved,
        _ => return None,
    };
    Some(range)
}

fn denied_v6(ip: Ipv6Addr) -> Option<DeniedRange> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return denied_v4(v4);
    }
    if ip.is_unspecified() {
        return Some(DeniedRange::Unspecified);
    }
    if ip.is_loopback() {
        return Some(DeniedRange::Loopback);
    }
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits are the IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return denied_v4(low_v4(ip));
    }
    // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 leads to AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return denied_v4(v4_from(s[1], s[2]));
    }
    // Teredo (RFC 4380): 2001:0:SERVER:FLAGS:PORT:CLIENT with port and client inverted.
    // Packets reach the client through the server, so both must be acceptable.
    if s[0] == 0x2001 && s[1] == 0 {
        let server = v4_from(s[2], s[3]);
        let client = v4_from(!s[6], !s[7]);
        return denied_v4(server).or_else(|| denied_v4(client));
    }
    let range = match s[0] {
        0xff00..=0xffff => DeniedRange::MulticastOrBroadcast,
        0xfe80..=0xfebf => DeniedRange::LinkLocal,
        0xfec0..=0xfeff => DeniedRange::SiteLocal,
        0xfc00..=0xfdff => DeniedRange::UniqueLocal,
        0x2001 if s[1] == 0x0db8 => DeniedRange::Documentation,
        // 2001::/23: IETF protocol assignments (ORCHID, benchmarking 2001:2::/48, …).
        0x2001 if s[1] < 0x0200 => DeniedRange::ProtocolAssignment,
        0x3fff if s[1] < 0x1000 => DeniedRange::Documentation,
        0x2000..=0x3fff => return None,
        _ => DeniedRange::NotGlobalUnicast,
    };
    Some(range)
}

fn v4_from(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let s = ip.segments();
    v4_from(s[6], s[7])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn class(s: &str) -> Option<DeniedRange> {
        denied_range(s.parse().unwrap())
    }

    fn strict() -> PeerPolicy {
        PeerPolicy::new(false, [])
    }

    #[test]
    fn unspecified() {
        assert_eq!(class("0.0.0.0"), Some(DeniedRange::Unspecified));
        assert_eq!(class("0.1.2.3"), Some(DeniedRange::Unspecified));
        assert_eq!(class("::"), Some(DeniedRange::Unspecified));
    }

    #[test]
    fn loopback() {
        for s in [
            "127.0.0.1",
            "127.255.255.254",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(class(s), Some(DeniedRange::Loopback), "{s}");
        }
    }

    #[test]
    fn rfc1918() {
        for s in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "::ffff:10.1.1.1",
        ] {
            assert_eq!(class(s), Some(DeniedRange::Private), "{s}");
        }
        for s in [
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "11.0.0.1",
            "9.255.255.255",
        ] {
            assert_eq!(class(s), None, "{s}");
        }
    }

    #[test]
    fn cgnat() {
        for s in ["100.64.0.0", "100.127.255.255", "100.100.1.1"] {
            assert_eq!(class(s), Some(DeniedRange::CarrierGradeNat), "{s}");
        }
        assert_eq!(class("100.63.255.255"), None);
        assert_eq!(class("100.128.0.0"), None);
    }

    #[test]
    fn link_local_and_site_local() {
        assert_eq!(class("169.254.0.1"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("169.254.169.254"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("169.253.0.1"), None);
        assert_eq!(class("fe80::1"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("febf::1"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("fec0::1"), Some(DeniedRange::SiteLocal));
        assert_eq!(class("feff::1"), Some(DeniedRange::SiteLocal));
    }

    #[test]
    fn unique_local() {
        assert_eq!(class("fc00::1"), Some(DeniedRange::UniqueLocal));
        assert_eq!(class("fdff:ffff::1"), Some(DeniedRange::UniqueLocal));
        assert_eq!(class("fe00::1"), Some(DeniedRange::NotGlobalUnicast));
        assert_eq!(class("fbff::1"), Some(DeniedRange::NotGlobalUnicast));
    }

    #[test]
    fn multicast_and_broadcast() {
        assert_eq!(class("224.0.0.1"), Some(DeniedRange::MulticastOrBroadcast));
        assert_eq!(
            class("239.255.255.250"),
            Some(DeniedRange::MulticastOrBroadcast)
        );
        assert_eq!(
            class("255.255.255.255"),
            Some(DeniedRange::MulticastOrBroadcast)
        );
        assert_eq!(class("ff02::1"), Some(DeniedRange::MulticastOrBroadcast));
    }

    #[test]
    fn special_purpose_v4_ranges() {
        for (s, want) in [
            ("192.0.0.1", DeniedRange::ProtocolAssignment),
            ("192.0.0.255", DeniedRange::ProtocolAssignment),
            ("192.0.2.1", DeniedRange::Documentation),
            ("198.51.100.7", DeniedRange::Documentation),
            ("203.0.113.7", DeniedRange::Documentation),
            ("198.18.0.1", DeniedRange::Benchmarking),
            ("198.19.255.255", DeniedRange::Benchmarking),
            ("192.88.99.1", DeniedRange::Reserved),
            ("240.0.0.1", DeniedRange::Reserved),
            ("255.255.255.254", DeniedRange::Reserved),
        ] {
            assert_eq!(class(s), Some(want), "{s}");
        }
        for s in [
            "192.0.1.255",
            "192.0.3.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.114.1",
        ] {
            assert_eq!(class(s), None, "{s}");
        }
    }

    #[test]
    fn special_purpose_v6_ranges() {
        for (s, want) in [
            ("2001:db8::1", DeniedRange::Documentation),
            ("3fff::1", DeniedRange::Documentation),
            ("2001:2::1", DeniedRange::ProtocolAssignment),
            ("2001:20::1", DeniedRange::ProtocolAssignment),
            ("100::1", DeniedRange::NotGlobalUnicast),
            ("::8.8.8.8", DeniedRange::NotGlobalUnicast),
            ("64:ff9b:1::808:808", DeniedRange::NotGlobalUnicast),
            ("4000::1", DeniedRange::NotGlobalUnicast),
        ] {
            assert_eq!(class(s), Some(want), "{s}");
        }
        assert_eq!(class("2001:200::1"), None);
        assert_eq!(class("3fff:1000::1"), None);
    }

    #[test]
    fn embedded_ipv4_is_judged() {
        // NAT64, 6to4, Teredo pointing inside vs. outside.
        assert_eq!(class("64:ff9b::10.0.0.1"), Some(DeniedRange::Private));
        assert_eq!(class("64:ff9b::127.0.0.1"), Some(DeniedRange::Loopback));
        assert_eq!(class("64:ff9b::8.8.8.8"), None);
        assert_eq!(class("2002:c0a8:0101::1"), Some(DeniedRange::Private));
        assert_eq!(class("2002:7f00:1::1"), Some(DeniedRange::Loopback));
        assert_eq!(class("2002:0808:0808::1"), None);
        // Teredo: server 65.54.227.120, client 192.168.1.1 (inverted: 3f57:fefe).
        assert_eq!(
            class("2001:0:4136:e378:8000:63bf:3f57:fefe"),
            Some(DeniedRange::Private)
        );
        // Teredo with a client of 8.8.8.8 (inverted f7f7:f7f7) and a public server.
        assert_eq!(class("2001:0:4136:e378:8000:63bf:f7f7:f7f7"), None);
        // Teredo whose server is loopback.
        assert_eq!(
            class("2001:0:7f00:1:8000:63bf:f7f7:f7f7"),
            Some(DeniedRange::Loopback)
        );
    }

    #[test]
    fn public_addresses_allowed() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "81.2.69.160",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(s), None, "{s}");
            assert!(strict().allows(s.parse().unwrap()), "{s}");
        }
    }

    #[test]
    fn own_addresses_are_refused() {
        let own: IpAddr = "81.2.69.160".parse().unwrap();
        let policy = PeerPolicy::new(false, [own]);
        assert_eq!(policy.check(own), Err(DeniedRange::OwnAddress));
        assert_eq!(
            policy.check("::ffff:81.2.69.160".parse().unwrap()),
            Err(DeniedRange::OwnAddress)
        );
        assert!(policy.allows("81.2.69.161".parse().unwrap()));
    }

    #[test]
    fn dev_switch_allows_everything() {
        let own: IpAddr = "127.0.0.1".parse().unwrap();
        let dev = PeerPolicy::new(true, [own]);
        for s in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "0.0.0.0",
            "fe80::1",
            "203.0.113.1",
        ] {
            assert!(!strict().allows(s.parse().unwrap()), "{s}");
            assert!(dev.allows(s.parse().unwrap()), "{s}");
        }
    }

    fn v4() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>().prop_map(Ipv4Addr::from)
    }

    proptest! {
        #[test]
        fn mapped_v6_agrees_with_v4(v4 in v4()) {
            prop_assert_eq!(denied_range(IpAddr::V4(v4)), denied_range(IpAddr::V6(v4.to_ipv6_mapped())));
        }

        #[test]
        fn nat64_agrees_with_v4(v4 in v4()) {
            let v6 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(u32::from(v4)));
            prop_assert_eq!(denied_range(IpAddr::V6(v6)), denied_v4(v4));
        }

        #[test]
        fn sixtofour_agrees_with_v4(v4 in v4(), subnet: u16, iid: u64) {
            let v6 = Ipv6Addr::from(
                (0x2002_u128 << 112) | (u128::from(u32::from(v4)) << 80) | (u128::from(subnet) << 64) | u128::from(iid),
            );
            prop_assert_eq!(denied_range(IpAddr::V6(v6)), denied_v4(v4));
        }

        #[test]
        fn teredo_needs_both_ends_allowed(server in v4(), client in v4(), flags: u16, port: u16) {
            let v6 = Ipv6Addr::from(
                (0x2001_0000_u128 << 96)
                    | (u128::from(u32::from(server)) << 64)
                    | (u128::from(flags) << 48)
                    | (u128::from(!port) << 32)
                    | u128::from(!u32::from(client)),
            );
            let allowed = denied_range(IpAddr::V6(v6)).is_none();
            prop_assert_eq!(allowed, denied_v4(server).is_none() && denied_v4(client).is_none());
        }

        #[test]
        fn allowed_v6_is_global_unicast_or_decoded(bits: u128) {
            let ip = Ipv6Addr::from(bits);
            if denied_range(IpAddr::V6(ip)).is_none() {
                let first = ip.segments()[0];
                let global = (0x2000..=0x3fff).contains(&first);
                let decoded = ip.to_ipv4_mapped().is_some() || ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
                prop_assert!(global || decoded, "{ip} allowed");
            }
        }

        #[test]
        fn private_ranges_denied_whatever_the_host_bits(host: u32) {
            for (net, bits) in [(0x0a00_0000u32, 8), (0xac10_0000, 12), (0xc0a8_0000, 16), (0x7f00_0000, 8), (0xc612_0000, 15), (0xf000_0000, 4), (0xc000_0000, 24)] {
                let ip = Ipv4Addr::from(net | (host >> bits));
                prop_assert!(denied_v4(ip).is_some(), "{ip} allowed");
            }
        }

        #[test]
        fn own_address_is_refused_whatever_it_is(bits: u128, dev: bool) {
            let ip = IpAddr::V6(Ipv6Addr::from(bits));
            let policy = PeerPolicy::new(dev, [ip]);
            prop_assert_eq!(policy.allows(ip), dev);
        }
    }
}
