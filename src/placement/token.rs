//! Fencing tokens: what a downstream store needs to refuse a task's stale owner.
//!
//! Membership by gossip gives no mutual exclusion: during a handoff the old owner may still
//! believe it owns a task for a moment after the new one started it (and on both sides of a
//! partition, for as long as it lasts). A token turns that into an optimistic lock. Each
//! owner claims a task with a token; the store remembers the highest token it accepted per
//! task and refuses writes with a lower one. docs/FENCING.md says what is and is not
//! guaranteed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The token an owner holds its tasks by, ordered by `(epoch, run)`.
///
/// `epoch` is the owner's placement epoch: a Lamport clock of ownership changes carried by
/// gossip (see [`Swim::epoch`](crate::proto::Swim::epoch)). A node advances it whenever it
/// gains or loses a task and keeps the highest it hears, so a task's next owner, once it has
/// heard the epoch its previous owner last held it at, holds it higher. `run` is the owner's
/// run: it orders two owners at the same epoch that have not heard of each other (the two
/// sides of a partition), so their tokens differ and a store keeps one. Every task a node
/// owns is held by the same token, which rises with the node's epoch: read it when writing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct FencingToken {
    /// The placement epoch of the claim.
    pub epoch: u64,
    /// The owner's run.
    pub run: u64,
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.run)
    }
}

/// A task this node owns, with the token it claimed it by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OwnedTask {
    /// The task's key.
    pub key: String,
    /// Its fencing token: send it with every write the task makes.
    pub token: FencingToken,
}

/// What one placement change did to the local node, with the token of what it gained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Tasks this node now owns and did not before: start these. Sorted.
    pub acquired: Vec<String>,
    /// Tasks this node owned before and no longer does: stop these. Sorted.
    pub released: Vec<String>,
    /// The token this node holds its tasks by from this change on (the acquired ones and
    /// those it kept).
    pub token: FencingToken,
}

impl Handoff {
    /// True when the change did not affect the local node.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.acquired.is_empty() && self.released.is_empty()
    }
}
