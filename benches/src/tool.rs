//! What the report tools in `src/bin` share: logs off unless `RUST_LOG` asks (so their tables
//! stay readable), and where the `call` binary they drive is.

use std::path::{Path, PathBuf};

/// Logs to stderr, off unless `RUST_LOG` asks.
pub fn quiet_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// `$CALL_BIN`, else `call` next to this executable (both are in `target/release`).
pub fn default_call_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CALL_BIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("call")))
        .unwrap_or_else(|| PathBuf::from("call"))
}

/// What to tell the user when `call` is not at `path`; `None` when it is.
pub fn missing_call_bin(path: &Path) -> Option<String> {
    (!path.is_file()).then(|| {
        format!(
            "no `call` binary at {}; build it with `cargo build --release -p call-cli` or pass --call PATH",
            path.display()
        )
    })
}
