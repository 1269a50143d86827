//! Where `call` keeps its files and what it uses when a flag is not given.

use std::path::{Path, PathBuf};

/// Signaling server used when `--server` is not given: a `call-signaling` on this machine.
pub const DEFAULT_SERVER: &str = "ws://127.0.0.1:8443/ws";
/// File name of the identity key inside the config dir.
pub const IDENTITY_FILE: &str = "identity.key";

/// The config dir: `--config-dir`/`CALL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/call`, else `~/.config/call`.
pub fn config_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(signaling::identity::default_config_dir)
}

/// Path of the identity key in `dir`.
pub fn identity_path(dir: &Path) -> PathBuf {
    dir.join(IDENTITY_FILE)
}
