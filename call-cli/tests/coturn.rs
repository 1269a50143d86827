//! TURN as operators run it: deploy/'s coturn config checked against the embedded TURN's peer
//! policy, and real relay-only calls through a real coturn (Debian package `coturn`) started
//! from a config derived from it: once with credentials handed out by `call-signaling --no-turn
//! --turn-url … --turn-secret-file …`, once with `--ice-server` while the server hands out no
//! TURN at all. Skipped with one line when `turnserver` is not installed.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::{Rng as _, SeedableRng as _};
use signaling::server::peer_policy::denied_range;
use signaling::turn_credentials::{CredentialPolicy, TurnSecret};
use support::tempdir;
use support::turn::{
    deploy_coturn_config, free_udp_port, secret_file, tone_call, turnserver_or_skip, Coturn, Host,
    Side, Signaling, TestPeers, TEST_SECRET,
};

/// `denied-peer-ip=A-B` / `denied-peer-ip=A` lines of a coturn config, as inclusive ranges.
fn denied_ranges(conf: &str) -> Vec<(IpAddr, IpAddr)> {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("denied-peer-ip="))
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let parse = |s: &str| {
                s.trim()
                    .parse::<IpAddr>()
                    .unwrap_or_else(|e| panic!("denied-peer-ip {r:?}: {e}"))
            };
            (parse(a), parse(b))
        })
        .collect()
}

/// Whether coturn 4.6 denies `ip` under these ranges, read as its `ioa_addr_in_range` reads
/// them: a low end of `0.0.0.0` or `::` means "no lower bound", an address of the other family
/// compares by address family number (IPv4 below IPv6), and IPv6 bounds compare byte by byte
/// (every byte of the address between the bounds' bytes), not as numbers.
fn covered(ranges: &[(IpAddr, IpAddr)], ip: IpAddr) -> bool {
    fn less_eq(a: IpAddr, b: IpAddr) -> bool {
        match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                a.octets().iter().zip(b.octets()).all(|(x, y)| *x <= y)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => true,
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
    ranges.iter().any(|&(min, max)| {
        (min.is_unspecified() || less_eq(min, ip)) && (max.is_unspecified() || less_eq(ip, max))
    })
}

#[test]
fn deploy_coturn_config_denies_every_peer_the_embedded_turn_refuses() {
    let conf = deploy_coturn_config();
    let ranges = denied_ranges(&conf);
    let mut probes: Vec<IpAddr> = [
        "0.0.0.0",
        "10.1.2.3",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "169.254.1.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
        "100::1",
        "2001::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:2::1",
        "2001:db8::1",
        "2002:a00:1::1",
        "2002:7f00:1::1",
        "3fff::1",
        "5f00::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    // Seeded random addresses over both families: a missing /8–/16 range shows up here.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..200_000 {
        probes.push(IpAddr::V4(Ipv4Addr::from(rng.gen::<u32>())));
        probes.push(IpAddr::V6(Ipv6Addr::from(rng.gen::<u128>())));
    }
    for &(a, b) in &ranges {
        probes.extend([a, b]);
    }
    let mut checked = 0;
    for ip in probes {
        // `::` cannot be a denied-peer-ip bound (it means "no bound"); coturn refuses it, like
        // loopback, by itself since its CVE-2020-26262 fix.
        if ip == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
            continue;
        }
        if let Some(why) = denied_range(ip) {
            checked += 1;
            assert!(
                covered(&ranges, ip),
                "the embedded TURN refuses {ip} ({why:?}) but deploy/coturn/turnserver.conf lets coturn relay to it"
            );
        }
    }
    assert!(checked > 100_000, "only {checked} refused probes");
    // …and it still relays to the public Internet.
    for public in [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
    ] {
        let ip: IpAddr = public.parse().unwrap();
        assert!(!covered(&ranges, ip), "deploy config denies public {ip}");
    }
}

#[test]
fn deploy_files_keep_the_secret_off_command_lines_and_management_off() {
    let conf = deploy_coturn_config();
    let active: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["use-auth-secret", "no-cli", "no-multicast-peers"] {
        assert!(active.contains(&needed), "deploy config lacks {needed}");
    }
    for key in [
        "user-quota=",
        "total-quota=",
        "max-bps=",
        "static-auth-secret=",
    ] {
        assert!(
            active.iter().any(|l| l.starts_with(key)),
            "deploy config lacks {key}"
        );
    }
    for banned in [
        "allow-loopback-peers",
        "cli-password",
        "web-admin",
        "lt-cred-mech",
    ] {
        assert!(
            !active.iter().any(|l| l.starts_with(banned)),
            "deploy config enables {banned}"
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    for unit in ["call-signaling.service", "coturn-call.service"] {
        let text = std::fs::read_to_string(dir.join(unit)).unwrap();
        for exec in text.lines().filter(|l| l.starts_with("ExecStart")) {
            assert!(
                !exec.contains("secret"),
                "{unit}: a secret on the command line is visible in ps: {exec}"
            );
        }
    }
    let signaling = std::fs::read_to_string(dir.join("call-signaling.service")).unwrap();
    assert!(signaling.contains("LoadCredential=turn-secret:"));
    assert!(signaling.contains("CALL_TURN_SECRET_FILE=%d/turn-secret"));
}

#[test]
fn relay_only_call_through_coturn_with_credentials_from_call_signaling() {
    let test = "relay_only_call_through_coturn_with_credentials_from_call_signaling";
    let Some(turnserver) = turnserver_or_skip(test) else {
        return;
    };
    let host = Host::loopback();
    let coturn = Coturn::start(
        &turnserver,
        &host,
        free_udp_port(host.ip),
        TestPeers::Loopback,
    );
    let dir = tempdir();
    let secret = secret_file(dir.path());
    let mut sig = Signaling::start(
        &host,
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--no-turn".into(),
            "--turn-url".into(),
            coturn.url(),
            "--turn-secret-file".into(),
            secret.display().to_string(),
        ],
    );
    let args = |url: &str| {
        ["--server", url, "--relay-only", "--ice-scope", "loopback"]
            .map(str::to_owned)
            .to_vec()
    };
    let url = sig.url.clone();
    let outcome = tone_call(
        &mut sig,
        Side {
            host: &host,
            args: args(&url),
            env: vec![],
        },
        Side {
            host: &host,
            args: args(&url),
            env: vec![],
        },
    );
    assert_eq!(
        outcome.stats["candidate_type"].as_str(),
        Some("relay"),
        "{}\n--- coturn log\n{}",
        outcome.stats,
        coturn.log_text()
    );
}

#[test]
fn ice_server_flag_reaches_coturn_while_the_server_hands_out_no_turn() {
    let test = "ice_server_flag_reaches_coturn_while_the_server_hands_out_no_turn";
    let Some(turnserver) = turnserver_or_skip(test) else {
        return;
    };
    let host = Host::loopback();
    let coturn = Coturn::start(
        &turnserver,
        &host,
        free_udp_port(host.ip),
        TestPeers::Loopback,
    );
    // No embedded TURN and no --turn-url: the server hands out no TURN at all.
    let mut sig = Signaling::start(
        &host,
        &["--listen".into(), "127.0.0.1:0".into(), "--no-turn".into()],
    );
    // What an operator gives a user: TURN REST credentials minted with coturn's secret.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let policy = CredentialPolicy::new(TurnSecret::new(TEST_SECRET).unwrap(), 600, 86_400).unwrap();
    let creds = policy.issue("ice-server-test", now, vec![]);
    let ice_server = format!(
        "turn:{}:{}@{}?transport=udp",
        creds.username, creds.password, coturn.addr
    );
    let base = [
        "--server",
        &sig.url,
        "--relay-only",
        "--ice-scope",
        "loopback",
    ]
    .map(str::to_owned);
    let log = ("RUST_LOG".to_owned(), "info".to_owned());
    let outcome = tone_call(
        &mut sig,
        // The caller names it on the command line…
        Side {
            host: &host,
            args: [
                base.to_vec(),
                vec!["--ice-server".into(), ice_server.clone()],
            ]
            .concat(),
            env: vec![log.clone()],
        },
        // …the callee in the environment (kept out of `ps`).
        Side {
            host: &host,
            args: base.to_vec(),
            env: vec![("CALL_ICE_SERVERS".into(), ice_server), log],
        },
    );
    assert_eq!(
        outcome.stats["candidate_type"].as_str(),
        Some("relay"),
        "{}",
        outcome.stats
    );
    for (who, out) in [("dialer", &outcome.dialer), ("listener", &outcome.listener)] {
        assert!(
            out.stderr.contains("ICE servers") && out.stderr.contains(&coturn.url()),
            "the {who} should log the ICE server URL:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(&creds.password) && !out.stdout.contains(&creds.password),
            "the {who} logged the TURN password:\n{}",
            out.stderr
        );
    }
}
