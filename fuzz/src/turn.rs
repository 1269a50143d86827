//! Targets for TURN credentials (§14) and the embedded TURN server's front door: the
//! username/password check, the stateless nonce check, and `Gate::screen` on raw datagrams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use signaling::server::peer_policy::PeerPolicy;
use signaling::server::turn_gate::{Gate, Screen};
use signaling::server::turn_nonce::{NonceKey, NONCE_LEN};
use signaling::server::turn_quota::quota_user;
use signaling::server::TurnLimits;
use signaling::turn_credentials::{
    parse_username, CredentialPolicy, TurnCredentialError, TurnSecret, MAX_USERNAME_LEN,
};

use crate::fixtures::{epoch, NOW};
use crate::input::Input;

/// The policy of the §17 example: secret `north`, credentials for 600 s, at most 3600 s.
fn policy() -> &'static Arc<CredentialPolicy> {
    static POLICY: OnceLock<Arc<CredentialPolicy>> = OnceLock::new();
    POLICY.get_or_init(|| {
        let secret = TurnSecret::new(b"north".to_vec()).expect("non-empty secret");
        Arc::new(CredentialPolicy::new(secret, 600, 3600).expect("600 <= 3600"))
    })
}

/// Client addresses the targets pick from (IPv4 and IPv6, public and loopback).
fn address(selector: u8) -> SocketAddr {
    let ip = match selector % 4 {
        0 => IpAddr::V4(Ipv4Addr::new(81, 2, 69, 160)),
        1 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        2 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        _ => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, 5000 + u16::from(selector >> 2))
}

/// TURN REST usernames and passwords (input: username, a newline, password): a username that
/// parses is within the length limit with a non-empty ID after the digits; the expiry window,
/// HMAC and long-term key agree with each other; credentials the policy issues verify; and
/// the stateless nonce check refuses malformed text and accepts what the key issued.
pub fn turn_credentials(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (username, password) = text.split_once('\n').unwrap_or((text, ""));
    let policy = policy();
    if let Ok((expiry, id)) = parse_username(username) {
        assert!(username.len() <= MAX_USERNAME_LEN);
        assert!(!id.is_empty() && username.ends_with(id));
        assert_eq!(quota_user(username), id);
        let _ = expiry;
    }
    let window = policy.check_username(username, NOW);
    if let Ok(expiry) = window {
        assert!((NOW..=NOW + policy.max_ttl()).contains(&expiry));
    }
    match policy.verify(username, password, NOW) {
        Ok(()) => assert_eq!(policy.password_for(username), password),
        Err(TurnCredentialError::BadPassword) => assert!(window.is_ok()),
        Err(_) => assert!(window.is_err()),
    }
    assert_eq!(
        policy.auth_key(username, "call", NOW).is_ok(),
        window.is_ok()
    );
    if !username.is_empty() {
        let issued = policy.issue(username, NOW, vec![]);
        if issued.username.len() <= MAX_USERNAME_LEN {
            assert_eq!(
                policy.verify(&issued.username, &issued.password, NOW),
                Ok(())
            );
            assert_eq!(quota_user(&issued.username), username);
        }
    }

    let key = NonceKey::new([7; 32], epoch());
    let from = address(data.first().copied().unwrap_or(0));
    let now = epoch() + Duration::from_secs(10);
    if key.check(password, from, now).is_ok() {
        assert_eq!(password.len(), NONCE_LEN);
    }
    let _ = key.check(username, from, now);
    let issued = key.issue(from, now);
    assert_eq!(key.check(&issued, from, now), Ok(()));
}

/// `Gate::screen` on a sequence of datagrams (each: a source selector, a 16-bit length, the
/// bytes) from a few addresses: nothing panics; a reply is only ever sent for a STUN request
/// (first two bits 00) and is itself a STUN message.
pub fn turn_gate(data: &[u8]) {
    let mut input = Input::new(data);
    let start = epoch();
    let mut gate = Gate::new(
        "call".into(),
        Arc::clone(policy()),
        TurnLimits::default(),
        Arc::new(PeerPolicy::new(false, [])),
        Arc::default(),
        start,
    );
    let mut now = start;
    while !input.is_empty() {
        let from = address(input.u8());
        now += Duration::from_millis(u64::from(input.u8()) * 16);
        let datagram = input.slice(1500);
        match gate.screen(datagram, from, now) {
            Screen::Reply(reply) => {
                assert_eq!(datagram[0] & 0xC0, 0);
                assert!(reply.len() >= 20);
                assert_eq!(&reply[4..8], &[0x21, 0x12, 0xA4, 0x42]);
            }
            Screen::Forward | Screen::Drop | Screen::Authenticated(_) => {}
        }
    }
}
