//! UDP impairment relay: the tokio shell around [`super::model`], for live calls in tests.
//!
//! The relay listens on a loopback socket and forwards every datagram from a client to
//! `upstream` (for example the embedded TURN server), from a separate upstream socket per client
//! address, and the upstream's answers back to that client. Both directions pass through their
//! own seeded [`Impairment`], so a call that uses the relay's address as its TURN server (ICE
//! policy relay-only) runs under the chosen [`Profile`]. Only loopback addresses are accepted.
//!
//! This file is the only place in `netsim` that reads clocks or touches sockets. Clock drift in
//! a profile is emulated as a delay ramp; a fast sender clock can only pull arrivals forward by
//! the base delay, since nothing is delivered before it was received.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use super::model::{Impairment, Profile};

/// Largest datagram forwarded.
const MAX_DATAGRAM: usize = 65_535;
/// Most client addresses served at once; datagrams from further clients are dropped.
const MAX_CLIENTS: usize = 64;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay only serves and forwards to loopback addresses.
    #[error("impairment relay address {0} is not loopback; use 127.0.0.1 or ::1 (test tool only)")]
    NotLoopback(SocketAddr),
    /// A socket could not be bound.
    #[error("impairment relay could not bind {addr}: {source}; use a free port or port 0")]
    Bind {
        /// Address that was requested.
        addr: SocketAddr,
        /// Operating-system error.
        source: io::Error,
    },
}

/// Counters of a running relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Datagrams received from clients.
    pub from_clients: u64,
    /// Datagrams received from upstream.
    pub from_upstream: u64,
    /// Datagram copies delivered (both directions, duplicates included).
    pub delivered: u64,
    /// Datagrams dropped by the impairment model or the client limit.
    pub dropped: u64,
    /// Client addresses seen.
    pub clients: u64,
}

#[derive(Debug, Default)]
struct Counters {
    from_clients: AtomicU64,
    from_upstream: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    clients: AtomicU64,
}

/// Starts impairment relays; see the module documentation.
#[derive(Debug)]
pub struct ImpairmentRelay;

/// A running relay; dropping it (or [`RelayHandle::shutdown`]) stops all its tasks.
#[derive(Debug)]
pub struct RelayHandle {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    profile: watch::Sender<Profile>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ImpairmentRelay {
    /// Binds `listen` (e.g. `127.0.0.1:0`) and forwards to `upstream` through `profile`,
    /// deterministic in the impairment decisions for `seed` and a given datagram order.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        profile: Profile,
        seed: u64,
    ) -> Result<RelayHandle, RelayError> {
        for addr in [listen, upstream] {
            if !addr.ip().is_loopback() {
                return Err(RelayError::NotLoopback(addr));
            }
        }
        let socket = UdpSocket::bind(listen)
            .await
            .map_err(|source| RelayError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| RelayError::Bind {
            addr: listen,
            source,
        })?;
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let (profile_tx, profile_rx) = watch::channel(profile);
        let relay = Relay {
            socket: Arc::new(socket),
            upstream,
            profile_rx,
            seed,
            epoch: Instant::now(),
            counters: counters.clone(),
            stop: stop_rx,
        };
        let task = tokio::spawn(relay.run());
        Ok(RelayHandle {
            local_addr,
            counters,
            profile: profile_tx,
            stop,
            task: Some(task),
        })
    }
}

impl RelayHandle {
    /// Address clients should send to (use it as the TURN server address).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Switches both directions of every client to `profile` from their next datagram on
    /// (e.g. lifts a rate cap mid-call); random streams and queues carry over.
    pub fn set_profile(&self, profile: Profile) {
        self.profile.send_replace(profile);
    }

    /// Counters so far.
    pub fn stats(&self) -> RelayStats {
        let c = &self.counters;
        RelayStats {
            from_clients: c.from_clients.load(Ordering::Relaxed),
            from_upstream: c.from_upstream.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            clients: c.clients.load(Ordering::Relaxed),
        }
    }

    /// Stops the relay and waits until its sockets are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Relay {
    socket: Arc<UdpSocket>,
    upstream: SocketAddr,
    /// The profile, and changes made through [`RelayHandle::set_profile`].
    profile_rx: watch::Receiver<Profile>,
    seed: u64,
    epoch: Instant,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
}

/// Per-client state: the impairment towards upstream and the delay line feeding it.
struct Client {
    to_upstream: Direction,
    line: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
}

/// One direction's impairment, following profile changes.
struct Direction {
    imp: Impairment,
    profile: watch::Receiver<Profile>,
}

impl Direction {
    /// The impairment, switched first to a profile set since the last datagram.
    fn current(&mut self) -> &mut Impairment {
        if self.profile.has_changed().unwrap_or(false) {
            self.imp
                .set_profile(self.profile.borrow_and_update().clone());
        }
        &mut self.imp
    }
}

impl Relay {
    async fn run(self) {
        let mut clients: HashMap<SocketAddr, Client> = HashMap::new();
        let mut tasks: Vec<JoinHandle<()>> = Vec::new();
        let mut stop = self.stop.clone();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, from) = tokio::select! {
                _ = stop.changed() => break,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(v) => v,
                    // ICMP errors from earlier sends surface here on some systems; keep going.
                    Err(_) => continue,
                },
            };
            self.counters.from_clients.fetch_add(1, Ordering::Relaxed);
            let index = clients.len() as u64;
            let client = match clients.entry(from) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    if index as usize >= MAX_CLIENTS {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let Ok(up) = self.upstream_socket().await else {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    self.counters.clients.fetch_add(1, Ordering::Relaxed);
                    let up = Arc::new(up);
                    let (line, line_rx) = mpsc::unbounded_channel();
                    tasks.push(tokio::spawn(delay_line(
                        line_rx,
                        up.clone(),
                        self.upstream,
                        self.counters.clone(),
                        self.stop.clone(),
                    )));
                    let (back, back_rx) = mpsc::unbounded_channel();
                    tasks.push(tokio::spawn(delay_line(
                        back_rx,
                        self.socket.clone(),
                        from,
                        self.counters.clone(),
                        self.stop.clone(),
                    )));
                    tasks.push(tokio::spawn(upstream_reader(
                        up,
                        self.upstream,
                        Direction {
                            imp: Impairment::new(
                                self.current_profile(),
                                self.seed ^ (2 * index + 1),
                            ),
                            profile: self.profile_rx.clone(),
                        },
                        self.epoch,
                        back,
                        self.counters.clone(),
                        self.stop.clone(),
                    )));
                    e.insert(Client {
                        to_upstream: Direction {
                            imp: Impairment::new(self.current_profile(), self.seed ^ (2 * index)),
                            profile: self.profile_rx.clone(),
                        },
                        line,
                    })
                }
            };
            schedule(
                client.to_upstream.current(),
                self.epoch,
                &buf[..n],
                &client.line,
                &self.counters,
            );
        }
        for t in tasks {
            t.abort();
        }
    }

    /// The profile new clients start with: the latest set, else the one started with.
    fn current_profile(&self) -> Profile {
        self.profile_rx.borrow().clone()
    }

    async fn upstream_socket(&self) -> io::Result<UdpSocket> {
        let any: SocketAddr = if self.upstream.is_ipv4() {
            (std::net::Ipv4Addr::LOCALHOST, 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        // Not connected: sending with an address on a connected socket fails on some systems.
        UdpSocket::bind(any).await
    }
}

/// Runs one datagram through `imp` and queues its copies on `line`.
fn schedule(
    imp: &mut Impairment,
    epoch: Instant,
    data: &[u8],
    line: &mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    counters: &Counters,
) {
    let now = Instant::now();
    let delivery = imp.apply(now.duration_since(epoch), data.len());
    if delivery.first.is_none() {
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
    for at in delivery.arrivals() {
        let _ = line.send(((epoch + at).max(now), data.to_vec()));
    }
}

/// Reads the upstream's answers for one client and queues them, impaired, towards it.
async fn upstream_reader(
    up: Arc<UdpSocket>,
    upstream: SocketAddr,
    mut imp: Direction,
    epoch: Instant,
    back: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let n = tokio::select! {
            _ = stop.changed() => return,
            r = up.recv_from(&mut buf) => match r {
                Ok((n, from)) if from == upstream => n,
                _ => continue,
            },
        };
        counters.from_upstream.fetch_add(1, Ordering::Relaxed);
        schedule(imp.current(), epoch, &buf[..n], &back, &counters);
    }
}

/// Sends queued datagrams to `to` at their due times, earliest first.
async fn delay_line(
    mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut heap: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut order = 0u64;
    let far = Duration::from_secs(3600);
    loop {
        let due = heap
            .peek()
            .map_or_else(|| Instant::now() + far, |Reverse((at, _, _))| *at);
        tokio::select! {
            _ = stop.changed() => return,
            msg = rx.recv() => match msg {
                Some((at, data)) => {
                    heap.push(Reverse((at, order, data)));
                    order += 1;
                }
                None => return,
            },
            _ = sleep_until(due), if !heap.is_empty() => {
                let now = Instant::now();
                while heap.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
                    if let Some(Reverse((_, _, data))) = heap.pop() {
                        if socket.send_to(&data, to).await.is_ok() {
                            counters.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback UDP echo server; returns its address and task.
    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = s.local_addr().expect("echo addr");
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let _ = s.send_to(&buf[..n], from).await;
            }
        });
        (addr, task)
    }

    /// Sends `n` numbered datagrams through the relay and collects the echoes that come back
    /// within a generous quiet period.
    async fn round_trip(profile: &str, n: u16) -> (Vec<u16>, RelayStats, Duration) {
        let (echo, echo_task) = echo_server().await;
        let relay = ImpairmentRelay::start(
            "127.0.0.1:0".parse().expect("addr"),
            echo,
            Profile::by_name(profile).expect("profile"),
            42,
        )
        .await
        .expect("relay starts");
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
        client.connect(relay.local_addr()).await.expect("connect");
        let started = Instant::now();
        for k in 0..n {
            client.send(&k.to_be_bytes()).await.expect("send");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut got = Vec::new();
        let mut first_echo = None;
        let mut buf = [0u8; 16];
        while let Ok(Ok(len)) =
            tokio::time::timeout(Duration::from_millis(1500), client.recv(&mut buf)).await
        {
            first_echo.get_or_insert_with(|| started.elapsed());
            if len == 2 {
                got.push(u16::from_be_bytes([buf[0], buf[1]]));
            }
        }
        let stats = relay.stats();
        relay.shutdown().await;
        echo_task.abort();
        (got, stats, first_echo.unwrap_or_default())
    }

    #[tokio::test]
    async fn forwards_both_ways_with_the_profile_delay() {
        let (got, stats, first) = round_trip("clean", 50).await;
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, (0..50).collect::<Vec<u16>>());
        assert_eq!(stats.clients, 1);
        assert_eq!(stats.from_clients, 50);
        assert_eq!(stats.from_upstream, 50);
        // 30 ms base delay each way: an echo can never come back sooner than 60 ms.
        assert!(
            first >= Duration::from_millis(60),
            "first echo after {first:?}"
        );
    }

    #[tokio::test]
    async fn loss_profile_drops_datagrams() {
        let (got, stats, _) = round_trip("loss20", 200).await;
        // 20 % each way: about 64 % survive the round trip.
        assert!((80..180).contains(&got.len()), "{} echoes", got.len());
        assert!(stats.dropped > 20, "{stats:?}");
    }

    #[tokio::test]
    async fn profile_changes_apply_to_running_clients() {
        let (echo, echo_task) = echo_server().await;
        let relay = ImpairmentRelay::start(
            "127.0.0.1:0".parse().expect("addr"),
            echo,
            Profile::ideal("clean", Duration::from_millis(1)),
            3,
        )
        .await
        .expect("relay starts");
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
        client.connect(relay.local_addr()).await.expect("connect");
        let mut buf = [0u8; 16];
        client.send(b"a").await.expect("send");
        let first = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf)).await;
        assert!(matches!(first, Ok(Ok(1))), "clean: the echo comes back");
        let mut dead = Profile::ideal("dead", Duration::from_millis(1));
        dead.loss = crate::netsim::model::LossModel::Random { p: 1.0 };
        relay.set_profile(dead);
        for _ in 0..20 {
            client.send(b"b").await.expect("send");
        }
        let later = tokio::time::timeout(Duration::from_millis(300), client.recv(&mut buf)).await;
        assert!(later.is_err(), "everything is lost after the change");
        assert_eq!(relay.stats().dropped, 20);
        relay.shutdown().await;
        echo_task.abort();
    }

    #[tokio::test]
    async fn refuses_non_loopback_addresses() {
        let err = ImpairmentRelay::start(
            "127.0.0.1:0".parse().expect("addr"),
            "192.0.2.1:3478".parse().expect("addr"),
            Profile::by_name("clean").expect("profile"),
            1,
        )
        .await
        .expect_err("non-loopback upstream");
        assert!(matches!(err, RelayError::NotLoopback(_)));
    }
}
