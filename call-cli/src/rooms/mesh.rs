//! Who talks to whom in a room's conference call: a sans-IO plan fed the `room_call`
//! announcements, offers, connection changes and room states that arrive, with `now`, and
//! answering with [`MeshAction`]s for the engine (announce, offer, drop). Every pair of members
//! sets up one ordinary verified session; [`offers_to`] decides which of the two offers, and the
//! pair's call token binds the offer to this room and these two joins (protocol.md §21.5).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use signaling::identity::CallId;
use signaling::offer::CallToken;
use signaling::room::{
    offers_to, pair_token, CallSession, RoomCallBody, RoomCallOp, RoomId, RoomState,
};

/// A pair that has not connected after this long is dropped (and may be set up again by a new
/// announcement).
pub const PAIR_TIMEOUT: Duration = Duration::from_secs(20);

/// What the engine should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshAction {
    /// Send `body` to `to` as a `room_call` envelope.
    Announce {
        /// To whom.
        to: CallId,
        /// What.
        body: RoomCallBody,
    },
    /// Set up a session with `peer` and send it a signed offer with `token`.
    Offer {
        /// To whom.
        peer: CallId,
        /// The pair's call token.
        token: CallToken,
    },
    /// Close the session with `peer` (if any) and forget it.
    Drop {
        /// Whom.
        peer: CallId,
        /// Why.
        reason: DropReason,
    },
}

/// Why a peer left the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It said it leaves.
    Left,
    /// It joined again (a new session replaces the old one).
    Rejoined,
    /// It is no longer a member of the room.
    Removed,
    /// Its connection failed or went silent.
    Lost,
    /// The pair never connected.
    Timeout,
}

/// Why an announcement or an offer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// For another room.
    #[error("an announcement for another room")]
    WrongRoom,
    /// From someone who is not a member of the room state held.
    #[error("{0} is not a member of this room: refused")]
    NotAMember(CallId),
    /// An offer nobody here expects (unknown pair, wrong token, or this side offers).
    #[error("an offer from {0} that this call does not expect: refused")]
    UnexpectedOffer(CallId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    /// We offered; waiting for the answer and the connection.
    Offering,
    /// Waiting for its offer.
    AwaitingOffer,
    /// Media flows.
    Connected,
}

#[derive(Debug, Clone)]
struct Pair {
    session: CallSession,
    token: CallToken,
    state: PairState,
    since: Instant,
}

/// The plan of one member's part in a room's call.
#[derive(Debug)]
pub struct Mesh {
    me: CallId,
    room: RoomId,
    session: CallSession,
    pairs: BTreeMap<CallId, Pair>,
}

impl Mesh {
    /// A plan for `me` joining `room` with `session`.
    pub fn new(me: CallId, room: RoomId, session: CallSession) -> Mesh {
        Mesh {
            me,
            room,
            session,
            pairs: BTreeMap::new(),
        }
    }

    fn body(&self, op: RoomCallOp) -> RoomCallBody {
        RoomCallBody {
            room: self.room,
            session: self.session,
            op,
        }
    }

    /// Joining: a `join` to every other member of `state`.
    pub fn start(&self, state: &RoomState) -> Vec<MeshAction> {
        state
            .members
            .iter()
            .filter(|m| m.id != self.me)
            .map(|m| MeshAction::Announce {
                to: m.id,
                body: self.body(RoomCallOp::Join),
            })
            .collect()
    }

    /// An announcement from `from` (authenticated by its envelope), checked against `state`.
    pub fn on_room_call(
        &mut self,
        from: CallId,
        body: RoomCallBody,
        state: &RoomState,
        now: Instant,
    ) -> Result<Vec<MeshAction>, MeshError> {
        if body.room != self.room || state.room != self.room {
            return Err(MeshError::WrongRoom);
        }
        if from == self.me || state.member(&from).is_none() {
            return Err(MeshError::NotAMember(from));
        }
        let mut out = Vec::new();
        match body.op {
            RoomCallOp::Leave => {
                if self
                    .pairs
                    .get(&from)
                    .is_some_and(|p| p.session == body.session)
                {
                    self.pairs.remove(&from);
                    out.push(MeshAction::Drop {
                        peer: from,
                        reason: DropReason::Left,
                    });
                }
            }
            RoomCallOp::Join | RoomCallOp::Here => {
                if body.op == RoomCallOp::Join {
                    out.push(MeshAction::Announce {
                        to: from,
                        body: self.body(RoomCallOp::Here),
                    });
                }
                match self.pairs.get(&from) {
                    Some(p) if p.session == body.session => {}
                    known => {
                        if known.is_some() {
                            out.push(MeshAction::Drop {
                                peer: from,
                                reason: DropReason::Rejoined,
                            });
                        }
                        let token = pair_token(
                            &self.room,
                            (&self.me, &self.session),
                            (&from, &body.session),
                        );
                        let offering = offers_to(&self.me, &from);
                        self.pairs.insert(
                            from,
                            Pair {
                                session: body.session,
                                token,
                                state: if offering {
                                    PairState::Offering
                                } else {
                                    PairState::AwaitingOffer
                                },
                                since: now,
                            },
                        );
                        if offering {
                            out.push(MeshAction::Offer { peer: from, token });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether an offer from `from` with `token` belongs to this call (a member, an announced
    /// pair, this side answers, the token of the pair's current sessions).
    pub fn check_offer(
        &self,
        from: &CallId,
        token: &CallToken,
        state: &RoomState,
    ) -> Result<(), MeshError> {
        if state.member(from).is_none() {
            return Err(MeshError::NotAMember(*from));
        }
        match self.pairs.get(from) {
            Some(p) if p.state == PairState::AwaitingOffer && p.token == *token => Ok(()),
            _ => Err(MeshError::UnexpectedOffer(*from)),
        }
    }

    /// The pair's session is connected and verified.
    pub fn on_connected(&mut self, peer: &CallId) {
        if let Some(p) = self.pairs.get_mut(peer) {
            p.state = PairState::Connected;
        }
    }

    /// The pair's session failed or went silent.
    pub fn on_lost(&mut self, peer: &CallId) -> Vec<MeshAction> {
        match self.pairs.remove(peer) {
            Some(_) => vec![MeshAction::Drop {
                peer: *peer,
                reason: DropReason::Lost,
            }],
            None => Vec::new(),
        }
    }

    /// A newer room state: members no longer in it are dropped.
    pub fn on_state(&mut self, state: &RoomState) -> Vec<MeshAction> {
        let gone: Vec<CallId> = self
            .pairs
            .keys()
            .filter(|id| state.member(id).is_none())
            .copied()
            .collect();
        gone.into_iter()
            .map(|peer| {
                self.pairs.remove(&peer);
                MeshAction::Drop {
                    peer,
                    reason: DropReason::Removed,
                }
            })
            .collect()
    }

    /// Pairs that did not connect in time.
    pub fn poll(&mut self, now: Instant) -> Vec<MeshAction> {
        let stale: Vec<CallId> = self
            .pairs
            .iter()
            .filter(|(_, p)| {
                p.state != PairState::Connected
                    && now.saturating_duration_since(p.since) >= PAIR_TIMEOUT
            })
            .map(|(id, _)| *id)
            .collect();
        stale
            .into_iter()
            .map(|peer| {
                self.pairs.remove(&peer);
                MeshAction::Drop {
                    peer,
                    reason: DropReason::Timeout,
                }
            })
            .collect()
    }

    /// When [`Mesh::poll`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pairs
            .values()
            .filter(|p| p.state != PairState::Connected)
            .map(|p| p.since + PAIR_TIMEOUT)
            .min()
    }

    /// Leaving: a `leave` to every peer in the call.
    pub fn leave(&self) -> Vec<MeshAction> {
        self.pairs
            .keys()
            .map(|to| MeshAction::Announce {
                to: *to,
                body: self.body(RoomCallOp::Leave),
            })
            .collect()
    }

    /// The peers in the call with us (connected or being set up).
    pub fn peers(&self) -> impl Iterator<Item = &CallId> {
        self.pairs.keys()
    }

    /// The call token of the pair with `peer`.
    pub fn token(&self, peer: &CallId) -> Option<CallToken> {
        self.pairs.get(peer).map(|p| p.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::identity::Identity;
    use signaling::room::{Member, Role};

    fn ids(n: u8) -> Vec<CallId> {
        (1..=n)
            .map(|i| Identity::from_seed([i; 32]).call_id())
            .collect()
    }

    fn state(members: &[CallId]) -> RoomState {
        let room = RoomId::from_bytes([7; 16]);
        let mut s = RoomState::create(room, "r", members[0], "", 0);
        for m in &members[1..] {
            s.upsert(Member {
                id: *m,
                name: String::new(),
                role: Role::Member,
            });
        }
        s
    }

    /// Delivers announcements between meshes until none is left; returns the offers made.
    fn settle(
        meshes: &mut [(CallId, Mesh)],
        state: &RoomState,
        mut queue: Vec<(CallId, MeshAction)>,
    ) -> Vec<(CallId, CallId, CallToken)> {
        let now = Instant::now();
        let mut offers = Vec::new();
        while let Some((from, action)) = queue.pop() {
            match action {
                MeshAction::Announce { to, body } => {
                    if let Some((_, m)) = meshes.iter_mut().find(|(id, _)| *id == to) {
                        for a in m.on_room_call(from, body, state, now).unwrap() {
                            queue.push((to, a));
                        }
                    }
                }
                MeshAction::Offer { peer, token } => offers.push((from, peer, token)),
                MeshAction::Drop { .. } => {}
            }
        }
        offers
    }

    #[test]
    fn every_pair_gets_exactly_one_offer_whatever_the_join_order() {
        let members = ids(6);
        let state = state(&members);
        let room = state.room;
        let mut meshes: Vec<(CallId, Mesh)> = Vec::new();
        let mut all_offers = Vec::new();
        // Members join one after the other; the last two at the same time.
        for (i, id) in members.iter().enumerate() {
            let mesh = Mesh::new(*id, room, CallSession([i as u8; 16]));
            let start: Vec<_> = mesh.start(&state).into_iter().map(|a| (*id, a)).collect();
            meshes.push((*id, mesh));
            if i == 4 {
                continue; // joins together with the next one
            }
            let queue = if i == 5 {
                let fifth = meshes[4]
                    .1
                    .start(&state)
                    .into_iter()
                    .map(|a| (members[4], a));
                start.into_iter().chain(fifth).collect()
            } else {
                start
            };
            all_offers.extend(settle(&mut meshes, &state, queue));
        }
        let mut pairs: Vec<_> = all_offers
            .iter()
            .map(|(a, b, _)| if a < b { (*a, *b) } else { (*b, *a) })
            .collect();
        pairs.sort();
        let n = pairs.len();
        pairs.dedup();
        assert_eq!(n, pairs.len(), "no pair offered twice");
        assert_eq!(pairs.len(), 15, "6 members: 15 pairs");
        // Each offer is expected by its answerer, and only by it.
        for (from, to, token) in &all_offers {
            let answerer = &meshes.iter().find(|(id, _)| id == to).unwrap().1;
            assert_eq!(answerer.check_offer(from, token, &state), Ok(()));
            let offerer = &meshes.iter().find(|(id, _)| id == from).unwrap().1;
            assert!(
                offerer.check_offer(to, token, &state).is_err(),
                "the offerer does not take an offer"
            );
        }
    }

    #[test]
    fn strangers_removed_members_and_wrong_tokens_are_refused() {
        let members = ids(3);
        let state = state(&members[..2]);
        let room = state.room;
        let mut m = Mesh::new(members[0], room, CallSession([0; 16]));
        let stranger = members[2];
        let join = RoomCallBody {
            room,
            session: CallSession([9; 16]),
            op: RoomCallOp::Join,
        };
        assert_eq!(
            m.on_room_call(stranger, join, &state, Instant::now()),
            Err(MeshError::NotAMember(stranger))
        );
        let other_room = RoomCallBody {
            room: RoomId::from_bytes([8; 16]),
            ..join
        };
        assert_eq!(
            m.on_room_call(members[1], other_room, &state, Instant::now()),
            Err(MeshError::WrongRoom)
        );
        // A member joins; an offer with another token is not this pair's.
        m.on_room_call(members[1], join, &state, Instant::now())
            .unwrap();
        let wrong = CallToken::from_bytes([1; 16]);
        if !offers_to(&members[0], &members[1]) {
            assert_eq!(
                m.check_offer(&members[1], &wrong, &state),
                Err(MeshError::UnexpectedOffer(members[1]))
            );
            let right = m.token(&members[1]).unwrap();
            assert_eq!(m.check_offer(&members[1], &right, &state), Ok(()));
        }
        // Removed from the room: dropped, and its offers refused.
        let smaller = self::state(&members[..1]);
        assert_eq!(
            m.on_state(&smaller),
            vec![MeshAction::Drop {
                peer: members[1],
                reason: DropReason::Removed
            }]
        );
        let token = pair_token(
            &room,
            (&members[0], &CallSession([0; 16])),
            (&members[1], &join.session),
        );
        assert_eq!(
            m.check_offer(&members[1], &token, &smaller),
            Err(MeshError::NotAMember(members[1]))
        );
    }

    #[test]
    fn leave_rejoin_loss_and_timeout_drop_the_pair() {
        let members = ids(2);
        let state = state(&members);
        let room = state.room;
        let t = Instant::now();
        let mut m = Mesh::new(members[0], room, CallSession([0; 16]));
        let join = |s: u8| RoomCallBody {
            room,
            session: CallSession([s; 16]),
            op: RoomCallOp::Join,
        };
        m.on_room_call(members[1], join(1), &state, t).unwrap();
        // A join with a new session replaces the pair.
        let out = m.on_room_call(members[1], join(2), &state, t).unwrap();
        assert!(out.contains(&MeshAction::Drop {
            peer: members[1],
            reason: DropReason::Rejoined
        }));
        // A leave for an old session is ignored; for the current one it drops.
        let leave = |s: u8| RoomCallBody {
            op: RoomCallOp::Leave,
            ..join(s)
        };
        assert!(m
            .on_room_call(members[1], leave(1), &state, t)
            .unwrap()
            .is_empty());
        assert_eq!(
            m.on_room_call(members[1], leave(2), &state, t).unwrap(),
            vec![MeshAction::Drop {
                peer: members[1],
                reason: DropReason::Left
            }]
        );
        // Never connected: dropped after PAIR_TIMEOUT; connected pairs stay.
        m.on_room_call(members[1], join(3), &state, t).unwrap();
        assert_eq!(m.poll_timeout(), Some(t + PAIR_TIMEOUT));
        assert!(m
            .poll(t + PAIR_TIMEOUT - Duration::from_millis(1))
            .is_empty());
        assert_eq!(m.poll(t + PAIR_TIMEOUT).len(), 1);
        m.on_room_call(members[1], join(4), &state, t).unwrap();
        m.on_connected(&members[1]);
        assert!(m.poll(t + PAIR_TIMEOUT * 2).is_empty());
        assert_eq!(m.leave().len(), 1);
        assert_eq!(m.on_lost(&members[1]).len(), 1);
        assert_eq!(m.peers().count(), 0);
    }
}
