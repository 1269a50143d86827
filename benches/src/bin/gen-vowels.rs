//! Writes the deterministic vowel-mix test signal to `benches/assets/vowels.wav` (or the path
//! given as the first argument).
//!
//! Run: `cargo run -p benches --bin gen-vowels`.

use anyhow::Context as _;
use benches::vowels::{vowel_mix, wav_bytes};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/assets/vowels.wav").to_owned());
    let samples = vowel_mix();
    std::fs::write(&path, wav_bytes(&samples)).with_context(|| format!("writing {path}"))?;
    println!("wrote {} samples (48 kHz mono) to {path}", samples.len());
    Ok(())
}
