//! Ed25519 identities, call IDs, safety numbers, key files.
//!
//! This is the innermost layer of the signaling plane: an [`Identity`] (an ed25519 signing key)
//! is the account, and its public half, the [`CallId`], is what people exchange to reach each
//! other. Everything above ([`crate::envelope`], [`crate::offer`], the server's challenge) signs
//! with an `Identity` and verifies against a `CallId`.
//!
//! * Text form of a call ID: `base32(pk || checksum)`, RFC 4648 alphabet, lowercase, no padding
//!   (58 characters), where `checksum = SHA-256("call-id/v1" || pk)[..4]`. Parsing ignores case,
//!   spaces and dashes and rejects bad length, bad characters, a bad checksum, keys that are not
//!   valid canonical curve points, small-order ("weak") keys and keys with a small-order
//!   component (not torsion-free), each with a typed [`IdError`].
//! * [`safety_number`]: 60 digits, Signal's construction: each party's 30-digit half comes from
//!   its own key and ID alone, the halves are sorted, so both sides show the same number.
//! * X25519 keys for `crypto_box` are derived from the ed25519 keys exactly as libsodium's
//!   `crypto_sign_ed25519_pk_to_curve25519` / `crypto_sign_ed25519_sk_to_curve25519` do.
//! * Key files ([`Identity::save`] / [`Identity::load`]): mode 0600 in a 0700 directory; loading
//!   refuses a file readable by group or others.
//!
//! No clocks, no sockets: the only I/O here is the key file, in `save`/`load`.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// Number of characters in the canonical text form of a [`CallId`].
pub const CALL_ID_TEXT_LEN: usize = 58;
/// Domain-separation prefix of the call ID checksum.
pub const CALL_ID_CHECKSUM_DOMAIN: &[u8] = b"call-id/v1";
/// Number of checksum bytes appended to the public key in the text form.
pub const CALL_ID_CHECKSUM_LEN: usize = 4;
/// File name of the identity key inside the config directory.
pub const IDENTITY_FILE_NAME: &str = "identity.key";
/// First line of an identity key file.
pub const KEY_FILE_HEADER: &str = "call-identity-v1";
/// Largest identity key file [`Identity::load`] reads.
pub const MAX_KEY_FILE_BYTES: u64 = 1024;
/// Domain-separation prefix of the safety number hash (version 2: Signal's 60-digit form).
pub const SAFETY_NUMBER_DOMAIN: &[u8] = b"call-safety-number/v2";
/// Number of SHA-512 invocations per half of the safety number (as Signal: 5200), which
/// slows down searching for a key whose half matches someone else's.
pub const SAFETY_NUMBER_ITERATIONS: u32 = 5200;
/// Number of 5-digit groups in a safety number (two halves of six).
pub const SAFETY_NUMBER_GROUPS: usize = 12;

/// Why a text or binary call ID was rejected. The messages are shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Wrong number of characters after removing spaces and dashes.
    #[error("call ID has {got} characters, expected {CALL_ID_TEXT_LEN}: check that it was copied completely")]
    BadLength {
        /// Characters found (spaces and dashes not counted).
        got: usize,
    },
    /// A character outside the base32 alphabet (a-z, 2-7).
    #[error(
        "call ID contains {ch:?}, which is not one of a-z, 2-7: check for typos (0/o, 1/l, 8/b)"
    )]
    BadCharacter {
        /// The offending character.
        ch: char,
    },
    /// The checksum does not match: a typo, or a different ID.
    #[error("call ID checksum does not match: the ID was mistyped; copy it again from its owner")]
    BadChecksum,
    /// The 32 bytes are not a canonical encoding of a curve point.
    #[error("call ID is not a valid ed25519 public key")]
    InvalidKey,
    /// The key is a small-order point, which would let anyone forge signatures.
    #[error("call ID is a weak (small-order) key and is refused")]
    WeakKey,
    /// The key has a small-order (torsion) component: up to eight encodings would verify the
    /// same signatures, so one key would not mean one ID.
    #[error(
        "call ID is not a torsion-free ed25519 key (it has a small-order component) and is refused"
    )]
    TorsionKey,
}

impl IdError {
    /// Stable machine-readable code, for logs and the wire (`docs/protocol.md`).
    pub fn code(&self) -> &'static str {
        match self {
            IdError::BadLength { .. } => "id_bad_length",
            IdError::BadCharacter { .. } => "id_bad_character",
            IdError::BadChecksum => "id_bad_checksum",
            IdError::InvalidKey => "id_invalid_key",
            IdError::WeakKey => "id_weak_key",
            IdError::TorsionKey => "id_torsion_key",
        }
    }
}

/// A signature did not verify under [`verify_strict`] rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify for this call ID")]
pub struct BadSignature;

/// The public identity of a party: a validated ed25519 public key.
///
/// Construction always checks the key (canonical encoding, not small order), so holding a
/// `CallId` means holding a key that [`verify_strict`] can use. Stored as the 32 compressed
/// bytes (small, cheap to copy, hash and compare); the curve point is decoded when needed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId {
    bytes: [u8; 32],
}

impl CallId {
    /// Checks 32 raw public-key bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<CallId, IdError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| IdError::InvalidKey)?;
        // `from_bytes` accepts non-canonical y coordinates; one key must have one text form.
        if key.to_edwards().compress().to_bytes() != *bytes {
            return Err(IdError::InvalidKey);
        }
        if key.is_weak() {
            return Err(IdError::WeakKey);
        }
        // Keys derived from a seed are always in the prime-order subgroup; a mixed-order key
        // is only ever hand-made, and would verify signatures of up to eight related keys.
        if !key.to_edwards().is_torsion_free() {
            return Err(IdError::TorsionKey);
        }
        Ok(CallId { bytes: *bytes })
    }

    /// The 32-byte ed25519 public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The ed25519 verifying key (decoded from the validated bytes).
    pub fn verifying_key(&self) -> VerifyingKey {
        // Invariant: the bytes were validated as a canonical curve point in `from_bytes` or
        // derived from a signing key, so decoding cannot fail.
        VerifyingKey::from_bytes(&self.bytes).expect("CallId holds a key validated at construction")
    }

    /// The X25519 public key for `crypto_box`, as libsodium's
    /// `crypto_sign_ed25519_pk_to_curve25519` computes it (birational map to Montgomery u).
    pub fn to_x25519(&self) -> crypto_box::PublicKey {
        crypto_box::PublicKey::from(self.verifying_key().to_montgomery().to_bytes())
    }

    /// The 4-byte checksum of the text form.
    fn checksum(&self) -> [u8; CALL_ID_CHECKSUM_LEN] {
        checksum_of(self.as_bytes())
    }
}

fn checksum_of(pk: &[u8; 32]) -> [u8; CALL_ID_CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CALL_ID_CHECKSUM_DOMAIN)
        .chain_update(pk)
        .finalize();
    let mut out = [0u8; CALL_ID_CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CALL_ID_CHECKSUM_LEN]);
    out
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 32 + CALL_ID_CHECKSUM_LEN];
        raw[..32].copy_from_slice(self.as_bytes());
        raw[32..].copy_from_slice(&self.checksum());
        let text = data_encoding::BASE32_NOPAD
            .encode(&raw)
            .to_ascii_lowercase();
        f.write_str(&text)
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({self})")
    }
}

impl FromStr for CallId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<CallId, IdError> {
        let mut cleaned = String::with_capacity(CALL_ID_TEXT_LEN);
        let mut count = 0usize;
        for ch in s.chars() {
            if ch.is_whitespace() || ch == '-' {
                continue;
            }
            count += 1;
            if count <= CALL_ID_TEXT_LEN {
                let up = ch.to_ascii_uppercase();
                if !(up.is_ascii_uppercase() || ('2'..='7').contains(&up)) {
                    return Err(IdError::BadCharacter { ch });
                }
                cleaned.push(up);
            }
        }
        if count != CALL_ID_TEXT_LEN {
            return Err(IdError::BadLength { got: count });
        }
        // The alphabet was checked above; a decode error here means non-zero trailing bits,
        // i.e. a typo in the last character.
        let raw = data_encoding::BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| IdError::BadChecksum)?;
        let (pk, sum) = raw.split_at(32);
        let mut pk_arr = [0u8; 32];
        pk_arr.copy_from_slice(pk);
        if checksum_of(&pk_arr) != sum {
            return Err(IdError::BadChecksum);
        }
        CallId::from_bytes(&pk_arr)
    }
}

impl serde::Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CallId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<CallId, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CallId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a call ID (58 base32 characters)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CallId, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Checks `sig` over `msg` by `id` with ed25519-dalek's `verify_strict` (rejects small-order
/// keys and `R` values and non-canonical `s`).
pub fn verify_strict(id: &CallId, msg: &[u8], sig: &Signature) -> Result<(), BadSignature> {
    VerifyingKey::from_bytes(id.as_bytes())
        .and_then(|key| key.verify_strict(msg, sig))
        .map_err(|_| BadSignature)
}

/// Why an identity key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// `save` without `force` found an existing file.
    #[error("{path} already exists; refusing to overwrite an identity (use --force to replace it, which loses the old ID)")]
    AlreadyExists {
        /// The key file.
        path: PathBuf,
    },
    /// No key file at the path.
    #[error("no identity at {path}: create one with `call id new`")]
    NotFound {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is readable or writable by group or others.
    #[error("{path} has mode {mode:03o}, readable by other users; run `chmod 600 {path}` (and consider the key compromised if others could read it)")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The directory holding the key file is writable by group or others, who could replace
    /// the key (or `known_peers`) with their own.
    #[error("{path} has mode {mode:03o}, writable by other users who could replace your identity or known_peers; run `chmod 700 {path}`")]
    InsecureDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a key file in the expected format.
    #[error("{path} is not a call identity file: {reason}")]
    BadFormat {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never contains key material).
        reason: &'static str,
    },
    /// Any other I/O error.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The local party: an ed25519 signing key. `Debug` shows only the public call ID; the secret
/// is zeroized on drop.
pub struct Identity {
    key: SigningKey,
    id: CallId,
}

impl Identity {
    /// A fresh random identity (OS randomness).
    pub fn generate() -> Identity {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        Identity::from_signing_key(key)
    }

    /// The identity whose ed25519 seed (the 32-byte secret key of RFC 8032) is `seed`.
    pub fn from_seed(mut seed: [u8; 32]) -> Identity {
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        Identity::from_signing_key(key)
    }

    fn from_signing_key(key: SigningKey) -> Identity {
        // A key derived from a seed is never small order or non-canonical.
        let id = CallId {
            bytes: key.verifying_key().to_bytes(),
        };
        Identity { key, id }
    }

    /// The public call ID.
    pub fn call_id(&self) -> CallId {
        self.id
    }

    /// Ed25519 signature (RFC 8032, pure) over `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.key.sign(msg)
    }

    /// The X25519 secret key for `crypto_box`, as libsodium's `crypto_sign_ed25519_sk_to_curve25519`
    /// computes it: `SHA-512(seed)[..32]`, clamped.
    pub fn to_x25519(&self) -> crypto_box::SecretKey {
        let mut bytes = Zeroizing::new(self.key.to_scalar_bytes());
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        crypto_box::SecretKey::from(*bytes)
    }

    /// Reads a key file written by [`Identity::save`]. Refuses files readable or writable by
    /// group or others, a directory writable by group or others ([`check_private_dir`]), and
    /// files larger than [`MAX_KEY_FILE_BYTES`].
    pub fn load(path: &Path) -> Result<Identity, IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            check_private_dir(dir)?;
        }
        let bad = |reason| IdentityError::BadFormat {
            path: path.to_path_buf(),
            reason,
        };
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IdentityError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(bad("not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(IdentityError::InsecurePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(bad("file too large"));
        }
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    bad("not UTF-8 text")
                } else {
                    io(e)
                }
            })?;
        // ASCII whitespace only, as docs/protocol.md §7 says.
        let mut lines = text
            .lines()
            .map(|l| l.trim_matches(|c: char| c.is_ascii_whitespace()))
            .filter(|l| !l.is_empty());
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(bad("missing the `call-identity-v1` header line"));
        }
        let encoded = lines.next().ok_or(bad("missing the key line"))?;
        if lines.next().is_some() {
            return Err(bad("unexpected extra lines"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| bad("key line is not base64"))?,
        );
        if decoded.len() != 32 {
            return Err(bad("key is not 32 bytes"));
        }
        seed.copy_from_slice(&decoded);
        Ok(Identity::from_seed(*seed))
    }

    /// Writes the key file with mode 0600, creating missing parent directories with mode 0700.
    /// Without `force`, an existing file is never touched ([`IdentityError::AlreadyExists`]);
    /// with `force` it is replaced atomically (write to a temporary file, then rename).
    pub fn save(&self, path: &Path, force: bool) -> Result<(), IdentityError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| IdentityError::Io { path: p, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(io(dir))?;
            check_private_dir(dir)?;
        }
        let mut contents = Zeroizing::new(String::new());
        contents.push_str(KEY_FILE_HEADER);
        contents.push('\n');
        contents.push_str(&base64::engine::general_purpose::STANDARD.encode(self.key.as_bytes()));
        contents.push('\n');
        if !force {
            let mut file = match open_private(path, true) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(IdentityError::AlreadyExists {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => return Err(io(path)(e)),
            };
            let written = file
                .write_all(contents.as_bytes())
                .and_then(|()| file.sync_all());
            if let Err(e) = written {
                // Do not leave a truncated key file behind (it would block the next attempt).
                drop(file);
                let _ = fs::remove_file(path);
                return Err(io(path)(e));
            }
            return Ok(());
        }
        write_private_atomic(path, contents.as_bytes())
            .map_err(|(p, source)| IdentityError::Io { path: p, source })
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("call_id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Creates `dir` and missing parents with mode 0700 (existing directories are left as they are).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The permission bits of `dir` when group or others may write to it (`None`: private enough,
/// or it does not exist yet). Only the directory itself is checked, not its parents.
pub(crate) fn insecure_dir_mode(dir: &Path) -> std::io::Result<Option<u32>> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Ok(Some(mode & 0o777));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(None)
}

/// Refuses a config directory that group or others can write to (they could swap
/// `identity.key` or `known_peers` for their own), as [`Identity::load`] refuses a key file
/// others can read. A directory that does not exist yet passes.
pub fn check_private_dir(dir: &Path) -> Result<(), IdentityError> {
    match insecure_dir_mode(dir) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(IdentityError::InsecureDirectory {
            path: dir.to_path_buf(),
            mode,
        }),
        Err(source) => Err(IdentityError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Opens `path` for writing with mode 0600; `create_new` refuses an existing file.
fn open_private(path: &Path, create_new: bool) -> std::io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Writes `bytes` to `path` atomically with mode 0600: a fresh temporary file in the same
/// directory, fsync, rename over `path`. On error the temporary file is removed.
pub(crate) fn write_private_atomic(
    path: &Path,
    bytes: &[u8],
) -> Result<(), (PathBuf, std::io::Error)> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let mut suffix = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut suffix);
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}",
        data_encoding::HEXLOWER.encode(&suffix)
    ));
    let result = (|| {
        let mut file = open_private(&tmp, true)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err((path.to_path_buf(), e));
    }
    Ok(())
}

/// The config directory: `$CALL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/call`, else
/// `$HOME/.config/call` (empty or relative `XDG_CONFIG_HOME` is ignored, as the XDG spec says).
pub fn default_config_dir() -> PathBuf {
    config_dir_from(
        std::env::var_os("CALL_CONFIG_DIR"),
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`default_config_dir`] with the environment passed in (for tests and callers that
/// resolve the environment themselves).
pub fn config_dir_from(
    call_config_dir: Option<std::ffi::OsString>,
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    if let Some(dir) = call_config_dir.filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(xdg) = xdg_config_home
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
    {
        return xdg.join("call");
    }
    match home.filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".config").join("call"),
        None => PathBuf::from(".config").join("call"),
    }
}

/// A code both parties compute from their two call IDs and compare by voice: equal numbers
/// mean each side holds the other's real key. Twelve 5-digit groups; see [`safety_number`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SafetyNumber([u32; SAFETY_NUMBER_GROUPS]);

impl SafetyNumber {
    /// The twelve 5-digit groups (each `< 100000`): the lower half first.
    pub fn groups(&self) -> [u32; SAFETY_NUMBER_GROUPS] {
        self.0
    }
}

impl fmt::Display for SafetyNumber {
    /// The 60 digits as twelve groups of five separated by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{g:05}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

/// One party's 30-digit half, from its own key and ID only (Signal's "displayable
/// fingerprint" half): `h = SHA-512(SAFETY_NUMBER_DOMAIN || pk || ASCII(call ID))`, then
/// `SAFETY_NUMBER_ITERATIONS - 1` times `h = SHA-512(h || pk)`; group `i` (0..6) = big-endian
/// `h[5i..5i+5]` mod 100000.
pub fn safety_number_half(id: &CallId) -> [u32; 6] {
    let pk = id.as_bytes();
    let mut h = Sha512::new()
        .chain_update(SAFETY_NUMBER_DOMAIN)
        .chain_update(pk)
        .chain_update(id.to_string().as_bytes())
        .finalize();
    for _ in 1..SAFETY_NUMBER_ITERATIONS {
        h = Sha512::new().chain_update(h).chain_update(pk).finalize();
    }
    let mut groups = [0u32; 6];
    for (i, g) in groups.iter_mut().enumerate() {
        let n = h[5 * i..5 * i + 5]
            .iter()
            .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
        // n < 2^40, so n % 100000 fits u32.
        *g = (n % 100_000) as u32;
    }
    groups
}

/// The safety number of a pair of call IDs, the same whichever order they are given in: the
/// two [`safety_number_half`]s, the numerically smaller first.
///
/// Because each half depends on one key only, a man in the middle must find a key whose half
/// equals the victim's (a second preimage of about 2^100 work), not merely any two keys whose
/// combined numbers collide (a birthday search, about 2^50 with the former 30-digit number).
pub fn safety_number(a: &CallId, b: &CallId) -> SafetyNumber {
    let (ha, hb) = (safety_number_half(a), safety_number_half(b));
    // Comparing the group arrays is comparing the 30-digit decimal strings.
    let (lo, hi) = if ha <= hb { (ha, hb) } else { (hb, ha) };
    let mut groups = [0u32; SAFETY_NUMBER_GROUPS];
    groups[..6].copy_from_slice(&lo);
    groups[6..].copy_from_slice(&hi);
    SafetyNumber(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::assert_codes_distinct_and_documented;

    fn hex32(s: &str) -> [u8; 32] {
        let v = data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
        v.try_into().unwrap()
    }

    /// Text form of arbitrary 32 bytes with a correct checksum (no key validation).
    fn encode_raw(pk: &[u8; 32]) -> String {
        let mut raw = pk.to_vec();
        raw.extend_from_slice(&checksum_of(pk));
        data_encoding::BASE32_NOPAD
            .encode(&raw)
            .to_ascii_lowercase()
    }

    fn alice() -> Identity {
        Identity::from_seed([0x11; 32])
    }

    #[test]
    fn text_form_round_trips() {
        for seed in [[0u8; 32], [0x11; 32], [0xff; 32]] {
            let id = Identity::from_seed(seed).call_id();
            let text = id.to_string();
            assert_eq!(text.len(), CALL_ID_TEXT_LEN);
            assert!(text
                .chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)));
            assert_eq!(text.parse::<CallId>().unwrap(), id);
        }
        let random = Identity::generate().call_id();
        assert_eq!(random.to_string().parse::<CallId>().unwrap(), random);
    }

    #[test]
    fn every_single_character_typo_is_detected() {
        let text = alice().call_id().to_string();
        let alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        let mut checked = 0;
        for (pos, orig) in text.char_indices() {
            for sub in alphabet.chars().filter(|&c| c != orig) {
                let mut typo = text.clone();
                typo.replace_range(pos..pos + 1, &sub.to_string());
                let err = typo.parse::<CallId>().unwrap_err();
                assert!(
                    matches!(
                        err,
                        IdError::BadChecksum | IdError::InvalidKey | IdError::WeakKey
                    ),
                    "{typo}: {err:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 58 * 31);
    }

    #[test]
    fn adjacent_swaps_are_detected() {
        let text = alice().call_id().to_string();
        let chars: Vec<char> = text.chars().collect();
        for i in 0..chars.len() - 1 {
            if chars[i] == chars[i + 1] {
                continue;
            }
            let mut swapped = chars.clone();
            swapped.swap(i, i + 1);
            let s: String = swapped.into_iter().collect();
            assert!(s.parse::<CallId>().is_err(), "swap at {i} accepted");
        }
    }

    #[test]
    fn parsing_tolerates_case_spaces_and_dashes() {
        let id = alice().call_id();
        let text = id.to_string();
        assert_eq!(text.to_uppercase().parse::<CallId>().unwrap(), id);
        let grouped: String = text
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = if i > 0 && i % 4 == 0 {
                    Some(if i % 8 == 0 { '-' } else { ' ' })
                } else {
                    None
                };
                sep.into_iter().chain(std::iter::once(c))
            })
            .collect();
        assert_eq!(format!("  {grouped}\n").parse::<CallId>().unwrap(), id);
    }

    #[test]
    fn parsing_errors_are_typed() {
        let text = alice().call_id().to_string();
        assert_eq!(
            "".parse::<CallId>().unwrap_err(),
            IdError::BadLength { got: 0 }
        );
        assert_eq!(
            text[..57].parse::<CallId>().unwrap_err(),
            IdError::BadLength { got: 57 }
        );
        assert_eq!(
            format!("{text}a").parse::<CallId>().unwrap_err(),
            IdError::BadLength { got: 59 }
        );
        for bad in ['0', '1', '8', '9', '!', 'é'] {
            let mut s = text.clone();
            s.replace_range(10..11, &bad.to_string());
            assert_eq!(
                s.parse::<CallId>().unwrap_err(),
                IdError::BadCharacter { ch: bad }
            );
        }
        // A non-canonical last character (non-zero trailing bits).
        let mut s = text.clone();
        let last = s.pop().unwrap();
        let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
        let idx = alphabet.iter().position(|&c| c == last as u8).unwrap();
        s.push(alphabet[idx ^ 1] as char);
        assert_eq!(s.parse::<CallId>().unwrap_err(), IdError::BadChecksum);
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The neutral element (y = 1) has order 1.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(
            encode_raw(&identity_point).parse::<CallId>().unwrap_err(),
            IdError::WeakKey
        );
        assert_eq!(
            CallId::from_bytes(&identity_point).unwrap_err(),
            IdError::WeakKey
        );
        // y = p + 1: a non-canonical encoding of the same point.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(
            CallId::from_bytes(&non_canonical).unwrap_err(),
            IdError::InvalidKey
        );
        // A y with no matching x (not on the curve).
        let not_on_curve = (2u8..=255)
            .map(|b| {
                let mut k = [0u8; 32];
                k[0] = b;
                k
            })
            .find(|k| VerifyingKey::from_bytes(k).is_err())
            .unwrap();
        assert_eq!(
            encode_raw(&not_on_curve).parse::<CallId>().unwrap_err(),
            IdError::InvalidKey
        );
    }

    /// An order-8 point (RFC 8032 §5.1.3 encoding), the torsion part of the spec's vector.
    const ORDER_8_POINT: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";

    /// Alice's key plus [`ORDER_8_POINT`]: on the curve, canonical, not small order, but not
    /// torsion-free. docs/protocol.md §2.3 gives this vector.
    fn mixed_order_key() -> [u8; 32] {
        let t = VerifyingKey::from_bytes(&hex32(ORDER_8_POINT)).unwrap();
        assert!(t.is_weak());
        // The spec's Alice (seed 00 01 .. 1f), not this module's.
        let a = crate::test_fixtures::alice().call_id().verifying_key();
        (a.to_edwards() + t.to_edwards()).compress().to_bytes()
    }

    #[test]
    fn keys_with_a_torsion_component_are_refused() {
        let mixed = mixed_order_key();
        // Everything but the torsion check passes: a valid, canonical, non-small-order point.
        let key = VerifyingKey::from_bytes(&mixed).unwrap();
        assert!(!key.is_weak());
        assert_eq!(key.to_edwards().compress().to_bytes(), mixed);
        assert_eq!(CallId::from_bytes(&mixed), Err(IdError::TorsionKey));
        assert_eq!(
            encode_raw(&mixed).parse::<CallId>(),
            Err(IdError::TorsionKey)
        );
        let hex = data_encoding::HEXLOWER.encode(&mixed);
        assert!(
            crate::test_fixtures::PROTOCOL_DOC.contains(&hex),
            "docs/protocol.md lacks the torsion vector {hex}"
        );
        // Every other multiple of the torsion point added to real keys is refused as well.
        let t = VerifyingKey::from_bytes(&hex32(ORDER_8_POINT))
            .unwrap()
            .to_edwards();
        for seed in 0..8u8 {
            let pk = Identity::from_seed([seed; 32]).call_id().verifying_key();
            let mut p = pk.to_edwards();
            for _ in 0..7 {
                p += t;
                assert_eq!(
                    CallId::from_bytes(&p.compress().to_bytes()),
                    Err(IdError::TorsionKey)
                );
            }
        }
    }

    #[test]
    fn error_codes_are_distinct_and_documented() {
        let all = [
            IdError::BadLength { got: 0 },
            IdError::BadCharacter { ch: '0' },
            IdError::BadChecksum,
            IdError::InvalidKey,
            IdError::WeakKey,
            IdError::TorsionKey,
        ];
        let codes: Vec<_> = all.iter().map(|e| e.code()).collect();
        assert_codes_distinct_and_documented(&codes);
    }

    #[test]
    fn serde_uses_the_text_form() {
        let id = alice().call_id();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<CallId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<CallId>("\"abc\"").is_err());
        assert!(serde_json::from_str::<CallId>("42").is_err());
    }

    #[test]
    fn sign_and_verify_strict() {
        let a = alice();
        let b = Identity::from_seed([0x22; 32]);
        let sig = a.sign(b"hello");
        assert_eq!(verify_strict(&a.call_id(), b"hello", &sig), Ok(()));
        assert_eq!(
            verify_strict(&a.call_id(), b"hellO", &sig),
            Err(BadSignature)
        );
        assert_eq!(
            verify_strict(&b.call_id(), b"hello", &sig),
            Err(BadSignature)
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let a = alice();
        let dbg = format!("{a:?}");
        assert!(dbg.contains(&a.call_id().to_string()));
        assert!(!dbg.contains(&base64::engine::general_purpose::STANDARD.encode([0x11u8; 32])));
        assert!(!dbg.contains("1111"));
    }

    /// libsodium test/default/ed25519_convert.c and .exp: seed 421151a4…, expected
    /// `crypto_sign_ed25519_pk_to_curve25519` and `crypto_sign_ed25519_sk_to_curve25519` outputs.
    #[test]
    fn x25519_conversion_matches_libsodium() {
        let id = Identity::from_seed(hex32(
            "421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee",
        ));
        assert_eq!(
            id.call_id().to_x25519().to_bytes(),
            hex32("f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50")
        );
        assert_eq!(
            id.to_x25519().to_bytes(),
            hex32("8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166")
        );
        // And the two halves agree: X25519(sk) base point multiplication gives pk.
        assert_eq!(id.to_x25519().public_key(), id.call_id().to_x25519());
    }

    /// NaCl / libsodium `crypto_box` vector (tests box.c / box_easy.c: alicesk, bobpk, nonce,
    /// 131-byte message; `crypto_box_easy` output = 16-byte MAC || ciphertext).
    #[test]
    fn crypto_box_matches_libsodium() {
        use crypto_box::aead::Aead;
        let alicesk = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let bobpk = hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let nonce: [u8; 24] = data_encoding::HEXLOWER
            .decode(b"69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
            .unwrap()
            .try_into()
            .unwrap();
        let m = data_encoding::HEXLOWER
            .decode(
                b"be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc\
e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31\
0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde\
048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864\
5e0705",
            )
            .unwrap();
        let expected = data_encoding::HEXLOWER
            .decode(
                b"f3ffc7703f9400e52a7dfb4b3d3305d9\
8e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186a\
c0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738\
b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da\
99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74\
e355a5",
            )
            .unwrap();
        let sealed = crypto_box::SalsaBox::new(
            &crypto_box::PublicKey::from(bobpk),
            &crypto_box::SecretKey::from(alicesk),
        )
        .encrypt(&nonce.into(), m.as_slice())
        .unwrap();
        assert_eq!(sealed, expected);
    }

    #[test]
    fn safety_number_is_symmetric_and_pair_specific() {
        let a = alice().call_id();
        let b = Identity::from_seed([0x22; 32]).call_id();
        let c = Identity::from_seed([0x33; 32]).call_id();
        let ab = safety_number(&a, &b);
        assert_eq!(ab, safety_number(&b, &a));
        assert_ne!(ab, safety_number(&a, &c));
        assert_ne!(ab, safety_number(&b, &c));
        let text = ab.to_string();
        assert_eq!(text.len(), 12 * 5 + 11);
        let groups: Vec<&str> = text.split(' ').collect();
        assert_eq!(groups.len(), 12);
        // Each half belongs to one party: a's half appears in both of a's numbers.
        let half = |id: &CallId| {
            safety_number_half(id)
                .iter()
                .map(|g| format!("{g:05}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(text.contains(&half(&a)) && text.contains(&half(&b)));
        assert!(safety_number(&a, &c).to_string().contains(&half(&a)));
        assert!(groups
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())));
    }

    #[test]
    fn config_dir_precedence() {
        use std::ffi::OsString;
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            config_dir_from(s("/c"), s("/x"), s("/h")),
            PathBuf::from("/c")
        );
        assert_eq!(
            config_dir_from(None, s("/x"), s("/h")),
            PathBuf::from("/x/call")
        );
        assert_eq!(
            config_dir_from(s(""), s("rel"), s("/h")),
            PathBuf::from("/h/.config/call")
        );
        assert_eq!(
            config_dir_from(None, None, s("/h")),
            PathBuf::from("/h/.config/call")
        );
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private_and_not_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg").join("call");
        let path = dir.join(IDENTITY_FILE_NAME);
        let a = alice();
        a.save(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(Identity::load(&path).unwrap().call_id(), a.call_id());

        let b = Identity::from_seed([0x22; 32]);
        assert!(matches!(
            b.save(&path, false),
            Err(IdentityError::AlreadyExists { .. })
        ));
        assert_eq!(Identity::load(&path).unwrap().call_id(), a.call_id());
        b.save(&path, true).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(Identity::load(&path).unwrap().call_id(), b.call_id());
        // No temporary files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load(&path).unwrap_err();
        assert!(
            matches!(err, IdentityError::InsecurePermissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            Identity::load(&path),
            Err(IdentityError::InsecurePermissions { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn group_or_world_writable_config_dir_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("call");
        let path = dir.join(IDENTITY_FILE_NAME);
        alice().save(&path, false).unwrap();
        for bad in [0o770, 0o720, 0o702, 0o777, 0o1777] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(bad)).unwrap();
            let err = Identity::load(&path).unwrap_err();
            assert!(
                matches!(err, IdentityError::InsecureDirectory { mode, .. } if mode == bad & 0o777),
                "{bad:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 700"), "{err}");
            assert!(matches!(
                Identity::from_seed([9; 32]).save(&path, true),
                Err(IdentityError::InsecureDirectory { .. })
            ));
        }
        // Readable by others is not the concern here (the key file itself is 0600).
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(Identity::load(&path).unwrap().call_id(), alice().call_id());
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(Identity::load(&path).unwrap().call_id(), alice().call_id());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_format_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        assert!(matches!(
            Identity::load(&path),
            Err(IdentityError::NotFound { .. })
        ));
        let write = |text: &[u8]| {
            let _ = fs::remove_file(&path);
            let mut f = open_private(&path, true).unwrap();
            f.write_all(text).unwrap();
        };
        for bad in [
            &b""[..],
            b"call-identity-v1\n",
            b"call-identity-v2\nERERERERERERERERERERERERERERERERERERERERERE=\n",
            b"call-identity-v1\nnot base64!\n",
            b"call-identity-v1\nERER\n",
            b"call-identity-v1\nERERERERERERERERERERERERERERERERERERERERERE=\nextra\n",
            b"\xff\xfe",
        ] {
            write(bad);
            assert!(
                matches!(Identity::load(&path), Err(IdentityError::BadFormat { .. })),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        write(&vec![b'a'; 2000]);
        assert!(matches!(
            Identity::load(&path),
            Err(IdentityError::BadFormat { .. })
        ));
        write(b"call-identity-v1\nERERERERERERERERERERERERERERERERERERERERERE=\n");
        assert_eq!(Identity::load(&path).unwrap().call_id(), alice().call_id());
    }
}
