//! The local control endpoint a running agent serves and the CLI talks to.
//!
//! One request per connection: the client writes one JSON object on one line, the agent
//! answers with one JSON line and closes, except [`Request::Monitor`], answered with a line
//! per event until the client hangs up. JSON keeps it scriptable (`nc -U` works) and apart
//! from the gossip port, which speaks only the binary wire format.
//!
//! It listens on a Unix socket private to the agent's user by default ([`Endpoint`]); a TCP
//! endpoint on loopback needs nothing more, one beyond loopback needs a token ([`Auth`]).

mod client;
mod endpoint;
mod events;
mod logtap;
mod mesh;
mod protocol;
mod server;

pub use client::{Client, call};
pub use endpoint::Endpoint;
pub use events::{EVENT_KINDS, event_json, task_change_json, user_event_json};
pub use logtap::LogTap;
pub use mesh::{AgentFacts, MeshHandler, leave_logged, member_info};
pub use protocol::{
    AgentInfo, Envelope, LogLine, MemberInfo, Request, Response, SecretString, StatusInfo,
};
pub use server::{Auth, Handler, Listener, serve};

use thiserror::Error;

/// Longest request or response line accepted, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// Why a control request failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No agent answers at the address (not running, or another port).
    #[error("cannot reach the agent's control endpoint at {addr}: {source}")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// The connection error.
        source: std::io::Error,
    },
    /// The agent took too long to answer.
    #[error("the agent at {0} did not answer in time")]
    Timeout(String),
    /// The answer was not a valid response (another program on that port?).
    #[error("invalid answer from {addr}: {reason}")]
    BadResponse {
        /// The address asked.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// The endpoint cannot be used: a bad address, one that does not resolve, a socket of
    /// another user, one that cannot be bound, or TCP beyond loopback without a token.
    #[error("{0}")]
    Endpoint(String),
}
