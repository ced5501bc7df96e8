//! Requests and responses of the control endpoint, as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A secret carried in a request: serialised as the plain string, but never shown by `Debug`,
/// so logging a request cannot leak a key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the CLI asks an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// Every member the agent knows.
    Members,
    /// Who owns `key`, and the next `replicas - 1` members in ring order.
    Owner {
        /// The task key.
        key: String,
        /// How many distinct owners to list (at least 1).
        replicas: usize,
    },
    /// The agent's own state and counters.
    Status,
    /// The tasks this agent owns now.
    Tasks,
    /// Leave the mesh gracefully and stop.
    Leave,
    /// The ids of the agent's keys (never the keys).
    ListKeys,
    /// Install a key that opens packets; it does not seal until [`Request::UseKey`].
    InstallKey {
        /// The key, standard base64 of 32 bytes.
        key: SecretString,
    },
    /// Make an installed key the primary, the one that seals what the agent sends.
    UseKey {
        /// The key's id, 8 hex digits as [`Response::Keys`] lists them.
        id: String,
    },
    /// Remove an installed key that is not the primary.
    RemoveKey {
        /// The key's id.
        id: String,
    },
}

/// One member as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Unique name.
    pub name: String,
    /// Gossip address.
    pub addr: String,
    /// alive, suspect, dead or left.
    pub state: String,
    /// The member's incarnation.
    pub incarnation: u32,
    /// The member's run.
    pub run: u64,
    /// Metadata as key=value tags.
    pub tags: BTreeMap<String, String>,
}

/// The agent's own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// This agent.
    pub member: MemberInfo,
    /// Lifeguard local health score (0 is healthy).
    pub health_score: u32,
    /// Checksum of the ring this agent places work on, in hex: equal on every agent holding
    /// the same members.
    pub ring_checksum: String,
    /// Members known, by state.
    pub members_by_state: BTreeMap<String, usize>,
    /// Protocol and runtime counters.
    pub counters: BTreeMap<String, u64>,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    /// Answer to [`Request::Members`].
    Members {
        /// In name order.
        members: Vec<MemberInfo>,
    },
    /// Answer to [`Request::Owner`].
    Owner {
        /// The key asked about.
        key: String,
        /// Owners in ring order: the first owns the key, the rest are its failover order.
        owners: Vec<String>,
    },
    /// Answer to [`Request::Status`].
    Status(Box<StatusInfo>),
    /// Answer to [`Request::Tasks`].
    Tasks {
        /// Task keys owned by this agent, sorted.
        tasks: Vec<String>,
    },
    /// Answer to [`Request::Leave`]: the agent has left and is stopping.
    Left,
    /// Answer to the key requests: the keys installed once the request was served.
    Keys {
        /// Key ids, the primary first; empty if the agent runs without encryption.
        ids: Vec<String>,
    },
    /// The request could not be served.
    Error {
        /// Why.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_a_request_never_shows_in_debug_but_travels() {
        let req = Request::InstallKey {
            key: SecretString("c2VjcmV0".into()),
        };
        assert!(!format!("{req:?}").contains("c2VjcmV0"));
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(json, r#"{"op":"install_key","key":"c2VjcmV0"}"#);
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
    }
}
