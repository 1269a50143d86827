//! Repeated calls in one process must not leave tasks, threads or sockets behind.

use std::sync::Arc;
use std::time::Duration;

use call_cli::call::CallOptions;
use signaling::identity::Identity;
use signaling::server::{RunningServer, Server, ServerConfig};
use tests::pair::call_pair;
use tests::resources::{open_fds, threads};

async fn one_call(server: &RunningServer) {
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.duration = None;
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.duration = Some(Duration::from_millis(500));
    let r = call_pair(server, &alice, alice_opts, &bob, bob_opts).await;
    r.alice.expect("call works");
    r.bob.expect("listener ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_calls_do_not_grow_tasks_or_fds() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let metrics = tokio::runtime::Handle::current().metrics();

    // Warm up: the first call creates lazily-initialised state (thread pools, caches).
    one_call(&server).await;
    one_call(&server).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (fds0, tasks0, threads0) = (open_fds(), metrics.num_alive_tasks(), threads());

    for _ in 0..5 {
        one_call(&server).await;
    }
    // webrtc-rs closes some sockets and tasks asynchronously after `close()` returns.
    let mut settled = (0, 0, 0);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        settled = (open_fds(), metrics.num_alive_tasks(), threads());
        if settled.0 <= fds0 && settled.1 <= tasks0 {
            break;
        }
    }
    let (fds1, tasks1, threads1) = settled;
    assert!(
        fds1 <= fds0,
        "file descriptors grew from {fds0} to {fds1} over 5 calls"
    );
    assert!(
        tasks1 <= tasks0,
        "tokio tasks grew from {tasks0} to {tasks1} over 5 calls"
    );
    // Blocking-pool threads come and go; allow the pool's own slack but not one per call.
    assert!(
        threads1 <= threads0 + 4,
        "threads grew from {threads0} to {threads1}"
    );
    server.shutdown().await;
}
