//! Replays every seed (`corpus/<target>/`) and every crash input found so far
//! (`regressions/<target>/`) through its target on stable, as part of `cargo test --workspace`.
//! A target that panics on any of them fails this test with the file's name.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use call_fuzz::{target, TARGETS};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// The files of `dir/<target>/`, sorted; none when the folder is missing.
fn inputs(dir: &str, name: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root().join(dir).join(name)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

/// Runs every file of `dir` through its target; returns the failures.
fn replay(dir: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for t in TARGETS {
        for file in inputs(dir, t.name) {
            let data = fs::read(&file).expect("readable corpus file");
            if panic::catch_unwind(|| (t.run)(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    failures
}

#[test]
fn every_target_has_seeds() {
    let empty: Vec<&str> = TARGETS
        .iter()
        .filter(|t| inputs("corpus", t.name).is_empty())
        .map(|t| t.name)
        .collect();
    assert!(empty.is_empty(), "targets without a seed corpus: {empty:?}");
}

#[test]
fn every_corpus_folder_names_a_target() {
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(root().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if !path.is_dir() {
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            assert!(
                target(name).is_some(),
                "{dir}/{name} is not a fuzz target: rename it or add the target to TARGETS"
            );
        }
    }
}

#[test]
fn seed_corpora_replay_without_panics() {
    let failures = replay("corpus");
    assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
}

#[test]
fn crash_regressions_replay_without_panics() {
    let failures = replay("regressions");
    assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
}

#[test]
fn every_target_has_a_libfuzzer_binary() {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for t in TARGETS {
        let bin = format!("fuzz_targets/{}.rs", t.name);
        assert!(root().join(&bin).is_file(), "{bin} is missing");
        assert!(
            manifest.contains(&format!("path = \"{bin}\"")),
            "fuzz/Cargo.toml has no [[bin]] for {bin}"
        );
    }
}
