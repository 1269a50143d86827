//! `call-load` end to end, small and in debug, so the tool keeps working: a few idle logins and
//! one second of routing between two pairs, with the server inside the tool.

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
