//! `call id new`, `call id show`, `call verify`: the identity commands.

use std::path::Path;

use anyhow::{bail, Context, Result};
use signaling::identity::{safety_number, CallId, Identity};

use crate::config::identity_path;

/// Creates a new identity in `dir`; refuses to replace an existing one unless `force`.
pub fn new_identity(dir: &Path, force: bool) -> Result<CallId> {
    let path = identity_path(dir);
    let id = Identity::generate();
    id.save(&path, force)
        .with_context(|| format!("could not create the identity at {}", path.display()))?;
    Ok(id.call_id())
}

/// Loads the identity in `dir`, with a hint when there is none.
pub fn load_identity(dir: &Path) -> Result<Identity> {
    let path = identity_path(dir);
    if !path.exists() {
        bail!(
            "no identity at {}: create one with `call id new`",
            path.display()
        );
    }
    Identity::load(&path)
        .with_context(|| format!("could not load the identity at {}", path.display()))
}

/// Parses a call ID typed or pasted by a person.
pub fn parse_call_id(text: &str) -> Result<CallId> {
    text.parse::<CallId>().with_context(|| {
        format!("`{text}` is not a valid call ID (copy it again from `call id show`)")
    })
}

/// The lines `call verify <ID>` prints.
pub fn verify_lines(me: &CallId, peer: &CallId) -> Vec<String> {
    vec![
        format!("your ID:       {me}"),
        format!("their ID:      {peer}"),
        format!("safety number: {}", safety_number(me, peer)),
        "Compare the safety number by voice; it is the same on both sides only if nobody is in the middle."
            .to_owned(),
    ]
}
