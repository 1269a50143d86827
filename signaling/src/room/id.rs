//! Room IDs: 16 random bytes with a checksummed text form, like call IDs (§21.1 of
//! `docs/protocol.md`), so a mistyped room is refused instead of naming another room.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Bytes of a room ID.
pub const ROOM_ID_LEN: usize = 16;
/// Bytes of the checksum in the text form.
const CHECKSUM_LEN: usize = 4;
/// Characters of the text form: base32 of 20 bytes.
pub const ROOM_ID_TEXT_LEN: usize = 32;
/// Domain separation of the checksum.
const CHECKSUM_DOMAIN: &[u8] = b"call-room-id/v1";

/// Why a room ID's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomIdError {
    /// Not 32 characters once spaces and dashes are removed.
    #[error("a room ID has 32 characters, this has {got}: check that it was copied whole")]
    BadLength {
        /// Characters found.
        got: usize,
    },
    /// A character outside the base32 alphabet.
    #[error("a room ID has only letters and the digits 2-7, not {ch:?}")]
    BadCharacter {
        /// The character.
        ch: char,
    },
    /// The checksum does not match: a typo.
    #[error("this room ID has a typo (its checksum does not match): copy it again")]
    BadChecksum,
}

impl RoomIdError {
    /// The stable error code (documented in `docs/protocol.md`).
    pub fn code(&self) -> &'static str {
        match self {
            RoomIdError::BadLength { .. } => "room_id_bad_length",
            RoomIdError::BadCharacter { .. } => "room_id_bad_character",
            RoomIdError::BadChecksum => "room_id_bad_checksum",
        }
    }
}

/// A room's identity: 16 random bytes chosen by its creator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId([u8; ROOM_ID_LEN]);

impl RoomId {
    /// A fresh random room ID.
    pub fn random() -> RoomId {
        RoomId(rand::random())
    }

    /// The room with these bytes.
    pub fn from_bytes(bytes: [u8; ROOM_ID_LEN]) -> RoomId {
        RoomId(bytes)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; ROOM_ID_LEN] {
        &self.0
    }
}

fn checksum_of(id: &[u8; ROOM_ID_LEN]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(id)
        .finalize();
    let mut out = [0; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; ROOM_ID_LEN + CHECKSUM_LEN];
        raw[..ROOM_ID_LEN].copy_from_slice(&self.0);
        raw[ROOM_ID_LEN..].copy_from_slice(&checksum_of(&self.0));
        f.write_str(
            &data_encoding::BASE32_NOPAD
                .encode(&raw)
                .to_ascii_lowercase(),
        )
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({self})")
    }
}

impl FromStr for RoomId {
    type Err = RoomIdError;

    /// Parses the text form with the same rules as a call ID (§2.2): spaces and dashes are
    /// ignored, case does not matter.
    fn from_str(s: &str) -> Result<RoomId, RoomIdError> {
        let mut cleaned = String::with_capacity(ROOM_ID_TEXT_LEN);
        let mut count = 0usize;
        for ch in s.chars() {
            if ch.is_whitespace() || ch == '-' {
                continue;
            }
            count += 1;
            if count <= ROOM_ID_TEXT_LEN {
                let up = ch.to_ascii_uppercase();
                if !(up.is_ascii_uppercase() || ('2'..='7').contains(&up)) {
                    return Err(RoomIdError::BadCharacter { ch });
                }
                cleaned.push(up);
            }
        }
        if count != ROOM_ID_TEXT_LEN {
            return Err(RoomIdError::BadLength { got: count });
        }
        // 32 characters are exactly 20 bytes: no padding bits to check.
        let raw = data_encoding::BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| RoomIdError::BadChecksum)?;
        let mut id = [0u8; ROOM_ID_LEN];
        id.copy_from_slice(&raw[..ROOM_ID_LEN]);
        if checksum_of(&id) != raw[ROOM_ID_LEN..] {
            return Err(RoomIdError::BadChecksum);
        }
        Ok(RoomId(id))
    }
}

impl serde::Serialize for RoomId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RoomId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RoomId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_round_trips_and_is_32_lowercase_characters() {
        for bytes in [[0u8; 16], [0xff; 16], std::array::from_fn(|i| i as u8)] {
            let id = RoomId::from_bytes(bytes);
            let text = id.to_string();
            assert_eq!(text.len(), ROOM_ID_TEXT_LEN);
            assert_eq!(text, text.to_ascii_lowercase());
            assert_eq!(text.parse::<RoomId>().unwrap(), id);
            let grouped: String = text
                .to_ascii_uppercase()
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("-");
            assert_eq!(grouped.parse::<RoomId>().unwrap(), id);
        }
    }

    #[test]
    fn every_single_character_typo_is_refused() {
        let text = RoomId::from_bytes(std::array::from_fn(|i| (i * 7) as u8)).to_string();
        let alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        for (pos, orig) in text.char_indices() {
            for sub in alphabet.chars().filter(|&c| c != orig) {
                let mut typo = text.clone();
                typo.replace_range(pos..pos + 1, &sub.to_string());
                assert_eq!(typo.parse::<RoomId>(), Err(RoomIdError::BadChecksum));
            }
        }
    }

    #[test]
    fn wrong_length_and_characters_are_typed_errors() {
        assert_eq!(
            "abc".parse::<RoomId>(),
            Err(RoomIdError::BadLength { got: 3 })
        );
        let text = RoomId::random().to_string();
        let bad = format!("1{}", &text[1..]);
        assert_eq!(
            bad.parse::<RoomId>(),
            Err(RoomIdError::BadCharacter { ch: '1' })
        );
        // A call ID is not a room ID.
        let call_id = crate::identity::Identity::from_seed([1; 32])
            .call_id()
            .to_string();
        assert!(matches!(
            call_id.parse::<RoomId>(),
            Err(RoomIdError::BadLength { got: 58 })
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = s.parse::<RoomId>();
        }
    }
}
