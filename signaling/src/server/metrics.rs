//! Prometheus metrics of one server (`call_signaling_*`), served on `--metrics-listen`.
//!
//! Distance from the wire: none of its own; the connection, routing and TURN code increment
//! the counters held here, and [`metrics_http`](super::metrics_http) encodes them on a scrape.
//! One [`Metrics`] per server, passed in (no global registry), so several servers can run in
//! one process.
//!
//! Counting is one relaxed atomic add: every labelled counter is created once, at start, and
//! its handle kept, so the routing path takes no lock for it (a `Family` lookup would take a
//! read lock per call). What the server already holds (connections, mailbox, TURN
//! allocations, RSS) is read at scrape time into a [`Snapshot`] and encoded by a collector.
//! Labels come from fixed sets (error codes of the protocol, reasons named here): never a call
//! ID, address or anything a client chose.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::protocol::ErrorCode;

/// A label set of one fixed `(key, value)` pair.
type Label = Vec<(&'static str, &'static str)>;

/// Every error code the server can send, in the order of [`slot`].
const CODES: [ErrorCode; 21] = ErrorCode::ALL;

/// The index of `code`'s counter. An exhaustive match, so a new code does not compile until it
/// has a slot here (and a place in [`CODES`]).
fn slot(code: ErrorCode) -> usize {
    match code {
        ErrorCode::BadFrame => 0,
        ErrorCode::UnknownType => 1,
        ErrorCode::TooLarge => 2,
        ErrorCode::Unauthenticated => 3,
        ErrorCode::AuthFailed => 4,
        ErrorCode::AuthTimeout => 5,
        ErrorCode::AlreadyAuthenticated => 6,
        ErrorCode::SpoofedFrom => 7,
        ErrorCode::BadEnvelope => 8,
        ErrorCode::BadSignature => 9,
        ErrorCode::Stale => 10,
        ErrorCode::Replayed => 11,
        ErrorCode::NotOnline => 12,
        ErrorCode::RecipientBusy => 13,
        ErrorCode::MailboxFull => 14,
        ErrorCode::RateLimited => 15,
        ErrorCode::TurnUnavailable => 16,
        ErrorCode::Replaced => 17,
        ErrorCode::TooSlow => 18,
        ErrorCode::IdleTimeout => 19,
        ErrorCode::ShuttingDown => 20,
        // Never sent by the server (it stands for a code a client does not know).
        ErrorCode::Unknown => CODES.len(),
    }
}

/// The codes that refuse an envelope of a `send` frame (§13 of `docs/protocol.md`):
/// `rate_limited` stands for a full replay cache, `too_large` for a `deliver` frame over the
/// limit.
const ENVELOPE_CODES: [ErrorCode; 10] = [
    ErrorCode::SpoofedFrom,
    ErrorCode::BadEnvelope,
    ErrorCode::BadSignature,
    ErrorCode::Stale,
    ErrorCode::Replayed,
    ErrorCode::TooLarge,
    ErrorCode::NotOnline,
    ErrorCode::RecipientBusy,
    ErrorCode::MailboxFull,
    ErrorCode::RateLimited,
];

/// One counter per error code of a fixed list, created at start; a lookup is an index, no
/// hashing and no lock.
#[derive(Debug, Clone)]
pub struct CodeCounters {
    /// Indexed by [`slot`]; `None` for codes not in the list.
    by_slot: Vec<Option<Counter>>,
    /// Any code not in the list (`code="other"`).
    other: Counter,
}

impl CodeCounters {
    fn new(family: &Family<Label, Counter>, codes: &[ErrorCode]) -> Self {
        let mut by_slot = vec![None; CODES.len() + 1];
        for &code in codes {
            by_slot[slot(code)] = Some(family.get_or_create_owned(&vec![("code", code.as_str())]));
        }
        Self {
            by_slot,
            other: family.get_or_create_owned(&vec![("code", "other")]),
        }
    }

    /// The counter for `code`.
    pub fn get(&self, code: ErrorCode) -> &Counter {
        match self.by_slot.get(slot(code)) {
            Some(Some(counter)) => counter,
            _ => &self.other,
        }
    }
}

/// How logins ended.
#[derive(Debug, Clone)]
pub struct LoginCounters {
    /// The challenge was answered correctly.
    pub ok: Counter,
    /// A wrong signature, ID or timestamp (`auth_failed`).
    pub failed: Counter,
    /// No valid `auth` frame within the auth timeout (`auth_timeout`).
    pub timeout: Counter,
}

/// Frames that left a queue without reaching their recipient.
#[derive(Debug, Clone, Default)]
pub struct QueueDrops {
    /// Refused at the sender: it already held its share of the recipient's queue.
    pub sender_share: Counter,
    /// Refused at the sender: the recipient's queue was full.
    pub recipient_full: Counter,
    /// Refused at the sender: the server-wide queue budget was spent.
    pub server_full: Counter,
    /// Queued but discarded because the recipient's connection closed first.
    pub unsent: Counter,
    /// Kept in the mailbox, then lost at the recipient's login (server queues full).
    pub mailbox_handover: Counter,
    /// Frames routed by another instance (`--redis`) whose recipient had left or whose queue
    /// was full here (the sender, on the other instance, could not be told).
    pub remote_dropped: Counter,
}

/// WebSocket requests refused before a connection was served.
#[derive(Debug, Clone)]
pub struct RefusedConnections {
    /// `--max-connections` reached (TCP stage or WebSocket stage).
    pub limit: Counter,
    /// The per-address cap reached (handshakes or WebSockets).
    pub per_address: Counter,
    /// The browser `Origin` is not allowed.
    pub origin: Counter,
    /// The address used up its failed logins (`Limits::login_failures_per_minute`).
    pub login_failures: Counter,
}

/// What the embedded TURN server counts as it relays.
#[derive(Debug, Clone, Default)]
pub struct TurnCounters {
    /// Relay allocations created.
    pub allocations: Counter,
    /// Bytes relayed from clients to peers (payloads sent out of relay sockets).
    pub relayed_to_peers: Counter,
    /// Bytes relayed from peers to clients (payloads accepted on relay sockets).
    pub relayed_from_peers: Counter,
    /// Bytes dropped by the per-allocation bandwidth cap, both directions.
    pub capped: Counter,
}

/// What the server holds at the moment of a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Connections in the TCP/TLS/HTTP stage (before any WebSocket upgrade).
    pub http_connections: usize,
    /// Open WebSockets, authenticated or not.
    pub websockets: usize,
    /// Call IDs bound to a connection.
    pub authenticated: usize,
    /// Bytes of `deliver` frames queued for connected clients.
    pub queued_bytes: usize,
    /// The offline mailbox.
    pub mailbox: super::mailbox::MailboxStats,
    /// Live allocations of the embedded TURN server, when it runs.
    pub turn_allocations: Option<usize>,
    /// Resident set size of the process, bytes, where the OS tells it.
    pub rss_bytes: Option<u64>,
}

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    snapshot: Arc<Mutex<Snapshot>>,
    /// Logins by result.
    pub logins: LoginCounters,
    /// Envelopes queued on the recipient's connection.
    pub delivered: Counter,
    /// Envelopes kept in the offline mailbox.
    pub kept: Counter,
    /// Envelopes refused to their sender, by error code.
    pub rejected: CodeCounters,
    /// Error frames sent, by code (including those that close the connection).
    pub error_frames: CodeCounters,
    /// Queue drops by reason.
    pub queue_drops: QueueDrops,
    /// Connections refused before being served.
    pub refused: RefusedConnections,
    /// Clients disconnected because their socket took no frame within the send timeout.
    pub write_timeouts: Counter,
    /// The embedded TURN server's counters.
    pub turn: TurnCounters,
    /// Redis commands that failed or timed out (`--redis`).
    pub redis_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every counter at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("call_signaling");
        let logins = Family::<Label, Counter>::default();
        registry.register("logins", "Logins by result", logins.clone());
        let envelopes = Family::<Label, Counter>::default();
        registry.register(
            "envelopes_routed",
            "Envelopes accepted, by where they went (delivered: queued on the recipient's connection; kept: in the offline mailbox)",
            envelopes.clone(),
        );
        let rejected = Family::<Label, Counter>::default();
        registry.register(
            "envelopes_rejected",
            "Envelopes refused to their sender, by error code",
            rejected.clone(),
        );
        let error_frames = Family::<Label, Counter>::default();
        registry.register(
            "error_frames",
            "Error frames sent to clients, by code",
            error_frames.clone(),
        );
        let drops = Family::<Label, Counter>::default();
        registry.register(
            "queue_drops",
            "Frames that did not reach their recipient's socket, by reason",
            drops.clone(),
        );
        let refused = Family::<Label, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections refused before being served, by reason",
            refused.clone(),
        );
        let write_timeouts = Counter::default();
        registry.register(
            "write_timeouts",
            "Clients disconnected because their socket took no frame within the send timeout",
            write_timeouts.clone(),
        );
        let redis_errors = Counter::default();
        registry.register(
            "redis_errors",
            "Redis commands that failed or timed out (call-signaling --redis)",
            redis_errors.clone(),
        );
        let turn = TurnCounters::default();
        registry.register(
            "turn_allocations_created",
            "Relay allocations created by the embedded TURN server",
            turn.allocations.clone(),
        );
        let relayed = Family::<Label, Counter>::default();
        registry.register_with_unit(
            "turn_relayed",
            "Payload bytes relayed by the embedded TURN server, by direction",
            Unit::Bytes,
            relayed.clone(),
        );
        registry.register_with_unit(
            "turn_capped",
            "Payload bytes the embedded TURN server dropped for the per-allocation bandwidth cap",
            Unit::Bytes,
            turn.capped.clone(),
        );
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        registry.register_collector(Box::new(SnapshotCollector(snapshot.clone())));

        let one = |family: &Family<Label, Counter>, key, value| {
            family.get_or_create_owned(&vec![(key, value)])
        };
        let turn = TurnCounters {
            relayed_to_peers: one(&relayed, "direction", "to_peers"),
            relayed_from_peers: one(&relayed, "direction", "from_peers"),
            ..turn
        };
        Self {
            logins: LoginCounters {
                ok: one(&logins, "result", "ok"),
                failed: one(&logins, "result", "auth_failed"),
                timeout: one(&logins, "result", "auth_timeout"),
            },
            delivered: one(&envelopes, "result", "delivered"),
            kept: one(&envelopes, "result", "kept"),
            rejected: CodeCounters::new(&rejected, &ENVELOPE_CODES),
            error_frames: CodeCounters::new(&error_frames, &CODES),
            queue_drops: QueueDrops {
                sender_share: one(&drops, "reason", "sender_share"),
                recipient_full: one(&drops, "reason", "recipient_full"),
                server_full: one(&drops, "reason", "server_full"),
                unsent: one(&drops, "reason", "unsent"),
                mailbox_handover: one(&drops, "reason", "mailbox_handover"),
                remote_dropped: one(&drops, "reason", "remote_dropped"),
            },
            refused: RefusedConnections {
                limit: one(&refused, "reason", "limit"),
                per_address: one(&refused, "reason", "per_address"),
                origin: one(&refused, "reason", "origin"),
                login_failures: one(&refused, "reason", "login_failures"),
            },
            write_timeouts,
            turn,
            redis_errors,
            registry,
            snapshot,
        }
    }

    /// Sets what the scrape-time gauges report.
    pub fn set_snapshot(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads) of everything.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail; an error would mean a bug in an encoder.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(%err, "encoding the metrics failed");
        }
        out
    }
}

/// Encodes the [`Snapshot`] taken at scrape time.
#[derive(Debug)]
struct SnapshotCollector(Arc<Mutex<Snapshot>>);

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        let gauge = |value: usize| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        {
            let mut family = encoder.encode_descriptor(
                "connections",
                "Open connections by state (http: before the WebSocket upgrade).",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            let unauthenticated = s.websockets.saturating_sub(s.authenticated);
            for (state, value) in [
                ("http", s.http_connections),
                ("unauthenticated", unauthenticated),
                ("authenticated", s.authenticated),
            ] {
                let labels = vec![("state", state)];
                gauge(value).encode(family.encode_family(&labels)?)?;
            }
        }
        let plain = |encoder: &mut DescriptorEncoder,
                     name: &str,
                     help: &str,
                     unit: Option<&Unit>,
                     metric: &dyn EncodeMetric| {
            metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
        };
        plain(
            &mut encoder,
            "queued",
            "Bytes of deliver frames queued for connected clients.",
            Some(&Unit::Bytes),
            &gauge(s.queued_bytes),
        )?;
        plain(
            &mut encoder,
            "mailbox_envelopes",
            "Envelopes kept in the offline mailbox.",
            None,
            &gauge(s.mailbox.envelopes),
        )?;
        plain(
            &mut encoder,
            "mailbox",
            "Bytes the offline mailbox holds (frames plus per-entry overhead).",
            Some(&Unit::Bytes),
            &gauge(s.mailbox.bytes),
        )?;
        plain(
            &mut encoder,
            "mailbox_recipients",
            "Offline recipients with something kept.",
            None,
            &gauge(s.mailbox.recipients),
        )?;
        plain(
            &mut encoder,
            "mailbox_refused",
            "Envelopes the mailbox refused (a bound was reached).",
            None,
            &ConstCounter::new(s.mailbox.refused),
        )?;
        plain(
            &mut encoder,
            "mailbox_expired",
            "Envelopes dropped from the mailbox after the TTL.",
            None,
            &ConstCounter::new(s.mailbox.expired),
        )?;
        if let Some(allocations) = s.turn_allocations {
            plain(
                &mut encoder,
                "turn_allocations",
                "Live relay allocations of the embedded TURN server.",
                None,
                &gauge(allocations),
            )?;
        }
        if let Some(rss) = s.rss_bytes {
            plain(
                &mut encoder,
                "process_resident_memory",
                "Resident set size of the server process.",
                Some(&Unit::Bytes),
                &ConstGauge::new(i64::try_from(rss).unwrap_or(i64::MAX)),
            )?;
        }
        Ok(())
    }
}

/// The resident set size of this process from `/proc/self/status` (`VmRSS`), or `None` where
/// there is no such file (not Linux).
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS:   1234 kB` → 1234 × 1024.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line `name` (with its labels, as exposed), if present.
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_and_snapshot_appear_under_their_names() {
        let m = Metrics::new();
        let text = m.encode();
        assert_eq!(
            sample(&text, "call_signaling_logins_total{result=\"ok\"}"),
            Some(0.0),
            "{text}"
        );
        m.logins.ok.inc();
        m.delivered.inc_by(3);
        m.rejected.get(ErrorCode::NotOnline).inc();
        m.turn.relayed_to_peers.inc_by(100);
        m.set_snapshot(Snapshot {
            websockets: 3,
            authenticated: 2,
            mailbox: crate::server::mailbox::MailboxStats {
                envelopes: 4,
                bytes: 500,
                refused: 1,
                ..Default::default()
            },
            turn_allocations: Some(1),
            rss_bytes: Some(4096),
            ..Snapshot::default()
        });
        let text = m.encode();
        let expect = [
            ("call_signaling_logins_total{result=\"ok\"}", 1.0),
            (
                "call_signaling_envelopes_routed_total{result=\"delivered\"}",
                3.0,
            ),
            (
                "call_signaling_envelopes_rejected_total{code=\"not_online\"}",
                1.0,
            ),
            (
                "call_signaling_envelopes_rejected_total{code=\"stale\"}",
                0.0,
            ),
            (
                "call_signaling_turn_relayed_bytes_total{direction=\"to_peers\"}",
                100.0,
            ),
            ("call_signaling_connections{state=\"authenticated\"}", 2.0),
            ("call_signaling_connections{state=\"unauthenticated\"}", 1.0),
            ("call_signaling_mailbox_envelopes", 4.0),
            ("call_signaling_mailbox_bytes", 500.0),
            ("call_signaling_mailbox_refused_total", 1.0),
            ("call_signaling_turn_allocations", 1.0),
            ("call_signaling_process_resident_memory_bytes", 4096.0),
        ];
        for (name, value) in expect {
            assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(
            sample(
                &text,
                "call_signaling_envelopes_rejected_total{code=\"auth_timeout\"}"
            ),
            None,
            "only codes that refuse envelopes are labels of envelopes_rejected"
        );
        m.rejected.get(ErrorCode::Replaced).inc();
        let text = m.encode();
        let other = "call_signaling_envelopes_rejected_total{code=\"other\"}";
        assert_eq!(sample(&text, other), Some(1.0));
    }

    #[test]
    fn two_servers_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.kept.inc();
        let name = "call_signaling_envelopes_routed_total{result=\"kept\"}";
        assert_eq!(sample(&a.encode(), name), Some(1.0));
        assert_eq!(sample(&b.encode(), name), Some(0.0));
    }

    #[test]
    fn the_code_list_follows_the_slots() {
        for (i, code) in CODES.iter().enumerate() {
            assert_eq!(slot(*code), i, "{code:?}");
        }
    }

    #[test]
    fn every_code_has_its_own_counter() {
        let m = Metrics::new();
        for (i, code) in CODES.iter().enumerate() {
            m.error_frames.get(*code).inc_by(i as u64 + 1);
        }
        let text = m.encode();
        for (i, code) in CODES.iter().enumerate() {
            let name = format!(
                "call_signaling_error_frames_total{{code=\"{}\"}}",
                code.as_str()
            );
            assert_eq!(sample(&text, &name), Some(i as f64 + 1.0), "{name}");
        }
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t   2048 kB\nVmSwap: 0 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_vm_rss("VmRSS: lots\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: 12 MB\n"), None);
        assert_eq!(parse_vm_rss(""), None);
        if cfg!(target_os = "linux") {
            assert!(process_rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
