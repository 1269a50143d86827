//! A real call across two `call-signaling --redis` instances sharing one Redis: `call listen` on
//! instance A, `call dial` on instance B, the tone checked in the listener's WAV. Redis is a
//! `redis-server` of the test's own (from `deploy/redis/redis-call.conf`, loopback, persistence
//! off). Skipped with one line when `redis-server` is not installed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::tempdir;
use support::turn::{tone_call, Host, Side, Signaling};

fn redis_server_or_skip(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: `redis-server` is not installed (Debian package redis-server; scripts/install-system-deps.sh installs it)"
        );
    }
    found
}

/// A `redis-server` on loopback, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start(bin: &Path) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempdir();
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/redis/redis-call.conf");
        let child = Command::new(bin)
            .arg(conf)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--daemonize", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        // Owned from here: dropped (killed and reaped) on every path.
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        // It answers once it listens.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server on port {port} does not listen");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_call_between_clients_of_two_instances_carries_audio() {
    let test = "a_call_between_clients_of_two_instances_carries_audio";
    let Some(bin) = redis_server_or_skip(test) else {
        return;
    };
    let redis = Redis::start(&bin);
    let host = Host::loopback();
    let instance = || {
        Signaling::start(
            &host,
            &[
                "--listen",
                "127.0.0.1:0",
                "--no-turn",
                "--redis",
                &redis.url(),
            ]
            .map(str::to_owned),
        )
    };
    let mut a = instance();
    let b = instance();
    assert_ne!(a.url, b.url);
    let side = |url: &str| Side {
        host: &host,
        args: ["--server", url, "--ice-scope", "loopback"]
            .map(str::to_owned)
            .to_vec(),
        env: vec![],
    };
    // The listener logs in on A; the dialer, on B, reaches it only through Redis.
    let a_url = a.url.clone();
    let outcome = tone_call(&mut a, side(&b.url), side(&a_url));
    assert_eq!(outcome.stats["candidate_type"].as_str(), Some("host"));
}
