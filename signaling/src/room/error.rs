//! Why a room state or room message was refused.

use crate::identity::CallId;

/// Why a room state (or message) was refused. Each has a stable code (`docs/protocol.md` §21.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// Not JSON of the expected shape.
    #[error("room data is malformed: {0}")]
    Malformed(String),
    /// Larger than an envelope plaintext may be.
    #[error("room data is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Breaks a limit or rule of the state itself (names, member count, order, admins).
    #[error("room state is invalid: {0}")]
    Invalid(String),
    /// The signature does not verify for the named signer.
    #[error("room data's signature does not verify: it was forged or altered")]
    BadSignature,
    /// For another room than the one it was offered as.
    #[error("room data belongs to another room")]
    WrongRoom,
    /// An older version than the one held (a rollback), or the loser of a same-version tie.
    #[error(
        "room state version {got} is not newer than the version {held} held: refused (no rollback)"
    )]
    Stale {
        /// The version held.
        held: u64,
        /// The version offered.
        got: u64,
    },
    /// Signed by someone the state held does not allow to make it.
    #[error(
        "room state signed by {signer}, who is not an admin of the room as this member knows it"
    )]
    NotAdmin {
        /// Who signed.
        signer: CallId,
    },
    /// A first state (an invite) that does not list this member.
    #[error("an invitation to a room that does not list this identity as a member")]
    NotAMember,
}

impl RoomError {
    pub(crate) fn malformed(e: &serde_json::Error) -> RoomError {
        let mut text = e.to_string();
        // serde's messages quote input; keep them short.
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        RoomError::Malformed(text)
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::Malformed(_) => "room_malformed",
            RoomError::TooLarge { .. } => "room_too_large",
            RoomError::Invalid(_) => "room_invalid",
            RoomError::BadSignature => "room_bad_signature",
            RoomError::WrongRoom => "room_wrong_room",
            RoomError::Stale { .. } => "room_stale",
            RoomError::NotAdmin { .. } => "room_not_admin",
            RoomError::NotAMember => "room_not_a_member",
        }
    }
}
