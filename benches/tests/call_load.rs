//! `call-load` end to end, small, so the tool keeps working: a few idle logins, one second of
//! routing between two pairs, one relay-only call, a second of abuse, the cost table; the
//! server inside the tool.

use std::process::Command;

fn call_load(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_call-load"))
        .arg("--in-process")
        .args(args)
        .output()
        .expect("call-load runs");
    assert!(
        out.status.success(),
        "call-load {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 table")
}

/// The data row of a one-row markdown table, split into cells.
fn row(table: &str) -> Vec<String> {
    let line = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .nth(1)
        .unwrap_or_else(|| panic!("no data row in {table:?}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// The data row of the last markdown table of `out`, split into cells.
fn last_row(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .rfind(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .unwrap_or_else(|| panic!("no table in {out:?}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn idle_holds_every_connection() {
    let cells = row(&call_load(&["idle", "--connections", "20"]));
    assert_eq!(cells[0], "20", "connections held: {cells:?}");
}

#[test]
fn route_delivers_and_measures_latency() {
    let cells = row(&call_load(&["route", "--pairs", "2", "--seconds", "1"]));
    let rate: f64 = cells[1].parse().expect("envelopes/s is a number");
    assert!(rate > 0.0, "no envelope delivered: {cells:?}");
    let p99: f64 = cells[8].trim_end_matches(" ms").parse().expect("p99 in ms");
    assert!(p99.is_finite(), "no latency measured: {cells:?}");
}

#[test]
fn calls_connect_through_the_relay_and_carry_audio() {
    let out = call_load(&["calls", "--calls", "1", "--seconds", "3"]);
    let cells = last_row(&out);
    assert_eq!(
        (cells[1].as_str(), cells[2].as_str()),
        ("1", "1"),
        "one call, relayed: {out}"
    );
    let received: u64 = cells[3]
        .split(" / ")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("packets received: {out}"));
    assert!(received > 0, "no audio crossed the relay: {out}");
}

#[test]
fn abuse_leaves_the_server_up_and_measures_both_phases() {
    let out = call_load(&[
        "abuse",
        "--pairs",
        "2",
        "--seconds",
        "2",
        "--slowloris",
        "10",
        "--turn-rate",
        "500",
        "--flood-rate",
        "200",
    ]);
    assert!(out.contains("server alive: yes"), "{out}");
    assert!(out.contains("fresh login after: ok"), "{out}");
    assert!(
        out.contains("accepted 0;"),
        "a wrong-key login got in: {out}"
    );
    let abused = row_named(&out, "abused");
    let p99: f64 = abused[3]
        .trim_end_matches(" ms")
        .parse()
        .expect("p99 in ms");
    assert!(p99.is_finite(), "no latency under abuse: {out}");
}

#[test]
fn cost_measures_the_signature_check() {
    let out = call_load(&["cost", "--envelopes", "64", "--rounds", "1"]);
    let verify = row_named(
        &out,
        "Ed25519 verify_strict, key decoded per call (as the server did)",
    );
    let us: f64 = verify[1].parse().expect("µs per envelope");
    assert!(us > 0.0, "{out}");
    assert!(out.contains("no signature check"), "{out}");
}

/// The row of `out` whose first cell is `name`.
fn row_named(out: &str, name: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name:?} in {out}"))
}
