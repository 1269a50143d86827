//! `/metrics` scraped *during* a real relay-only call between two `call` processes: the
//! counters an operator watches (logins, connections, envelopes routed, TURN allocations and
//! relayed bytes) must move with the call, not just exist.

mod support;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use signaling::server::{ServerConfig, METRICS_PATH};
use support::turn::assert_tone;
use support::*;

/// Every `call_signaling_*` sample of one scrape, by name with labels.
type Samples = HashMap<String, f64>;

/// `GET /metrics` over plain HTTP/1.1 (blocking: the server runs on its own runtime).
fn scrape(addr: SocketAddr) -> Samples {
    let mut stream = TcpStream::connect(addr).expect("the metrics listener accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    write!(
        stream,
        "GET {METRICS_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("a whole response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(body.ends_with("# EOF\n"), "not a whole exposition: {body}");
    body.lines()
        .filter(|l| l.starts_with("call_signaling_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn get(samples: &Samples, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or_else(|| {
        let mut names: Vec<_> = samples.keys().collect();
        names.sort();
        panic!("{name} missing from the scrape; it has {names:#?}")
    })
}

const LOGINS: &str = "call_signaling_logins_total{result=\"ok\"}";
const AUTHENTICATED: &str = "call_signaling_connections{state=\"authenticated\"}";
const DELIVERED: &str = "call_signaling_envelopes_routed_total{result=\"delivered\"}";
const ALLOCATIONS: &str = "call_signaling_turn_allocations";
const ALLOCATIONS_CREATED: &str = "call_signaling_turn_allocations_created_total";
const TO_PEERS: &str = "call_signaling_turn_relayed_bytes_total{direction=\"to_peers\"}";
const FROM_PEERS: &str = "call_signaling_turn_relayed_bytes_total{direction=\"from_peers\"}";

#[test]
fn metrics_move_during_a_relay_only_call_between_two_processes() {
    let server = TestServer::start_with(ServerConfig {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::local()
    });
    let metrics = server
        .server
        .as_ref()
        .and_then(|s| s.metrics_addr())
        .expect("the metrics listener is bound");
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let heard: PathBuf = b.path().join("heard.wav");

    let quiet = scrape(metrics);
    assert_eq!(get(&quiet, LOGINS), 0.0, "{quiet:#?}");
    assert_eq!(get(&quiet, ALLOCATIONS), 0.0, "{quiet:#?}");

    let listener = spawn_listener(&server, b.path(), &heard, true);
    let listening = scrape(metrics);
    assert_eq!(get(&listening, LOGINS), 1.0);
    assert_eq!(get(&listening, AUTHENTICATED), 1.0);

    // Long enough to scrape twice while media flows through the relay.
    let mut dialer = Running::spawn(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "sine:440", "--audio-out", "null"])
            .args(["--duration", "6"])
            .args(conn_args(&url, true)),
        "call dial",
    );
    let deadline = Instant::now() + PROCESS_LIMIT;
    let in_call = loop {
        let s = scrape(metrics);
        if get(&s, TO_PEERS) > 0.0 && get(&s, FROM_PEERS) > 0.0 {
            break s;
        }
        assert!(
            !dialer.exited(),
            "call dial ended before any media went through the relay: {s:#?}"
        );
        assert!(
            Instant::now() < deadline,
            "no relayed bytes within {PROCESS_LIMIT:?}: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Both ends logged in, the offer and the answer went through the server, both ends hold
    // a relay allocation.
    assert_eq!(get(&in_call, LOGINS), 2.0, "{in_call:#?}");
    assert_eq!(get(&in_call, AUTHENTICATED), 2.0, "{in_call:#?}");
    assert!(get(&in_call, DELIVERED) >= 2.0, "{in_call:#?}");
    assert!(get(&in_call, ALLOCATIONS) >= 2.0, "{in_call:#?}");
    assert!(get(&in_call, ALLOCATIONS_CREATED) >= 2.0, "{in_call:#?}");

    std::thread::sleep(Duration::from_secs(1));
    let later = scrape(metrics);
    assert!(
        !dialer.exited(),
        "the call ended before the second scrape: nothing shows the counters moving during it"
    );
    for name in [TO_PEERS, FROM_PEERS] {
        assert!(
            get(&later, name) > get(&in_call, name),
            "{name} did not grow during the call: {} then {}",
            get(&in_call, name),
            get(&later, name)
        );
    }

    let dialer = dialer.wait(PROCESS_LIMIT);
    let listener = listener.wait(PROCESS_LIMIT);
    dialer.assert_success("call dial");
    listener.assert_success("call listen");
    assert_tone(&heard, 440.0);
    // The hang-up went through the server too.
    let after = scrape(metrics);
    assert!(
        get(&after, DELIVERED) > get(&later, DELIVERED),
        "no envelope routed after the call's media: {after:#?}"
    );
}
