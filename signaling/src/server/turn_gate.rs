//! The front door of the embedded TURN server (sans-IO): what each datagram on the TURN port
//! gets before the `turn` crate sees it.
//!
//! Distance from the wire: the shell in [`super::turn`] reads a datagram and asks [`Gate`]. The
//! gate answers unauthenticated requests itself with a stateless nonce ([`super::turn_nonce`]),
//! so the crate's never-swept nonce map stays empty; replays cached Allocate answers
//! ([`super::turn_retransmit`]); spends per-address budgets ([`super::turn_rate`]) on every answer
//! sent without checking credentials; and, for requests with a valid nonce, enforces the
//! allocation quotas, the permission cap ([`super::turn_quota`]) and the peer policy
//! ([`super::peer_policy`]) with signed 486/508/403 answers. Everything else goes to the crate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use stun::attributes::{
    ATTR_CHANNEL_NUMBER, ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS,
};
use stun::error_code::{
    ErrorCode, ErrorCodeAttribute, CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN,
    CODE_INSUFFICIENT_CAPACITY, CODE_STALE_NONCE, CODE_UNAUTHORIZED,
};
use stun::integrity::MessageIntegrity;
use stun::message::{
    Message, MessageType, Setter, CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST,
    MAGIC_COOKIE, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION,
    METHOD_REFRESH,
};
use stun::textattrs::TextAttribute;

use super::peer_policy::PeerPolicy;
use super::turn_nonce::NonceKey;
use super::turn_quota::{quota_user, PeerBook, QuotaRefusal, TurnLimits};
use super::turn_rate::{AddressBudget, DEFAULT_TABLE_CAPACITY};
use super::turn_retransmit::{AllocateCache, RequestPrint};
use crate::turn_credentials::CredentialPolicy;

/// Length of a MESSAGE-INTEGRITY (HMAC-SHA1) value.
const INTEGRITY_LEN: usize = 20;

/// What to do with one datagram.
#[derive(Debug)]
pub enum Screen {
    /// Say nothing (malformed, unexpected, or over an answer budget).
    Drop,
    /// Send these bytes back to the source; the crate does not see the datagram.
    Reply(Vec<u8>),
    /// Hand the datagram to the `turn` crate as it is (ChannelData, Send indications, Binding
    /// requests, requests the crate refuses without allocating anything).
    Forward,
    /// A request with a valid nonce: ask [`Gate::admit`] once the shell knows the allocation
    /// state, then hand it on with its nonce in the crate's nonce map.
    Authenticated(Checked),
}

/// A request whose nonce this server issued to its source.
#[derive(Debug)]
pub struct Checked {
    message: Message,
    nonce: String,
}

impl Checked {
    /// The nonce to put in the crate's nonce map while it handles this request.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Whether this is an Allocate request.
    pub fn is_allocate(&self) -> bool {
        self.message.typ.method == METHOD_ALLOCATE
    }

    /// Whether this request installs permissions (CreatePermission or ChannelBind).
    pub fn installs_permissions(&self) -> bool {
        let method = self.message.typ.method;
        method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND
    }
}

/// What the shell knows about allocations when a checked request arrives.
#[derive(Debug, Default)]
pub struct AllocationState<'a> {
    /// Usernames of all live allocations.
    pub usernames: Vec<&'a str>,
    /// Client addresses of all live allocations.
    pub clients: Vec<SocketAddr>,
    /// Whether the requesting client has an allocation.
    pub has_allocation: bool,
}

/// Sizes of the gate's state, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateSizes {
    /// Addresses with an unauthenticated-answer budget.
    pub unauthenticated_budgets: usize,
    /// Addresses with a replay budget.
    pub replay_budgets: usize,
    /// Allocations with recorded permissions/channels.
    pub permission_books: usize,
}

/// The front door's state.
#[derive(Debug)]
pub struct Gate {
    nonces: NonceKey,
    realm: String,
    credentials: Arc<CredentialPolicy>,
    limits: TurnLimits,
    peers: Arc<PeerPolicy>,
    unauthenticated: AddressBudget,
    replays: AddressBudget,
    cache: Arc<Mutex<AllocateCache>>,
    book: PeerBook,
}

impl Gate {
    /// A gate for `realm` whose clock starts at `now`.
    pub fn new(
        realm: String,
        credentials: Arc<CredentialPolicy>,
        limits: TurnLimits,
        peers: Arc<PeerPolicy>,
        cache: Arc<Mutex<AllocateCache>>,
        now: Instant,
    ) -> Self {
        Self {
            nonces: NonceKey::random(now),
            unauthenticated: AddressBudget::new(
                limits.unauthenticated_rate,
                DEFAULT_TABLE_CAPACITY,
                now,
            ),
            replays: AddressBudget::new(limits.replay_rate, DEFAULT_TABLE_CAPACITY, now),
            realm,
            credentials,
            limits,
            peers,
            cache,
            book: PeerBook::default(),
        }
    }

    /// First look at a datagram from `from`.
    pub fn screen(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> Screen {
        // ChannelData (first two bits 01): relayed media, the crate checks the binding.
        if datagram.first().is_some_and(|b| b & 0xC0 == 0x40) {
            return Screen::Forward;
        }
        // Every STUN message starts with two zero bits (RFC 5389 §6); the `stun` crate does not
        // check them, so without this a datagram starting 10/11 was answered as a request
        // (found by the `turn_gate` fuzz target).
        if datagram.first().is_some_and(|b| b & 0xC0 != 0) {
            return Screen::Drop;
        }
        let mut m = Message {
            raw: datagram.to_vec(),
            ..Message::default()
        };
        if m.decode().is_err() {
            return Screen::Drop;
        }
        if m.typ.class == CLASS_INDICATION {
            return Screen::Forward;
        }
        if m.typ.class != CLASS_REQUEST {
            return Screen::Drop;
        }
        let method = m.typ.method;
        if method == METHOD_BINDING {
            return self.unauthenticated_answer(from, now, Screen::Forward);
        }
        let turn_method = [
            METHOD_ALLOCATE,
            METHOD_REFRESH,
            METHOD_CREATE_PERMISSION,
            METHOD_CHANNEL_BIND,
        ]
        .contains(&method);
        if !turn_method {
            return Screen::Drop;
        }
        let print = request_print(&m);
        if method == METHOD_ALLOCATE {
            if let Some(replay) = self.replay(from, &m, print.as_ref(), now) {
                return replay;
            }
        }
        if print.is_none() {
            let nonce = self.nonces.issue(from, now);
            return match challenge(&m, CODE_UNAUTHORIZED, nonce, &self.realm) {
                Some(reply) => self.unauthenticated_answer(from, now, Screen::Reply(reply)),
                None => Screen::Drop,
            };
        }
        let Ok(nonce) = TextAttribute::get_from_as(&m, ATTR_NONCE) else {
            // The crate answers 400 without touching its nonce map.
            return self.unauthenticated_answer(from, now, Screen::Forward);
        };
        if let Err(err) = self.nonces.check(&nonce.text, from, now) {
            tracing::debug!(%from, %err, "TURN request with a stale nonce");
            let fresh = self.nonces.issue(from, now);
            return match challenge(&m, CODE_STALE_NONCE, fresh, &self.realm) {
                Some(reply) => self.unauthenticated_answer(from, now, Screen::Reply(reply)),
                None => Screen::Drop,
            };
        }
        Screen::Authenticated(Checked {
            message: m,
            nonce: nonce.text,
        })
    }

    /// Second look at a request with a valid nonce, given the allocation state: `Forward` to
    /// hand it to the crate, or a signed refusal. `unix_now` dates the credentials.
    pub fn admit(
        &mut self,
        req: &mut Checked,
        from: SocketAddr,
        state: &AllocationState<'_>,
        now: Instant,
        unix_now: u64,
    ) -> Screen {
        let installs_permissions = req.installs_permissions();
        let m = &mut req.message;
        let refusal = if m.typ.method == METHOD_ALLOCATE {
            self.book.retain_live(|c| state.clients.contains(c));
            let Some(user) = TextAttribute::get_from_as(m, ATTR_USERNAME).ok() else {
                return Screen::Forward;
            };
            let user = quota_user(&user.text).to_owned();
            let held = state
                .usernames
                .iter()
                .filter(|u| quota_user(u) == user)
                .count();
            match self.limits.admit_allocation(held, state.usernames.len()) {
                Err(refusal) => Some(refusal_code(refusal)),
                // With an allocation on this 5-tuple the crate answers 437: nothing to note.
                Ok(()) if state.has_allocation => None,
                Ok(()) => {
                    self.book.forget(from);
                    if let Some(print) = request_print(m) {
                        if let Ok(mut cache) = self.cache.lock() {
                            cache.on_request(from, m.transaction_id.0, print, now);
                        }
                    }
                    None
                }
            }
        } else if installs_permissions && state.has_allocation {
            let peers = peer_addresses(m);
            if peers.iter().any(|p| !self.peers.allows(*p)) {
                Some(CODE_FORBIDDEN)
            } else {
                let channel = channel_number(m);
                self.book
                    .admit(
                        from,
                        &peers,
                        channel,
                        self.limits.permissions_per_allocation,
                        now,
                    )
                    .err()
                    .map(refusal_code)
            }
        } else {
            None
        };
        let Some(code) = refusal else {
            return Screen::Forward;
        };
        // Refusals are signed, so first check the request's own integrity; a request that fails
        // goes to the crate, which answers 400 as before.
        let Some(key) = self.verified_key(m, unix_now) else {
            return Screen::Forward;
        };
        tracing::debug!(%from, code = code.0, "TURN request refused by quota or peer policy");
        match signed_error(m, code, key) {
            Some(reply) => Screen::Reply(reply),
            None => Screen::Drop,
        }
    }

    /// Sizes of the state kept, for tests and logs.
    pub fn sizes(&self) -> GateSizes {
        GateSizes {
            unauthenticated_budgets: self.unauthenticated.len(),
            replay_budgets: self.replays.len(),
            permission_books: self.book.len(),
        }
    }

    fn unauthenticated_answer(&mut self, from: SocketAddr, now: Instant, answer: Screen) -> Screen {
        if self.unauthenticated.try_take(from.ip(), now) {
            answer
        } else {
            tracing::debug!(%from, "TURN answer budget spent; dropped");
            Screen::Drop
        }
    }

    fn replay(
        &mut self,
        from: SocketAddr,
        m: &Message,
        print: Option<&RequestPrint>,
        now: Instant,
    ) -> Option<Screen> {
        let cached = self
            .cache
            .lock()
            .ok()?
            .on_receive(from, m.transaction_id.0, print, now)
            .map(<[u8]>::to_vec)?;
        if self.replays.try_take(from.ip(), now) {
            tracing::debug!(%from, "answered a retransmitted Allocate from the cache");
            Some(Screen::Reply(cached))
        } else {
            Some(Screen::Drop)
        }
    }

    fn verified_key(&self, m: &mut Message, unix_now: u64) -> Option<Vec<u8>> {
        let user = TextAttribute::get_from_as(m, ATTR_USERNAME).ok()?;
        let key = self
            .credentials
            .auth_key(&user.text, &self.realm, unix_now)
            .ok()?;
        // `request_print` established a 20-byte integrity value, which MessageIntegrity::check
        // needs to stay within the message.
        request_print(m)?;
        MessageIntegrity(key.clone()).check(m).ok()?;
        Some(key)
    }
}

fn refusal_code(refusal: QuotaRefusal) -> ErrorCode {
    match refusal {
        QuotaRefusal::UserQuota => CODE_ALLOC_QUOTA_REACHED,
        QuotaRefusal::ServerFull | QuotaRefusal::PeersFull => CODE_INSUFFICIENT_CAPACITY,
    }
}

/// The length and MESSAGE-INTEGRITY of a request, `None` without a well-formed integrity.
fn request_print(m: &Message) -> Option<RequestPrint> {
    let integrity = m.get(ATTR_MESSAGE_INTEGRITY).ok()?;
    (integrity.len() == INTEGRITY_LEN).then_some(RequestPrint {
        len: m.raw.len(),
        integrity,
    })
}

/// Every XOR-PEER-ADDRESS of `m` that decodes (the crate refuses requests where one does not).
fn peer_addresses(m: &Message) -> Vec<IpAddr> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| xor_address(&a.value, &m.transaction_id.0))
        .collect()
}

/// Decodes an XOR-MAPPED-ADDRESS-style value (RFC 8489 §14.2): `0, family, x-port, x-address`.
fn xor_address(v: &[u8], txid: &[u8; 12]) -> Option<IpAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match (v.get(1)?, v.len()) {
        (1, 8) => {
            let mut ip = [0u8; 4];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = v[4 + i] ^ cookie[i];
            }
            Some(IpAddr::V4(Ipv4Addr::from(ip)))
        }
        (2, 20) => {
            let mut pad = [0u8; 16];
            pad[..4].copy_from_slice(&cookie);
            pad[4..].copy_from_slice(txid);
            let mut ip = [0u8; 16];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = v[4 + i] ^ pad[i];
            }
            Some(IpAddr::V6(Ipv6Addr::from(ip)))
        }
        _ => None,
    }
}

fn channel_number(m: &Message) -> Option<u16> {
    let v = m.get(ATTR_CHANNEL_NUMBER).ok()?;
    Some(u16::from_be_bytes([*v.first()?, *v.get(1)?]))
}

fn error_type(m: &Message) -> MessageType {
    MessageType::new(m.typ.method, CLASS_ERROR_RESPONSE)
}

/// A 401/438 answer: error code, NONCE and REALM (RFC 8656 §4, long-term credentials).
fn challenge(m: &Message, code: ErrorCode, nonce: String, realm: &str) -> Option<Vec<u8>> {
    build(
        m,
        vec![
            Box::new(ErrorCodeAttribute {
                code,
                reason: Vec::new(),
            }),
            Box::new(TextAttribute::new(ATTR_NONCE, nonce)),
            Box::new(TextAttribute::new(
                stun::attributes::ATTR_REALM,
                realm.to_owned(),
            )),
        ],
    )
}

/// A refusal of an authenticated request, with MESSAGE-INTEGRITY (RFC 8489 §9.2.4).
fn signed_error(m: &Message, code: ErrorCode, key: Vec<u8>) -> Option<Vec<u8>> {
    build(
        m,
        vec![
            Box::new(ErrorCodeAttribute {
                code,
                reason: Vec::new(),
            }),
            Box::new(MessageIntegrity(key)),
        ],
    )
}

fn build(m: &Message, attrs: Vec<Box<dyn Setter>>) -> Option<Vec<u8>> {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(Message {
            transaction_id: m.transaction_id,
            ..Message::default()
        }),
        Box::new(error_type(m)),
    ];
    setters.extend(attrs);
    let mut out = Message::new();
    match out.build(&setters) {
        Ok(()) => Some(out.raw),
        Err(err) => {
            tracing::warn!(%err, "cannot build a TURN answer");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn_credentials::TurnSecret;
    use proptest::prelude::*;
    use stun::agent::TransactionId;
    use stun::attributes::ATTR_REALM;
    use stun::error_code::ErrorCodeAttribute;
    use stun::message::{Getter, CLASS_ERROR_RESPONSE};
    use turn::proto::peeraddr::PeerAddress;
    use turn::proto::reqtrans::RequestedTransport;
    use turn::proto::PROTO_UDP;

    fn credentials() -> Arc<CredentialPolicy> {
        Arc::new(CredentialPolicy::new(TurnSecret::new(b"s".to_vec()).unwrap(), 600, 3600).unwrap())
    }

    fn gate(limits: TurnLimits, now: Instant) -> Gate {
        Gate::new(
            "call".into(),
            credentials(),
            limits,
            Arc::new(PeerPolicy::new(false, [])),
            Arc::default(),
            now,
        )
    }

    fn src() -> SocketAddr {
        "81.2.69.160:5000".parse().unwrap()
    }

    fn request(method: stun::message::Method, attrs: Vec<Box<dyn Setter>>) -> Message {
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(method, CLASS_REQUEST)),
        ];
        setters.extend(attrs);
        let mut m = Message::new();
        m.build(&setters).unwrap();
        m
    }

    fn signed(
        method: stun::message::Method,
        user: &str,
        nonce: &str,
        mut attrs: Vec<Box<dyn Setter>>,
    ) -> Message {
        let password = credentials().password_for(user);
        attrs.push(Box::new(TextAttribute::new(ATTR_USERNAME, user.into())));
        attrs.push(Box::new(TextAttribute::new(ATTR_REALM, "call".into())));
        attrs.push(Box::new(TextAttribute::new(ATTR_NONCE, nonce.into())));
        attrs.push(Box::new(MessageIntegrity::new_long_term_integrity(
            user.into(),
            "call".into(),
            password,
        )));
        request(method, attrs)
    }

    fn decode(raw: &[u8]) -> Message {
        let mut m = Message {
            raw: raw.to_vec(),
            ..Message::default()
        };
        m.decode().unwrap();
        m
    }

    fn code(m: &Message) -> u16 {
        assert_eq!(m.typ.class, CLASS_ERROR_RESPONSE);
        let mut c = ErrorCodeAttribute::default();
        c.get_from(m).unwrap();
        c.code.0
    }

    fn transport() -> Vec<Box<dyn Setter>> {
        vec![Box::new(RequestedTransport {
            protocol: PROTO_UDP,
        })]
    }

    /// The nonce a 401 gives `src()`.
    fn challenge_nonce(g: &mut Gate, now: Instant) -> String {
        let Screen::Reply(raw) = g.screen(&request(METHOD_ALLOCATE, transport()).raw, src(), now)
        else {
            panic!("no challenge")
        };
        let m = decode(&raw);
        assert_eq!(code(&m), 401);
        TextAttribute::get_from_as(&m, ATTR_NONCE).unwrap().text
    }

    #[test]
    fn unsigned_requests_get_a_stateless_401_and_channel_data_passes() {
        let t0 = Instant::now();
        let mut g = gate(TurnLimits::default(), t0);
        let nonce = challenge_nonce(&mut g, t0);
        assert_eq!(nonce.len(), super::super::turn_nonce::NONCE_LEN);
        assert!(matches!(
            g.screen(&[0x40, 0, 0, 4, 1, 2, 3, 4], src(), t0),
            Screen::Forward
        ));
        assert!(matches!(g.screen(b"\0not stun", src(), t0), Screen::Drop));
    }

    #[test]
    fn a_request_without_the_two_leading_zero_bits_is_not_stun_and_gets_no_answer() {
        let t0 = Instant::now();
        let mut g = gate(TurnLimits::default(), t0);
        let mut raw = request(METHOD_ALLOCATE, transport()).raw;
        assert!(matches!(g.screen(&raw, src(), t0), Screen::Reply(_)));
        for top in [0x80, 0xC0] {
            raw[0] |= top;
            assert!(matches!(g.screen(&raw, src(), t0), Screen::Drop));
        }
    }

    #[test]
    fn a_foreign_or_stale_nonce_gets_438_and_a_valid_one_passes() {
        let t0 = Instant::now();
        let mut g = gate(TurnLimits::default(), t0);
        let user = "9999999999:alice";
        let forged = signed(METHOD_ALLOCATE, user, &"0".repeat(40), transport());
        let Screen::Reply(raw) = g.screen(&forged.raw, src(), t0) else {
            panic!("no 438")
        };
        assert_eq!(code(&decode(&raw)), 438);
        let nonce = challenge_nonce(&mut g, t0);
        let good = signed(METHOD_ALLOCATE, user, &nonce, transport());
        assert!(matches!(
            g.screen(&good.raw, src(), t0),
            Screen::Authenticated(_)
        ));
        // The same nonce from another address is refused.
        let elsewhere: SocketAddr = "81.2.69.161:5000".parse().unwrap();
        assert!(matches!(
            g.screen(&good.raw, elsewhere, t0),
            Screen::Reply(_)
        ));
    }

    #[test]
    fn quota_refusals_are_signed_and_requests_below_the_quota_go_to_the_crate() {
        let t0 = Instant::now();
        let limits = TurnLimits {
            allocations_per_user: 1,
            ..TurnLimits::default()
        };
        let mut g = gate(limits, t0);
        let unix = 1_700_000_000;
        let user = format!("{}:alice", unix + 60);
        let nonce = challenge_nonce(&mut g, t0);
        let msg = signed(METHOD_ALLOCATE, &user, &nonce, transport());
        let Screen::Authenticated(mut checked) = g.screen(&msg.raw, src(), t0) else {
            panic!("not authenticated")
        };
        let other_expiry = format!("{}:alice", unix + 30);
        let state = AllocationState {
            usernames: vec![other_expiry.as_str()],
            clients: vec!["81.2.69.160:6000".parse().unwrap()],
            has_allocation: false,
        };
        let Screen::Reply(raw) = g.admit(&mut checked, src(), &state, t0, unix) else {
            panic!("quota not enforced")
        };
        let mut res = decode(&raw);
        assert_eq!(code(&res), 486);
        let password = credentials().password_for(&user);
        MessageIntegrity::new_long_term_integrity(user.clone(), "call".into(), password)
            .check(&mut res)
            .unwrap();
        // Below the quota it goes to the crate.
        let Screen::Authenticated(mut checked) = g.screen(&msg.raw, src(), t0) else {
            panic!("not authenticated")
        };
        let empty = AllocationState::default();
        assert!(matches!(
            g.admit(&mut checked, src(), &empty, t0, unix),
            Screen::Forward
        ));
    }

    #[test]
    fn denied_peers_are_refused_with_403() {
        let t0 = Instant::now();
        let mut g = gate(TurnLimits::default(), t0);
        let unix = 1_700_000_000;
        let user = format!("{}:alice", unix + 60);
        let nonce = challenge_nonce(&mut g, t0);
        let state = AllocationState {
            has_allocation: true,
            ..AllocationState::default()
        };
        for (peer, want) in [("10.1.2.3", Some(403)), ("81.2.69.1", None)] {
            let attrs: Vec<Box<dyn Setter>> = vec![Box::new(PeerAddress {
                ip: peer.parse().unwrap(),
                port: 9,
            })];
            let msg = signed(METHOD_CREATE_PERMISSION, &user, &nonce, attrs);
            let Screen::Authenticated(mut checked) = g.screen(&msg.raw, src(), t0) else {
                panic!("not authenticated")
            };
            match (g.admit(&mut checked, src(), &state, t0, unix), want) {
                (Screen::Reply(raw), Some(code_wanted)) => {
                    assert_eq!(code(&decode(&raw)), code_wanted)
                }
                (Screen::Forward, None) => {}
                (other, _) => panic!("{peer}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic_and_never_authenticate(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let t0 = Instant::now();
            let mut g = gate(TurnLimits::default(), t0);
            prop_assert!(!matches!(g.screen(&bytes, src(), t0), Screen::Authenticated(_)));
        }

        #[test]
        fn mutated_requests_never_panic(flip in 0usize..200, byte: u8) {
            let t0 = Instant::now();
            let mut g = gate(TurnLimits::default(), t0);
            let nonce = challenge_nonce(&mut g, t0);
            let attrs: Vec<Box<dyn Setter>> = vec![Box::new(PeerAddress { ip: "81.2.69.1".parse().unwrap(), port: 9 })];
            let mut raw = signed(METHOD_CREATE_PERMISSION, "9999999999:a", &nonce, attrs).raw;
            let at = flip % raw.len();
            raw[at] = byte;
            if let Screen::Authenticated(mut checked) = g.screen(&raw, src(), t0) {
                let state = AllocationState { has_allocation: true, ..AllocationState::default() };
                let _ = g.admit(&mut checked, src(), &state, t0, 1_700_000_000);
            }
        }

        #[test]
        fn xor_peer_address_round_trips(v4: u32, v6: u128, port: u16) {
            for ip in [IpAddr::from(v4.to_be_bytes()), IpAddr::from(v6.to_be_bytes())] {
                let attrs: Vec<Box<dyn Setter>> = vec![Box::new(PeerAddress { ip, port })];
                let m = request(METHOD_CREATE_PERMISSION, attrs);
                prop_assert_eq!(peer_addresses(&m), vec![ip]);
            }
        }
    }
}
