//! Requests and responses of the control endpoint, as JSON.

use std::collections::BTreeMap;

use crate::placement::{Balance, OwnedTask};
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
    /// The tasks this agent owns now, or with `all`, how every member's share compares.
    Tasks {
        /// Every member's task count and weight instead of this agent's tasks.
        #[serde(default)]
        all: bool,
    },
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
    /// Join through more seeds (`host:port`), now.
    Join {
        /// Seeds to join through.
        seeds: Vec<String>,
    },
    /// Mark a failed member left (serf's `force-leave`); with `prune`, forget it here at once.
    ForceLeave {
        /// The member's name.
        name: String,
        /// Also forget the record at once.
        #[serde(default)]
        prune: bool,
    },
    /// Set and delete the agent's tags, and publish them.
    SetTags {
        /// Tags to set (added or replaced).
        #[serde(default)]
        set: BTreeMap<String, String>,
        /// Tags to delete.
        #[serde(default)]
        delete: Vec<String>,
    },
    /// Version, uptime, profile, key ids and the agent's addresses.
    Info,
    /// Broadcast a user event to every member (serf's `event`).
    UserEvent {
        /// The event's name, 1 to 64 bytes.
        name: String,
        /// Its payload, as text.
        #[serde(default)]
        payload: String,
    },
    /// Stream events (and, at `logs`, log lines) until the client hangs up: the one request
    /// answered with many lines.
    Monitor {
        /// Also stream log lines at this level and above: error, warn, info, debug, trace.
        #[serde(default)]
        logs: Option<String>,
    },
}

/// A request on the wire: the request, and the control token when the endpoint needs one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The control token (see `--control-token-file`); needed on a TCP endpoint that has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretString>,
    /// What is asked.
    #[serde(flatten)]
    pub request: Request,
}

/// The agent as `swimring info` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Member name.
    pub name: String,
    /// swimring's version.
    pub version: String,
    /// Version of the wire format this agent speaks.
    pub protocol_version: u8,
    /// Seconds since the agent started.
    pub uptime_secs: u64,
    /// Timing profile (lan, wan, local).
    pub profile: String,
    /// Ids of the cluster keys, the primary first; empty without encryption.
    pub keys: Vec<String>,
    /// Gossip address bound.
    pub gossip: String,
    /// Address peers reach this agent at.
    pub advertise: String,
    /// The control endpoint.
    pub control: String,
    /// The metrics endpoint, if served.
    pub metrics: Option<String>,
}

/// One log line streamed by [`Request::Monitor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Unix time in milliseconds.
    pub ts_ms: u64,
    /// error, warn, info, debug or trace.
    pub level: String,
    /// The message with its fields, as the agent's own log shows it.
    pub message: String,
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
        /// Whether the key is a registered task of the agent asked; any other key is only
        /// where it would be placed. Absent in answers from older agents.
        #[serde(default)]
        task: bool,
    },
    /// Answer to [`Request::Status`].
    Status(Box<StatusInfo>),
    /// Answer to [`Request::Tasks`].
    Tasks {
        /// Tasks owned by this agent, sorted by key, each with its fencing token.
        tasks: Vec<OwnedTask>,
    },
    /// Answer to [`Request::Tasks`] with `all`.
    Balance(Balance),
    /// Answer to [`Request::Leave`]: the agent has left and is stopping.
    Left {
        /// Whether every peer the protocol means to tell was told before the leave timeout.
        disseminated: bool,
    },
    /// Answer to [`Request::Join`].
    Joined {
        /// Seeds that answered with a state this agent could read.
        answered: usize,
    },
    /// Answer to [`Request::ForceLeave`]: the member's record now.
    ForcedLeave {
        /// The member, left.
        member: MemberInfo,
        /// Whether its record was also forgotten here.
        pruned: bool,
    },
    /// Answer to [`Request::SetTags`]: the tags now published.
    Tags {
        /// Every tag, in key order.
        tags: BTreeMap<String, String>,
    },
    /// Answer to [`Request::Info`].
    Info(Box<AgentInfo>),
    /// Answer to [`Request::UserEvent`]: the event is queued for dissemination (and was
    /// delivered to the agent itself).
    UserEventSent {
        /// The event's name.
        name: String,
        /// Its sequence number in the agent's run.
        seq: u64,
    },
    /// A membership or task event streamed by [`Request::Monitor`], as `--events json`
    /// prints it.
    Event {
        /// The event.
        event: serde_json::Value,
    },
    /// A log line streamed by [`Request::Monitor`].
    Log(LogLine),
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

    #[test]
    fn a_token_travels_beside_the_request_and_may_be_absent() {
        let with = Envelope {
            token: Some(SecretString("t0ken".into())),
            request: Request::Members,
        };
        let json = serde_json::to_string(&with).unwrap();
        assert_eq!(json, r#"{"token":"t0ken","op":"members"}"#);
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), with);
        // What scripts sent before tokens existed still parses.
        let old: Envelope = serde_json::from_str(r#"{"op":"status"}"#).unwrap();
        assert_eq!((old.token, old.request), (None, Request::Status));
    }
}
