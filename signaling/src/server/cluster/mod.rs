//! Several `call-signaling` instances on one Redis (`--redis URL`): presence, routing between
//! instances and the offline mailbox live in Redis, so instances behind one load balancer
//! serve one user population.
//!
//! Distance from the wire: behind [`routing`](super::routing). A connection's own checks (rate
//! limit, replay cache, signature, `from` binding) stay per instance, in front; a recipient
//! connected to this instance is served by the local registry without touching Redis. For any
//! other recipient the route script ([`scripts`]) looks up `presence:<to>` and publishes the
//! already-checked `deliver` frame on the holding instance's channel ([`message`]), or keeps it
//! in the Redis mailbox with the bounds of §12.2, or answers `not_online`. A login writes the
//! presence, kicks an older connection of the same ID on another instance and drains the
//! mailbox onto this instance's own channel (so kept envelopes arrive before later live ones).
//!
//! The decisions live in plain structs: [`presence::PresenceBook`] (tokens, refresh schedule,
//! displacement), [`message::ClusterMessage`], [`scripts::RouteAnswer`]; [`store::RedisStore`]
//! is the thin async shell, and [`Cluster`] wires them to the server's tasks. Without `--redis`
//! none of this runs.
//!
//! Failure: Redis unreachable at start is a start error ([`ClusterError::Unreachable`]). Lost
//! while running, it is logged once, counted (`call_signaling_redis_errors_total`), local
//! routing goes on, remote routing answers `recipient_busy` ("retry later"), and both
//! connections come back by themselves (the presence of every local ID is then written again).

pub mod message;
pub mod presence;
pub mod scripts;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use prometheus_client::metrics::counter::Counter;
use redis::aio::PubSub;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::identity::CallId;

use super::mailbox::{MailboxLimits, MailboxStats};
use super::routing::{Registry, RouteError, Routed};
use message::ClusterMessage;
use presence::{Health, InstanceId, PresenceBook, PresenceTiming};
use scripts::RouteAnswer;
use store::RedisStore;

/// How to join a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `redis://[:password@]host[:port][/db]`.
    pub url: String,
    /// Presence TTL and refresh period.
    pub timing: PresenceTiming,
}

impl ClusterConfig {
    /// Default timing (presence TTL 30 s, renewed every 10 s).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timing: PresenceTiming::default(),
        }
    }
}

/// What went wrong with Redis.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The URL does not parse.
    #[error("--redis {url} is not a usable Redis URL ({reason}); expected redis://[:PASSWORD@]HOST[:PORT][/DB]")]
    BadUrl {
        /// The URL without its password.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// Redis did not answer at start.
    #[error("cannot reach Redis at {url}: {source} (is redis-server running there? see README, \"Several instances (Redis)\")")]
    Unreachable {
        /// The URL without its password.
        url: String,
        /// The cause.
        source: redis::RedisError,
    },
    /// A command failed while running.
    #[error("Redis command failed: {0}")]
    Command(#[from] redis::RedisError),
    /// Redis answered something no script of ours answers.
    #[error("Redis answered something unexpected: {0}")]
    Unexpected(String),
}

/// This instance's membership of the cluster.
pub(crate) struct Cluster {
    store: RedisStore,
    instance: InstanceId,
    channel: String,
    book: Mutex<PresenceBook>,
    health: Mutex<Health>,
    errors: Counter,
    /// The shared mailbox's figures as of the last refresh (for metrics).
    mailbox: Mutex<MailboxStats>,
    refresh_now: tokio::sync::Notify,
}

impl Cluster {
    /// Connects to Redis and subscribes to this instance's channel; fails when Redis does not
    /// answer. `errors` counts failed Redis commands from then on.
    pub(crate) async fn join(
        cfg: &ClusterConfig,
        mailbox: MailboxLimits,
        errors: Counter,
    ) -> Result<(Arc<Cluster>, PubSub), ClusterError> {
        let store = RedisStore::connect(&cfg.url, mailbox).await?;
        let instance = InstanceId::random();
        let channel = store.channel(&instance.to_string());
        let pubsub = store.subscribe(&channel).await.map_err(|err| match err {
            ClusterError::Command(source) => ClusterError::Unreachable {
                url: store::redacted_url(&cfg.url),
                source,
            },
            other => other,
        })?;
        tracing::info!(url = %store::redacted_url(&cfg.url), %instance, "joined the cluster");
        let cluster = Cluster {
            store,
            instance,
            channel,
            book: Mutex::new(PresenceBook::new(instance, cfg.timing, Instant::now())),
            health: Mutex::new(Health::default()),
            errors,
            mailbox: Mutex::new(MailboxStats::default()),
            refresh_now: tokio::sync::Notify::new(),
        };
        Ok((Arc::new(cluster), pubsub))
    }

    fn book(&self) -> std::sync::MutexGuard<'_, PresenceBook> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ok(&self) {
        if self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .succeeded()
        {
            tracing::warn!(instance = %self.instance, "Redis answers again");
        }
    }

    fn failed(&self, what: &str, err: &ClusterError) {
        self.errors.inc();
        if self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed()
        {
            tracing::error!(instance = %self.instance, %err, what, "Redis lost: routing to other instances answers recipient_busy until it is back; local routing goes on");
        } else {
            tracing::debug!(%err, what, "Redis command failed");
        }
    }

    /// The shared mailbox's figures as of the last refresh.
    pub(crate) fn mailbox_stats(&self) -> MailboxStats {
        *self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connection `conn` of `id` authenticated here (already bound in `registry`): writes its
    /// presence, displaces an older holder elsewhere, and has the mailbox delivered to it.
    /// Answers how many kept envelopes it gets.
    pub(crate) async fn login(&self, registry: &Registry, id: CallId, conn: u64, now: u64) -> u64 {
        let token = self.book().login(id, conn);
        let ttl = self.book().timing().ttl;
        match self.store.login(&id, token, ttl, &self.channel, now).await {
            Ok(answer) => {
                self.ok();
                if let Some(old) = answer.displaced {
                    tracing::info!(%id, old = %old, "call ID logged in here; displacing its connection on another instance");
                }
                for (from, frame) in answer.rest {
                    registry.deliver_remote(from, &id, frame);
                }
                answer.kept
            }
            Err(err) => {
                // The refresh writes the presence once Redis is back; the mailbox waits for
                // the next login.
                self.failed("login", &err);
                0
            }
        }
    }

    /// Connection `conn` of `id` closed: deletes its presence if it still holds it (in the
    /// background: a closing connection does not wait for Redis).
    pub(crate) fn logout(self: &Arc<Self>, tracker: &TaskTracker, id: CallId, conn: u64) {
        let Some(token) = self.book().logout(&id, conn) else {
            return;
        };
        let cluster = self.clone();
        tracker.spawn(async move {
            match cluster.store.logout(&id, token).await {
                Ok(_) => cluster.ok(),
                Err(err) => cluster.failed("logout", &err),
            }
        });
    }

    /// Routes to a recipient not connected here.
    pub(crate) async fn route(
        &self,
        from: CallId,
        to: CallId,
        mailbox_kind: bool,
        frame: String,
        now: u64,
    ) -> Result<Routed, RouteError> {
        match self
            .store
            .route(&from, &to, mailbox_kind, &frame, now)
            .await
        {
            Ok(answer) => {
                self.ok();
                match answer {
                    RouteAnswer::Delivered => Ok(Routed::Delivered),
                    RouteAnswer::Kept => Ok(Routed::Kept),
                    RouteAnswer::Offline => Err(RouteError::NotOnline),
                    RouteAnswer::RecipientFull => Err(RouteError::MailboxFull),
                    RouteAnswer::ServerFull => Err(RouteError::MailboxServerFull),
                }
            }
            Err(err) => {
                self.failed("route", &err);
                Err(RouteError::ClusterUnavailable)
            }
        }
    }

    /// Starts the channel reader and the presence refresher; they end with `shutdown`.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        registry: Arc<Registry>,
        pubsub: PubSub,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) {
        tracker.spawn(read_channel(
            self.clone(),
            registry.clone(),
            pubsub,
            shutdown.clone(),
        ));
        tracker.spawn(refresh_presence(self.clone(), registry, shutdown));
    }

    fn handle_message(&self, registry: &Registry, payload: &[u8]) {
        match ClusterMessage::parse(payload) {
            Ok(ClusterMessage::Deliver { to, from, frame }) => {
                registry.deliver_remote(from, &to, frame);
            }
            Ok(ClusterMessage::Kick { id, conn }) => {
                if let Some(conn) = self.book().displaced(&id, conn) {
                    tracing::info!(%id, conn, "call ID logged in on another instance; closing its connection here");
                    registry.kick(&id, conn);
                }
            }
            Err(err) => {
                tracing::warn!(%err, channel = %self.channel, "dropping a message on this instance's channel")
            }
        }
    }
}

/// Reads this instance's channel until shutdown, subscribing again (with backoff) whenever the
/// connection drops.
async fn read_channel(
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    first: PubSub,
    shutdown: CancellationToken,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let current = match pubsub.take() {
            Some(p) => p,
            None => match cluster.store.subscribe(&cluster.channel).await {
                Ok(p) => {
                    cluster.ok();
                    backoff = Duration::from_millis(100);
                    // Others may have dropped this instance's presence while it was away.
                    cluster.refresh_now.notify_one();
                    p
                }
                Err(err) => {
                    cluster.failed("subscribe", &err);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let mut messages = current.into_on_message();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                msg = messages.next() => match msg {
                    Some(msg) => cluster.handle_message(&registry, msg.get_payload_bytes()),
                    None => {
                        cluster.failed("channel", &ClusterError::Unexpected("the pub/sub connection closed".into()));
                        break;
                    }
                }
            }
        }
    }
}

/// Renews the presence of every local ID before its TTL runs out, closes the connections whose
/// ID another instance took meanwhile, and reads the shared mailbox's figures.
async fn refresh_presence(
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) {
    /// IDs renewed per script call (bounds one script's run time).
    const BATCH: usize = 500;
    loop {
        let wake = tokio::time::Instant::from_std(cluster.book().poll_timeout());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(wake) => {}
            _ = cluster.refresh_now.notified() => {
                cluster.book().refresh_soon(Instant::now());
            }
        }
        let Some(held) = cluster.book().refresh_due(Instant::now()) else {
            continue;
        };
        let ttl = cluster.book().timing().ttl;
        for batch in held.chunks(BATCH) {
            match cluster.store.refresh(cluster.instance, batch, ttl).await {
                Ok(lost) => {
                    cluster.ok();
                    for id in lost {
                        let Some((_, token)) = batch.iter().find(|(i, _)| *i == id) else {
                            continue;
                        };
                        if let Some(conn) = cluster.book().displaced(&id, token.conn) {
                            tracing::info!(%id, conn, "call ID is held by another instance now; closing its connection here");
                            registry.kick(&id, conn);
                        }
                    }
                }
                Err(err) => {
                    cluster.failed("refresh", &err);
                    // Try again soon rather than in a full period: presence may lapse.
                    cluster
                        .book()
                        .refresh_soon(Instant::now() + Duration::from_secs(1));
                    break;
                }
            }
        }
        match cluster.store.mailbox_stats().await {
            Ok(stats) => *cluster.mailbox.lock().unwrap_or_else(|e| e.into_inner()) = stats,
            Err(err) => cluster.failed("mailbox stats", &err),
        }
    }
}
