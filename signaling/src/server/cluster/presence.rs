//! Presence of this instance's connections in Redis, decided here without I/O.
//!
//! Distance from the wire: behind the connection tasks, in front of the Redis shell. Every
//! authenticated connection of this instance owns `presence:<id>`, whose value is a
//! [`PresenceToken`] (`<instance>/<conn>`) with a time-to-live ([`PresenceTiming::ttl`]). The
//! shell asks [`PresenceBook`] what to write and when: the token at a login, a compare-and-delete
//! at a logout, a refresh of every token before the TTL runs out ([`PresenceBook::poll_timeout`],
//! [`PresenceBook::refresh_due`]). A token found replaced by another at a refresh, or a `kick`
//! from the instance that took it, means a newer login elsewhere: the book says which local
//! connection to close ([`PresenceBook::displaced`]). A killed instance stops refreshing, so its
//! clients vanish from Redis within the TTL (sooner for routing: see the route script).
//!
//! Time is an argument (`now`); the book reads no clock.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::identity::CallId;

/// This instance's random name in Redis: its channel is `inst:<id>`, its tokens start with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(u64);

impl InstanceId {
    /// A fresh random ID (64 bits: two instances never pick the same one in practice).
    pub fn random() -> InstanceId {
        InstanceId(rand::rngs::OsRng.next_u64())
    }

    /// A fixed ID (tests).
    pub fn from_u64(n: u64) -> InstanceId {
        InstanceId(n)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The value of `presence:<id>`: which instance, and which of its connections, holds the ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceToken {
    /// The instance holding the connection.
    pub instance: InstanceId,
    /// The connection number on that instance.
    pub conn: u64,
}

impl fmt::Display for PresenceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance, self.conn)
    }
}

impl PresenceToken {
    /// Parses `<16 hex digits>/<decimal>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<PresenceToken> {
        let (inst, conn) = text.split_once('/')?;
        if inst.len() != 16 || conn.is_empty() || !conn.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(PresenceToken {
            instance: InstanceId(u64::from_str_radix(inst, 16).ok()?),
            conn: conn.parse().ok()?,
        })
    }
}

/// How long presence lives in Redis and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceTiming {
    /// Time-to-live of `presence:<id>`: how long the clients of a killed instance stay listed.
    pub ttl: Duration,
    /// How often every local token is renewed (well under `ttl`, so one slow round trip or a
    /// short Redis hiccup does not let presence lapse).
    pub refresh_every: Duration,
}

impl Default for PresenceTiming {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            refresh_every: Duration::from_secs(10),
        }
    }
}

/// The call IDs this instance holds, and when their presence is next renewed.
#[derive(Debug)]
pub struct PresenceBook {
    instance: InstanceId,
    timing: PresenceTiming,
    local: HashMap<CallId, u64>,
    next_refresh: Instant,
}

impl PresenceBook {
    /// An empty book; the first refresh is due one period after `now`.
    pub fn new(instance: InstanceId, timing: PresenceTiming, now: Instant) -> Self {
        Self {
            instance,
            timing,
            local: HashMap::new(),
            next_refresh: now + timing.refresh_every,
        }
    }

    /// The timing in force.
    pub fn timing(&self) -> PresenceTiming {
        self.timing
    }

    /// Connection `conn` authenticated as `id`: the token to write (replacing whatever Redis
    /// holds for `id`). A previous local connection of `id` is forgotten (the local registry
    /// has already replaced it).
    pub fn login(&mut self, id: CallId, conn: u64) -> PresenceToken {
        self.local.insert(id, conn);
        self.token(conn)
    }

    /// Connection `conn` of `id` closed: the token to delete from Redis if it is still there
    /// (compare-and-delete), or `None` when `conn` no longer held `id` here (a newer local or
    /// remote login took it, and its presence must stay).
    pub fn logout(&mut self, id: &CallId, conn: u64) -> Option<PresenceToken> {
        if self.local.get(id) == Some(&conn) {
            self.local.remove(id);
            Some(self.token(conn))
        } else {
            None
        }
    }

    /// When [`PresenceBook::refresh_due`] next has work.
    pub fn poll_timeout(&self) -> Instant {
        self.next_refresh
    }

    /// Makes the next refresh due at once (after Redis came back: presence may have lapsed).
    pub fn refresh_soon(&mut self, now: Instant) {
        self.next_refresh = now;
    }

    /// Every local `(id, token)` to renew, when a refresh is due at `now` (the next one is then
    /// scheduled); `None` before that.
    pub fn refresh_due(&mut self, now: Instant) -> Option<Vec<(CallId, PresenceToken)>> {
        if now < self.next_refresh {
            return None;
        }
        self.next_refresh = now + self.timing.refresh_every;
        Some(
            self.local
                .iter()
                .map(|(id, conn)| (*id, self.token(*conn)))
                .collect(),
        )
    }

    /// Redis says `id`'s token `token` was replaced by another instance's (found at a refresh,
    /// or a `kick` naming `token.conn`): the local connection to close with `replaced`, if that
    /// connection still holds `id` here.
    pub fn displaced(&mut self, id: &CallId, conn: u64) -> Option<u64> {
        if self.local.get(id) == Some(&conn) {
            self.local.remove(id);
            Some(conn)
        } else {
            None
        }
    }

    /// Number of IDs held here.
    pub fn len(&self) -> usize {
        self.local.len()
    }

    /// `true` when no ID is held here.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }

    fn token(&self, conn: u64) -> PresenceToken {
        PresenceToken {
            instance: self.instance,
            conn,
        }
    }
}

/// Whether Redis answers, so that a lost or regained Redis is logged once, not per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    up: bool,
}

impl Default for Health {
    fn default() -> Self {
        Health { up: true }
    }
}

impl Health {
    /// A command failed: `true` when this is news (Redis was up until now).
    pub fn failed(&mut self) -> bool {
        std::mem::replace(&mut self.up, false)
    }

    /// A command succeeded: `true` when Redis was down until now.
    pub fn succeeded(&mut self) -> bool {
        !std::mem::replace(&mut self.up, true)
    }

    /// Whether the last command succeeded.
    pub fn is_up(&self) -> bool {
        self.up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn id(n: u8) -> CallId {
        Identity::from_seed([n; 32]).call_id()
    }

    #[test]
    fn tokens_round_trip_and_junk_is_refused() {
        let t = PresenceToken {
            instance: InstanceId::from_u64(0xfeed),
            conn: 42,
        };
        assert_eq!(t.to_string(), "000000000000feed/42");
        assert_eq!(PresenceToken::parse(&t.to_string()), Some(t));
        for junk in [
            "",
            "/",
            "feed/42",
            "000000000000feed/",
            "000000000000feed/-1",
            "000000000000fezd/1",
            "000000000000feed/1/2",
        ] {
            assert_eq!(PresenceToken::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn logout_deletes_only_the_current_login() {
        let t0 = Instant::now();
        let mut book = PresenceBook::new(InstanceId::from_u64(1), PresenceTiming::default(), t0);
        let first = book.login(id(1), 1);
        assert_eq!(first.conn, 1);
        // The same ID logs in again here before the first connection's cleanup ran.
        book.login(id(1), 2);
        assert_eq!(
            book.logout(&id(1), 1),
            None,
            "the newer login's presence stays"
        );
        assert_eq!(book.logout(&id(1), 2).map(|t| t.conn), Some(2));
        assert!(book.is_empty());
    }

    #[test]
    fn refresh_comes_every_period_with_every_local_token() {
        let t0 = Instant::now();
        let timing = PresenceTiming::default();
        let mut book = PresenceBook::new(InstanceId::from_u64(7), timing, t0);
        book.login(id(1), 10);
        book.login(id(2), 11);
        assert_eq!(book.refresh_due(t0), None);
        assert_eq!(book.poll_timeout(), t0 + timing.refresh_every);
        let mut due = book.refresh_due(t0 + timing.refresh_every).unwrap();
        due.sort_by_key(|(_, t)| t.conn);
        assert_eq!(
            due.iter().map(|(i, t)| (*i, t.conn)).collect::<Vec<_>>(),
            [(id(1), 10), (id(2), 11)]
        );
        assert_eq!(book.poll_timeout(), t0 + 2 * timing.refresh_every);
        assert!(
            timing.refresh_every * 2 < timing.ttl,
            "one missed refresh must not lapse presence"
        );
        book.refresh_soon(t0 + timing.refresh_every);
        assert!(book.refresh_due(t0 + timing.refresh_every).is_some());
    }

    #[test]
    fn a_displacement_closes_only_the_connection_it_names() {
        let t0 = Instant::now();
        let mut book = PresenceBook::new(InstanceId::from_u64(7), PresenceTiming::default(), t0);
        book.login(id(1), 3);
        // A kick for an older connection of the same ID (already replaced here) is stale.
        assert_eq!(book.displaced(&id(1), 2), None);
        assert_eq!(book.displaced(&id(1), 3), Some(3));
        assert_eq!(book.displaced(&id(1), 3), None, "only once");
        assert_eq!(
            book.logout(&id(1), 3),
            None,
            "nothing left to delete: it is another's"
        );
    }

    #[test]
    fn health_reports_transitions_once() {
        let mut h = Health::default();
        assert!(!h.succeeded());
        assert!(h.failed());
        assert!(!h.failed());
        assert!(!h.is_up());
        assert!(h.succeeded());
        assert!(h.is_up());
    }
}
