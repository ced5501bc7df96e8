//! Why the core refused an operation. Each refusal leaves the node's state unchanged.

use super::config::ConfigError;

/// An operation [`Swim`](super::Swim) refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The configuration or identity is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Metadata larger than [`Config::max_meta`](super::Config::max_meta). The previous
    /// metadata is still in force.
    #[error("metadata of {len} bytes exceeds max_meta ({limit} bytes)")]
    MetaTooLarge {
        /// Size of the refused metadata.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The node has left (or is leaving): it can no longer join or change its metadata,
    /// which would gossip an alive above its own left. Start a new node instead.
    #[error("the node has left the mesh")]
    Left,
}

/// The one check of metadata size, for the initial metadata and every later change.
pub(crate) fn check_meta(limit: usize, meta: &[u8]) -> Result<(), ProtoError> {
    if meta.len() > limit {
        return Err(ProtoError::MetaTooLarge {
            len: meta.len(),
            limit,
        });
    }
    Ok(())
}

/// Why [`Swim::force_leave`](super::Swim::force_leave) refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForceLeaveError {
    /// No member of that name is known (never seen, or already forgotten).
    #[error("no member named {0:?} is known")]
    Unknown(String),
    /// The member is alive or suspect: it would refute a forced leave. Only a failed member
    /// can be forced out.
    #[error("{name} is {state}: only a dead member can be forced to leave")]
    Live {
        /// The member.
        name: String,
        /// Its state now.
        state: crate::wire::State,
    },
    /// This node's own name: leave gracefully instead.
    #[error("a node cannot force itself to leave: use leave")]
    Local,
}
