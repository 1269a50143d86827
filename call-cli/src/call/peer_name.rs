//! How a peer is named on screen: its `known_peers` name where there is one, else its ID.
//! Names come from a file and IDs are base32, but both go through [`crate::terminal_text`]
//! like every other string shown to a person.

use signaling::identity::CallId;
use signaling::known_peers::KnownPeers;

use crate::terminal_text::escape;

/// The `known_peers` names of `id`, joined by `/`, escaped; `None` for an unknown peer.
pub(crate) fn known_name(known: Option<&KnownPeers>, id: &CallId) -> Option<String> {
    let names: Vec<&str> = known?.names_of(id).collect();
    (!names.is_empty()).then(|| escape(&names.join("/")).into_owned())
}

/// Who sent a chat line: the name, or the first characters of the ID.
pub(crate) fn chat_label(known: Option<&KnownPeers>, id: &CallId) -> String {
    known_name(known, id).unwrap_or_else(|| id.to_string().chars().take(8).collect())
}

/// Who is calling: `bob (ID)` or `unknown caller ID`.
pub(crate) fn caller(known: Option<&KnownPeers>, id: &CallId) -> String {
    match known_name(known, id) {
        Some(name) => format!("{name} ({id})"),
        None => format!("unknown caller {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::identity::Identity;

    #[test]
    fn names_known_peers_and_marks_unknown_callers() {
        let (bob, eve) = (
            Identity::generate().call_id(),
            Identity::generate().call_id(),
        );
        let mut known = KnownPeers::empty(std::path::Path::new("/nonexistent/known_peers"));
        known.remember("bob", bob).unwrap();
        assert_eq!(known_name(Some(&known), &bob).as_deref(), Some("bob"));
        assert_eq!(chat_label(Some(&known), &bob), "bob");
        assert_eq!(caller(Some(&known), &bob), format!("bob ({bob})"));
        assert_eq!(caller(Some(&known), &eve), format!("unknown caller {eve}"));
        assert_eq!(chat_label(None, &eve).len(), 8);
    }
}
