//! The rooms and history a member keeps: one SQLite file in the config directory (WAL, a
//! schema version and forward-only migrations), so restarting `call` loses nothing. Only what
//! was verified goes in (signed states and messages, kept as received so they can be checked
//! again), and everything read back is parsed and verified again: a tampered file gives errors,
//! not forged rooms.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use signaling::identity::CallId;
use signaling::room::{HeldRoom, MessageId, RoomError, RoomId, SignedRoomMessage, SignedRoomState};

/// The schema this build writes; older files are migrated forward on open.
pub const SCHEMA_VERSION: u32 = 1;

/// Forward migrations: entry `i` takes a file from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE rooms (
        room        BLOB PRIMARY KEY NOT NULL,   -- 16 bytes
        state       BLOB NOT NULL,               -- the current signed state, JSON as received
        parent      BLOB,                        -- the state it was made from, if known
        updated_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE messages (
        room        BLOB NOT NULL,
        sender      BLOB NOT NULL,               -- 32-byte key
        seq         INTEGER NOT NULL,
        id          BLOB NOT NULL,               -- 16-byte message ID
        ts_ms       INTEGER NOT NULL,            -- the sender's clock
        received_ms INTEGER NOT NULL,            -- ours
        signed      BLOB NOT NULL,               -- the signed message, JSON as received
        ord         INTEGER,                     -- place in the history; NULL while it waits
                                                 -- for an earlier one from the same sender
        PRIMARY KEY (room, sender, seq)
    ) STRICT;
    CREATE INDEX messages_by_id ON messages (room, id);
    CREATE INDEX messages_by_ord ON messages (room, ord);
    CREATE TABLE own_seq (
        room        BLOB PRIMARY KEY NOT NULL,
        last        INTEGER NOT NULL             -- the last seq this member sent in the room
    ) STRICT;
"];

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused (I/O, a locked or corrupt file).
    #[error("the room database {path} failed: {source}; if it is damaged, move it away (rooms are then re-learnt from other members)")]
    Sqlite {
        /// The file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Written by a newer `call`.
    #[error("the room database {path} has schema version {found}, newer than this build's {SCHEMA_VERSION}: use a newer `call`")]
    TooNew {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
    /// A stored row does not verify any more.
    #[error("a stored room entry does not verify ({0}); the database was altered")]
    Corrupt(#[from] RoomError),
}

/// One stored message, verified again when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message.
    pub message: SignedRoomMessage,
    /// When this member received it (Unix ms).
    pub received_ms: u64,
}

/// A member's rooms and history.
pub struct RoomStore {
    conn: Connection,
    path: String,
}

impl RoomStore {
    /// Opens (creating it with mode 0600 if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<RoomStore, StoreError> {
        let name = path.display().to_string();
        if !path.exists() {
            create_private(path).map_err(|e| StoreError::Sqlite {
                path: name.clone(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: name.clone(),
            source,
        })?;
        Self::init(conn, name)
    }

    /// A database in memory (tests).
    pub fn open_in_memory() -> Result<RoomStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: ":memory:".into(),
            source,
        })?;
        Self::init(conn, ":memory:".into())
    }

    fn init(conn: Connection, path: String) -> Result<RoomStore, StoreError> {
        let mut store = RoomStore { conn, path };
        store.migrate()?;
        Ok(store)
    }

    /// Maps SQLite's errors to ours, naming the file.
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError {
        let path = self.path.clone();
        move |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let err = self.err();
        // WAL: readers (`call room history`) do not block a running call's writes.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(&err)?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&err)?;
        let found: u32 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(&err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
            });
        }
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction().map_err(&err)?;
            tx.execute_batch(sql).map_err(&err)?;
            tx.pragma_update(None, "user_version", from as u32 + 1)
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
        }
        Ok(())
    }

    /// Saves a room as held now (insert or replace).
    pub fn save_room(&mut self, held: &HeldRoom, now_ms: u64) -> Result<(), StoreError> {
        let room = held.current().state.room;
        self.conn
            .execute(
                "INSERT INTO rooms (room, state, parent, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (room) DO UPDATE SET state = ?2, parent = ?3, updated_ms = ?4",
                params![
                    room.as_bytes().as_slice(),
                    held.current().to_json(),
                    held.parent().map(SignedRoomState::to_json),
                    now_ms as i64
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The room with this ID, if held.
    pub fn room(&self, room: &RoomId) -> Result<Option<HeldRoom>, StoreError> {
        let row: Option<(Vec<u8>, Option<Vec<u8>>)> = self
            .conn
            .query_row(
                "SELECT state, parent FROM rooms WHERE room = ?1",
                [room.as_bytes().as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())?;
        row.map(|(state, parent)| restore(&state, parent.as_deref()))
            .transpose()
    }

    /// Every room held, by name.
    pub fn rooms(&self) -> Result<Vec<HeldRoom>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, parent FROM rooms")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (state, parent) = row.map_err(self.err())?;
            out.push(restore(&state, parent.as_deref())?);
        }
        out.sort_by(|a, b| a.current().state.name.cmp(&b.current().state.name));
        Ok(out)
    }

    /// Forgets a room and its history (after leaving it).
    pub fn delete_room(&mut self, room: &RoomId) -> Result<(), StoreError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        for table in ["rooms", "messages", "own_seq"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE room = ?1"),
                [room.as_bytes().as_slice()],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)
    }

    /// Stores a verified message as waiting (not yet in the history: see
    /// [`RoomStore::mark_released`]); `false` if it was already stored (same sender and seq).
    /// Stored on arrival, so a message is never lost while it waits for an earlier one.
    pub fn add_message(
        &mut self,
        msg: &SignedRoomMessage,
        received_ms: u64,
    ) -> Result<bool, StoreError> {
        let m = &msg.msg;
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO messages (room, sender, seq, id, ts_ms, received_ms, signed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    m.room.as_bytes().as_slice(),
                    m.sender.as_bytes().as_slice(),
                    m.seq as i64,
                    msg.id().0.as_slice(),
                    m.ts_ms as i64,
                    received_ms as i64,
                    msg.to_json()
                ],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Puts a stored message into the history, after every message released before it.
    pub fn mark_released(&mut self, msg: &SignedRoomMessage) -> Result<(), StoreError> {
        let m = &msg.msg;
        self.conn
            .execute(
                "UPDATE messages SET ord = (SELECT COALESCE(MAX(ord), 0) + 1 FROM messages WHERE room = ?1)
                 WHERE room = ?1 AND sender = ?2 AND seq = ?3 AND ord IS NULL",
                params![
                    m.room.as_bytes().as_slice(),
                    m.sender.as_bytes().as_slice(),
                    m.seq as i64
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The last `limit` messages of a room's history, oldest first (each sender's in its order).
    pub fn history(&self, room: &RoomId, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        self.messages(
            "SELECT signed, received_ms FROM (
                 SELECT ord, signed, received_ms FROM messages WHERE room = ?1 AND ord IS NOT NULL
                 ORDER BY ord DESC LIMIT ?2
             ) ORDER BY ord ASC",
            room,
            limit,
        )
    }

    /// Messages stored but still waiting for an earlier one (to offer to the inbox again after
    /// a restart), in arrival order.
    pub fn waiting(&self, room: &RoomId) -> Result<Vec<StoredMessage>, StoreError> {
        self.messages(
            "SELECT signed, received_ms FROM messages WHERE room = ?1 AND ord IS NULL
             ORDER BY rowid LIMIT ?2",
            room,
            usize::MAX >> 1,
        )
    }

    fn messages(
        &self,
        sql: &str,
        room: &RoomId,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![room.as_bytes().as_slice(), limit], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (signed, received_ms) = row.map_err(self.err())?;
            out.push(StoredMessage {
                message: SignedRoomMessage::parse(&signed)?,
                received_ms: received_ms.max(0) as u64,
            });
        }
        Ok(out)
    }

    /// The stored message with this ID in a room.
    pub fn message(
        &self,
        room: &RoomId,
        id: &MessageId,
    ) -> Result<Option<SignedRoomMessage>, StoreError> {
        let signed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT signed FROM messages WHERE room = ?1 AND id = ?2",
                params![room.as_bytes().as_slice(), id.0.as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        Ok(signed.map(|s| SignedRoomMessage::parse(&s)).transpose()?)
    }

    /// The highest seq in the history per sender in a room (to resume a `RoomInbox` after a
    /// restart).
    pub fn released(&self, room: &RoomId) -> Result<Vec<(CallId, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT sender, MAX(seq) FROM messages WHERE room = ?1 AND ord IS NOT NULL
                 GROUP BY sender",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([room.as_bytes().as_slice()], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (key, seq) = row.map_err(self.err())?;
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| RoomError::Malformed("stored sender is not 32 bytes".into()))?;
            let id = CallId::from_bytes(&key)
                .map_err(|e| RoomError::Malformed(format!("stored sender: {e}")))?;
            out.push((id, seq.max(0) as u64));
        }
        Ok(out)
    }

    /// The next seq for a message this member sends in `room` (1, 2, …), committed before it
    /// is used, so a restart never reuses one (the others would drop it as a duplicate).
    pub fn next_seq(&mut self, room: &RoomId) -> Result<u64, StoreError> {
        let last: i64 = self
            .conn
            .query_row(
                "INSERT INTO own_seq (room, last) VALUES (?1, 1)
                 ON CONFLICT (room) DO UPDATE SET last = last + 1
                 RETURNING last",
                [room.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        Ok(last.max(1) as u64)
    }
}

fn restore(state: &[u8], parent: Option<&[u8]>) -> Result<HeldRoom, StoreError> {
    let current = SignedRoomState::parse(state)?;
    let parent = parent.map(SignedRoomState::parse).transpose()?;
    Ok(HeldRoom::restore(current, parent))
}

/// Creates an empty file readable only by its owner (the history is private).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::identity::Identity;
    use signaling::room::{Member, Role, RoomMessage, RoomState};

    fn alice() -> Identity {
        Identity::from_seed([1; 32])
    }

    fn bob() -> Identity {
        Identity::from_seed([2; 32])
    }

    fn room_v2() -> HeldRoom {
        let room = RoomId::from_bytes([5; 16]);
        let v1 = RoomState::create(room, "Book club", alice().call_id(), "Alice", 1)
            .sign(&alice())
            .unwrap();
        let mut held = HeldRoom::first(v1.clone(), &alice().call_id()).unwrap();
        let mut s = RoomState::next(&v1, 2);
        s.upsert(Member {
            id: bob().call_id(),
            name: "Bob".into(),
            role: Role::Member,
        });
        held.offer(s.sign(&alice()).unwrap()).unwrap();
        held
    }

    fn msg(who: &Identity, seq: u64, text: &str) -> SignedRoomMessage {
        RoomMessage {
            room: RoomId::from_bytes([5; 16]),
            sender: who.call_id(),
            seq,
            ts_ms: seq,
            reply_to: None,
            text: text.into(),
        }
        .sign(who)
        .unwrap()
    }

    #[test]
    fn rooms_history_and_seq_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rooms.sqlite3");
        let held = room_v2();
        let room = held.current().state.room;
        {
            let mut store = RoomStore::open(&path).unwrap();
            store.save_room(&held, 10).unwrap();
            // Bob's 2 arrives before his 1: both stored at once, released in order.
            assert!(store.add_message(&msg(&bob(), 2, "two"), 11).unwrap());
            assert!(store.add_message(&msg(&bob(), 1, "one"), 12).unwrap());
            assert!(!store.add_message(&msg(&bob(), 2, "two"), 13).unwrap());
            assert!(store.add_message(&msg(&alice(), 1, "mine"), 14).unwrap());
            assert!(store.add_message(&msg(&alice(), 3, "waiting"), 15).unwrap());
            for m in [
                msg(&bob(), 1, "one"),
                msg(&bob(), 2, "two"),
                msg(&alice(), 1, "mine"),
            ] {
                store.mark_released(&m).unwrap();
            }
            assert_eq!(store.next_seq(&room).unwrap(), 1);
            assert_eq!(store.next_seq(&room).unwrap(), 2);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut store = RoomStore::open(&path).unwrap();
        assert_eq!(store.room(&room).unwrap(), Some(held.clone()));
        assert_eq!(store.rooms().unwrap(), vec![held]);
        let texts: Vec<_> = store
            .history(&room, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.message.msg.text)
            .collect();
        assert_eq!(texts, ["one", "two", "mine"]);
        let last_two: Vec<_> = store
            .history(&room, 2)
            .unwrap()
            .into_iter()
            .map(|m| m.message.msg.text)
            .collect();
        assert_eq!(last_two, ["two", "mine"]);
        let mut released = store.released(&room).unwrap();
        released.sort();
        let mut want = vec![(bob().call_id(), 2), (alice().call_id(), 1)];
        want.sort();
        assert_eq!(released, want);
        assert_eq!(store.next_seq(&room).unwrap(), 3);
        let waiting: Vec<_> = store
            .waiting(&room)
            .unwrap()
            .into_iter()
            .map(|m| m.message.msg.text)
            .collect();
        assert_eq!(waiting, ["waiting"]);
        let first = msg(&bob(), 1, "one");
        assert_eq!(store.message(&room, &first.id()).unwrap(), Some(first));
        store.delete_room(&room).unwrap();
        assert!(store.rooms().unwrap().is_empty());
        assert!(store.history(&room, 10).unwrap().is_empty());
    }

    #[test]
    fn a_tampered_row_is_an_error_not_a_room() {
        let mut store = RoomStore::open_in_memory().unwrap();
        let held = room_v2();
        store.save_room(&held, 1).unwrap();
        let json = String::from_utf8(held.current().to_json()).unwrap();
        let forged = json.replace("Book club", "Hijacked");
        store
            .conn
            .execute("UPDATE rooms SET state = ?1", [forged.as_bytes()])
            .unwrap();
        assert!(matches!(
            store.rooms(),
            Err(StoreError::Corrupt(RoomError::BadSignature))
        ));
    }

    #[test]
    fn a_newer_schema_is_refused_and_an_old_file_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rooms.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        assert!(matches!(
            RoomStore::open(&path),
            Err(StoreError::TooNew { found, .. }) if found == SCHEMA_VERSION + 1
        ));
        // Version 0 (an empty file) is migrated to the current schema.
        let path = dir.path().join("old.sqlite3");
        Connection::open(&path).unwrap();
        let store = RoomStore::open(&path).unwrap();
        let v: u32 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
