//! Trust-on-first-use store of known peers.
//!
//! The file `known_peers` in the config directory maps a name (a contact, or the ID itself)
//! to the call ID first seen for it, like ssh's `known_hosts`. [`KnownPeers::check`] says
//! whether an ID is new, the known one, or a *changed* key for a known name, which the CLI
//! must show as a loud warning and confirm explicitly before [`KnownPeers::remember`].
//!
//! File format (UTF-8, at most [`MAX_KNOWN_PEERS_BYTES`]): one `<name> <call-id>` per line,
//! separated by spaces or tabs; empty lines and lines starting with `#` are ignored. Saving
//! rewrites the file atomically with mode 0600.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::identity::{write_private_atomic, CallId, IdError};

/// File name of the store inside the config directory.
pub const KNOWN_PEERS_FILE_NAME: &str = "known_peers";
/// Largest file [`KnownPeers::load`] reads.
pub const MAX_KNOWN_PEERS_BYTES: u64 = 1024 * 1024;
/// Largest number of entries.
pub const MAX_KNOWN_PEERS: usize = 10_000;
/// Longest peer name, bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// What the store says about a (name, ID) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The name is not in the store: first use.
    New,
    /// The name is stored with this same ID.
    Known,
    /// The name is stored with a different ID: the key changed (or someone impersonates).
    Changed {
        /// The ID stored for the name.
        previous: CallId,
    },
}

/// Why the known-peers file could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KnownPeersError {
    /// The file is larger than [`MAX_KNOWN_PEERS_BYTES`].
    #[error("{path} is larger than {MAX_KNOWN_PEERS_BYTES} bytes; is it the right file?")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// More than [`MAX_KNOWN_PEERS`] entries.
    #[error("too many known peers (limit {MAX_KNOWN_PEERS}); remove old entries from {path}")]
    TooMany {
        /// The file.
        path: PathBuf,
    },
    /// A line that is not `<name> <call-id>`.
    #[error("{path}:{line}: {reason}; fix or delete the line")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A name that cannot be stored.
    #[error("peer name {name:?} is invalid: use 1 to {MAX_NAME_BYTES} bytes without spaces or control characters, not starting with '#'")]
    BadName {
        /// The name.
        name: String,
    },
    /// The directory holding the file is writable by group or others, who could replace it.
    #[error("{path} has mode {mode:03o}, writable by other users who could replace known_peers; run `chmod 700 {path}`")]
    InsecureDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// An I/O error.
    #[error("known peers file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The trust-on-first-use store, loaded in memory; [`KnownPeers::save`] writes it back.
#[derive(Debug, Clone)]
pub struct KnownPeers {
    path: PathBuf,
    peers: BTreeMap<String, CallId>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('#')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl KnownPeers {
    /// `<config_dir>/known_peers`.
    pub fn default_path(config_dir: &Path) -> PathBuf {
        config_dir.join(KNOWN_PEERS_FILE_NAME)
    }

    /// An empty store that will be saved at `path`.
    pub fn empty(path: &Path) -> KnownPeers {
        KnownPeers {
            path: path.to_path_buf(),
            peers: BTreeMap::new(),
        }
    }

    /// Reads the store; a missing file is an empty store. A directory writable by group or
    /// others is refused ([`KnownPeersError::InsecureDirectory`]).
    pub fn load(path: &Path) -> Result<KnownPeers, KnownPeersError> {
        let io = |source| KnownPeersError::Io {
            path: path.to_path_buf(),
            source,
        };
        check_dir(path)?;
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KnownPeers::empty(path))
            }
            Err(e) => return Err(io(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_KNOWN_PEERS_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_KNOWN_PEERS_BYTES {
            return Err(KnownPeersError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        KnownPeers::parse(path, &bytes)
    }

    /// Parses the file contents `bytes` (which claim to come from `path`).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<KnownPeers, KnownPeersError> {
        if bytes.len() as u64 > MAX_KNOWN_PEERS_BYTES {
            return Err(KnownPeersError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let bad = |line: usize, reason: String| KnownPeersError::BadLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            // Line of the first invalid byte.
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            bad(line, "not UTF-8".into())
        })?;
        let mut store = KnownPeers::empty(path);
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(n, "expected `<name> <call-id>`".into()));
            };
            if !valid_name(name) {
                return Err(bad(n, "invalid peer name".into()));
            }
            let id: CallId = id
                .parse()
                .map_err(|e: IdError| bad(n, format!("invalid call ID ({e})")))?;
            if store.peers.insert(name.to_owned(), id).is_some() {
                return Err(bad(n, format!("name {name:?} appears twice")));
            }
            if store.peers.len() > MAX_KNOWN_PEERS {
                return Err(KnownPeersError::TooMany {
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(store)
    }

    /// Where the store is saved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Trust status of `id` for `name`.
    pub fn check(&self, name: &str, id: &CallId) -> Trust {
        match self.peers.get(name) {
            None => Trust::New,
            Some(known) if known == id => Trust::Known,
            Some(known) => Trust::Changed { previous: *known },
        }
    }

    /// The ID stored for `name`.
    pub fn get(&self, name: &str) -> Option<&CallId> {
        self.peers.get(name)
    }

    /// The names stored for `id`.
    pub fn names_of<'a>(&'a self, id: &'a CallId) -> impl Iterator<Item = &'a str> + 'a {
        self.peers
            .iter()
            .filter(move |(_, v)| *v == id)
            .map(|(k, _)| k.as_str())
    }

    /// All entries, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &CallId)> {
        self.peers.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Stores (or replaces: the caller has confirmed a change) the ID for `name`, in memory.
    /// Returns the previous ID, if any.
    pub fn remember(&mut self, name: &str, id: CallId) -> Result<Option<CallId>, KnownPeersError> {
        if !valid_name(name) {
            return Err(KnownPeersError::BadName {
                name: name.chars().take(MAX_NAME_BYTES).collect(),
            });
        }
        if !self.peers.contains_key(name) && self.peers.len() >= MAX_KNOWN_PEERS {
            return Err(KnownPeersError::TooMany {
                path: self.path.clone(),
            });
        }
        Ok(self.peers.insert(name.to_owned(), id))
    }

    /// Removes `name`, in memory. Returns its ID, if it was stored.
    pub fn forget(&mut self, name: &str) -> Option<CallId> {
        self.peers.remove(name)
    }

    /// The file contents [`KnownPeers::save`] writes.
    pub fn to_text(&self) -> String {
        let mut out = String::from("# call known peers: <name> <call-id> (trust on first use)\n");
        for (name, id) in &self.peers {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{name} {id}");
        }
        out
    }

    /// Writes the store atomically (temporary file, fsync, rename) with mode 0600, creating the
    /// directory (0700) if needed.
    pub fn save(&self) -> Result<(), KnownPeersError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::identity::create_private_dir(dir).map_err(|source| KnownPeersError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        check_dir(&self.path)?;
        write_private_atomic(&self.path, self.to_text().as_bytes())
            .map_err(|(path, source)| KnownPeersError::Io { path, source })
    }
}

/// Refuses a parent directory of `path` that group or others can write to.
fn check_dir(path: &Path) -> Result<(), KnownPeersError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    match crate::identity::insecure_dir_mode(dir) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(KnownPeersError::InsecureDirectory {
            path: dir.to_path_buf(),
            mode,
        }),
        Err(source) => Err(KnownPeersError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use proptest::prelude::*;

    fn id(n: u8) -> CallId {
        Identity::from_seed([n; 32]).call_id()
    }

    #[test]
    fn tofu_flow() {
        let tmp = tempfile::tempdir().unwrap();
        let path = KnownPeers::default_path(&tmp.path().join("call"));
        let mut store = KnownPeers::load(&path).unwrap();
        assert!(store.is_empty());
        assert_eq!(store.check("bob", &id(1)), Trust::New);
        assert_eq!(store.remember("bob", id(1)).unwrap(), None);
        assert_eq!(store.check("bob", &id(1)), Trust::Known);
        assert_eq!(
            store.check("bob", &id(2)),
            Trust::Changed { previous: id(1) }
        );
        store.save().unwrap();

        let mut again = KnownPeers::load(&path).unwrap();
        assert_eq!(again.check("bob", &id(1)), Trust::Known);
        assert_eq!(again.get("bob"), Some(&id(1)));
        assert_eq!(again.names_of(&id(1)).collect::<Vec<_>>(), vec!["bob"]);
        // Confirmed change.
        assert_eq!(again.remember("bob", id(2)).unwrap(), Some(id(1)));
        again.remember("carol", id(3)).unwrap();
        again.save().unwrap();
        let third = KnownPeers::load(&path).unwrap();
        assert_eq!(third.check("bob", &id(2)), Trust::Known);
        assert_eq!(third.len(), 2);
        assert_eq!(
            third.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["bob", "carol"]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Only the store itself in the directory (no temporary files left).
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let mut fourth = third.clone();
        assert_eq!(fourth.forget("bob"), Some(id(2)));
        assert_eq!(fourth.check("bob", &id(2)), Trust::New);
    }

    #[test]
    fn names_are_validated() {
        let mut store = KnownPeers::empty(Path::new("kp"));
        for bad in ["", "a b", "#x", "tab\tx", "nl\n", &"x".repeat(65)] {
            assert!(
                matches!(
                    store.remember(bad, id(1)),
                    Err(KnownPeersError::BadName { .. })
                ),
                "{bad:?}"
            );
        }
        store.remember("alice@home", id(1)).unwrap();
        store.remember(&id(1).to_string(), id(1)).unwrap();
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn parse_errors_are_typed_with_line_numbers() {
        let p = Path::new("known_peers");
        let good = format!("# comment\n\nbob {}\n  carol\t{}  \n", id(1), id(2));
        let store = KnownPeers::parse(p, good.as_bytes()).unwrap();
        assert_eq!(store.len(), 2);
        let line = |text: String| match KnownPeers::parse(p, text.as_bytes()) {
            Err(KnownPeersError::BadLine { line, .. }) => line,
            other => panic!("{other:?}"),
        };
        assert_eq!(line(format!("bob {}\nbob\n", id(1))), 2);
        assert_eq!(line(format!("bob {} extra\n", id(1))), 1);
        assert_eq!(line("bob notanid\n".into()), 1);
        assert_eq!(line(format!("bob {}\nbob {}\n", id(1), id(2))), 2);
        assert!(matches!(
            KnownPeers::parse(p, b"ok\n\xff\xfe"),
            Err(KnownPeersError::BadLine { line: 2, .. })
        ));
        let huge = vec![b'#'; MAX_KNOWN_PEERS_BYTES as usize + 1];
        assert!(matches!(
            KnownPeers::parse(p, &huge),
            Err(KnownPeersError::TooLarge { .. })
        ));
    }

    #[test]
    fn oversized_file_is_refused_on_load() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(KNOWN_PEERS_FILE_NAME);
        std::fs::write(&path, vec![b'#'; MAX_KNOWN_PEERS_BYTES as usize + 10]).unwrap();
        assert!(matches!(
            KnownPeers::load(&path),
            Err(KnownPeersError::TooLarge { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn group_or_world_writable_dir_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("call");
        let path = KnownPeers::default_path(&dir);
        let mut store = KnownPeers::load(&path).unwrap();
        store.remember("bob", id(1)).unwrap();
        store.save().unwrap();
        for bad in [0o770, 0o702, 0o777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(bad)).unwrap();
            let err = KnownPeers::load(&path).unwrap_err();
            assert!(
                matches!(err, KnownPeersError::InsecureDirectory { mode, .. } if mode == bad),
                "{err}"
            );
            assert!(matches!(
                store.save(),
                Err(KnownPeersError::InsecureDirectory { .. })
            ));
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(KnownPeers::load(&path).unwrap().get("bob"), Some(&id(1)));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = KnownPeers::parse(Path::new("kp"), &bytes);
        }

        #[test]
        fn text_round_trips(names in prop::collection::btree_set("[a-z0-9@._-]{1,20}", 0..8)) {
            let mut store = KnownPeers::empty(Path::new("kp"));
            for (i, n) in names.iter().enumerate() {
                store.remember(n, id(i as u8)).unwrap();
            }
            let back = KnownPeers::parse(Path::new("kp"), store.to_text().as_bytes()).unwrap();
            prop_assert_eq!(back.iter().collect::<Vec<_>>(), store.iter().collect::<Vec<_>>());
        }
    }
}
