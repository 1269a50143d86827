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
        tracing::info!(%from, code = code.0, "TURN request refused by quota or peer policy");
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
