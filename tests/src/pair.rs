//! Two parties on one server: bob listens (auto-accept), alice dials.

use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{dial, listen, CallError, CallOptions, CallReport, IncomingDecision};
use signaling::identity::Identity;
use signaling::server::RunningServer;
use tokio::task::JoinHandle;

/// What each side of a call returned.
pub struct PairResult {
    /// Alice, the caller.
    pub alice: Result<CallReport, CallError>,
    /// Bob, the callee.
    pub bob: Result<CallReport, CallError>,
}

/// Starts bob listening and returns once the server has his connection, so an offer sent
/// afterwards is routed to him.
pub async fn start_listener(
    server: &RunningServer,
    bob: &Arc<Identity>,
    opts: CallOptions,
) -> JoinHandle<Result<CallReport, CallError>> {
    let before = server.connected_clients();
    let handle = tokio::spawn(listen(Arc::clone(bob), IncomingDecision::AutoAccept, opts));
    for _ in 0..500 {
        if server.connected_clients() > before || handle.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle
}

/// Runs one call: bob listens with `bob_opts`, alice dials him with `alice_opts`.
pub async fn call_pair(
    server: &RunningServer,
    alice: &Arc<Identity>,
    alice_opts: CallOptions,
    bob: &Arc<Identity>,
    bob_opts: CallOptions,
) -> PairResult {
    let listener = start_listener(server, bob, bob_opts).await;
    let alice = dial(Arc::clone(alice), bob.call_id(), alice_opts).await;
    let bob = listener.await.expect("bob's task does not panic");
    PairResult { alice, bob }
}
