//! The thin async shell over Redis: one multiplexed connection (reconnecting by itself) that
//! runs the [`scripts`](super::scripts), and the pub/sub connection of this instance's channel.
//!
//! Distance from the wire: the last step before Redis. It decides nothing: it passes arguments
//! to a script and turns the answer into a type. Every command has a response timeout, so a
//! Redis that hangs costs a connection task at most [`COMMAND_TIMEOUT`] per envelope.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::Script;

use crate::identity::CallId;
use crate::server::mailbox::{MailboxLimits, MailboxRefused, MailboxStats, ENTRY_OVERHEAD};

use super::presence::{InstanceId, PresenceToken};
use super::scripts::{RouteAnswer, ScriptName, KEY_PREFIX, SWEEP_LIMIT};
use super::ClusterError;

/// Longest a Redis command may take (and a connection attempt).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// What a login found in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAnswer {
    /// Envelopes the mailbox kept for the ID (published on the own channel, or in `rest`).
    pub kept: u64,
    /// The token of the connection on another instance that held the ID (sent a kick).
    pub displaced: Option<PresenceToken>,
    /// Kept envelopes that could not be published (nobody listened on the own channel), as
    /// `(from, frame)`, oldest first: the caller queues them itself.
    pub rest: Vec<(CallId, String)>,
}

/// Redis as the cluster's shared presence table, router and mailbox.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    mailbox: MailboxLimits,
    route: Script,
    login: Script,
    logout: Script,
    refresh: Script,
    keep: Script,
    take: Script,
    sweep: Script,
    stats: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host[:port][/db]`) and checks that Redis
    /// answers; the mailbox uses `mailbox` limits.
    pub async fn connect(url: &str, mailbox: MailboxLimits) -> Result<RedisStore, ClusterError> {
        let shown = redacted_url(url);
        let client = redis::Client::open(url).map_err(|source| ClusterError::BadUrl {
            url: shown.clone(),
            reason: source.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let unreachable = |source| ClusterError::Unreachable {
            url: shown.clone(),
            source,
        };
        let mut conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unreachable)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(RedisStore {
            client,
            conn,
            prefix: KEY_PREFIX.to_owned(),
            mailbox,
            route: Script::new(&ScriptName::Route.source()),
            login: Script::new(&ScriptName::Login.source()),
            logout: Script::new(&ScriptName::Logout.source()),
            refresh: Script::new(&ScriptName::Refresh.source()),
            keep: Script::new(&ScriptName::Keep.source()),
            take: Script::new(&ScriptName::Take.source()),
            sweep: Script::new(&ScriptName::Sweep.source()),
            stats: Script::new(&ScriptName::Stats.source()),
        })
    }

    /// Uses `prefix` instead of `call:` for every key and channel (tests sharing one Redis).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The channel of `instance` (`<prefix>inst:<instance>`).
    pub fn channel(&self, instance: &str) -> String {
        format!("{}inst:{instance}", self.prefix)
    }

    /// A pub/sub connection subscribed to `channel`.
    pub async fn subscribe(&self, channel: &str) -> Result<PubSub, ClusterError> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(COMMAND_TIMEOUT * 3, connect).await {
            Ok(result) => result.map_err(ClusterError::Command),
            Err(_) => Err(ClusterError::Unexpected(
                "subscribing timed out (is Redis overloaded?)".into(),
            )),
        }
    }

    fn limits(&self) -> [u64; 7] {
        let m = &self.mailbox;
        [
            m.ttl_secs,
            m.per_recipient_count as u64,
            m.per_recipient_bytes as u64,
            m.per_sender_bytes as u64,
            m.total_bytes as u64,
            ENTRY_OVERHEAD as u64,
            SWEEP_LIMIT as u64,
        ]
    }

    /// Routes `frame` from `from` to `to`: published to the instance holding `to`, else kept
    /// (when `mailbox_kind`) or answered offline.
    pub async fn route(
        &self,
        from: &CallId,
        to: &CallId,
        mailbox_kind: bool,
        frame: &str,
        now: u64,
    ) -> Result<RouteAnswer, ClusterError> {
        let mut inv = self.route.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(to.to_string())
            .arg(from.to_string())
            .arg(frame)
            .arg(if mailbox_kind { "1" } else { "0" })
            .arg(now);
        for limit in self.limits() {
            inv.arg(limit);
        }
        let word: String = inv.invoke_async(&mut self.conn.clone()).await?;
        RouteAnswer::parse(&word)
            .ok_or_else(|| ClusterError::Unexpected(format!("route script answered {word:?}")))
    }

    /// Writes `token` as `id`'s presence (TTL `ttl`), kicks the connection it replaces on
    /// another instance, and drains `id`'s mailbox onto `own_channel`.
    pub async fn login(
        &self,
        id: &CallId,
        token: PresenceToken,
        ttl: Duration,
        own_channel: &str,
        now: u64,
    ) -> Result<LoginAnswer, ClusterError> {
        let (kept, displaced, rest): (u64, String, Vec<String>) = self
            .login
            .arg(&self.prefix)
            .arg(id.to_string())
            .arg(token.to_string())
            .arg(ttl.as_millis().max(1) as u64)
            .arg(now)
            .arg(ENTRY_OVERHEAD as u64)
            .arg(own_channel)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(LoginAnswer {
            kept,
            displaced: PresenceToken::parse(&displaced),
            rest: pairs(rest)?,
        })
    }

    /// Deletes `id`'s presence if it is still `token`; `true` when it was.
    pub async fn logout(&self, id: &CallId, token: PresenceToken) -> Result<bool, ClusterError> {
        let deleted: i64 = self
            .logout
            .arg(&self.prefix)
            .arg(id.to_string())
            .arg(token.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(deleted == 1)
    }

    /// Renews (or writes back) each `(id, token)` of `instance` for `ttl`; answers the IDs
    /// another instance holds now.
    pub async fn refresh(
        &self,
        instance: InstanceId,
        held: &[(CallId, PresenceToken)],
        ttl: Duration,
    ) -> Result<Vec<CallId>, ClusterError> {
        let mut inv = self.refresh.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(ttl.as_millis().max(1) as u64)
            .arg(instance.to_string());
        for (id, token) in held {
            inv.arg(id.to_string()).arg(token.to_string());
        }
        let lost: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        lost.iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| ClusterError::Unexpected(format!("refresh answered {s:?}")))
            })
            .collect()
    }

    /// Keeps `frame` from `from` for `to` in the mailbox (the route script's mailbox step alone).
    pub async fn keep(
        &self,
        from: &CallId,
        to: &CallId,
        frame: &str,
        now: u64,
    ) -> Result<Result<(), MailboxRefused>, ClusterError> {
        let mut inv = self.keep.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(to.to_string())
            .arg(from.to_string())
            .arg(frame)
            .arg(now);
        for limit in self.limits() {
            inv.arg(limit);
        }
        let word: String = inv.invoke_async(&mut self.conn.clone()).await?;
        match RouteAnswer::parse(&word) {
            Some(RouteAnswer::Kept) => Ok(Ok(())),
            Some(RouteAnswer::RecipientFull) => Ok(Err(MailboxRefused::RecipientFull)),
            Some(RouteAnswer::ServerFull) => Ok(Err(MailboxRefused::ServerFull)),
            _ => Err(ClusterError::Unexpected(format!(
                "keep script answered {word:?}"
            ))),
        }
    }

    /// Empties `to`'s mailbox, answering what had not expired at `now` as `(from, frame)`.
    pub async fn take(&self, to: &CallId, now: u64) -> Result<Vec<(CallId, String)>, ClusterError> {
        let rest: Vec<String> = self
            .take
            .arg(&self.prefix)
            .arg(to.to_string())
            .arg(now)
            .arg(ENTRY_OVERHEAD as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        pairs(rest)
    }

    /// Drops every kept envelope older than the TTL at `now`.
    pub async fn expire(&self, now: u64) -> Result<(), ClusterError> {
        let _: i64 = self
            .sweep
            .arg(&self.prefix)
            .arg(now)
            .arg(ENTRY_OVERHEAD as u64)
            .arg(u32::MAX)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// What the shared mailbox holds.
    pub async fn mailbox_stats(&self) -> Result<MailboxStats, ClusterError> {
        let (recipients, envelopes, bytes, refused, expired): (u64, u64, u64, u64, u64) = self
            .stats
            .arg(&self.prefix)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(MailboxStats {
            recipients: recipients as usize,
            envelopes: envelopes as usize,
            bytes: bytes as usize,
            refused,
            expired,
        })
    }
}

/// `[from1, frame1, from2, frame2, …]` as pairs.
fn pairs(flat: Vec<String>) -> Result<Vec<(CallId, String)>, ClusterError> {
    if flat.len() % 2 != 0 {
        return Err(ClusterError::Unexpected("odd-length mailbox answer".into()));
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(from), Some(frame)) = (it.next(), it.next()) {
        let from = from
            .parse()
            .map_err(|_| ClusterError::Unexpected(format!("mailbox entry from {from:?}")))?;
        out.push((from, frame));
    }
    Ok(out)
}

/// `url` without its password (and user name), for logs and error messages.
pub fn redacted_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted_url("redis://:s3cret@10.0.0.5:6379/2"),
            "redis://***@10.0.0.5:6379/2"
        );
        assert_eq!(
            redacted_url("redis://user:p@ss@host/0"),
            "redis://***@host/0"
        );
        assert_eq!(
            redacted_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redacted_url("nonsense"), "nonsense");
    }

    #[test]
    fn mailbox_answers_pair_up_or_are_refused() {
        use crate::identity::Identity;
        let a = Identity::from_seed([1; 32]).call_id();
        assert_eq!(
            pairs(vec![a.to_string(), "f".into()]).unwrap(),
            [(a, "f".to_owned())]
        );
        assert!(pairs(vec![a.to_string()]).is_err());
        assert!(pairs(vec!["x".into(), "f".into()]).is_err());
    }
}
