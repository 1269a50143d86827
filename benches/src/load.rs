//! The pure parts of the `call-load` tool: reading `VmRSS` from `/proc/<pid>/status`, the send
//! time carried inside a routed envelope's plaintext, percentiles of latencies, and the
//! figures the tool prints (per connection, per envelope). The server process and the clients
//! are in the submodules; the tool (`src/bin/call-load.rs`) wires them into subcommands.

use std::time::Duration;

pub mod abuse;
pub mod calls;
pub mod cost;
pub mod pairs;
pub mod server;

use thiserror::Error;

/// `/proc/<pid>/status` is a few KiB; anything much longer is not it.
const MAX_STATUS_LEN: usize = 64 * 1024;

/// Bytes of the send time at the start of a routed envelope's plaintext.
pub const STAMP_LEN: usize = 8;

/// Why a resident size could not be read.
#[derive(Debug, Error)]
pub enum RssError {
    /// The file could not be read (the process is gone, or this is not Linux).
    #[error("could not read /proc/{pid}/status: {source} (has the process exited? this tool needs Linux /proc)")]
    Read {
        /// The process.
        pid: u32,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is longer than any `status` file.
    #[error("/proc status is {0} bytes, more than the {MAX_STATUS_LEN} expected")]
    TooLong(usize),
    /// No `VmRSS:` line, or its value is not `<number> kB`.
    #[error("/proc status has no readable `VmRSS: <n> kB` line")]
    NoRss,
}

/// The `VmRSS` of a `/proc/<pid>/status` text, KiB.
pub fn parse_vm_rss(status: &str) -> Result<u64, RssError> {
    if status.len() > MAX_STATUS_LEN {
        return Err(RssError::TooLong(status.len()));
    }
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(RssError::NoRss)
}

/// The resident size of process `pid`, KiB.
pub fn read_vm_rss(pid: u32) -> Result<u64, RssError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|source| RssError::Read { pid, source })?;
    parse_vm_rss(&text)
}

/// A plaintext of `len` bytes (at least [`STAMP_LEN`]) starting with `sent`, the time since
/// the tool's start, in microseconds (big-endian).
pub fn stamped_plaintext(sent: Duration, len: usize) -> Vec<u8> {
    let mut body = vec![b'x'; len.max(STAMP_LEN)];
    let micros = u64::try_from(sent.as_micros()).unwrap_or(u64::MAX);
    body[..STAMP_LEN].copy_from_slice(&micros.to_be_bytes());
    body
}

/// The send time of a plaintext made by [`stamped_plaintext`]; `None` when it is too short.
pub fn stamp_of(plaintext: &[u8]) -> Option<Duration> {
    let bytes: [u8; STAMP_LEN] = plaintext.get(..STAMP_LEN)?.try_into().ok()?;
    Some(Duration::from_micros(u64::from_be_bytes(bytes)))
}

/// The `q`-quantile (0 to 1) of `sorted` (ascending) by the nearest-rank method; `None` when
/// empty.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Growth of the server's resident size per connection, KiB (0 for no connections).
pub fn kib_per_connection(before_kib: u64, after_kib: u64, connections: usize) -> f64 {
    if connections == 0 {
        return 0.0;
    }
    after_kib.saturating_sub(before_kib) as f64 / connections as f64
}

/// Server CPU per routed envelope, microseconds (0 for no envelopes).
pub fn cpu_micros_per_envelope(cpu_seconds: f64, envelopes: u64) -> f64 {
    if envelopes == 0 {
        return 0.0;
    }
    cpu_seconds * 1e6 / envelopes as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str =
        "Name:\tcall-signaling\nVmPeak:\t  123456 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";

    #[test]
    fn vm_rss_is_read_from_its_line() {
        assert_eq!(parse_vm_rss(STATUS).unwrap(), 10240);
    }

    #[test]
    fn status_without_rss_or_with_garbage_is_an_error() {
        assert!(matches!(parse_vm_rss("Name: x\n"), Err(RssError::NoRss)));
        assert!(matches!(
            parse_vm_rss("VmRSS: many kB\n"),
            Err(RssError::NoRss)
        ));
        assert!(matches!(parse_vm_rss("VmRSS: 12\n"), Err(RssError::NoRss)));
        let long = "x".repeat(MAX_STATUS_LEN + 1);
        assert!(matches!(parse_vm_rss(&long), Err(RssError::TooLong(_))));
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(read_vm_rss(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn stamp_round_trips_and_short_bodies_have_none() {
        let sent = Duration::from_micros(1_234_567_890);
        let body = stamped_plaintext(sent, 64);
        assert_eq!(body.len(), 64);
        assert_eq!(stamp_of(&body), Some(sent));
        assert_eq!(stamped_plaintext(sent, 2).len(), STAMP_LEN);
        assert_eq!(stamp_of(&body[..7]), None);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<_> = (1..=100).map(ms).collect();
        assert_eq!(quantile(&sorted, 0.5), Some(ms(50)));
        assert_eq!(quantile(&sorted, 0.99), Some(ms(99)));
        assert_eq!(quantile(&sorted, 1.0), Some(ms(100)));
        assert_eq!(quantile(&sorted, 0.0), Some(ms(1)));
        assert_eq!(quantile(&[ms(7)], 0.99), Some(ms(7)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn per_connection_and_per_envelope_figures() {
        assert_eq!(kib_per_connection(1000, 3000, 100), 20.0);
        assert_eq!(kib_per_connection(3000, 1000, 100), 0.0);
        assert_eq!(kib_per_connection(1000, 3000, 0), 0.0);
        assert_eq!(cpu_micros_per_envelope(2.0, 20_000), 100.0);
        assert_eq!(cpu_micros_per_envelope(2.0, 0), 0.0);
    }
}
