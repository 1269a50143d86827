//! The Lua scripts that make each cluster decision atomic in Redis, and their typed answers.
//!
//! Distance from the wire: inside Redis. Redis runs one script at a time, so a login (write the
//! presence, kick the older holder, drain the mailbox) and a route (look up the presence,
//! publish, or keep in the mailbox) never interleave: nothing is left in the mailbox of an ID
//! that is present, and kept envelopes reach the instance's channel before anything routed
//! after the login. The mailbox bounds are those of the in-memory
//! [`Mailbox`](super::super::mailbox::Mailbox) (§12.2 of `docs/protocol.md`), computed the same
//! way: per recipient (count, bytes), per sender within a recipient (bytes), for everyone
//! (bytes plus [`ENTRY_OVERHEAD`](super::super::mailbox::ENTRY_OVERHEAD) per envelope and per
//! recipient), entries older than the TTL dropped and counted. `signaling/tests/redis.rs` runs
//! the same random operations on both and compares every answer.
//!
//! Time is an argument (`now`, Unix seconds, from the calling instance); keys are computed from
//! the prefix, so this needs a standalone Redis (or a primary with replicas), not Redis Cluster.
//!
//! Keys (prefix `call:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `presence:<id>` | string, TTL | [`PresenceToken`](super::presence::PresenceToken) of the connection holding `<id>` |
//! | `inst:<instance>` | channel | [`ClusterMessage`](super::message::ClusterMessage)s for that instance |
//! | `mbox:<id>` | list | kept entries `<expires> <from> <deliver frame>`, oldest first |
//! | `mboxmeta:<id>` | hash | `bytes` of the recipient's frames, `s:<from>` bytes per sender |
//! | `mboxidx` | sorted set | recipients by the expiry of their oldest entry (the sweep) |
//! | `mboxstats` | hash | `bytes`, `envelopes`, `refused`, `expired`, `next_sweep` |

/// Prefix of every key and channel.
pub const KEY_PREFIX: &str = "call:";

/// At most this many recipients are swept per push (a sweep runs at most once a minute).
pub const SWEEP_LIMIT: usize = 1000;

/// Shared functions, put in front of every script body.
const PRELUDE: &str = r#"
-- Negative increments are written `0 - x`: Lua's `-x` of 0 is -0, which Redis refuses as
-- an integer argument.
local function parse_entry(e)
  local exp, from, frame = string.match(e, '^(%d+) (%S+) (.*)$')
  return tonumber(exp), from, frame
end

local function stat(p, field)
  return tonumber(redis.call('HGET', p .. 'mboxstats', field) or '0')
end

local function sweep(p, now, overhead, limit)
  local due = redis.call('ZRANGEBYSCORE', p .. 'mboxidx', '-inf', now, 'LIMIT', 0, limit)
  for _, to in ipairs(due) do
    local box = p .. 'mbox:' .. to
    local meta = p .. 'mboxmeta:' .. to
    local freed, gone = 0, 0
    while true do
      local e = redis.call('LINDEX', box, 0)
      if not e then break end
      local exp, from, frame = parse_entry(e)
      if exp > now then break end
      redis.call('LPOP', box)
      local len = string.len(frame)
      redis.call('HINCRBY', meta, 'bytes', 0 - len)
      redis.call('HINCRBY', meta, 's:' .. from, 0 - len)
      freed = freed + len + overhead
      gone = gone + 1
    end
    local head = redis.call('LINDEX', box, 0)
    if head then
      local exp = parse_entry(head)
      redis.call('ZADD', p .. 'mboxidx', exp, to)
    else
      redis.call('ZREM', p .. 'mboxidx', to)
      redis.call('DEL', box, meta)
      freed = freed + overhead
    end
    redis.call('HINCRBY', p .. 'mboxstats', 'bytes', 0 - freed)
    redis.call('HINCRBY', p .. 'mboxstats', 'envelopes', 0 - gone)
    redis.call('HINCRBY', p .. 'mboxstats', 'expired', gone)
  end
end

-- limits: ttl, per_count, per_bytes, per_sender, total, overhead, sweep_limit
local function mbox_push(p, to, from, frame, now, lim)
  local ttl, per_count, per_bytes, per_sender, total, overhead, sweep_limit =
    lim[1], lim[2], lim[3], lim[4], lim[5], lim[6], lim[7]
  if now >= stat(p, 'next_sweep') then
    sweep(p, now, overhead, sweep_limit)
    redis.call('HSET', p .. 'mboxstats', 'next_sweep', now + 60)
  end
  local len = string.len(frame)
  local cost = len + overhead
  local box = p .. 'mbox:' .. to
  local meta = p .. 'mboxmeta:' .. to
  local n = redis.call('LLEN', box)
  local box_cost = 0
  if n == 0 then box_cost = overhead end
  if stat(p, 'bytes') + cost + box_cost > total then
    redis.call('HINCRBY', p .. 'mboxstats', 'refused', 1)
    return 'server_full'
  end
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local sender = tonumber(redis.call('HGET', meta, 's:' .. from) or '0')
  if n >= per_count or bytes + len > per_bytes or sender + len > per_sender then
    redis.call('HINCRBY', p .. 'mboxstats', 'refused', 1)
    return 'recipient_full'
  end
  local expires = now + ttl
  redis.call('RPUSH', box, string.format('%d', expires) .. ' ' .. from .. ' ' .. frame)
  redis.call('HINCRBY', meta, 'bytes', len)
  redis.call('HINCRBY', meta, 's:' .. from, len)
  if n == 0 then redis.call('ZADD', p .. 'mboxidx', expires, to) end
  redis.call('HINCRBY', p .. 'mboxstats', 'bytes', cost + box_cost)
  redis.call('HINCRBY', p .. 'mboxstats', 'envelopes', 1)
  return 'kept'
end

-- Empties id's mailbox. Unexpired entries are published on `channel` as deliveries, oldest
-- first; from the first publish nobody receives (or with channel ''), they are returned
-- instead as a flat list from1, frame1, from2, frame2, ...
local function drain(p, id, now, overhead, channel)
  local box = p .. 'mbox:' .. id
  local entries = redis.call('LRANGE', box, 0, -1)
  local rest = {}
  if #entries == 0 then return 0, rest end
  local kept, expired, freed = 0, 0, overhead
  local publishing = channel ~= ''
  for _, e in ipairs(entries) do
    local exp, from, frame = parse_entry(e)
    freed = freed + string.len(frame) + overhead
    if exp > now then
      kept = kept + 1
      if publishing and redis.call('PUBLISH', channel, 'd ' .. id .. ' ' .. from .. ' ' .. frame) == 0 then
        publishing = false
      end
      if not publishing then
        rest[#rest + 1] = from
        rest[#rest + 1] = frame
      end
    else
      expired = expired + 1
    end
  end
  redis.call('DEL', box, p .. 'mboxmeta:' .. id)
  redis.call('ZREM', p .. 'mboxidx', id)
  redis.call('HINCRBY', p .. 'mboxstats', 'bytes', 0 - freed)
  redis.call('HINCRBY', p .. 'mboxstats', 'envelopes', 0 - #entries)
  redis.call('HINCRBY', p .. 'mboxstats', 'expired', expired)
  return kept, rest
end

local function limits_from(first)
  local lim = {}
  for i = 0, 6 do lim[i + 1] = tonumber(ARGV[first + i]) end
  return lim
end
"#;

/// ARGV: prefix, to, from, frame, mailbox kind (`1`/`0`), now, then the 7 limits.
/// Answers one of the [`RouteAnswer`] words.
const ROUTE: &str = r#"
local p, to, from, frame = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = p .. 'presence:' .. to
local owner = redis.call('GET', key)
if owner then
  local inst = string.match(owner, '^(%x+)/%d+$')
  if inst and redis.call('PUBLISH', p .. 'inst:' .. inst, 'd ' .. to .. ' ' .. from .. ' ' .. frame) > 0 then
    return 'delivered'
  end
  -- Nobody listens on the holder's channel: that instance is gone. Its presence must not
  -- black-hole the ID until the TTL runs out.
  redis.call('DEL', key)
end
if ARGV[5] ~= '1' then return 'offline' end
return mbox_push(p, to, from, frame, tonumber(ARGV[6]), limits_from(7))
"#;

/// ARGV: prefix, id, token, ttl ms, now, overhead, own channel.
/// Answers `{kept, displaced token or '', {from1, frame1, ...}}`.
const LOGIN: &str = r#"
local p, id, token, own = ARGV[1], ARGV[2], ARGV[3], ARGV[7]
local key = p .. 'presence:' .. id
local old = redis.call('GET', key)
redis.call('SET', key, token, 'PX', ARGV[4])
local displaced = ''
if old and old ~= token then
  local inst, conn = string.match(old, '^(%x+)/(%d+)$')
  if inst and p .. 'inst:' .. inst ~= own then
    redis.call('PUBLISH', p .. 'inst:' .. inst, 'k ' .. id .. ' ' .. conn)
    displaced = old
  end
end
local kept, rest = drain(p, id, tonumber(ARGV[5]), tonumber(ARGV[6]), own)
return {kept, displaced, rest}
"#;

/// ARGV: prefix, id, token. Deletes the presence only if it is still `token`.
const LOGOUT: &str = r#"
local key = ARGV[1] .. 'presence:' .. ARGV[2]
if redis.call('GET', key) == ARGV[3] then
  redis.call('DEL', key)
  return 1
end
return 0
"#;

/// ARGV: prefix, ttl ms, own instance, then pairs id, token. Renews each token that is still
/// there, writes back one that lapsed or that an older connection of the same instance still
/// holds (its login is in flight; the instance's latest connection is the truth), and answers
/// the IDs whose presence another instance holds now.
const REFRESH: &str = r#"
local p, ttl, own = ARGV[1], ARGV[2], ARGV[3] .. '/'
local lost = {}
for i = 4, #ARGV - 1, 2 do
  local key = p .. 'presence:' .. ARGV[i]
  local v = redis.call('GET', key)
  if v == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ttl)
  elseif not v or string.sub(v, 1, #own) == own then
    redis.call('SET', key, ARGV[i + 1], 'PX', ttl)
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"#;

/// ARGV: prefix, to, from, frame, now, then the 7 limits. The mailbox push alone (tests).
const KEEP: &str = r#"
return mbox_push(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), limits_from(6))
"#;

/// ARGV: prefix, id, now, overhead. The mailbox drain alone, answering the frames (tests).
const TAKE: &str = r#"
local kept, rest = drain(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), '')
return rest
"#;

/// ARGV: prefix, now, overhead, sweep limit. The expiry sweep alone (tests).
const SWEEP: &str = r#"
sweep(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
"#;

/// ARGV: prefix. Answers `{recipients, envelopes, bytes, refused, expired}`.
const STATS: &str = r#"
local p = ARGV[1]
return {redis.call('ZCARD', p .. 'mboxidx'), stat(p, 'envelopes'), stat(p, 'bytes'),
        stat(p, 'refused'), stat(p, 'expired')}
"#;

/// Which script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptName {
    /// Route one envelope (presence → publish, else mailbox or offline).
    Route,
    /// A login: presence, displacement, mailbox drain.
    Login,
    /// A logout: compare-and-delete of the presence.
    Logout,
    /// Renew presence.
    Refresh,
    /// Keep one envelope in the mailbox.
    Keep,
    /// Empty one mailbox, answering its frames.
    Take,
    /// The expiry sweep.
    Sweep,
    /// Mailbox statistics.
    Stats,
}

impl ScriptName {
    /// The full Lua source (prelude and body).
    pub fn source(self) -> String {
        let body = match self {
            ScriptName::Route => ROUTE,
            ScriptName::Login => LOGIN,
            ScriptName::Logout => LOGOUT,
            ScriptName::Refresh => REFRESH,
            ScriptName::Keep => KEEP,
            ScriptName::Take => TAKE,
            ScriptName::Sweep => SWEEP,
            ScriptName::Stats => STATS,
        };
        format!("{PRELUDE}{body}")
    }
}

/// What the route script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAnswer {
    /// Published to the instance holding the recipient.
    Delivered,
    /// Not present and not a mailbox kind.
    Offline,
    /// Kept in the mailbox.
    Kept,
    /// The recipient's mailbox (or the sender's share of it) is full.
    RecipientFull,
    /// The mailbox budget is spent.
    ServerFull,
}

impl RouteAnswer {
    /// Parses the script's answer word; `None` for anything else (a script bug or a stranger
    /// answering on the port).
    pub fn parse(word: &str) -> Option<RouteAnswer> {
        Some(match word {
            "delivered" => RouteAnswer::Delivered,
            "offline" => RouteAnswer::Offline,
            "kept" => RouteAnswer::Kept,
            "recipient_full" => RouteAnswer::RecipientFull,
            "server_full" => RouteAnswer::ServerFull,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_word_of_the_route_script_parses() {
        let route = ScriptName::Route.source();
        for word in [
            "delivered",
            "offline",
            "kept",
            "recipient_full",
            "server_full",
        ] {
            assert!(route.contains(&format!("'{word}'")), "{word}");
            assert!(RouteAnswer::parse(word).is_some(), "{word}");
        }
        assert_eq!(RouteAnswer::parse("OK"), None);
    }

    #[test]
    fn scripts_publish_the_message_shapes_the_receiver_parses() {
        // The Lua side writes `d TO FROM FRAME` and `k ID CONN`, as ClusterMessage::encode does.
        assert!(ScriptName::Route
            .source()
            .contains("'d ' .. to .. ' ' .. from .. ' ' .. frame"));
        assert!(ScriptName::Login
            .source()
            .contains("'k ' .. id .. ' ' .. conn"));
    }
}
