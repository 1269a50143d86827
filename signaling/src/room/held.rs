//! The rule by which a member takes a new room state (§21.3 of `docs/protocol.md`): sans-IO,
//! no clock, no storage. The server can route room states but cannot make one a member takes:
//! a state it invents has no valid signature, one signed by a non-admin is refused, and an
//! older version (a replayed or withheld update) never replaces a newer one.

use super::error::RoomError;
use super::state::{RoomState, SignedRoomState};
use crate::identity::CallId;

/// What taking a state did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The state is now the current one.
    Updated,
    /// It was the state already held.
    Unchanged,
}

/// A member's view of one room: the state it holds, and the state that one was made from
/// (needed to settle two admins editing at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRoom {
    current: SignedRoomState,
    parent: Option<SignedRoomState>,
}

impl HeldRoom {
    /// A room this member created or was invited to. `me` must be a member, and the signer
    /// an admin of the state itself (the first state has nothing older to check against: the
    /// caller decides whose invitations to take, e.g. only one signed by the envelope's sender).
    pub fn first(state: SignedRoomState, me: &CallId) -> Result<HeldRoom, RoomError> {
        if state.state.member(me).is_none() {
            return Err(RoomError::NotAMember);
        }
        if !state.state.is_admin(&state.signer) {
            return Err(RoomError::NotAdmin {
                signer: state.signer,
            });
        }
        Ok(HeldRoom {
            current: state,
            parent: None,
        })
    }

    /// Restores a held room from storage (both states as stored; re-checked by their parse).
    pub fn restore(current: SignedRoomState, parent: Option<SignedRoomState>) -> HeldRoom {
        HeldRoom { current, parent }
    }

    /// The state held.
    pub fn current(&self) -> &SignedRoomState {
        &self.current
    }

    /// The state the current one was made from, if known.
    pub fn parent(&self) -> Option<&SignedRoomState> {
        self.parent.as_ref()
    }

    /// Offers a state (already parsed, so signed and within limits). Taken when:
    /// - its version is higher and its signer is an admin of the state held, or a member of it
    ///   whose state only removes itself (leaving needs no admin);
    /// - its version is equal, it was made from the same parent, its signer may make it from
    ///   that parent, and its hash is smaller (two admins editing at once: every member keeps
    ///   the same one, whatever the order they arrive in).
    ///
    /// Everything else is refused: another room, an older version (no rollback), the loser
    /// of a tie, a signer without the right.
    pub fn offer(&mut self, incoming: SignedRoomState) -> Result<Taken, RoomError> {
        let held = &self.current.state;
        if incoming.state.room != held.room {
            return Err(RoomError::WrongRoom);
        }
        if incoming.hash() == self.current.hash() {
            return Ok(Taken::Unchanged);
        }
        let stale = RoomError::Stale {
            held: held.version,
            got: incoming.state.version,
        };
        if incoming.state.version > held.version {
            may_make(held, &incoming)?;
            let old = std::mem::replace(&mut self.current, incoming);
            self.parent = Some(old);
            return Ok(Taken::Updated);
        }
        if incoming.state.version < held.version {
            return Err(stale);
        }
        // Same version, different state: siblings made from the same parent.
        if incoming.state.prev != held.prev {
            return Err(stale);
        }
        let authority = match &self.parent {
            Some(p) if p.hash() == held.prev => &p.state,
            // The parent is unknown (this member joined at this version): judge by the state held.
            _ => held,
        };
        may_make(authority, &incoming)?;
        if incoming.hash() < self.current.hash() {
            self.current = incoming;
            Ok(Taken::Updated)
        } else {
            Err(stale)
        }
    }
}

/// Whether the signer of `next` may make it from `from`: an admin of `from`, or a member of
/// `from` leaving (the same room with exactly that member removed).
fn may_make(from: &RoomState, next: &SignedRoomState) -> Result<(), RoomError> {
    if from.is_admin(&next.signer) {
        return Ok(());
    }
    let leaving = from.member(&next.signer).is_some() && {
        let mut expected = from.clone();
        expected.remove(&next.signer);
        expected.name == next.state.name && expected.members == next.state.members
    };
    if leaving {
        Ok(())
    } else {
        Err(RoomError::NotAdmin {
            signer: next.signer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::room::state::{Member, Role};
    use crate::room::RoomId;
    use crate::test_fixtures::{alice, bob, carol};
    use proptest::prelude::*;

    fn room() -> RoomId {
        RoomId::from_bytes([7; 16])
    }

    fn member(id: &Identity, role: Role) -> Member {
        Member {
            id: id.call_id(),
            name: "m".into(),
            role,
        }
    }

    /// Alice (admin) creates the room and adds Bob (admin) and Carol (member): version 2.
    fn v2() -> (SignedRoomState, SignedRoomState) {
        let v1 = RoomState::create(room(), "r", alice().call_id(), "Alice", 1)
            .sign(&alice())
            .unwrap();
        let mut s = RoomState::next(&v1, 2);
        s.upsert(member(&bob(), Role::Admin));
        s.upsert(member(&carol(), Role::Member));
        (v1, s.sign(&alice()).unwrap())
    }

    fn held_by_carol() -> HeldRoom {
        let (_, v2) = v2();
        HeldRoom::first(v2, &carol().call_id()).unwrap()
    }

    #[test]
    fn an_admins_newer_state_is_taken_and_an_older_one_never() {
        let (v1, v2) = v2();
        let mut held = held_by_carol();
        let mut s = RoomState::next(&v2, 3);
        s.name = "renamed".into();
        let v3 = s.sign(&bob()).unwrap();
        assert_eq!(held.offer(v3.clone()), Ok(Taken::Updated));
        assert_eq!(held.offer(v3.clone()), Ok(Taken::Unchanged));
        // Rollback: the old states, re-sent by the server, are refused.
        for old in [v1, v2] {
            assert!(matches!(held.offer(old), Err(RoomError::Stale { .. })));
        }
        assert_eq!(held.current(), &v3);
    }

    #[test]
    fn a_members_state_is_refused_unless_it_only_removes_itself() {
        let (_, v2) = v2();
        let mut held = held_by_carol();
        // Carol (member) tries to make herself admin.
        let mut s = RoomState::next(&v2, 3);
        s.upsert(member(&carol(), Role::Admin));
        let grab = s.sign(&carol()).unwrap();
        assert_eq!(
            held.offer(grab),
            Err(RoomError::NotAdmin {
                signer: carol().call_id()
            })
        );
        // Carol leaves: taken (by any member's copy; here her own).
        let mut s = RoomState::next(&v2, 3);
        s.remove(&carol().call_id());
        let leave = s.sign(&carol()).unwrap();
        assert_eq!(held.offer(leave), Ok(Taken::Updated));
        // A leave that also renames is not a leave.
        let mut held = held_by_carol();
        let mut s = RoomState::next(&v2, 3);
        s.remove(&carol().call_id());
        s.name = "mine".into();
        assert!(matches!(
            held.offer(s.sign(&carol()).unwrap()),
            Err(RoomError::NotAdmin { .. })
        ));
    }

    #[test]
    fn a_stranger_or_a_server_cannot_make_a_state() {
        let (_, v2) = v2();
        let mut held = held_by_carol();
        let server = Identity::from_seed([0x55; 32]);
        let mut s = RoomState::next(&v2, 3);
        s.upsert(member(&server, Role::Admin));
        assert!(matches!(
            held.offer(s.clone().sign(&server).unwrap()),
            Err(RoomError::NotAdmin { .. })
        ));
        // Another room's state.
        let other = RoomState::create(RoomId::from_bytes([8; 16]), "o", alice().call_id(), "A", 1)
            .sign(&alice())
            .unwrap();
        assert_eq!(held.offer(other), Err(RoomError::WrongRoom));
        assert_eq!(held.current(), &v2);
    }

    #[test]
    fn an_invitation_must_list_me_and_be_signed_by_an_admin_of_it() {
        let (_, v2) = v2();
        let outsider = Identity::from_seed([0x66; 32]);
        assert_eq!(
            HeldRoom::first(v2.clone(), &outsider.call_id()),
            Err(RoomError::NotAMember)
        );
        // Carol (a member) invites an outsider: her signature is valid, but a first state must
        // be signed by one of its own admins.
        let mut s = RoomState::next(&v2, 3);
        s.upsert(member(&carol(), Role::Member));
        s.upsert(member(&outsider, Role::Member));
        let by_member = s.sign(&carol()).unwrap();
        assert_eq!(
            HeldRoom::first(by_member, &outsider.call_id()),
            Err(RoomError::NotAdmin {
                signer: carol().call_id()
            })
        );
    }

    /// Alice and Bob (both admins at v2) edit at once: every member ends with the same v3,
    /// whichever arrives first.
    #[test]
    fn two_admins_editing_at_once_converge_in_any_order() {
        let (_, v2) = v2();
        let mut a = RoomState::next(&v2, 3);
        a.name = "alice's".into();
        let by_alice = a.sign(&alice()).unwrap();
        // Bob's edit demotes Alice: judged against the parent (where Alice is admin), not
        // against Bob's state, so the order of arrival does not matter.
        let mut b = RoomState::next(&v2, 3);
        b.upsert(Member {
            id: alice().call_id(),
            name: "Alice".into(),
            role: Role::Member,
        });
        let by_bob = b.sign(&bob()).unwrap();
        let winner = if by_alice.hash() < by_bob.hash() {
            &by_alice
        } else {
            &by_bob
        };
        for order in [[&by_alice, &by_bob], [&by_bob, &by_alice]] {
            let mut held = HeldRoom::first(v2.clone(), &carol().call_id()).unwrap();
            let _ = held.offer(order[0].clone());
            let second = held.offer(order[1].clone());
            assert_eq!(held.current(), winner, "order {:?}", second);
        }
    }

    proptest! {
        /// Whatever sequence of states (valid ones from admins and members, of any version)
        /// arrives, the held version never goes down.
        #[test]
        fn the_held_version_never_decreases(ops in prop::collection::vec((0u8..3, 0u8..4, any::<bool>()), 1..30)) {
            let (_, v2) = v2();
            let mut held = HeldRoom::first(v2, &carol().call_id()).unwrap();
            let signers = [alice(), bob(), carol()];
            for (who, bump, rename) in ops {
                let base = held.current().clone();
                let mut s = RoomState::next(&base, 9);
                s.version = base.state.version + u64::from(bump);
                if s.version == 1 { continue; }
                if rename { s.name = format!("n{bump}"); }
                let Ok(signed) = s.sign(&signers[who as usize]) else { continue };
                let before = held.current().state.version;
                let _ = held.offer(signed);
                prop_assert!(held.current().state.version >= before);
            }
        }
    }
}
