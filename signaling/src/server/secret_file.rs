//! Reading the TURN shared secret from a file (`--turn-secret-file`), so that it does not show
//! in `ps` as a command-line argument would. The file must be readable by its owner only.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::turn_credentials::TurnSecret;

/// Largest secret file accepted, in bytes (coturn secrets are short strings).
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Why the secret file was not used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file could not be opened or read.
    #[error("cannot read the TURN secret file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Other users may read the file.
    #[error(
        "the TURN secret file {path} is readable by other users (mode {mode:o}): run `chmod 600 {path}`"
    )]
    Readable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than [`MAX_SECRET_FILE_BYTES`].
    #[error("the TURN secret file {path} is over {MAX_SECRET_FILE_BYTES} bytes; it should hold only the secret")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Empty once the trailing line break is removed.
    #[error("the TURN secret file {path} is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads the secret: the file's bytes without a trailing `\n` or `\r\n` (as `echo` writes it).
/// Refuses a file that group or others may read, a file over [`MAX_SECRET_FILE_BYTES`] and an
/// empty one.
pub fn read_turn_secret_file(path: &Path) -> Result<TurnSecret, SecretFileError> {
    let read_err = |source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o044 != 0 {
            return Err(SecretFileError::Readable {
                path: path.to_owned(),
                mode,
            });
        }
    }
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let mut len = bytes.len();
    if bytes[..len].ends_with(b"\n") {
        len -= 1;
        if bytes[..len].ends_with(b"\r") {
            len -= 1;
        }
    }
    TurnSecret::new(bytes[..len].to_vec()).map_err(|_| SecretFileError::Empty {
        path: path.to_owned(),
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::turn_credentials::CredentialPolicy;
    use std::os::unix::fs::PermissionsExt as _;

    fn write(dir: &Path, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn password(secret: TurnSecret) -> String {
        CredentialPolicy::new(secret, 600, 3600)
            .unwrap()
            .issue("x", 1_700_000_000, vec![])
            .password
    }

    #[test]
    fn owner_only_file_is_read_without_its_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let want = password(TurnSecret::new(b"north".to_vec()).unwrap());
        for content in [&b"north"[..], b"north\n", b"north\r\n"] {
            let path = write(dir.path(), "s", content, 0o600);
            assert_eq!(password(read_turn_secret_file(&path).unwrap()), want);
        }
        let path = write(dir.path(), "s", b"north\n\n", 0o400);
        assert_ne!(password(read_turn_secret_file(&path).unwrap()), want);
    }

    #[test]
    fn readable_by_others_empty_oversize_or_missing_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o644] {
            let path = write(dir.path(), "s", b"north", mode);
            let err = read_turn_secret_file(&path).unwrap_err();
            assert!(matches!(err, SecretFileError::Readable { .. }), "{err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        let path = write(dir.path(), "e", b"\n", 0o600);
        assert!(matches!(
            read_turn_secret_file(&path),
            Err(SecretFileError::Empty { .. })
        ));
        let big = vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1];
        let path = write(dir.path(), "b", &big, 0o600);
        assert!(matches!(
            read_turn_secret_file(&path),
            Err(SecretFileError::TooLarge { .. })
        ));
        assert!(matches!(
            read_turn_secret_file(&dir.path().join("missing")),
            Err(SecretFileError::Read { .. })
        ));
    }
}
