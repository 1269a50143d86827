//! Which peer addresses the embedded TURN server may relay to (pure policy, no I/O).
//!
//! A TURN relay that forwards to loopback or private addresses lets anyone with credentials
//! reach services inside the server's network (coturn CVE-2020-26262). By default the relay
//! refuses every address that is not globally routable unicast; `allow_loopback_peers` (a
//! development switch, used by tests and the local demo where every peer is on 127.0.0.1)
//! lifts the restriction.

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
    /// Multicast (`224/4`, `ff00::/8`) or the limited broadcast address `255.255.255.255`.
    MulticastOrBroadcast,
}

/// Classifies `ip`: `Some(range)` when it is in a range that is not a legitimate relay peer.
///
/// IPv4-mapped and IPv4-compatible IPv6 addresses (`::ffff:a.b.c.d`) are judged as IPv4.
pub fn denied_range(ip: IpAddr) -> Option<DeniedRange> {
    match ip {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => denied_v4(v4),
            None => denied_v6(v6),
        },
    }
}

/// `true` when the TURN relay may exchange packets with `ip`.
pub fn peer_allowed(ip: IpAddr, allow_loopback_peers: bool) -> bool {
    allow_loopback_peers || denied_range(ip).is_none()
}

fn denied_v4(ip: Ipv4Addr) -> Option<DeniedRange> {
    let [a, b, _, _] = ip.octets();
    if a == 0 {
        Some(DeniedRange::Unspecified)
    } else if a == 127 {
        Some(DeniedRange::Loopback)
    } else if a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168) {
        Some(DeniedRange::Private)
    } else if a == 100 && (64..=127).contains(&b) {
        Some(DeniedRange::CarrierGradeNat)
    } else if a == 169 && b == 254 {
        Some(DeniedRange::LinkLocal)
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some(DeniedRange::MulticastOrBroadcast)
    } else {
        None
    }
}

fn denied_v6(ip: Ipv6Addr) -> Option<DeniedRange> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some(DeniedRange::Unspecified)
    } else if ip.is_loopback() {
        Some(DeniedRange::Loopback)
    } else if first & 0xfe00 == 0xfc00 {
        Some(DeniedRange::UniqueLocal)
    } else if first & 0xffc0 == 0xfe80 {
        Some(DeniedRange::LinkLocal)
    } else if first & 0xff00 == 0xff00 {
        Some(DeniedRange::MulticastOrBroadcast)
    } else if let Some(v4) = ip.to_ipv4() {
        // Deprecated IPv4-compatible form ::a.b.c.d (:: and ::1 were handled above).
        denied_v4(v4)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn class(s: &str) -> Option<DeniedRange> {
        denied_range(s.parse().unwrap())
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
    fn link_local() {
        assert_eq!(class("169.254.0.1"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("169.254.169.254"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("169.253.0.1"), None);
        assert_eq!(class("fe80::1"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("febf::1"), Some(DeniedRange::LinkLocal));
        assert_eq!(class("fec0::1"), None);
    }

    #[test]
    fn unique_local() {
        assert_eq!(class("fc00::1"), Some(DeniedRange::UniqueLocal));
        assert_eq!(class("fdff:ffff::1"), Some(DeniedRange::UniqueLocal));
        assert_eq!(class("fe00::1"), None);
        assert_eq!(class("fbff::1"), None);
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
    fn public_addresses_allowed() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "203.0.113.7",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(s), None, "{s}");
            assert!(peer_allowed(s.parse().unwrap(), false));
        }
    }

    #[test]
    fn dev_switch_allows_everything() {
        for s in ["127.0.0.1", "::1", "10.0.0.1", "0.0.0.0", "fe80::1"] {
            assert!(!peer_allowed(s.parse().unwrap(), false), "{s}");
            assert!(peer_allowed(s.parse().unwrap(), true), "{s}");
        }
    }

    proptest! {
        #[test]
        fn mapped_v6_agrees_with_v4(a: u8, b: u8, c: u8, d: u8) {
            let v4 = Ipv4Addr::new(a, b, c, d);
            prop_assert_eq!(denied_range(IpAddr::V4(v4)), denied_range(IpAddr::V6(v4.to_ipv6_mapped())));
        }
    }
}
